"""TimeSeriesClassifier and AudioClassifier (Voice2Series-style reprogramming, scikit-learn estimators).

Every test runs on a tiny seeded filter-bank backbone (``helpers.TinyWaveformBackbone``: 256-sample 16 kHz
waveforms, 12 source classes; and its 16-wide embedding variant) passed as an instance, so no pretrained
weights load; a few real FSDD recordings come from the data home.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from helpers import (
    TinyWaveformBackbone,
    TinyWaveformEmbeddingBackbone,
    assert_unchanged,
    require_data,
    sines_and_squares,
    state_snapshot,
)
from xdomain.backbones.base import FrozenBackbone
from xdomain.checkpoint import CheckpointError
from xdomain.datasets.frames import series_matrix
from xdomain.estimators.audio import AudioClassifier
from xdomain.estimators.series import PROGRAMS, TimeSeriesClassifier
from xdomain.heads.label_mapping import MAPPINGS, bayesian_omega, greedy_assignment, random_assignment
from xdomain.heads.linear import LinearHead

# small and quick: no validation split (24 series), one epoch unless a test needs learning
FAST: dict[str, Any] = {"epochs": 1, "batch_size": 8, "validation_fraction": 0.0}
WAVE_LEN = TinyWaveformBackbone.input_length
N_SOURCES = TinyWaveformBackbone.num_outputs


@pytest.fixture(scope="module")
def wave() -> TinyWaveformBackbone:
    return TinyWaveformBackbone()


@pytest.fixture(scope="module")
def wave_embedding() -> TinyWaveformEmbeddingBackbone:
    return TinyWaveformEmbeddingBackbone()


@pytest.fixture(scope="module")
def series() -> tuple[np.ndarray, np.ndarray]:
    return sines_and_squares(12, 32)


def parts(est: Any) -> Any:
    """The fitted Reprogrammer of an estimator, typed loosely: its parts are reached by attribute."""
    return est.model_


def ts(backbone: Any, **kw: Any) -> TimeSeriesClassifier:
    return TimeSeriesClassifier(backbone=backbone, **{**FAST, **kw})


def tones(n_per_class: int = 8, rate: int = 8000, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """200-sample clips at ``rate``: low tones (200-400 Hz, label ``"low"``) and high ones (1.5-2.5 kHz)."""
    rng = np.random.default_rng(seed)
    t = np.arange(200) / rate
    clips, labels = [], []
    for _ in range(n_per_class):
        for label, (lo, hi) in (("low", (200, 400)), ("high", (1500, 2500))):
            phase = rng.uniform(0, 2 * np.pi)
            wave = rng.uniform(0.2, 0.9) * np.sin(2 * np.pi * rng.uniform(lo, hi) * t + phase)
            clips.append(wave.astype(np.float32))
            labels.append(label)
    return clips, np.array(labels)


def audio(backbone: Any, **kw: Any) -> AudioClassifier:
    return AudioClassifier(backbone=backbone, **{**FAST, "sample_rate": 8000, **kw})


# == TimeSeriesClassifier ===================================================================================
# -- fit / predict contract ---------------------------------------------------------------------------------
def test_fit_returns_self_and_prediction_shapes(wave: TinyWaveformBackbone, series: Any) -> None:
    X, y = series
    clf = ts(wave)
    assert clf.fit(X, y) is clf
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 2) and proba.dtype == np.float32
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    pred = clf.predict(X)
    assert pred.shape == (24,)
    assert set(pred) <= set(clf.classes_)
    # predict is the argmax of predict_proba, columns in the order of classes_
    assert (pred == clf.classes_[clf.predict_proba(X).argmax(axis=1)]).all()
    assert clf.series_length_ == 32 and clf.n_train_ == 24 and clf.n_validation_ == 0


def test_string_labels_stay_strings_int_labels_stay_ints(wave: TinyWaveformBackbone, series: Any) -> None:
    X, y = series
    by_name = ts(wave).fit(X, y)
    assert by_name.classes_.tolist() == ["sine", "square"] and by_name.classes_.dtype.kind == "U"
    assert by_name.predict(X).dtype.kind == "U"
    as_int = (y == "square").astype(np.int64)  # sine -> 0, square -> 1: the same sorted order
    by_int = ts(wave).fit(X, as_int.tolist())
    assert by_int.classes_.tolist() == [0, 1] and by_int.classes_.dtype.kind == "i"
    assert all(isinstance(v, np.integer) for v in by_int.predict(X))
    # the label type changes nothing else: the same model, the same scores
    np.testing.assert_array_equal(by_int.predict_proba(X), by_name.predict_proba(X))


@pytest.mark.parametrize("backbone_name", ["wave", "wave_embedding"])
def test_learns_sines_vs_squares(backbone_name: str, request: pytest.FixtureRequest, series: Any) -> None:
    X, y = series
    backbone = request.getfixturevalue(backbone_name)
    clf = ts(backbone, mapping="linear", program="none", epochs=20, lr=0.1).fit(X, y)
    # chance is 0.5; the frozen filter bank separates the shapes, the probe only has to read it
    assert (clf.predict(X) == y).mean() >= 0.9


def test_program_trains_while_the_backbone_stays_bit_for_bit(wave: TinyWaveformBackbone, series: Any) -> None:
    X, y = series
    before = state_snapshot(wave)
    clf = ts(wave, mapping="ilm", program="full", epochs=2).fit(X, y)
    assert_unchanged(wave, before)
    program = parts(clf).transform.program
    assert program.requires_grad and program.abs().sum() > 0  # it starts at zero: it did train
    assert parts(clf).backbone is wave


@pytest.mark.parametrize("program", PROGRAMS)
@pytest.mark.parametrize("mapping", MAPPINGS)
def test_every_mapping_and_program_runs(
    mapping: str, program: str, wave: TinyWaveformBackbone, series: Any
) -> None:
    X, y = series
    clf = ts(wave, mapping=mapping, program=program, max_steps=2).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (24, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    # W spans the whole waveform (the mask decides which entries reach it); the linear head is 12 -> 2
    expected = (WAVE_LEN if program != "none" else 0) + (N_SOURCES * 2 + 2 if mapping == "linear" else 0)
    assert clf.num_trainable() == expected
    if expected == 0:
        assert clf.history_.stopped == "nothing to train"
    else:
        assert clf.history_.steps == 2


@pytest.mark.parametrize("mapping", ["flm", "blm"])
def test_nothing_to_train_still_fits_the_mapping(
    mapping: str, wave: TinyWaveformBackbone, series: Any
) -> None:
    X, y = series
    clf = ts(wave, mapping=mapping, program="none").fit(X, y)
    assert clf.num_trainable() == 0 and clf.history_.stopped == "nothing to train"
    # by hand: the frozen model's source predictions on the training series against the labels
    source = parts(clf).features(torch.from_numpy(series_matrix(X)))  # (24, 12)
    labels = torch.as_tensor((y == "square").astype(np.int64))
    joint = torch.zeros(N_SOURCES, 2, dtype=torch.float64)
    joint.index_put_((source.argmax(-1), labels), torch.ones(24, dtype=torch.float64), accumulate=True)
    expected = greedy_assignment(joint).double() if mapping == "flm" else bayesian_omega(joint)
    omega = parts(clf).head.omega.double()
    torch.testing.assert_close(omega, expected, rtol=0, atol=1e-6)
    assert not torch.equal(omega, random_assignment(N_SOURCES, 2, 1, 0).double())


def test_validation_fraction_is_a_stratified_cut_of_the_training_data(
    wave: TinyWaveformBackbone, series: Any
) -> None:
    X, y = series
    clf = ts(wave, validation_fraction=0.25).fit(X, y)
    assert (clf.n_train_, clf.n_validation_) == (18, 6)  # ceil(0.25 * 24) = 6
    with pytest.warns(UserWarning, match=r"cannot be stratified \(class counts \[1, 4\]"):
        odd = ts(wave, validation_fraction=0.25).fit(X[:5], ["a", "b", "b", "b", "b"])
    assert odd.n_validation_ == 0 and odd.n_train_ == 5


# -- determinism and persistence ----------------------------------------------------------------------------
def test_same_random_state_same_probabilities(wave: TinyWaveformBackbone, series: Any) -> None:
    X, y = series
    kw = {"mapping": "linear", "program": "outside", "epochs": 2, "validation_fraction": 0.25}
    a = ts(wave, random_state=3, **kw).fit(X, y).predict_proba(X)
    b = ts(wave, random_state=3, **kw).fit(X, y).predict_proba(X)
    c = ts(wave, random_state=4, **kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("mapping", ["blm", "ilm", "linear"])
def test_save_load_round_trip(mapping: str, wave: TinyWaveformBackbone, series: Any, tmp_path: Path) -> None:
    X, y = series
    clf = ts(wave, mapping=mapping, program="outside", epochs=2, random_state=5).fit(X, y)
    clf.save(tmp_path / "ckpt")
    loaded = TimeSeriesClassifier.load(tmp_path / "ckpt", backbone=wave)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.classes_.tolist() == ["sine", "square"] and loaded.classes_.dtype == clf.classes_.dtype
    assert loaded.series_length_ == 32
    params = clf.get_params()
    assert {k: v for k, v in loaded.get_params().items() if k != "backbone"} == {
        k: v for k, v in params.items() if k != "backbone"
    }
    if mapping != "linear":
        omega = parts(clf).head.omega
        # fitted from data, so not the seeded starting mapping a fresh model would have
        assert not torch.equal(omega, random_assignment(N_SOURCES, 2, 1, 5).float())
        assert torch.equal(parts(loaded).head.omega, omega)
    assert loaded.history_.steps == clf.history_.steps


def test_load_needs_the_in_memory_backbone_and_the_right_kind(
    wave: TinyWaveformBackbone, series: Any, tmp_path: Path
) -> None:
    X, y = series
    ts(wave).fit(X, y).save(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="in-memory backbone; pass it as backbone="):
        TimeSeriesClassifier.load(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="holds a 'TimeSeriesClassifier', expected a AudioClassifier"):
        AudioClassifier.load(tmp_path / "ckpt", backbone=wave)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        TimeSeriesClassifier.load(tmp_path / "nothing-here", backbone=wave)
    with pytest.raises(CheckpointError, match="fingerprint"):
        TimeSeriesClassifier.load(tmp_path / "ckpt", backbone=TinyWaveformBackbone(seed=1))


# -- scikit-learn compatibility ------------------------------------------------------------------------------
def test_get_set_params_and_clone(wave: TinyWaveformBackbone, series: Any) -> None:
    X, y = series
    clf = ts(wave, mapping="flm")
    params = clf.get_params()
    assert params["mapping"] == "flm" and params["backbone"] is wave and params["epochs"] == 1
    assert {"length", "missing", "copies", "upsample", "random_state", "verbose"} <= params.keys()
    assert clf.set_params(mapping="linear", lr=0.05) is clf
    assert (clf.mapping, clf.lr) == ("linear", 0.05)
    clf.fit(X, y)
    assert isinstance(parts(clf).head, LinearHead)  # set_params took effect in fit
    twin = clone(clf)
    assert twin.get_params()["mapping"] == "linear" and twin.get_params()["lr"] == 0.05
    assert not hasattr(twin, "model_") and not hasattr(twin, "classes_")
    with pytest.raises(NotFittedError):
        twin.predict_proba(X)


def test_not_fitted_error_before_fit(wave: TinyWaveformBackbone, series: Any, tmp_path: Path) -> None:
    X, _ = series
    clf = ts(wave)
    for call in (lambda: clf.predict_proba(X), clf.num_trainable, lambda: clf.save(tmp_path / "x")):
        with pytest.raises(NotFittedError, match="TimeSeriesClassifier is not fitted yet"):
            call()
    assert not (tmp_path / "x").exists()


def test_predict_before_fit_is_a_not_fitted_error(wave: TinyWaveformBackbone, series: Any) -> None:
    X, _ = series
    with pytest.raises(NotFittedError, match="not fitted yet"):
        ts(wave).predict(X)


def test_inside_a_pipeline(wave: TinyWaveformBackbone, series: Any) -> None:
    X, y = series
    clf = ts(wave, random_state=2, max_steps=2)
    # each series is z-normalised inside, so a positive scale before it changes nothing
    pipe = make_pipeline(FunctionTransformer(lambda a: 3.0 * np.asarray(a)), clone(clf)).fit(X, y)
    np.testing.assert_allclose(pipe.predict_proba(X), clf.fit(X, y).predict_proba(X), atol=1e-5)
    np.testing.assert_array_equal(pipe.classes_, ["sine", "square"])


def majority_per_fold(y: Any, cv: int = 2) -> np.ndarray:
    """The accuracy of always answering the most frequent class of each test fold of ``cv`` (the
    ``StratifiedKFold`` that ``cv=<int>`` means for a classifier)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    folds = StratifiedKFold(cv).split(np.zeros(len(y)), y)
    return np.array([np.unique(y[test], return_counts=True)[1].max() / len(test) for _, test in folds])


def test_cross_val_score_and_grid_search(wave: TinyWaveformBackbone, series: Any) -> None:
    X, y = series
    majority = majority_per_fold(y)  # 0.5 and 0.5: each fold tests 6 sines and 6 squares
    # the linear probe of test_learns_sines_vs_squares, scored on the fold it did not see
    learns = {"program": "none", "epochs": 20, "lr": 0.1}
    scores = cross_val_score(ts(wave, mapping="linear", **learns), X, y, cv=2)
    assert scores.shape == (2,) and (scores > majority + 0.3).all()  # measured 1.0 and 1.0
    # with program none, flm trains nothing (a frequency count of the frozen argmax) and the linear probe
    # learns: the search must pick the probe by its held-out score
    search = GridSearchCV(ts(wave, **learns), {"mapping": ["flm", "linear"]}, cv=2).fit(X, y)
    params, mean = search.cv_results_["params"], search.cv_results_["mean_test_score"]
    assert [p["mapping"] for p in params] == ["flm", "linear"]
    assert mean[1] > mean[0] + 0.1  # measured 1.0 against 0.79
    assert search.best_params_ == params[int(np.argmax(mean))] == {"mapping": "linear"}
    assert search.best_estimator_.mapping == "linear"
    assert search.predict_proba(X[:3]).shape == (3, 2)


# -- input handling and bad input ---------------------------------------------------------------------------
def test_series_matrix_inputs_hand_computed() -> None:
    np.testing.assert_array_equal(series_matrix([[0.0, 2.0, 4.0]], length=5), [[0, 1, 2, 3, 4]])
    np.testing.assert_array_equal(series_matrix([[1.0, np.nan, 3.0]], missing="interpolate"), [[1, 2, 3]])
    three = np.arange(6.0).reshape(2, 1, 3)  # (N, 1, L): one channel is univariate
    np.testing.assert_array_equal(series_matrix(three), [[0, 1, 2], [3, 4, 5]])
    import pandas as pd

    frame = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]])
    assert series_matrix(frame).tolist() == [[1, 2], [3, 4]] and series_matrix(frame).dtype == np.float32


def test_unequal_lengths_need_length_which_resamples(wave: TinyWaveformBackbone, series: Any) -> None:
    X, y = series
    ragged = [row[: 30 + (i % 3)] for i, row in enumerate(X)]  # lengths 30, 31, 32
    with pytest.raises(ValueError, match=r"unequal lengths \[30, 31, 32\]; pass length=<int>"):
        ts(wave).fit(ragged, y)
    clf = ts(wave, length=32).fit(ragged, y)
    assert clf.series_length_ == 32
    assert clf.predict_proba([X[0][:20], X[1]]).shape == (2, 2)  # predict resamples too


def test_nan_is_an_error_unless_interpolated_and_data_is_not_changed(
    wave: TinyWaveformBackbone, series: Any
) -> None:
    X, y = series
    holes = X.copy()
    holes[1, 3] = np.nan
    with pytest.raises(ValueError, match=r"series 1 has 1 NaN/inf values \(first at position 3\)"):
        ts(wave).fit(holes, y)
    kept = holes.copy()
    clf = ts(wave, missing="interpolate").fit(holes, y)
    np.testing.assert_array_equal(holes, kept)  # the user's array is untouched (NaN still there)
    assert np.isfinite(clf.predict_proba(holes)).all()
    with pytest.raises(ValueError, match="missing must be 'error' or 'interpolate', got 'drop'"):
        ts(wave, missing="drop").fit(X, y)


@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (np.zeros((4, 2, 8)), ValueError, r"X must be \(n_series, length\).*got shape \(4, 2, 8\)"),
        (np.zeros((0, 32)), ValueError, "X is empty"),
        ([], ValueError, "X is empty"),
        ("abc", TypeError, "X must be an array"),
        ([[1.0, 2.0], []], ValueError, "series 1 is empty"),
    ],
)
def test_bad_series(X: Any, error: type[Exception], match: str, wave: TinyWaveformBackbone) -> None:
    with pytest.raises(error, match=match):
        ts(wave).fit(X, [0, 1, 0, 1][: len(X)] if len(X) else [])


def test_bad_labels(wave: TinyWaveformBackbone, series: Any) -> None:
    X, y = series
    with pytest.raises(ValueError, match="X has 24 samples but y has 23 labels"):
        ts(wave).fit(X, y[:-1])
    with pytest.raises(ValueError, match=r"need at least 2 classes to train a classifier, got \['sine'\]"):
        ts(wave).fit(X, ["sine"] * 24)
    with pytest.raises(ValueError, match=r"y must be one label per sample \(1-D\), got shape \(24, 1\)"):
        ts(wave).fit(X, y[:, None])
    with pytest.raises(ValueError, match="y contains NaN labels"):
        ts(wave).fit(X[:3], [0.0, 1.0, np.nan])


def test_predict_on_another_length_is_an_error(wave: TinyWaveformBackbone, series: Any) -> None:
    X, y = series
    clf = ts(wave).fit(X, y)
    with pytest.raises(ValueError, match="length 20, but the classifier was fitted on length 32"):
        clf.predict(X[:, :20])


def test_unknown_names_and_settings(wave: TinyWaveformBackbone, series: Any) -> None:
    X, y = series
    with pytest.raises(ValueError, match=r"mapping must be one of .*got 'lm'"):
        ts(wave, mapping="lm").fit(X, y)
    with pytest.raises(ValueError, match=r"program must be one of .*got 'inside'"):
        ts(wave, program="inside").fit(X, y)
    with pytest.raises(ValueError, match=r"validation_fraction must be in \[0, 1\), got 1.0"):
        ts(wave, validation_fraction=1.0).fit(X, y)


def test_more_target_classes_than_sources_suggests_many_to_one_or_linear(wave: TinyWaveformBackbone) -> None:
    X, _ = sines_and_squares(13, 32)
    y13 = np.repeat(np.arange(13), 2)
    with pytest.raises(ValueError, match=r"T=13 target classes.*only S=12.*LinearHead \('linear'\)"):
        ts(wave, mapping="flm").fit(X, y13)
    y7 = np.arange(26) % 7
    with pytest.raises(ValueError, match=r"many-to-one mapping with fewer sources_per_class \(at most 1\)"):
        ts(wave, mapping="random", sources_per_class=2).fit(X, y7)
    # the suggested ways out work
    assert ts(wave, mapping="linear").fit(X, y13).predict_proba(X).shape == (26, 13)
    assert ts(wave, mapping="blm", program="none").fit(X, y13).predict_proba(X).shape == (26, 13)


def test_embedding_backbone_with_a_label_mapping_is_an_error(
    wave_embedding: TinyWaveformEmbeddingBackbone, series: Any
) -> None:
    X, y = series
    with pytest.raises(ValueError, match=r"needs a classifier backbone.*output_kind='embedding'"):
        ts(wave_embedding, mapping="ilm").fit(X, y)


def test_language_backbone_is_a_clear_error(tiny_bert: Any, series: Any) -> None:
    X, y = series
    with pytest.raises(ValueError, match=r"needs a waveform .* or image .* backbone"):
        ts(tiny_bert).fit(X, y)


# == AudioClassifier ========================================================================================
def test_audio_arrays_fit_predict_and_learn(wave: TinyWaveformBackbone) -> None:
    clips, labels = tones(8)
    before = state_snapshot(wave)
    clf = audio(wave, epochs=3, lr=0.05)
    assert clf.fit(clips, labels) is clf
    assert_unchanged(wave, before)
    proba = clf.predict_proba(clips)
    assert proba.shape == (16, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert clf.classes_.tolist() == ["high", "low"]
    assert set(clf.predict(clips)) <= {"high", "low"}
    assert (clf.predict(clips) == labels).mean() >= 0.9  # chance is 0.5
    # 256 program samples and a 12 -> 2 linear head
    assert clf.num_trainable() == WAVE_LEN + N_SOURCES * 2 + 2


def test_audio_real_fsdd_recordings(wave: TinyWaveformBackbone) -> None:
    paths = [require_data(f"audio/fsdd/recordings/{d}_george_{i}.wav") for d in (0, 1) for i in range(4)]
    digits = [0, 0, 0, 0, 1, 1, 1, 1]
    clf = AudioClassifier(backbone=wave, **FAST).fit(paths, digits)  # files carry their rate (8 kHz)
    assert clf.classes_.tolist() == [0, 1] and clf.classes_.dtype.kind == "i"
    proba = clf.predict_proba([str(p) for p in paths[:3]])
    assert proba.shape == (3, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert set(clf.predict(paths)) <= {0, 1}


@pytest.mark.parametrize("program", ["full", "none"])
@pytest.mark.parametrize("mapping", MAPPINGS)
def test_audio_every_mapping_and_program_runs(mapping: str, program: str, wave: TinyWaveformBackbone) -> None:
    clips, labels = tones(6)
    clf = audio(wave, mapping=mapping, program=program, max_steps=2).fit(clips, labels)
    assert clf.predict_proba(clips).shape == (12, 2)
    expected = (WAVE_LEN if program == "full" else 0) + (N_SOURCES * 2 + 2 if mapping == "linear" else 0)
    assert clf.num_trainable() == expected
    if expected == 0:
        assert clf.history_.stopped == "nothing to train"


def test_audio_embedding_backbone_takes_a_linear_head_only(
    wave_embedding: TinyWaveformEmbeddingBackbone,
) -> None:
    clips, labels = tones(6)
    clf = audio(wave_embedding, mapping="linear", program="none", epochs=3, lr=0.05).fit(clips, labels)
    assert clf.num_trainable() == 16 * 2 + 2  # a linear probe on the 16-wide embedding
    assert clf.predict_proba(clips).shape == (12, 2)
    with pytest.raises(ValueError, match="label mapping needs a classifier backbone"):
        audio(wave_embedding, mapping="flm").fit(clips, labels)


def test_audio_determinism_and_save_load(wave: TinyWaveformBackbone, tmp_path: Path) -> None:
    clips, labels = tones(6)
    a = audio(wave, mapping="blm", epochs=2, random_state=1).fit(clips, labels)
    b = audio(wave, mapping="blm", epochs=2, random_state=1).fit(clips, labels)
    np.testing.assert_array_equal(a.predict_proba(clips), b.predict_proba(clips))
    a.save(tmp_path / "audio")
    loaded = AudioClassifier.load(tmp_path / "audio", backbone=wave)
    np.testing.assert_array_equal(loaded.predict_proba(clips), a.predict_proba(clips))
    assert torch.equal(parts(loaded).head.omega, parts(a).head.omega)
    assert loaded.sample_rate == 8000 and loaded.classes_.tolist() == ["high", "low"]
    with pytest.raises(CheckpointError, match="holds a 'AudioClassifier', expected a TimeSeriesClassifier"):
        TimeSeriesClassifier.load(tmp_path / "audio", backbone=wave)


def test_audio_params_and_clone(wave: TinyWaveformBackbone) -> None:
    clips, _ = tones(6)
    clf = audio(wave)
    assert clf.get_params()["sample_rate"] == 8000 and clf.get_params()["backbone"] is wave
    twin = clone(clf.set_params(mapping="flm"))
    assert twin.mapping == "flm" and twin.sample_rate == 8000
    with pytest.raises(NotFittedError):
        twin.predict_proba(clips)


def test_audio_cross_val_score_and_grid_search(wave: TinyWaveformBackbone) -> None:
    clips, labels = tones(8)
    majority = majority_per_fold(labels)  # 0.5 and 0.5: each fold tests 4 low and 4 high tones
    # the settings that learn in test_audio_arrays_fit_predict_and_learn, scored on the unseen fold
    scores = cross_val_score(audio(wave, epochs=3, lr=0.05), np.array(clips), labels, cv=2)  # (N, T): N clips
    assert scores.shape == (2,) and (scores > majority + 0.25).all()  # measured 1.0 and 1.0
    # lr 1e-6 cannot move the program or the head in 3 epochs; lr 0.05 learns, with or without the program
    grid = {"program": ["full", "none"], "lr": [1e-6, 0.05]}
    search = GridSearchCV(audio(wave, epochs=3), grid, cv=2, refit=False).fit(clips, labels)
    params, mean = search.cv_results_["params"], search.cv_results_["mean_test_score"]
    assert [(p["lr"], p["program"]) for p in params] == [
        (1e-6, "full"),
        (1e-6, "none"),
        (0.05, "full"),
        (0.05, "none"),
    ]
    assert mean[2:].min() > mean[:2].max() + 0.5  # measured 1.0, 1.0 against 0.25, 0.25
    assert search.best_params_ == params[int(np.argmax(mean))]
    assert search.best_params_["lr"] == 0.05


def test_audio_bad_input(wave: TinyWaveformBackbone) -> None:
    clips, labels = tones(3)
    with pytest.raises(TypeError, match=r"got a single path 'clip\.wav'"):
        audio(wave).fit("clip.wav", labels)
    with pytest.raises(ValueError, match=r"sample.rate"):
        AudioClassifier(backbone=wave, **FAST).fit(clips, labels)
    with pytest.raises(TypeError, match=r"clip 1 has dtype torch\.int16"):
        audio(wave).fit([clips[0], (clips[1] * 1000).astype(np.int16)], labels[:2])
    with pytest.raises(ValueError, match=r"clip 0 must be a 1-D array of samples, got shape \(2, 200\)"):
        audio(wave).fit([np.stack([clips[0], clips[1]])], ["a"])
    with pytest.raises(ValueError, match="no clips given"):
        audio(wave).fit([], [])
    with pytest.raises(ValueError, match="X has 6 samples but y has 5 labels"):
        audio(wave).fit(clips, labels[:5])
    with pytest.raises(ValueError, match="program must be 'full' or 'none', got 'outside'"):
        audio(wave, program="outside").fit(clips, labels)
    with pytest.raises(ValueError, match=r"mapping must be one of .*got 'bayes'"):
        audio(wave, mapping="bayes").fit(clips, labels)


def test_audio_missing_file_and_image_backbone(wave: TinyWaveformBackbone, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.wav"):
        audio(wave).fit([tmp_path / "missing.wav"], [0])

    class ImageBackbone(FrozenBackbone):
        input_kind = "image"
        image_size = 8

    clips, labels = tones(2)
    with pytest.raises(ValueError, match="takes 'image' input; audio needs a waveform"):
        audio(ImageBackbone("pictures")).fit(clips, labels)


def test_audio_missing_rate_names_the_estimators_parameter(wave: TinyWaveformBackbone) -> None:
    clips, labels = tones(2)
    with pytest.raises(ValueError, match="sample_rate="):
        AudioClassifier(backbone=wave, **FAST).fit(clips, labels)


def test_score_rejects_a_label_seen_only_at_predict_time(wave: TinyWaveformBackbone) -> None:
    X, y = sines_and_squares(n_per_class=8, length=32)
    clf = TimeSeriesClassifier(backbone=wave, mapping="linear", epochs=1, batch_size=8).fit(X, y)
    accuracy = clf.score(X, y)
    assert accuracy == np.mean(clf.predict(X) == y)
    majority = np.unique(y, return_counts=True)[1].max() / len(y)  # 0.5: 8 sines, 8 squares
    assert accuracy > majority + 0.25  # measured 1.0 on these 16 series (12 trained on, 4 validation)
    unseen = np.array(y, dtype=object)
    unseen[0] = "never-seen"
    with pytest.raises(ValueError, match=r"labels never seen in training: \['never-seen'\]"):
        clf.score(X, unseen)


def test_black_box_training_counts_every_query_and_leaves_the_white_box_model(
    wave: TinyWaveformBackbone, series: tuple[np.ndarray, np.ndarray]
) -> None:
    from xdomain.backbones.black_box import BlackBoxBackbone

    X, y = series  # 24 series: 19 train, 5 validation
    before = state_snapshot(wave)
    clf = TimeSeriesClassifier(
        backbone=wave, mapping="flm", black_box=True, directions=3, epochs=1, batch_size=8,
        validation_fraction=0.2,
    ).fit(X, y)
    # the mapping fit sees the 19 training series once; each of the 3 steps (8, 8, 3 series) sends
    # (directions + 1) perturbed copies; the validation at the end of the epoch sends the 5 held out
    assert clf.queries_ == 19 + 4 * (8 + 8 + 3) + 5
    assert not isinstance(clf.model_.backbone, BlackBoxBackbone)
    assert clf.predict_proba(X).shape == (24, 2)
    assert_unchanged(wave, before)

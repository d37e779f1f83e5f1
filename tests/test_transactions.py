"""Financial transactions (fraud detection): the column schema, the image and token transforms, the
metrics against scikit-learn's, the TransactionClassifier, the ULB credit-card loader and bad input.

Fast tests run on tiny seeded backbones (a 16 x 16 conv image classifier; the 2-layer random BERT) and a
synthetic frame with numeric and categorical columns (no offline data set has categorical columns); the
real 1,722-row sample (all 492 frauds, 28.6% fraud: NOT the natural 0.17%) is read where the data home
has it, and the real MiniLM runs in one slow test.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from torch import nn

import xdomain
from helpers import assert_unchanged, make_tiny_bert, require_data, state_snapshot
from xdomain.adapters.transactions import FeatureImageTransform, FeatureTokenTransform, TransactionAdapter
from xdomain.backbones.base import FrozenBackbone
from xdomain.datasets.home import DataNotFoundError
from xdomain.datasets.transactions import (
    NATURAL_NORMAL_WEIGHT,
    SAMPLE_FILE,
    TransactionSchema,
    creditcard_splits,
    hour_of_day,
    load_creditcard,
)
from xdomain.estimators.transactions import PixelPassThroughBackbone, TransactionClassifier
from xdomain.training.fraud_metrics import (
    f1_threshold,
    fraud_metrics,
    normal_weights,
    recall_at_fpr,
    report,
    threshold_metrics,
)

FAST: dict[str, Any] = {"epochs": 5, "batch_size": 16, "validation_fraction": 0.25, "lr": 0.01}


class TinyImage(FrozenBackbone):
    """f stand-in: ``(B, 3, 16, 16)`` pixels -> ``(B, 12)`` logits, seeded."""

    input_kind = "image"
    output_kind = "logits"
    num_outputs = 12
    image_size = 16

    def __init__(self, seed: int = 0) -> None:
        super().__init__("tiny-image")
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, kernel_size=3, stride=2)
        self.fc = nn.Linear(8, self.num_outputs)
        self.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return 10 * self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def toy_transactions(n: int = 96, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows in time order: two numeric columns, an ``Amount``, a categorical ``merchant`` (object) and a
    categorical ``channel`` (category dtype); frauds (label 1, every third row) have a high ``a`` and are
    mostly ``web`` purchases."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3 == 0).astype(np.int64)
    a = rng.normal(0, 1, n) + 2.5 * y
    b = rng.normal(0, 1, n)
    merchant = np.where(y == 1, rng.choice(["web", "web", "shop"], n), rng.choice(["shop", "fuel", "web"], n))
    channel = pd.Categorical(rng.choice(["chip", "swipe"], n))
    frame = pd.DataFrame({"a": a, "b": b, "Amount": rng.gamma(2.0, 30.0, n), "merchant": merchant,
                          "channel": channel})
    return frame, y


@pytest.fixture(scope="module")
def image_bb() -> TinyImage:
    return TinyImage()


@pytest.fixture(scope="module")
def toy() -> tuple[pd.DataFrame, np.ndarray]:
    return toy_transactions()


@pytest.fixture(scope="module")
def fitted_image(image_bb: TinyImage, toy: tuple[pd.DataFrame, np.ndarray]) -> TransactionClassifier:
    before = state_snapshot(image_bb)
    clf = TransactionClassifier(backbone=image_bb, route="image", layout="grid", **FAST).fit(*toy)
    assert_unchanged(image_bb, before)
    return clf


@pytest.fixture(scope="module")
def bert(minilm_tokenizer: Any) -> xdomain.LanguageBackbone:
    return make_tiny_bert(minilm_tokenizer)


# -- the column schema ------------------------------------------------------------------------------------
def test_schema_infers_categorical_columns_scales_on_its_rows_and_maps_unseen_levels_to_unknown(
    toy: tuple[pd.DataFrame, np.ndarray],
) -> None:
    frame, _ = toy
    schema = TransactionSchema().fit(frame.iloc[:60])
    assert schema.numeric_columns == ["a", "b", "Amount"]
    assert schema.categorical_columns == ["merchant", "channel"]
    assert schema.levels == {"merchant": ["fuel", "shop", "web"], "channel": ["chip", "swipe"]}
    assert schema.cardinalities == [4, 3]
    np.testing.assert_allclose(schema.mean, frame.iloc[:60][["a", "b", "Amount"]].mean().to_numpy())
    np.testing.assert_allclose(schema.scale, frame.iloc[:60][["a", "b", "Amount"]].std(ddof=0).to_numpy())
    new = pd.DataFrame({"a": [schema.mean[0] + 2 * schema.scale[0]], "b": [0.0], "Amount": [1.0],
                        "merchant": ["casino"], "channel": ["chip"]})
    values, ids = schema.transform(new)
    assert values.dtype == np.float32 and ids.dtype == np.int64
    assert values[0, 0] == pytest.approx(2.0)
    assert ids.tolist() == [[0, 1]]  # unseen "casino": the unknown id 0; "chip": level 1
    assert schema.unknown_counts == {"merchant": 1, "channel": 0}
    # the columns in another order are matched by name
    values2, ids2 = schema.transform(new[["channel", "Amount", "merchant", "b", "a"]])
    np.testing.assert_array_equal(values, values2)
    np.testing.assert_array_equal(ids, ids2)
    again = TransactionSchema.from_dict(schema.to_dict())
    np.testing.assert_array_equal(again.transform(new)[0], values)


def test_schema_takes_categorical_columns_by_name_and_imputes_when_asked() -> None:
    frame = pd.DataFrame({"mcc": [5411, 5411, 7995, 4111], "x": [1.0, np.nan, 3.0, 5.0]})
    schema = TransactionSchema(categorical=["mcc"], missing="impute").fit(frame)
    assert schema.categorical_columns == ["mcc"] and schema.levels["mcc"] == ["4111", "5411", "7995"]
    assert schema.mean == [pytest.approx(3.0)]
    values, ids = schema.transform(pd.DataFrame({"mcc": [7995, None], "x": [np.nan, 3.0]}))
    assert values[:, 0].tolist() == [0.0, 0.0]  # NaN -> the training mean -> 0 once standardised
    assert ids[:, 0].tolist() == [3, 0] and schema.unknown_counts == {"mcc": 0}  # an imputed NaN: not unseen


# -- transforms and the adapter -----------------------------------------------------------------------------
def test_grid_layout_draws_a_hand_worked_row_into_its_cells(image_bb: TinyImage) -> None:
    # 5 features on a 16 x 16 canvas, region 7: a 3 x 3 grid of 2-pixel cells (side 6) from pixel 5
    t = FeatureImageTransform(5, layout="grid", region_size=7).bind(image_bb)
    assert (t.grid, t.cell, t.side, t.top) == (3, 2, 6, 5)
    u = torch.tensor([[0.0, math.log(3.0), -math.log(3.0), 10.0, -10.0]])
    out = t(u)
    assert out.shape == (1, 3, 16, 16)
    expected = {0: 0.5, 1: 0.75, 2: 0.25, 3: 1 / (1 + math.exp(-10)), 4: 1 / (1 + math.exp(10))}
    cells = {0: (5, 5), 1: (5, 7), 2: (5, 9), 3: (7, 5), 4: (7, 7)}  # feature -> (row, col) of its cell
    assert {j: (y0, x0) for j, (y0, _, x0, _) in t.feature_pixels().items()} == cells
    for j, (r, c) in cells.items():
        torch.testing.assert_close(out[0, :, r : r + 2, c : c + 2], torch.full((3, 2, 2), expected[j]))
    # the unused cells (features 5..8 of the grid) and the rest of the canvas carry the program (zeros)
    mask = torch.zeros(16, 16)
    for r, c in cells.values():
        mask[r : r + 2, c : c + 2] = 1
    assert out[0][:, mask == 0].abs().max() == 0
    assert t.data_mask[0].equal(mask)
    # the program is added outside the data cells only, and clamped to [0, 1]
    with torch.no_grad():
        t.program.fill_(0.3)
    out = t(u)
    assert torch.allclose(out[0][:, mask == 0], torch.tensor(0.3))
    torch.testing.assert_close(out[0, :, 5:7, 7:9], torch.full((3, 2, 2), 0.75))


def test_learned_layout_starts_as_the_grid_and_trains(image_bb: TinyImage) -> None:
    grid = FeatureImageTransform(5, layout="grid", region_size=7).bind(image_bb)
    learned = FeatureImageTransform(5, layout="learned", region_size=7, subcells=2).bind(image_bb)
    assert learned.layout_weight.shape == (3 * 6 * 6, 5) and learned.layout_bias.shape == (3 * 36,)
    u = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    cells = grid.data_mask[0] == 1
    torch.testing.assert_close(learned(u)[:, :, cells], grid(u)[:, :, cells])
    # unused cells of the learned map start at sigmoid(0)
    assert torch.allclose(learned(u)[:, :, 9:11, 9:11], torch.tensor(0.5))
    assert int(learned.data_mask.sum()) == 36


def test_adapter_squashes_values_and_one_hot_codes_levels() -> None:
    adapter = TransactionAdapter([3, 2], one_hot=True)
    x = {"values": torch.tensor([[0.0, 20.0]]), "ids": torch.tensor([[2, 0]])}
    z, state = adapter.encode(x)
    assert state is None
    expected = [0.0, math.asinh(20.0), -2.0, -2.0, 2.0, 2.0, -2.0]
    torch.testing.assert_close(z, torch.tensor([expected]))
    tokens, _ = TransactionAdapter([3, 2], one_hot=False).encode(x)
    assert tokens["ids"] is x["ids"] and tokens["values"][0, 1] == pytest.approx(math.asinh(20.0))
    with pytest.raises(ValueError, match=r"ids in \[0, 2\].*got|expected ids in \[0, 2\]"):
        adapter.encode({"values": torch.zeros(1, 2), "ids": torch.tensor([[3, 0]])})


def test_token_transform_builds_each_feature_token_by_hand(bert: Any) -> None:
    t = FeatureTokenTransform(2, [3], names=["Amount", "V1", "merchant"], seed=0).bind(bert)
    assert t.value_embedding.shape == (2, 32) and t.level_embedding.shape == (3, 32)
    x = {"values": torch.tensor([[0.5, -2.0]]), "ids": torch.tensor([[2]])}
    out = t(x)
    assert out.shape == (1, 3, 32)
    e, p, table = t.value_embedding, t.field_embedding, t.level_embedding
    torch.testing.assert_close(out[0, 0], 0.5 * e[0] + p[0])
    torch.testing.assert_close(out[0, 1], -2.0 * e[1] + p[1])
    torch.testing.assert_close(out[0, 2], table[2] + p[2])
    # the field embedding of "Amount" starts as the mean word embedding of its tokens
    ids = bert.token_ids("Amount")
    torch.testing.assert_close(p[0].detach(), bert.word_embeddings[torch.tensor(ids)].mean(0))
    assert t.value_embedding.data_ptr() != bert.word_embeddings.data_ptr()


# -- metrics -------------------------------------------------------------------------------------------------
Y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0])
S = np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.4, 0.3, 0.2, 0.1])


def test_metrics_agree_with_scikit_learn_and_a_hand_worked_case() -> None:
    m = fraud_metrics(Y, S)
    assert m["auprc"] == pytest.approx(average_precision_score(Y, S))
    assert m["auprc"] == pytest.approx((1 / 1 + 2 / 3 + 3 / 6) / 3)  # precision at each fraud's rank
    assert m["auroc"] == pytest.approx(roc_auc_score(Y, S))
    # natural prevalence: each normal weighted 3 times equals the data with every normal repeated 3 times
    w3 = fraud_metrics(Y, S, normal_weight=3.0)["auprc_natural"]
    rep_y = np.concatenate([Y[Y == 1], np.repeat(Y[Y == 0], 3)])
    rep_s = np.concatenate([S[Y == 1], np.repeat(S[Y == 0], 3)])
    assert w3 == pytest.approx(average_precision_score(rep_y, rep_s))
    assert normal_weights([0, 1]).tolist() == [NATURAL_NORMAL_WEIGHT, 1.0]
    # 7 normals: FPR 0 allows the first fraud only (1/3); FPR <= 1/7 the first two (one normal above)
    assert recall_at_fpr(Y, S, 0.01) == pytest.approx(1 / 3)
    assert recall_at_fpr(Y, S, 0.15) == pytest.approx(2 / 3)
    assert m["recall_at_1pct_fpr"] == pytest.approx(1 / 3) and m["recall_at_5pct_fpr"] == pytest.approx(1 / 3)
    amount = np.array([100.0, 1, 50, 1, 1, 10, 1, 1, 1, 1])
    t = threshold_metrics(Y, S, 0.65, amount)  # flags 0.9, 0.8, 0.7: two frauds, one normal
    assert t["precision"] == pytest.approx(2 / 3) and t["recall"] == pytest.approx(2 / 3)
    assert t["fraud_amount_caught"] == 150.0 and t["fraud_amount_share"] == pytest.approx(150 / 160)


def test_f1_threshold_and_bootstrap_intervals() -> None:
    # F1 over the cuts: 0.5 (top 1), 0.4, 0.667 (top 3), 0.571, 0.5, 0.667 (top 6) ...: the first best cut
    threshold = f1_threshold(Y, S)
    assert threshold == pytest.approx((0.7 + 0.6) / 2)
    assert threshold_metrics(Y, S, threshold)["f1"] == pytest.approx(2 / 3)
    a = report(Y, S, threshold, n_bootstrap=40, seed=1)
    b = report(Y, S, threshold, n_bootstrap=40, seed=1)
    assert a == b
    lo, hi = a["auprc_ci"]
    assert lo <= a["auprc"] <= hi and lo < hi
    with pytest.raises(ValueError, match=r"both classes.*got the labels \[0\]"):
        fraud_metrics(np.zeros(4), np.arange(4.0))


# -- the estimator -------------------------------------------------------------------------------------------
def test_fit_learns_chooses_its_threshold_on_validation_and_predict_uses_it(
    fitted_image: TransactionClassifier, toy: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, y = toy
    clf = fitted_image
    assert clf.classes_.tolist() == [0, 1] and clf.validation_rows_ == 24
    assert list(clf.feature_names_in_) == list(frame.columns) and clf.n_features_in_ == 5
    # the schema was fitted on the 72 training rows only (the last 24 validate)
    np.testing.assert_allclose(clf.schema_.mean[0], frame["a"].iloc[:72].mean())
    proba = clf.predict_proba(frame)
    assert proba.shape == (96, 2) and np.allclose(proba.sum(1), 1.0, atol=1e-6)
    pred = clf.predict(frame)
    np.testing.assert_array_equal(pred, (proba[:, 1] >= clf.decision_threshold_).astype(int))
    val_scores = proba[72:, 1]
    assert clf.decision_threshold_ == pytest.approx(f1_threshold(y[72:], val_scores), abs=1e-6)
    assert average_precision_score(y, proba[:, 1]) > 0.6  # 1/3 would be no skill
    np.testing.assert_array_equal(clf.decision_function(frame), proba[:, 1])
    # grid layout: the program (3 x 16 x 16) and a linear head on 12 standardised logits
    assert clf.num_trainable() == 3 * 16 * 16 + 12 * 2 + 2


def test_balanced_class_weights_give_each_class_half_the_loss(toy: tuple[pd.DataFrame, np.ndarray]) -> None:
    _, y = toy
    clf = TransactionClassifier()
    w = clf._row_weights(y, np.arange(72))
    assert w[y == 1][0] == pytest.approx(72 / (2 * 24)) and w[y == 0][0] == pytest.approx(72 / (2 * 48))
    assert w[:72][y[:72] == 1].sum() == pytest.approx(w[:72][y[:72] == 0].sum())
    clf.classes_ = np.array([0, 1])
    clf.class_weight = {1: 5.0}
    assert clf._row_weights(y, np.arange(72))[:3].tolist() == [5.0, 1.0, 1.0]


def test_same_seed_same_result_save_load_identical_and_columns_reordered(
    fitted_image: TransactionClassifier, image_bb: TinyImage, toy: tuple[pd.DataFrame, np.ndarray],
    tmp_path: Path,
) -> None:
    frame, y = toy
    again = clone(fitted_image).fit(frame, y)
    np.testing.assert_array_equal(again.predict_proba(frame), fitted_image.predict_proba(frame))
    fitted_image.save(tmp_path / "ckpt")
    loaded = xdomain.load(tmp_path / "ckpt", backbone=image_bb)
    assert type(loaded) is TransactionClassifier
    np.testing.assert_array_equal(loaded.predict_proba(frame), fitted_image.predict_proba(frame))
    assert loaded.decision_threshold_ == fitted_image.decision_threshold_
    np.testing.assert_array_equal(loaded.predict(frame[frame.columns[::-1]]), fitted_image.predict(frame))


def test_a_class_weight_dict_survives_save_and_load(
    image_bb: TinyImage, toy: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    """A dict is no JSON parameter: it is saved as (label, weight) pairs and comes back as the same dict,
    so the loaded estimator refits with the weights it was given (not silently unweighted)."""
    frame, y = toy
    weights = {np.int64(0): 1.0, np.int64(1): 4.0}
    clf = TransactionClassifier(backbone=image_bb, class_weight=weights, **FAST).fit(frame, y)
    clf.save(tmp_path / "weighted")
    loaded = xdomain.load(tmp_path / "weighted", backbone=image_bb)
    assert loaded.get_params()["class_weight"] == {0: 1.0, 1: 4.0}
    assert clf.get_params()["class_weight"] is weights  # the user's dict is not replaced
    np.testing.assert_array_equal(loaded._row_weights(y, np.arange(72)), clf._row_weights(y, np.arange(72)))


def test_learned_layout_and_label_mapping_fit_and_round_trip(
    image_bb: TinyImage, toy: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    frame, y = toy
    before = state_snapshot(image_bb)
    clf = TransactionClassifier(backbone=image_bb, layout="learned", head="ilm", **FAST).fit(frame, y)
    assert_unchanged(image_bb, before)
    n_features = 3 + 4 + 3  # numeric, then merchant and channel one-hot with the unknown id
    side = 4 * math.ceil(math.sqrt(n_features))
    assert clf.num_trainable() == 3 * 16 * 16 + 3 * side * side * (n_features + 1)
    clf.save(tmp_path / "m")
    np.testing.assert_array_equal(xdomain.load(tmp_path / "m", backbone=image_bb).predict_proba(frame),
                                  clf.predict_proba(frame))


def test_token_route_fits_leaves_the_language_model_bit_for_bit_and_counts_unknown_levels(
    bert: Any, toy: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    frame, y = toy
    before = state_snapshot(bert)
    clf = TransactionClassifier(backbone=bert, route="tokens", **FAST).fit(frame, y)
    assert_unchanged(bert, before)
    # value and field embeddings, the two categorical tables (4 + 3 rows), the head on 32 features
    assert clf.num_trainable() == 3 * 32 + 5 * 32 + 7 * 32 + 32 * 2 + 2
    assert average_precision_score(y, clf.predict_proba(frame)[:, 1]) > 0.5
    new = frame.head(4).assign(merchant=["casino", "web", "casino", "lottery"])
    with pytest.warns(UserWarning, match=r"unknown token: \{'merchant': 3\}"):
        clf.predict_proba(new)
    assert clf.unknown_levels_ == {"merchant": 3, "channel": 0}
    clf.save(tmp_path / "tok")
    loaded = xdomain.load(tmp_path / "tok", backbone=bert)
    np.testing.assert_array_equal(loaded.predict_proba(frame), clf.predict_proba(frame))


def test_the_no_backbone_ablation_reads_the_programmed_image(toy: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, y = toy
    by_name = TransactionClassifier(backbone="none")._backbone()
    assert isinstance(by_name, PixelPassThroughBackbone) and by_name.image_size == 224
    # a 32 x 32 canvas keeps the test fast
    clf = TransactionClassifier(backbone=PixelPassThroughBackbone(32), layout="grid", **FAST)
    clf.fit(frame, y)
    # the grid program over the canvas and a linear head on its 3 * 32 * 32 pixels
    assert clf.num_trainable() == 3 * 32 * 32 + (3 * 32 * 32) * 2 + 2
    assert average_precision_score(y, clf.predict_proba(frame)[:, 1]) > 0.6


def test_clone_pipeline_and_grid_search(image_bb: TinyImage, toy: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, y = toy
    est = TransactionClassifier(backbone=image_bb, **{**FAST, "epochs": 1})
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin.backbone is image_bb
    pipe = Pipeline([("clf", est)]).fit(frame, y)
    assert pipe.predict(frame).shape == (96,)
    search = GridSearchCV(est, {"lr": [0.001, 0.01]}, cv=2, scoring="average_precision").fit(frame, y)
    assert search.best_params_["lr"] in (0.001, 0.01)
    assert search.predict_proba(frame).shape == (96, 2)


# -- bad input: a clear error naming the value, and nothing the caller gave is modified ---------------------
def _bad_fit(frame: pd.DataFrame, y: Any, match: str, **params: Any) -> None:
    copy_f, copy_y = frame.copy(deep=True), np.array(y, copy=True)
    est = TransactionClassifier(backbone=TinyImage(), **{**FAST, **params})
    with pytest.raises(ValueError, match=match):
        est.fit(frame, y)
    pd.testing.assert_frame_equal(frame, copy_f)
    np.testing.assert_array_equal(np.asarray(y), copy_y)
    assert not hasattr(est, "model_")


def test_bad_training_input_is_a_clear_error(toy: tuple[pd.DataFrame, np.ndarray]) -> None:
    frame, y = toy
    _bad_fit(frame, np.zeros(96, dtype=int), r"exactly 2 classes.*got 1: \[0\]")
    _bad_fit(frame, np.arange(96) % 3, r"exactly 2 classes.*got 3: \[0, 1, 2\]")
    _bad_fit(frame.iloc[:0], y[:0], r"X is empty \(0 rows")
    bad = frame.astype({"b": object})
    bad.loc[5, "b"] = "12,5"
    _bad_fit(bad, y, r"numeric column 'b' holds a value that is not a number: '12,5' at row 5",
             categorical=["merchant", "channel"])
    nan = frame.copy()
    nan.loc[[3, 7], "a"] = np.nan
    _bad_fit(nan, y, r"numeric column 'a' holds NaN at row\(s\) \[3, 7\].*missing='impute'")
    _bad_fit(frame, y[:-1], r"X has 96 rows but y has 95 labels")
    _bad_fit(frame, y, r"route must be one of \['image', 'tokens'\], got 'pixels'", route="pixels")
    _bad_fit(frame, y, r"threshold must be 'f1' or a number in \(0, 1\), got 2", threshold=2)
    _bad_fit(frame, np.where(np.arange(96) < 72, y, 0), r"validation part.*holds only one class")
    # NaN with the explicit imputation option trains
    TransactionClassifier(backbone=TinyImage(), missing="impute", **{**FAST, "epochs": 1}).fit(nan, y)


def test_bad_prediction_input_is_a_clear_error(
    fitted_image: TransactionClassifier, toy: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, _ = toy
    cases = [
        (frame.drop(columns="b"), r"missing \['b'\], extra \[\]"),
        (frame.assign(extra=1.0), r"missing \[\], extra \['extra'\]"),
        (frame.iloc[:0], r"the frame is empty \(0 rows\)"),
        (frame.assign(a=frame["a"].astype(object).where(frame.index != 2, "n/a")),
         r"numeric column 'a' holds a value that is not a number: 'n/a' at row 2"),
        (frame.assign(a=np.where(frame.index == 4, np.nan, frame["a"])),
         r"column 'a' holds NaN at row\(s\) \[4\]"),
    ]
    for bad, match in cases:
        copy = bad.copy(deep=True)
        with pytest.raises(ValueError, match=match):
            fitted_image.predict_proba(bad)
        pd.testing.assert_frame_equal(bad, copy)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        TransactionClassifier().predict(frame)


# -- the ULB credit-card data ------------------------------------------------------------------------------
def test_the_sample_loads_without_its_index_column_and_splits_in_time_order() -> None:
    require_data(SAMPLE_FILE)
    frame = load_creditcard("sample")
    assert frame.shape == (1722, 31) and list(frame.columns)[:2] == ["Time", "V1"]
    assert int(frame["Class"].sum()) == 492
    assert frame.attrs["natural_normal_weight"] == pytest.approx(231.15, abs=0.01)
    assert "NOT the natural 0.17%" in frame.attrs["note"]
    splits = creditcard_splits(frame)
    assert splits.summary() == {"train": {"rows": 1033, "frauds": 352},
                                "validation": {"rows": 344, "frauds": 63},
                                "test": {"rows": 345, "frauds": 77}}
    assert splits.train["Time"].max() <= splits.validation["Time"].min()
    assert splits.validation["Time"].max() <= splits.test["Time"].min()
    X, y, amount = splits.features("test")
    assert "Time" not in X and "Class" not in X and list(X.columns)[-1] == "Amount" and len(y) == 345
    np.testing.assert_array_equal(amount, splits.test["Amount"].to_numpy())
    fit_X, _, frac = splits.fit_part()
    assert len(fit_X) == 1377 and round(frac * len(fit_X)) == 344
    strat = creditcard_splits(frame, split="stratified", seed=0, hour=True)
    rates = [p["frauds"] / p["rows"] for p in strat.summary().values()]
    assert max(rates) - min(rates) < 0.01
    assert "hour" in strat.features("train")[0]
    assert hour_of_day([0, 3600 * 25.5]).tolist() == [0.0, 1.5]


def test_missing_files_say_where_to_put_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataNotFoundError, match=r"creditcard_sample.csv.*" + str(tmp_path)):
        load_creditcard("sample", tmp_path)
    monkeypatch.setenv("XDOMAIN_OFFLINE", "1")
    with pytest.raises(DataNotFoundError, match=r"creditcard.csv.*get it from https://"):
        load_creditcard("full", tmp_path)
    with pytest.raises(ValueError, match=r"source must be one of \['sample', 'full'\], got 'kaggle'"):
        load_creditcard("kaggle", tmp_path)


@pytest.mark.slow
def test_the_real_sample_through_minilm_tokens_beats_no_skill() -> None:
    """The 1,722-row sample (28.6% fraud, not the natural 0.17%), time-ordered split, MiniLM, one epoch."""
    require_data(SAMPLE_FILE)
    splits = creditcard_splits(load_creditcard("sample"))
    X, y, frac = splits.fit_part()
    X_te, y_te, amount = splits.features("test")
    backbone = xdomain.load_backbone("minilm")
    before = state_snapshot(backbone)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = TransactionClassifier(backbone=backbone, route="tokens", epochs=1, validation_fraction=frac)
        clf.fit(X, y)
    assert_unchanged(backbone, before)
    scores = clf.predict_proba(X_te)[:, 1]
    m = fraud_metrics(y_te, scores, clf.decision_threshold_, amount)
    assert m["auprc"] > 0.6, m  # no skill: the test part's fraud rate, 77 / 345 = 0.22
    assert m["auroc"] > 0.8, m


@pytest.mark.slow
def test_the_default_backbone_is_saved_by_name_and_loads_without_being_given(
    toy: tuple[pd.DataFrame, np.ndarray], tmp_path: Path
) -> None:
    """backbone=None (the route's default, EfficientNet-Lite0) is recorded as its name: xdomain.load rebuilds
    it from the bundled weights."""
    frame, y = toy[0].head(24), toy[1][:24]  # EfficientNet-Lite0 costs about 0.1 s a row on a CPU core
    clf = TransactionClassifier(route="image", epochs=1, max_steps=1, batch_size=8).fit(frame, y)
    clf.save(tmp_path / "default")
    loaded = xdomain.load(tmp_path / "default")
    assert loaded.get_params()["backbone"] == "efficientnet-lite0"
    np.testing.assert_array_equal(loaded.predict_proba(frame.head(6)), clf.predict_proba(frame.head(6)))

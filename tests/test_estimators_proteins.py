"""ProteinClassifier, ProteinRegressor (R2DL) and AntibodyInfiller (ReprogBERT) as scikit-learn estimators.

Every test runs on a tiny random ``BertForMaskedLM`` (2 layers, hidden 32, MiniLM's vocabulary) wrapped as a
frozen :class:`~xdomain.backbones.masked_lm.MaskedLanguageBackbone` and passed as an instance, so no
pretrained weights load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from helpers import (
    assert_unchanged,
    charged_peptides,
    make_tiny_bert,
    make_tiny_masked_lm,
    state_snapshot,
    toy_antibodies,
)
from xdomain.adapters.protein import AMINO_ACIDS, PROTEIN_VOCAB
from xdomain.baselines.position_frequency import position_frequency_infill
from xdomain.checkpoint import CheckpointError
from xdomain.datasets.sequences import write_fasta
from xdomain.estimators.antibodies import AntibodyInfiller
from xdomain.estimators.proteins import ProteinClassifier, ProteinRegressor
from xdomain.heads.label_mapping import random_assignment
from xdomain.heads.vocab_label_mapping import VocabLabelMappingHead
from xdomain.training.metrics import diversity

FAST: dict[str, Any] = {"epochs": 1, "batch_size": 8, "validation_fraction": 0.0}
N_TOKENS = len(PROTEIN_VOCAB)  # 28: <pad>, 20 residues, 6 IUPAC codes, <mask>
HEADS = ("linear", "label-mapping")
H3 = slice(18, 24)  # where toy_antibodies puts CDR-H3 in each 28-residue chain


@pytest.fixture(scope="module")
def lm(minilm_tokenizer: Any) -> Any:
    return make_tiny_masked_lm(minilm_tokenizer)


@pytest.fixture(scope="module")
def vocab(lm: Any) -> int:
    return int(lm.vocab_size)


@pytest.fixture(scope="module")
def peptides() -> tuple[list[str], np.ndarray]:
    return charged_peptides(12)


@pytest.fixture(scope="module")
def antibodies() -> tuple[list[str], list[str]]:
    return toy_antibodies(16)


@pytest.fixture(scope="module")
def infiller(lm: Any, antibodies: Any) -> AntibodyInfiller:
    """Fitted once for the read-only tests (infill, evaluate)."""
    chains, masks = antibodies
    return AntibodyInfiller(backbone=lm, **{**FAST, "epochs": 3, "lr": 1e-2}).fit(chains, masks)


def parts(est: Any) -> Any:
    """The fitted Reprogrammer of an estimator, typed loosely: its parts are reached by attribute."""
    return est.model_


def pc(lm: Any, **kw: Any) -> ProteinClassifier:
    return ProteinClassifier(backbone=lm, **{**FAST, **kw})


def pr(lm: Any, **kw: Any) -> ProteinRegressor:
    return ProteinRegressor(backbone=lm, **{**FAST, **kw})


def basic_count(seqs: list[str]) -> np.ndarray:
    return np.array([s.count("K") + s.count("R") for s in seqs], dtype=np.float64)


# == ProteinClassifier ======================================================================================
@pytest.mark.parametrize("head", HEADS)
def test_classifier_fit_predict_shapes_and_trainable_parts(
    head: str, lm: Any, vocab: int, peptides: Any
) -> None:
    X, y = peptides
    clf = pc(lm, head=head)
    assert clf.fit(X, y) is clf
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 2) and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert clf.classes_.tolist() == [0, 1] and clf.classes_.dtype.kind == "i"
    pred = clf.predict(X)
    assert pred.shape == (24,) and set(pred.tolist()) <= {0, 1}
    # theta (28 x V) always; a 32 -> 2 linear head, or nothing trained for the label mapping (a buffer)
    assert clf.num_trainable() == N_TOKENS * vocab + (32 * 2 + 2 if head == "linear" else 0)
    if head == "label-mapping":
        assert isinstance(parts(clf).head, VocabLabelMappingHead)


def test_classifier_string_labels_stay_strings(lm: Any, peptides: Any) -> None:
    X, y = peptides
    names = np.where(y == 1, "basic", "acidic")  # sorted: acidic (0), basic (1), as the ints
    by_name = pc(lm).fit(X, list(names))
    assert by_name.classes_.tolist() == ["acidic", "basic"] and by_name.classes_.dtype.kind == "U"
    assert set(by_name.predict(X).tolist()) <= {"acidic", "basic"}
    np.testing.assert_array_equal(by_name.predict_proba(X), pc(lm).fit(X, y).predict_proba(X))


@pytest.mark.parametrize("head", HEADS)
def test_classifier_learns_charge(head: str, lm: Any, peptides: Any) -> None:
    X, y = peptides
    clf = pc(lm, head=head, epochs=3, lr=1e-2).fit(X, y)
    assert (clf.predict(X) == y).mean() >= 0.85  # chance is 0.5


@pytest.mark.parametrize("head", HEADS)
def test_classifier_backbone_bit_for_bit_unchanged(head: str, lm: Any, peptides: Any) -> None:
    X, y = peptides
    before = state_snapshot(lm)
    clf = pc(lm, head=head, epochs=2, lr=1e-2).fit(X, y)
    assert_unchanged(lm, before)
    theta = parts(clf).transform.theta
    untrained: Any = pc(lm, head=head)._build_model(2)
    fresh = untrained.transform.theta  # the same seeded start
    assert theta.requires_grad and not torch.equal(theta, fresh)


@pytest.mark.parametrize("head", HEADS)
def test_classifier_determinism_and_save_load(head: str, lm: Any, peptides: Any, tmp_path: Path) -> None:
    X, y = peptides
    a = pc(lm, head=head, epochs=2, random_state=4).fit(X, y)
    b = pc(lm, head=head, epochs=2, random_state=4).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    a.save(tmp_path / "clf")
    loaded = ProteinClassifier.load(tmp_path / "clf", backbone=lm)
    np.testing.assert_array_equal(loaded.predict_proba(X), a.predict_proba(X))
    assert loaded.head == head and loaded.classes_.tolist() == [0, 1]
    if head == "label-mapping":
        omega = parts(a).head.mapping.omega
        assert torch.equal(parts(loaded).head.mapping.omega, omega)
        # R2DL's mapping: 10 vocabulary entries per class, seeded by random_state
        assert torch.equal(omega, random_assignment(int(lm.vocab_size), 2, 10, 4).float() / 10)
    with pytest.raises(CheckpointError, match="holds a 'ProteinClassifier', expected a ProteinRegressor"):
        ProteinRegressor.load(tmp_path / "clf", backbone=lm)
    with pytest.raises(CheckpointError, match="holds a 'ProteinClassifier', expected a AntibodyInfiller"):
        AntibodyInfiller.load(tmp_path / "clf", backbone=lm)


def test_classifier_sklearn_params_clone_and_not_fitted(lm: Any, peptides: Any) -> None:
    X, _ = peptides
    clf = pc(lm, head="label-mapping", sources_per_class=3)
    params = clf.get_params()
    assert params["backbone"] is lm and params["sources_per_class"] == 3 and params["head"] == "label-mapping"
    assert {"sparsity", "k", "l1", "max_length", "too_long", "random_state"} <= params.keys()
    assert clf.set_params(head="linear", sparsity="topk") is clf
    twin = clone(clf)
    assert (twin.head, twin.sparsity, twin.sources_per_class) == ("linear", "topk", 3)
    with pytest.raises(NotFittedError, match="ProteinClassifier is not fitted yet"):
        twin.predict_proba(X)


def test_classifier_in_a_pipeline(lm: Any, peptides: Any) -> None:
    X, y = peptides
    clf = pc(lm, max_steps=2)
    # residues are upper-cased inside (on a copy): lower-case input is the same protein
    lower = FunctionTransformer(lambda seqs: [s.lower() for s in seqs])
    pipe = make_pipeline(lower, clone(clf)).fit(X, y)
    np.testing.assert_array_equal(pipe.predict_proba(X), clf.fit(X, y).predict_proba(X))
    assert X[0].isupper()  # the caller's strings are untouched


def majority_per_fold(y: Any, cv: int = 2) -> np.ndarray:
    """The accuracy of always answering the most frequent class of each test fold of ``cv`` (the
    ``StratifiedKFold`` that ``cv=<int>`` means for a classifier)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    folds = StratifiedKFold(cv).split(np.zeros(len(y)), y)
    return np.array([np.unique(y[test], return_counts=True)[1].max() / len(test) for _, test in folds])


def test_classifier_cross_val_score(lm: Any, peptides: Any) -> None:
    X, y = peptides
    majority = majority_per_fold(y)  # 0.5 and 0.5: each fold tests 6 basic and 6 acidic peptides
    scores = cross_val_score(pc(lm, max_steps=1), X, y, cv=2)
    assert scores.shape == (2,) and (scores > majority + 0.25).all()  # measured 0.917 and 0.917


def test_classifier_grid_search(lm: Any, peptides: Any) -> None:
    X, y = peptides
    # lr 1e-7 cannot move theta in its one step (both heads stay at the majority's 0.5); lr 1e-2 learns
    grid = {"head": list(HEADS), "lr": [1e-7, 1e-2]}
    search = GridSearchCV(pc(lm, max_steps=1), grid, cv=2).fit(X, y)
    params, mean = search.cv_results_["params"], search.cv_results_["mean_test_score"]
    assert [(p["head"], p["lr"]) for p in params] == [(h, lr) for h in HEADS for lr in (1e-7, 1e-2)]
    learned = np.array([p["lr"] == 1e-2 for p in params])
    # measured 0.917 (linear), 0.958 (label-mapping) against 0.5 and 0.5
    assert mean[learned].min() > mean[~learned].max() + 0.25
    assert search.best_params_ == params[int(np.argmax(mean))]
    assert search.best_params_["lr"] == 1e-2
    assert search.best_estimator_.head == search.best_params_["head"]
    assert search.predict(X[:4]).shape == (4,)


# -- inputs: FASTA, records, batches -------------------------------------------------------------------------
def test_fasta_path_and_seqrecords_give_the_same_answer(lm: Any, peptides: Any, tmp_path: Path) -> None:
    X, y = peptides
    clf = pc(lm).fit(X, y)
    expected = clf.predict_proba(X)
    fasta = write_fasta(X, tmp_path / "peptides.fasta")
    np.testing.assert_array_equal(clf.predict_proba(str(fasta)), expected)
    np.testing.assert_array_equal(clf.predict_proba(fasta), expected)
    records = [SeqRecord(Seq(s), id=f"p{i}", description="toy") for i, s in enumerate(X)]
    np.testing.assert_array_equal(clf.predict_proba(records), expected)
    np.testing.assert_array_equal(clf.predict_proba([Seq(s) for s in X]), expected)
    # fitting on the FASTA file is fitting on its sequences
    from_file = pc(lm).fit(str(fasta), y)
    np.testing.assert_array_equal(from_file.predict_proba(X), expected)


def test_a_sequence_scores_the_same_alone_or_padded_in_a_batch(lm: Any, peptides: Any) -> None:
    X, y = peptides
    clf = pc(lm).fit(X, y)
    short = min(X, key=len)
    alone = clf.predict_proba([short])
    in_batch = clf.predict_proba([short, "K" * 30])[:1]  # padded to 30 beside a longer one
    np.testing.assert_allclose(alone, in_batch, atol=1e-5)


def test_classifier_bad_input(lm: Any, peptides: Any, tmp_path: Path) -> None:
    X, y = peptides
    with pytest.raises(ValueError, match="sequence 1 is empty"):
        pc(lm).fit(["KKR", "", "DDE"], [1, 0, 0])
    with pytest.raises(ValueError, match="sequence 1 has '1' at position 3, which is not an amino-acid code"):
        pc(lm).fit(["KKR", "DE1E"], [1, 0])
    with pytest.raises(ValueError, match="X has 3 samples but y has 2 labels"):
        pc(lm).fit(["KKR", "DDE", "KRK"], [1, 0])
    with pytest.raises(ValueError, match=r"need at least 2 classes.*got \[1\]"):
        pc(lm).fit(["KKR", "KRK"], [1, 1])
    with pytest.raises(TypeError, match="single string 'KKRKR'"):
        pc(lm).fit("KKRKR", [1])
    with pytest.raises(ValueError, match="no sequences given"):
        pc(lm).fit([], [])
    with pytest.raises(FileNotFoundError, match=r"missing\.fasta"):
        pc(lm).fit(str(tmp_path / "missing.fasta"), y)
    with pytest.raises(TypeError, match="item 1 is a int"):
        pc(lm).fit(["KKR", 7], [1, 0])
    with pytest.raises(ValueError, match=r"head must be one of \('linear', 'label-mapping'\), got 'mlp'"):
        pc(lm, head="mlp").fit(X, y)


def test_length_limit_errors_or_truncates(lm: Any) -> None:
    X = ["KRKRKRKRKR", "DEDEDE", "KKKKRRRR", "DDDEEE"]
    y = [1, 0, 1, 0]
    with pytest.raises(ValueError, match="sequence 0 has 10 residues, more than max_length=8"):
        pc(lm, max_length=8).fit(X, y)
    clf = pc(lm, max_length=8, too_long="truncate").fit(X, y)
    # only the first 8 residues count
    np.testing.assert_array_equal(clf.predict_proba(["KRKRKRKRKR"]), clf.predict_proba(["KRKRKRKRDD"]))
    with pytest.raises(ValueError, match="too_long must be one of"):
        pc(lm, too_long="cut").fit(X, y)


def test_label_mapping_needs_a_masked_lm(minilm_tokenizer: Any, peptides: Any) -> None:
    X, y = peptides
    plain = make_tiny_bert(minilm_tokenizer)
    with pytest.raises(TypeError, match=r"needs a masked language backbone.*got LanguageBackbone"):
        pc(plain, head="label-mapping").fit(X, y)
    # a plain (base) language model takes the linear head
    assert pc(plain, head="linear", max_steps=1).fit(X, y).predict_proba(X).shape == (24, 2)


# == ProteinRegressor =======================================================================================
def test_regressor_fit_predict_and_learns(lm: Any, peptides: Any) -> None:
    X, _ = peptides
    target = basic_count(X)
    before = state_snapshot(lm)
    reg = pr(lm, epochs=3, lr=1e-2)
    assert reg.fit(X, target) is reg
    assert_unchanged(lm, before)
    pred = reg.predict(X)
    assert pred.shape == (24,) and pred.dtype == np.float64
    assert np.corrcoef(pred, target)[0, 1] > 0.8
    assert reg.target_mean_ == pytest.approx(target.mean()) and reg.target_std_ == pytest.approx(target.std())
    assert reg.score(X, target) == pytest.approx(r2_score(target, pred))
    assert reg.num_trainable() == N_TOKENS * int(lm.vocab_size) + 32 + 1


def test_regressor_answers_in_the_targets_units(lm: Any, peptides: Any) -> None:
    X, _ = peptides
    target = basic_count(X)
    base = pr(lm, epochs=2, random_state=1).fit(X, target).predict(X)
    # targets are standardised for training, so an affine change of units gives the same model
    shifted = pr(lm, epochs=2, random_state=1).fit(X, 1000.0 * target - 7.0).predict(X)
    np.testing.assert_allclose(shifted, 1000.0 * base - 7.0, rtol=1e-5)
    constant = pr(lm, max_steps=1).fit(X[:4], [2.5] * 4)
    assert (constant.target_mean_, constant.target_std_) == (2.5, 1.0)  # a zero spread is not divided by


def test_regressor_determinism_save_load_and_sklearn(lm: Any, peptides: Any, tmp_path: Path) -> None:
    X, _ = peptides
    target = basic_count(X)
    a = pr(lm, epochs=2, random_state=2).fit(X, target)
    b = pr(lm, epochs=2, random_state=2).fit(X, target)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    a.save(tmp_path / "reg")
    loaded = ProteinRegressor.load(tmp_path / "reg", backbone=lm)
    np.testing.assert_array_equal(loaded.predict(X), a.predict(X))
    assert (loaded.target_mean_, loaded.target_std_) == (a.target_mean_, a.target_std_)
    with pytest.raises(CheckpointError, match="holds a 'ProteinRegressor', expected a ProteinClassifier"):
        ProteinClassifier.load(tmp_path / "reg", backbone=lm)
    with pytest.raises(NotFittedError, match="ProteinRegressor is not fitted yet"):
        pr(lm).predict(X)
    assert clone(a).get_params()["random_state"] == 2 and not hasattr(clone(a), "model_")


def test_regressor_cross_val_score(lm: Any, peptides: Any) -> None:
    X, _ = peptides
    # the score is R^2 on the held-out fold: above 0 beats predicting that fold's own mean count
    scores = cross_val_score(pr(lm, sparsity="topk", epochs=3, lr=1e-2), X, basic_count(X), cv=2)
    assert scores.shape == (2,) and (scores > 0.5).all()  # measured 0.816 and 0.793


def test_regressor_grid_search(lm: Any, peptides: Any) -> None:
    X, _ = peptides
    # lr 1e-7 cannot move theta in 3 epochs (R^2 about 0.11 from the seeded start); lr 1e-2 learns
    grid = {"sparsity": ["dense", "topk"], "lr": [1e-7, 1e-2]}
    search = GridSearchCV(pr(lm, epochs=3), grid, cv=2, refit=False).fit(X, basic_count(X))
    params, mean = search.cv_results_["params"], search.cv_results_["mean_test_score"]
    assert [(p["lr"], p["sparsity"]) for p in params] == [
        (lr, s) for lr in (1e-7, 1e-2) for s in ("dense", "topk")
    ]
    # measured R^2: 0.114, 0.112 (lr 1e-7), 0.203 (dense), 0.804 (topk)
    assert search.best_params_ == params[int(np.argmax(mean))]
    assert search.best_params_["lr"] == 1e-2
    assert search.best_score_ > 0.5 and search.best_score_ > mean[:2].max() + 0.3


def test_regressor_bad_targets(lm: Any) -> None:
    X = ["KRK", "DED", "KKD"]
    with pytest.raises(ValueError, match="y contains NaN or infinite targets"):
        pr(lm).fit(X, [1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="X has 3 samples but y has 2 targets"):
        pr(lm).fit(X, [1.0, 2.0])
    with pytest.raises(ValueError, match=r"y must be one target per sample \(1-D\), got shape \(3, 1\)"):
        pr(lm).fit(X, [[1.0], [2.0], [3.0]])
    with pytest.raises(ValueError, match=r"sequence 2 has '\*' at position 2"):
        pr(lm).fit(["KRK", "DED", "K*B"], [1.0, 2.0, 3.0])  # only a trailing stop is dropped


# == AntibodyInfiller =======================================================================================
def test_infiller_fit_returns_self_trains_theta_and_gamma_only(lm: Any, antibodies: Any) -> None:
    chains, masks = antibodies
    before = state_snapshot(lm)
    inf = AntibodyInfiller(backbone=lm, **FAST)
    assert inf.fit(chains, masks) is inf
    assert_unchanged(lm, before)
    vocab = int(lm.vocab_size)
    assert inf.num_trainable() == N_TOKENS * vocab + vocab * N_TOKENS + N_TOKENS  # theta, gamma (+ bias)


def test_infill_changes_only_the_region(infiller: AntibodyInfiller, antibodies: Any) -> None:
    chains, masks = antibodies
    chain, mask = chains[0], masks[0]
    designs = infiller.infill(chain, mask, n=6, temperature=1.0, seed=3)
    assert len(designs) == 6
    inside = [i for i, c in enumerate(mask) if c == "3"]
    assert inside == list(range(H3.start, H3.stop))
    for design in designs:
        assert len(design) == len(chain)
        assert all(design[i] == chain[i] for i in range(len(chain)) if i not in inside)
        assert set(design) <= set(AMINO_ACIDS)
    assert infiller.infill(chain, mask, n=6, temperature=1.0, seed=3) == designs  # seeded
    # another region is redesigned where its mask says, the rest kept
    h1 = infiller.infill(chain, mask, region="CDR-H1", n=3)
    inside_h1 = {i for i, c in enumerate(mask) if c == "1"}
    assert all(d[i] == chain[i] for d in h1 for i in range(len(chain)) if i not in inside_h1)


def test_infill_at_temperature_zero_is_the_most_likely_design(
    infiller: AntibodyInfiller, antibodies: Any
) -> None:
    chains, masks = antibodies
    designs = infiller.infill(chains[1], masks[1], n=4, temperature=0)
    assert len(designs) == 4 and len(set(designs)) == 1
    # evaluate's recovery is the recovery of these most likely designs, counted by hand over all chains
    hits = 0
    for chain, mask in zip(chains, masks, strict=True):
        best = infiller.infill(chain, mask, n=1, temperature=0)[0]
        hits += sum(best[i] == chain[i] for i in range(H3.start, H3.stop))
    result = infiller.evaluate(chains, masks)
    assert result["recovery"] == pytest.approx(hits / (16 * 6))
    assert infiller.score(chains, masks) == result["recovery"]


def test_infiller_learns_the_region_alphabet(infiller: AntibodyInfiller, antibodies: Any) -> None:
    chains, masks = antibodies
    # every CDR-H3 of the toy set is drawn from YGDAR; the trained model's best guess keeps to them
    best = {infiller.infill(c, m, n=1, temperature=0)[0][H3] for c, m in zip(chains, masks, strict=True)}
    assert set("".join(best)) <= set("YGDAR")


def test_evaluate_reports_recovery_and_diversity(infiller: AntibodyInfiller, antibodies: Any) -> None:
    chains, masks = antibodies
    result = infiller.evaluate(chains, masks, n=4)
    assert result["residues"] == 96.0 and result["chains"] == 16.0
    for key in ("recovery", "recovery_per_chain", "sample_recovery", "diversity"):
        assert 0.0 <= result[key] <= 1.0, key
    # better than guessing one of the 20 residues (0.05): measured 0.146 (14 of 96) and 0.151 sampled;
    # the position-frequency baseline on these same chains scores 0.3125
    assert result["recovery"] > 2 / 20 and result["sample_recovery"] > 2 / 20
    # every chain has a region of the same length, so the mean per chain equals the overall recovery
    assert result["recovery_per_chain"] == pytest.approx(result["recovery"])
    assert set(infiller.evaluate(chains, masks)) == {"recovery", "recovery_per_chain", "residues", "chains"}


def test_infiller_determinism_and_save_load(lm: Any, antibodies: Any, tmp_path: Path) -> None:
    chains, masks = antibodies[0][:8], antibodies[1][:8]
    kw = {**FAST, "max_steps": 2, "random_state": 6}
    a = AntibodyInfiller(backbone=lm, **kw).fit(chains, masks)
    b = AntibodyInfiller(backbone=lm, **kw).fit(chains, masks)
    logits = a._logits(a._encode(chains, masks)[0])
    assert logits.shape == (8, 28, 20)
    assert torch.equal(logits, b._logits(b._encode(chains, masks)[0]))
    a.save(tmp_path / "inf")
    loaded = AntibodyInfiller.load(tmp_path / "inf", backbone=lm)
    assert torch.equal(loaded._logits(loaded._encode(chains, masks)[0]), logits)
    assert loaded.infill(chains[0], masks[0], n=5, seed=1) == a.infill(chains[0], masks[0], n=5, seed=1)
    assert loaded.evaluate(chains, masks) == a.evaluate(chains, masks)
    with pytest.raises(CheckpointError, match="holds a 'AntibodyInfiller', expected a ProteinClassifier"):
        ProteinClassifier.load(tmp_path / "inf", backbone=lm)


def test_infiller_sklearn_params_and_not_fitted(lm: Any, antibodies: Any) -> None:
    chains, masks = antibodies
    inf = AntibodyInfiller(backbone=lm, region="CDR-H2")
    assert inf.get_params()["region"] == "CDR-H2" and inf.get_params()["backbone"] is lm
    assert inf.set_params(region="CDR-H1") is inf and clone(inf).region == "CDR-H1"
    with pytest.raises(NotFittedError, match="AntibodyInfiller is not fitted yet"):
        inf.infill(chains[0], masks[0], n=2)


def test_infiller_bad_input(infiller: AntibodyInfiller, lm: Any, antibodies: Any) -> None:
    chains, masks = antibodies
    with pytest.raises(ValueError, match="chain 0 has 28 residues but its CDR mask has 27 codes"):
        infiller.infill(chains[0], masks[0][:-1], n=2)
    with pytest.raises(ValueError, match=r"unknown region 'CDR-L3'; expected one of \['CDR-H1'"):
        infiller.infill(chains[0], masks[0], region="CDR-L3", n=2)
    with pytest.raises(ValueError, match="unknown region 'H3'"):
        AntibodyInfiller(backbone=lm, region="H3", **FAST).fit(chains, masks)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        infiller.infill(chains[0], masks[0], n=0)
    with pytest.raises(ValueError, match=r"temperature must be >= 0, got -0\.5"):
        infiller.infill(chains[0], masks[0], n=2, temperature=-0.5)
    with pytest.raises(ValueError, match=r"1 chain\(s\) have no CDR-H3 to mask: rows \[1\]"):
        AntibodyInfiller(backbone=lm, **FAST).fit(chains[:2], [masks[0], masks[1].replace("3", "0")])
    with pytest.raises(TypeError, match="single string"):
        AntibodyInfiller(backbone=lm, **FAST).fit(chains[0], masks[:1])
    with pytest.raises(ValueError, match=r"got 2 chains but 1 CDR masks"):
        AntibodyInfiller(backbone=lm, **FAST).fit(chains[:2], masks[:1])
    with pytest.raises(ValueError, match="CDR mask 0: CDR mask has '4' at position 1"):
        infiller.infill(chains[0], "4" + masks[0][1:], n=2)


# -- diversity and the position-frequency baseline ---------------------------------------------------------
def test_diversity_hand_computed() -> None:
    assert diversity(["AAA", "AAB"]) == pytest.approx(1 / 3)
    assert diversity(["AAA", "AAB", "ABB"]) == pytest.approx((1 / 3 + 2 / 3 + 1 / 3) / 3)
    assert diversity(["ACD", "ACD", "ACD"]) == 0.0
    assert diversity(["ACD"]) == 0.0 and diversity([]) == 0.0


def test_diversity_of_unequal_lengths_says_so() -> None:
    with pytest.raises(ValueError, match="samples of one length"):
        diversity(["AAA", "AA"])


def test_position_frequency_infill_hand_computed() -> None:
    train = ["AAACDE", "AAACDF", "AAAGDE"]
    train_masks = ["000333"] * 3
    # per region position: C (2 of 3), D (3 of 3), E (2 of 3); a 4th position was never seen, so it gets
    # the most frequent region residue overall (D, 3 times)
    test = ["AAACDF", "AAACDEW"]
    test_masks = ["000333", "0003333"]
    result = position_frequency_infill(train, train_masks, test, test_masks)
    assert result == {"recovery": pytest.approx(5 / 7), "residues": 7.0}  # CDe-F: 2 of 3, CDE-W: 3 of 4
    assert position_frequency_infill(train, train_masks, ["KKKDDD"], ["000333"])["recovery"] == pytest.approx(
        1 / 3
    )


def test_position_frequency_infill_without_the_region_in_test_chains() -> None:
    with pytest.raises(ValueError, match="CDR-H3"):
        position_frequency_infill(["AAACDE"], ["000333"], ["AAACDE"], ["000111"])


def test_position_frequency_infill_without_the_region_in_training_chains() -> None:
    with pytest.raises(ValueError, match="CDR-H3"):
        position_frequency_infill(["AAACDE"], ["000111"], ["AAACDE"], ["000333"])

"""The linear-probe baseline: C chosen by cross-validation on the training data only."""

from __future__ import annotations

import numpy as np
import pytest

from xdomain.baselines.linear_probe import fit_logistic_probe


def test_probe_separates_separable_data_and_picks_c_from_the_grid() -> None:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 1, (20, 3)), rng.normal(2, 1, (20, 3))])
    y = np.array(["a"] * 20 + ["b"] * 20)
    probe = fit_logistic_probe(X, y, seed=0, Cs=(0.01, 1.0))
    assert probe.best_params_["logisticregression__C"] in (0.01, 1.0)
    assert probe.score(X, y) > 0.9 and list(probe.classes_) == ["a", "b"]


def test_probe_folds_shrink_to_the_smallest_class_and_refuse_singletons() -> None:
    X, y = np.arange(12.0).reshape(6, 2), np.array([0, 0, 0, 0, 1, 1])
    assert fit_logistic_probe(X, y).n_splits_ == 2
    with pytest.raises(ValueError, match="the smallest has 1"):
        fit_logistic_probe(X[:5], y[:5])
    with pytest.raises(ValueError, match="X has 6 rows but y has 5 labels"):
        fit_logistic_probe(X, y[:5])

"""The linear-probe baseline: C chosen by cross-validation on the training data only."""

from __future__ import annotations

import numpy as np
import pytest

from xdomain.baselines.linear_probe import fit_logistic_probe


def test_probe_separates_separable_data_and_picks_c_from_the_grid() -> None:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2, 1, (30, 3)), rng.normal(2, 1, (10, 3))])
    y = np.array(["a"] * 30 + ["b"] * 10)
    # C = 1e-6 shrinks the weights to nothing: the unpenalised intercept answers the majority class "a"
    # (0.75 of every stratified fold); C = 1 separates the blobs. Listed worse-first and better-first, the
    # cross-validated score picks C = 1 either way
    for Cs in ((1e-6, 1.0), (1.0, 1e-6)):
        probe = fit_logistic_probe(X, y, seed=0, Cs=Cs)
        params, mean = probe.cv_results_["params"], probe.cv_results_["mean_test_score"]
        by_c = {p["logisticregression__C"]: m for p, m in zip(params, mean, strict=True)}
        assert by_c[1.0] > by_c[1e-6] + 0.15  # measured 1.0 against 0.75
        assert probe.best_params_ == params[int(np.argmax(mean))] == {"logisticregression__C": 1.0}
        assert probe.best_estimator_[-1].C == 1.0  # refitted on all the data with the chosen C
    assert probe.score(X, y) > 0.9 and list(probe.classes_) == ["a", "b"]  # measured 1.0


def test_probe_folds_shrink_to_the_smallest_class_and_refuse_singletons() -> None:
    X, y = np.arange(12.0).reshape(6, 2), np.array([0, 0, 0, 0, 1, 1])
    assert fit_logistic_probe(X, y).n_splits_ == 2
    with pytest.raises(ValueError, match="the smallest has 1"):
        fit_logistic_probe(X[:5], y[:5])
    with pytest.raises(ValueError, match="X has 6 rows but y has 5 labels"):
        fit_logistic_probe(X, y[:5])

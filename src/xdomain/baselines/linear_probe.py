"""The linear-probe baseline: a standardised logistic regression whose C is chosen by stratified
cross-validation on the training data only (features from a frozen model, or raw inputs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import GridSearchCV


def fit_logistic_probe(
    X: np.ndarray, y: np.ndarray, seed: int = 0, Cs: Sequence[float] = (0.001, 0.01, 0.1, 1.0, 10.0)
) -> GridSearchCV:
    """Fit ``StandardScaler -> LogisticRegression`` with ``C`` in ``Cs`` chosen by stratified k-fold
    cross-validation on ``(X, y)`` (k = 5, or fewer when the smallest class has fewer members); returns
    the refitted search, which predicts like a classifier."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)} labels")
    smallest = int(np.bincount(np.unique(y, return_inverse=True)[1]).min())
    if smallest < 2:
        raise ValueError(
            f"every class needs at least 2 examples for cross-validation, the smallest has {smallest}"
        )
    search = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        {"logisticregression__C": list(Cs)},
        cv=StratifiedKFold(min(5, smallest), shuffle=True, random_state=seed),
    )
    return search.fit(X, y)


__all__ = ["fit_logistic_probe"]

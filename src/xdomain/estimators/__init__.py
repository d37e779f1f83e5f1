"""The estimators users meet, one module per domain, on one scikit-learn base (:mod:`.base`).

- :mod:`.forecasting`: :class:`TimeSeriesForecaster` (Time-LLM and its baselines);
- :mod:`.series`: :class:`TimeSeriesClassifier` (Voice2Series);
- :mod:`.audio`: :class:`AudioClassifier`;
- :mod:`.proteins`: :class:`ProteinClassifier`, :class:`ProteinRegressor` (R2DL);
- :mod:`.antibodies`: :class:`AntibodyInfiller` (ReprogBERT).
"""

import os
from typing import Any

from xdomain.checkpoint import CheckpointError, read_meta
from xdomain.estimators.antibodies import AntibodyInfiller
from xdomain.estimators.audio import AudioClassifier
from xdomain.estimators.base import ReprogrammingClassifier, ReprogrammingEstimator, ReprogrammingRegressor
from xdomain.estimators.forecasting import TimeSeriesForecaster
from xdomain.estimators.graphs import GraphClassifier
from xdomain.estimators.proteins import ProteinClassifier, ProteinRegressor
from xdomain.estimators.series import TimeSeriesClassifier
from xdomain.estimators.transactions import TransactionClassifier
from xdomain.registry import ESTIMATORS


def load(path: str | os.PathLike[str], backbone: Any = None) -> Any:
    """Load whatever an estimator's ``save`` wrote at ``path``: the estimator its manifest names (``kind``,
    any class registered in :data:`~xdomain.registry.ESTIMATORS`), rebuilt with its trained tensors.

    ``backbone`` replaces the backbone the checkpoint names (needed when it was an in-memory one). A folder
    that is not an xdomain checkpoint, or whose kind no estimator registered, is a :class:`CheckpointError`.
    """
    kind = read_meta(path).get("kind")
    if not isinstance(kind, str) or kind not in ESTIMATORS:
        raise CheckpointError(
            f"{str(path)!r} holds a checkpoint of kind {kind!r}; expected one of the estimators "
            f"{ESTIMATORS.names()}"
        )
    estimator: Any = ESTIMATORS.get(kind)  # a class: its load() is a classmethod
    return estimator.load(path, backbone=backbone)


__all__ = [
    "AntibodyInfiller",
    "AudioClassifier",
    "GraphClassifier",
    "ProteinClassifier",
    "ProteinRegressor",
    "ReprogrammingClassifier",
    "ReprogrammingEstimator",
    "ReprogrammingRegressor",
    "TimeSeriesClassifier",
    "TimeSeriesForecaster",
    "TransactionClassifier",
    "load",
]

"""The estimators users meet, one module per domain, on one scikit-learn base (:mod:`.base`).

- :mod:`.forecasting`: :class:`TimeSeriesForecaster` (Time-LLM and its baselines);
- :mod:`.series`: :class:`TimeSeriesClassifier` (Voice2Series);
- :mod:`.audio`: :class:`AudioClassifier`;
- :mod:`.proteins`: :class:`ProteinClassifier`, :class:`ProteinRegressor` (R2DL);
- :mod:`.antibodies`: :class:`AntibodyInfiller` (ReprogBERT).
"""

from xdomain.estimators.antibodies import AntibodyInfiller
from xdomain.estimators.audio import AudioClassifier
from xdomain.estimators.base import ReprogrammingClassifier, ReprogrammingEstimator, ReprogrammingRegressor
from xdomain.estimators.forecasting import TimeSeriesForecaster
from xdomain.estimators.proteins import ProteinClassifier, ProteinRegressor
from xdomain.estimators.series import TimeSeriesClassifier

__all__ = [
    "AntibodyInfiller",
    "AudioClassifier",
    "ProteinClassifier",
    "ProteinRegressor",
    "ReprogrammingClassifier",
    "ReprogrammingEstimator",
    "ReprogrammingRegressor",
    "TimeSeriesClassifier",
    "TimeSeriesForecaster",
]

"""xdomain: cross-domain model reprogramming.

    y_hat = O( f( I(x, c) ) )

A frozen pretrained model f is reused for a new domain: a learned input transformation I (with an
optional text context c) maps the target data into f's input space, and an output head O maps f's answer
back. Only I and O train.
"""

from xdomain.backbones import AttentionBackbone, IdentityBackbone, LanguageBackbone, load_backbone
from xdomain.checkpoint import CheckpointError
from xdomain.config import ForecastConfig, TrainConfig
from xdomain.datasets.home import DataNotFoundError
from xdomain.estimators import AntibodyInfiller, load
from xdomain.estimators.audio import AudioClassifier
from xdomain.estimators.forecasting import TimeSeriesForecaster, build_model
from xdomain.estimators.graphs import GraphClassifier
from xdomain.estimators.proteins import ProteinClassifier, ProteinRegressor
from xdomain.estimators.series import TimeSeriesClassifier
from xdomain.estimators.transactions import TransactionClassifier
from xdomain.reprogrammer import Reprogrammer
from xdomain.training import Trainer

__version__ = "0.1.0"

__all__ = [
    "AntibodyInfiller",
    "AttentionBackbone",
    "AudioClassifier",
    "CheckpointError",
    "DataNotFoundError",
    "ForecastConfig",
    "GraphClassifier",
    "IdentityBackbone",
    "LanguageBackbone",
    "ProteinClassifier",
    "ProteinRegressor",
    "Reprogrammer",
    "TimeSeriesClassifier",
    "TimeSeriesForecaster",
    "TrainConfig",
    "Trainer",
    "TransactionClassifier",
    "__version__",
    "build_model",
    "load",
    "load_backbone",
]

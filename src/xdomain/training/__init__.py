"""Training (HF Accelerate; zeroth-order for black boxes) and metrics."""

from xdomain.training.metrics import ErrorAccumulator, mae, mse
from xdomain.training.trainer import History, Trainer, get_accelerator, set_seed
from xdomain.training.zeroth_order import ZerothOrderTrainer

__all__ = [
    "ErrorAccumulator",
    "History",
    "Trainer",
    "ZerothOrderTrainer",
    "get_accelerator",
    "mae",
    "mse",
    "set_seed",
]

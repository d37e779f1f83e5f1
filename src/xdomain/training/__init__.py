"""Training (HF Accelerate) and metrics."""

from xdomain.training.metrics import ErrorAccumulator, mae, mse
from xdomain.training.trainer import History, Trainer, get_accelerator, set_seed

__all__ = ["ErrorAccumulator", "History", "Trainer", "get_accelerator", "mae", "mse", "set_seed"]

"""Training (HF Accelerate; zeroth-order for black boxes) and metrics: one loop (:func:`train_loop`) over
any dataset, with a pluggable step (:class:`GradientStep`, :class:`ZerothOrderStep`)."""

from xdomain.training.batches import to_device
from xdomain.training.loop import History, TrainStep, train_loop
from xdomain.training.metrics import ErrorAccumulator, mae, mse
from xdomain.training.trainer import GradientStep, Trainer, get_accelerator, set_seed
from xdomain.training.zeroth_order import ZerothOrderStep, ZerothOrderTrainer

__all__ = [
    "ErrorAccumulator",
    "GradientStep",
    "History",
    "TrainStep",
    "Trainer",
    "ZerothOrderStep",
    "ZerothOrderTrainer",
    "get_accelerator",
    "mae",
    "mse",
    "set_seed",
    "to_device",
    "train_loop",
]

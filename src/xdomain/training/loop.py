"""The training loop, written once (:func:`train_loop`: epochs, validation, early stopping, time budget,
history, best restore); what turns a batch into an update is a pluggable :class:`TrainStep`.

The best state by validation loss is kept and restored at the end; for a model that is the trainable
parameters *and* the learned buffers refitted during training (label mappings, feature scalers):
:func:`snapshot_trained` and :func:`restore_trained`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from xdomain.config import TrainConfig
from xdomain.reprogrammer import load_trainable_state_dict, trainable_state_dict

logger = logging.getLogger("xdomain.training")


def snapshot_trained(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of everything that training or a refit changes: parameters with ``requires_grad`` and
    learned buffers (a fitted label mapping, a feature scaler)."""
    return {k: v.detach().clone().cpu() for k, v in trainable_state_dict(model).items()}


def restore_trained(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> None:
    """Copy a :func:`snapshot_trained` back into ``model`` (parameters and learned buffers)."""
    load_trainable_state_dict(model, snapshot, "the best-epoch snapshot")


@dataclass
class History:
    """What happened during :meth:`~xdomain.training.trainer.Trainer.fit`."""

    steps: int = 0
    epochs: float = 0.0
    train_seconds: float = 0.0
    best_val_loss: float = math.inf
    best_step: int = 0
    stopped: str = "epochs"
    records: list[dict[str, float]] = field(default_factory=list)

    @property
    def seconds_per_epoch(self) -> float:
        return self.train_seconds / self.epochs if self.epochs else math.nan


def warmup_cosine(total: int, warmup: float = 0.2, floor: float = 0.04) -> Any:
    """Learning-rate factor per step: linear warm-up over ``warmup`` of the steps, then cosine decay to
    ``floor`` (the shape of Time-LLM's OneCycle schedule, defined for any number of steps, even 1)."""
    warm = max(1, int(warmup * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def lr_factor(schedule: str, steps_per_epoch: int, total: int) -> Any:
    """The learning-rate factor per step of a :data:`~xdomain.config.LR_SCHEDULES` name."""
    if schedule == "warmup-cosine":
        return warmup_cosine(max(total, 1))
    if schedule == "halving":  # DLinear's type1: lr * 0.5 ** epoch
        return lambda step: 0.5 ** (step // max(steps_per_epoch, 1))
    if schedule == "constant":
        return lambda step: 1.0
    raise ValueError(f"unknown lr_schedule {schedule!r}")


class TrainStep:
    """What :func:`train_loop` calls to turn one batch into one update (subclass per training method).

    The loop calls :meth:`start` once (the number of batches an epoch and of steps in all known),
    :meth:`begin_epoch` before each epoch, the step itself on each batch (it returns that batch's training
    loss), :meth:`snapshot` at every new best validation, :meth:`after_validation` after each validation,
    :meth:`record` for extra entries in each history record, :meth:`finish` when training ends and
    :meth:`restore` with the best snapshot, if there was a validation.
    """

    progress_desc = "train"

    def start(self, steps_per_epoch: int, total: int) -> None:
        del steps_per_epoch, total

    def begin_epoch(self, epoch: int) -> None:
        del epoch

    def __call__(self, batch: Any, step: int) -> float:
        """One update from ``batch``; ``step`` updates were made before it. Returns the batch's loss."""
        raise NotImplementedError

    def after_validation(self) -> None:
        pass

    def record(self) -> dict[str, float]:
        return {}

    def snapshot(self) -> Any:
        raise NotImplementedError

    def restore(self, snapshot: Any) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        pass


def train_loop(
    step: TrainStep,
    loader: Any,
    config: TrainConfig,
    validate: Callable[[], dict[str, float]] | None = None,
    progress: bool = False,
) -> History:
    """Run ``step`` over ``config.epochs`` passes of ``loader`` (at most ``config.max_steps`` steps, within
    ``config.max_train_seconds`` of training time) and return the :class:`History`.

    Every ``config.val_every`` steps (default: once an epoch), after the last, and before the first
    with ``config.validate_first``, a record of the mean training loss since the last record is kept;
    ``validate()`` (if given) adds its entries, whose
    ``"val_loss"`` is minimised: its best is snapshot and restored at the end, and training stops after
    ``config.patience`` validations without improvement. Validation time is not training time.
    """
    cfg = config
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise ValueError("the training set is empty")
    total = (
        steps_per_epoch * cfg.epochs
        if cfg.max_steps is None
        else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    )
    step.start(steps_per_epoch, total)
    history = History()
    best: Any = None
    bad_validations = 0
    val_every = cfg.val_every or steps_per_epoch
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=step.progress_desc, unit="step", leave=False)
    running, running_steps = 0.0, 0
    val_seconds = 0.0  # validation time is not training time
    done = False
    if validate is not None and cfg.validate_first:
        # the starting weights are a candidate too (a model initialised at a fitted baseline)
        val_start = time.perf_counter()
        record = {"step": 0.0, "epoch": 0.0, **validate()}
        step.after_validation()
        history.best_val_loss, history.best_step = record["val_loss"], 0
        best = step.snapshot()
        record.update(step.record())
        history.records.append(record)
        logger.info("step 0 (before training) val_loss=%.4f", record["val_loss"])
        val_seconds += time.perf_counter() - val_start
    for epoch in range(cfg.epochs):
        step.begin_epoch(epoch)
        for batch in loader:
            loss = step(batch, history.steps)
            history.steps += 1
            running += loss
            running_steps += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
            out_of_time = (
                cfg.max_train_seconds is not None
                and time.perf_counter() - start - val_seconds >= cfg.max_train_seconds
            )
            last = history.steps >= total or out_of_time
            if history.steps % val_every == 0 or last:
                val_start = time.perf_counter()
                record = {
                    "step": float(history.steps),
                    "epoch": history.steps / steps_per_epoch,
                    "train_loss": running / running_steps,
                }
                running, running_steps = 0.0, 0
                if validate is not None:
                    record.update(validate())
                    step.after_validation()
                    val_loss = record["val_loss"]
                    if val_loss < history.best_val_loss:
                        history.best_val_loss, history.best_step = val_loss, history.steps
                        best = step.snapshot()
                        bad_validations = 0
                    else:
                        bad_validations += 1
                record.update(step.record())
                history.records.append(record)
                shown = " ".join(
                    f"{k}={v:.4f}" for k, v in record.items() if k.endswith(("loss", "accuracy"))
                )
                logger.info("step %d epoch %.2f %s", history.steps, record["epoch"], shown)
                val_seconds += time.perf_counter() - val_start
                if validate is not None and bad_validations >= cfg.patience:
                    history.stopped = "early stopping"
                    done = True
                elif out_of_time:
                    history.stopped = "time budget"
                    done = True
                elif history.steps >= total:
                    history.stopped = "max steps" if cfg.max_steps is not None else "epochs"
                    done = True
            if done:
                break
        if done:
            break
    history.train_seconds = time.perf_counter() - start - val_seconds
    history.epochs = history.steps / steps_per_epoch
    if bar is not None:
        bar.close()
    step.finish()
    if best is not None:
        step.restore(best)
    return history


__all__ = [
    "History", "TrainStep", "lr_factor", "restore_trained", "snapshot_trained", "train_loop", "warmup_cosine",
]

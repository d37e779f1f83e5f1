"""Training and evaluation on HF Accelerate: the same code on a CPU, one GPU or many processes.

Only the parameters with ``requires_grad`` reach the optimiser; the best state by validation loss (the
trainable parameters *and* the learned buffers refitted during training: label mappings, feature
scalers) is kept (early stopping) and restored at the end. Test metrics are computed on every example of
the split: the evaluation loader never drops its last partial batch, and under several processes the
gathered metrics count each example once.

Two losses: ``"mse"`` (forecasting, regression) and ``"cross_entropy"`` (classification with ``(B, C)``
scores and ``(B,)`` labels, or token prediction with ``(B, L, C)`` scores and ``(B, L)`` labels where
``-100`` marks positions that are not scored). Any part of the model with a ``penalty()`` method (an L1
sparsity term, say) has it added to the training loss.

Precision (``TrainConfig.mixed_precision``: ``"no"``, ``"bf16"``, ``"fp16"``) is applied per call with
``torch.autocast`` (plus a gradient scaler for fp16), not through the Accelerator, whose state is
process-wide: models of different precisions train one after another in one process.

Several processes: ``torchrun --standalone --nproc_per_node K script.py`` (gloo on CPUs; measured here,
``accelerate launch --num_processes 2`` started a single process on a CPU machine without MPI). Every
process walks the same seeded global batches of ``batch_size`` rows and trains on its share
(:func:`shard_batch`), so K processes take the same steps as one within float32 rounding
(``tests/test_multiprocess.py``: 1e-4). Dropout masks are drawn per process, so a model with dropout
matches one process only in distribution.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from xdomain.config import PRECISIONS, TrainConfig
from xdomain.training.metrics import ErrorAccumulator

_ACCELERATOR: list[Any] = []
logger = logging.getLogger("xdomain.training")


def get_accelerator(mixed_precision: str = "no") -> Any:
    """The process's one Accelerator (Accelerate keeps a process-wide state that cannot change precision).

    Precision is therefore not the Accelerator's: it is applied per call by :func:`autocast` and, for
    fp16, a gradient scaler in :class:`Trainer`, so models of any precision train in any order in one
    process. ``mixed_precision`` is only validated here. The global batch is split over the processes
    (``split_batches=True``), so ``batch_size`` means the same optimisation step on one process or many.
    """
    check_precision(mixed_precision)
    if not _ACCELERATOR:
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState
        from accelerate.utils import DataLoaderConfiguration

        options: dict[str, Any] = {"dataloader_config": DataLoaderConfiguration(split_batches=True)}
        if not AcceleratorState._shared_state:
            # a fresh process: full precision in the Accelerator itself; else reuse the user's state
            options.update(mixed_precision="no", cpu=not torch.cuda.is_available())
        _ACCELERATOR.append(Accelerator(**options))
    return _ACCELERATOR[0]


def check_precision(mixed_precision: Any) -> str:
    if mixed_precision not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {PRECISIONS}, got {mixed_precision!r}")
    return str(mixed_precision)


def autocast(mixed_precision: str, device: torch.device) -> Any:
    """``torch.autocast`` to bf16/fp16 on ``device`` (CPUs included: AMX runs bf16); a no-op for ``"no"``."""
    if check_precision(mixed_precision) == "no":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if mixed_precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def snapshot_trained(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of everything that training or a refit changes: parameters with ``requires_grad`` and
    learned buffers (a fitted label mapping, a feature scaler)."""
    from xdomain.reprogrammer import trainable_state_dict

    return {k: v.detach().clone().cpu() for k, v in trainable_state_dict(model).items()}


def restore_trained(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> None:
    """Copy a :func:`snapshot_trained` back into ``model`` (parameters and learned buffers)."""
    from xdomain.reprogrammer import load_trainable_state_dict

    load_trainable_state_dict(model, snapshot, "the best-epoch snapshot")


@torch.no_grad()
def predict_batches(
    model: nn.Module, x: torch.Tensor, batch_size: int, mixed_precision: str = "no",
    device: torch.device | None = None, progress: bool = False,
) -> torch.Tensor:
    """``model``'s outputs for every row of ``x`` in eval mode, in batches on ``device`` (default: where the
    model's parameters are), returned in float32 on the CPU."""
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.eval()
    starts = range(0, x.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="predict", unit="batch", leave=False)
    outs = []
    for i in starts:
        with autocast(mixed_precision, device):
            outs.append(model(x[i : i + batch_size].to(device)).float().cpu())
    if not outs:
        raise ValueError("nothing to predict: x has 0 rows")
    return torch.cat(outs)


def set_seed(seed: int) -> None:
    from accelerate.utils import set_seed as _set_seed

    _set_seed(seed)


@dataclass
class History:
    """What happened during :meth:`Trainer.fit`."""

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


IGNORE_INDEX = -100
LOSSES = ("mse", "cross_entropy")


def compute_loss(kind: str, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``mse`` on any equal shapes; ``cross_entropy`` on ``(B, C)``/``(B,)`` or ``(B, L, C)``/``(B, L)``."""
    if kind == "mse":
        return F.mse_loss(out.float(), y.float(), reduction=reduction)
    if out.ndim != y.ndim + 1 or out.shape[:-1] != y.shape:
        raise ValueError(f"cross-entropy needs scores (..., C) and labels (...), got {tuple(out.shape)} and "
                         f"{tuple(y.shape)}")
    return F.cross_entropy(
        out.reshape(-1, out.shape[-1]).float(), y.reshape(-1).long(), ignore_index=IGNORE_INDEX,
        reduction=reduction,
    )


def model_penalty(model: nn.Module) -> torch.Tensor | None:
    """The sum of ``penalty()`` over the parts that define one (sparsity terms), or None."""
    terms = []
    for m in model.modules():
        penalty: Any = getattr(m, "penalty", None)
        if callable(penalty):
            terms.append(penalty())
    return torch.stack([t.reshape(()) for t in terms]).sum() if terms else None


def shard_batch(x: Any, y: torch.Tensor, rank: int, world: int, loss: str) -> tuple[Any, torch.Tensor, float]:
    """This process's share of a global batch, and the global batch's number of loss terms.

    Rows are split as evenly as possible (contiguous blocks), so K processes together see every row once.
    The count is what the global batch's mean loss divides by: every element for ``"mse"``, every row for
    class labels, every scored position (label other than ``-100``) for token labels. A process left
    without a row (a last batch smaller than the world) gets the first row and a weight of zero
    (returned as a count of ``inf``), so it still joins the gradient all-reduce without counting.
    """
    n = int(y.shape[0])
    if loss == "mse":
        total = float(y.numel())
    elif y.ndim > 1:
        total = float((y != IGNORE_INDEX).sum())
    else:
        total = float(n)
    if world == 1:
        return x, y, total
    bounds = [n * r // world for r in range(world + 1)]
    lo, hi = bounds[rank], bounds[rank + 1]
    empty = hi <= lo
    rows = slice(0, 1) if empty else slice(lo, hi)
    local_x = type(x)(v[rows] for v in x) if isinstance(x, (tuple, list)) else x[rows]
    return local_x, y[rows], math.inf if empty else max(total, 1.0)


def _call(model: nn.Module, x: Any) -> torch.Tensor:
    out: torch.Tensor = model(*x) if isinstance(x, (tuple, list)) else model(x)
    return out


def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, (tuple, list)):
        return type(x)(v.to(device) for v in x)
    return x.to(device)


class Trainer:
    """Fit a model and evaluate it: MSE for forecasts (``x (B, L, N)`` -> ``(B, H, N)``), cross-entropy
    for classes or tokens.

    Args:
        model: any module; only its parameters with ``requires_grad`` train.
        config: the :class:`TrainConfig`.
        model_name: picks the default learning rate when ``config.lr`` is None.
        loss: ``"mse"`` or ``"cross_entropy"``.
        callbacks: called as ``callback(trainer, epoch)`` before each epoch (iterative label mapping
            recomputes its mapping there).
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig | None = None,
        model_name: str | None = None,
        loss: str = "mse",
        callbacks: Sequence[Callable[[Trainer, int], None]] = (),
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.model = model
        self.config = config or TrainConfig()
        # with config.lr None, the learning rate is the named model's default (config.DEFAULT_LR)
        self.lr = self.config.resolved_lr(model_name)
        self.loss = loss
        self.callbacks = list(callbacks)
        self.accelerator = get_accelerator(self.config.mixed_precision)

    @property
    def criterion(self) -> str:
        """The validation metric that early stopping minimises."""
        return "mse" if self.loss == "mse" else "loss"

    def _loader(self, ds: Dataset[Any], batch_size: int, shuffle: bool) -> DataLoader[Any]:
        generator = torch.Generator().manual_seed(self.config.seed)
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=False, generator=generator)

    def fit(self, train: Dataset[Any], val: Dataset[Any] | None = None) -> History:
        cfg = self.config
        acc = self.accelerator
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters")
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=cfg.weight_decay, fused=True)
        # every process iterates the same seeded global batches and trains on its share of each
        # (:func:`shard_batch`), so K processes take the same optimisation steps as one
        train_loader = self._loader(train, cfg.batch_size, shuffle=True)
        model, optimizer = acc.prepare(self.model, optimizer)
        world, rank = acc.num_processes, acc.process_index
        steps_per_epoch = len(train_loader)
        total = (
            steps_per_epoch * cfg.epochs
            if cfg.max_steps is None
            else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(max(total, 1)))
        history = History()
        best: dict[str, torch.Tensor] | None = None
        # fp16 needs loss scaling; bf16 and fp32 do not (the scaler is then a no-op)
        scaler = torch.amp.GradScaler(acc.device.type, enabled=cfg.mixed_precision == "fp16")
        bad_validations = 0
        val_every = cfg.val_every or steps_per_epoch
        start = time.perf_counter()
        progress = None
        if cfg.progress and acc.is_local_main_process:
            from tqdm.auto import tqdm

            progress = tqdm(total=total, desc="train", unit="step", leave=False)
        running, running_steps = 0.0, 0
        val_seconds = 0.0  # validation time is not training time
        done = False
        for epoch in range(cfg.epochs):
            for callback in self.callbacks:
                self.model = acc.unwrap_model(model)
                callback(self, epoch)
            model.train()
            for batch_x, batch_y in train_loader:
                # one process trains on the whole batch: no share or count of loss terms to compute
                x, y, terms = ((batch_x, batch_y, 1.0) if world == 1
                               else shard_batch(batch_x, batch_y, rank, world, self.loss))
                x, y = _to(x, acc.device), y.to(acc.device)
                with autocast(cfg.mixed_precision, acc.device):
                    out = _call(model, x)
                    if world == 1:
                        loss = compute_loss(self.loss, out, y)
                        objective = loss
                    else:
                        # this share's terms of the global batch's mean; DDP averages gradients over
                        # the processes, hence the factor world
                        local = compute_loss(self.loss, out, y, reduction="sum") / terms
                        objective = local * world
                        loss = acc.reduce(local.detach(), reduction="sum")  # the global batch's mean
                    penalty = model_penalty(model)
                    if penalty is not None:
                        objective = objective + penalty
                        loss = loss + penalty.detach()
                acc.backward(scaler.scale(objective))
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                history.steps += 1
                running += float(loss.detach())
                running_steps += 1
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(loss=f"{float(loss):.4f}")
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
                    if val is not None:
                        val_loss = self.evaluate(val)[self.criterion]
                        record["val_loss"] = val_loss
                        model.train()
                        if val_loss < history.best_val_loss:
                            history.best_val_loss, history.best_step = val_loss, history.steps
                            # parameters and learned buffers (a label mapping refitted each epoch)
                            best = snapshot_trained(acc.unwrap_model(model))
                            bad_validations = 0
                        else:
                            bad_validations += 1
                    history.records.append(record)
                    logger.info("step %d epoch %.2f %s", history.steps, record["epoch"],
                                " ".join(f"{k}={v:.4f}" for k, v in record.items() if k.endswith("loss")))
                    val_seconds += time.perf_counter() - val_start
                    if bad_validations >= cfg.patience:
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
        if progress is not None:
            progress.close()
        self.model = acc.unwrap_model(model)
        # the Accelerator is shared by the process: drop its references to this run's model, optimiser and
        # loaders, or every fit would keep them alive. free_memory() also runs gc.collect() (a quarter of a
        # second a fit in a large process, which dominates small fits in a grid search); on a CPU there is no
        # device cache to empty, so the lists are cleared directly
        if acc.device.type == "cpu":
            for name in ("_models", "_optimizers", "_schedulers", "_dataloaders", "_custom_objects"):
                registered = getattr(acc, name, None)
                if isinstance(registered, list):
                    registered.clear()
        else:
            acc.free_memory()
        if best is not None:
            restore_trained(self.model, best)
        self.model.eval()
        return history

    @torch.no_grad()
    def evaluate(self, ds: Dataset[Any], batch_size: int | None = None) -> dict[str, float]:
        """Over every example of ``ds`` (no dropped batch): MSE and MAE, or mean cross-entropy (``loss``)
        and ``accuracy`` (over scored positions for token targets)."""
        acc = self.accelerator
        loader = acc.prepare_data_loader(self._loader(ds, batch_size or self.config.eval_batch_size, False))
        try:
            return self._evaluate(loader)
        finally:
            # the Accelerator registers every prepared loader; unregister this one so repeated
            # evaluations (one per validation) do not pile up
            registered = getattr(acc, "_dataloaders", None)
            if registered is not None and loader in registered:
                registered.remove(loader)

    def _evaluate(self, loader: Any) -> dict[str, float]:
        acc = self.accelerator
        model = self.model
        was_training = model.training
        model.eval()
        errors = ErrorAccumulator()
        windows = 0
        total_loss, correct, scored = 0.0, 0, 0
        for x, y in loader:
            with autocast(self.config.mixed_precision, acc.device):
                pred = _call(model, _to(x, acc.device)).float()
            pred, target = acc.gather_for_metrics((pred, y.to(acc.device)))
            windows += int(target.shape[0])
            if self.loss == "mse":
                errors.update(pred, target)
            else:
                keep = target != IGNORE_INDEX
                total_loss += float(compute_loss(self.loss, pred, target, reduction="sum"))
                correct += int((pred.argmax(-1)[keep] == target[keep]).sum())
                scored += int(keep.sum())
        model.train(was_training)
        if self.loss == "mse":
            result = errors.compute()
        else:
            if scored == 0:
                raise ValueError("no labelled examples to evaluate")
            result = {"loss": total_loss / scored, "accuracy": correct / scored, "n": float(scored)}
        result["windows"] = float(windows)
        return result

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """The model's outputs for ``x`` (forecasts ``(B, L, N)`` -> ``(B, H, N)``, or scores), on the CPU."""
        model = self.model.to(self.accelerator.device)
        size = batch_size or self.config.eval_batch_size
        return predict_batches(model, x, size, self.config.mixed_precision, self.accelerator.device,
                               progress=self.config.progress)


__all__ = ["IGNORE_INDEX", "LOSSES", "PRECISIONS", "History", "Trainer", "autocast", "check_precision",
           "compute_loss", "get_accelerator", "model_penalty", "predict_batches", "restore_trained",
           "set_seed", "shard_batch", "snapshot_trained"]

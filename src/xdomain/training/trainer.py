"""Training and evaluation on HF Accelerate: the same code on a CPU, one GPU or many processes.

Only the parameters with ``requires_grad`` reach the optimiser; the best state by validation loss (the
trainable parameters *and* the learned buffers refitted during training: label mappings, feature
scalers) is kept (early stopping) and restored at the end. Test metrics are computed on every example of
the split: the evaluation loader never drops its last partial batch, and under several processes the
gathered metrics count each example once.

Data: any map-style ``torch.utils.data.Dataset`` with an optional ``collate_fn`` (default: torch's
default collate), whose batches are ``(x, y)`` or ``(x, y, weight)`` with ``x`` any nested structure of
tensors (:mod:`xdomain.training.batches`). The losses, ``"mse"`` and ``"cross_entropy"``, optionally
weighted per example, plus any ``penalty()`` of the model, are :mod:`xdomain.training.losses`'s.
Evaluation ignores weights: its metrics count every example once.

The loop (:func:`~xdomain.training.loop.train_loop`: epochs, validation, early stopping, time budget,
history, best restore) is written once; what turns a batch into an update is a pluggable
:class:`~xdomain.training.loop.TrainStep`: :class:`GradientStep` here (autocast forward, loss, backward,
scaled AdamW step, schedule), the zeroth-order step of :mod:`xdomain.training.zeroth_order` for black
boxes.

Precision (``TrainConfig.mixed_precision``: ``"no"``, ``"bf16"``, ``"fp16"``) is applied per call with
``torch.autocast`` (plus a gradient scaler for fp16), not through the Accelerator, whose state is
process-wide: models of different precisions train one after another in one process.

Several processes: ``torchrun --standalone --nproc_per_node K script.py`` (gloo on CPUs; measured here,
``accelerate launch --num_processes 2`` started a single process on a CPU machine without MPI). Every
process walks the same seeded global batches of ``batch_size`` rows and trains on its share
(:func:`~xdomain.training.batches.shard_batch`), so K processes take the same steps as one within float32
rounding (``tests/test_multiprocess.py``: 1e-4). Dropout masks are drawn per process, so a model with
dropout matches one process only in distribution.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xdomain.config import PRECISIONS, TrainConfig
from xdomain.training.batches import (
    Collate,
    _call,
    _share,
    batch_weight,
    iter_batches,
    model_input,
    split_batch,
    to_device,
)
from xdomain.training.loop import (
    History,
    TrainStep,
    lr_factor,
    restore_trained,
    snapshot_trained,
    train_loop,
)
from xdomain.training.losses import IGNORE_INDEX, LOSSES, compute_loss, model_penalty
from xdomain.training.metrics import ErrorAccumulator

_ACCELERATOR: list[Any] = []


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


@torch.no_grad()
def predict_batches(
    model: nn.Module, x: Any, batch_size: int, mixed_precision: str = "no",
    device: torch.device | None = None, progress: bool = False, collate_fn: Collate | None = None,
) -> torch.Tensor:
    """``model``'s outputs for every example of ``x`` in eval mode, in batches on ``device`` (default:
    where the model's parameters are), returned in float32 on the CPU.

    ``x``: a tensor (one example a row), or a dataset batched with ``collate_fn`` whose batches are
    ``(x,)``, ``(x, y)`` or ``(x, y, weight)`` (only ``x`` is used) or a bare input
    (:func:`~xdomain.training.batches.model_input`).
    """
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.eval()
    tensor = isinstance(x, torch.Tensor)
    batches: Any = iter_batches(x, batch_size, collate_fn)
    if progress:
        from tqdm.auto import tqdm

        rows = int(x.shape[0]) if tensor else len(x)
        batches = tqdm(batches, total=math.ceil(rows / batch_size), desc="predict", unit="batch", leave=False)
    outs = []
    for batch in batches:
        inputs = batch if tensor else model_input(batch)
        with autocast(mixed_precision, device):
            outs.append(_call(model, to_device(inputs, device)).float().cpu())
    if not outs:
        raise ValueError("nothing to predict: x has 0 rows")
    return torch.cat(outs)


def set_seed(seed: int) -> None:
    from accelerate.utils import set_seed as _set_seed

    _set_seed(seed)


class GradientStep(TrainStep):
    """The gradient step of :class:`Trainer`: forward under autocast, the (weighted) loss plus any
    penalty, backward (loss-scaled for fp16), an AdamW step on the trainable parameters and the
    learning-rate schedule of ``config.lr_schedule`` (default the warm-up/cosine of
    :func:`~xdomain.training.loop.warmup_cosine`). Under several processes each
    trains on its share of the global batch (:func:`~xdomain.training.batches.shard_batch`) and the
    gradients are all-reduced."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer
        self.params = [p for p in trainer.model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters")

    def start(self, steps_per_epoch: int, total: int) -> None:
        t = self.trainer
        cfg, acc = t.config, t.accelerator
        optimizer = torch.optim.AdamW(self.params, lr=t.lr, weight_decay=cfg.weight_decay, fused=True)
        # every process iterates the same seeded global batches and trains on its share of each
        # (:func:`shard_batch`), so K processes take the same optimisation steps as one
        self.model, self.optimizer = acc.prepare(t.model, optimizer)
        self.world, self.rank = acc.num_processes, acc.process_index
        schedule = lr_factor(cfg.lr_schedule, steps_per_epoch, total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        # fp16 needs loss scaling; bf16 and fp32 do not (the scaler is then a no-op)
        self.scaler = torch.amp.GradScaler(acc.device.type, enabled=cfg.mixed_precision == "fp16")

    def begin_epoch(self, epoch: int) -> None:
        t = self.trainer
        for callback in t.callbacks:
            t.model = t.accelerator.unwrap_model(self.model)
            callback(t, epoch)
        self.model.train()

    def __call__(self, batch: Any, step: int) -> float:
        t = self.trainer
        acc, model, world = t.accelerator, self.model, self.world
        batch_x, batch_y, batch_w = split_batch(batch)
        weight = batch_weight(batch_w, batch_y)
        if world == 1 and weight is None:
            # one process trains on the whole batch: no share or count of loss terms to compute
            x, y, terms = batch_x, batch_y, 1.0
        else:
            x, y, weight, terms = _share(batch_x, batch_y, weight, self.rank, world, t.loss)
        x, y = to_device(x, acc.device), y.to(acc.device)
        with autocast(t.config.mixed_precision, acc.device):
            out = _call(model, x)
            if world == 1 and weight is None:
                loss = compute_loss(t.loss, out, y)
                objective = loss
            else:
                w = None if weight is None else weight.to(acc.device)
                # this share's terms of the global batch's (weighted) mean
                local = compute_loss(t.loss, out, y, reduction="sum", weight=w) / terms
                if world == 1:
                    loss = objective = local
                else:
                    # DDP averages gradients over the processes, hence the factor world
                    objective = local * world
                    loss = acc.reduce(local.detach(), reduction="sum")  # the global batch's mean
            penalty = model_penalty(model)
            if penalty is not None:
                objective = objective + penalty
                loss = loss + penalty.detach()
        acc.backward(self.scaler.scale(objective))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def after_validation(self) -> None:
        self.model.train()

    def snapshot(self) -> dict[str, torch.Tensor]:
        # parameters and learned buffers (a label mapping refitted each epoch)
        return snapshot_trained(self.trainer.accelerator.unwrap_model(self.model))

    def restore(self, snapshot: dict[str, torch.Tensor]) -> None:
        restore_trained(self.trainer.model, snapshot)

    def finish(self) -> None:
        t = self.trainer
        acc = t.accelerator
        t.model = acc.unwrap_model(self.model)
        # the Accelerator is shared by the process: drop its references to this run's model, optimiser and
        # loaders, or every fit would keep them alive. free_memory() also runs gc.collect() (a quarter of a
        # second a fit in a large process, which dominates small fits in a grid search); on a CPU there is
        # no device cache to empty, so the lists are cleared directly
        if acc.device.type == "cpu":
            for name in ("_models", "_optimizers", "_schedulers", "_dataloaders", "_custom_objects"):
                registered = getattr(acc, name, None)
                if isinstance(registered, list):
                    registered.clear()
        else:
            acc.free_memory()
        self.model = t.model  # no reference to a wrapper (DDP) left behind either


class Trainer:
    """Fit a model and evaluate it: MSE for forecasts (``x (B, L, N)`` -> ``(B, H, N)``), cross-entropy
    for classes or tokens, on any map-style dataset of ``(x, y)`` or ``(x, y, weight)`` items.

    Args:
        model: any module; only its parameters with ``requires_grad`` train.
        config: the :class:`TrainConfig`.
        model_name: picks the default learning rate when ``config.lr`` is None.
        loss: ``"mse"`` or ``"cross_entropy"``.
        callbacks: called as ``callback(trainer, epoch)`` before each epoch (iterative label mapping
            recomputes its mapping there).
        collate_fn: makes a batch from a list of dataset items (for variable-size examples: pad, or build
            a graph batch); default torch's default collate. :meth:`fit`, :meth:`evaluate` and
            :meth:`predict` take one too, which then wins.

    The update itself is :meth:`make_step`'s :class:`~xdomain.training.loop.TrainStep` (a
    :class:`GradientStep`); a subclass returns another one there to train differently within the same
    loop (:func:`~xdomain.training.loop.train_loop`).
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig | None = None,
        model_name: str | None = None,
        loss: str = "mse",
        callbacks: Sequence[Callable[[Trainer, int], None]] = (),
        collate_fn: Collate | None = None,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.model = model
        self.config = config or TrainConfig()
        # with config.lr None, the learning rate is the named model's default (config.DEFAULT_LR)
        self.lr = self.config.resolved_lr(model_name)
        self.loss = loss
        self.callbacks = list(callbacks)
        self.collate_fn = collate_fn
        self.accelerator = get_accelerator(self.config.mixed_precision)

    @property
    def criterion(self) -> str:
        """The validation metric that early stopping minimises."""
        return "mse" if self.loss == "mse" else "loss"

    def _loader(
        self, ds: Dataset[Any], batch_size: int, shuffle: bool, collate_fn: Collate | None = None
    ) -> DataLoader[Any]:
        generator = torch.Generator().manual_seed(self.config.seed)
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=False, generator=generator,
                          collate_fn=collate_fn or self.collate_fn)

    def make_step(self) -> TrainStep:
        """The update :meth:`fit` makes from each batch (override to plug in another step)."""
        return GradientStep(self)

    def fit(
        self, train: Dataset[Any], val: Dataset[Any] | None = None, collate_fn: Collate | None = None
    ) -> History:
        """Train on ``train``; validate on ``val`` (if given) for early stopping and the best restore.
        ``collate_fn`` (default: the constructor's) batches both."""
        step = self.make_step()
        if len(train) == 0:  # type: ignore[arg-type]
            raise ValueError("the training set is empty")
        collate = collate_fn or self.collate_fn
        loader = self._loader(train, self.config.batch_size, shuffle=True, collate_fn=collate)

        def validate() -> dict[str, float]:
            assert val is not None
            return {"val_loss": self.evaluate(val, collate_fn=collate)[self.criterion]}

        progress = self.config.progress and self.accelerator.is_local_main_process
        history = train_loop(step, loader, self.config, validate if val is not None else None, progress)
        self.model.eval()
        return history

    @torch.no_grad()
    def evaluate(
        self, ds: Dataset[Any], batch_size: int | None = None, collate_fn: Collate | None = None
    ) -> dict[str, float]:
        """Over every example of ``ds`` (no dropped batch): MSE and MAE, or mean cross-entropy (``loss``)
        and ``accuracy`` (over scored positions for token targets). Weights in the batches are ignored."""
        acc = self.accelerator
        size = batch_size or self.config.eval_batch_size
        loader = acc.prepare_data_loader(self._loader(ds, size, False, collate_fn))
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
        batches = loader
        if self.config.progress and acc.is_local_main_process and len(loader) > 1:
            from tqdm.auto import tqdm

            batches = tqdm(loader, desc="evaluate", unit="batch", leave=False)
        for batch in batches:
            x, y, _ = split_batch(batch)
            with autocast(self.config.mixed_precision, acc.device):
                pred = _call(model, to_device(x, acc.device)).float()
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
    def predict(
        self, x: Any, batch_size: int | None = None, collate_fn: Collate | None = None
    ) -> torch.Tensor:
        """The model's outputs for ``x`` (forecasts ``(B, L, N)`` -> ``(B, H, N)``, or scores), on the CPU:
        ``x`` a tensor or a dataset (:func:`predict_batches`)."""
        model = self.model.to(self.accelerator.device)
        size = batch_size or self.config.eval_batch_size
        collate = None if isinstance(x, torch.Tensor) else collate_fn or self.collate_fn
        return predict_batches(model, x, size, self.config.mixed_precision, self.accelerator.device,
                               progress=self.config.progress, collate_fn=collate)


__all__ = [
    "GradientStep", "Trainer", "autocast", "check_precision", "get_accelerator", "predict_batches",
    "set_seed",
]

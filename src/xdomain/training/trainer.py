"""Training and evaluation on HF Accelerate: the same code on a CPU, one GPU or many processes.

Only the parameters with ``requires_grad`` reach the optimiser; the best state by validation loss (the
trainable parameters *and* the learned buffers refitted during training: label mappings, feature
scalers) is kept (early stopping) and restored at the end. Test metrics are computed on every example of
the split: the evaluation loader never drops its last partial batch, and under several processes the
gathered metrics count each example once.

Data: any map-style ``torch.utils.data.Dataset`` with an optional ``collate_fn`` (default: torch's
default collate). A batch is ``(x, y)`` or ``(x, y, weight)``: ``x`` any nested structure of tensors
(dicts, lists/tuples, dataclasses, objects with a ``.to(device)`` method such as a graph batch), moved to
the device by :func:`to_device` and given to the model as ``model(*x)`` for a tuple/list, else
``model(x)``; ``y`` a tensor of targets; ``weight`` a ``(B,)`` tensor of per-example weights.

Two losses: ``"mse"`` (forecasting, regression) and ``"cross_entropy"`` (classification with ``(B, C)``
scores and ``(B,)`` labels, or token prediction with ``(B, L, C)`` scores and ``(B, L)`` labels where
``-100`` marks positions that are not scored). Any part of the model with a ``penalty()`` method (an L1
sparsity term, say) has it added to the training loss. With weights, every loss term (an element for
``"mse"``, a row for class labels, a scored position for token labels) counts with its example's weight
and the batch loss is ``sum(w * l) / sum(w)`` over the terms of the global batch (:func:`compute_loss`
with ``weight=``); constant weights (all ones, say) are the unweighted mean and take its exact path.
Evaluation ignores weights: its metrics count every example once.

The loop (:func:`train_loop`: epochs, validation, early stopping, time budget, history, best restore) is
written once; what turns a batch into an update is a pluggable :class:`TrainStep`: :class:`GradientStep`
here (autocast forward, loss, backward, scaled AdamW step, schedule), the zeroth-order step of
:mod:`xdomain.training.zeroth_order` for black boxes.

Precision (``TrainConfig.mixed_precision``: ``"no"``, ``"bf16"``, ``"fp16"``) is applied per call with
``torch.autocast`` (plus a gradient scaler for fp16), not through the Accelerator, whose state is
process-wide: models of different precisions train one after another in one process.

Several processes: ``torchrun --standalone --nproc_per_node K script.py`` (gloo on CPUs; measured here,
``accelerate launch --num_processes 2`` started a single process on a CPU machine without MPI). Every
process walks the same seeded global batches of ``batch_size`` rows and trains on its share
(:func:`shard_batch`; every tensor leaf of a nested ``x`` is split along dim 0), so K processes take the
same steps as one within float32 rounding (``tests/test_multiprocess.py``: 1e-4). Dropout masks are drawn
per process, so a model with dropout matches one process only in distribution.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from xdomain.config import PRECISIONS, TrainConfig
from xdomain.training.metrics import ErrorAccumulator

_ACCELERATOR: list[Any] = []
logger = logging.getLogger("xdomain.training")

# turns a list of dataset items into a batch (torch's default collate when None)
Collate = Callable[[list[Any]], Any]


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


# -- batches: any nested structure -----------------------------------------------------------------
def _map_fields(obj: Any, fn: Callable[[Any], Any]) -> Any:
    """A shallow copy of the dataclass instance ``obj`` with ``fn`` applied to every field (``init=False``
    and frozen fields included; ``__post_init__`` does not run again)."""
    new = copy.copy(obj)
    for f in dataclasses.fields(obj):
        object.__setattr__(new, f.name, fn(getattr(obj, f.name)))
    return new


def _rebuild(obj: Any, values: Any) -> Any:
    """A container of ``obj``'s type holding ``values`` (a dict for a mapping, an iterable otherwise)."""
    kind: Any = type(obj)
    if isinstance(obj, Mapping):
        try:
            return kind(values)
        except TypeError:  # a mapping type whose constructor takes something else (a defaultdict)
            return dict(values)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return kind(*values)
    return kind(values)


def to_device(obj: Any, device: torch.device | str) -> Any:
    """``obj`` with every tensor in it on ``device``: tensors; objects with a ``.to(device)`` method (a
    torch_geometric ``Batch``, a tokenizer's ``BatchEncoding``), which move themselves; dicts and other
    mappings, lists, tuples and namedtuples, dataclass instances, recursively (rebuilt, never changed in
    place). Anything else (numbers, strings, None) comes back as it is. A tensor already on ``device`` is
    returned itself, not copied."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, (str, bytes)) or obj is None:
        return obj
    mover = getattr(obj, "to", None)
    if callable(mover) and not isinstance(obj, type):
        return mover(device)
    if isinstance(obj, Mapping):
        return _rebuild(obj, {k: to_device(v, device) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return _rebuild(obj, [to_device(v, device) for v in obj])
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _map_fields(obj, lambda v: to_device(v, device))
    return obj


def split_batch(batch: Any) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
    """``(x, y, weight)`` from a training or evaluation batch ``(x, y)`` or ``(x, y, weight)``; the
    weight is None for a 2-element batch."""
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        shape = f"{len(batch)} elements" if isinstance(batch, (tuple, list)) else type(batch).__name__
        raise ValueError(f"a batch must be (x, y) or (x, y, weight), got {shape}")
    x, y = batch[0], batch[1]
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"the targets y of a batch must be a tensor, got {type(y).__name__}")
    return x, y, batch[2] if len(batch) == 3 else None


def model_input(batch: Any) -> Any:
    """The model input of a prediction batch: the first element of a tuple/list batch (``(x,)``,
    ``(x, y)``, ``(x, y, weight)``; the rest is ignored), else the batch itself (a tensor, a dict, a
    graph batch)."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def batch_weight(weight: Any, y: torch.Tensor) -> torch.Tensor | None:
    """A batch's per-example weights as a float32 ``(B,)`` tensor, checked (finite, >= 0, not all 0), or
    None when there are none or they are all equal: constant weights give the unweighted mean, which
    then takes its own computation (bit for bit what no weights give)."""
    if weight is None:
        return None
    w = torch.as_tensor(weight)
    n = int(y.shape[0])
    if w.shape != (n,):
        raise ValueError(f"weights must have shape (B,) = ({n},), one per example, got {tuple(w.shape)}")
    if w.is_complex():
        raise TypeError(f"weights must be real numbers, got dtype {w.dtype}")
    w = w.to(torch.float32)
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError("weights must be finite and >= 0")
    if n == 0 or bool((w == w[0]).all()):
        if n and float(w[0]) == 0.0:
            raise ValueError("the weights of a batch are all zero: no example would count")
        return None
    return w


def _call(model: Callable[..., Any], x: Any) -> torch.Tensor:
    out: torch.Tensor = model(*x) if isinstance(x, (tuple, list)) else model(x)
    return out


def iter_batches(data: Any, batch_size: int, collate_fn: Collate | None = None) -> Iterator[Any]:
    """The batches of ``data`` in order, none dropped: slices of a tensor; for a :class:`TensorDataset`
    (and no ``collate_fn``) tuples of slices of its tensors (what a loader gives, without collating row
    by row); for any other dataset the batches of a non-shuffling loader with ``collate_fn``."""
    if isinstance(data, torch.Tensor):
        for i in range(0, data.shape[0], batch_size):
            yield data[i : i + batch_size]
    elif isinstance(data, TensorDataset) and collate_fn is None:
        for i in range(0, len(data), batch_size):
            yield tuple(t[i : i + batch_size] for t in data.tensors)
    else:
        yield from DataLoader(data, batch_size=batch_size, shuffle=False, drop_last=False,
                              collate_fn=collate_fn)


@torch.no_grad()
def predict_batches(
    model: nn.Module, x: Any, batch_size: int, mixed_precision: str = "no",
    device: torch.device | None = None, progress: bool = False, collate_fn: Collate | None = None,
) -> torch.Tensor:
    """``model``'s outputs for every example of ``x`` in eval mode, in batches on ``device`` (default:
    where the model's parameters are), returned in float32 on the CPU.

    ``x``: a tensor (one example a row), or a dataset batched with ``collate_fn`` whose batches are
    ``(x,)``, ``(x, y)`` or ``(x, y, weight)`` (only ``x`` is used) or a bare input (:func:`model_input`).
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


def _term_weights(kind: str, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Each example's weight on each of its loss terms: broadcastable to the elements for ``"mse"``, one
    per (flattened) label for cross-entropy, zero where a token label is ``-100``."""
    per_row = weight.reshape((-1,) + (1,) * (y.ndim - 1))
    if kind == "mse":
        return per_row
    return (per_row * (y != IGNORE_INDEX)).reshape(-1)


def _weight_total(kind: str, y: torch.Tensor, term_weights: torch.Tensor) -> torch.Tensor:
    """The sum of the weights of all loss terms (:func:`_term_weights`)."""
    return (term_weights.expand(y.shape) if kind == "mse" else term_weights).sum()


def compute_loss(
    kind: str, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean",
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``mse`` on any equal shapes; ``cross_entropy`` on ``(B, C)``/``(B,)`` or ``(B, L, C)``/``(B, L)``.

    ``weight`` ``(B,)``: every loss term of example ``i`` (its elements for ``mse``, its row or its scored
    positions for cross-entropy) counts ``weight[i]`` times: ``"sum"`` is ``sum(w * l)``, ``"mean"`` is
    ``sum(w * l) / sum(w)`` over the terms, ``"none"`` the weighted terms."""
    if kind == "mse":
        if weight is None:
            return F.mse_loss(out.float(), y.float(), reduction=reduction)
        terms = F.mse_loss(out.float(), y.float(), reduction="none")
    else:
        if out.ndim != y.ndim + 1 or out.shape[:-1] != y.shape:
            raise ValueError(f"cross-entropy needs scores (..., C) and labels (...), got {tuple(out.shape)} "
                             f"and {tuple(y.shape)}")
        terms = F.cross_entropy(
            out.reshape(-1, out.shape[-1]).float(), y.reshape(-1).long(), ignore_index=IGNORE_INDEX,
            reduction="none" if weight is not None else reduction,
        )
        if weight is None:
            return terms
    w = _term_weights(kind, y, weight.to(device=terms.device, dtype=terms.dtype))
    weighted = terms * w
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    if reduction == "mean":
        return weighted.sum() / _weight_total(kind, y, w)
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def model_penalty(model: nn.Module) -> torch.Tensor | None:
    """The sum of ``penalty()`` over the parts that define one (sparsity terms), or None."""
    terms = []
    for m in model.modules():
        penalty: Any = getattr(m, "penalty", None)
        if callable(penalty):
            terms.append(penalty())
    return torch.stack([t.reshape(()) for t in terms]).sum() if terms else None


# -- several processes: each trains on its share of the global batch -------------------------------
def _slice_rows(obj: Any, rows: slice) -> Any:
    """``obj`` with every tensor leaf cut to ``rows`` along dim 0 (nested like :func:`to_device`)."""
    if isinstance(obj, torch.Tensor):
        return obj[rows]
    if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        return obj  # a value for the whole batch
    if isinstance(obj, Mapping):
        return _rebuild(obj, {k: _slice_rows(v, rows) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return _rebuild(obj, [_slice_rows(v, rows) for v in obj])
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _map_fields(obj, lambda v: _slice_rows(v, rows))
    raise TypeError(
        f"cannot split a batch holding a {type(obj).__name__} over several processes: a batch's x must be "
        "tensors (one row per example) in dicts, lists, tuples or dataclasses; train such batches in "
        "one process"
    )


def loss_terms(kind: str, y: torch.Tensor, weight: torch.Tensor | None = None) -> float:
    """What a global batch's mean loss divides by: its number of loss terms (every element for ``"mse"``,
    every row for class labels, every scored position for token labels), or with ``weight`` ``(B,)`` the
    sum of the terms' weights."""
    if weight is not None:
        return float(_weight_total(kind, y, _term_weights(kind, y, weight.double())))
    if kind == "mse":
        return float(y.numel())
    if y.ndim > 1:
        return float((y != IGNORE_INDEX).sum())
    return float(y.shape[0])


def _share(
    x: Any, y: torch.Tensor, weight: torch.Tensor | None, rank: int, world: int, loss: str,
) -> tuple[Any, torch.Tensor, torch.Tensor | None, float]:
    """:func:`shard_batch` with the batch's weights cut along (and counted in the total)."""
    total = loss_terms(loss, y, weight)
    if world == 1:
        return x, y, weight, total
    n = int(y.shape[0])
    bounds = [n * r // world for r in range(world + 1)]
    lo, hi = bounds[rank], bounds[rank + 1]
    empty = hi <= lo
    rows = slice(0, 1) if empty else slice(lo, hi)
    local_w = None if weight is None else weight[rows]
    # no term at all (no scored token, or weight only on rows without one): nothing to divide
    count = math.inf if empty else max(total, 1.0) if weight is None else total if total > 0 else 1.0
    return _slice_rows(x, rows), y[rows], local_w, count


def shard_batch(x: Any, y: torch.Tensor, rank: int, world: int, loss: str) -> tuple[Any, torch.Tensor, float]:
    """This process's share of a global batch, and the global batch's number of loss terms.

    Rows are split as evenly as possible (contiguous blocks), so K processes together see every row once;
    a nested ``x`` has each tensor leaf cut along dim 0. The count is what the global batch's mean loss
    divides by (:func:`loss_terms`). A process left without a row (a last batch smaller than the world)
    gets the first row and a weight of zero (returned as a count of ``inf``), so it still joins the
    gradient all-reduce without counting.
    """
    local_x, local_y, _, total = _share(x, y, None, rank, world, loss)
    return local_x, local_y, total


# -- the loop, written once; the step is pluggable -------------------------------------------------
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

    Every ``config.val_every`` steps (default: once an epoch) and after the last, a record of the mean
    training loss since the last record is kept; ``validate()`` (if given) adds its entries, whose
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


class GradientStep(TrainStep):
    """The gradient step of :class:`Trainer`: forward under autocast, the (weighted) loss plus any
    penalty, backward (loss-scaled for fp16), an AdamW step on the trainable parameters and the
    warm-up/cosine schedule (:func:`warmup_cosine`). Under several processes each trains on its share of
    the global batch (:func:`shard_batch`) and the gradients are all-reduced."""

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
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(max(total, 1)))
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

    The update itself is :meth:`make_step`'s :class:`TrainStep` (a :class:`GradientStep`); a subclass
    returns another one there to train differently within the same loop (:func:`train_loop`).
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
        for batch in loader:
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
    "IGNORE_INDEX", "LOSSES", "PRECISIONS", "Collate", "GradientStep", "History", "TrainStep", "Trainer",
    "autocast", "batch_weight", "check_precision", "compute_loss", "get_accelerator", "iter_batches",
    "loss_terms", "model_input", "model_penalty", "predict_batches", "restore_trained", "set_seed",
    "shard_batch", "snapshot_trained", "split_batch", "to_device", "train_loop",
]

"""Batches of any nested structure: moved to a device, split into ``(x, y[, weight])``, iterated, and
shared out over several processes.

A batch is ``(x, y)`` or ``(x, y, weight)``: ``x`` any nested structure of tensors (dicts, lists/tuples,
dataclasses, objects with a ``.to(device)`` method such as a graph batch), moved to the device by
:func:`to_device` and given to the model as ``model(*x)`` for a tuple/list, else ``model(x)``; ``y`` a
tensor of targets; ``weight`` a ``(B,)`` tensor of per-example weights (:func:`batch_weight`).

Several processes: every process walks the same seeded global batches of ``batch_size`` rows and trains
on its share (:func:`shard_batch`; every tensor leaf of a nested ``x`` is split along dim 0), so K
processes take the same steps as one within float32 rounding (``tests/test_multiprocess.py``: 1e-4).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from xdomain.training.losses import loss_terms

# turns a list of dataset items into a batch (torch's default collate when None)
Collate = Callable[[list[Any]], Any]


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
    divides by (:func:`~xdomain.training.losses.loss_terms`). A process left without a row (a last batch
    smaller than the world) gets the first row and a weight of zero (returned as a count of ``inf``), so
    it still joins the gradient all-reduce without counting.
    """
    local_x, local_y, _, total = _share(x, y, None, rank, world, loss)
    return local_x, local_y, total


__all__ = [
    "Collate", "batch_weight", "iter_batches", "model_input", "shard_batch", "split_batch", "to_device",
]

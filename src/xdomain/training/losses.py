"""The training losses and penalties.

Two losses: ``"mse"`` (forecasting, regression) and ``"cross_entropy"`` (classification with ``(B, C)``
scores and ``(B,)`` labels, or token prediction with ``(B, L, C)`` scores and ``(B, L)`` labels where
``-100`` marks positions that are not scored). Any part of the model with a ``penalty()`` method (an L1
sparsity term, say) has it added to the training loss (:func:`model_penalty`). With weights, every loss
term (an element for ``"mse"``, a row for class labels, a scored position for token labels) counts with
its example's weight and the batch loss is ``sum(w * l) / sum(w)`` over the terms of the global batch
(:func:`compute_loss` with ``weight=``; :func:`loss_terms` counts a global batch's terms).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

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


__all__ = ["IGNORE_INDEX", "LOSSES", "compute_loss", "loss_terms", "model_penalty"]

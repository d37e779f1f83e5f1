"""O: a linear head over a frozen backbone's output (pooled over positions when there are several)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xdomain.registry import HEADS

POOLINGS = ("mean", "max", "first", "none")


@HEADS.register("linear")
class LinearHead(nn.Module):
    """O: pool the backbone's output over positions, then one ``nn.Linear`` to the target classes.

    The learned output layer of the reprogramming survey's "linear" output alignment, as used on top of a
    frozen language model by R2DL (Vinod, Chen, Das, Digital Discovery 2025) and WARP (Hambardzumyan et
    al., ACL 2021); on an embedding backbone it is a linear probe over the reprogrammed input.

    Args:
        num_classes: number of target classes ``T``.
        pooling: how ``(B, S, D)`` is reduced over ``S``: ``"mean"`` (masked mean over real tokens),
            ``"max"`` (masked max), ``"first"`` (the first real token: position 0 without a mask, e.g.
            BERT's ``[CLS]``; the first position the mask marks real, e.g. under left padding) or
            ``"none"`` (no pooling; the input must already be ``(B, D)``).
        dropout: applied to the pooled features, before the linear layer.
        standardize: scale each pooled feature by the mean and standard deviation of the frozen model's
            outputs on the training data (fitted once, before training, by :meth:`fit_mapping`; saved with
            the checkpoint, refitted at the start of every epoch as the input program moves them), as a
            linear probe's ``StandardScaler`` does. Frozen classifiers often give
            outputs whose spread between examples is tiny next to their offset; without this a linear
            layer trained by gradient descent barely separates them (measured on GunPoint with CREPE).

    The input width ``D`` is read from the backbone in :meth:`bind`: ``num_outputs`` for classifier
    backbones (logits or embeddings), ``hidden_size`` for language backbones.

    Shapes:
        - input: ``(B, D)``, or ``(B, S, D)`` with an optional ``attention_mask (B, S)`` (1 = real token)
        - output: ``(B, T)``
    """

    linear: nn.Linear
    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    # fitted from data, not by gradient: saved with the trained parameters (xdomain.reprogrammer)
    learned_buffers = ("feature_mean", "feature_std")

    def __init__(
        self, num_classes: int, pooling: str = "mean", dropout: float = 0.0, standardize: bool = False
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.pooling = pooling
        self.dropout = dropout
        self.standardize = standardize
        self.in_features: int | None = None

    @property
    def refit_each_epoch(self) -> bool:
        # the program moves the frozen model's outputs as it learns: the scaler follows them each epoch
        return bool(self.standardize)

    def bind(self, backbone: Any, **_: Any) -> LinearHead:
        """Read the input width from the backbone and create the linear layer; returns self."""
        num_outputs = getattr(backbone, "num_outputs", None)
        width = num_outputs if num_outputs is not None else getattr(backbone, "hidden_size", None)
        if width is None:
            raise TypeError(
                f"LinearHead reads its input width from backbone.num_outputs (classifier backbones) or "
                f"backbone.hidden_size (language backbones); {type(backbone).__name__} has neither"
            )
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise ValueError(f"the backbone's output width must be a positive integer, got {width!r}")
        if self.in_features is not None:
            if self.in_features != width:
                raise ValueError(f"this head is bound to a backbone of width {self.in_features}; "
                                 f"got another of width {width}")
            return self
        T = self.num_classes
        if not isinstance(T, int) or isinstance(T, bool) or T < 1:
            raise ValueError(f"num_classes must be a positive integer, got {T!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; expected one of {list(POOLINGS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        self.linear = nn.Linear(width, T)
        self.drop = nn.Dropout(self.dropout)
        self.register_buffer("feature_mean", torch.zeros(width))
        self.register_buffer("feature_std", torch.ones(width))
        self.in_features = width
        return self

    @torch.no_grad()
    def fit_mapping(self, outputs: torch.Tensor, targets: torch.Tensor | None = None,
                    attention_mask: torch.Tensor | None = None) -> None:
        """With ``standardize``, fit the feature mean and standard deviation from the frozen model's
        outputs on the training data (``(N, D)`` or ``(N, S, D)``); a no-op otherwise. (Named as
        :meth:`LabelMappingHead.fit_mapping <xdomain.heads.label_mapping.LabelMappingHead.fit_mapping>`:
        the estimators call it on any head that has it.)"""
        del targets
        if not self.standardize:
            return
        if self.in_features is None:
            raise RuntimeError("LinearHead is not bound to a backbone; call head.bind(backbone) first")
        pooled = self.pool(outputs.float(), attention_mask)  # (N, D)
        if pooled.shape[0] < 2:
            raise ValueError(f"standardizing needs at least 2 examples, got {pooled.shape[0]}")
        std = pooled.std(0)
        # a feature that does not vary over the training data (a position only the program reaches) must
        # not be divided by ~0: the program moves it between refits, and the quotient would explode
        floor = 1e-2 * float(std.square().mean().sqrt()) + 1e-6
        self.feature_mean.copy_(pooled.mean(0))
        self.feature_std.copy_(std.clamp_min(floor))

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, D)`` unchanged, or ``(B, S, D)`` pooled over ``S`` -> ``(B, D)``."""
        if hidden.ndim == 2:
            if attention_mask is not None:
                raise ValueError(f"attention_mask is for (B, S, D) input; got input of shape "
                                 f"{tuple(hidden.shape)} with a mask of shape {tuple(attention_mask.shape)}")
            return hidden
        if hidden.ndim != 3:
            raise ValueError(f"LinearHead takes (B, D) or (B, S, D) input, got shape {tuple(hidden.shape)}")
        if self.pooling == "none":
            raise ValueError(f"pooling='none' needs (B, D) input, got (B, S, D) = {tuple(hidden.shape)}; "
                             "choose pooling 'mean', 'max' or 'first'")
        if attention_mask is None:
            if self.pooling == "mean":
                return hidden.mean(dim=1)
            if self.pooling == "max":
                return hidden.amax(dim=1)
            return hidden[:, 0]
        if tuple(attention_mask.shape) != tuple(hidden.shape[:2]):
            raise ValueError(f"attention_mask must be (B, S) = {tuple(hidden.shape[:2])}, "
                             f"got shape {tuple(attention_mask.shape)}")
        if attention_mask.dtype != torch.bool and not ((attention_mask == 0) | (attention_mask == 1)).all():
            raise ValueError("attention_mask must hold 0 (padding) and 1 (real token) only")
        real = attention_mask.to(device=hidden.device, dtype=torch.bool)  # (B, S)
        counts = real.sum(dim=1)  # (B,)
        empty = torch.nonzero(counts == 0).flatten().tolist()
        if empty:
            raise ValueError(f"attention_mask rows {empty} mark no real token; nothing to pool")
        if self.pooling == "mean":
            summed = (hidden * real.unsqueeze(-1).to(hidden.dtype)).sum(dim=1)  # (B, D)
            return summed / counts.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "max":
            return hidden.masked_fill(~real.unsqueeze(-1), float("-inf")).amax(dim=1)  # (B, D)
        first = real.int().argmax(dim=1)  # (B,) index of the first real token
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]  # (B, D)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.in_features is None:
            raise RuntimeError("LinearHead is not bound to a backbone; call head.bind(backbone) first")
        if hidden.ndim not in (2, 3) or hidden.shape[-1] != self.in_features:
            expected = f"(B, {self.in_features}) or (B, S, {self.in_features})"
            raise ValueError(f"LinearHead expects {expected}, got shape {tuple(hidden.shape)}")
        pooled = self.pool(hidden, attention_mask)  # (B, D)
        if self.standardize:
            pooled = (pooled - self.feature_mean) / self.feature_std
        return self.linear(self.drop(pooled))  # (B, T)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, pooling={self.pooling!r}, in_features={self.in_features}, "
                f"standardize={self.standardize}")


__all__ = ["POOLINGS", "LinearHead"]

"""f seen as a black box (BAR, Tsai, Chen & Ho, ICML 2020): only class probabilities come out of it.

Trained through by :class:`~xdomain.training.zeroth_order.ZerothOrderTrainer`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xdomain.backbones.base import FrozenBackbone, weights_fingerprint
from xdomain.registry import BACKBONES


@BACKBONES.register("black-box")
class BlackBoxBackbone(FrozenBackbone):
    """f seen as a black box (BAR, Tsai et al., ICML 2020): only class probabilities come out.

    Wraps a frozen classifier backbone whose ``output_kind`` is ``"logits"``; the wrapped model runs under
    ``torch.no_grad()`` and its scores are turned into probabilities ``p = softmax(logits)``. ``forward``
    returns ``log p`` (computed as ``log_softmax``, the same values without underflow to ``-inf``),
    detached: a downstream softmax (a label-mapping head, a cross-entropy) recovers ``p``, and
    no gradient can reach the input program. Every example sent through ``forward`` is one query
    (:attr:`queries`).

    The description of the wrapped backbone (``input_kind``, ``output_kind``, ``num_outputs``,
    ``sample_rate``, ``input_length``, ``image_size``, ``source_labels``, ``name``) is copied, and
    :meth:`spec` / :meth:`fingerprint` are the wrapped backbone's, so a program trained through the black
    box loads onto the white-box model and back.

    Shapes:
        - input: whatever the wrapped backbone takes (``(B, T)`` waveforms or ``(B, 3, H, W)`` images)
        - output: log-probabilities ``(B, num_outputs)``, no ``grad_fn``
    """

    backbone: nn.Module

    def __init__(self, backbone: nn.Module) -> None:
        if not isinstance(backbone, nn.Module):
            raise TypeError(f"BlackBoxBackbone wraps an nn.Module, got {type(backbone).__name__}")
        output_kind = getattr(backbone, "output_kind", "logits")
        if output_kind != "logits":
            raise TypeError(
                f"a black box returns class probabilities, so it needs a backbone with output_kind 'logits'; "
                f"{getattr(backbone, 'name', type(backbone).__name__)!r} has output_kind {output_kind!r}"
            )
        super().__init__(name=str(getattr(backbone, "name", "custom")))
        self.backbone = backbone
        self.input_kind = str(getattr(backbone, "input_kind", FrozenBackbone.input_kind))
        self.output_kind = output_kind
        self.num_outputs = int(getattr(backbone, "num_outputs", FrozenBackbone.num_outputs))
        self.sample_rate = getattr(backbone, "sample_rate", None)
        self.input_length = getattr(backbone, "input_length", None)
        self.image_size = getattr(backbone, "image_size", None)
        labels = getattr(backbone, "source_labels", None)
        self.source_labels = list(labels) if labels is not None else None
        self.queries = 0
        self.freeze()

    def reset_queries(self) -> None:
        self.queries = 0

    def fingerprint(self) -> str:
        own = getattr(self.backbone, "fingerprint", None)
        if callable(own):
            return str(own())
        return weights_fingerprint(self.backbone, f"{type(self.backbone).__name__}|{self.num_outputs}")

    def spec(self) -> dict[str, Any]:
        own = getattr(self.backbone, "spec", None)
        if callable(own):
            return dict(own())
        return super().spec()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits = self.backbone(x)
            if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != x.shape[0]:
                shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                raise ValueError(
                    f"the wrapped backbone {self.name!r} must return scores (B, num_outputs) = "
                    f"({x.shape[0]}, {self.num_outputs}) for a batch of {x.shape[0]}, got {shape}"
                )
            self.queries += int(x.shape[0])
            # log_softmax == log(softmax) but keeps tiny probabilities finite
            return torch.log_softmax(logits.float(), dim=-1).detach()


__all__ = ["BlackBoxBackbone"]

"""O: many-to-one label mapping over a masked language model's vocabulary scores (R2DL's output)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from xdomain.heads.label_mapping import LabelMappingHead
from xdomain.registry import HEADS


@HEADS.register("vocab-label-mapping")
class VocabLabelMappingHead(nn.Module):
    """O: many-to-one label mapping over a masked language model's source vocabulary (R2DL's output).

    The hidden states are mean-pooled over the real tokens, the frozen masked-LM head scores the pooled
    state over the source vocabulary, and a :class:`~xdomain.heads.label_mapping.LabelMappingHead` maps
    those scores to the target classes (``sources_per_class`` vocabulary entries per class, averaged).
    Pooling before the masked-LM head keeps the cost at one ``(D, V)`` product per sequence instead of one
    per token.

    Shapes:
        - input: hidden ``(B, L, D)``, attention_mask ``(B, L)``
        - output: ``(B, num_classes)`` (log mapped probabilities)
    """

    def __init__(self, num_classes: int, sources_per_class: int = 10, method: str = "random", seed: int = 0):
        super().__init__()
        if method != "random":
            # the data-fitted mappings (flm, ilm, blm, blm+) would need the vocabulary scores of every
            # training example at each refit; only R2DL's fixed random assignment is implemented here
            raise ValueError(
                f"VocabLabelMappingHead supports method='random' (R2DL's seeded assignment), got {method!r}; "
                "the data-fitted mappings are not implemented over a vocabulary"
            )
        self.num_classes = num_classes
        self.sources_per_class = sources_per_class
        self.method = method
        self.seed = seed
        self._source: tuple[Any, ...] = ()

    def bind(self, backbone: Any, **_: Any) -> VocabLabelMappingHead:
        if self._source:  # bound once: the same backbone is a no-op, another one an error
            if self._source[0] is backbone:
                return self
            raise ValueError(
                f"this VocabLabelMappingHead is bound to {getattr(self._source[0], 'name', 'a backbone')!r}; "
                f"expected the same backbone, got {getattr(backbone, 'name', type(backbone).__name__)!r}"
            )
        if not hasattr(backbone, "source_logits"):
            raise TypeError(
                f"label mapping over the vocabulary needs a masked language backbone "
                f"(xdomain.backbones.masked_lm.load_masked_lm), got {type(backbone).__name__}"
            )
        self._source = (backbone,)
        view = SimpleNamespace(output_kind="logits", num_outputs=int(backbone.vocab_size))
        self.mapping = LabelMappingHead(
            self.num_classes, method=self.method, sources_per_class=self.sources_per_class, seed=self.seed
        ).bind(view)
        return self

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is None:
            pooled = hidden.mean(dim=1)
        else:
            m = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, L, 1)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)  # (B, D)
        logits = self._source[0].source_logits(pooled.unsqueeze(1))[:, 0]  # (B, V)
        out: torch.Tensor = self.mapping(logits)
        return out


__all__ = ["VocabLabelMappingHead"]

"""O: ReprogBERT's gamma, a linear map from the frozen masked LM's source-vocabulary logits to target tokens.

ReprogBERT (Melnyk et al., ICML 2023) keeps BERT's MLM head frozen and learns
``gamma = Linear(V_eng -> V_prot)`` on its logits, so that each position of the frozen model's answer
(a distribution over English tokens) is read back as a distribution over amino acids. With theta
(:class:`xdomain.transforms.vocab_map.VocabMapTransform`) it is the only trained part.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xdomain.backbones.masked_lm import MaskedLanguageBackbone
from xdomain.registry import HEADS


@HEADS.register("vocab-projection")
class VocabProjectionHead(nn.Module):
    """O: ``gamma(source_logits(hidden))``, the frozen MLM logits over ``V`` source tokens -> ``num_tokens``.

    Args:
        num_tokens: size of the target vocabulary (e.g. amino acids plus special tokens).

    :meth:`bind` needs a :class:`~xdomain.backbones.masked_lm.MaskedLanguageBackbone` (the head reads its
    MLM logits) and creates ``gamma = nn.Linear(V, num_tokens)``.

    Shapes:
        - input: hidden ``(B, L, D)`` (the backbone's last hidden state), attention_mask ``(B, L)`` optional
        - output: ``(B, L, num_tokens)`` target-token logits, one set per position
    """

    gamma: nn.Linear

    def __init__(self, num_tokens: int) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.bound = False
        self._source: tuple[Any, ...] = ()

    def bind(self, backbone: Any, **_: Any) -> VocabProjectionHead:
        if self.bound:
            if self._source[0] is not backbone:
                raise ValueError(
                    "this VocabProjectionHead is already bound to another backbone; its gamma is sized for "
                    "that vocabulary: build a new head"
                )
            return self
        if not isinstance(backbone, MaskedLanguageBackbone):
            raise TypeError(
                "VocabProjectionHead reads masked-LM logits and needs a MaskedLanguageBackbone "
                f"(xdomain.backbones.masked_lm.load_masked_lm), got {type(backbone).__name__}"
            )
        if isinstance(self.num_tokens, bool) or not isinstance(self.num_tokens, int) or self.num_tokens < 1:
            raise ValueError(f"num_tokens must be a positive int, got {self.num_tokens!r}")
        self.gamma = nn.Linear(backbone.vocab_size, self.num_tokens, device=backbone.word_embeddings.device)
        # held outside the module tree (a tuple): the frozen backbone is neither saved nor moved twice
        self._source = (backbone,)
        self.bound = True
        return self

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``attention_mask`` is accepted for a uniform head interface; each position is mapped on its own,
        so padded positions get logits too (the loss ignores them)."""
        if not self.bound:
            raise RuntimeError("VocabProjectionHead is not bound to a backbone; call bind(backbone)")
        del attention_mask
        backbone = self._source[0]
        if getattr(backbone, "mlm_head", None) is None:
            # tied decoder: gamma(h @ E^T) = h @ (W E)^T + b, the same linear map with the (T, D) product
            # formed once instead of a (B, L, V) score tensor (V = 30,522 for MiniLM)
            folded = self.gamma.weight @ backbone.word_embeddings.to(self.gamma.weight.dtype)  # (T, D)
            out: torch.Tensor = torch.nn.functional.linear(
                hidden.to(folded.dtype), folded, self.gamma.bias
            )  # (B, L, num_tokens)
            return out
        logits = backbone.source_logits(hidden)  # (B, L, V)
        out = self.gamma(logits.to(self.gamma.weight.dtype))  # (B, L, num_tokens)
        return out

    def extra_repr(self) -> str:
        return f"num_tokens={self.num_tokens}" + ("" if self.bound else ", unbound")


__all__ = ["VocabProjectionHead"]

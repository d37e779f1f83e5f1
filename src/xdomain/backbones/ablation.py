"""Stand-ins for the frozen backbone f, for the ablations of Tan et al. (NeurIPS 2024).

Both keep the source model's word-embedding matrix and tokenizer (the text prototypes of the
reprogramming layer are built from it), so the rest of the pipeline is unchanged; only the transformer
layers are removed (:class:`IdentityBackbone`) or replaced by one trainable attention layer
(:class:`AttentionBackbone`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from xdomain.backbones.base import FrozenBackbone
from xdomain.backbones.language import LanguageBackbone
from xdomain.registry import BACKBONES


class _SourceView(nn.Module):
    """Shares the source backbone's frozen embeddings and tokenizer without its layers."""

    frozen = True
    embeddings: Any

    def __init__(self, source: LanguageBackbone) -> None:
        super().__init__()
        self.embeddings = source.model.get_input_embeddings()
        self.tokenizer = source.tokenizer
        self.name = source.name
        self._hidden_size = source.hidden_size
        self._source_spec = source.spec()

    @property
    def hidden_size(self) -> int:
        return self._hidden_size

    @property
    def word_embeddings(self) -> torch.Tensor:
        return self.embeddings.weight

    @property
    def vocab_size(self) -> int:
        return int(self.word_embeddings.shape[0])

    def embed_ids(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embeddings(ids)

    def token_ids(self, text: str) -> list[int]:
        return [int(i) for i in self.tokenizer(text, add_special_tokens=False)["input_ids"]]


def _no_prefix(backbone: nn.Module, past_key_values: Any) -> None:
    if past_key_values is not None:
        raise ValueError(f"{type(backbone).__name__} cannot take a cached prefix (past_key_values): it "
                         "has no language-model layers to have cached it")


class IdentityBackbone(_SourceView):
    """f replaced by nothing: the reprogrammed patch tokens go straight to the head ("w/o LLM").

    Shapes:
        - input: ``(B, S, hidden_size)`` -> output: the same tensor
    """

    def spec(self) -> dict[str, Any]:
        return {"kind": "identity", **{k: v for k, v in self._source_spec.items() if k != "kind"}}

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        attention_bias: torch.Tensor | None = None,
        past_key_values: Any = None,
    ) -> torch.Tensor:
        # no attention: a mask or a bias changes nothing; a cached prefix has nothing to attend to it
        _no_prefix(self, past_key_values)
        return inputs_embeds


class AttentionBackbone(_SourceView):
    """f replaced by one randomly initialised, trainable self-attention layer ("LLM2Attn").

    ``x + MultiheadAttention(x)``: a residual and no normalisation, so the head sees tokens on the scale
    of the reprogrammed inputs, as in the ``no-backbone`` ablation (a LayerNorm here would hand the
    head vectors of norm sqrt(hidden_size), some 20x the scale it sees behind the language model).

    Shapes:
        - input: ``(B, S, hidden_size)`` -> output: ``(B, S, hidden_size)``
    """

    frozen = False

    def __init__(self, source: LanguageBackbone, n_heads: int = 8, dropout: float = 0.1) -> None:
        super().__init__(source)
        heads = n_heads if source.hidden_size % n_heads == 0 else 1
        self.attention = nn.MultiheadAttention(source.hidden_size, heads, dropout=dropout, batch_first=True)
        for p in self.embeddings.parameters():
            p.requires_grad_(False)

    def spec(self) -> dict[str, Any]:
        return {"kind": "attention", **{k: v for k, v in self._source_spec.items() if k != "kind"}}

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        attention_bias: torch.Tensor | None = None,
        past_key_values: Any = None,
    ) -> torch.Tensor:
        """Padding (``attention_mask`` ``(B, S)``, 1 = real) is never attended to; ``attention_bias``
        ``(B, S, S)`` or ``(B, heads, S, S)`` is added to the attention scores, as in
        :meth:`LanguageBackbone.forward`."""
        _no_prefix(self, past_key_values)
        low = torch.finfo(inputs_embeds.dtype).min
        # both masks additive floats (PyTorch wants the two of one type)
        padding = None if attention_mask is None else (1.0 - attention_mask.to(inputs_embeds.dtype)) * low
        bias = None
        if attention_bias is not None:
            heads = self.attention.num_heads
            b = attention_bias if attention_bias.ndim == 4 else attention_bias[:, None]
            bias = b.expand(-1, heads, -1, -1).reshape(-1, *b.shape[-2:]).to(inputs_embeds.dtype)
        out, _ = self.attention(inputs_embeds, inputs_embeds, inputs_embeds, key_padding_mask=padding,
                                attn_mask=bias, need_weights=False)
        return inputs_embeds + out


__all__ = ["AttentionBackbone", "IdentityBackbone"]


class PassThroughBackbone(FrozenBackbone):
    """f = identity on a waveform: the "same program, no backbone" baseline of a classifier.

    It has no weights; its output is its input, so a linear head reads the programmed waveform itself.

    Shapes:
        - input: ``(B, input_length)``
        - output: ``(B, input_length)`` (``output_kind = "embedding"``)
    """

    input_kind = "waveform"
    output_kind = "embedding"

    def __init__(self, input_length: int = 16000, sample_rate: int = 16000, name: str = "none") -> None:
        super().__init__(name=name)
        if not isinstance(input_length, int) or input_length <= 0:
            raise ValueError(f"input_length must be a positive integer, got {input_length!r}")
        self.input_length = input_length
        self.num_outputs = input_length
        self.sample_rate = sample_rate
        self.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return x


BACKBONES.register("none")(PassThroughBackbone)

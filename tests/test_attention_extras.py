"""What a sequence backbone takes besides its input embeddings: a padding mask, an additive attention bias
and a cached prefix; and the Reprogrammer handing them (and a prompt with a mask) through."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch

import xdomain
from xdomain.backbones.ablation import AttentionBackbone
from xdomain.parts import Part
from xdomain.reprogrammer import Reprogrammer

LOW = torch.finfo(torch.float32).min


def test_a_cached_prefix_gives_the_same_hidden_states_as_the_whole_sequence(
    tiny_llama: xdomain.LanguageBackbone,
) -> None:
    torch.manual_seed(0)
    prefix = torch.randn(1, 4, tiny_llama.hidden_size)  # a constant prompt, shared by the batch
    rest = torch.randn(3, 5, tiny_llama.hidden_size)
    whole = tiny_llama(torch.cat([prefix.expand(3, -1, -1), rest], dim=1))
    cache = tiny_llama.prefix_cache(prefix)
    out = tiny_llama(rest, past_key_values=cache)  # broadcast over the batch of 3
    torch.testing.assert_close(out, whole[:, 4:], rtol=0, atol=1e-5)
    assert cache.length == 4 and cache.layers[0][0].shape[2] == 4  # not modified: usable again
    torch.testing.assert_close(tiny_llama(rest, past_key_values=cache), out, rtol=0, atol=0)
    # a mask over the prefix and the new tokens (the last new token of row 0 is padding)
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[0, -1] = 0
    masked = tiny_llama(rest, attention_mask=mask, past_key_values=cache)
    torch.testing.assert_close(masked[0, :-1], out[0, :-1], rtol=0, atol=1e-5)  # causal: earlier tokens same


def test_a_bidirectional_model_caches_only_a_self_attending_prefix(
    tiny_bert: xdomain.LanguageBackbone,
) -> None:
    x = torch.randn(1, 3, tiny_bert.hidden_size)
    with pytest.raises(ValueError, match="needs self_attending=True"):
        tiny_bert.prefix_cache(x, self_attending=False)
    with pytest.raises(ValueError, match="needs a causal backbone"):
        tiny_bert(x, past_key_values=object())  # a raw transformers cache: only for causal models


def test_a_self_attending_prefix_equals_the_whole_sequence_with_the_prefix_barred_from_the_rest(
    tiny_bert: xdomain.LanguageBackbone,
) -> None:
    torch.manual_seed(2)
    prefix = torch.randn(1, 4, tiny_bert.hidden_size)
    rest = torch.randn(3, 5, tiny_bert.hidden_size)
    cache = tiny_bert.prefix_cache(prefix)  # self_attending by default for a bidirectional model
    assert cache.self_attending and cache.length == 4
    bias = torch.zeros(3, 9, 9)
    bias[:, :4, 4:] = LOW  # the prefix rows see only the prefix; the rest sees everything
    whole = tiny_bert(torch.cat([prefix.expand(3, -1, -1), rest], dim=1), attention_bias=bias)
    torch.testing.assert_close(tiny_bert(rest, past_key_values=cache), whole[:, 4:], rtol=0, atol=1e-5)
    # and it differs from the full bidirectional prompt (the prefix then reads the rest too)
    full = tiny_bert(torch.cat([prefix.expand(3, -1, -1), rest], dim=1))[:, 4:]
    assert (full - whole[:, 4:]).abs().max() > 4e-5  # (a tiny random model: small, but 8x the tolerance)


def test_a_prefix_cache_of_another_backbone_is_an_error_naming_both(
    tiny_bert: xdomain.LanguageBackbone, tiny_llama: xdomain.LanguageBackbone
) -> None:
    cache = tiny_llama.prefix_cache(torch.randn(1, 2, tiny_llama.hidden_size))
    other = dataclasses.replace(cache, tokenizer="gpt2")
    with pytest.raises(ValueError, match=r"made by backbone .* \(tokenizer 'gpt2'\); this backbone is"):
        tiny_llama(torch.randn(1, 3, tiny_llama.hidden_size), past_key_values=other)
    with pytest.raises(ValueError, match="does not fit the bidirectional backbone"):
        renamed = dataclasses.replace(cache, backbone=tiny_bert.name, tokenizer=tiny_bert.tokenizer_name)
        tiny_bert(torch.randn(1, 3, tiny_bert.hidden_size), past_key_values=renamed)


def test_an_attention_bias_that_bars_the_padding_equals_the_padding_mask(
    tiny_bert: xdomain.LanguageBackbone,
) -> None:
    torch.manual_seed(1)
    x = torch.randn(2, 5, tiny_bert.hidden_size)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    by_mask = tiny_bert(x, attention_mask=mask)
    zero = torch.zeros(2, 5, 5)
    torch.testing.assert_close(tiny_bert(x, attention_mask=mask, attention_bias=zero), by_mask,
                               rtol=0, atol=1e-5)
    barred = zero.clone()
    barred[0, :, 3:] = LOW  # the same keys barred through the bias instead
    torch.testing.assert_close(tiny_bert(x, attention_bias=barred), by_mask, rtol=0, atol=1e-5)
    # and a bias changes the answer: each token of row 1 sees only itself
    alone = torch.full((2, 5, 5), LOW)
    alone[:, torch.arange(5), torch.arange(5)] = 0.0
    assert not torch.allclose(tiny_bert(x, attention_bias=alone)[1], by_mask[1], atol=1e-3)


def test_a_causal_model_keeps_its_causal_mask_under_a_bias(tiny_llama: xdomain.LanguageBackbone) -> None:
    x = torch.randn(2, 5, tiny_llama.hidden_size)
    torch.testing.assert_close(tiny_llama(x, attention_bias=torch.zeros(2, 5, 5)), tiny_llama(x),
                               rtol=0, atol=1e-5)


def test_bad_mask_and_bias_shapes_name_what_was_expected(tiny_bert: xdomain.LanguageBackbone) -> None:
    x = torch.randn(2, 5, tiny_bert.hidden_size)
    with pytest.raises(ValueError, match=r"attention_mask must be \(B, P \+ S\) = \(2, 5\), got \(2, 4\)"):
        tiny_bert(x, attention_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"attention_bias must be .* got \(2, 5, 4\)"):
        tiny_bert(x, attention_bias=torch.zeros(2, 5, 4))


def test_the_attention_ablation_never_attends_to_padding(tiny_bert: xdomain.LanguageBackbone) -> None:
    torch.manual_seed(2)
    ab = AttentionBackbone(tiny_bert, n_heads=4, dropout=0.0).eval()
    x = torch.randn(1, 4, tiny_bert.hidden_size)
    mask = torch.tensor([[1, 1, 0, 0]])
    y = x.clone()
    y[:, 2:] = 100.0  # whatever sits in the padding
    torch.testing.assert_close(ab(x, attention_mask=mask)[:, :2], ab(y, attention_mask=mask)[:, :2])
    assert not torch.allclose(ab(x)[:, :2], ab(y)[:, :2])  # without the mask it would


# -- the Reprogrammer hands them through ----------------------------------------------------------------
class GraphAdapter(torch.nn.Module):
    """Token ids in; a padding mask and a bias that lets token i see only tokens j <= i + 1."""

    def encode(self, ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        n = ids.shape[1]
        allowed = torch.arange(n)[None, :] <= torch.arange(n)[:, None] + 1
        bias = torch.where(allowed, 0.0, LOW).expand(ids.shape[0], n, n).clone()
        return ids, {"attention_mask": (ids != 0).long(), "attention_bias": bias}

    def decode(self, y: torch.Tensor, state: Any) -> torch.Tensor:
        return y


class Recording(torch.nn.Module):
    """A sequence backbone stand-in that records what it was given."""

    frozen = True
    hidden_size = 3

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, Any] = {}

    @property
    def word_embeddings(self) -> torch.Tensor:
        return torch.eye(3)

    def spec(self) -> dict[str, str]:
        return {"name": "recording"}

    def forward(self, tokens: torch.Tensor, **extras: Any) -> torch.Tensor:
        self.seen = {"tokens": tokens, **extras}
        return tokens


class Embed(Part):
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(ids, 3).float()


class Prompt(Part):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.full((z.shape[0], 2, 3), 7.0)


class MeanHead(Part):
    def __init__(self) -> None:
        super().__init__()
        self.got: torch.Tensor | None = None

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        self.got = hidden
        return hidden.mean(dim=1)


def test_the_reprogrammer_passes_mask_and_bias_and_prepends_the_prompt_to_both() -> None:
    backbone, head = Recording(), MeanHead()
    model = Reprogrammer(backbone, Embed(), head, adapter=GraphAdapter(), prompt=Prompt())
    ids = torch.tensor([[1, 2, 2, 0], [2, 1, 1, 1]])
    model(ids)
    seen = backbone.seen
    assert seen["tokens"].shape == (2, 6, 3)  # 2 prompt tokens + 4 data tokens
    assert seen["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]
    bias = seen["attention_bias"]
    assert bias.shape == (2, 6, 6)
    assert torch.all(bias[:, :2, :] == 0) and torch.all(bias[:, :, :2] == 0)  # the prompt attends freely
    assert bias[0, 2, 3] == 0 and bias[0, 2, 4] == LOW  # the data block is the adapter's bias
    assert head.got is not None and head.got.shape == (2, 4, 3)  # the head reads the data tokens only
    torch.testing.assert_close(head.got, Embed()(ids))


def test_a_mask_for_a_backbone_that_is_not_a_sequence_model_is_an_error() -> None:
    from helpers import TinyWaveformBackbone

    class WaveMask(torch.nn.Module):
        def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
            return x, {"attention_mask": torch.ones_like(x)}

        def decode(self, y: torch.Tensor, state: Any) -> torch.Tensor:
            return y

    class Same(Part):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    model = Reprogrammer(TinyWaveformBackbone(), Same(), Same(), adapter=WaveMask())
    with pytest.raises(ValueError, match="takes no attention mask or bias"):
        model(torch.zeros(2, 256))


def test_a_part_without_its_role_methods_is_a_type_error(tiny_bert: xdomain.LanguageBackbone) -> None:
    with pytest.raises(TypeError, match="the head Linear lacks what a head needs: bind"):
        Reprogrammer(tiny_bert, Embed(), torch.nn.Linear(3, 3))
    with pytest.raises(TypeError, match="the adapter Embed lacks what a adapter needs: encode"):
        Reprogrammer(tiny_bert, Embed(), MeanHead(), adapter=Embed())

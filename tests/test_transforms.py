"""I and c: patch embedding, patch reprogramming (with its eval-mode cache), statistics, Prompt-as-Prefix."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch

from xdomain.backbones import LanguageBackbone
from xdomain.transforms import PatchEmbedding, PatchReprogrammingTransform, PromptAsPrefix, series_statistics


# -- patches ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "length,patch_len,stride",
    [(32, 8, 4), (33, 8, 4), (35, 8, 4), (96, 16, 8), (512, 16, 8), (8, 8, 4), (20, 5, 3)],
)
def test_patch_count(length: int, patch_len: int, stride: int) -> None:
    emb = PatchEmbedding(patch_len, stride, d_model=6, dropout=0.0)
    expected = (length - patch_len) // stride + 2
    assert emb.num_patches(length) == expected
    assert emb(torch.randn(3, length)).shape == (3, expected, 6)


def test_patches_are_the_replication_padded_windows() -> None:
    emb = PatchEmbedding(patch_len=4, stride=2, d_model=3, dropout=0.0)
    with torch.no_grad():  # centre tap of the kernel = identity on the first 3 values, other taps zero
        emb.conv.weight.zero_()
        for d in range(3):
            emb.conv.weight[d, d, 1] = 1.0
    z = torch.arange(8.0)[None]  # padded: 0..7, 7, 7
    out = emb(z)[0]  # (P, 3): the first three values of each patch
    assert out.tolist() == [[0, 1, 2], [2, 3, 4], [4, 5, 6], [6, 7, 7]]


# -- patch reprogramming ----------------------------------------------------------------------------
def _bound_transform(backbone: LanguageBackbone, dropout: float = 0.0) -> PatchReprogrammingTransform:
    torch.manual_seed(0)
    return PatchReprogrammingTransform(
        patch_len=8, stride=4, d_model=16, n_heads=2, d_keys=8, num_prototypes=16, dropout=dropout
    ).bind(backbone)


def test_reprogramming_maps_patches_to_the_backbone_width(tiny_bert: LanguageBackbone) -> None:
    t = _bound_transform(tiny_bert)
    assert t.num_tokens(32) == 8
    assert t(torch.randn(5, 32)).shape == (5, 8, 32)
    assert t.prototypes().shape == (16, 32)
    assert t.prototype_map.in_features == tiny_bert.vocab_size  # read from the backbone, not typed
    assert t.bind(tiny_bert) is t  # binding twice keeps the layers


def test_unbound_transform_says_so() -> None:
    with pytest.raises(RuntimeError, match=re.escape("not bound to a backbone; call bind(backbone)")):
        PatchReprogrammingTransform(patch_len=8, stride=4)(torch.randn(2, 32))


def test_word_embeddings_are_not_saved(tiny_bert: LanguageBackbone) -> None:
    assert not any("word_embeddings" in k for k in _bound_transform(tiny_bert).state_dict())


def test_eval_cache_equals_a_training_mode_recompute(tiny_bert: LanguageBackbone) -> None:
    t = _bound_transform(tiny_bert, dropout=0.0)
    z = torch.randn(4, 32, generator=torch.Generator().manual_seed(0))
    t.eval()
    with torch.no_grad():
        first = t(z)
        assert t._cache is not None  # the cache is in use
        cached = t(z)
    t.train()
    recomputed = t(z)
    assert t._cache is None
    torch.testing.assert_close(cached, first, rtol=0, atol=0)
    torch.testing.assert_close(cached, recomputed.detach())


@pytest.mark.parametrize("optimizer", ["adamw-fused", "sgd"])
def test_optimiser_step_invalidates_the_cache(tiny_bert: LanguageBackbone, optimizer: str) -> None:
    t = _bound_transform(tiny_bert, dropout=0.0)
    z = torch.randn(4, 32, generator=torch.Generator().manual_seed(0))
    params = [p for p in t.parameters() if p.requires_grad]
    opt = (
        torch.optim.AdamW(params, lr=0.1, fused=True)
        if optimizer == "adamw-fused"
        else torch.optim.SGD(params, lr=0.1)
    )
    t.eval()
    with torch.no_grad():
        stale = t(z)
    t.train()
    t(z).pow(2).mean().backward()
    opt.step()
    t.eval()
    with torch.no_grad():
        after_step = t(z)
    t.train()
    fresh = t(z).detach()
    assert not torch.allclose(after_step, stale)
    torch.testing.assert_close(after_step, fresh)


def test_loading_weights_invalidates_the_cache(tiny_bert: LanguageBackbone) -> None:
    t = _bound_transform(tiny_bert).eval()
    z = torch.randn(2, 32)
    with torch.no_grad():
        t(z)
        t.load_state_dict({k: v + 0.5 for k, v in t.state_dict().items()})
        after = t(z)
    t.train()
    torch.testing.assert_close(after, t(z).detach())


def test_in_place_data_update_invalidates_the_cache(tiny_bert: LanguageBackbone) -> None:
    t = _bound_transform(tiny_bert).eval()
    z = torch.randn(2, 32)
    with torch.no_grad():
        t(z)
        before = t(z)
        t.value.weight.data.add_(1.0)  # e.g. an EMA or weight-averaging update written through .data
        after = t(z)
    t.train()
    fresh = t(z).detach()
    assert not torch.allclose(fresh, before)  # the weights did change what the transform computes
    torch.testing.assert_close(after, fresh)


# -- statistics -------------------------------------------------------------------------------------
def _circular_autocorr(row: np.ndarray) -> np.ndarray:
    return np.array([float(np.sum(row * np.roll(row, -lag))) for lag in range(len(row))])


def test_statistics_against_hand_computed_values() -> None:
    z = torch.tensor([[-1.5, 0.5, 2.25, 0.125, 1.0], [3.0, 1.0, 2.0, 0.0, -0.25]])
    stats = series_statistics(z, top_k=2)
    assert stats["min"].tolist() == [-1.5, -0.25]
    assert stats["max"].tolist() == [2.25, 3.0]
    assert stats["median"].tolist() == [0.5, 1.0]
    assert stats["trend"].tolist() == [1, -1]  # last - first: +2.5, -3.25
    # circular autocorrelation by hand: row 0 lag 1 -> -0.71875, lag 2 -> -0.75; row 1 -> 4.25, 5.25
    for row, lags in zip(z.numpy(), stats["lags"].tolist(), strict=True):
        corr = _circular_autocorr(row)
        assert lags == [int(i) for i in np.argsort(-corr[1:3], kind="stable") + 1]
    assert _circular_autocorr(z[0].numpy())[1:3].tolist() == pytest.approx([-0.71875, -0.75])
    assert _circular_autocorr(z[1].numpy())[1:3].tolist() == pytest.approx([4.25, 5.25])
    assert stats["lags"].tolist() == [[1, 2], [2, 1]]


def test_even_length_median_is_the_lower_middle_value_as_in_time_llm() -> None:
    assert series_statistics(torch.tensor([[4.0, 1.0, 3.0, 2.0]]), 1)["median"].tolist() == [2.0]


def test_lags_of_a_periodic_signal() -> None:
    z = torch.tensor([[1.0, 0.0, -1.0, 0.0] * 8])  # period 4, L = 32
    lags = series_statistics(z, top_k=4)["lags"][0].tolist()
    assert sorted(lags) == [4, 8, 12, 16]  # the multiples of the period up to L // 2
    period6 = torch.sin(2 * torch.pi * torch.arange(48.0) / 6)[None]
    top = series_statistics(period6, top_k=1)["lags"][0].tolist()
    assert top[0] % 6 == 0


def test_lag_zero_never_appears_and_lags_stay_within_half_the_length() -> None:
    z = torch.randn(16, 20, generator=torch.Generator().manual_seed(0))
    lags = series_statistics(z, top_k=5)["lags"]
    assert lags.shape == (16, 5)
    assert int(lags.min()) >= 1 and int(lags.max()) <= 10
    assert series_statistics(torch.randn(2, 4), top_k=5)["lags"].shape == (2, 2)  # k capped at L // 2


# -- Prompt-as-Prefix -------------------------------------------------------------------------------
@pytest.fixture
def prompt(tiny_bert: LanguageBackbone) -> PromptAsPrefix:
    return PromptAsPrefix("toy data.", lookback=5, horizon=3, top_k_lags=2).bind(tiny_bert)


def test_prompt_tokens_spell_the_statistics(prompt: PromptAsPrefix, minilm_tokenizer: Any) -> None:
    z = torch.tensor([[-1.5, 0.5, 2.25, 0.125, 1.0], [3.0, 1.0, 2.0, 0.0, -0.25]])
    rows = [minilm_tokenizer.convert_ids_to_tokens(r) for r in prompt.token_ids(z).tolist()]
    assert rows[0] == [
        "-",
        "0",
        "1",
        ".",
        "5",
        "0",
        "0",  # min -1.5
        "+",
        "0",
        "2",
        ".",
        "2",
        "5",
        "0",  # max 2.25
        "+",
        "0",
        "0",
        ".",
        "5",
        "0",
        "0",  # median 0.5
        "upward",
        "1",
        ",",
        "2",
    ]
    assert rows[1] == [
        "-",
        "0",
        "0",
        ".",
        "2",
        "5",
        "0",
        "+",
        "0",
        "3",
        ".",
        "0",
        "0",
        "0",
        "+",
        "0",
        "1",
        ".",
        "0",
        "0",
        "0",
        "downward",
        "2",
        ",",
        "1",
    ]


def test_prompt_values_are_clamped_and_lags_zero_padded(
    tiny_bert: LanguageBackbone, minilm_tokenizer: Any
) -> None:
    p = PromptAsPrefix(lookback=24, horizon=4, top_k_lags=1).bind(tiny_bert)
    z = torch.zeros(2, 24)
    z[0, 0], z[0, 12] = -123.4, -150.0  # two negative spikes 12 steps apart
    z[1, 3], z[1, 6] = 150.0, 200.0  # two positive spikes 3 steps apart
    rows = [minilm_tokenizer.convert_ids_to_tokens(r) for r in p.token_ids(z).tolist()]
    assert rows[0][:7] == ["-", "9", "9", ".", "9", "9", "9"]  # min clamped to -99.999
    assert rows[1][7:14] == ["+", "9", "9", ".", "9", "9", "9"]  # max clamped to +99.999
    assert rows[0][-2:] == ["1", "2"]  # lag 12, written with two digits since L = 24
    assert rows[1][-2:] == ["0", "3"]  # lag 3, zero-padded to the same width


def test_every_prompt_in_a_batch_has_the_same_length(prompt: PromptAsPrefix) -> None:
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(0)) * torch.tensor(
        [[0.01], [1], [10], [50], [-80], [1000]]
    )
    out = prompt(z)
    assert out.shape == (6, prompt.length, 32)
    assert prompt.token_ids(z).shape == (6, len(prompt.var_positions))


def test_prompt_embeds_constant_text_and_variable_tokens(
    prompt: PromptAsPrefix, tiny_bert: LanguageBackbone, minilm_tokenizer: Any
) -> None:
    z = torch.tensor([[-1.5, 0.5, 2.25, 0.125, 1.0], [3.0, 1.0, 2.0, 0.0, -0.25]])
    out = prompt(z)
    emb = tiny_bert.word_embeddings
    var = prompt.var_positions
    const = torch.tensor([i for i in range(prompt.length) if i not in set(var.tolist())])
    # variable slots: the frozen embeddings of the statistics' tokens
    assert torch.equal(out[:, var], emb[prompt.token_ids(z)])
    # constant slots: identical for every series, and each one exactly a row of the frozen embedding matrix
    assert torch.equal(out[0, const], out[1, const])
    matches = (out[0, const][:, None, :] == emb[None]).all(-1)  # (S_const, V)
    assert matches.any(-1).all()
    ids = matches.float().argmax(-1)
    assert torch.equal(tiny_bert.embed_ids(ids), out[0, const])
    text = minilm_tokenizer.convert_tokens_to_string(minilm_tokenizer.convert_ids_to_tokens(ids.tolist()))
    assert text.startswith(
        "dataset description : toy data. task description : forecast the next 3 steps "
        "given the previous 5 steps information ; input statistics : min value"
    )
    for piece in (", max value", ", median value", ", the trend of input is", ", top 2 lags are :"):
        assert piece in text
    assert text.endswith(".")


def test_prompt_ids_equal_the_tokenised_template(prompt: PromptAsPrefix, tiny_bert: LanguageBackbone) -> None:
    texts = [
        "Dataset description: toy data. Task description: forecast the next 3 steps given the previous 5 "
        "steps information; Input statistics: min value",
        ", max value",
        ", median value",
        ", the trend of input is",
        ", top 2 lags are :",
        ".",
    ]
    pieces = [tiny_bert.token_ids(t) for t in texts]
    assert prompt.length == sum(map(len, pieces)) + 3 * 7 + 1 + 3
    var = set(prompt.var_positions.tolist())
    const_ids = [i for p in pieces for i in p]
    const_rows = prompt.template_embeddings[[i for i in range(prompt.length) if i not in var]]
    assert torch.equal(const_rows, tiny_bert.embed_ids(torch.tensor(const_ids)))


def test_prompt_needs_binding() -> None:
    with pytest.raises(RuntimeError, match="not bound to a backbone"):
        PromptAsPrefix()(torch.randn(1, 8))


def test_prompt_rejects_a_tokenizer_without_single_token_digits(tiny_bert: LanguageBackbone) -> None:
    class MultiDigit:
        def token_ids(self, text: str) -> list[int]:
            return [1, 2]

    with pytest.raises(ValueError, match=re.escape("splits '0' into 2 tokens")):
        PromptAsPrefix().bind(MultiDigit())

"""f: LanguageBackbone freezes and stays in eval; layer truncation; fingerprints; load errors; ablations."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import torch

import xdomain
from xdomain.backbones import AttentionBackbone, IdentityBackbone, LanguageBackbone

Factory = Callable[..., LanguageBackbone]


@pytest.fixture(params=["bert", "llama"])
def factory(request: pytest.FixtureRequest) -> Factory:
    return request.getfixturevalue(f"{request.param}_factory")


def test_wrapping_freezes_every_parameter(minilm_tokenizer: Any) -> None:
    from transformers import BertConfig, BertModel

    model = BertModel(
        BertConfig(
            vocab_size=len(minilm_tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
        )
    )
    model.train()
    assert all(p.requires_grad for p in model.parameters())
    backbone = LanguageBackbone(model, minilm_tokenizer)
    assert not any(p.requires_grad for p in backbone.parameters())
    assert not any(m.training for m in backbone.model.modules())


def test_train_mode_leaves_the_model_in_eval(tiny_bert: LanguageBackbone) -> None:
    x = torch.randn(2, 6, 32, generator=torch.Generator().manual_seed(0))
    tiny_bert.train()
    try:
        assert not any(m.training for m in tiny_bert.model.modules())
        # BERT has dropout 0.1: in train mode two passes would differ
        assert torch.equal(tiny_bert(x), tiny_bert(x))
    finally:
        tiny_bert.eval()


def test_exposes_sizes_read_from_the_model(tiny_bert: LanguageBackbone, tiny_llama: LanguageBackbone) -> None:
    for backbone in (tiny_bert, tiny_llama):
        assert backbone.hidden_size == 32
        assert backbone.vocab_size == 30522
        assert tuple(backbone.word_embeddings.shape) == (30522, 32)
        assert backbone.num_layers == 2
        ids = torch.tensor([[101, 2000], [7, 8]])
        assert torch.equal(backbone.embed_ids(ids), backbone.word_embeddings[ids])
    assert (tiny_bert.is_causal, tiny_llama.is_causal) == (False, True)


def test_forward_shape_and_bad_input(tiny_llama: LanguageBackbone) -> None:
    assert tiny_llama(torch.randn(3, 5, 32)).shape == (3, 5, 32)
    with pytest.raises(ValueError, match=re.escape("inputs_embeds must be (B, S, 32), got (3, 5, 16)")):
        tiny_llama(torch.randn(3, 5, 16))
    with pytest.raises(ValueError, match=re.escape("got (5, 32)")):
        tiny_llama(torch.randn(5, 32))


def test_token_ids_without_special_tokens(tiny_bert: LanguageBackbone, minilm_tokenizer: Any) -> None:
    ids = tiny_bert.token_ids("min value 12")
    assert minilm_tokenizer.convert_ids_to_tokens(ids) == ["min", "value", "12"]


def test_num_layers_keeps_the_first_k_bert_layers(bert_factory: Factory) -> None:
    full, cut = bert_factory(), bert_factory(num_layers=1)
    assert (full.num_layers, cut.num_layers) == (2, 1)
    assert len(cut.model.encoder.layer) == 1 and cut.model.config.num_hidden_layers == 1
    x = torch.randn(2, 7, 32, generator=torch.Generator().manual_seed(1))
    out_full = full.model(inputs_embeds=x, output_hidden_states=True)
    assert not torch.allclose(cut(x), full(x))
    # BERT has no final norm: one kept layer gives exactly the full model's first hidden state
    torch.testing.assert_close(cut(x), out_full.hidden_states[1])


def test_num_layers_keeps_the_first_k_llama_layers(llama_factory: Factory) -> None:
    full, cut = llama_factory(), llama_factory(num_layers=1)
    assert (full.num_layers, cut.num_layers) == (2, 1)
    assert len(cut.model.layers) == 1
    x = torch.randn(2, 7, 32, generator=torch.Generator().manual_seed(1))
    assert cut(x).shape == (2, 7, 32)
    assert not torch.allclose(cut(x), full(x))


@pytest.mark.parametrize("k", [0, 3, -1])
def test_bad_num_layers_is_an_error(factory: Factory, k: int) -> None:
    with pytest.raises(ValueError, match=re.escape(f"num_layers must be in [1, 2] for 'custom', got {k}")):
        factory(num_layers=k)


def test_num_layers_equal_to_the_total_keeps_everything(bert_factory: Factory) -> None:
    x = torch.randn(1, 4, 32)
    assert torch.equal(bert_factory(num_layers=2)(x), bert_factory()(x))


def test_unknown_backbone_names_the_value_offline() -> None:
    with pytest.raises(
        ValueError, match=r"unknown backbone 'no-such-model-xyz'.*\['minilm', 'smollm2-135m'\]"
    ):
        xdomain.load_backbone("no-such-model-xyz")


def test_folder_without_a_model_is_named(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="the folder exists but does not hold a loadable model"):
        xdomain.load_backbone(str(tmp_path))


@pytest.mark.parametrize("bad", ["", None, 3])
def test_backbone_name_must_be_a_non_empty_string(bad: Any) -> None:
    with pytest.raises(ValueError, match=re.escape(f"backbone must be a non-empty string, got {bad!r}")):
        xdomain.load_backbone(bad)


def test_fingerprint_tells_models_apart(bert_factory: Factory, llama_factory: Factory) -> None:
    bert, llama = bert_factory(), llama_factory()
    assert bert.fingerprint() == bert_factory().fingerprint()  # deterministic for the same weights
    assert len(bert.fingerprint()) == 16
    assert bert.fingerprint() != llama.fingerprint()
    assert bert.fingerprint() != bert_factory(seed=1).fingerprint()
    assert bert.fingerprint() != bert_factory(num_layers=1).fingerprint()
    assert bert.spec() == {
        "kind": "language",
        "name": "custom",
        "num_layers": 2,
        "fingerprint": bert.fingerprint(),
    }


def test_identity_backbone_passes_tokens_through(tiny_bert: LanguageBackbone) -> None:
    identity = IdentityBackbone(tiny_bert)
    x = torch.randn(2, 3, 32)
    assert identity(x) is x
    assert identity.hidden_size == 32 and identity.vocab_size == 30522
    assert identity.word_embeddings is tiny_bert.word_embeddings
    assert identity.spec()["kind"] == "identity"
    assert identity.spec()["fingerprint"] == tiny_bert.fingerprint()
    assert identity.frozen and not any(p.requires_grad for p in identity.parameters())


def test_attention_backbone_trains_only_its_attention(tiny_bert: LanguageBackbone) -> None:
    attention = AttentionBackbone(tiny_bert, n_heads=2, dropout=0.0)
    assert attention.frozen is False
    trainable = sorted(n for n, p in attention.named_parameters() if p.requires_grad)
    assert trainable and all(n.startswith(("attention.", "norm.")) for n in trainable)
    assert not attention.embeddings.weight.requires_grad
    assert attention(torch.randn(2, 5, 32)).shape == (2, 5, 32)
    assert attention.spec()["kind"] == "attention"
    # a head count that does not divide the hidden size falls back to one head
    assert AttentionBackbone(tiny_bert, n_heads=5).attention.num_heads == 1

"""MaskedLanguageBackbone (f with its MLM head), load_masked_lm, AntiBERTy's token ids, and
VocabProjectionHead (O, ReprogBERT's gamma).

Fast tests run on tiny random BERTs saved to a temporary folder and loaded back through
``load_masked_lm(path)``; the real AntiBERTy and MiniLM run in the slow tests.
"""

from __future__ import annotations

import copy
import csv
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from helpers import TINY, require_data
from xdomain.backbones.language import LanguageBackbone
from xdomain.backbones.masked_lm import (
    MaskedLanguageBackbone,
    antiberty_token_ids,
    antiberty_tokenizer,
    load_masked_lm,
)
from xdomain.heads.vocab_projection import VocabProjectionHead
from xdomain.registry import BACKBONES, HEADS
from xdomain.transforms.vocab_map import VocabMapTransform

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = [*SPECIAL, *"ACDEFGHIKLMNPQRSTVWY", "the", "cat", "sat"]
SABDAB = "antibodies/sabdab_cdr/sabdab_hcdr3_cluster_test.csv"


def _tiny_folder(root: Path, with_head: bool) -> tuple[Path, nn.Module]:
    from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizer

    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(WORDS), **TINY)
    model = (BertForMaskedLM if with_head else BertModel)(config).eval()
    if with_head:  # a non-zero output bias, so a test can tell the real head from the tied decoder
        with torch.no_grad():
            model.cls.predictions.bias.normal_()
    folder = root / ("mlm" if with_head else "encoder")
    model.save_pretrained(folder)
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}, do_lower_case=False).save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def tiny_mlm_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module]:
    """A tiny random BertForMaskedLM saved to disk, and the model itself for reference outputs."""
    return _tiny_folder(tmp_path_factory.mktemp("tiny"), with_head=True)


@pytest.fixture(scope="module")
def tiny_encoder_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nn.Module]:
    """A tiny random BertModel (encoder only, no MLM head weights), like the MiniLM checkpoint."""
    return _tiny_folder(tmp_path_factory.mktemp("tiny"), with_head=False)


@pytest.fixture(scope="module")
def tiny_mlm(tiny_mlm_folder: tuple[Path, nn.Module]) -> MaskedLanguageBackbone:
    return load_masked_lm(str(tiny_mlm_folder[0]))


@pytest.fixture
def needs_antiberty() -> None:
    if importlib.util.find_spec("antiberty") is None:
        pytest.skip("the antiberty package is not installed (pip install --no-deps antiberty==0.1.3)")


IDS = torch.tensor([[2, 5, 9, 4, 12, 3, 0], [2, 25, 26, 27, 4, 3, 0]])
MASK = torch.tensor([[1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 0]])


# -- MaskedLanguageBackbone --------------------------------------------------------------------------
def test_source_logits_equal_the_models_own_mlm_logits(
    tiny_mlm: MaskedLanguageBackbone, tiny_mlm_folder: tuple[Path, Any]
) -> None:
    reference = tiny_mlm_folder[1]
    assert isinstance(tiny_mlm, LanguageBackbone) and tiny_mlm.has_mlm_head
    assert (tiny_mlm.vocab_size, tiny_mlm.hidden_size) == (len(WORDS), 32)
    with torch.no_grad():
        expected = reference(input_ids=IDS, attention_mask=MASK)
        hidden = tiny_mlm(tiny_mlm.embed_ids(IDS), MASK)
        logits = tiny_mlm.source_logits(hidden)
    assert hidden.shape == (2, 7, 32) and logits.shape == (2, 7, len(WORDS))
    encoder = reference.bert(input_ids=IDS, attention_mask=MASK).last_hidden_state
    assert torch.allclose(hidden, encoder, atol=1e-5)
    assert torch.allclose(logits, expected.logits, atol=1e-5)
    assert torch.allclose(tiny_mlm.mlm_logits(IDS, MASK), expected.logits, atol=1e-5)
    # the real head is not the tied decoder (it has a transform and a bias)
    assert not torch.allclose(logits, hidden @ tiny_mlm.word_embeddings.t(), atol=1e-2)


def test_the_backbone_and_its_head_are_frozen_and_stay_in_eval_mode(tiny_mlm: MaskedLanguageBackbone) -> None:
    assert tiny_mlm.mlm_head is not None
    assert all(not p.requires_grad for p in tiny_mlm.parameters())
    tiny_mlm.train()
    assert not tiny_mlm.model.training and not tiny_mlm.mlm_head.training
    spec = tiny_mlm.spec()
    assert spec["kind"] == "masked-language" and spec["has_mlm_head"] is True
    assert spec["num_layers"] == 2 and spec["fingerprint"] == tiny_mlm.fingerprint()


def test_checkpoint_without_head_weights_falls_back_to_the_tied_decoder(
    tiny_encoder_folder: tuple[Path, Any],
) -> None:
    backbone = load_masked_lm(str(tiny_encoder_folder[0]))
    assert backbone.has_mlm_head is False and backbone.mlm_head is None
    assert backbone.spec()["has_mlm_head"] is False
    hidden = torch.randn(2, 4, 32, generator=torch.Generator().manual_seed(0))
    emb = backbone.word_embeddings
    by_hand = torch.einsum("bld,vd->blv", hidden, emb)
    assert torch.allclose(backbone.source_logits(hidden), by_hand, atol=1e-6)
    # the encoder is the checkpoint's own, not re-initialised
    reference = tiny_encoder_folder[1]
    assert torch.equal(emb, reference.get_input_embeddings().weight)


def test_constructed_directly_from_a_base_model_or_with_the_head_declared_untrained(
    tiny_mlm_folder: tuple[Path, Any],
) -> None:
    from transformers import BertConfig, BertModel

    plain = MaskedLanguageBackbone(BertModel(BertConfig(vocab_size=len(WORDS), **TINY)), tokenizer=None)
    assert plain.has_mlm_head is False and plain.mlm_head is None
    with pytest.raises(ValueError, match="has_mlm_head=True but BertModel has no MLM head"):
        MaskedLanguageBackbone(BertModel(BertConfig(vocab_size=len(WORDS), **TINY)), None, has_mlm_head=True)
    untrained = MaskedLanguageBackbone(copy.deepcopy(tiny_mlm_folder[1]), None, has_mlm_head=False)
    assert untrained.mlm_head is None
    assert not any(name.startswith("mlm_head") for name, _ in untrained.named_parameters())


def test_layer_truncation_keeps_the_head(tiny_mlm_folder: tuple[Path, Any]) -> None:
    one = load_masked_lm(str(tiny_mlm_folder[0]), num_layers=1)
    assert one.num_layers == 1 and one.has_mlm_head
    assert one.mlm_logits(IDS, MASK).shape == (2, 7, len(WORDS))


def test_bad_hidden_shape_and_bad_names_are_named(tiny_mlm: MaskedLanguageBackbone, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"hidden must be \(B, L, 32\), got \(2, 7, 16\)"):
        tiny_mlm.source_logits(torch.zeros(2, 7, 16))
    with pytest.raises(ValueError, match=r"unknown masked LM .*the folder exists but does not hold"):
        load_masked_lm(str(tmp_path))
    with pytest.raises(ValueError, match="masked LM must be a non-empty string, got ''"):
        load_masked_lm("")


def test_registered_parts() -> None:
    assert {"antiberty", "masked-lm"} <= set(BACKBONES.names())
    head = HEADS.resolve("vocab-projection", num_tokens=7)
    assert isinstance(head, VocabProjectionHead) and head.num_tokens == 7 and not head.bound


# -- AntiBERTy's vocabulary ---------------------------------------------------------------------------
def test_antiberty_token_ids_by_hand(needs_antiberty: None) -> None:
    # vocab.txt: [PAD] [UNK] [CLS] [SEP] [MASK], then A C D E F G H I K L M N P Q R S T V W Y from id 5
    assert antiberty_token_ids("ACY_X") == [2, 5, 6, 24, 4, 1, 3]
    assert antiberty_token_ids("EVQL", add_special_tokens=False) == [8, 22, 18, 14]
    # the same ids as AntiBERTy's own tokenizer on space-separated residues
    assert antiberty_tokenizer()("E V Q L [MASK] W")["input_ids"] == antiberty_token_ids("EVQL_W")


def test_antiberty_token_ids_reject_other_characters(needs_antiberty: None) -> None:
    with pytest.raises(ValueError, match="unexpected character 'q' at position 2"):
        antiberty_token_ids("EVqL")
    with pytest.raises(ValueError, match="unexpected character '-' at position 0"):
        antiberty_token_ids("-EV")
    with pytest.raises(TypeError, match="got list"):
        antiberty_token_ids(["E", "V"])  # type: ignore[arg-type]


# -- VocabProjectionHead (gamma) -----------------------------------------------------------------------
def test_head_is_gamma_over_the_source_logits(tiny_mlm: MaskedLanguageBackbone) -> None:
    head = VocabProjectionHead(6).bind(tiny_mlm)
    assert head.gamma.in_features == len(WORDS) and head.gamma.out_features == 6
    assert sum(p.numel() for p in head.parameters()) == len(WORDS) * 6 + 6
    hidden = torch.randn(2, 7, 32, generator=torch.Generator().manual_seed(1))
    out = head(hidden, attention_mask=MASK)
    assert out.shape == (2, 7, 6)
    expected = tiny_mlm.source_logits(hidden) @ head.gamma.weight.t() + head.gamma.bias
    assert torch.allclose(out, expected, atol=1e-5)
    # the backbone is held, not registered: only gamma is saved and trained
    assert [name for name, _ in head.named_parameters()] == ["gamma.weight", "gamma.bias"]


def test_head_needs_a_masked_language_backbone(tiny_bert: Any) -> None:
    with pytest.raises(TypeError, match=r"needs a MaskedLanguageBackbone.*got LanguageBackbone"):
        VocabProjectionHead(4).bind(tiny_bert)
    with pytest.raises(RuntimeError, match="not bound"):
        VocabProjectionHead(4)(torch.zeros(1, 2, 32))


def test_theta_and_gamma_train_and_the_backbone_does_not(tiny_mlm: MaskedLanguageBackbone) -> None:
    theta = VocabMapTransform(6).bind(tiny_mlm)
    gamma = VocabProjectionHead(6).bind(tiny_mlm)
    before = copy.deepcopy(tiny_mlm.state_dict())
    params = [*theta.parameters(), *gamma.parameters()]
    opt = torch.optim.AdamW(params, lr=0.05)
    ids = torch.tensor([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]])
    losses = []
    for _ in range(5):
        opt.zero_grad()
        logits = gamma(tiny_mlm(theta(ids)))  # (2, 5, 6)
        loss = nn.functional.cross_entropy(logits.reshape(-1, 6), ids.reshape(-1))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    assert all(p.grad is None for p in tiny_mlm.parameters())
    after = tiny_mlm.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


# -- real pretrained models (slow) ---------------------------------------------------------------------
@pytest.mark.slow
def test_real_antiberty_recovers_masked_framework_residues(needs_antiberty: None) -> None:
    path = require_data(SABDAB)
    backbone = BACKBONES.build("antiberty")
    assert isinstance(backbone, MaskedLanguageBackbone) and backbone.has_mlm_head
    assert (backbone.vocab_size, backbone.hidden_size, backbone.num_layers) == (25, 512, 8)
    with open(path, newline="") as f:
        chains = list(csv.DictReader(f))[:6]
    gen = torch.Generator().manual_seed(0)
    hits = total = 0
    for row in chains:
        # the variable domain: up to the end of CDR-H3 and the 11 residues of framework 4 (WGQGTLVTVSS);
        # the rows go on into the constant domain, which AntiBERTy was not trained on
        end = row["cdr"].rindex("3") + 12
        seq, cdr = row["seq"][:end], row["cdr"][:end]
        framework = torch.tensor([i for i, c in enumerate(cdr) if c == "0"])
        picked = framework[torch.randperm(len(framework), generator=gen)[: len(framework) * 15 // 100]]
        masked = "".join("_" if i in set(picked.tolist()) else c for i, c in enumerate(seq))
        with torch.no_grad():
            logits = backbone.mlm_logits(torch.tensor([antiberty_token_ids(masked)]))[0, 1:-1]  # (L, 25)
        logits[:, :5] = -float("inf")  # never predict a special token
        truth = torch.tensor(antiberty_token_ids(seq, add_special_tokens=False))
        hits += int((logits.argmax(-1)[picked] == truth[picked]).sum())
        total += len(picked)
    # chance is 1/20; measured: 71 of 78 (0.91)
    assert total >= 60
    assert hits / total > 0.75


@pytest.mark.slow
def test_real_minilm_has_no_mlm_head_and_reprogbert_sizes() -> None:
    backbone = load_masked_lm("minilm")
    assert backbone.has_mlm_head is False and backbone.mlm_head is None
    assert (backbone.vocab_size, backbone.hidden_size) == (30522, 384)
    theta = VocabMapTransform(28).bind(backbone)
    gamma = VocabProjectionHead(28).bind(backbone)
    trainable = sum(p.numel() for p in [*theta.parameters(), *gamma.parameters()])
    assert trainable == 28 * 30522 + (30522 * 28 + 28) == 1_709_260  # ReprogBERT: about 1.8M
    ids = torch.tensor([[1, 5, 9, 0]])
    with torch.no_grad():
        out = gamma(backbone(theta(ids)))
    assert out.shape == (1, 4, 28) and torch.isfinite(out).all()

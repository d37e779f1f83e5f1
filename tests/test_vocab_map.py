"""VocabMapTransform (I of R2DL / ReprogBERT): hand-checked arithmetic on a 5 x 3 embedding table, the
padding row, sparsity, gradients that reach theta and never the backbone, seeded initialisation, errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from xdomain.registry import TRANSFORMS
from xdomain.transforms.vocab_map import VocabMapTransform

# a 5-token source vocabulary in 3 dimensions, small integers so every expected value is checked by hand
E = torch.tensor(
    [
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [0.0, 0.0, 1.0],
        [1.0, 1.0, 0.0],
        [0.0, 2.0, -1.0],
    ]
)


class TableBackbone(nn.Module):
    """The smallest thing a vocabulary map binds to: a frozen (V, D) word-embedding matrix."""

    def __init__(self, emb: torch.Tensor = E) -> None:
        super().__init__()
        self.emb = nn.Parameter(emb.clone(), requires_grad=False)

    @property
    def word_embeddings(self) -> torch.Tensor:
        return self.emb


def bound(theta: torch.Tensor | None = None, **kwargs: Any) -> VocabMapTransform:
    num_tokens = kwargs.pop("num_tokens", 3 if theta is None else theta.shape[0])
    t = VocabMapTransform(num_tokens, **kwargs).bind(TableBackbone())
    if theta is not None:
        with torch.no_grad():
            t.theta.copy_(theta)
    return t


# -- arithmetic by hand ----------------------------------------------------------------------------
def test_dense_map_is_theta_times_the_embedding_table() -> None:
    theta = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0, 0.0],  # -> E0 = (1, 0, 0)
            [0.5, 0.0, 0.0, 0.5, 0.0],  # -> 0.5 (1, 0, 0) + 0.5 (1, 1, 0) = (1, 0.5, 0)
            [0.0, 1.0, -1.0, 0.0, 2.0],  # -> (0, 1, 0) - (0, 0, 1) + 2 (0, 2, -1) = (0, 5, -3)
        ]
    )
    t = bound(theta, padding_idx=None)
    expected = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.0, 5.0, -3.0]])
    assert torch.equal(t.table(), expected)
    ids = torch.tensor([[2, 0], [1, 2]])
    out = t(ids)
    assert out.shape == (2, 2, 3)
    assert torch.equal(out, torch.stack([expected[[2, 0]], expected[[1, 2]]]))


def test_topk_keeps_the_k_largest_magnitudes_per_row_and_only_they_get_gradients() -> None:
    theta = torch.tensor(
        [
            [0.1, -3.0, 0.2, 2.0, 0.05],  # keeps -3 (token 1), 2 (token 3): -3 (0,1,0) + 2 (1,1,0) = (2,-1,0)
            [1.0, 1.5, 0.0, 0.0, -0.5],  # keeps 1.5 (token 1) and 1 (token 0): (1, 1.5, 0)
        ]
    )
    t = bound(theta, sparsity="topk", k=2, padding_idx=None)
    assert torch.equal(t.table(), torch.tensor([[2.0, -1.0, 0.0], [1.0, 1.5, 0.0]]))
    assert torch.equal(
        t.effective_theta(), torch.tensor([[0.0, -3.0, 0.0, 2.0, 0.0], [1.0, 1.5, 0.0, 0.0, 0.0]])
    )
    t.table().sum().backward()
    # d sum(table) / d theta[t, j] = sum(E[j]) for a kept entry, 0 for a dropped one
    row_sums = E.sum(dim=1)
    kept = torch.tensor([[0, 1, 0, 1, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    assert t.theta.grad is not None
    assert torch.equal(t.theta.grad, torch.where(kept, row_sums.expand(2, 5), torch.zeros(())))


def test_l1_penalty_is_l1_times_the_absolute_sum_of_theta_without_the_padding_row() -> None:
    theta = torch.tensor(
        [
            [9.0, 9.0, 9.0, 9.0, 9.0],  # the padding row: never used, never penalised
            [1.0, -2.0, 0.0, 0.5, 0.0],  # |.| sums to 3.5
            [0.0, 0.0, -1.5, 0.0, 1.0],  # |.| sums to 2.5
        ]
    )
    t = bound(theta, sparsity="l1", l1=0.25, padding_idx=0)
    assert t.penalty().item() == pytest.approx(0.25 * (3.5 + 2.5))
    t.penalty().backward()
    assert t.theta.grad is not None
    assert torch.equal(t.theta.grad[1], 0.25 * torch.tensor([1.0, -1.0, 0.0, 1.0, 0.0]))  # sign, 0 at 0
    assert torch.equal(t.theta.grad[0], torch.zeros(5))
    # the other modes add nothing to the loss
    assert bound(theta, sparsity="dense").penalty().item() == 0.0
    assert bound(theta, sparsity="topk", k=2).penalty().item() == 0.0


# -- the padding row -------------------------------------------------------------------------------
def test_padding_row_starts_zero_embeds_to_zero_and_never_gets_a_gradient() -> None:
    t = bound(num_tokens=4, padding_idx=2)
    assert torch.equal(t.theta[2].detach(), torch.zeros(5))
    with torch.no_grad():
        t.theta[2] = 1.0  # even if it is overwritten, the forward ignores it
    ids = torch.tensor([[0, 2, 1, 2]])
    out = t(ids)
    assert torch.equal(out[0, 1], torch.zeros(3)) and torch.equal(out[0, 3], torch.zeros(3))
    assert out[0, 0].abs().sum() > 0
    (out**2).sum().backward()
    assert t.theta.grad is not None
    assert torch.equal(t.theta.grad[2], torch.zeros(5))
    assert t.theta.grad[0].abs().sum() > 0


# -- gradients reach theta, never the backbone -------------------------------------------------------
def test_gradients_reach_theta_and_the_backbone_is_bit_for_bit_unchanged(tiny_bert: Any) -> None:
    t = VocabMapTransform(6, sparsity="topk", k=8).bind(tiny_bert)
    before = copy.deepcopy(tiny_bert.state_dict())
    opt = torch.optim.AdamW(t.parameters(), lr=0.1, weight_decay=0.1)
    ids = torch.tensor([[1, 2, 3, 4, 5, 0], [5, 4, 3, 2, 1, 1]])
    theta0 = t.theta.detach().clone()
    for _ in range(2):
        opt.zero_grad()
        hidden = tiny_bert(t(ids))  # (2, 6, 32)
        hidden.pow(2).mean().backward()
        opt.step()
    assert t.theta.grad is not None and t.theta.grad.abs().sum() > 0
    assert not torch.equal(t.theta.detach(), theta0)
    assert all(p.grad is None and not p.requires_grad for p in tiny_bert.parameters())
    after = tiny_bert.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # theta is this module's only parameter: the backbone is not registered inside it
    assert [name for name, _ in t.named_parameters()] == ["theta"]


# -- initialisation ---------------------------------------------------------------------------------
def test_random_token_init_is_seeded_and_starts_near_one_distinct_source_token(tiny_bert: Any) -> None:
    a = VocabMapTransform(8, seed=3).bind(tiny_bert)
    b = VocabMapTransform(8, seed=3).bind(tiny_bert)
    c = VocabMapTransform(8, seed=4).bind(tiny_bert)
    assert torch.equal(a.theta, b.theta)
    assert not torch.equal(a.theta, c.theta)
    chosen = a.theta.detach()[1:].argmax(dim=1)  # row 0 is padding
    assert len(set(chosen.tolist())) == 7
    assert not set(chosen.tolist()) & set(tiny_bert.tokenizer.all_special_ids)
    emb = tiny_bert.word_embeddings.detach()
    table = a.table().detach()[1:]
    rel = (table - emb[chosen]).norm(dim=1) / emb[chosen].norm(dim=1)
    assert rel.max() < 0.05
    assert torch.equal(a.table()[0].detach(), torch.zeros(tiny_bert.hidden_size))
    # each token reads as its chosen source token
    assert all(a.nearest_source_tokens(k=1)[i + 1] == [int(chosen[i])] for i in range(7))


def test_uniform_init_is_the_mean_source_embedding() -> None:
    t = bound(num_tokens=3, init="uniform", padding_idx=None)
    assert torch.equal(t.theta.detach(), torch.full((3, 5), 0.2))
    assert torch.allclose(t.table(), E.mean(dim=0).expand(3, 3), atol=1e-6)


def test_uniform_topk_init_is_seeded() -> None:
    a = bound(num_tokens=3, init="uniform", sparsity="topk", k=2, seed=1)
    b = bound(num_tokens=3, init="uniform", sparsity="topk", k=2, seed=1)
    assert torch.equal(a.effective_theta(), b.effective_theta())
    assert (a.effective_theta()[1:] != 0).sum(dim=1).tolist() == [2, 2]


# -- inspection ---------------------------------------------------------------------------------------
def test_nearest_source_tokens_by_cosine_without_the_padding_token() -> None:
    theta = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 2.0, 0.0],  # 2 (1, 1, 0): token 3 (cos 1), then tokens 0 and 1 (cos 0.71)
            [0.0, 0.0, 0.0, 0.0, 1.0],  # (0, 2, -1): token 4, then token 1 (cos 0.89)
        ]
    )
    near = bound(theta).nearest_source_tokens(k=2)
    assert set(near) == {1, 2}
    assert near[1][0] == 3 and near[1][1] in (0, 1)
    assert near[2] == [4, 1]


# -- errors -------------------------------------------------------------------------------------------
def test_constructor_only_stores_settings() -> None:
    t = VocabMapTransform(5, sparsity="nonsense")  # validated when bound, where V is known
    assert t.num_tokens == 5 and not t.bound and list(t.parameters()) == []
    with pytest.raises(RuntimeError, match="not bound"):
        t(torch.zeros(1, 2, dtype=torch.long))


def test_bind_needs_a_backbone_with_word_embeddings() -> None:
    with pytest.raises(TypeError, match=r"word_embeddings.*got Linear"):
        VocabMapTransform(4).bind(nn.Linear(3, 3))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sparsity": "sparse"}, r"sparsity must be one of \['dense', 'l1', 'topk'\], got 'sparse'"),
        ({"init": "zeros"}, r"init must be one of \['random-token', 'uniform'\], got 'zeros'"),
        ({"sparsity": "topk", "k": 6}, r"k must be an int in \[1, 5\] .* got 6"),
        ({"sparsity": "l1", "l1": -1.0}, r"l1 must be a number >= 0, got -1.0"),
        ({"padding_idx": 3}, r"padding_idx must be None or an int in \[0, 3\), got 3"),
        ({"num_tokens": 0}, r"num_tokens must be a positive int, got 0"),
    ],
)
def test_bad_settings_are_named_at_bind(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bound(**kwargs)


def test_bad_ids_are_rejected() -> None:
    t = bound(num_tokens=3)
    with pytest.raises(TypeError, match=r"integer token ids.*float32"):
        t(torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"in \[0, 3\) \(num_tokens\), got values in \[0, 3\]"):
        t(torch.tensor([[0, 3]]))
    with pytest.raises(ValueError, match=r"got values in \[-1, 1\]"):
        t(torch.tensor([[-1, 1]]))
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 5\]"):
        t.nearest_source_tokens(k=0)


def test_rebinding_to_another_backbone_is_an_error() -> None:
    backbone = TableBackbone()
    t = VocabMapTransform(3).bind(backbone)
    assert t.bind(backbone) is t
    with pytest.raises(ValueError, match="already bound to another backbone"):
        t.bind(TableBackbone())


def test_registered_as_vocab_map() -> None:
    t = TRANSFORMS.resolve("vocab-map", num_tokens=4, sparsity="l1")
    assert isinstance(t, VocabMapTransform) and t.sparsity == "l1"

"""O: the linear head binds its width from the backbone and pools (B, S, D) with a mask, by hand."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from xdomain.heads.linear import LinearHead
from xdomain.registry import HEADS

# two sequences of three positions, D = 2; the mask marks padding at the end of row 0, the start of row 1
HIDDEN = torch.tensor(
    [
        [[1.0, 2.0], [3.0, 4.0], [100.0, -100.0]],
        [[50.0, 50.0], [-1.0, 0.0], [5.0, -2.0]],
    ]
)
MASK = torch.tensor([[1, 1, 0], [0, 1, 1]])


def identity_head(pooling: str) -> LinearHead:
    """A bound head whose linear layer is the identity plus bias (10, 20): outputs show the pooled values."""
    head = LinearHead(num_classes=2, pooling=pooling).bind(SimpleNamespace(hidden_size=2))
    with torch.no_grad():
        head.linear.weight.copy_(torch.eye(2))
        head.linear.bias.copy_(torch.tensor([10.0, 20.0]))
    return head


@pytest.mark.parametrize(
    ("pooling", "pooled"),
    [
        ("mean", [[2.0, 3.0], [2.0, -1.0]]),  # row 1: mean of (-1, 0) and (5, -2)
        ("max", [[3.0, 4.0], [5.0, 0.0]]),
        ("first", [[1.0, 2.0], [-1.0, 0.0]]),  # row 1's first real token is position 1
    ],
)
def test_masked_pooling_by_hand(pooling: str, pooled: list[list[float]]) -> None:
    head = identity_head(pooling)
    expected = torch.tensor(pooled)
    torch.testing.assert_close(head.pool(HIDDEN, MASK), expected)
    torch.testing.assert_close(head.pool(HIDDEN, MASK.bool()), expected)
    torch.testing.assert_close(head(HIDDEN, MASK), expected + torch.tensor([10.0, 20.0]))


@pytest.mark.parametrize(
    ("pooling", "pooled"),
    [
        ("mean", [[104 / 3, -94 / 3], [54 / 3, 48 / 3]]),
        ("max", [[100.0, 4.0], [50.0, 50.0]]),
        ("first", [[1.0, 2.0], [50.0, 50.0]]),
    ],
)
def test_pooling_without_a_mask_uses_every_position(pooling: str, pooled: list[list[float]]) -> None:
    torch.testing.assert_close(identity_head(pooling).pool(HIDDEN), torch.tensor(pooled))


def test_padding_values_do_not_change_the_output() -> None:
    for pooling in ("mean", "max", "first"):
        head = identity_head(pooling)
        changed = HIDDEN.clone()
        changed[0, 2] = torch.tensor([-7.0, 9e3])
        changed[1, 0] = torch.tensor([1e4, -3.0])
        assert torch.equal(head(changed, MASK), head(HIDDEN, MASK))


def test_two_dimensional_input_goes_straight_to_the_linear_layer() -> None:
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    for pooling in ("none", "mean"):
        backbone = SimpleNamespace(output_kind="logits", num_outputs=6)
        head = LinearHead(num_classes=3, pooling=pooling).bind(backbone)
        torch.testing.assert_close(head(x), x @ head.linear.weight.T + head.linear.bias)
        assert head(x).shape == (5, 3)


def test_bind_reads_the_width_from_the_backbone() -> None:
    for backbone in (
        SimpleNamespace(output_kind="logits", num_outputs=6),
        SimpleNamespace(output_kind="embedding", num_outputs=6),
    ):
        head = LinearHead(num_classes=4).bind(backbone)
        assert (head.linear.in_features, head.linear.out_features) == (6, 4)
    head = LinearHead(num_classes=3).bind(SimpleNamespace(hidden_size=8))
    assert (head.linear.in_features, head.linear.out_features) == (8, 3)
    assert head(torch.randn(2, 5, 8)).shape == (2, 3)


def test_the_layer_is_created_at_bind_not_in_the_constructor() -> None:
    head = LinearHead(num_classes=3)
    assert list(head.parameters()) == []
    head.bind(SimpleNamespace(hidden_size=8))
    assert sum(p.numel() for p in head.parameters()) == 8 * 3 + 3
    assert head.bind(SimpleNamespace(hidden_size=8)) is head  # idempotent
    with pytest.raises(ValueError, match="bound to a backbone of width 8; got another of width 6"):
        head.bind(SimpleNamespace(hidden_size=6))


def test_dropout_acts_only_in_training() -> None:
    torch.manual_seed(0)
    head = LinearHead(num_classes=2, dropout=0.5).bind(SimpleNamespace(hidden_size=16))
    x = torch.randn(4, 16)
    head.eval()
    assert torch.equal(head(x), head(x))
    evaluated = head(x)
    head.train()
    assert not torch.allclose(head(x), evaluated)


def test_registered_by_name() -> None:
    head = HEADS.build("linear", num_classes=3, pooling="max")
    assert isinstance(head, LinearHead)
    assert head.pooling == "max"


# -- errors ------------------------------------------------------------------------------------------
def test_use_before_bind_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"not bound.*bind"):
        LinearHead(num_classes=2)(torch.randn(2, 4))


def test_backbone_without_a_width_is_refused() -> None:
    with pytest.raises(TypeError, match=r"num_outputs.*hidden_size.*SimpleNamespace has neither"):
        LinearHead(num_classes=2).bind(SimpleNamespace(output_kind="logits"))
    with pytest.raises(ValueError, match="positive integer, got 0"):
        LinearHead(num_classes=2).bind(SimpleNamespace(output_kind="logits", num_outputs=0))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown pooling 'cls'; expected one of \['mean', 'max'"):
        LinearHead(num_classes=2, pooling="cls").bind(SimpleNamespace(hidden_size=4))
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        LinearHead(num_classes=0).bind(SimpleNamespace(hidden_size=4))
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got 1.0"):
        LinearHead(num_classes=2, dropout=1.0).bind(SimpleNamespace(hidden_size=4))


def test_bad_shapes_are_refused() -> None:
    head = LinearHead(num_classes=2).bind(SimpleNamespace(hidden_size=2))
    with pytest.raises(ValueError, match=r"expects \(B, 2\) or \(B, S, 2\), got shape \(2, 3, 5\)"):
        head(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match=r"got shape \(2,\)"):
        head(torch.randn(2))
    with pytest.raises(ValueError, match=r"attention_mask must be \(B, S\) = \(2, 3\), got shape \(2, 4\)"):
        head(HIDDEN, torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"attention_mask is for \(B, S, D\) input.*\(2, 2\)"):
        head(torch.randn(2, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"rows \[1\] mark no real token"):
        head(HIDDEN, torch.tensor([[1, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="0 \\(padding\\) and 1 \\(real token\\) only"):
        head(HIDDEN, torch.tensor([[1, 2, 0], [0, 1, 1]]))
    none = LinearHead(num_classes=2, pooling="none").bind(SimpleNamespace(hidden_size=2))
    with pytest.raises(ValueError, match=r"pooling='none' needs \(B, D\) input, got .*\(2, 3, 2\)"):
        none(HIDDEN)


def test_standardize_fits_mean_and_std_by_hand_and_floors_constant_features() -> None:
    head = LinearHead(num_classes=2, pooling="none", standardize=True).bind(SimpleNamespace(num_outputs=3))
    with torch.no_grad():
        head.linear.weight.copy_(torch.eye(2, 3))
        head.linear.bias.zero_()
    # feature 0: values 1, 3 (mean 2, sample std sqrt(2)); feature 1: 10, 10 (constant); feature 2: 0, 4
    outputs = torch.tensor([[1.0, 10.0, 0.0], [3.0, 10.0, 4.0]])
    head.fit_mapping(outputs, torch.tensor([0, 1]))
    torch.testing.assert_close(head.feature_mean, torch.tensor([2.0, 10.0, 2.0]))
    std0, std2 = 2.0**0.5, 8.0**0.5
    floor = 1e-2 * ((std0**2 + 0.0 + std2**2) / 3) ** 0.5 + 1e-6
    torch.testing.assert_close(head.feature_std, torch.tensor([std0, floor, std2]))
    out = head(torch.tensor([[4.0, 10.5, 0.0]]))
    torch.testing.assert_close(out, torch.tensor([[2.0 / std0, 0.5 / floor]]))
    assert head.refit_each_epoch and "feature_mean" in head.learned_buffers


def test_without_standardize_fit_mapping_changes_nothing() -> None:
    head = LinearHead(num_classes=2, pooling="none").bind(SimpleNamespace(num_outputs=2))
    head.fit_mapping(torch.tensor([[5.0, 6.0], [7.0, 9.0]]))
    torch.testing.assert_close(head.feature_mean, torch.zeros(2))
    torch.testing.assert_close(head.feature_std, torch.ones(2))
    assert not head.refit_each_epoch

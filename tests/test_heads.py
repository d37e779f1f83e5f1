"""O: the flatten head reads only the last n_positions and the first d_ff features."""

from __future__ import annotations

import pytest
import torch

from xdomain.backbones import LanguageBackbone
from xdomain.heads import FlattenHead


@pytest.fixture
def head(tiny_bert: LanguageBackbone) -> FlattenHead:
    torch.manual_seed(0)
    return FlattenHead(horizon=7, d_ff=16, dropout=0.0).bind(tiny_bert, n_positions=5)


def test_output_shape_and_sizes(head: FlattenHead) -> None:
    assert head(torch.randn(4, 12, 32)).shape == (4, 7)
    assert (head.features, head.n_positions) == (16, 5)
    assert head.linear.in_features == 16 * 5


def test_uses_only_the_last_positions_and_first_features(head: FlattenHead) -> None:
    hidden = torch.randn(3, 12, 32, generator=torch.Generator().manual_seed(0))
    out = head(hidden)
    prefix_changed = hidden.clone()
    prefix_changed[:, :7] += 100.0  # positions before the last 5 (e.g. the prompt)
    features_changed = hidden.clone()
    features_changed[:, :, 16:] = -50.0  # features beyond d_ff
    assert torch.equal(head(prefix_changed), out)
    assert torch.equal(head(features_changed), out)
    last_changed = hidden.clone()
    last_changed[:, -1, 0] += 1.0
    assert not torch.allclose(head(last_changed), out)
    expected = head.linear(hidden[:, -5:, :16].reshape(3, -1))
    torch.testing.assert_close(out, expected)


def test_d_ff_is_capped_at_the_hidden_size(tiny_bert: LanguageBackbone) -> None:
    head = FlattenHead(horizon=3, d_ff=128).bind(tiny_bert, n_positions=2)
    assert head.features == 32
    assert head(torch.randn(1, 2, 32)).shape == (1, 3)


def test_unbound_head_says_so() -> None:
    with pytest.raises(RuntimeError, match=r"call bind\(backbone, n_positions=...\)"):
        FlattenHead(horizon=3)(torch.randn(1, 2, 32))

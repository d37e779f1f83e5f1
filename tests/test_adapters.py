"""Domain adapter: instance normalisation and channel independence, and its inverse."""

from __future__ import annotations

import re

import pytest
import torch

from xdomain.adapters import TimeSeriesAdapter


def test_encode_folds_channels_into_the_batch_and_normalises_each_series() -> None:
    x = torch.randn(2, 16, 3, generator=torch.Generator().manual_seed(0)) * 5 + 7
    z, state = TimeSeriesAdapter().encode(x)
    assert z.shape == (6, 16)
    assert (state.batch, state.channels) == (2, 3)
    assert state.mean.shape == (6, 1) and state.std.shape == (6, 1)
    # row b * N + n is series x[b, :, n]
    row = x[1, :, 2]
    expected = (row - row.mean()) / torch.sqrt(row.var(unbiased=False) + 1e-5)
    torch.testing.assert_close(z[1 * 3 + 2], expected)
    torch.testing.assert_close(z.mean(dim=1), torch.zeros(6), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(dim=1, unbiased=False), torch.ones(6), atol=1e-4, rtol=0)


def test_decode_undoes_encode() -> None:
    adapter = TimeSeriesAdapter()
    x = torch.randn(4, 24, 2, generator=torch.Generator().manual_seed(1)) * 100 - 30
    z, state = adapter.encode(x)
    back = adapter.decode(z, state)  # an identity path: (B*N, L) -> (B, L, N)
    assert back.shape == x.shape
    torch.testing.assert_close(back, x, rtol=1e-5, atol=1e-4)


def test_decode_puts_each_forecast_back_in_its_series_units() -> None:
    adapter = TimeSeriesAdapter(eps=0.0)
    x = torch.tensor([[[0.0, 10.0], [2.0, 30.0]]])  # (1, L=2, N=2): means 1 and 20, stds 1 and 10
    _, state = adapter.encode(x)
    y = adapter.decode(torch.tensor([[1.0, -1.0, 0.0], [0.5, 0.0, 2.0]]), state)  # (B*N, H=3)
    assert y.shape == (1, 3, 2)
    assert y[0, :, 0].tolist() == [2.0, 0.0, 1.0]
    assert y[0, :, 1].tolist() == [25.0, 20.0, 40.0]


def test_constant_series_does_not_divide_by_zero() -> None:
    z, _ = TimeSeriesAdapter().encode(torch.full((1, 8, 1), 3.0))
    assert torch.isfinite(z).all() and torch.equal(z, torch.zeros(1, 8))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_is_an_error(bad: float) -> None:
    x = torch.zeros(1, 8, 2)
    x[0, 3, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite values"):
        TimeSeriesAdapter().encode(x)


def test_wrong_rank_is_an_error() -> None:
    with pytest.raises(ValueError, match=re.escape("must be (B, L, N), got shape (8, 2)")):
        TimeSeriesAdapter().encode(torch.zeros(8, 2))

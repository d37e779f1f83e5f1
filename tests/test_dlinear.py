"""DLinear baseline: moving-average decomposition and the published initialisation, by hand."""

from __future__ import annotations

import re

import pytest
import torch

from xdomain.baselines import DLinear, MovingAverage


def test_moving_average_odd_kernel_by_hand() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]).view(1, 5, 1)
    # padded with one copy of each end: 1 1 2 3 4 5 5
    expected = [4 / 3, 2.0, 3.0, 4.0, 14 / 3]
    assert MovingAverage(3)(x).view(-1).tolist() == pytest.approx(expected)


def test_moving_average_even_kernel_by_hand() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]).view(1, 5, 1)
    # kernel 4: one copy in front, two at the end: 1 1 2 3 4 5 5 5
    expected = [7 / 4, 10 / 4, 14 / 4, 17 / 4, 19 / 4]
    assert MovingAverage(4)(x).view(-1).tolist() == pytest.approx(expected)


def test_moving_average_keeps_length_and_channels_apart() -> None:
    x = torch.stack([torch.arange(10.0), torch.full((10,), 3.0)], dim=-1)[None]  # (1, 10, 2)
    trend = MovingAverage(5)(x)
    assert trend.shape == (1, 10, 2)
    assert torch.equal(trend[0, :, 1], torch.full((10,), 3.0))
    assert trend[0, 4, 0].item() == pytest.approx(4.0)  # mean of 2..6


def test_constant_input_with_the_published_init() -> None:
    torch.manual_seed(0)
    model = DLinear(lookback=16, horizon=4, moving_avg=5)
    assert torch.equal(model.seasonal.weight, torch.full((4, 16), 1 / 16))
    assert torch.equal(model.trend.weight, torch.full((4, 16), 1 / 16))
    x = torch.full((2, 16, 3), 2.5)
    with torch.no_grad():
        out = model(x)
        # trend = the constant, seasonal = 0: each output is the average of the window plus the biases
        expected = 2.5 + model.trend.bias + model.seasonal.bias  # (H,)
        torch.testing.assert_close(out, expected.view(1, 4, 1).expand(2, 4, 3))
        model.trend.bias.zero_()
        model.seasonal.bias.zero_()
        torch.testing.assert_close(model(x), x[:, :4, :])


def test_dlinear_matches_a_hand_computed_decomposition() -> None:
    torch.manual_seed(0)
    model = DLinear(lookback=5, horizon=2, moving_avg=3)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]).view(1, 5, 1)
    trend = torch.tensor([4 / 3, 2.0, 3.0, 4.0, 14 / 3])
    seasonal = x.view(-1) - trend
    expected = model.seasonal(seasonal) + model.trend(trend)
    torch.testing.assert_close(model(x).view(-1), expected)


def test_wrong_rank_is_an_error() -> None:
    with pytest.raises(ValueError, match=re.escape("DLinear input must be (B, L, N), got shape (16,)")):
        DLinear(16, 4)(torch.zeros(16))

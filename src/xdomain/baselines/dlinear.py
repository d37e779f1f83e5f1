"""DLinear (Zeng et al., AAAI 2023): moving-average decomposition and two linear maps over time.

The standard baseline of the LLM-forecasting papers (ETTh1-96 MSE 0.375 as published). Shared weights
across channels (``individual=False``), like the published ETT runs.

Shapes:
    - input: ``(B, L, N)`` -> output: ``(B, H, N)``
"""

from __future__ import annotations

import torch
from torch import nn


class MovingAverage(nn.Module):
    """Trend by a moving average over time, the series replicated at both ends to keep its length."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.pool = nn.AvgPool1d(kernel_size, stride=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        front = x[:, :1, :].repeat(1, (self.kernel_size - 1) // 2, 1)
        end = x[:, -1:, :].repeat(1, self.kernel_size // 2, 1)
        padded = torch.cat([front, x, end], dim=1)  # (B, L + k - 1, N)
        return self.pool(padded.permute(0, 2, 1)).permute(0, 2, 1)  # (B, L, N)


class DLinear(nn.Module):
    """DLinear: seasonal and trend parts each mapped ``L -> H`` by a linear layer, then summed."""

    def __init__(self, lookback: int, horizon: int, moving_avg: int = 25) -> None:
        super().__init__()
        self.decomposition = MovingAverage(moving_avg)
        self.seasonal = nn.Linear(lookback, horizon)
        self.trend = nn.Linear(lookback, horizon)
        # the published initialisation: both start as a plain average over the input window
        nn.init.constant_(self.seasonal.weight, 1.0 / lookback)
        nn.init.constant_(self.trend.weight, 1.0 / lookback)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:
            raise ValueError(f"DLinear input must be (B, L, N), got shape {tuple(x.shape)}")
        trend = self.decomposition(x)
        seasonal = x - trend
        out = self.seasonal(seasonal.permute(0, 2, 1)) + self.trend(trend.permute(0, 2, 1))  # (B, N, H)
        return out.permute(0, 2, 1)  # (B, H, N)


__all__ = ["DLinear", "MovingAverage"]

"""Domain adapter for time series: instance normalisation and channel independence (Time-LLM, RevIN).

Shapes:
    - encode: ``(B, L, N)`` -> ``(B*N, L)`` normalised per series, plus the statistics to undo it
    - decode: ``(B*N, H)`` -> ``(B, H, N)`` in the input's units
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xdomain.registry import ADAPTERS


@dataclass
class SeriesState:
    """What :meth:`TimeSeriesAdapter.decode` needs to undo :meth:`TimeSeriesAdapter.encode`."""

    mean: torch.Tensor  # (B*N, 1)
    std: torch.Tensor  # (B*N, 1)
    batch: int
    channels: int


@ADAPTERS.register("time-series")
class TimeSeriesAdapter(nn.Module):
    """Instance normalisation without a learned affine, channels handled independently.

    Args:
        eps: added to the variance before the square root (Time-LLM: 1e-5).
        decode_mean: add the window's mean back when decoding (a forecast); ``False`` scales by the
            window's std only (a correction added to another forecast, zero when the head outputs zero).
    """

    def __init__(self, eps: float = 1e-5, decode_mean: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.decode_mean = decode_mean

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, SeriesState]:
        if x.ndim != 3:
            raise ValueError(f"time series batch must be (B, L, N), got shape {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise ValueError("time series batch holds NaN or infinite values; clean or fill them first")
        b, length, n = x.shape
        z = x.permute(0, 2, 1).reshape(b * n, length)  # (B*N, L)
        mean = z.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(z.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        return (z - mean) / std, SeriesState(mean, std, b, n)

    def decode(self, y: torch.Tensor, state: SeriesState) -> torch.Tensor:
        y = y * state.std + state.mean if self.decode_mean else y * state.std  # (B*N, H)
        return y.reshape(state.batch, state.channels, -1).permute(0, 2, 1)  # (B, H, N)


__all__ = ["SeriesState", "TimeSeriesAdapter"]

"""Metrics: forecast errors accumulated exactly over a whole split (every window, every step, every
channel), and the diversity of designed sequences."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class ErrorAccumulator:
    """Running sums for MSE and MAE; ``update`` takes predictions and targets of any equal shape."""

    def __init__(self) -> None:
        self.sq = 0.0
        self.abs = 0.0
        self.count = 0

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        if pred.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(target.shape)}")
        diff = pred.detach().double() - target.detach().double()
        self.sq += float((diff**2).sum())
        self.abs += float(diff.abs().sum())
        self.count += diff.numel()

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("no predictions were accumulated")
        return {"mse": self.sq / self.count, "mae": self.abs / self.count, "n": float(self.count)}


def mse(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(((pred.double() - target.double()) ** 2).mean())


def mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float((pred.double() - target.double()).abs().mean())


def diversity(samples: Sequence[str]) -> float:
    """Mean pairwise normalised Hamming distance between equal-length samples (0: all identical)."""
    if len(samples) < 2:
        return 0.0
    lengths = sorted({len(s) for s in samples})
    if len(lengths) > 1:
        raise ValueError(f"diversity needs samples of one length, got lengths {lengths[:5]}")
    arr = np.array([list(s) for s in samples])
    n = len(arr)
    total = sum(float((arr[i] != arr[j]).mean()) for i in range(n) for j in range(i + 1, n))
    return total / (n * (n - 1) / 2)


__all__ = ["ErrorAccumulator", "diversity", "mae", "mse"]

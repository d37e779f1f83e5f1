"""Forecast metrics accumulated exactly over a whole split (every window, every step, every channel)."""

from __future__ import annotations

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


__all__ = ["ErrorAccumulator", "mae", "mse"]

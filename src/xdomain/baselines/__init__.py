"""Honest baselines that sit beside every reprogrammed result."""

from xdomain.baselines.dlinear import DLinear, MovingAverage

__all__ = ["DLinear", "MovingAverage"]

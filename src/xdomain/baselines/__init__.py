"""Honest baselines that sit beside every reprogrammed result."""

from xdomain.baselines.dlinear import DLinear, MovingAverage
from xdomain.baselines.kmer import KmerLogisticRegression

__all__ = ["DLinear", "KmerLogisticRegression", "MovingAverage"]

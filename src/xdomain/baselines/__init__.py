"""Honest baselines that sit beside every reprogrammed result."""

from xdomain.baselines.dlinear import DLinear, MovingAverage
from xdomain.baselines.kmer import KmerLogisticRegression
from xdomain.baselines.linear_probe import fit_logistic_probe

__all__ = ["DLinear", "KmerLogisticRegression", "MovingAverage", "fit_logistic_probe"]

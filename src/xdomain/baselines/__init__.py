"""Honest baselines that sit beside every reprogrammed result."""

from xdomain.baselines.dlinear import DLinear, MovingAverage
from xdomain.baselines.kmer import KmerLogisticRegression
from xdomain.baselines.linear_probe import fit_logistic_probe
from xdomain.baselines.position_frequency import position_frequency_infill

__all__ = [
    "DLinear",
    "KmerLogisticRegression",
    "MovingAverage",
    "fit_logistic_probe",
    "position_frequency_infill",
]

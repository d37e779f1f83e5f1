"""Domain adapters: target data into the backbone's input space and the answer back."""

from xdomain.adapters.time_series import SeriesState, TimeSeriesAdapter

__all__ = ["SeriesState", "TimeSeriesAdapter"]

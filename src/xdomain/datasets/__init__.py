"""Data sets: official benchmark files in a data home, and the user's own DataFrames."""

from xdomain.datasets.ett import DESCRIPTION as ETT_DESCRIPTION
from xdomain.datasets.ett import ETT_FILES, ETTSplits, ett_splits, load_ett
from xdomain.datasets.frames import SeriesTable, WindowDataset, few_shot_rows, frame_to_table
from xdomain.datasets.home import DataNotFoundError, data_home, fetch

__all__ = [
    "ETT_DESCRIPTION",
    "ETT_FILES",
    "DataNotFoundError",
    "ETTSplits",
    "SeriesTable",
    "WindowDataset",
    "data_home",
    "ett_splits",
    "fetch",
    "few_shot_rows",
    "frame_to_table",
    "load_ett",
]

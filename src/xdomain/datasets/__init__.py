"""Data sets: official benchmark files in a data home, and the user's own data (DataFrames, FASTA)."""

from xdomain.datasets.deepsol import load_deepsol
from xdomain.datasets.ett import DESCRIPTION as ETT_DESCRIPTION
from xdomain.datasets.ett import ETT_FILES, ETTSplits, ett_splits, load_ett
from xdomain.datasets.frames import SeriesTable, WindowDataset, few_shot_rows, frame_to_table
from xdomain.datasets.fsdd import FSDD, load_fsdd
from xdomain.datasets.home import DataNotFoundError, data_home, fetch
from xdomain.datasets.peptides import amp_split, load_amp
from xdomain.datasets.sabdab import load_sabdab_cdr
from xdomain.datasets.sequences import SequenceSet, read_sequences, write_fasta
from xdomain.datasets.ucr import load_ucr

__all__ = [
    "ETT_DESCRIPTION",
    "ETT_FILES",
    "FSDD",
    "DataNotFoundError",
    "ETTSplits",
    "SequenceSet",
    "SeriesTable",
    "WindowDataset",
    "amp_split",
    "data_home",
    "ett_splits",
    "fetch",
    "few_shot_rows",
    "frame_to_table",
    "load_amp",
    "load_deepsol",
    "load_ett",
    "load_fsdd",
    "load_sabdab_cdr",
    "load_ucr",
    "read_sequences",
    "write_fasta",
]

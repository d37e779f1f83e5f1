"""ETT (Zhou et al., Informer, AAAI 2021): electricity transformer load and oil temperature.

The split is the published one (Informer / Autoformer / Time-LLM ``Dataset_ETT_*``): 12 months train,
4 validation, 4 test, i.e. rows ``[0, 8640)``, ``[8640, 11520)``, ``[11520, 14400)`` for the hourly
sets (x4 for the 15-minute sets). Validation and test windows may look back into the preceding split
(their first target row is the first row of the split), as in the reference code. The scaler is fitted
on the training rows only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from xdomain.datasets.home import fetch
from xdomain.registry import DATASETS

_BASE = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/1d16c8f4f943005d613b5bc962e9eeb06058cf07/ETT-small/"
# sha256 of the official files at that commit; None where we have not verified a copy here.
ETT_FILES: dict[str, str | None] = {
    "ETTh1": "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
    "ETTh2": None,
    "ETTm1": None,
    "ETTm2": None,
}

# Short on purpose: every prompt token is paid for in every forward pass of the backbone.
DESCRIPTION = "Electricity transformer load and oil temperature, recorded in China."


def _canonical(name: str) -> str:
    for key in ETT_FILES:
        if key.lower() == name.lower():
            return key
    raise ValueError(f"unknown ETT data set {name!r}; expected one of {sorted(ETT_FILES)}")


def load_ett(
    name: str = "ETTh1", data_home: str | os.PathLike[str] | None = None, download: bool = True
) -> pd.DataFrame:
    """The raw ETT table: a ``DatetimeIndex`` named ``date`` and 7 float columns (``OT`` last)."""
    key = _canonical(name)
    path = fetch(f"ETT/{key}.csv", _BASE + f"{key}.csv", ETT_FILES[key], data_home, download)
    frame = pd.read_csv(path, parse_dates=["date"], index_col="date")
    return frame.astype("float64")


@dataclass
class ETTSplits:
    """Standardised splits (scaler fitted on train), each carrying ``lookback`` rows of context."""

    name: str
    train: np.ndarray  # (T_train, N)
    val: np.ndarray  # (lookback + T_val, N)
    test: np.ndarray  # (lookback + T_test, N)
    mean: np.ndarray  # (N,)
    std: np.ndarray  # (N,)
    columns: list[str]
    index: pd.DatetimeIndex  # the dates of all rows used, in order (train rows then val/test rows)
    borders: dict[str, tuple[int, int]]  # row ranges of each split in the raw table (with context)


def ett_splits(
    name: str = "ETTh1",
    lookback: int = 512,
    data_home: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> ETTSplits:
    """Split ETT as the reference code does and standardise it with train statistics."""
    key = _canonical(name)
    frame = load_ett(key, data_home, download)
    per_month = 30 * 24 * (4 if key.startswith("ETTm") else 1)
    train_end, val_end, test_end = 12 * per_month, 16 * per_month, 20 * per_month
    if lookback >= train_end:
        raise ValueError(
            f"lookback {lookback} is too long for {key}: the training split has {train_end} rows"
        )
    values = frame.to_numpy(dtype=np.float64)
    train = values[:train_end]
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    scaled = ((values - mean) / std).astype(np.float32)
    borders = {
        "train": (0, train_end),
        "val": (train_end - lookback, val_end),
        "test": (val_end - lookback, test_end),
    }
    return ETTSplits(
        name=key,
        train=scaled[slice(*borders["train"])],
        val=scaled[slice(*borders["val"])],
        test=scaled[slice(*borders["test"])],
        mean=mean,
        std=std,
        columns=list(frame.columns),
        index=pd.DatetimeIndex(frame.index),
        borders=borders,
    )


for _key in ETT_FILES:
    DATASETS.register(_key)(lambda data_home=None, download=True, _k=_key: load_ett(_k, data_home, download))

__all__ = ["DESCRIPTION", "ETT_FILES", "ETTSplits", "ett_splits", "load_ett"]

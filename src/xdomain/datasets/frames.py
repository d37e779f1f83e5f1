"""User data in, windows out: pandas DataFrames (wide or long) and sliding-window datasets.

- wide: one column per series, rows ordered in time (a ``DatetimeIndex`` gives future timestamps);
- long: columns ``unique_id``, ``ds``, ``y`` (the Nixtla convention), series of any lengths.

Time stamps (a wide frame's ``DatetimeIndex``, a long frame's datetime ``ds``) must be regular: a gap (a
missing hour of hourly data) is an error naming the first missing stamp and the inferred frequency, unless
``fill=`` is given, which fills the missing stamps as it fills NaN values. Missing ``unique_id`` or ``ds``
values, and two series whose labels read alike (``1`` and ``"1"``), are errors too.

Series to classify (:func:`series_matrix`): an array, a DataFrame (a row per series) or a list of 1-D
series, as one float32 matrix.

Nothing the user passes is modified: every array here is a copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

LONG_COLUMNS = ("unique_id", "ds", "y")
FILLS = ("ffill", "interpolate", "zero")


@dataclass
class SeriesTable:
    """Series as float arrays, with what is needed to label forecasts."""

    names: list[str]  # str(label): keys for per-series state such as scalers
    arrays: list[np.ndarray]  # one 1-D float32 array per series
    last_stamp: list[Any]  # the last index value of each series
    freqs: list[Any]  # per series: pandas offset / Timedelta, or None for a plain integer index
    layout: str  # "wide" | "long"
    labels: list[Any]  # the user's own column labels / unique_ids, returned unchanged in forecasts


def _fill(values: pd.Series, name: str, fill: str | None) -> np.ndarray:
    arr = values.to_numpy(dtype=np.float64, copy=True)
    bad = ~np.isfinite(arr)
    if not bad.any():
        return arr
    if fill is None:
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"series {name!r} holds {int(bad.sum())} NaN or infinite values (first at row {first}: "
            f"{arr[first]!r}); expected finite numbers, or pass fill= one of {FILLS}"
        )
    s = pd.Series(np.where(bad, np.nan, arr))
    if fill == "zero":
        s = s.fillna(0.0)
    elif fill == "ffill":
        s = s.ffill().bfill()
    else:
        s = s.interpolate(limit_direction="both")
    if s.isna().any():
        raise ValueError(f"series {name!r} has no finite value to fill from")
    return s.to_numpy(dtype=np.float64)


def _infer_freq(index: pd.DatetimeIndex) -> Any:
    try:  # pandas >= 3.1 announces offsets instead of strings: ask for them
        with pd.option_context("future.infer_freq_returns_offset", True):
            return pd.infer_freq(index)
    except KeyError:  # an older pandas without that option (OptionError is a KeyError)
        return pd.infer_freq(index)


def _freq(index: pd.Index) -> Any:
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 2:
        if index.freq is not None:
            return index.freq
        inferred = _infer_freq(index) if len(index) >= 3 else None
        # to_offset accepts the string of today's pandas and the offset of tomorrow's
        return pd.tseries.frequencies.to_offset(inferred) if inferred is not None else index[-1] - index[-2]
    return None


def check_fill(fill: str | None) -> None:
    if fill is not None and fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS} or None, got {fill!r}")


def _check_names(labels: list[Any], what: str) -> None:
    """Series are keyed by ``str(label)`` (scalers, checkpoints): two labels must never share a key."""
    seen: dict[str, Any] = {}
    for label in labels:
        key = str(label)
        if key in seen:
            other = seen[key]
            if type(other) is type(label) and other == label:
                raise ValueError(f"duplicate {what} {label!r}; expected each series to appear once")
            raise ValueError(
                f"{what}s {other!r} ({type(other).__name__}) and {label!r} ({type(label).__name__}) both "
                f"name series {key!r}; expected distinct names (rename one of them)"
            )
        seen[key] = label


def _first_missing(values: pd.Series | pd.Index, what: str, expected: str) -> None:
    """A clear error naming how many values of ``what`` are missing (NaN, None, NaT), and the first."""
    missing = np.asarray(pd.isna(values))
    if missing.any():
        where = (values.index[missing] if isinstance(values, pd.Series) else np.flatnonzero(missing)).tolist()
        raise ValueError(
            f"{what} has {int(missing.sum())} missing value(s) (NaN, None or NaT), the first at "
            f"{'row label' if isinstance(values, pd.Series) else 'position'} {where[0]!r}; "
            f"expected {expected}"
        )


def _grid(stamps: pd.DatetimeIndex, name: str, fill: str | None) -> pd.DatetimeIndex | None:
    """None when ``stamps`` (sorted, distinct) are regular; else the regular grid they lie on when they
    only have gaps and ``fill`` says how to fill them. Gaps without ``fill``, or stamps on no regular
    grid, are an error: windows would silently run across the gaps.

    The inferred frequency is the coarsest of the candidates (the most common and the smallest step,
    business days, and weeks, months, quarters and years anchored at the first stamp) whose grid from the
    first to the last stamp holds every stamp."""
    if len(stamps) < 3 or stamps.freq is not None or _infer_freq(stamps) is not None:
        return None
    steps = stamps[1:] - stamps[:-1]
    counts = steps.value_counts()
    step = counts[counts == counts.iloc[0]].index.min()  # the most common step (the smallest of a tie)
    span = stamps[-1] - stamps[0]
    day, month = stamps[0].strftime("%a").upper(), stamps[0].strftime("%b").upper()
    candidates: list[Any] = [s for s in (step, steps.min()) if span / s <= 100 * len(stamps)]
    candidates += ["B", f"W-{day}", "MS", "ME", f"QS-{month}", f"QE-{month}", f"YS-{month}", f"YE-{month}"]
    best: tuple[Any, pd.DatetimeIndex] | None = None
    for candidate in candidates:
        try:
            freq = pd.tseries.frequencies.to_offset(candidate)
        except ValueError:  # an alias an older pandas spells differently ("ME", "YS")
            continue
        grid = pd.date_range(stamps[0], stamps[-1], freq=freq)
        if len(grid) and grid[0] == stamps[0] and stamps.isin(grid).all():
            if best is None or len(grid) < len(best[1]):
                best = (freq, grid)
    if best is None:
        first = int(np.flatnonzero(np.asarray(steps != step))[0])  # the first step that differs
        raise ValueError(
            f"series {name!r} has irregular time stamps: {stamps[first]} is followed by "
            f"{stamps[first + 1]} ({steps[first]} later) where most steps are {step}; expected a "
            "regular frequency"
        )
    freq, grid = best
    if fill is None:
        missing = grid.difference(stamps)
        before = stamps[stamps < missing[0]][-1]
        raise ValueError(
            f"series {name!r} has {len(missing)} missing time stamp(s) at its inferred frequency "
            f"{freq.freqstr!r}: the first gap is at {missing[0]} (after {before}); expected regular "
            f"time stamps, or pass fill= one of {FILLS} to fill the missing steps"
        )
    return grid


def frame_to_table(df: pd.DataFrame, fill: str | None = None, min_length: int = 1) -> SeriesTable:
    """Read a wide or long DataFrame into float arrays, with clear errors for what cannot be used."""
    check_fill(fill)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if df.empty:
        raise ValueError("the DataFrame is empty; expected at least one series with values")
    if set(LONG_COLUMNS) <= set(df.columns):
        layout = "long"
        if not pd.api.types.is_numeric_dtype(df["y"]):
            text = df["y"][pd.to_numeric(df["y"], errors="coerce").isna() & df["y"].notna()]
            shown = (
                f" (first non-number {text.iloc[0]!r} at row label {text.index[0]!r})" if len(text) else ""
            )
            raise ValueError(f"column 'y' must be numeric, got dtype {df['y'].dtype}{shown}")
        _first_missing(df["unique_id"], "column 'unique_id'", "every row of long format to name its series")
        _first_missing(df["ds"], "column 'ds'", "a time stamp on every row of long format")
        _check_names(list(pd.unique(df["unique_id"])), "unique_id")
        duplicated = df.duplicated(["unique_id", "ds"])
        if duplicated.any():
            first = df.loc[duplicated, ["unique_id", "ds"]].iloc[0].tolist()
            raise ValueError(f"{int(duplicated.sum())} duplicate (unique_id, ds) rows, first {first}; "
                             "expected one value per series and time stamp")
        dated = pd.api.types.is_datetime64_any_dtype(df["ds"])
        series = []
        for k, g in df.groupby("unique_id", sort=True):
            s = g.sort_values("ds").set_index("ds")["y"]
            grid = _grid(pd.DatetimeIndex(s.index), str(k), fill) if dated else None
            series.append((k, s if grid is None else s.reindex(grid)))
        labels = [k for k, _ in series]
        names = [str(k) for k in labels]
        arrays = [_fill(s, str(k), fill) for k, s in series]
        stamps = [s.index[-1] for _, s in series]
        freqs = [_freq(pd.DatetimeIndex(s.index)) if dated else None for _, s in series]
    else:
        if "y" in df.columns or "ds" in df.columns or "unique_id" in df.columns:
            missing = [c for c in LONG_COLUMNS if c not in df.columns]
            raise ValueError(f"long format needs columns {list(LONG_COLUMNS)}; missing {missing}")
        layout = "wide"
        non_numeric = {str(c): str(t) for c, t in df.dtypes.items() if not pd.api.types.is_numeric_dtype(t)}
        if non_numeric:
            raise ValueError(
                f"wide format needs numeric columns only; non-numeric: {non_numeric} "
                "(put dates in the index, or use long format unique_id/ds/y)"
            )
        labels = list(df.columns)
        _check_names(labels, "column")
        if isinstance(df.index, pd.DatetimeIndex):
            _first_missing(df.index, "the DatetimeIndex", "a time stamp on every row")
            if not df.index.is_monotonic_increasing:
                raise ValueError("the DatetimeIndex is not sorted in time; sort the DataFrame first")
            if df.index.has_duplicates:
                repeated = df.index[df.index.duplicated()][0]
                raise ValueError(
                    f"the DatetimeIndex repeats time stamp {repeated}; expected one row per time stamp"
                )
            grid = _grid(df.index, "the DatetimeIndex" if len(labels) > 1 else str(labels[0]), fill)
            if grid is not None:
                df = df.reindex(grid.rename(df.index.name))  # a new frame: the caller's is untouched
        names = [str(c) for c in labels]
        arrays = [_fill(df[c], str(c), fill) for c in labels]
        stamps = [df.index[-1]] * len(names)
        freqs = [_freq(df.index)] * len(names)
    for name, arr in zip(names, arrays, strict=True):
        if len(arr) < min_length:
            raise ValueError(f"series {name!r} has {len(arr)} values; expected at least {min_length}")
    return SeriesTable(names, [a.astype(np.float32) for a in arrays], stamps, freqs, layout, labels)


class WindowDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Sliding windows over one or more series: items ``x (lookback, 1)``, ``y (horizon, 1)``.

    Each channel of each segment is windowed on its own (channel independence, as Time-LLM's loaders
    index them). ``max_windows`` keeps that many evenly spaced windows (for a cheaper validation).

    Args:
        segments: arrays ``(T,)`` or ``(T, N)``.
    """

    def __init__(
        self, segments: list[np.ndarray], lookback: int, horizon: int, max_windows: int | None = None
    ) -> None:
        self.lookback = lookback
        self.horizon = horizon
        self.series: list[torch.Tensor] = []
        counts = []
        for seg in segments:
            arr = np.array(seg, dtype=np.float32, copy=True)  # never a view of the caller's data
            arr = arr[:, None] if arr.ndim == 1 else arr
            for ch in range(arr.shape[1]):
                n = arr.shape[0] - lookback - horizon + 1
                if n <= 0:
                    raise ValueError(
                        f"a series of length {arr.shape[0]} is shorter than lookback + horizon "
                        f"= {lookback} + {horizon} = {lookback + horizon}"
                    )
                self.series.append(torch.from_numpy(np.ascontiguousarray(arr[:, ch])))
                counts.append(n)
        if not counts:
            raise ValueError("no series given")
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        total = int(self.offsets[-1])
        if max_windows is not None and max_windows < total:
            self.index = np.unique(np.linspace(0, total - 1, max_windows).round().astype(np.int64))
        else:
            self.index = np.arange(total)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        flat = int(self.index[i])
        s = int(np.searchsorted(self.offsets, flat, side="right") - 1)
        start = flat - int(self.offsets[s])
        series = self.series[s]
        x = series[start : start + self.lookback]
        y = series[start + self.lookback : start + self.lookback + self.horizon]
        return x.unsqueeze(-1).clone(), y.unsqueeze(-1).clone()


def few_shot_rows(length: int, lookback: int, fraction: float) -> int:
    """Rows kept for training on ``fraction`` of the windows (Time-LLM: the first part of the span)."""
    if fraction >= 1.0:
        return length
    # Time-LLM: (T - L) * percent // 100 + L; the epsilon keeps 0.29 * 100 from flooring to 28
    return math.floor((length - lookback) * fraction + 1e-9) + lookback


def series_matrix(X: Any, length: int | None = None, missing: str = "error") -> np.ndarray:
    """Series as a float32 matrix ``(N, L)``: from an array ``(N, L)``, a DataFrame (a row per series),
    or a list of 1-D arrays. Unequal lengths are an error unless ``length`` is given, in which case every
    series is linearly resampled to ``length``. NaN values are an error unless ``missing="interpolate"``."""
    if missing not in ("error", "interpolate"):
        raise ValueError(f"missing must be 'error' or 'interpolate', got {missing!r}")
    if hasattr(X, "to_numpy") and getattr(X, "ndim", 1) == 2:
        X = X.to_numpy()
    if (isinstance(X, np.ndarray) and np.iscomplexobj(X)) or (
        isinstance(X, (list, tuple)) and any(np.iscomplexobj(np.asarray(r)) for r in X if np.ndim(r) <= 1)
    ):
        raise ValueError(
            f"Complex data not supported: X holds complex values ({getattr(X, 'dtype', 'complex')}); "
            "expected real-valued series (take the real part, the magnitude or the phase first)"
        )
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim == 3 and X.shape[1] == 1:
            X = X[:, 0, :]
        if X.ndim != 2:
            raise ValueError(f"X must be (n_series, length) for univariate series, got shape {X.shape}")
        rows = list(np.asarray(X, dtype=np.float64))
    else:
        try:
            rows = [np.asarray(r, dtype=np.float64).reshape(-1) for r in X]
        except (TypeError, ValueError) as err:
            raise TypeError(f"X must be an array (n_series, length) or a list of 1-D series: {err}") from err
    if not rows:
        raise ValueError("X is empty: expected at least one series")
    lengths = sorted({len(r) for r in rows})
    if lengths[0] == 0:
        raise ValueError(f"series {next(i for i, r in enumerate(rows) if len(r) == 0)} is empty")
    out = []
    for i, r in enumerate(rows):
        bad = ~np.isfinite(r)
        if bad.any():
            if missing == "error" or bad.all():
                raise ValueError(
                    f"series {i} has {int(bad.sum())} NaN/inf values (first at position "
                    f"{int(np.argmax(bad))}); impute them or pass missing='interpolate'"
                )
            pos = np.arange(len(r))
            r = r.copy()
            r[bad] = np.interp(pos[bad], pos[~bad], r[~bad])
        if length is not None and len(r) != length:
            r = np.interp(np.linspace(0, len(r) - 1, length), np.arange(len(r)), r)
        out.append(r)
    if length is None and len(lengths) > 1:
        raise ValueError(
            f"series have unequal lengths {lengths[:5]}{'...' if len(lengths) > 5 else ''}; "
            "pass length=<int> to resample every series to one length"
        )
    return np.stack(out).astype(np.float32)


__all__ = [
    "FILLS",
    "LONG_COLUMNS",
    "SeriesTable",
    "WindowDataset",
    "check_fill",
    "few_shot_rows",
    "frame_to_table",
    "series_matrix",
]

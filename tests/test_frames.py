"""User DataFrames in (wide or long), windows out; clear errors; the user's data is never modified."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch

import xdomain
from helpers import HORIZON, LOOKBACK, hourly_frame
from xdomain.datasets import WindowDataset, few_shot_rows, frame_to_table


# -- frame_to_table ---------------------------------------------------------------------------------
def test_wide_frame() -> None:
    df = hourly_frame(10, columns=("x", "y2"))
    table = frame_to_table(df)
    assert table.layout == "wide" and table.names == ["x", "y2"]
    for name, arr in zip(table.names, table.arrays, strict=True):
        assert arr.dtype == np.float32
        np.testing.assert_array_equal(arr, df[name].to_numpy(dtype=np.float32))
    assert table.last_stamp == [df.index[-1]] * 2
    assert table.freqs[0] == pd.tseries.frequencies.to_offset("h")


def test_wide_frame_with_a_plain_index_has_no_frequency() -> None:
    table = frame_to_table(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1, 2, 3]}))
    assert table.freqs[0] is None and table.last_stamp == [2, 2]
    assert table.arrays[1].tolist() == [1.0, 2.0, 3.0]  # integer columns are numbers too


def test_long_frame_sorted_by_id_and_time() -> None:
    ds = pd.date_range("2024-01-01", periods=4, freq="D")
    df = pd.DataFrame(
        {
            "unique_id": ["s2", "s1", "s2", "s1", "s1", "s2", "s1"],
            "ds": [ds[1], ds[3], ds[0], ds[0], ds[1], ds[2], ds[2]],
            "y": [21.0, 14.0, 20.0, 11.0, 12.0, 22.0, 13.0],
        }
    )
    table = frame_to_table(df)
    assert table.layout == "long" and table.names == ["s1", "s2"]
    assert [a.tolist() for a in table.arrays] == [[11.0, 12.0, 13.0, 14.0], [20.0, 21.0, 22.0]]
    assert table.last_stamp == [ds[3], ds[2]]
    assert table.freqs[0] == pd.tseries.frequencies.to_offset("D")


def test_non_numeric_column_is_named() -> None:
    df = pd.DataFrame({"load": [1.0, 2.0], "site": ["a", "b"]})
    with pytest.raises(ValueError, match=r"non-numeric: \{'site': '(object|str)'\}"):
        frame_to_table(df)


def test_dates_in_a_column_are_refused_with_a_hint() -> None:
    df = pd.DataFrame({"when": pd.date_range("2024", periods=2), "v": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"'when'.*put dates in the index"):
        frame_to_table(df)


@pytest.mark.parametrize(
    "columns,missing",
    [(["unique_id", "y"], "['ds']"), (["ds", "y"], "['unique_id']"), (["unique_id", "ds"], "['y']")],
)
def test_missing_long_column(columns: list[str], missing: str) -> None:
    df = pd.DataFrame({c: [1, 2] for c in columns})
    with pytest.raises(
        ValueError, match=re.escape(f"long format needs columns ['unique_id', 'ds', 'y']; missing {missing}")
    ):
        frame_to_table(df)


def test_long_non_numeric_y() -> None:
    df = pd.DataFrame({"unique_id": ["a", "a"], "ds": [1, 2], "y": ["1", "2"]})
    with pytest.raises(ValueError, match=r"column 'y' must be numeric, got dtype (object|str)"):
        frame_to_table(df)


def test_nan_error_names_the_series_count_and_first_row() -> None:
    df = pd.DataFrame({"ok": [1.0, 2.0, 3.0, 4.0], "gappy": [1.0, np.nan, 3.0, np.inf]})
    with pytest.raises(
        ValueError, match=re.escape("series 'gappy' holds 2 NaN or infinite values (first at row 1: ")
    ):
        frame_to_table(df)


def test_nan_in_a_long_series_is_named() -> None:
    df = pd.DataFrame({"unique_id": ["a", "a", "b", "b"], "ds": [1, 2, 1, 2], "y": [1.0, 2.0, np.nan, 4.0]})
    with pytest.raises(ValueError, match="series 'b' holds 1 NaN"):
        frame_to_table(df)


@pytest.mark.parametrize(
    "fill,expected",
    [
        ("ffill", [2.0, 2.0, 2.0, 4.0, 4.0]),  # leading gap filled backwards from the first value
        ("interpolate", [2.0, 2.0, 3.0, 4.0, 4.0]),
        ("zero", [0.0, 2.0, 0.0, 4.0, 0.0]),
    ],
)
def test_fill_options(fill: str, expected: list[float]) -> None:
    df = pd.DataFrame({"a": [np.nan, 2.0, np.nan, 4.0, np.inf]})
    assert frame_to_table(df, fill=fill).arrays[0].tolist() == expected


def test_bad_fill_and_nothing_to_fill_from() -> None:
    df = pd.DataFrame({"a": [np.nan, 2.0]})
    with pytest.raises(
        ValueError,
        match=re.escape("fill must be one of ('ffill', 'interpolate', 'zero') or None, got 'mean'"),
    ):
        frame_to_table(df, fill="mean")
    with pytest.raises(ValueError, match="series 'a' has no finite value to fill from"):
        frame_to_table(pd.DataFrame({"a": [np.nan, np.nan]}), fill="ffill")


def test_other_input_errors() -> None:
    with pytest.raises(TypeError, match="expected a pandas DataFrame, got ndarray"):
        frame_to_table(np.zeros((3, 2)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the DataFrame is empty"):
        frame_to_table(pd.DataFrame())
    with pytest.raises(ValueError, match="DatetimeIndex is not sorted in time"):
        frame_to_table(hourly_frame(5).iloc[::-1])
    with pytest.raises(ValueError, match=re.escape("series 'a' has 5 values; expected at least 6")):
        frame_to_table(hourly_frame(5), min_length=6)


def test_filling_never_touches_the_callers_frame() -> None:
    df = pd.DataFrame({"a": [np.nan, 2.0, np.nan, 4.0]})
    before = df.copy()
    frame_to_table(df, fill="zero")
    pd.testing.assert_frame_equal(df, before)


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_fit_and_predict_leave_the_input_frames_unchanged(layout: str) -> None:
    wide = hourly_frame(90)
    wide.iloc[5, 0] = np.nan  # makes the fill path run too
    frame = (
        wide
        if layout == "wide"
        else (
            wide.reset_index()
            .melt(id_vars="date", var_name="unique_id", value_name="y")
            .rename(columns={"date": "ds"})
            .sample(frac=1.0, random_state=0)
        )
    )  # shuffled rows: sorting must happen on a copy
    train, history = frame.copy(), frame.copy()
    fc = xdomain.TimeSeriesForecaster(
        lookback=LOOKBACK,
        horizon=HORIZON,
        model="dlinear",
        fill="ffill",
        max_steps=2,
        progress=False,
        moving_avg=5,
    )
    fc.fit(train, val_df=train).predict(history)
    pd.testing.assert_frame_equal(train, frame)
    pd.testing.assert_frame_equal(history, frame)


# -- windows ----------------------------------------------------------------------------------------
def test_window_items_against_hand_slicing() -> None:
    one = np.arange(10, dtype=np.float32)  # (T,)
    two = np.stack([np.arange(100, 109), np.arange(200, 209)], axis=1).astype(np.float32)  # (T, 2)
    ds = WindowDataset([one, two], lookback=4, horizon=2)
    # windows per channel: 10 - 6 + 1 = 5, then 9 - 6 + 1 = 4 for each of the two channels
    assert len(ds) == 5 + 4 + 4
    expected = []
    for series in (one, two[:, 0], two[:, 1]):
        for start in range(len(series) - 6 + 1):
            expected.append((series[start : start + 4], series[start + 4 : start + 6]))
    for i, (x, y) in enumerate(expected):
        got_x, got_y = ds[i]
        assert got_x.shape == (4, 1) and got_y.shape == (2, 1)
        np.testing.assert_array_equal(got_x[:, 0].numpy(), x)
        np.testing.assert_array_equal(got_y[:, 0].numpy(), y)


def test_max_windows_keeps_evenly_spaced_windows() -> None:
    series = np.arange(40, dtype=np.float32)
    full = WindowDataset([series], lookback=4, horizon=2)  # 35 windows: window i starts at value i
    thin = WindowDataset([series], lookback=4, horizon=2, max_windows=5)
    assert len(full) == 35 and len(thin) == 5
    starts = [int(thin[i][0][0, 0]) for i in range(5)]
    assert starts == [0, 8, 17, 26, 34]  # round(linspace(0, 34, 5)) = round([0, 8.5, 17, 25.5, 34])
    assert len(WindowDataset([series], lookback=4, horizon=2, max_windows=100)) == 35


def test_window_dataset_errors_name_the_numbers() -> None:
    with pytest.raises(
        ValueError, match=re.escape("a series of length 20 is shorter than lookback + horizon = 16 + 8 = 24")
    ):
        WindowDataset([np.zeros(20)], lookback=16, horizon=8)
    with pytest.raises(ValueError, match="no series given"):
        WindowDataset([], lookback=4, horizon=2)


def test_windows_are_copies_of_the_callers_array() -> None:
    arr = np.arange(12, dtype=np.float32)
    ds = WindowDataset([arr], lookback=4, horizon=2)
    ds[0][0][0, 0] = 99.0
    assert arr[0] == 0.0 and isinstance(ds[0][0], torch.Tensor)


# -- few-shot rows ----------------------------------------------------------------------------------
def _time_llm_rows(length: int, lookback: int, percent: int) -> int:
    """Time-LLM's data_loader.py: border2 = (border2 - seq_len) * percent // 100 + seq_len."""
    return (length - lookback) * percent // 100 + lookback


@pytest.mark.parametrize(
    "length,lookback,percent",
    [
        (8640, 512, 10),
        (8640, 512, 5),
        (8640, 96, 10),
        (34560, 512, 10),
        (1000, 100, 50),
        (8640, 512, 100),
        (105, 5, 25),
        (8640, 336, 10),
    ],
)
def test_few_shot_rows_match_time_llm(length: int, lookback: int, percent: int) -> None:
    assert few_shot_rows(length, lookback, percent / 100) == _time_llm_rows(length, lookback, percent)


def test_few_shot_rows_by_hand() -> None:
    assert few_shot_rows(8640, 512, 0.1) == 812 + 512
    assert few_shot_rows(8640, 512, 1.0) == 8640


@pytest.mark.parametrize("percent", [29, 57, 58])
def test_few_shot_rows_do_not_lose_a_row_to_float_rounding(percent: int) -> None:
    assert few_shot_rows(105, 5, percent / 100) == _time_llm_rows(105, 5, percent)

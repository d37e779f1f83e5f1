"""The user-facing forecaster: pandas in, pandas out, clear errors, settings validated up front."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

import xdomain
from helpers import FAST_TRAIN, HORIZON, LOOKBACK, SMALL_MODEL, hourly_frame

DLINEAR = {"model": "dlinear", "moving_avg": 5, "max_steps": 3, "progress": False}


@pytest.fixture
def reprogrammed(tiny_bert: xdomain.LanguageBackbone) -> xdomain.TimeSeriesForecaster:
    return xdomain.TimeSeriesForecaster(
        backbone=tiny_bert, lookback=LOOKBACK, horizon=HORIZON, **SMALL_MODEL, **FAST_TRAIN
    )


def test_wide_in_wide_out_with_future_timestamps(reprogrammed: xdomain.TimeSeriesForecaster) -> None:
    frame = hourly_frame(100, columns=("load", "temp"))
    assert reprogrammed.fit(frame.iloc[:80], frame.iloc[80:]) is reprogrammed
    assert reprogrammed.history_ is not None and reprogrammed.history_.steps == 3
    # the kept weights are those of the best validation check (one check here, at step 3: measured 1.98)
    history = reprogrammed.history_
    assert history.best_val_loss == min(r["val_loss"] for r in history.records)
    assert history.best_step in [r["step"] for r in history.records]
    pred = reprogrammed.predict(frame)
    assert pred.shape == (HORIZON, 2)
    assert list(pred.columns) == ["load", "temp"]
    expected_index = pd.date_range(frame.index[-1] + pd.Timedelta(hours=1), periods=HORIZON, freq="h")
    pd.testing.assert_index_equal(pred.index, expected_index, check_names=False)
    assert pred.index.name == "date"
    assert np.isfinite(pred.to_numpy()).all()
    # forecasts come back in each series' own units (the columns sit near 10 and 13)
    assert abs(pred["load"].mean() - frame["load"].mean()) < 3
    assert abs(pred["temp"].mean() - frame["temp"].mean()) < 6


def test_long_in_long_out(reprogrammed: xdomain.TimeSeriesForecaster) -> None:
    wide = hourly_frame(100)
    long = (
        wide.reset_index()
        .melt(id_vars="date", var_name="unique_id", value_name="y")
        .rename(columns={"date": "ds"})
    )
    long = long[~((long["unique_id"] == "b") & (long["ds"] < wide.index[10]))]  # series of different lengths
    pred = reprogrammed.fit(long).predict(long)
    assert list(pred.columns) == ["unique_id", "ds", "y"]
    assert len(pred) == 2 * HORIZON
    assert pred.groupby("unique_id").size().to_dict() == {"a": HORIZON, "b": HORIZON}
    for _, group in pred.groupby("unique_id"):
        expected = pd.date_range(wide.index[-1] + pd.Timedelta(hours=1), periods=HORIZON, freq="h")
        assert list(group["ds"]) == list(expected)
    assert np.isfinite(pred["y"]).all()


def test_plain_integer_index_continues(tiny_bert: Any) -> None:
    frame = hourly_frame(60).reset_index(drop=True)
    pred = (
        xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, **DLINEAR).fit(frame).predict(frame)
    )
    pd.testing.assert_index_equal(pred.index, pd.RangeIndex(60, 60 + HORIZON))


def test_long_frame_with_integer_time_steps() -> None:
    long = pd.DataFrame({"unique_id": "s", "ds": np.arange(5, 85), "y": hourly_frame(80)["a"].to_numpy()})
    pred = xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, **DLINEAR).fit(long).predict(long)
    assert pred["ds"].tolist() == list(range(85, 85 + HORIZON))
    assert (pred["unique_id"] == "s").all()


def test_units_are_restored_for_a_large_offset() -> None:
    frame = hourly_frame(120) + 1000.0
    pred = (
        xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, **DLINEAR).fit(frame).predict(frame)
    )
    assert ((pred > 990) & (pred < 1020)).all().all()


@pytest.mark.parametrize(
    "lookback,horizon,name,value",
    [(0, 8, "lookback", 0), (-3, 8, "lookback", -3), (32, 0, "horizon", 0), (32, -1, "horizon", -1)],
)
def test_bad_lengths_fail_at_fit_before_the_data_is_read(
    lookback: int, horizon: int, name: str, value: int
) -> None:
    fc = xdomain.TimeSeriesForecaster(lookback=lookback, horizon=horizon, **DLINEAR)  # stored as given
    assert (fc.lookback, fc.horizon) == (lookback, horizon)
    with pytest.raises(ValueError, match=re.escape(f"{name} must be a positive integer, got {value}")):
        fc.fit("not even a frame")  # the settings are checked first: the bad data is never reached


def test_unknown_option_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        xdomain.TimeSeriesForecaster(lookback=32, horizon=8, epoch=3, learning_rate=0.1)


def test_bad_option_values_fail_at_fit() -> None:
    with pytest.raises(ValueError, match=re.escape("model must be one of")):
        xdomain.TimeSeriesForecaster(model="arima").fit(hourly_frame(80))
    with pytest.raises(ValueError, match=re.escape("train_fraction must be in (0, 1], got 0")):
        xdomain.TimeSeriesForecaster(train_fraction=0).fit(hourly_frame(80))
    # the properties are the validated settings, so reading them names the bad value too
    with pytest.raises(ValueError, match=re.escape("train_fraction must be in (0, 1], got 0")):
        _ = xdomain.TimeSeriesForecaster(train_fraction=0).train_config


def test_construction_loads_nothing() -> None:
    fc = xdomain.TimeSeriesForecaster(backbone="no-such-model-xyz", lookback=32, horizon=8)
    assert not hasattr(fc, "model_") and fc.config.backbone == "no-such-model-xyz"


def test_scikit_learn_conventions_get_params_clone_set_params() -> None:
    from sklearn.base import clone

    fc = xdomain.TimeSeriesForecaster(lookback=48, horizon=24, epochs=2, lr=0.01, **DLINEAR)
    params = fc.get_params()
    # every ForecastConfig and TrainConfig field is a parameter, with the value given
    from dataclasses import fields

    expected = {f.name for c in (xdomain.ForecastConfig, xdomain.TrainConfig) for f in fields(c)} | {"fill"}
    assert set(params) == expected
    assert (params["lookback"], params["epochs"], params["lr"], params["moving_avg"]) == (48, 2, 0.01, 5)
    twin = clone(fc)
    assert twin is not fc and twin.get_params() == params
    twin.set_params(horizon=12, max_steps=2)
    assert (twin.config.horizon, twin.train_config.max_steps) == (12, 2)
    assert fc.config.horizon == 24  # the original is untouched


def test_grid_search_over_a_forecaster_setting() -> None:
    """GridSearchCV clones the forecaster, sets each candidate and keeps the one with the best score."""
    from sklearn.model_selection import GridSearchCV

    def neg_mse(est: Any, X: pd.DataFrame, y: Any = None) -> float:  # the last 24 rows from those before
        pred = est.predict(X.iloc[:-24])
        return -float(((pred.to_numpy() - X.iloc[-24:].to_numpy()) ** 2).mean())

    frame = hourly_frame(200)
    split = [(np.arange(0, 120), np.arange(120, 200))]  # train on the first 120 rows, score on the rest
    grid = GridSearchCV(
        xdomain.TimeSeriesForecaster(lookback=48, horizon=24, **DLINEAR),
        {"lr": [1e-5, 5e-2]}, cv=split, scoring=neg_mse,
    ).fit(frame)
    scores = dict(zip([p["lr"] for p in grid.cv_results_["params"]], grid.cv_results_["mean_test_score"],
                      strict=True))
    assert set(scores) == {1e-5, 5e-2} and scores[1e-5] != scores[5e-2]
    assert grid.best_params_["lr"] == max(scores, key=scores.__getitem__)
    assert grid.best_estimator_.lr == grid.best_params_["lr"] and hasattr(grid.best_estimator_, "model_")


def test_predict_or_save_before_fit(tmp_path: Path) -> None:
    fc = xdomain.TimeSeriesForecaster(lookback=32, horizon=8)
    with pytest.raises(NotFittedError, match=re.escape("not fitted yet; call fit() or load() first")):
        fc.predict(hourly_frame(40))
    with pytest.raises(NotFittedError, match="not fitted yet"):
        fc.save(tmp_path / "x")
    with pytest.raises(NotFittedError, match="not fitted yet"):
        fc.predict_array(np.zeros((1, 32, 1)))


def test_too_short_series_names_the_numbers() -> None:
    fc = xdomain.TimeSeriesForecaster(lookback=48, horizon=24, **DLINEAR)
    with pytest.raises(ValueError, match=re.escape("series 'a' has 50 values; expected at least 72")):
        fc.fit(hourly_frame(50))
    fitted = xdomain.TimeSeriesForecaster(lookback=48, horizon=24, **DLINEAR).fit(hourly_frame(100))
    with pytest.raises(ValueError, match=re.escape("series 'a' has 40 values; expected at least 48")):
        fitted.predict(hourly_frame(40))


def test_few_shot_training_too_short_for_one_window() -> None:
    fc = xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, train_fraction=0.05, **DLINEAR)
    with pytest.raises(
        ValueError, match=re.escape("a series of length 35 is shorter than lookback + horizon = 32 + 8 = 40")
    ):
        fc.fit(hourly_frame(100))


def test_validation_series_must_be_known() -> None:
    fc = xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, **DLINEAR)
    with pytest.raises(ValueError, match=re.escape("val_df has series ['z'] that train_df lacks")):
        fc.fit(hourly_frame(80), hourly_frame(20, columns=("a", "z")))


def test_predict_array_checks_the_window_shape() -> None:
    fc = xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, **DLINEAR).fit(hourly_frame(80))
    assert fc.predict_array(np.zeros((3, LOOKBACK, 2))).shape == (3, HORIZON, 2)
    with pytest.raises(ValueError, match=re.escape("windows must be (B, 32, N), got (3, 30, 2)")):
        fc.predict_array(np.zeros((3, 30, 2)))


def test_fit_is_reproducible() -> None:
    frame = hourly_frame(80)
    a = xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, **DLINEAR).fit(frame).predict(frame)
    b = xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, **DLINEAR).fit(frame).predict(frame)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_nan_handling_through_the_forecaster() -> None:
    frame = hourly_frame(80)
    frame.iloc[3, 1] = np.nan
    with pytest.raises(ValueError, match="series 'b' holds 1 NaN"):
        xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, **DLINEAR).fit(frame)
    fc = xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, fill="interpolate", **DLINEAR)
    assert np.isfinite(fc.fit(frame).predict(frame).to_numpy()).all()


def test_saved_settings_and_scaler_survive_a_reload(tmp_path: Path) -> None:
    frame = hourly_frame(80)
    fc = xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, fill="zero", lr=0.01, **DLINEAR)
    fc.fit(frame).save(tmp_path / "m")
    loaded = xdomain.load(tmp_path / "m")  # dlinear needs no backbone
    assert loaded.fill == "zero" and loaded.train_config.lr == 0.01
    assert loaded.scaler_ == fc.scaler_
    pd.testing.assert_frame_equal(loaded.predict(frame), fc.predict(frame), check_exact=True)


def test_bad_fill_fails_at_fit() -> None:
    with pytest.raises(
        ValueError, match=re.escape("fill must be one of ('ffill', 'interpolate', 'zero') or None")
    ):
        xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, fill="fffill").fit(hourly_frame(80))


def test_integer_column_labels_are_kept() -> None:
    frame = pd.DataFrame(hourly_frame(80).to_numpy(), index=hourly_frame(80).index)  # columns 0, 1
    pred = (
        xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, **DLINEAR).fit(frame).predict(frame)
    )
    assert list(pred.columns) == [0, 1]


def test_integer_unique_ids_are_kept() -> None:
    wide = hourly_frame(80)
    long = (
        wide.reset_index()
        .melt(id_vars="date", var_name="unique_id", value_name="y")
        .rename(columns={"date": "ds"})
    )
    long["unique_id"] = long["unique_id"].map({"a": 1, "b": 2})
    pred = xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, **DLINEAR).fit(long).predict(long)
    assert pred["unique_id"].dtype == long["unique_id"].dtype
    assert sorted(pred["unique_id"].unique()) == [1, 2]


def test_checkpoint_config_is_strict_json(tmp_path: Path) -> None:
    xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, **DLINEAR).fit(hourly_frame(80)).save(
        tmp_path / "m"
    )

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON constant {token}")

    json.loads((tmp_path / "m" / "xdomain.json").read_text(), parse_constant=refuse)  # the manifest

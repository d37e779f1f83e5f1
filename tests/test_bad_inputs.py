"""Bad input, as a matrix: every public entry point, one case a row.

Each case asserts three things:

- the type of the error (for the command line: exit status 2, with the message on stderr);
- that its message names the offending value (or column, key, position) and says what was expected;
- that nothing the caller passed was changed: every input is copied before the call (DataFrames, arrays,
  lists, dicts, the weights of a backbone, the files of a checkpoint folder) and compared after it.

Everything is tiny (a filter-bank waveform backbone, a 2-layer random BERT, DLinear forecasters): the errors
fire before any training, or after a few steps on toy data.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError
from torch import nn

import xdomain
from helpers import (
    ETTH1,
    FAST_TRAIN,
    HORIZON,
    LOOKBACK,
    SMALL_MODEL,
    TinyWaveformBackbone,
    charged_peptides,
    hourly_frame,
    make_tiny_bert,
    make_tiny_masked_lm,
    require_data,
    sines_and_squares,
    state_snapshot,
    toy_antibodies,
)
from xdomain import (
    AntibodyInfiller,
    AudioClassifier,
    CheckpointError,
    ProteinClassifier,
    ProteinRegressor,
    TimeSeriesClassifier,
    TimeSeriesForecaster,
    TrainConfig,
)
from xdomain.cli import main

FAST: dict[str, Any] = {"epochs": 1, "batch_size": 8, "validation_fraction": 0.0}
DLINEAR: dict[str, Any] = {
    "lookback": LOOKBACK,
    "horizon": HORIZON,
    "model": "dlinear",
    "moving_avg": 5,
    "max_steps": 2,
    "progress": False,
}
NO_MODEL = "no-such-model-xyz"  # no alias, no local folder, not in the (offline) hub cache


# -- inputs: copied before, compared after ------------------------------------------------------------------
@dataclass
class _Module:
    module: nn.Module
    state: dict[str, torch.Tensor]


@dataclass
class _Files:
    path: Path
    files: dict[str, bytes] | None  # None: the path did not exist


def _files(path: Path) -> dict[str, bytes] | None:
    if path.is_file():
        return {"": path.read_bytes()}
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    return None


def snapshot(value: Any) -> Any:
    """A deep copy of ``value`` to compare with after the call (modules by their tensors, folders by
    their files)."""
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return value.copy(deep=True)
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, nn.Module):
        return _Module(value, state_snapshot(value))
    if isinstance(value, Path):
        return _Files(value, _files(value))
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(v) for v in value)
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    return value  # str, numbers, None: immutable


def assert_unchanged(before: Any, after: Any) -> None:
    if isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(after, before)
    elif isinstance(before, pd.Series):
        pd.testing.assert_series_equal(after, before)
    elif isinstance(before, np.ndarray):
        assert isinstance(after, np.ndarray) and after.dtype == before.dtype
        np.testing.assert_array_equal(after, before)
    elif isinstance(before, torch.Tensor):
        assert torch.equal(after, before)
    elif isinstance(before, _Module):
        assert after is before.module
        now = after.state_dict()
        assert now.keys() == before.state.keys()
        assert all(torch.equal(now[k], v) for k, v in before.state.items()), "the module's tensors changed"
    elif isinstance(before, _Files):
        assert after == before.path and _files(after) == before.files, f"{after} changed"
    elif isinstance(before, (list, tuple)):
        assert type(after) is type(before) and len(after) == len(before)
        for b, a in zip(before, after, strict=True):
            assert_unchanged(b, a)
    elif isinstance(before, dict):
        assert after.keys() == before.keys()
        for k in before:
            assert_unchanged(before[k], after[k])
    elif isinstance(before, float) and np.isnan(before):
        assert isinstance(after, float) and np.isnan(after)
    else:
        assert after == before


# -- the command line, as a call that raises ----------------------------------------------------------------
class CliExit(Exception):
    """``main`` returned (or argparse exited with) a non-zero status; the message is what it wrote."""

    def __init__(self, status: Any, stderr: str) -> None:
        super().__init__(f"exit status {status}\n{stderr}")
        self.status = status


def cli(argv: list[str]) -> int:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            status: Any = main(argv)
        except SystemExit as exit_:
            status = exit_.code
    if status != 0:
        raise CliExit(status, err.getvalue())
    return 0


# -- the shared fixtures of the matrix: built once, on first use ---------------------------------------------
class Ctx:
    def __init__(self, tokenizer: Any, tmp: pytest.TempPathFactory) -> None:
        self.tokenizer = tokenizer
        self.tmp = tmp

    @cached_property
    def wave(self) -> TinyWaveformBackbone:
        return TinyWaveformBackbone()

    @cached_property
    def lm(self) -> Any:
        return make_tiny_masked_lm(self.tokenizer)

    @cached_property
    def bert(self) -> xdomain.LanguageBackbone:
        return make_tiny_bert(self.tokenizer)

    @cached_property
    def series(self) -> tuple[np.ndarray, np.ndarray]:
        return sines_and_squares(12, 32)

    @cached_property
    def peptides(self) -> tuple[list[str], np.ndarray]:
        return charged_peptides(4)

    @cached_property
    def antibodies(self) -> tuple[list[str], list[str]]:
        return toy_antibodies(8)

    @cached_property
    def tones(self) -> tuple[list[np.ndarray], list[str]]:
        t = np.arange(200) / 8000
        clips = [np.sin(2 * np.pi * f * t).astype(np.float32) * 0.5 for f in (300, 2000, 350, 1800)]
        return clips, ["low", "high", "low", "high"]

    @cached_property
    def forecaster(self) -> TimeSeriesForecaster:
        return TimeSeriesForecaster(**DLINEAR).fit(hourly_frame(80))

    @cached_property
    def classifier(self) -> TimeSeriesClassifier:
        X, y = self.series
        return TimeSeriesClassifier(backbone=self.wave, mapping="linear", **FAST).fit(X, y)

    @cached_property
    def infiller(self) -> AntibodyInfiller:
        chains, masks = self.antibodies
        return AntibodyInfiller(backbone=self.lm, **FAST).fit(chains, masks)

    def _saved(self, name: str, model: Any) -> Path:
        folder = self.tmp.mktemp(name) / "model"
        model.save(folder)
        return folder

    @cached_property
    def forecaster_ckpt(self) -> Path:
        return self._saved("dlinear", self.forecaster)

    @cached_property
    def reprogram_ckpt(self) -> Path:
        fc = TimeSeriesForecaster(
            backbone=self.bert,
            lookback=LOOKBACK,
            horizon=HORIZON,
            **SMALL_MODEL,
            **{**FAST_TRAIN, "max_steps": 1},
        )
        return self._saved("reprogram", fc.fit(hourly_frame(60)))

    @cached_property
    def classifier_ckpt(self) -> Path:
        return self._saved("classifier", self.classifier)


@pytest.fixture(scope="module")
def ctx(minilm_tokenizer: Any, tmp_path_factory: pytest.TempPathFactory) -> Ctx:
    return Ctx(minilm_tokenizer, tmp_path_factory)


def edited(src: Path, dst: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of checkpoint ``src`` at ``dst`` whose metadata JSON (``xdomain.json``, or the version-1
    ``config.json``) went through ``edit``."""
    shutil.copytree(src, dst)
    for name in ("xdomain.json", "config.json"):
        file = dst / name
        if file.is_file():
            doc = json.loads(file.read_text())
            edit(doc)
            file.write_text(json.dumps(doc))
            return dst
    raise AssertionError(f"no xdomain.json or config.json in {dst}: {sorted(p.name for p in dst.iterdir())}")


def toy_ucr(home: Path) -> Path:
    """A two-class UCR set ``Toy`` in the text format (label first) under ``home``."""
    folder = home / "UCR" / "Toy"
    folder.mkdir(parents=True)
    for split in ("TRAIN", "TEST"):
        lines = []
        for i in range(6):
            label = "up" if i % 2 == 0 else "down"
            values = np.linspace(0, 1, 16) * (1 if label == "up" else -1)
            lines.append(" ".join([label, *(f"{v:.4f}" for v in values)]))
        (folder / f"Toy_{split}.txt").write_text("\n".join(lines) + "\n")
    return home


# -- the matrix ----------------------------------------------------------------------------------------------
@dataclass
class Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    watch: tuple[Any, ...] = ()  # more inputs that are not arguments (a file named on a command line)
    names: tuple[str, ...] = ()  # message parts known only once the case is made (a temporary path)


@dataclass
class Case:
    id: str
    make: Callable[[Ctx, Path], Call]
    error: type[BaseException]
    names: tuple[str, ...]  # the offending value, column, key or position
    expects: tuple[str, ...]  # what was expected instead
    absent: tuple[str, ...] = ()  # must not be in the message (a command's training log)


CASES: list[Case] = []


def case(
    id: str,
    error: type[BaseException],
    names: tuple[str, ...],
    expects: tuple[str, ...],
    absent: tuple[str, ...] = (),
) -> Callable[[Callable[[Ctx, Path], Call]], Callable[[Ctx, Path], Call]]:
    def register(make: Callable[[Ctx, Path], Call]) -> Callable[[Ctx, Path], Call]:
        CASES.append(Case(id, make, error, names, expects, absent))
        return make

    return register


def _long(frame: pd.DataFrame) -> pd.DataFrame:
    return (
        frame.reset_index()
        .melt(id_vars="date", var_name="unique_id", value_name="y")
        .rename(columns={"date": "ds"})
    )


# == TimeSeriesForecaster: frames ============================================================================
@case("forecaster-duplicate-wide-columns", ValueError, ("duplicate column 'a'",), ("expected each series",))
def _(ctx: Ctx, tmp: Path) -> Call:
    frame = hourly_frame(60, columns=("a", "b")).set_axis(["a", "a"], axis=1)
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (frame,))


@case("forecaster-columns-1-and-'1'", ValueError, ("columns 1 (int) and '1' (str)",), ("expected distinct",))
def _(ctx: Ctx, tmp: Path) -> Call:
    frame = hourly_frame(60, columns=("a", "b")).set_axis([1, "1"], axis=1)
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (frame,))


@case(
    "forecaster-nan-unique_id-rows",
    ValueError,
    ("'unique_id' has 2 missing value(s)", "row label 3"),
    ("expected every row of long format to name its series",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    long = _long(hourly_frame(60))
    long.loc[[3, 7], "unique_id"] = None
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (long,))


@case(
    "forecaster-nat-in-ds",
    ValueError,
    ("'ds' has 1 missing value(s)", "row label 5"),
    ("expected a time stamp on every row",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    long = _long(hourly_frame(60))
    long.loc[5, "ds"] = pd.NaT
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (long,))


@case(
    "forecaster-nat-in-datetime-index",
    ValueError,
    ("DatetimeIndex has 1 missing value(s)", "position 4"),
    ("expected a time stamp on every row",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    frame = hourly_frame(60)
    frame.index = pd.DatetimeIndex([*frame.index[:4], pd.NaT, *frame.index[5:]], name="date")
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (frame,))


@case(
    "forecaster-gap-in-long-ds",
    ValueError,
    ("series 'b'", "frequency 'h'", "first gap is at 2024-01-01 10:00:00"),
    ("expected regular time stamps", "pass fill="),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    long = _long(hourly_frame(60))
    hole = (long["unique_id"] == "b") & long["ds"].between("2024-01-01 10:00", "2024-01-01 12:00")
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (long[~hole],))


@case(
    "forecaster-gap-in-wide-index-at-predict",
    ValueError,
    ("frequency 'h'", "first gap is at 2024-01-01 20:00:00"),
    ("expected regular time stamps", "fill="),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    frame = hourly_frame(60).drop(pd.date_range("2024-01-01 20:00", periods=3, freq="h"))
    return Call(ctx.forecaster.predict, (frame,))


@case(
    "forecaster-irregular-stamps",
    ValueError,
    ("irregular time stamps", "2024-01-01 02:10:00"),
    ("expected a regular frequency",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    frame = hourly_frame(60)
    frame.index = frame.index.where(frame.index != "2024-01-01 02:00", pd.Timestamp("2024-01-01 02:10"))
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (frame,))


@case(
    "forecaster-predict-nan-without-fill",
    ValueError,
    ("series 'a' holds 1 NaN", "row 50"),
    ("expected finite numbers", "fill="),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    frame = hourly_frame(60)
    frame.iloc[50, 0] = np.nan
    return Call(ctx.forecaster.predict, (frame,))


@case(
    "forecaster-predict_array-nan",
    ValueError,
    ("window 1, step 5, channel 0", "nan"),
    ("expected finite values",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    windows = np.zeros((2, LOOKBACK, 1), dtype=np.float32)
    windows[1, 5, 0] = np.nan
    return Call(ctx.forecaster.predict_array, (windows,))


@case(
    "forecaster-predict_array-wrong-dims",
    ValueError,
    (f"got ({LOOKBACK},)",),
    (f"windows must be (B, {LOOKBACK}, N)",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(ctx.forecaster.predict_array, (np.zeros(LOOKBACK, dtype=np.float32),))


@case(
    "forecaster-predict_array-wrong-lookback",
    ValueError,
    ("got (2, 16, 1)",),
    (f"windows must be (B, {LOOKBACK}, N)",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(ctx.forecaster.predict_array, (np.zeros((2, 16, 1), dtype=np.float32),))


@case("forecaster-strings-in-wide-column", ValueError, ("'b'",), ("needs numeric columns only",))
def _(ctx: Ctx, tmp: Path) -> Call:
    frame = hourly_frame(60).astype({"b": str})
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (frame,))


@case("forecaster-strings-in-long-y", ValueError, ("first non-number 'n/a'",), ("'y' must be numeric",))
def _(ctx: Ctx, tmp: Path) -> Call:
    long = _long(hourly_frame(60)).astype({"y": object})
    long.loc[4, "y"] = "n/a"
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (long,))


@case("forecaster-empty-frame", ValueError, ("is empty",), ("expected at least one series",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (pd.DataFrame({"a": []}, dtype=float),))


@case("forecaster-not-a-frame", TypeError, ("got ndarray",), ("expected a pandas DataFrame",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (np.zeros((60, 2)),))


@case(
    "forecaster-series-too-short",
    ValueError,
    ("series 'a' has 30 values",),
    (f"expected at least {LOOKBACK + HORIZON}",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (hourly_frame(30),))


@case(
    "forecaster-val-series-unknown",
    ValueError,
    ("val_df has series ['c']",),
    ("expected a subset of ['a', 'b']",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster(**DLINEAR).fit, (hourly_frame(60), hourly_frame(20, columns=("c",))))


@case(
    "forecaster-predict-before-fit",
    NotFittedError,
    ("TimeSeriesForecaster is not fitted",),
    ("call fit() or load() first",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster(**DLINEAR).predict, (hourly_frame(40),))


@case("forecaster-unknown-backbone", ValueError, (f"unknown backbone {NO_MODEL!r}",), ("expected an alias",))
def _(ctx: Ctx, tmp: Path) -> Call:
    fc = TimeSeriesForecaster(
        backbone=NO_MODEL, lookback=LOOKBACK, horizon=HORIZON, **SMALL_MODEL, **FAST_TRAIN
    )
    return Call(fc.fit, (hourly_frame(60),))


# == TimeSeriesForecaster and TrainConfig: settings ==========================================================
@case("forecaster-lookback-zero", ValueError, ("got 0",), ("lookback must be a positive integer",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster(**{"lookback": 0, "horizon": 8}).fit, (hourly_frame(80),))


@case("forecaster-horizon-negative", ValueError, ("got -3",), ("horizon must be a positive integer",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster(**{"lookback": 32, "horizon": -3}).fit, (hourly_frame(80),))


@case("forecaster-unknown-model", ValueError, ("got 'arima'",), ("model must be one of ('reprogram'",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster(**{"model": "arima"}).fit, (hourly_frame(80),))


@case("forecaster-unknown-option", TypeError, ("'epoch'",), ("unexpected keyword argument",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster, kwargs={"epoch": 3})


@case("forecaster-bad-fill", ValueError, ("got 'mean'",), ("fill must be one of ('ffill'",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster(**{"fill": "mean"}).fit, (hourly_frame(80),))


@case("forecaster-epochs-True", ValueError, ("got True",), ("epochs must be a positive integer",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster(**{"epochs": True}).fit, (hourly_frame(80),))


@case(
    "forecaster-weight_decay-negative",
    ValueError,
    ("got -0.1",),
    ("weight_decay must be a finite number >= 0",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster(**{"weight_decay": -0.1}).fit, (hourly_frame(80),))


@case(
    "forecaster-max_train_seconds-zero",
    ValueError,
    ("got 0",),
    ("max_train_seconds must be a positive number",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesForecaster(**{"max_train_seconds": 0}).fit, (hourly_frame(80),))


@case("trainconfig-epochs-True", ValueError, ("got True",), ("epochs must be a positive integer",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TrainConfig, kwargs={"epochs": True})


@case(
    "trainconfig-weight_decay-negative",
    ValueError,
    ("got -1.0",),
    ("weight_decay must be a finite number >= 0",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TrainConfig, kwargs={"weight_decay": -1.0})


@case(
    "trainconfig-weight_decay-nan", ValueError, ("got nan",), ("weight_decay must be a finite number >= 0",)
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TrainConfig, kwargs={"weight_decay": float("nan")})


@case(
    "trainconfig-max_train_seconds-negative",
    ValueError,
    ("got -5",),
    ("max_train_seconds must be a positive",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TrainConfig, kwargs={"max_train_seconds": -5})


@case(
    "trainconfig-max_steps-True", ValueError, ("got True",), ("max_steps must be a positive integer or None",)
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TrainConfig, kwargs={"max_steps": True})


# == TimeSeriesClassifier ====================================================================================
@case("tsc-X-wrong-dims", ValueError, ("got shape (4, 2, 8)",), ("X must be (n_series, length)",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesClassifier(backbone=ctx.wave, **FAST).fit, (np.zeros((4, 2, 8)), [0, 1, 0, 1]))


@case(
    "tsc-X-y-lengths",
    ValueError,
    ("X has 24 samples but y has 23 labels",),
    ("expected one label per sample",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    X, y = ctx.series
    return Call(TimeSeriesClassifier(backbone=ctx.wave, **FAST).fit, (X, y[:-1]))


@case("tsc-None-label", ValueError, ("position(s) [3]",), ("expected a label for every sample",))
def _(ctx: Ctx, tmp: Path) -> Call:
    X, y = ctx.series
    labels = [*y.tolist()[:3], None, *y.tolist()[4:]]
    return Call(TimeSeriesClassifier(backbone=ctx.wave, **FAST).fit, (X, labels))


@case(
    "tsc-NaN-among-string-labels", ValueError, ("position(s) [5, 7]",), ("expected a label for every sample",)
)
def _(ctx: Ctx, tmp: Path) -> Call:
    X, y = ctx.series
    labels: list[Any] = y.tolist()
    labels[5] = labels[7] = float("nan")  # np.asarray would turn it into a class "nan"
    return Call(TimeSeriesClassifier(backbone=ctx.wave, **FAST).fit, (X, labels))


@case("tsc-NaN-float-label", ValueError, ("position(s) [2]",), ("expected a label for every sample",))
def _(ctx: Ctx, tmp: Path) -> Call:
    X, _ = ctx.series
    return Call(TimeSeriesClassifier(backbone=ctx.wave, **FAST).fit, (X[:3], np.array([0.0, 1.0, np.nan])))


@case("tsc-copies-zero", ValueError, ("got 0",), ("copies must be a positive integer",))
def _(ctx: Ctx, tmp: Path) -> Call:
    X, y = ctx.series
    return Call(TimeSeriesClassifier(backbone=ctx.wave, copies=0, **FAST).fit, (X, y))


@case(
    "tsc-nan-in-series",
    ValueError,
    ("series 2 has 1 NaN/inf values (first at position 5)",),
    ("missing='interpolate'",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    X, y = ctx.series
    X = X.copy()
    X[2, 5] = np.nan
    return Call(TimeSeriesClassifier(backbone=ctx.wave, **FAST).fit, (X, y))


@case("tsc-strings-in-X", TypeError, ("'a'",), ("X must be an array (n_series, length)",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(
        TimeSeriesClassifier(backbone=ctx.wave, **FAST).fit, ([["a", "b", "c"], ["1", "2", "3"]], [0, 1])
    )


@case("tsc-unknown-mapping", ValueError, ("got 'lm'",), ("mapping must be one of",))
def _(ctx: Ctx, tmp: Path) -> Call:
    X, y = ctx.series
    return Call(TimeSeriesClassifier(backbone=ctx.wave, mapping="lm", **FAST).fit, (X, y))


@case("tsc-unknown-backbone", ValueError, (f"unknown backbone {NO_MODEL!r}",), ("not a registered alias",))
def _(ctx: Ctx, tmp: Path) -> Call:
    X, y = ctx.series
    return Call(TimeSeriesClassifier(backbone=NO_MODEL, **FAST).fit, (X, y))


@case("tsc-epochs-True", ValueError, ("got True",), ("epochs must be a positive integer",))
def _(ctx: Ctx, tmp: Path) -> Call:
    X, y = ctx.series
    return Call(TimeSeriesClassifier(backbone=ctx.wave, **{**FAST, "epochs": True}).fit, (X, y))


@case(
    "tsc-predict-before-fit",
    NotFittedError,
    ("TimeSeriesClassifier is not fitted",),
    ("call fit() or load() first",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesClassifier(backbone=ctx.wave).predict, (ctx.series[0],))


@case("tsc-predict-other-length", ValueError, ("series have length 20",), ("fitted on length 32",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(ctx.classifier.predict, (ctx.series[0][:, :20],))


@case("tsc-score-unseen-label", ValueError, ("['never-seen']",), ("the classifier knows ['sine', 'square']",))
def _(ctx: Ctx, tmp: Path) -> Call:
    X, y = ctx.series
    labels = y.astype(object)
    labels[0] = "never-seen"
    return Call(ctx.classifier.score, (X, labels))


# == AudioClassifier =========================================================================================
def _audio(ctx: Ctx, **kw: Any) -> AudioClassifier:
    return AudioClassifier(backbone=ctx.wave, **{**FAST, "sample_rate": 8000, **kw})


@case("audio-mix-left-on-arrays", ValueError, ("got 'left'",), ("mix must be one of ['error', 'mean']",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(_audio(ctx, mix="left").fit, ctx.tones)


@case("audio-None-label", ValueError, ("position(s) [1]",), ("expected a label for every sample",))
def _(ctx: Ctx, tmp: Path) -> Call:
    clips, labels = ctx.tones
    return Call(_audio(ctx).fit, (clips, [labels[0], None, *labels[2:]]))


@case(
    "audio-int16-clip", TypeError, ("clip 1 has dtype torch.int16",), ("expected float samples in [-1, 1]",)
)
def _(ctx: Ctx, tmp: Path) -> Call:
    clips, labels = ctx.tones
    return Call(_audio(ctx).fit, ([clips[0], (clips[1] * 1000).astype(np.int16)], labels[:2]))


@case("audio-2d-clip", ValueError, ("got shape (2, 200)",), ("clip 0 must be a 1-D array of samples",))
def _(ctx: Ctx, tmp: Path) -> Call:
    clips, _ = ctx.tones
    return Call(_audio(ctx).fit, ([np.stack(clips[:2])], ["a"]))


@case("audio-single-path", TypeError, ("a single path 'clip.wav'",), ("X must be a list of clips",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(_audio(ctx).fit, ("clip.wav", ["a"]))


@case("audio-arrays-without-sample-rate", ValueError, ("clips given as arrays",), ("pass sample_rate=<Hz>",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(AudioClassifier(backbone=ctx.wave, **FAST).fit, ctx.tones)


@case("audio-program-outside", ValueError, ("got 'outside'",), ("program must be 'full' or 'none'",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(_audio(ctx, program="outside").fit, ctx.tones)


@case("audio-epochs-True", ValueError, ("got True",), ("epochs must be a positive integer",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(_audio(ctx, epochs=True).fit, ctx.tones)


# == ProteinClassifier / ProteinRegressor ====================================================================
@case(
    "protein-invalid-letter",
    ValueError,
    ("sequence 1 has '1' at position 3",),
    ("expected one of ACDEFGHIKLMNPQRSTVWY",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(ProteinClassifier(backbone=ctx.lm, **FAST).fit, (["KKR", "DE1E"], [1, 0]))


@case(
    "protein-X-y-lengths",
    ValueError,
    ("X has 3 samples but y has 2 labels",),
    ("expected one label per sample",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(ProteinClassifier(backbone=ctx.lm, **FAST).fit, (["KKR", "DDE", "KRK"], [1, 0]))


@case("protein-None-label", ValueError, ("position(s) [2]",), ("expected a label for every sample",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(
        ProteinClassifier(backbone=ctx.lm, **FAST).fit, (["KKR", "DDE", "KRK", "EED"], [1, 0, None, 0])
    )


@case("protein-too-long", ValueError, ("sequence 0 has 10 residues",), ("more than max_length=8", "truncate"))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(
        ProteinClassifier(backbone=ctx.lm, max_length=8, **FAST).fit, (["KRKRKRKRKR", "DEDE"], [1, 0])
    )


@case("protein-single-string", TypeError, ("single string 'KKRKR'",), ("pass sequences as a list",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(ProteinClassifier(backbone=ctx.lm, **FAST).fit, ("KKRKR", [1]))


@case(
    "protein-unknown-head", ValueError, ("got 'mlp'",), ("head must be one of ('linear', 'label-mapping')",)
)
def _(ctx: Ctx, tmp: Path) -> Call:
    X, y = ctx.peptides
    return Call(ProteinClassifier(backbone=ctx.lm, head="mlp", **FAST).fit, (X, y))


@case(
    "protein-predict-before-fit",
    NotFittedError,
    ("ProteinClassifier is not fitted",),
    ("call fit() or load() first",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(ProteinClassifier(backbone=ctx.lm).predict, (["KKR"],))


@case("regressor-nan-target", ValueError, ("position(s) [1]", "nan"), ("expected a finite number",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(ProteinRegressor(backbone=ctx.lm, **FAST).fit, (["KRK", "DED", "KKD"], [1.0, np.nan, 2.0]))


@case("regressor-epochs-True", ValueError, ("got True",), ("epochs must be a positive integer",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(
        ProteinRegressor(backbone=ctx.lm, **{**FAST, "epochs": True}).fit, (["KRK", "DED"], [1.0, 2.0])
    )


# == AntibodyInfiller ========================================================================================
@case("infill-temperature-nan", ValueError, ("got nan",), ("expected a finite number >= 0",))
def _(ctx: Ctx, tmp: Path) -> Call:
    chains, masks = ctx.antibodies
    return Call(ctx.infiller.infill, (chains[0], masks[0]), {"n": 2, "temperature": float("nan")})


@case("infill-temperature-inf", ValueError, ("got inf",), ("expected a finite number >= 0",))
def _(ctx: Ctx, tmp: Path) -> Call:
    chains, masks = ctx.antibodies
    return Call(ctx.infiller.infill, (chains[0], masks[0]), {"n": 2, "temperature": float("inf")})


@case("infill-temperature-negative", ValueError, ("got -0.5",), ("expected a finite number >= 0",))
def _(ctx: Ctx, tmp: Path) -> Call:
    chains, masks = ctx.antibodies
    return Call(ctx.infiller.infill, (chains[0], masks[0]), {"n": 2, "temperature": -0.5})


@case("evaluate-temperature-nan", ValueError, ("got nan",), ("expected a finite number >= 0",))
def _(ctx: Ctx, tmp: Path) -> Call:
    chains, masks = ctx.antibodies
    return Call(ctx.infiller.evaluate, (chains, masks), {"n": 2, "temperature": float("nan")})


@case(
    "infill-cdr-mask-wrong-length",
    ValueError,
    ("chain 0 has 28 residues but its CDR mask has 27 codes",),
    ("expected one code per residue",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    chains, masks = ctx.antibodies
    return Call(ctx.infiller.infill, (chains[0], masks[0][:-1]), {"n": 2})


@case("infill-cdr-mask-bad-code", ValueError, ("'4' at position 1",), ("expected only the digits 0",))
def _(ctx: Ctx, tmp: Path) -> Call:
    chains, masks = ctx.antibodies
    return Call(ctx.infiller.infill, (chains[0], "4" + masks[0][1:]), {"n": 2})


@case("infill-unknown-region", ValueError, ("unknown region 'CDR-L3'",), ("expected one of ['CDR-H1'",))
def _(ctx: Ctx, tmp: Path) -> Call:
    chains, masks = ctx.antibodies
    return Call(ctx.infiller.infill, (chains[0], masks[0]), {"region": "CDR-L3", "n": 2})


@case("infill-n-zero", ValueError, ("got 0",), ("n must be a positive integer",))
def _(ctx: Ctx, tmp: Path) -> Call:
    chains, masks = ctx.antibodies
    return Call(ctx.infiller.infill, (chains[0], masks[0]), {"n": 0})


@case(
    "infiller-chains-masks-count",
    ValueError,
    ("got 2 chains but 1 CDR masks",),
    ("expected one mask a chain",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    chains, masks = ctx.antibodies
    return Call(AntibodyInfiller(backbone=ctx.lm, **FAST).fit, (chains[:2], masks[:1]))


@case(
    "infiller-invalid-letter",
    ValueError,
    ("sequence 1 has '@' at position 2",),
    ("expected one of ACDEFGHIKLMNPQRSTVWY",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    chains, masks = ctx.antibodies
    return Call(AntibodyInfiller(backbone=ctx.lm, **FAST).fit, ([chains[0], "E@" + chains[1][2:]], masks[:2]))


@case(
    "infill-before-fit", NotFittedError, ("AntibodyInfiller is not fitted",), ("call fit() or load() first",)
)
def _(ctx: Ctx, tmp: Path) -> Call:
    chains, masks = ctx.antibodies
    return Call(AntibodyInfiller(backbone=ctx.lm).infill, (chains[0], masks[0]), {"n": 2})


# == checkpoints: xdomain.load and Estimator.load ========================================================
@case("load-no-checkpoint", CheckpointError, ("no checkpoint at",), ("expected a folder holding",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(xdomain.load, (tmp / "nothing",), names=(str(tmp / "nothing"),))


@case(
    "load-forecaster-missing-key",
    CheckpointError,
    ("lacks the key(s) ['train_config']",),
    ("expected a TimeSeriesForecaster checkpoint to hold params, extra and backbone",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    # neither today's schema (params) nor all of 0.1's (forecast_config, train_config, scaler, backbone)
    def edit(d: dict[str, Any]) -> None:
        d.update(forecast_config=d["params"], scaler=d["extra"]["scaler"])
        del d["params"], d["extra"]

    return Call(xdomain.load, (edited(ctx.forecaster_ckpt, tmp / "ckpt", edit),))


@case(
    "load-forecaster-unknown-parameter",
    CheckpointError,
    ("['bogus']",),
    ("expected a subset of", "'epochs'", "'lookback'"),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(
        xdomain.load, (edited(ctx.forecaster_ckpt, tmp / "ckpt", lambda d: d["params"].update(bogus=1)),),
    )


@case(
    "load-forecaster-unusable-setting",
    CheckpointError,
    ("lookback must be a positive integer, got 0",),
    ("holds settings that cannot be used",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    edit: Callable[[dict[str, Any]], None] = lambda d: d["params"].update(lookback=0)  # noqa: E731
    return Call(TimeSeriesForecaster.load, (edited(ctx.forecaster_ckpt, tmp / "ckpt", edit),))


@case(
    "load-forecaster-removed-scaler",
    CheckpointError,
    ("no scaler statistics (scaler=None)",),
    ("expected the training [mean, std] of each series",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(
        xdomain.load, (edited(ctx.forecaster_ckpt, tmp / "ckpt", lambda d: d["extra"].pop("scaler")),)
    )


@case(
    "load-forecaster-emptied-scaler",
    CheckpointError,
    ("no scaler statistics (scaler={})",),
    ("expected the training [mean, std] of each series",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(
        xdomain.load, (edited(ctx.forecaster_ckpt, tmp / "ckpt", lambda d: d["extra"].update(scaler={})),)
    )


@case(
    "load-forecaster-removed-fingerprint",
    CheckpointError,
    ("records no backbone fingerprint",),
    ("expected the fingerprint of the backbone it was trained on",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    folder = edited(ctx.reprogram_ckpt, tmp / "ckpt", lambda d: d["backbone"].pop("fingerprint"))
    return Call(xdomain.load, (folder,), {"backbone": ctx.bert}, names=(ctx.bert.fingerprint(),))


@case(
    "load-forecaster-other-backbone", CheckpointError, ("fingerprint",), ("checkpoint was made for backbone",)
)
def _(ctx: Ctx, tmp: Path) -> Call:
    other = make_tiny_bert(ctx.tokenizer, seed=1)
    return Call(xdomain.load, (ctx.reprogram_ckpt,), {"backbone": other}, names=(other.fingerprint(),))


@case(
    "load-estimator-missing-key",
    CheckpointError,
    ("lacks the key(s) ['params']",),
    ("expected a TimeSeriesClassifier checkpoint to hold",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    folder = edited(ctx.classifier_ckpt, tmp / "ckpt", lambda d: d.pop("params"))
    return Call(TimeSeriesClassifier.load, (folder,), {"backbone": ctx.wave})


@case(
    "load-estimator-unknown-parameter",
    CheckpointError,
    ("unknown TimeSeriesClassifier parameter(s) ['bogus']",),
    ("expected a subset of", "'mapping'"),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    folder = edited(ctx.classifier_ckpt, tmp / "ckpt", lambda d: d["params"].update(bogus=1))
    return Call(TimeSeriesClassifier.load, (folder,), {"backbone": ctx.wave})


@case(
    "load-estimator-removed-fingerprint",
    CheckpointError,
    ("records no backbone fingerprint",),
    ("expected the fingerprint of the backbone it was trained on",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    folder = edited(ctx.classifier_ckpt, tmp / "ckpt", lambda d: d["backbone"].pop("fingerprint"))
    return Call(TimeSeriesClassifier.load, (folder,), {"backbone": ctx.wave}, names=(ctx.wave.fingerprint(),))


@case(
    "load-estimator-wrong-kind",
    CheckpointError,
    ("holds a 'TimeSeriesForecaster'",),
    ("expected a TimeSeriesClassifier",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesClassifier.load, (ctx.forecaster_ckpt,), {"backbone": ctx.wave})


@case(
    "load-forecaster-wrong-kind",
    CheckpointError,
    ("holds a 'TimeSeriesClassifier'",),
    ("expected a TimeSeriesForecaster",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    # xdomain.load would load it as the classifier it is; the forecaster's own load refuses it
    return Call(TimeSeriesForecaster.load, (ctx.classifier_ckpt,))


@case(
    "load-estimator-without-its-in-memory-backbone",
    CheckpointError,
    ("made with an in-memory backbone",),
    ("pass it as backbone=",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(TimeSeriesClassifier.load, (ctx.classifier_ckpt,))


# == the command line ========================================================================================
@case(
    "cli-forecast-out-is-a-file",
    CliExit,
    ("exit status 2", "is a file"),
    ("expected a folder",),
    absent=("[xdomain] training",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    require_data(ETTH1)
    taken = tmp / "taken"
    taken.write_text("mine\n")
    argv = [
        "forecast",
        "--model",
        "dlinear",
        "--lookback",
        "32",
        "--horizon",
        "8",
        "--max-steps",
        "1",
        "--no-progress",
        "--out",
        str(taken),
    ]
    return Call(cli, (argv,), watch=(taken,), names=(f"--out {str(taken)!r}",))


@case(
    "cli-classify-out-is-a-file",
    CliExit,
    ("exit status 2", "is a file"),
    ("expected a folder",),
    absent=("[xdomain] training",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    home = toy_ucr(tmp / "data")
    taken = tmp / "taken"
    taken.write_text("mine\n")
    argv = [
        "classify",
        "--dataset",
        "UCR/Toy",
        "--data-home",
        str(home),
        "--backbone",
        "none",
        "--mapping",
        "linear",
        "--max-steps",
        "1",
        "--out",
        str(taken),
    ]
    return Call(cli, (argv,), watch=(taken, home), names=(f"--out {str(taken)!r}",))


@case(
    "cli-forecast-horizon-zero", CliExit, ("exit status 2", "got 0"), ("horizon must be a positive integer",)
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(cli, (["forecast", "--model", "dlinear", "--horizon", "0"],))


@case(
    "cli-forecast-horizon-not-a-number",
    CliExit,
    ("exit status 2", "'abc'"),
    ("argument --horizon: invalid int",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(cli, (["forecast", "--horizon", "abc"],))


@case("cli-forecast-unknown-model", CliExit, ("exit status 2", "'arima'"), ("choose from",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(cli, (["forecast", "--model", "arima"],))


@case(
    "cli-forecast-max-train-seconds-zero",
    CliExit,
    ("exit status 2", "got 0.0"),
    ("max_train_seconds must be a positive number",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(cli, (["forecast", "--model", "dlinear", "--max-train-seconds", "0"],))


@case(
    "cli-forecast-unknown-backbone",
    CliExit,
    ("exit status 2", f"unknown backbone {NO_MODEL!r}"),
    ("expected an alias",),
    absent=("[xdomain] training",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    require_data(ETTH1)
    argv = ["forecast", "--backbone", NO_MODEL, "--lookback", "32", "--horizon", "8", "--no-progress"]
    return Call(cli, (argv,))


@case(
    "cli-classify-unknown-backbone",
    CliExit,
    ("exit status 2", f"unknown backbone {NO_MODEL!r}"),
    ("not a registered alias",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    home = toy_ucr(tmp / "data")
    argv = ["classify", "--dataset", "UCR/Toy", "--data-home", str(home), "--backbone", NO_MODEL]
    return Call(cli, (argv,), watch=(home,))


@case(
    "cli-classify-epochs-zero",
    CliExit,
    ("exit status 2", "got 0"),
    ("argument --epochs: expected an integer >= 1",),
)
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(cli, (["classify", "--dataset", "UCR/Toy", "--epochs", "0"],))


@case("cli-infill-temperature-nan", CliExit, ("exit status 2", "got nan"), ("expected a number in [0, inf)",))
def _(ctx: Ctx, tmp: Path) -> Call:
    return Call(
        cli,
        (
            [
                "antibody",
                "infill",
                "--model",
                "m",
                "--sequence",
                "EVQ",
                "--cdr-mask",
                "003",
                "--temperature",
                "nan",
            ],
        ),
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, ctx: Ctx, tmp_path: Path) -> None:
    assert case.names and case.expects, f"{case.id}: name the offending value and what was expected"
    call = case.make(ctx, tmp_path)
    inputs = (call.args, call.kwargs, call.watch)
    before = snapshot(inputs)
    with pytest.raises(case.error) as info:
        call.fn(*call.args, **call.kwargs)
    message = str(info.value)
    for part in (*case.names, *call.names, *case.expects):
        assert part in message, f"{case.id}: {part!r} not in the message:\n{message}"
    for part in case.absent:
        assert part not in message, f"{case.id}: {part!r} in the message:\n{message}"
    assert_unchanged(before, inputs)


def test_the_matrix_is_large_and_its_ids_unique() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


def test_not_fitted_forecaster_is_also_a_value_and_attribute_error() -> None:
    with pytest.raises(ValueError, match="not fitted"):
        TimeSeriesForecaster(**DLINEAR).predict_array(np.zeros((1, LOOKBACK, 1)))
    with pytest.raises(AttributeError, match="not fitted"):
        TimeSeriesForecaster(**DLINEAR).predict(hourly_frame(40))


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_gaps_are_filled_when_fill_is_given(layout: str) -> None:
    """The explicit option that allows gaps: ``fill=`` fills the missing time stamps like missing values."""
    full = hourly_frame(70)
    gappy = full.drop(full.index[20:23])
    frame = gappy if layout == "wide" else _long(gappy)
    before = frame.copy()
    fc = TimeSeriesForecaster(**DLINEAR, fill="interpolate").fit(frame)
    pred = fc.predict(frame)
    pd.testing.assert_frame_equal(frame, before)
    expected = pd.date_range(full.index[-1] + pd.Timedelta(hours=1), periods=HORIZON, freq="h")
    stamps = pred.index if layout == "wide" else pd.DatetimeIndex(pred.loc[pred["unique_id"] == "a", "ds"])
    assert list(stamps) == list(expected)


def test_temperature_zero_is_still_the_most_likely_design(ctx: Ctx) -> None:
    """0 is documented (argmax), not an error: every sample is the same design."""
    chains, masks = ctx.antibodies
    designs = ctx.infiller.infill(chains[0], masks[0], n=3, temperature=0)
    assert len(set(designs)) == 1

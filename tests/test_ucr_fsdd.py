"""UCR / UEA loader (real .ts and .txt files, every format on tiny synthetic files, the zip) and FSDD."""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import require_data
from xdomain.datasets.fsdd import FSDD, REPOSITORY, load_fsdd
from xdomain.datasets.home import DataNotFoundError
from xdomain.datasets.ucr import load_ucr, ucr_names_available
from xdomain.registry import DATASETS

TS_HEADER = """# a comment line
@problemName Toy
@timeStamps false
@missing true
@univariate true
@equalLength true
@classLabel true a b
@data
"""


def _write(home: Path, name: str, split: str, ext: str, text: str) -> Path:
    folder = home / "UCR" / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_{split}{ext}"
    path.write_text(text)
    return path


# -- real files -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,ext,train_shape,test_shape,classes,first",
    [
        ("GunPoint", ".ts", (50, 150), (150, 150), ["1", "2"], -0.6478854),
        ("ItalyPowerDemand", ".ts", (67, 24), (1029, 24), ["1", "2"], -0.71051757),
        ("Coffee", ".txt", (28, 286), (28, 286), ["0", "1"], -0.51841899),
    ],
)
def test_real_ucr_sets(
    name: str, ext: str, train_shape: tuple[int, int], test_shape: tuple[int, int], classes: list[str],
    first: float,
) -> None:
    path = require_data(f"UCR/{name}/{name}_TRAIN{ext}")
    home = path.parents[2]
    x_train, y_train = load_ucr(name, "train", home=home, download=False)
    x_test, y_test = load_ucr(name, "test", home=home, download=False)
    assert x_train.shape == train_shape and x_test.shape == test_shape
    assert x_train.dtype == np.float32 and not np.isnan(x_train).any() and not np.isnan(x_test).any()
    assert y_train.shape == (train_shape[0],) and y_test.shape == (test_shape[0],)
    assert sorted(set(y_train.tolist())) == classes and sorted(set(y_test.tolist())) == classes
    assert x_train[0, 0] == np.float32(first)
    assert name in ucr_names_available(home)


def test_coffee_text_matches_an_independent_parse() -> None:
    path = require_data("UCR/Coffee/Coffee_TEST.txt")
    reference = np.loadtxt(path)
    x, y = load_ucr("Coffee", "test", home=path.parents[2], download=False)
    assert np.array_equal(x, reference[:, 1:].astype(np.float32))
    assert y.tolist() == [str(int(v)) for v in reference[:, 0]]  # "0.0000000e+00" reads as "0"


# -- .ts ---------------------------------------------------------------------------------------------------
def test_ts_univariate_with_missing_values(tmp_path: Path) -> None:
    _write(tmp_path, "Toy", "TRAIN", ".ts", TS_HEADER + "1,2.5,?:a\n\n-1e-1,NaN,3:b\n4,5,6:a\n")
    x, y = load_ucr("Toy", home=tmp_path, download=False)
    assert x.dtype == np.float32 and x.shape == (3, 3)
    assert np.array_equal(x, np.array([[1, 2.5, np.nan], [-0.1, np.nan, 3], [4, 5, 6]], np.float32),
                          equal_nan=True)
    assert y.tolist() == ["a", "b", "a"]


def test_ts_multivariate_is_n_c_l(tmp_path: Path) -> None:
    header = TS_HEADER.replace("@univariate true", "@univariate false\n@dimensions 2")
    _write(tmp_path, "Multi", "TEST", ".ts", header + "1,2,3:4,5,6:b\n7,8,9:1,2,?:a\n")
    x, y = load_ucr("Multi", "TEST", home=tmp_path, download=False)
    assert x.shape == (2, 2, 3)
    assert np.array_equal(x[1], np.array([[7, 8, 9], [1, 2, np.nan]], np.float32), equal_nan=True)
    assert y.tolist() == ["b", "a"]


def test_unequal_lengths_need_pad_nan(tmp_path: Path) -> None:
    _write(tmp_path, "Ragged", "TRAIN", ".ts", TS_HEADER + "1,2,3:a\n1,2,3,4:b\n5:a\n")
    with pytest.raises(ValueError, match=re.escape("series have unequal lengths [1, 3, 4]; pass pad='nan'")):
        load_ucr("Ragged", home=tmp_path, download=False)
    x, _ = load_ucr("Ragged", home=tmp_path, download=False, pad="nan")
    expected = np.array([[1, 2, 3, np.nan], [1, 2, 3, 4], [5, np.nan, np.nan, np.nan]], np.float32)
    assert np.array_equal(x, expected, equal_nan=True)
    with pytest.raises(ValueError, match="pad must be None or 'nan', got 'zero'"):
        load_ucr("Ragged", home=tmp_path, download=False, pad="zero")


@pytest.mark.parametrize(
    "text,message",
    [
        (TS_HEADER + "1,2:c\n", "class label 'c' is not among the declared labels ['a', 'b']"),
        (TS_HEADER + "1,x:a\n", "line 9: value 'x' is not a number"),
        (TS_HEADER.replace("@timeStamps false", "@timeStamps true"),
         "'@timeStamps true' files are not supported"),
        (TS_HEADER.replace("@data\n", ""), "has no '@data' line"),
        (TS_HEADER.replace("@classLabel true a b", "@classLabel false") + "1,2\n",
         "declares no class labels"),
        (TS_HEADER + "1,2:a\n1,2:3,4:b\n", "cases have different numbers of dimensions [1, 2]"),
    ],
)
def test_ts_format_errors(tmp_path: Path, text: str, message: str) -> None:
    _write(tmp_path, "Bad", "TRAIN", ".ts", text)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_ucr("Bad", home=tmp_path, download=False)


# -- text formats ------------------------------------------------------------------------------------------
def test_tsv_2018_format(tmp_path: Path) -> None:
    _write(tmp_path, "Tab", "TRAIN", ".tsv", "-1\t0.5\t1.5\tNaN\n1\t2\t3\t4\n")
    x, y = load_ucr("Tab", home=tmp_path, download=False)
    assert np.array_equal(x, np.array([[0.5, 1.5, np.nan], [2, 3, 4]], np.float32), equal_nan=True)
    assert y.tolist() == ["-1", "1"]


def test_txt_whitespace_format_with_float_labels(tmp_path: Path) -> None:
    _write(tmp_path, "Space", "TEST", ".txt",
           "   1.0000000e+00  -5.0e-01   2.5\n   2.0000000e+00   1.0   ?\n  0.5  7  8\n")
    x, y = load_ucr("Space", "test", home=tmp_path, download=False)
    assert np.array_equal(x, np.array([[-0.5, 2.5], [1, np.nan], [7, 8]], np.float32), equal_nan=True)
    assert y.tolist() == ["1", "2", "0.5"]  # integral labels in float notation read as integers


def test_comma_format_without_extension(tmp_path: Path) -> None:
    _write(tmp_path, "Old", "TRAIN", "", "3,1,2\nlabel_b,4,5\n")
    x, y = load_ucr("Old", home=tmp_path, download=False)
    assert x.tolist() == [[1, 2], [4, 5]] and y.tolist() == ["3", "label_b"]


def test_ts_is_preferred_over_text(tmp_path: Path) -> None:
    _write(tmp_path, "Both", "TRAIN", ".txt", "1 9 9 9\n")
    _write(tmp_path, "Both", "TRAIN", ".ts", TS_HEADER + "1,2,3:a\n")
    assert load_ucr("Both", home=tmp_path, download=False)[1].tolist() == ["a"]


# -- finding and fetching ---------------------------------------------------------------------------------
def test_missing_set_says_which_files_to_place_where(tmp_path: Path) -> None:
    expected = str(tmp_path / "UCR" / "ECG200" / "ECG200_TRAIN.ts")
    with pytest.raises(DataNotFoundError, match=re.escape(expected) + ".*aeon-toolkit/ECG200.zip"):
        load_ucr("ECG200", home=tmp_path, download=False)


def test_official_zip_is_unpacked_by_base_name_only(tmp_path: Path) -> None:
    folder = tmp_path / "UCR" / "Zipped"
    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / "Zipped.zip", "w") as zf:  # already fetched: no network needed
        zf.writestr("Zipped/Zipped_TRAIN.ts", TS_HEADER + "1,2:a\n")
        zf.writestr("../../Zipped_TEST.ts", TS_HEADER + "3,4:b\n")
        zf.writestr("Zipped/Zipped_TRAIN.arff", "@relation x\n")
    x, y = load_ucr("Zipped", home=tmp_path, download=False)
    assert x.tolist() == [[1, 2]] and y.tolist() == ["a"]
    assert sorted(p.name for p in folder.iterdir()) == ["Zipped.zip", "Zipped_TEST.ts", "Zipped_TRAIN.ts"]
    assert not (tmp_path / "Zipped_TEST.ts").exists()
    assert ucr_names_available(tmp_path) == ["Zipped"]


def test_names_available_lists_complete_sets_only(tmp_path: Path) -> None:
    _write(tmp_path, "Full", "TRAIN", ".tsv", "1\t2\n")
    _write(tmp_path, "Full", "TEST", ".txt", "1 2\n")
    _write(tmp_path, "Half", "TRAIN", ".ts", TS_HEADER)
    assert ucr_names_available(tmp_path) == ["Full"]
    assert ucr_names_available(tmp_path / "nowhere") == []


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"name": "../etc"}, "plain archive name such as 'GunPoint'"),
        ({"name": "Toy", "split": "validation"},
         "split must be 'train' or 'test' (the official UCR split), got 'validation'"),
    ],
)
def test_bad_name_or_split(tmp_path: Path, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        load_ucr(home=tmp_path, download=False, **kwargs)  # type: ignore[arg-type]


def test_ucr_is_registered(tmp_path: Path) -> None:
    _write(tmp_path, "Reg", "TRAIN", ".tsv", "1\t2\t3\n")
    x, y = DATASETS.get("ucr")("Reg", home=tmp_path, download=False)  # build(name=...) takes "name" itself
    assert x.tolist() == [[2, 3]] and y.tolist() == ["1"]


# -- FSDD ------------------------------------------------------------------------------------------------
def test_fsdd_official_split_on_the_real_folder() -> None:
    home = require_data("audio/fsdd/recordings/0_george_0.wav").parents[3]
    train, test, every = (load_fsdd(s, home=home) for s in ("train", "test", "all"))
    assert len(test) == 300  # 10 digits x 6 speakers x indices 0-4
    assert len(train) + len(test) == len(every) and len(train) >= 300
    assert set(test.indices.tolist()) == {0, 1, 2, 3, 4} and test.indices.dtype == np.int64
    assert train.indices.min() == 5
    assert np.bincount(test.labels).tolist() == [30] * 10
    assert set(test.speakers) == {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}
    for path, label, speaker, index in zip(test.paths, test.labels, test.speakers, test.indices, strict=True):
        assert path.name == f"{label}_{speaker}_{index}.wav" and path.is_file()
    assert not set(train.paths) & set(test.paths)
    assert test.paths[:2] == [test.folder / "0_george_0.wav", test.folder / "0_george_1.wav"]


def test_fsdd_ignores_other_files_with_a_count(tmp_path: Path) -> None:
    folder = tmp_path / "audio" / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    for name in ["3_theo_12.wav", "3_theo_2.wav", "1_ann_0.wav", "README.md", "x_theo_1.wav", "3_theo_1.mp3"]:
        (folder / name).write_bytes(b"")
    with pytest.warns(UserWarning, match="3 file\\(s\\) in .* do not match"):
        data = load_fsdd("all", home=tmp_path)
    assert isinstance(data, FSDD)
    assert [p.name for p in data.paths] == ["1_ann_0.wav", "3_theo_2.wav", "3_theo_12.wav"]
    assert data.labels.tolist() == [1, 3, 3] and data.speakers == ["ann", "theo", "theo"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_fsdd("train", home=tmp_path).indices.tolist() == [12]
        assert DATASETS.build("fsdd", split="test", home=tmp_path).indices.tolist() == [0, 2]


def test_fsdd_missing_folder_names_it_and_the_repository(tmp_path: Path) -> None:
    expected = str(tmp_path / "audio" / "fsdd" / "recordings")
    with pytest.raises(DataNotFoundError, match=re.escape(expected) + ".*" + re.escape(REPOSITORY)):
        load_fsdd(home=tmp_path)
    message = "split must be one of ['train', 'test', 'all'], got 'dev'"
    with pytest.raises(ValueError, match=re.escape(message)):
        load_fsdd("dev", home=tmp_path)

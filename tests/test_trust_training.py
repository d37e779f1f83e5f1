"""The trainer can be trusted: the best epoch is what gets restored (learned buffers included), precision is
a per-estimator choice that works in any order in one process, and bf16 stays close to float32.

Tiny seeded backbones only (``helpers.TinyWaveformBackbone``, the tiny BERT), so nothing pretrained loads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from helpers import (
    FAST_TRAIN,
    HORIZON,
    LOOKBACK,
    SMALL_MODEL,
    TinyWaveformBackbone,
    hourly_frame,
    sines_and_squares,
)
from xdomain.estimators.series import TimeSeriesClassifier
from xdomain.training.trainer import Trainer, autocast, get_accelerator


@pytest.fixture(scope="module")
def wave() -> TinyWaveformBackbone:
    return TinyWaveformBackbone()


def _validation_loss(est: Any, x: np.ndarray, y: np.ndarray) -> float:
    """The fitted estimator's cross-entropy on exactly the validation rows it held back."""
    _, y_idx = np.unique(y, return_inverse=True)
    _, val_idx = est._split(y_idx, len(y))
    assert val_idx is not None
    inputs = est._inputs(x[val_idx], fitting=False)
    ds = TensorDataset(inputs, torch.as_tensor(y_idx[val_idx], dtype=torch.long))
    trainer = Trainer(est.model_, est._train_config(), loss="cross_entropy")
    return float(trainer.evaluate(ds)["loss"])


# every head whose state is refitted during training (learned buffers), and a fixed one for contrast
@pytest.mark.parametrize("mapping", ["ilm", "blm", "blm+", "linear", "flm"])
def test_restored_model_has_the_recorded_best_validation_loss(wave: TinyWaveformBackbone,
                                                              mapping: str) -> None:
    x, y = sines_and_squares(16, 32, seed=3)
    # a high learning rate makes the validation loss jump between epochs, so the best epoch is rarely
    # the last one and a stale mapping would show
    est = TimeSeriesClassifier(backbone=wave, mapping=mapping, epochs=8, batch_size=8, lr=0.5, patience=8,
                               validation_fraction=0.25, random_state=1).fit(x, y)
    hist = est.history_
    losses = [r["val_loss"] for r in hist.records]
    assert hist.best_val_loss == pytest.approx(min(losses))
    restored = _validation_loss(est, x, y)
    assert restored == pytest.approx(hist.best_val_loss, rel=1e-5, abs=1e-6), (mapping, losses)


def test_refitted_head_state_is_restored_not_the_last_epochs(wave: TinyWaveformBackbone) -> None:
    """The bug, made visible: with ILM the mapping changes between epochs, and it must come back with the
    best program (found over several seeds where the best epoch is not the last)."""
    x, y = sines_and_squares(16, 32, seed=3)
    checked = 0
    for seed in range(6):
        est = TimeSeriesClassifier(backbone=wave, mapping="ilm", epochs=8, batch_size=8, lr=0.5, patience=8,
                                   validation_fraction=0.25, random_state=seed).fit(x, y)
        if est.history_.best_step == est.history_.steps:
            continue
        checked += 1
        assert _validation_loss(est, x, y) == pytest.approx(est.history_.best_val_loss, rel=1e-5, abs=1e-6)
    assert checked >= 1, "no seed gave a best epoch before the last; the test would prove nothing"


def test_precisions_in_any_order_in_one_process(wave: TinyWaveformBackbone) -> None:
    """One Accelerator per process serves every precision (Accelerate's state is process-wide)."""
    x, y = sines_and_squares(8, 32)
    first = get_accelerator("no")
    for precision in ("no", "bf16", "no", "bf16"):
        est = TimeSeriesClassifier(backbone=wave, mapping="flm", epochs=1, batch_size=8,
                                   validation_fraction=0.0, mixed_precision=precision).fit(x, y)
        assert est.predict_proba(x).shape == (16, 2)
    assert get_accelerator("bf16") is first


def test_bf16_classifier_close_to_float32(wave: TinyWaveformBackbone) -> None:
    """Same seed, same data: bf16 autocast probabilities within 0.05 of float32 (bf16 keeps 8 bits of
    mantissa, ~3 significant digits; the tolerance covers a few epochs of diverging training)."""
    x, y = sines_and_squares(12, 32)
    kw: dict[str, Any] = {"backbone": wave, "mapping": "linear", "epochs": 2, "batch_size": 8,
                          "validation_fraction": 0.0, "random_state": 0}
    p32 = TimeSeriesClassifier(**kw).fit(x, y).predict_proba(x)
    p16 = TimeSeriesClassifier(**kw, mixed_precision="bf16").fit(x, y).predict_proba(x)
    assert not np.array_equal(p32, p16), "bf16 gave bit-identical output: autocast was not applied"
    np.testing.assert_allclose(p16, p32, atol=0.05)


def test_bf16_forecaster_fits_after_float32_and_stays_close(tiny_bert: Any) -> None:
    """The reported failure: a bf16 forecaster after a float32 one in the same process."""
    from xdomain import TimeSeriesForecaster

    df = hourly_frame(160)
    opts = {**SMALL_MODEL, **FAST_TRAIN}
    f32 = TimeSeriesForecaster(backbone=tiny_bert, lookback=LOOKBACK, horizon=HORIZON, **opts).fit(df)
    f16 = TimeSeriesForecaster(backbone=tiny_bert, lookback=LOOKBACK, horizon=HORIZON, mixed_precision="bf16",
                               **opts).fit(df)
    a, b = f32.predict(df).to_numpy(), f16.predict(df).to_numpy()
    assert np.isfinite(b).all()
    # forecasts are in the data's units (levels 10 to 13, amplitudes 1 to 2): within 0.1 of float32
    np.testing.assert_allclose(b, a, atol=0.1)


def test_autocast_runs_bf16_on_cpu() -> None:
    w = torch.randn(8, 8)
    with autocast("bf16", torch.device("cpu")):
        out = torch.randn(4, 8) @ w
    assert out.dtype == torch.bfloat16
    with autocast("no", torch.device("cpu")):
        assert (torch.randn(4, 8) @ w).dtype == torch.float32
    with pytest.raises(ValueError, match=r"mixed_precision must be one of .* got 'fp8'"):
        autocast("fp8", torch.device("cpu"))


def test_bad_precision_is_named_before_training(wave: TinyWaveformBackbone) -> None:
    x, y = sines_and_squares(4, 32)
    with pytest.raises(ValueError, match="got 'float16'"):
        TimeSeriesClassifier(backbone=wave, mixed_precision="float16", validation_fraction=0.0).fit(x, y)

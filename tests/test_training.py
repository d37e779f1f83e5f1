"""Metrics accumulated exactly over every window; the trainer's loop, evaluation and best-weight restore."""

from __future__ import annotations

import gc
import math
import re
import weakref

import numpy as np
import pytest
import torch

import xdomain
from helpers import HORIZON, LOOKBACK, toy_series
from xdomain.baselines import DLinear
from xdomain.datasets import WindowDataset
from xdomain.training import ErrorAccumulator, Trainer, mae, mse, set_seed

QUIET = {"progress": False, "seed": 5}


def test_mse_and_mae_by_hand() -> None:
    pred, target = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 2.0, 5.0])
    assert mse(pred, target) == pytest.approx(5 / 3)
    assert mae(pred, target) == pytest.approx(1.0)


def test_accumulator_over_uneven_batches_equals_the_full_array() -> None:
    gen = torch.Generator().manual_seed(0)
    pred, target = torch.randn(10, 4, 3, generator=gen), torch.randn(10, 4, 3, generator=gen)
    acc = ErrorAccumulator()
    for lo, hi in [(0, 3), (3, 8), (8, 10)]:  # sizes 3, 5, 2: no batch dropped, no batch weighted
        acc.update(pred[lo:hi], target[lo:hi])
    result = acc.compute()
    diff = (pred.double() - target.double()).numpy()
    assert result["mse"] == pytest.approx(float(np.mean(diff**2)), rel=1e-12)
    assert result["mae"] == pytest.approx(float(np.mean(np.abs(diff))), rel=1e-12)
    assert result["n"] == 120
    # the mean of per-batch means would differ: the accumulator is not that
    batch_means = np.mean([np.mean(diff[lo:hi] ** 2) for lo, hi in [(0, 3), (3, 8), (8, 10)]])
    assert result["mse"] != pytest.approx(float(batch_means), rel=1e-9)


def test_accumulator_errors() -> None:
    with pytest.raises(ValueError, match=re.escape("prediction shape (2, 3) != target shape (3, 2)")):
        ErrorAccumulator().update(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="no predictions were accumulated"):
        ErrorAccumulator().compute()


def _windows(rows: int, channels: int = 1, **kw: int) -> WindowDataset:
    return WindowDataset([toy_series(channels, rows)], LOOKBACK, HORIZON, **kw)


def test_evaluate_counts_every_window_when_the_last_batch_is_partial() -> None:
    ds = _windows(LOOKBACK + HORIZON + 22)  # 23 windows
    assert len(ds) == 23
    torch.manual_seed(0)
    model = DLinear(LOOKBACK, HORIZON, 5)
    result = Trainer(model, xdomain.TrainConfig(eval_batch_size=5, **QUIET)).evaluate(ds)
    assert result["windows"] == 23
    assert result["n"] == 23 * HORIZON
    xs = torch.stack([ds[i][0] for i in range(len(ds))])
    ys = torch.stack([ds[i][1] for i in range(len(ds))])
    with torch.no_grad():
        full = model(xs)
    assert result["mse"] == pytest.approx(mse(full, ys), rel=1e-6)
    assert result["mae"] == pytest.approx(mae(full, ys), rel=1e-6)


def test_fit_stops_at_max_steps_and_records_losses() -> None:
    torch.manual_seed(0)
    trainer = Trainer(
        DLinear(LOOKBACK, HORIZON, 5), xdomain.TrainConfig(batch_size=4, max_steps=7, val_every=3, **QUIET)
    )
    history = trainer.fit(_windows(200), _windows(60))
    assert history.steps == 7 and history.stopped == "max steps"
    assert [r["step"] for r in history.records] == [3.0, 6.0, 7.0]
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in history.records)
    assert history.epochs == pytest.approx(7 / math.ceil(len(_windows(200)) / 4))
    assert not trainer.model.training


def test_fit_restores_the_best_validation_weights() -> None:
    torch.manual_seed(0)
    # a learning rate this high makes the validation loss jump around: the best step is not the last
    trainer = Trainer(
        DLinear(LOOKBACK, HORIZON, 5),
        xdomain.TrainConfig(batch_size=4, max_steps=8, val_every=1, lr=0.5, patience=100, **QUIET),
    )
    val = _windows(80)
    history = trainer.fit(_windows(200), val)
    losses = [r["val_loss"] for r in history.records]
    assert history.best_val_loss == min(losses)
    assert history.best_step == 1 + losses.index(min(losses))
    assert history.best_step < history.steps  # so restoring is visible
    assert trainer.evaluate(val)["mse"] == pytest.approx(history.best_val_loss, rel=1e-9)


def test_early_stopping_after_patience_validations_without_improvement() -> None:
    torch.manual_seed(0)
    trainer = Trainer(
        DLinear(LOOKBACK, HORIZON, 5),
        xdomain.TrainConfig(batch_size=4, max_steps=50, val_every=1, lr=5.0, patience=2, **QUIET),
    )
    history = trainer.fit(_windows(200), _windows(80))
    assert history.stopped == "early stopping"
    assert history.steps < 50
    losses = [r["val_loss"] for r in history.records]
    assert min(losses[-2:]) >= min(losses[:-2])


# 5 steps used to crash: OneCycleLR(pct_start=0.2) divides by zero when 0.2 * total_steps == 1
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 6, 10])
def test_any_step_budget_trains(steps: int) -> None:
    torch.manual_seed(0)
    trainer = Trainer(
        DLinear(LOOKBACK, HORIZON, 5), xdomain.TrainConfig(batch_size=4, max_steps=steps, **QUIET)
    )
    assert trainer.fit(_windows(200)).steps == steps


def test_time_budget_stops_training() -> None:
    torch.manual_seed(0)
    config = xdomain.TrainConfig(batch_size=4, epochs=3, max_train_seconds=1e-9, **QUIET)
    history = Trainer(DLinear(LOOKBACK, HORIZON, 5), config).fit(_windows(200))
    assert history.steps == 1 and history.stopped == "time budget"
    assert len(history.records) == 1


def test_training_without_trainable_parameters_is_an_error() -> None:
    model = DLinear(LOOKBACK, HORIZON, 5).requires_grad_(False)
    with pytest.raises(ValueError, match="the model has no trainable parameters"):
        Trainer(model, xdomain.TrainConfig(**QUIET)).fit(_windows(60))


def test_predict_batches_give_the_same_as_one_pass() -> None:
    torch.manual_seed(0)
    model = DLinear(LOOKBACK, HORIZON, 5)
    x = torch.from_numpy(toy_series(3, LOOKBACK))[None].repeat(7, 1, 1)
    out = Trainer(model, xdomain.TrainConfig(eval_batch_size=3, **QUIET)).predict(x)
    assert out.shape == (7, HORIZON, 3)
    with torch.no_grad():
        torch.testing.assert_close(out, model(x))


def test_set_seed_makes_torch_deterministic() -> None:
    set_seed(3)
    a = torch.randn(4)
    set_seed(3)
    assert torch.equal(a, torch.randn(4))


def test_a_finished_trainer_does_not_keep_its_model_alive() -> None:
    model = DLinear(LOOKBACK, HORIZON, 5)
    ref = weakref.ref(model)
    trainer = Trainer(model, xdomain.TrainConfig(batch_size=4, max_steps=2, **QUIET))
    trainer.fit(_windows(80), _windows(60))
    del model, trainer
    gc.collect()
    assert ref() is None

"""The forecaster that cannot start worse than a linear model: the closed-form ridge path, the residual
model around it, validation before the first step, the cached prompt, bf16, and backtesting from Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import xdomain
from helpers import FAST_TRAIN, HORIZON, LOOKBACK, SMALL_MODEL, hourly_frame, small_config, toy_series
from xdomain.baselines.ridge import RidgeForecaster, fit_ridge, window_batches
from xdomain.datasets import WindowDataset
from xdomain.estimators.forecasting import (
    ResidualForecaster,
    build_model,
    fit_linear_path,
    train_forecaster,
)
from xdomain.training import set_seed
from xdomain.transforms.patch_reprogramming import kmeans_centroids


def windows(rows: int = 90, channels: int = 2, seed: int = 0) -> WindowDataset:
    return WindowDataset([toy_series(channels, rows, seed)], LOOKBACK, HORIZON)


def design(ds: WindowDataset) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in window_batches(ds)], strict=True)
    return np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64)


# -- the closed-form ridge path --------------------------------------------------------------------------
def test_ridge_at_lambda_zero_is_least_squares_with_an_intercept() -> None:
    train = windows(200, 3)
    fit = fit_ridge(train, windows(80, 3, seed=1), lambdas=[0.0], revin=False)
    x, y = design(train)
    solution, *_ = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)
    np.testing.assert_allclose(fit.weight, solution[:-1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fit.bias, solution[-1], rtol=1e-6, atol=1e-6)
    assert fit.train_windows == len(x) == len(train)


def test_ridge_penalises_the_weights_per_window_and_not_the_intercept() -> None:
    train = windows(200, 3)
    lam = 0.5
    fit = fit_ridge(train, windows(80, 3, seed=1), lambdas=[lam], revin=False)
    x, y = design(train)
    xc, yc = x - x.mean(0), y - y.mean(0)
    # argmin mean ||y - x W - b||^2 + lam ||W||^2, by hand
    w = np.linalg.solve(xc.T @ xc / len(x) + lam * np.eye(x.shape[1]), xc.T @ yc / len(x))
    np.testing.assert_allclose(fit.weight, w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fit.bias, y.mean(0) - x.mean(0) @ w, rtol=1e-6, atol=1e-7)


def test_ridge_chooses_lambda_and_revin_by_validation_mse() -> None:
    fit = fit_ridge(windows(200, 3), windows(80, 3, seed=1))
    best = min(fit.candidates, key=lambda c: c["val_mse"])
    assert (fit.lam, float(fit.revin), fit.val_mse) == (best["lambda"], best["revin"], best["val_mse"])
    assert len(fit.candidates) == 16  # 8 lambdas, RevIN off and on


def test_ridge_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match=r"lambdas must be finite numbers >= 0, got \[-1.0\]"):
        fit_ridge(windows(), windows(seed=1), lambdas=[-1.0])
    with pytest.raises(ValueError, match=r"validation windows are \(lookback 16, horizon 8\)"):
        fit_ridge(windows(), WindowDataset([toy_series(1, 60)], 16, HORIZON))
    with pytest.raises(ValueError, match=r"time series batch must be \(B, L, N\), got shape \(32, 1\)"):
        RidgeForecaster(LOOKBACK, HORIZON)(torch.zeros(LOOKBACK, 1))


def test_the_ridge_module_forecasts_every_channel_with_the_same_matrix() -> None:
    model = RidgeForecaster(LOOKBACK, HORIZON)
    fit = model.fit_closed_form(windows(), windows(seed=1), revin=True)
    assert model.revin and fit.revin
    x = torch.from_numpy(toy_series(3, LOOKBACK, seed=4))[None]  # (1, L, 3)
    y = model(x)
    for ch in range(3):
        z = x[0, :, ch].double().numpy()
        mean, std = z.mean(), np.sqrt(z.var() + 1e-5)
        expected = (((z - mean) / std) @ fit.weight + fit.bias) * std + mean
        np.testing.assert_allclose(y[0, :, ch].double().numpy(), expected, rtol=1e-4, atol=1e-4)


# -- the residual model ------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["bert", "llama"])
def test_the_residual_model_starts_as_the_linear_forecast(which: str, request: pytest.FixtureRequest) -> None:
    backbone = request.getfixturevalue(f"tiny_{which}")
    set_seed(0)
    model = build_model(small_config("reprogram", dropout=0.1), backbone)
    assert isinstance(model, ResidualForecaster)
    fit_linear_path(model, windows(), windows(seed=1))
    x = torch.from_numpy(toy_series(3, LOOKBACK, seed=2))[None].repeat(2, 1, 1)
    model.eval()
    with torch.no_grad():
        linear = model.linear(x)
        assert linear.abs().max() > 0.1  # fitted, not zero
        torch.testing.assert_close(model(x), linear, rtol=0, atol=0)


def test_validation_before_the_first_step_keeps_the_linear_start_when_training_only_hurts(
    tiny_bert: xdomain.LanguageBackbone,
) -> None:
    config = small_config("reprogram")
    set_seed(0)
    model = build_model(config, tiny_bert)
    train = xdomain.TrainConfig(**{**FAST_TRAIN, "max_steps": 4, "val_every": 2, "lr": 50.0})
    model, history = train_forecaster(model, config, train, windows(), windows(seed=1))
    assert history.records[0]["step"] == 0.0 and history.best_step == 0  # lr 50 only made it worse
    assert all(r["val_loss"] > history.best_val_loss for r in history.records[1:])
    x = torch.from_numpy(toy_series(2, LOOKBACK, seed=2))[None]
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), model.linear(x), rtol=0, atol=0)  # restored


def test_the_linear_model_is_fitted_in_closed_form_and_trains_no_further() -> None:
    fc = xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, model="linear", progress=False)
    frame = hourly_frame(160)
    fc.fit(frame.iloc[:120], frame.iloc[120:])
    assert fc.history_ is not None and fc.history_.stopped == "closed form" and fc.history_.steps == 0
    assert fc.history_.records[0]["lambda"] in (0.0, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1000.0)
    # without validation data the ridge strength is chosen on the last 20% of the training windows
    alone = xdomain.TimeSeriesForecaster(lookback=LOOKBACK, horizon=HORIZON, model="linear", progress=False)
    alone.fit(frame)
    assert alone.predict(frame).shape == (HORIZON, 2)


def test_kmeans_prototypes_are_deterministic_and_trainable_or_fixed(
    tiny_bert: xdomain.LanguageBackbone,
) -> None:
    emb = tiny_bert.word_embeddings
    a, b = kmeans_centroids(emb, 16, seed=0), kmeans_centroids(emb.clone(), 16, seed=0)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert a.shape == (16, tiny_bert.hidden_size)
    with pytest.raises(ValueError, match="num_prototypes must be in"):
        kmeans_centroids(emb, emb.shape[0] + 1)
    trained = build_model(small_config("reprogram", prototypes="kmeans"), tiny_bert)
    fixed = build_model(small_config("reprogram", prototypes="kmeans-fixed"), tiny_bert)
    assert trained.transform.prototype_matrix.requires_grad
    assert "transform.prototype_matrix" in trained.trainable_state_dict()
    assert not any("prototype" in n for n, p in fixed.named_parameters() if p.requires_grad)
    assert "transform.prototype_matrix" in fixed.trainable_state_dict()  # saved, never recomputed on load
    torch.testing.assert_close(fixed.transform.prototypes(), a, rtol=0, atol=0)


# -- the prompt computed once ------------------------------------------------------------------------------
def test_a_cached_prompt_gives_the_uncached_forecast_on_a_causal_backbone(
    tiny_llama: xdomain.LanguageBackbone,
) -> None:
    x = torch.from_numpy(toy_series(3, LOOKBACK, seed=5))[None].repeat(2, 1, 1)
    outputs = []
    for cache in (False, True):
        set_seed(3)
        model = build_model(small_config("reprogram", linear_path="off", prefix_cache=cache), tiny_llama)
        with torch.no_grad():
            outputs.append(model.eval()(x))
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stats", ["digits", "soft", "off"])
def test_the_constant_first_prompt_shapes(stats: str, tiny_bert: xdomain.LanguageBackbone) -> None:
    model = build_model(small_config("reprogram", prompt_stats=stats, prefix_cache=False), tiny_bert)
    prompt = model.prompt
    z = torch.from_numpy(toy_series(2, LOOKBACK, seed=1).T.copy())  # (2, L)
    series = prompt.series_tokens(z)
    assert series.shape == (2, prompt.num_series_tokens, tiny_bert.hidden_size)
    assert prompt(z).shape == (2, prompt.length, tiny_bert.hidden_size)
    assert prompt.num_series_tokens == {"off": 0, "soft": 4}.get(stats, prompt.num_series_tokens)
    torch.testing.assert_close(prompt(z)[:, : prompt.constant_embeddings.shape[0]],
                               prompt.constant_embeddings.expand(2, -1, -1), rtol=0, atol=0)
    if stats == "soft":
        assert any(n.startswith("prompt.stats_mlp") for n, p in model.named_parameters() if p.requires_grad)


def test_the_interleaved_time_llm_prompt_cannot_be_cached() -> None:
    from xdomain.transforms.prompt import PromptAsPrefix

    with pytest.raises(ValueError, match=r"layout='interleaved' .* cannot be cached"):
        PromptAsPrefix(cache=True)


def test_bf16_forecasts_stay_within_a_stated_tolerance_of_fp32(tiny_bert: xdomain.LanguageBackbone) -> None:
    set_seed(0)
    model = build_model(small_config("reprogram", linear_path="off", prefix_cache=False), tiny_bert).eval()
    x = torch.from_numpy(toy_series(3, LOOKBACK, seed=5))[None].repeat(2, 1, 1)
    with torch.no_grad():
        fp32 = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = model(x).float()
    # bf16 keeps 8 bits of mantissa: within 2% of the forecasts' scale
    assert (bf16 - fp32).abs().max() <= 0.02 * fp32.abs().max()


# -- backtesting from Python -------------------------------------------------------------------------------
def fitted(model: str = "linear") -> xdomain.TimeSeriesForecaster:
    frame = hourly_frame(120)
    return xdomain.TimeSeriesForecaster(
        lookback=LOOKBACK, horizon=HORIZON, model=model, **SMALL_MODEL, **FAST_TRAIN
    ).fit(frame)


def test_cross_validation_windows_and_cutoffs_by_hand() -> None:
    fc = fitted()
    frame = hourly_frame(50, seed=3)
    cv = fc.cross_validation(frame, n_windows=2, step_size=4)
    assert list(cv.columns) == ["unique_id", "ds", "cutoff", "y", "y_hat"]
    assert len(cv) == 2 * 2 * HORIZON  # two series, two windows each
    a = cv[cv.unique_id == "a"]
    # 50 rows, horizon 8, two windows 4 apart: the forecasts start at rows 38 and 42
    assert list(a.cutoff.unique()) == [frame.index[37], frame.index[41]]
    assert list(a.ds) == list(frame.index[38:46]) + list(frame.index[42:50])
    np.testing.assert_array_equal(a.y.to_numpy(), np.r_[frame.a.to_numpy()[38:46], frame.a.to_numpy()[42:50]])
    # each window is the forecast of the rows up to its cutoff
    first = fc.predict(frame.iloc[:38])
    np.testing.assert_allclose(a.y_hat.to_numpy()[:HORIZON], first["a"].to_numpy(), rtol=1e-6)
    assert fc.cross_validation(frame).cutoff.unique().tolist() == [frame.index[41]]  # default: 1 window


def test_cross_validation_with_refit_fits_a_fresh_model_per_cutoff() -> None:
    fc = fitted()
    frame = hourly_frame(110, columns=("a",), seed=3)
    cv = fc.cross_validation(frame, n_windows=2, step_size=8, refit=True)
    assert len(cv) == 2 * HORIZON
    fresh = xdomain.TimeSeriesForecaster(**fc.get_params()).fit(frame.iloc[:94])
    np.testing.assert_allclose(cv.y_hat.to_numpy()[:HORIZON], fresh.predict(frame.iloc[:94])["a"], rtol=1e-5)


def test_evaluate_scores_every_window_on_the_standardised_scale() -> None:
    fc = fitted()
    frame = hourly_frame(60, seed=3)
    every = fc.evaluate(frame)
    assert every["windows"] == 2 * (60 - LOOKBACK - HORIZON + 1)
    cv = fc.cross_validation(frame, n_windows=60 - LOOKBACK - HORIZON + 1, step_size=1)
    std = np.array([fc.scaler_[u][1] for u in cv.unique_id])
    assert every["mse"] == pytest.approx(float(np.mean(((cv.y_hat - cv.y) / std) ** 2)), rel=1e-4)
    assert fc.evaluate(frame, n_windows=3)["mse"] > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_windows": 0}, "n_windows must be a positive integer, got 0"),
        ({"step_size": -1}, "step_size must be a positive integer, got -1"),
        ({"n_windows": 3, "step_size": 8},
         r"series 'a' has 50 rows; 3 window\(s\) of horizon 8, 8 steps apart, after a lookback of 32 need at "
         r"least 56"),
    ],
)
def test_cross_validation_rejects_bad_windows(kwargs: dict[str, Any], message: str) -> None:
    frame = hourly_frame(50, seed=3)
    before = frame.copy()
    with pytest.raises(ValueError, match=message):
        fitted().cross_validation(frame, **kwargs)
    pd.testing.assert_frame_equal(frame, before)


def test_cross_validation_and_evaluate_reject_series_the_model_never_saw() -> None:
    fc = fitted()
    other = hourly_frame(60, columns=("a", "zz"), seed=3)
    with pytest.raises(ValueError, match=r"df has series \['zz'\] that the model never saw"):
        fc.cross_validation(other)
    with pytest.raises(ValueError, match=r"df has series \['zz'\] that the model never saw"):
        fc.evaluate(other)
    with pytest.raises(ValueError, match="step_size needs n_windows"):
        fc.evaluate(hourly_frame(60), step_size=2)


# -- checkpoints of before the linear path ------------------------------------------------------------------
def test_a_checkpoint_of_before_the_linear_path_loads_as_time_llm(
    tiny_bert: xdomain.LanguageBackbone, tmp_path: Path
) -> None:
    frame = hourly_frame(100)
    fc = xdomain.TimeSeriesForecaster(
        backbone=tiny_bert, lookback=LOOKBACK, horizon=HORIZON, model="time-llm", **SMALL_MODEL, **FAST_TRAIN
    ).fit(frame)
    fc.save(tmp_path / "old")
    manifest = tmp_path / "old" / "xdomain.json"
    doc = json.loads(manifest.read_text())
    params = doc["params"]
    for key in ("linear_path", "prototypes", "prompt_stats", "prefix_cache", "validate_first"):
        params.pop(key)
    params["model"] = "reprogram"  # what Time-LLM was called then
    manifest.write_text(json.dumps(doc))
    loaded = xdomain.load(tmp_path / "old", backbone=tiny_bert)
    assert loaded.model == "time-llm" and loaded.linear_path == "off" and loaded.prototypes == "map"
    pd.testing.assert_frame_equal(loaded.predict(frame), fc.predict(frame), check_exact=True)


# -- DLinear's recipe --------------------------------------------------------------------------------------
def test_the_halving_schedule_halves_the_rate_after_every_epoch() -> None:
    from xdomain.training.loop import lr_factor

    factor = lr_factor("halving", steps_per_epoch=10, total=100)
    assert [factor(s) for s in (0, 9, 10, 19, 20, 35)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.125]
    assert lr_factor("constant", 10, 100)(57) == 1.0
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        xdomain.TrainConfig(lr_schedule="step")


def test_the_gradient_step_follows_the_chosen_schedule() -> None:
    from xdomain.training import Trainer

    model = build_model(small_config("dlinear"), None)
    config = xdomain.TrainConfig(batch_size=64, epochs=3, lr=0.01, lr_schedule="halving", progress=False)
    step = Trainer(model, config).make_step()
    step.start(steps_per_epoch=5, total=15)
    rates = []
    for _ in range(12):
        rates.append(step.optimizer.param_groups[0]["lr"])
        step.optimizer.step()
        step.scheduler.step()
    step.finish()
    assert rates == pytest.approx([0.01] * 5 + [0.005] * 5 + [0.0025] * 2)


@pytest.mark.parametrize(
    "settings",
    [
        {"prototypes": "kmeans-fixed"},
        {"prototypes": "map"},
        {"linear_path": "trainable"},
        {"linear_path": "off"},
        {"prompt_stats": "digits"},
        {"prompt_stats": "off", "prefix_cache": False},
    ],
    ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()),
)
def test_every_new_configuration_saves_and_loads_identically(
    settings: dict[str, Any], tiny_bert: xdomain.LanguageBackbone, tmp_path: Path
) -> None:
    frame = hourly_frame(100)
    frozen = {k: v.clone() for k, v in tiny_bert.state_dict().items()}
    fc = xdomain.TimeSeriesForecaster(
        backbone=tiny_bert, lookback=LOOKBACK, horizon=HORIZON, **SMALL_MODEL, **FAST_TRAIN, **settings
    ).fit(frame)
    assert all(torch.equal(v, frozen[k]) for k, v in tiny_bert.state_dict().items())  # bit for bit
    fc.save(tmp_path / "ckpt")
    loaded = xdomain.load(tmp_path / "ckpt", backbone=tiny_bert)
    assert {k: getattr(loaded, k) for k in settings} == settings
    pd.testing.assert_frame_equal(loaded.predict(frame), fc.predict(frame), check_exact=True)
    if settings.get("linear_path") == "trainable":
        assert fc.model_.linear.weight.requires_grad

"""Forecasting: the user-facing forecaster (pandas in, pandas out, a reprogrammed language model inside), the
models it builds, and the ETT benchmark protocol.

Models (``ForecastConfig.model``): ``reprogram`` is a closed-form linear path (ridge regression,
:mod:`xdomain.baselines.ridge`) plus the correction of a reprogrammed frozen language model (patch
reprogramming onto k-means text prototypes, a constant-first prompt whose constant text is cached, a
flatten head initialised at zero), so it starts as the linear model and validation decides whether the
language model improves on it; ``time-llm`` is Time-LLM as published; ``no-backbone`` and
``attention-only`` are the ablations of Tan et al. (NeurIPS 2024) in the same design: the language model's
layers removed or replaced by one trainable attention layer (no prompt: only the language model reads
it); ``linear`` is the ridge path alone and ``dlinear`` DLinear.

The ETT protocol (:func:`run_ett`): validation chooses (early stopping, best weights); the test split
only reports, on every window. Used by ``xdomain forecast`` and ``benchmarks/forecast_etth1.py``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from torch import nn

from xdomain.adapters.time_series import TimeSeriesAdapter
from xdomain.backbones.ablation import AttentionBackbone, IdentityBackbone
from xdomain.backbones.language import LanguageBackbone
from xdomain.backbones.loader import resolve_backbone
from xdomain.baselines.dlinear import DLinear
from xdomain.baselines.ridge import RidgeFit, RidgeForecaster
from xdomain.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from xdomain.config import TIME_LLM, ForecastConfig, TrainConfig
from xdomain.datasets.ett import ETTSplits, ett_splits
from xdomain.datasets.frames import SeriesTable, WindowDataset, check_fill, few_shot_rows, frame_to_table
from xdomain.estimators.schema import estimator_meta, json_param, read_estimator_meta
from xdomain.heads.forecast import FlattenHead
from xdomain.registry import ESTIMATORS, MODELS
from xdomain.reporting import PeakMemory
from xdomain.reprogrammer import Reprogrammer, check_backbone, load_trainable_state_dict, trainable_state_dict
from xdomain.training.loop import History
from xdomain.training.trainer import Trainer, set_seed
from xdomain.transforms.patch_reprogramming import PatchReprogrammingTransform
from xdomain.transforms.prompt import PromptAsPrefix

_FORECAST_FIELDS = {f.name for f in dataclasses.fields(ForecastConfig)}
_TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


# -- the forecasting models ------------------------------------------------------------------------------
class ResidualForecaster(Reprogrammer):
    """The linear path plus the reprogrammed model's correction: ``linear(x) + Reprogrammer(x)``.

    ``linear`` is a :class:`RidgeForecaster` fitted in closed form before training
    (:func:`fit_linear_path`); the Reprogrammer's head starts at zero and its adapter scales by each
    window's std without adding its mean, so at initialisation the model *is* the linear forecaster, and
    validation before the first step makes that start a candidate. Everything else (the trained tensors'
    names, ``save`` / ``load_trained``, ``features``) is the Reprogrammer's.
    """

    def __init__(self, linear: RidgeForecaster, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.linear(x) + super().forward(x)
        return out


def _prompt(config: ForecastConfig) -> PromptAsPrefix | None:
    if not config.prompt:
        return None
    if config.model == "time-llm":  # Time-LLM's template: the statistics as digits inside the text
        return PromptAsPrefix(config.description, config.lookback, config.horizon, config.top_k_lags)
    return PromptAsPrefix(
        config.description, config.lookback, config.horizon, config.top_k_lags,
        stats=config.prompt_stats, layout="constant-first", cache=config.prefix_cache,
    )


def _reprogrammer(config: ForecastConfig, backbone: Any, prompt: bool) -> nn.Module:
    residual = config.linear_path != "off"
    transform = PatchReprogrammingTransform(
        patch_len=config.patch_length,
        stride=config.patch_stride,
        d_model=config.d_model,
        n_heads=config.n_heads,
        d_keys=config.d_keys,
        num_prototypes=config.num_prototypes,
        dropout=config.dropout,
        prototypes=config.prototypes,
    )
    head = FlattenHead(config.horizon, d_ff=config.d_ff, dropout=config.dropout, zero_init=residual)
    parts = dict(
        backbone=backbone, transform=transform, head=head,
        adapter=TimeSeriesAdapter(decode_mean=not residual),
        prompt=_prompt(config) if prompt else None, lookback=config.lookback,
    )
    if not residual:
        return Reprogrammer(**parts)
    linear = RidgeForecaster(config.lookback, config.horizon, trainable=config.linear_path == "trainable")
    return ResidualForecaster(linear, **parts)


def _language(config: ForecastConfig, backbone: LanguageBackbone | None) -> LanguageBackbone:
    if backbone is None:
        loaded: LanguageBackbone = resolve_backbone(config.backbone, num_layers=config.backbone_layers)
        return loaded
    if config.backbone_layers is not None and backbone.num_layers != config.backbone_layers:
        raise ValueError(
            f"config asks for {config.backbone_layers} backbone layers, the given backbone has "
            f"{backbone.num_layers}"
        )
    return backbone


@MODELS.register("reprogram")
def reprogram(config: ForecastConfig, backbone: LanguageBackbone | None = None) -> nn.Module:
    """The linear path (``config.linear_path``) plus the reprogrammed language model's correction."""
    return _reprogrammer(config, _language(config, backbone), prompt=config.prompt)


@MODELS.register("time-llm")
def time_llm(config: ForecastConfig, backbone: LanguageBackbone | None = None) -> nn.Module:
    """Time-LLM as published (Jin et al., ICLR 2024): no linear path, the Linear(vocab -> prototypes) map,
    Prompt-as-Prefix with the statistics as digits inside the text (:data:`~xdomain.config.TIME_LLM`
    overrides those fields; the others, patching included, are the config's)."""
    faithful = ForecastConfig.from_dict({**config.to_dict(), **TIME_LLM})
    return _reprogrammer(faithful, _language(config, backbone), prompt=config.prompt)


@MODELS.register("no-backbone")
def no_backbone(config: ForecastConfig, backbone: LanguageBackbone | None = None) -> nn.Module:
    return _reprogrammer(config, IdentityBackbone(_language(config, backbone)), prompt=False)


@MODELS.register("attention-only")
def attention_only(config: ForecastConfig, backbone: LanguageBackbone | None = None) -> nn.Module:
    source = _language(config, backbone)
    return _reprogrammer(config, AttentionBackbone(source, config.n_heads, config.dropout), prompt=False)


@MODELS.register("linear")
def linear(config: ForecastConfig, backbone: LanguageBackbone | None = None) -> nn.Module:
    """Closed-form ridge regression (:mod:`xdomain.baselines.ridge`); no gradient training."""
    return RidgeForecaster(config.lookback, config.horizon)


@MODELS.register("dlinear")
def dlinear(config: ForecastConfig, backbone: LanguageBackbone | None = None) -> nn.Module:
    return DLinear(config.lookback, config.horizon, config.moving_avg)


def build_model(config: ForecastConfig, backbone: LanguageBackbone | None = None) -> nn.Module:
    """The forecasting model ``config.model`` names; ``backbone`` reuses an already loaded one."""
    return MODELS.get(config.model)(config, backbone)


def needs_backbone(config: ForecastConfig) -> bool:
    return config.model not in ("dlinear", "linear")


def linear_path(model: nn.Module) -> RidgeForecaster | None:
    """The closed-form part of a model: the ridge forecaster itself, or a residual model's linear path."""
    if isinstance(model, RidgeForecaster):
        return model
    if isinstance(model, ResidualForecaster):
        return model.linear
    return None


def _holdout(train: WindowDataset, fraction: float = 0.2) -> tuple[WindowDataset, WindowDataset]:
    """The training windows split in time within each series: the earlier ones fit, the last
    ``fraction`` validate (a gap of one horizon between them, so no fitting target is a validation one)."""
    fit_idx, val_idx = [], []
    index = np.asarray(train.index)
    for s in range(len(train.series)):
        lo, hi = int(train.offsets[s]), int(train.offsets[s + 1])
        mine = index[(index >= lo) & (index < hi)]
        if len(mine) == 0:
            continue
        cut = lo + int((hi - lo) * (1 - fraction))
        fit_idx.append(mine[mine < cut - train.horizon])
        val_idx.append(mine[mine >= cut])
    fit_ds, val_ds = copy.copy(train), copy.copy(train)
    fit_ds.index, val_ds.index = np.concatenate(fit_idx), np.concatenate(val_idx)
    if len(fit_ds) == 0 or len(val_ds) == 0:
        raise ValueError(
            f"too few training windows ({len(train)}) to choose the linear path's ridge strength on a "
            "held-out part; give validation data (fit(train_df, val_df)) or a longer training frame"
        )
    return fit_ds, val_ds


def fit_linear_path(model: nn.Module, train: WindowDataset, val: WindowDataset | None) -> RidgeFit | None:
    """Fit a model's linear path in closed form, its ridge strength and RevIN chosen on ``val`` (without
    one, on the last 20% of the training windows, and refitted on all of them). None if it has none."""
    path = linear_path(model)
    if path is None:
        return None
    if val is not None:
        return path.fit_closed_form(train, val)
    fit_ds, held = _holdout(train)
    chosen = path.fit_closed_form(fit_ds, held)
    refit = path.fit_closed_form(train, held, lambdas=[chosen.lam], revin=chosen.revin)
    refit.candidates = chosen.candidates
    return refit


def train_forecaster(
    model: nn.Module, config: ForecastConfig, train: TrainConfig, train_ds: WindowDataset,
    val_ds: WindowDataset | None,
) -> tuple[nn.Module, History]:
    """Fit the linear path in closed form (if the model has one), then train the rest by gradient with
    validation before the first step (the linear start is then a candidate). The linear model alone
    trains no further."""
    start = time.perf_counter()
    fit = fit_linear_path(model, train_ds, val_ds)
    closed_seconds = time.perf_counter() - start
    if isinstance(model, RidgeForecaster):
        assert fit is not None
        history = History(steps=0, epochs=0.0, train_seconds=closed_seconds, stopped="closed form")
        history.best_val_loss = fit.val_mse if val_ds is not None else math.inf
        history.records.append({"step": 0.0, "epoch": 0.0, "val_loss": fit.val_mse, "lambda": fit.lam,
                                "revin": float(fit.revin)})
        model.eval()
        return model, history
    if fit is not None:
        train = dataclasses.replace(train, validate_first=True)
    trainer = Trainer(model, train, model_name=config.model)
    history = trainer.fit(train_ds, val_ds)
    history.train_seconds += closed_seconds
    return trainer.model, history


@ESTIMATORS.register("TimeSeriesForecaster")
class TimeSeriesForecaster(BaseEstimator):
    """Forecast the next ``horizon`` steps of each series with a reprogrammed frozen language model.

    Args:
        backbone: alias (``minilm``), transformers name, local path, or a loaded :class:`LanguageBackbone`.
        lookback, horizon: input and output lengths.
        model: ``reprogram`` (the default: a closed-form linear path plus the reprogrammed language
            model's correction, initialised at zero), ``time-llm`` (Time-LLM as published), or a baseline:
            ``no-backbone``, ``attention-only`` (the same design without the language model), ``linear``
            (closed-form ridge regression), ``dlinear``.
        fill: what to do with NaN/inf values and with gaps in the time stamps (a missing hour of hourly
            data): None (an error naming the first one), ``ffill``, ``interpolate`` or ``zero``.
        backbone_layers ... prefix_cache: the model's settings, the fields of :class:`ForecastConfig`.
        epochs ... validate_first: the training settings, the fields of :class:`TrainConfig` (here
            ``validate_first`` defaults to True; a model with a linear path always validates first).

    A scikit-learn estimator: the arguments are stored as given (``get_params``, ``set_params`` and
    ``clone`` see every one) and checked by :meth:`fit`; :attr:`config` and :attr:`train_config` are
    the validated settings.

    Example::

        fc = TimeSeriesForecaster(backbone="minilm", lookback=512, horizon=96)
        fc.fit(train_df, val_df)        # wide (a column per series) or long (unique_id, ds, y)
        pred = fc.predict(history_df)   # the next 96 steps of each series
        fc.save("runs/etth1"); fc2 = xdomain.load("runs/etth1")
    """

    def __init__(
        self,
        backbone: str | LanguageBackbone = "minilm",
        lookback: int = 512,
        horizon: int = 96,
        model: str = "reprogram",
        fill: str | None = None,
        *,
        # ForecastConfig: the model
        backbone_layers: int | None = None,
        patch_len: int | None = None,
        stride: int | None = None,
        d_model: int = 32,
        n_heads: int = 8,
        d_keys: int = 128,
        num_prototypes: int = 1000,
        d_ff: int = 128,
        dropout: float = 0.1,
        prompt: bool = True,
        description: str = "",
        top_k_lags: int = 5,
        moving_avg: int = 25,
        linear_path: str = "fixed",
        prototypes: str = "kmeans",
        prompt_stats: str = "soft",
        prefix_cache: bool = True,
        # TrainConfig: the training
        epochs: int = 10,
        batch_size: int = 32,
        lr: float | None = None,
        weight_decay: float = 0.0,
        patience: int = 3,
        seed: int = 2021,
        train_fraction: float = 1.0,
        max_steps: int | None = None,
        max_train_seconds: float | None = None,
        val_every: int | None = None,
        val_windows: int | None = None,
        eval_batch_size: int = 256,
        mixed_precision: str = "no",
        progress: bool = True,
        lr_schedule: str = "warmup-cosine",
        validate_first: bool = True,
    ) -> None:
        # scikit-learn's convention: store the arguments as given; they are validated by fit (and by the
        # ``config`` / ``train_config`` properties), so get_params, set_params and clone see them all
        self.backbone = backbone
        self.lookback = lookback
        self.horizon = horizon
        self.model = model
        self.fill = fill
        self.backbone_layers = backbone_layers
        self.patch_len = patch_len
        self.stride = stride
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_keys = d_keys
        self.num_prototypes = num_prototypes
        self.d_ff = d_ff
        self.dropout = dropout
        self.prompt = prompt
        self.description = description
        self.top_k_lags = top_k_lags
        self.moving_avg = moving_avg
        self.linear_path = linear_path
        self.prototypes = prototypes
        self.prompt_stats = prompt_stats
        self.prefix_cache = prefix_cache
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.seed = seed
        self.train_fraction = train_fraction
        self.max_steps = max_steps
        self.max_train_seconds = max_train_seconds
        self.val_every = val_every
        self.val_windows = val_windows
        self.eval_batch_size = eval_batch_size
        self.mixed_precision = mixed_precision
        self.progress = progress
        self.lr_schedule = lr_schedule
        self.validate_first = validate_first

    # -- settings ---------------------------------------------------------------------------------
    @property
    def config(self) -> ForecastConfig:
        """The model's settings as a validated :class:`ForecastConfig` (an error names a bad value)."""
        fields = {k: getattr(self, k) for k in _FORECAST_FIELDS if k != "backbone"}
        backbone = self.backbone
        if isinstance(backbone, LanguageBackbone) and fields["backbone_layers"] is None:
            # a truncated backbone object: record its depth so that load() by name rebuilds the same model
            fields["backbone_layers"] = backbone.num_layers
        name = backbone if isinstance(backbone, str) else getattr(backbone, "name", "custom")
        return ForecastConfig(backbone=name, **fields)

    @property
    def train_config(self) -> TrainConfig:
        """The training settings as a validated :class:`TrainConfig`."""
        return TrainConfig(**{k: getattr(self, k) for k in _TRAIN_FIELDS})

    def _check_settings(self) -> tuple[ForecastConfig, TrainConfig]:
        check_fill(self.fill)
        return self.config, self.train_config

    # -- training ---------------------------------------------------------------------------------
    def _build(self) -> nn.Module:
        set_seed(self.train_config.seed)
        if not needs_backbone(self.config):
            return build_model(self.config)
        given = self.backbone if isinstance(self.backbone, LanguageBackbone) else None
        return build_model(self.config, given)

    def _scaler(self, name: str, arr: np.ndarray) -> tuple[float, float]:
        """The series' training mean and std; a series not seen in training is scaled by its own."""
        return getattr(self, "scaler_", {}).get(name) or (float(arr.mean()), float(arr.std()) or 1.0)

    def _scaled(self, table: SeriesTable) -> list[np.ndarray]:
        out = []
        for name, arr in zip(table.names, table.arrays, strict=True):
            mean, std = self._scaler(name, arr)
            out.append((arr - mean) / std)
        return out

    def fit(self, train_df: pd.DataFrame, val_df: pd.DataFrame | None = None) -> TimeSeriesForecaster:
        """Train on ``train_df``; with ``val_df`` (the same series, the rows that follow), keep the
        weights with the lowest validation loss and stop early. Returns ``self``. Every setting is
        checked here, before any data or weights are touched."""
        cfg, tcfg = self._check_settings()
        need = cfg.lookback + cfg.horizon
        table = frame_to_table(train_df, self.fill, min_length=need)
        self.scaler_: dict[str, tuple[float, float]] = {}
        self.scaler_ = {n: self._scaler(n, a) for n, a in zip(table.names, table.arrays, strict=True)}
        scaled = self._scaled(table)
        train_segments = [s[: few_shot_rows(len(s), cfg.lookback, tcfg.train_fraction)] for s in scaled]
        train_ds = WindowDataset(train_segments, cfg.lookback, cfg.horizon)
        val_ds = None
        if val_df is not None:
            vtable = frame_to_table(val_df, self.fill, min_length=cfg.horizon)
            unknown = sorted(set(vtable.names) - set(table.names))
            if unknown:
                raise ValueError(
                    f"val_df has series {unknown} that train_df lacks; expected a subset of {table.names}"
                )
            context = dict(zip(table.names, scaled, strict=True))
            segments = [
                np.concatenate([context[n][-cfg.lookback :], v])
                for n, v in zip(vtable.names, self._scaled(vtable), strict=True)
            ]
            val_ds = WindowDataset(segments, cfg.lookback, cfg.horizon, max_windows=tcfg.val_windows)
        model = self._build()
        self.model_: nn.Module
        self.history_: History | None
        self.model_, self.history_ = train_forecaster(model, cfg, tcfg, train_ds, val_ds)
        return self

    # -- inference --------------------------------------------------------------------------------
    def _check_fitted(self) -> nn.Module:
        model: nn.Module | None = getattr(self, "model_", None)
        if model is None:
            raise NotFittedError("this TimeSeriesForecaster is not fitted yet; call fit() or load() first")
        return model

    @torch.no_grad()
    def predict_array(self, windows: np.ndarray | torch.Tensor) -> np.ndarray:
        """Forecast from already scaled windows ``(B, lookback, N)`` -> ``(B, horizon, N)``."""
        model = self._check_fitted()
        x = torch.as_tensor(np.asarray(windows, dtype=np.float32))
        if x.ndim != 3 or x.shape[1] != self.config.lookback:
            raise ValueError(f"windows must be (B, {self.config.lookback}, N), got {tuple(x.shape)}")
        bad = ~torch.isfinite(x)
        if bad.any():
            b, t, n = (int(i) for i in bad.nonzero()[0])
            raise ValueError(
                f"windows hold {int(bad.sum())} NaN or infinite values (the first at window {b}, step {t}, "
                f"channel {n}: {float(x[b, t, n])!r}); expected finite values (fill them first, e.g. with "
                "TimeSeriesForecaster(fill=...) and predict on the DataFrame)"
            )
        model.eval()
        return Trainer(model, self.train_config).predict(x).numpy()

    def predict(self, history_df: pd.DataFrame) -> pd.DataFrame:
        """The next ``horizon`` steps after the last ``lookback`` rows of each series in ``history_df``.

        Wide in, wide out (a future ``DatetimeIndex`` where the input has one); long in, long out.
        """
        self._check_fitted()
        cfg = self.config
        table = frame_to_table(history_df, self.fill, min_length=cfg.lookback)
        scaled = self._scaled(table)
        x = np.stack([s[-cfg.lookback :] for s in scaled])[:, :, None]  # (S, L, 1)
        y = self.predict_array(x)[:, :, 0]  # (S, H)
        frames = []
        for i, (name, label) in enumerate(zip(table.names, table.labels, strict=True)):
            mean, std = self._scaler(name, table.arrays[i])
            values = y[i] * std + mean
            last, freq = table.last_stamp[i], table.freqs[i]
            if freq is not None:
                index: pd.Index = pd.date_range(start=last + freq, periods=cfg.horizon, freq=freq)
            elif isinstance(last, (int, np.integer)):
                index = pd.RangeIndex(int(last) + 1, int(last) + 1 + cfg.horizon)
            else:
                index = pd.RangeIndex(1, cfg.horizon + 1)
            frames.append(pd.Series(values, index=index, name=label))
        if table.layout == "wide":
            out = pd.concat(frames, axis=1)
            out.index.name = history_df.index.name
            return out
        return pd.concat(
            [pd.DataFrame({"unique_id": s.name, "ds": s.index, "y": s.to_numpy()}) for s in frames],
            ignore_index=True,
        )

    # -- evaluation -------------------------------------------------------------------------------
    def _known(self, table: SeriesTable) -> None:
        pairs = zip(table.names, table.labels, strict=True)
        unknown = [label for name, label in pairs if name not in self.scaler_]
        if unknown:
            raise ValueError(
                f"df has series {unknown} that the model never saw in training; expected some of "
                f"{sorted(self.scaler_)} (a forecaster scales each series by its training statistics)"
            )

    def cross_validation(
        self, df: pd.DataFrame, n_windows: int = 1, step_size: int | None = None, refit: bool = False
    ) -> pd.DataFrame:
        """Backtest on the last ``n_windows`` forecast windows of each series, ``step_size`` steps apart
        (default: the horizon), the last ending at the series' last row; each forecast reads the
        ``lookback`` rows before its cutoff. As in NeuralForecast / statsforecast, a long DataFrame:
        ``unique_id, ds, cutoff, y, y_hat`` (``cutoff``: the last time stamp the forecast saw).

        ``refit=False`` (default) forecasts every window with the fitted model; ``refit=True`` fits a
        fresh copy (same settings) on each series' rows up to each cutoff first (slow: one fit a window).
        """
        self._check_fitted()
        cfg = self.config
        for name, value in (("n_windows", n_windows), ("step_size", step_size)):
            if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool)
                                      or value <= 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        step = int(step_size) if step_size is not None else cfg.horizon
        table = frame_to_table(df, self.fill, min_length=1)
        self._known(table)
        span = (int(n_windows) - 1) * step + cfg.horizon  # rows from the first cutoff to the end
        for label, arr in zip(table.labels, table.arrays, strict=True):
            if len(arr) < cfg.lookback + span:
                raise ValueError(
                    f"series {label!r} has {len(arr)} rows; {n_windows} window(s) of horizon {cfg.horizon}, "
                    f"{step} steps apart, after a lookback of {cfg.lookback} need at least "
                    f"{cfg.lookback + span}"
                )
        frames = []
        scaled = self._scaled(table)
        for i, (label, arr) in enumerate(zip(table.labels, table.arrays, strict=True)):
            stamps = _stamps(table, i)
            cuts = [len(arr) - span + k * step for k in range(int(n_windows))]  # first forecast row
            if refit:
                preds = [self._refit_forecast(table, i, cut) for cut in cuts]
            else:
                x = np.stack([scaled[i][c - cfg.lookback : c] for c in cuts])[:, :, None]
                mean, std = self._scaler(table.names[i], arr)
                preds = list(self.predict_array(x)[:, :, 0] * std + mean)
            for cut, pred in zip(cuts, preds, strict=True):
                frames.append(pd.DataFrame({
                    "unique_id": label,
                    "ds": stamps[cut : cut + cfg.horizon],
                    "cutoff": stamps[cut - 1],
                    "y": arr[cut : cut + cfg.horizon].astype(np.float64),
                    "y_hat": np.asarray(pred, dtype=np.float64),
                }))
        return pd.concat(frames, ignore_index=True)

    def _refit_forecast(self, table: SeriesTable, i: int, cut: int) -> np.ndarray:
        from sklearn.base import clone

        history = pd.DataFrame({table.labels[i]: table.arrays[i][:cut]}, index=_stamps(table, i)[:cut])
        fresh = clone(self)
        fresh.fit(history)
        return fresh.predict(history).iloc[:, 0].to_numpy()

    def evaluate(
        self, df: pd.DataFrame, n_windows: int | None = None, step_size: int | None = None
    ) -> dict[str, float]:
        """MSE and MAE of the forecasts over ``df``: by default over every window (``lookback`` rows in,
        the next ``horizon`` out, every start; a progress bar), else over :meth:`cross_validation`'s
        windows. Errors are on the standardised scale (each series by its training mean and std, as the
        ETT benchmarks report); :meth:`cross_validation` gives the forecasts in the data's units."""
        model = self._check_fitted()
        cfg = self.config
        if n_windows is not None:
            cv = self.cross_validation(df, n_windows=n_windows, step_size=step_size)
            scale = np.array([self.scaler_[str(u)][1] for u in cv["unique_id"]])
            err = (cv["y_hat"] - cv["y"]).to_numpy()
            return {"mse": float(np.mean((err / scale) ** 2)), "mae": float(np.mean(np.abs(err / scale))),
                    "windows": float(len(cv) // cfg.horizon)}
        if step_size is not None:
            raise ValueError(f"step_size needs n_windows (got step_size={step_size!r}, n_windows=None)")
        table = frame_to_table(df, self.fill, min_length=cfg.lookback + cfg.horizon)
        self._known(table)
        scaled = WindowDataset(self._scaled(table), cfg.lookback, cfg.horizon)
        out = Trainer(model, self.train_config).evaluate(scaled)
        return {"mse": out["mse"], "mae": out["mae"], "windows": out["windows"]}

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """Write only the trained tensors (safetensors) and the settings (JSON) into folder ``path``
        (the schema of :mod:`xdomain.estimators.schema`); an existing checkpoint there is replaced only
        with ``overwrite=True`` (see :mod:`xdomain.checkpoint`)."""
        model = self._check_fitted()
        backbone = getattr(model, "backbone", None)
        config = self.config
        # the backbone by its name (a loaded object named "minilm" reloads by that name) and its depth
        params = {k: json_param(v) for k, v in self.get_params(deep=False).items()}
        params.update(backbone=config.backbone, backbone_layers=config.backbone_layers)
        meta = estimator_meta(self, {"scaler": self.scaler_}, params)
        meta["backbone"] = backbone.spec() if backbone is not None and hasattr(backbone, "spec") else None
        save_checkpoint(path, trainable_state_dict(model), meta, overwrite=overwrite)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], backbone: LanguageBackbone | None = None
    ) -> TimeSeriesForecaster:
        """Rebuild a saved forecaster; the backbone is loaded by the name in the checkpoint unless given.
        Checkpoints of xdomain 0.1 (settings as ``forecast_config`` / ``train_config``) load too."""
        params, extra, history, meta = read_estimator_meta(path, cls, upgrade=_upgrade_meta)
        where = str(path)
        if "linear_path" not in params:
            # written before the linear path existed: "reprogram" was Time-LLM, and its ablations had
            # Time-LLM's design too
            params = {**params, **TIME_LLM}
            if params.get("model") == "reprogram":
                params["model"] = "time-llm"
        fc = cls(**params)
        try:
            config, _ = fc._check_settings()
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"checkpoint {where!r} holds settings that cannot be used: {err}") from err
        scaler = _saved_scaler(extra.get("scaler"), where)
        saved = meta.get("backbone") or {}
        if backbone is None and needs_backbone(config) and saved.get("name") == "custom":
            raise CheckpointError("this checkpoint was made with an in-memory backbone; pass it as backbone=")
        if backbone is not None:
            fc.backbone = backbone
        tensors, _ = load_checkpoint(path)
        depth = config.backbone_layers
        if backbone is not None and depth is not None and backbone.num_layers != depth:
            raise CheckpointError(
                f"checkpoint {where!r} was made with {depth} backbone layers, the given backbone has "
                f"{backbone.num_layers} ({backbone.name!r})"
            )
        model = fc._build()
        if hasattr(model, "backbone"):
            check_backbone(saved, model.backbone)
        load_trainable_state_dict(model, tensors, where)
        model.eval()
        fc.model_ = model
        fc.scaler_ = scaler
        fc.history_ = history
        return fc


def _stamps(table: SeriesTable, i: int) -> pd.Index:
    """The time stamps of series ``i`` of ``table``: back from its last stamp by its frequency (an
    integer index by 1; no index at all: positions 0 .. T-1)."""
    n, last, freq = len(table.arrays[i]), table.last_stamp[i], table.freqs[i]
    if freq is not None:
        return pd.date_range(end=last, periods=n, freq=freq)
    if isinstance(last, (int, np.integer)):
        return pd.RangeIndex(int(last) - n + 1, int(last) + 1)
    return pd.RangeIndex(0, n)


def _upgrade_meta(meta: dict[str, Any], where: str) -> dict[str, Any]:
    """A forecaster manifest of xdomain 0.1 (``forecast_config``, ``train_config``, ``fill``, ``scaler``)
    in today's schema (``params``, ``extra``)."""
    missing = [k for k in ("forecast_config", "train_config", "scaler", "backbone") if k not in meta]
    if missing:
        raise CheckpointError(
            f"checkpoint {where!r} lacks the key(s) {missing}; expected a TimeSeriesForecaster checkpoint "
            "to hold params, extra and backbone (or, written by xdomain 0.1, forecast_config, train_config, "
            "scaler and backbone)"
        )
    settings = [meta["forecast_config"], meta["train_config"]]
    if not all(isinstance(d, dict) for d in settings):
        raise CheckpointError(f"checkpoint {where!r} holds settings that are not JSON objects: {settings!r}")
    params = {**settings[0], **settings[1], "fill": meta.get("fill")}
    return {**meta, "params": params, "extra": {"scaler": meta["scaler"]}}


def _saved_scaler(saved: Any, where: str) -> dict[str, tuple[float, float]]:
    """The training mean and std of each series, from a checkpoint; without them a forecast would be
    scaled by the input's own statistics, silently, so a missing or broken scaler is an error."""
    expected = "expected the training [mean, std] of each series (std > 0)"
    if not isinstance(saved, dict) or not saved:
        raise CheckpointError(f"checkpoint {where!r} has no scaler statistics (scaler={saved!r}); {expected}")
    out = {}
    for name, value in saved.items():
        try:
            mean, std = (float(v) for v in value)
        except (TypeError, ValueError) as err:
            raise CheckpointError(
                f"checkpoint {where!r} has a broken scaler for series {name!r}: {value!r}; {expected}"
            ) from err
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise CheckpointError(
                f"checkpoint {where!r} has a broken scaler for series {name!r}: {value!r}; {expected}"
            )
        out[str(name)] = (mean, std)
    return out


# -- the ETT benchmark protocol (the CLI and benchmarks/forecast_etth1.py) --------------------------------
@dataclasses.dataclass
class RunResult:
    """One model trained and evaluated on one data set."""

    model: str
    dataset: str
    mse: float
    mae: float
    val_mse: float
    trainable_params: int
    train_windows: int
    test_windows: int
    steps: int
    epochs: float
    stopped: str
    train_seconds: float
    seconds_per_epoch: float
    infer_windows_per_second: float
    peak_memory_mb: float
    added_memory_mb: float
    forecaster: TimeSeriesForecaster | None = dataclasses.field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "forecaster"}


def fitted_parameters(model: nn.Module) -> int:
    """Parameters set from data: those trained by gradient and a linear path fitted in closed form."""
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    path = linear_path(model)
    if path is not None and not path.weight.requires_grad:
        count += path.weight.numel() + path.bias.numel()
    return count


def ett_datasets(
    splits: ETTSplits, config: ForecastConfig, train: TrainConfig
) -> tuple[WindowDataset, WindowDataset, WindowDataset]:
    """Train (first ``train_fraction`` of the span), validation (optionally thinned) and full test windows."""
    rows = few_shot_rows(len(splits.train), config.lookback, train.train_fraction)
    return (
        WindowDataset([splits.train[:rows]], config.lookback, config.horizon),
        WindowDataset([splits.val], config.lookback, config.horizon, max_windows=train.val_windows),
        WindowDataset([splits.test], config.lookback, config.horizon),
    )


def run_ett(
    config: ForecastConfig,
    train: TrainConfig,
    dataset: str = "ETTh1",
    data_home: str | os.PathLike[str] | None = None,
    backbone: LanguageBackbone | None = None,
    splits: ETTSplits | None = None,
) -> RunResult:
    """Train ``config.model`` on an ETT data set with the published protocol and report test MSE/MAE."""
    splits = splits or ett_splits(dataset, config.lookback, data_home)
    train_ds, val_ds, test_ds = ett_datasets(splits, config, train)
    if backbone is None and needs_backbone(config):
        backbone = resolve_backbone(config.backbone, num_layers=config.backbone_layers)
    with PeakMemory() as memory:
        set_seed(train.seed)
        model = build_model(config, backbone)
        model, history = train_forecaster(model, config, train, train_ds, val_ds)
        start = time.perf_counter()
        test = Trainer(model, train, model_name=config.model).evaluate(test_ds)
        infer_seconds = time.perf_counter() - start
    forecaster = TimeSeriesForecaster(
        backbone=backbone if backbone is not None else config.backbone,
        **{k: v for k, v in config.to_dict().items() if k != "backbone"},
        **train.to_dict(),
    )
    forecaster.model_ = model
    forecaster.history_ = history
    # the data were standardised with train statistics before the model saw them
    forecaster.scaler_ = {
        c: (float(m), float(s)) for c, m, s in zip(splits.columns, splits.mean, splits.std, strict=True)
    }
    return RunResult(
        model=config.model,
        dataset=splits.name,
        mse=test["mse"],
        mae=test["mae"],
        val_mse=history.best_val_loss,
        trainable_params=fitted_parameters(model),
        train_windows=len(train_ds),
        test_windows=int(test["windows"]),
        steps=history.steps,
        epochs=history.epochs,
        stopped=history.stopped,
        train_seconds=history.train_seconds,
        seconds_per_epoch=history.seconds_per_epoch,
        infer_windows_per_second=len(test_ds) / infer_seconds,
        peak_memory_mb=memory.peak_mb,
        added_memory_mb=memory.added_mb,
        forecaster=forecaster,
    )


def plot_forecasts(
    splits: ETTSplits,
    results: list[RunResult],
    path: str | os.PathLike[str],
    channel: str = "OT",
    window: int = -1,
) -> Path:
    """Plot one test window of ``channel``: the history, the truth and every model's forecast."""
    # a Figure with its own Agg canvas: no pyplot, so the caller's matplotlib backend is left alone
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fitted = [r for r in results if r.forecaster is not None]
    if not fitted:
        raise ValueError("no fitted forecaster to plot")
    cfg = fitted[0].forecaster.config  # type: ignore[union-attr]
    ch = splits.columns.index(channel)
    series = splits.test[:, ch]
    n = len(series) - cfg.lookback - cfg.horizon + 1
    start = window % n
    x = series[start : start + cfg.lookback]
    y = series[start + cfg.lookback : start + cfg.lookback + cfg.horizon]
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shown = min(cfg.lookback, 192)
    t_hist = np.arange(-shown, 0)
    t_future = np.arange(cfg.horizon)
    ax.plot(t_hist, x[-shown:], color="black", lw=1, label="history")
    ax.plot(t_future, y, color="black", lw=1.5, ls="--", label="truth")
    for r in fitted:
        pred = r.forecaster.predict_array(x[None, :, None])[0, :, 0]  # type: ignore[union-attr]
        ax.plot(t_future, pred, lw=1.5, label=f"{r.model} (test MSE {r.mse:.3f})")
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_xlabel("steps (hours) from the forecast origin")
    ax.set_ylabel(f"{channel} (standardised)")
    ax.set_title(f"{splits.name}: last test window, lookback {cfg.lookback}, horizon {cfg.horizon}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def results_table(results: list[RunResult], baseline: str | None = None) -> str:
    """A markdown table of the runs, with each MSE as a ratio to the baseline's (default: the linear
    model's, else DLinear's, when it ran)."""
    if baseline is None:
        ran = {r.model for r in results}
        baseline = next((m for m in ("linear", "dlinear") if m in ran), "linear")
    base = next((r for r in results if r.model == baseline), None)
    lines = [
        "| model | test MSE | test MAE | MSE / " + baseline + " | val MSE | trainable params | train windows "
        "| steps | epochs | train s | s / epoch | infer windows / s | peak MB | added MB | stopped |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = f"{r.mse / base.mse:.3f}" if base is not None else "-"
        lines.append(
            f"| {r.model} | {r.mse:.4f} | {r.mae:.4f} | {ratio} | {r.val_mse:.4f} | {r.trainable_params:,} | "
            f"{r.train_windows:,} | {r.steps} | {r.epochs:.2f} | {r.train_seconds:.1f} | "
            f"{r.seconds_per_epoch:.1f} | {r.infer_windows_per_second:.1f} | {r.peak_memory_mb:.0f} | "
            f"{r.added_memory_mb:.0f} | {r.stopped} |"
        )
    return "\n".join(lines)


__all__ = [
    "ResidualForecaster",
    "RunResult",
    "TimeSeriesForecaster",
    "build_model",
    "ett_datasets",
    "fit_linear_path",
    "fitted_parameters",
    "linear_path",
    "needs_backbone",
    "plot_forecasts",
    "results_table",
    "run_ett",
    "train_forecaster",
]

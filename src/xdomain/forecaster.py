"""The user-facing forecaster: pandas in, pandas out, a reprogrammed language model inside."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from xdomain.backbones.language import LanguageBackbone
from xdomain.checkpoint import CheckpointError, load_checkpoint, read_meta, save_checkpoint
from xdomain.config import ForecastConfig, TrainConfig
from xdomain.datasets.frames import SeriesTable, WindowDataset, check_fill, few_shot_rows, frame_to_table
from xdomain.models import build_model, needs_backbone
from xdomain.reprogrammer import check_backbone, load_trainable_state_dict, trainable_state_dict
from xdomain.training.trainer import History, Trainer, set_seed

_FORECAST_FIELDS = {f.name for f in dataclasses.fields(ForecastConfig)}
_TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def _split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    unknown = sorted(set(options) - _FORECAST_FIELDS - _TRAIN_FIELDS)
    if unknown:
        raise TypeError(
            f"unknown options {unknown}; expected fields of ForecastConfig {sorted(_FORECAST_FIELDS)} "
            f"or TrainConfig {sorted(_TRAIN_FIELDS)}"
        )
    return (
        {k: v for k, v in options.items() if k in _FORECAST_FIELDS},
        {k: v for k, v in options.items() if k in _TRAIN_FIELDS},
    )


class TimeSeriesForecaster:
    """Forecast the next ``horizon`` steps of each series with a reprogrammed frozen language model.

    Args:
        backbone: alias (``minilm``), transformers name, local path, or a loaded :class:`LanguageBackbone`.
        lookback, horizon: input and output lengths.
        model: ``reprogram`` (Time-LLM), or a baseline: ``no-backbone``, ``attention-only``, ``dlinear``.
        fill: what to do with NaN/inf values and with gaps in the time stamps (a missing hour of hourly
            data): None (an error naming the first one), ``ffill``, ``interpolate`` or ``zero``.
        **options: any field of :class:`ForecastConfig` or :class:`TrainConfig` (``epochs``, ``lr``,
            ``train_fraction``, ``max_train_seconds``, ``prompt``, ``description``, ...).

    Example::

        fc = TimeSeriesForecaster(backbone="minilm", lookback=512, horizon=96)
        fc.fit(train_df, val_df)        # wide (a column per series) or long (unique_id, ds, y)
        pred = fc.predict(history_df)   # the next 96 steps of each series
        fc.save("runs/etth1"); fc2 = load("runs/etth1")
    """

    def __init__(
        self,
        backbone: str | LanguageBackbone = "minilm",
        lookback: int = 512,
        horizon: int = 96,
        model: str = "reprogram",
        fill: str | None = None,
        **options: Any,
    ) -> None:
        check_fill(fill)
        self.backbone = backbone
        self.fill = fill
        model_opts, train_opts = _split_options(options)
        name = backbone if isinstance(backbone, str) else backbone.name
        if isinstance(backbone, LanguageBackbone) and model_opts.get("backbone_layers") is None:
            # a truncated backbone object: record its depth so that load() by name rebuilds the same model
            model_opts["backbone_layers"] = backbone.num_layers
        # the configs validate every setting now, before any data or weights are touched
        self.config = ForecastConfig(
            lookback=lookback, horizon=horizon, model=model, backbone=name, **model_opts
        )
        self.train_config = TrainConfig(**train_opts)
        self.model_: nn.Module | None = None
        self.history_: History | None = None
        self.scaler_: dict[str, tuple[float, float]] = {}

    # -- training ---------------------------------------------------------------------------------
    def _build(self) -> nn.Module:
        set_seed(self.train_config.seed)
        if not needs_backbone(self.config):
            return build_model(self.config)
        given = self.backbone if isinstance(self.backbone, LanguageBackbone) else None
        return build_model(self.config, given)

    def _scaler(self, name: str, arr: np.ndarray) -> tuple[float, float]:
        """The series' training mean and std; a series not seen in training is scaled by its own."""
        return self.scaler_.get(name) or (float(arr.mean()), float(arr.std()) or 1.0)

    def _scaled(self, table: SeriesTable) -> list[np.ndarray]:
        out = []
        for name, arr in zip(table.names, table.arrays, strict=True):
            mean, std = self._scaler(name, arr)
            out.append((arr - mean) / std)
        return out

    def fit(self, train_df: pd.DataFrame, val_df: pd.DataFrame | None = None) -> TimeSeriesForecaster:
        """Train on ``train_df``; with ``val_df`` (the same series, the rows that follow), keep the
        weights with the lowest validation loss and stop early. Returns ``self``."""
        cfg, tcfg = self.config, self.train_config
        need = cfg.lookback + cfg.horizon
        table = frame_to_table(train_df, self.fill, min_length=need)
        self.scaler_ = {}
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
        trainer = Trainer(model, tcfg, model_name=cfg.model)
        self.history_ = trainer.fit(train_ds, val_ds)
        self.model_ = trainer.model
        return self

    # -- inference --------------------------------------------------------------------------------
    def _check_fitted(self) -> nn.Module:
        if self.model_ is None:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this TimeSeriesForecaster is not fitted yet; call fit() or load() first")
        return self.model_

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

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """Write only the trained tensors (safetensors) and the settings (JSON) into folder ``path``; an
        existing checkpoint there is replaced only with ``overwrite=True`` (see :mod:`xdomain.checkpoint`)."""
        model = self._check_fitted()
        backbone = getattr(model, "backbone", None)
        meta = {
            "kind": "TimeSeriesForecaster",
            "forecast_config": self.config.to_dict(),
            "train_config": self.train_config.to_dict(),
            "fill": self.fill,
            "scaler": self.scaler_,
            "backbone": backbone.spec() if backbone is not None and hasattr(backbone, "spec") else None,
            "history": dataclasses.asdict(self.history_) if self.history_ is not None else None,
        }
        save_checkpoint(path, trainable_state_dict(model), meta, overwrite=overwrite)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], backbone: LanguageBackbone | None = None
    ) -> TimeSeriesForecaster:
        """Rebuild a saved forecaster; the backbone is loaded by the name in the checkpoint unless given."""
        meta = read_meta(path)
        if meta.get("kind") != "TimeSeriesForecaster":
            raise CheckpointError(
                f"{str(path)!r} holds a {meta.get('kind')!r}, expected a TimeSeriesForecaster"
            )
        missing = [k for k in ("forecast_config", "train_config", "scaler", "backbone") if k not in meta]
        if missing:
            raise CheckpointError(
                f"checkpoint {str(path)!r} lacks the key(s) {missing}; expected a TimeSeriesForecaster "
                "checkpoint to hold forecast_config, train_config, scaler and backbone"
            )
        try:
            config = ForecastConfig.from_dict(meta["forecast_config"])
            TrainConfig.from_dict(meta["train_config"])  # names any unknown field
        except (TypeError, ValueError) as err:
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds settings that cannot be used: {err}"
            ) from err
        scaler = _saved_scaler(meta["scaler"], str(path))
        options = {
            k: v for k, v in config.to_dict().items() if k not in ("lookback", "horizon", "model", "backbone")
        }
        options.update(meta["train_config"])
        saved = meta.get("backbone") or {}
        if backbone is None and needs_backbone(config) and saved.get("name") == "custom":
            raise CheckpointError("this checkpoint was made with an in-memory backbone; pass it as backbone=")
        fc = cls(
            backbone=backbone if backbone is not None else config.backbone,
            lookback=config.lookback,
            horizon=config.horizon,
            model=config.model,
            fill=meta.get("fill"),
            **options,
        )
        tensors, _ = load_checkpoint(path)
        depth = config.backbone_layers
        if backbone is not None and depth is not None and backbone.num_layers != depth:
            raise CheckpointError(
                f"checkpoint {str(path)!r} was made with {depth} backbone layers, the given backbone has "
                f"{backbone.num_layers} ({backbone.name!r})"
            )
        model = fc._build()
        if hasattr(model, "backbone"):
            check_backbone(saved, model.backbone)
        load_trainable_state_dict(model, tensors, str(path))
        model.eval()
        fc.model_ = model
        fc.scaler_ = scaler
        if meta.get("history"):
            hist = dict(meta["history"])
            if hist.get("best_val_loss") is None:
                hist["best_val_loss"] = math.inf
            fc.history_ = History(**hist)
        return fc


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


def load(path: str | os.PathLike[str], backbone: LanguageBackbone | None = None) -> TimeSeriesForecaster:
    """Load anything ``save`` wrote (today: a :class:`TimeSeriesForecaster`)."""
    return TimeSeriesForecaster.load(path, backbone=backbone)


__all__ = ["TimeSeriesForecaster", "load"]

"""Train and evaluate forecasting models on a benchmark data set, leak-free and on the same splits.

Validation chooses (early stopping, best weights); the test split only reports, on every window.
Used by the command line (``xdomain forecast``) and by ``benchmarks/forecast_etth1.py``.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xdomain.backbones.language import LanguageBackbone, load_backbone
from xdomain.config import ForecastConfig, TrainConfig
from xdomain.datasets.ett import ETTSplits, ett_splits
from xdomain.datasets.frames import WindowDataset, few_shot_rows
from xdomain.forecaster import TimeSeriesForecaster
from xdomain.models import build_model, needs_backbone
from xdomain.training.trainer import Trainer, set_seed


class PeakMemory:
    """Peak memory of the block (MB): the CUDA allocator's peak on a GPU; on a CPU, the peak of the sampled
    process RSS (``peak_mb``) and its rise over the RSS at the start (``added_mb``), which leaves out what
    was loaded before (the backbone) but also misses memory the allocator reuses from earlier runs."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self.start_mb = 0.0
        self._stop = threading.Event()

    @property
    def added_mb(self) -> float:
        return max(0.0, self.peak_mb - self.start_mb)

    def _rss(self) -> float:
        import psutil  # type: ignore[import-untyped]

        return float(psutil.Process(os.getpid()).memory_info().rss) / 2**20

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        else:
            self.start_mb = self.peak_mb = self._rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if torch.cuda.is_available():
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, self._rss())


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
        backbone = load_backbone(config.backbone, config.backbone_layers)
    with PeakMemory() as memory:
        set_seed(train.seed)
        model = build_model(config, backbone)
        trainer = Trainer(model, train, model_name=config.model)
        history = trainer.fit(train_ds, val_ds)
        start = time.perf_counter()
        test = trainer.evaluate(test_ds)
        infer_seconds = time.perf_counter() - start
    forecaster = TimeSeriesForecaster(
        backbone=backbone if backbone is not None else config.backbone,
        **{k: v for k, v in config.to_dict().items() if k != "backbone"},
        **train.to_dict(),
    )
    forecaster.model_ = trainer.model
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
        trainable_params=sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
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


def results_table(results: list[RunResult], baseline: str = "dlinear") -> str:
    """A markdown table of the runs, with each MSE as a ratio to the baseline's (when it ran)."""
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


__all__ = ["PeakMemory", "RunResult", "ett_datasets", "plot_forecasts", "results_table", "run_ett"]

"""The linear forecaster: closed-form ridge regression from the lookback window to the horizon.

One ``(lookback + 1) x horizon`` matrix (the last row the intercept) shared by every channel, fitted in
closed form on every training window of every (standardised) channel, the ridge strength ``lambda`` and
per-window normalisation (RevIN, no affine) chosen on validation windows. It is the baseline a
reprogrammed forecaster must beat, and the linear path the residual models start from
(:class:`xdomain.estimators.forecasting.ResidualForecaster`).

The normal equations are accumulated in float64 over the windows (never a ``windows x lookback`` design
matrix of the whole training set in memory at once), the intercept is left unpenalised (the inputs and
targets are centred), and every ``lambda`` is solved from one eigendecomposition.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

# lambda per window (the penalty of the mean squared error): 0 is ordinary least squares
DEFAULT_LAMBDAS: tuple[float, ...] = (0.0, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1000.0)
NORMALISATIONS: tuple[bool, ...] = (False, True)  # RevIN off / on: chosen on validation
_EPS = 1e-5  # as the time-series adapter's instance normalisation


def window_batches(dataset: Any, chunk: int = 4096) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The windows of a :class:`~xdomain.datasets.frames.WindowDataset` as ``(x (n, L), y (n, H))``
    blocks of at most ``chunk`` rows, in the dataset's order (its ``index`` honoured), without
    materialising every window at once."""
    lookback, horizon = int(dataset.lookback), int(dataset.horizon)
    index = np.asarray(dataset.index)
    offsets = np.asarray(dataset.offsets)
    for s, series in enumerate(dataset.series):
        lo, hi = int(offsets[s]), int(offsets[s + 1])
        mine = index[(index >= lo) & (index < hi)] - lo
        if len(mine) == 0:
            continue
        windows = series.unfold(0, lookback + horizon, 1)  # (n_s, L + H), a view
        for start in range(0, len(mine), chunk):
            block = windows[torch.from_numpy(mine[start : start + chunk])]
            yield block[:, :lookback], block[:, lookback:]


def _window_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each window's mean and std ``(n, 1)``, as the time-series adapter's instance normalisation."""
    return x.mean(dim=1, keepdim=True), torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + _EPS)


@dataclass
class RidgeFit:
    """What :func:`fit_ridge` chose and why: the validation MSE of every candidate."""

    weight: np.ndarray  # (L, H)
    bias: np.ndarray  # (H,)
    lam: float
    revin: bool
    val_mse: float
    candidates: list[dict[str, float]]
    train_windows: int


def _sums(dataset: Any, revin: bool) -> tuple[np.ndarray, ...]:
    lookback, horizon = int(dataset.lookback), int(dataset.horizon)
    xtx = np.zeros((lookback, lookback))
    xty = np.zeros((lookback, horizon))
    sx, sy = np.zeros(lookback), np.zeros(horizon)
    n = 0
    for x, y in window_batches(dataset):
        if revin:
            mean, std = _window_stats(x)
            x, y = (x - mean) / std, (y - mean) / std
        xd, yd = x.double().numpy(), y.double().numpy()
        xtx += xd.T @ xd
        xty += xd.T @ yd
        sx += xd.sum(0)
        sy += yd.sum(0)
        n += len(xd)
    return xtx, xty, sx, sy, np.asarray(n)


def _solutions(
    dataset: Any, revin: bool, lambdas: Sequence[float]
) -> tuple[list[tuple[float, np.ndarray, np.ndarray]], int]:
    """``(lambda, W (L, H), b (H,))`` for every lambda, from one pass over the windows."""
    xtx, xty, sx, sy, count = _sums(dataset, revin)
    n = int(count)
    if n == 0:
        raise ValueError("the training set holds no windows")
    mx, my = sx / n, sy / n
    # centred normal equations, per window: the intercept is not penalised
    a = (xtx - n * np.outer(mx, mx)) / n
    c = (xty - n * np.outer(mx, my)) / n
    evals, evecs = np.linalg.eigh(a)
    evals = np.clip(evals, 0.0, None)
    vc = evecs.T @ c
    out = []
    for lam in lambdas:
        denom = evals + lam
        # lambda = 0 on a singular system: the minimum-norm least-squares solution
        inv = np.divide(1.0, denom, out=np.zeros_like(denom), where=denom > 1e-12 * max(evals.max(), 1.0))
        w = evecs @ (inv[:, None] * vc)
        out.append((float(lam), w, my - mx @ w))
    return out, n


def _mse(dataset: Any, w: np.ndarray, b: np.ndarray, revin: bool) -> float:
    wt, bt = torch.from_numpy(w).float(), torch.from_numpy(b).float()
    total, count = 0.0, 0
    for x, y in window_batches(dataset):
        pred = predict_windows(x, wt, bt, revin)
        total += float(((pred - y) ** 2).sum())
        count += y.numel()
    return total / max(count, 1)


def predict_windows(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, revin: bool) -> torch.Tensor:
    """``x (n, L)`` -> ``(n, H)``: ``x @ W + b``, inside per-window normalisation when ``revin``."""
    if not revin:
        return x @ weight + bias
    mean, std = _window_stats(x)
    return ((x - mean) / std @ weight + bias) * std + mean


def fit_ridge(
    train: Any,
    val: Any,
    lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    revin: Sequence[bool] | bool | None = None,
) -> RidgeFit:
    """Fit the ridge forecaster on ``train``'s windows; choose ``lambda`` (and RevIN) by ``val``'s MSE.

    Args:
        train, val: :class:`~xdomain.datasets.frames.WindowDataset` of the same lookback and horizon.
        lambdas: candidate ridge strengths (per window; >= 0).
        revin: ``True`` / ``False`` to fix per-window normalisation, ``None`` (default) to choose it.
    """
    lams = [float(v) for v in lambdas]
    if not lams or any(not np.isfinite(v) or v < 0 for v in lams):
        raise ValueError(f"lambdas must be finite numbers >= 0, got {list(lambdas)!r}")
    if (val.lookback, val.horizon) != (train.lookback, train.horizon):
        raise ValueError(
            f"validation windows are (lookback {val.lookback}, horizon {val.horizon}); expected the "
            f"training windows' ({train.lookback}, {train.horizon})"
        )
    options = NORMALISATIONS if revin is None else ((revin,) if isinstance(revin, bool) else tuple(revin))
    best: RidgeFit | None = None
    candidates = []
    for norm in options:
        solutions, n = _solutions(train, norm, lams)
        for lam, w, b in solutions:
            mse = _mse(val, w, b, norm)
            candidates.append({"lambda": lam, "revin": float(norm), "val_mse": mse})
            if best is None or mse < best.val_mse - 1e-12:
                best = RidgeFit(w, b, lam, norm, mse, candidates, n)
    assert best is not None
    return best


class RidgeForecaster(nn.Module):
    """The linear forecaster as a module: ``(B, L, N) -> (B, H, N)``, every channel by the same matrix.

    ``weight`` ``(L, H)`` and ``bias`` ``(H,)`` start at zero; :meth:`fit_closed_form` sets them from
    data. ``trainable=False`` keeps them fixed when a model around it trains (they are still saved:
    see ``learned_buffers``).
    """

    learned_buffers = ("weight", "bias", "revin_flag")

    def __init__(self, lookback: int, horizon: int, revin: bool = False, trainable: bool = False) -> None:
        super().__init__()
        self.lookback = lookback
        self.horizon = horizon
        self.weight = nn.Parameter(torch.zeros(lookback, horizon), requires_grad=trainable)
        self.bias = nn.Parameter(torch.zeros(horizon), requires_grad=trainable)
        # whether inputs are normalised per window: chosen with lambda, saved with the weights
        self.revin_flag: torch.Tensor
        self.register_buffer("revin_flag", torch.tensor(float(revin)))

    @property
    def revin(self) -> bool:
        return bool(self.revin_flag.item())

    def fit_closed_form(
        self, train: Any, val: Any, lambdas: Sequence[float] = DEFAULT_LAMBDAS, revin: bool | None = None
    ) -> RidgeFit:
        fit = fit_ridge(train, val, lambdas, revin)
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(fit.weight).float())
            self.bias.copy_(torch.from_numpy(fit.bias).float())
            self.revin_flag.fill_(float(fit.revin))
        return fit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:
            raise ValueError(f"time series batch must be (B, L, N), got shape {tuple(x.shape)}")
        if x.shape[1] != self.lookback:
            raise ValueError(f"time series batch must be (B, {self.lookback}, N), got shape {tuple(x.shape)}")
        b, length, n = x.shape
        z = x.permute(0, 2, 1).reshape(b * n, length)
        w, bias = self.weight.to(z.dtype), self.bias.to(z.dtype)
        y = predict_windows(z, w, bias, self.revin)  # (B*N, H)
        return y.reshape(b, n, self.horizon).permute(0, 2, 1)


__all__ = ["DEFAULT_LAMBDAS", "RidgeFit", "RidgeForecaster", "fit_ridge", "predict_windows", "window_batches"]

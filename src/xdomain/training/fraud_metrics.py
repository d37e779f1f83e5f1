"""Fraud-detection metrics: AUPRC first, at the sample's and at the natural prevalence, with intervals.

- ``auprc``: average precision (scikit-learn's ``average_precision_score``), the metric the ULB data's
  authors recommend; a no-skill model scores the prevalence.
- ``auprc_natural``: the same with each normal row weighted ``normal_weight`` times (the sample keeps all
  492 frauds and 1,230 of 284,315 normal rows, so a normal row stands for about 231 of the full data:
  precision at the natural 0.17% prevalence).
- ``auroc``: ``roc_auc_score`` (prevalence-free).
- ``recall_at_1pct_fpr`` / ``recall_at_5pct_fpr``: the highest recall of any threshold whose false-positive
  rate is at most 1% / 5% (with about 250 normal rows in a test part, 1% is 2 of them: coarse).
- at the decision threshold (chosen on validation): precision, recall, F1, and the fraud amount caught
  (the summed ``Amount`` of the frauds flagged, absolute and as a share of all fraud amounts).

:func:`bootstrap_intervals` gives 95% percentile intervals of each metric over stratified resamples of the
test rows (frauds and normals resampled separately, so every resample has both; seeded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from xdomain.datasets.transactions import NATURAL_NORMAL_WEIGHT

BOOTSTRAP = 1000
FPR_TARGETS = (0.01, 0.05)


def _binary(y: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(y_arr) != len(s):
        raise ValueError(f"y has {len(y_arr)} labels but scores has {len(s)} values; expected one score each")
    values = set(np.unique(y_arr).tolist())
    if not values <= {0, 1} or len(values) < 2:
        raise ValueError(f"y must hold both classes 0 (normal) and 1 (fraud), got the labels "
                         f"{sorted(values)}")
    if not np.isfinite(s).all():
        raise ValueError("scores hold NaN or infinite values; expected a finite score for every row")
    return y_arr, s


def recall_at_fpr(y: Any, scores: Any, fpr: float) -> float:
    """The highest recall (true-positive rate) among thresholds whose false-positive rate is <= ``fpr``."""
    y_arr, s = _binary(y, scores)
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr!r}")
    false_pos, true_pos, _ = roc_curve(y_arr, s, drop_intermediate=False)
    allowed = false_pos <= fpr + 1e-12
    return float(true_pos[allowed].max())


def normal_weights(y: Any, normal_weight: float = NATURAL_NORMAL_WEIGHT) -> np.ndarray:
    """Per-row weights that bring a sample with every fraud and a fraction of the normals back to the
    natural prevalence: ``normal_weight`` for a normal row, 1 for a fraud."""
    y_arr = np.asarray(y).astype(np.int64).ravel()
    return np.where(y_arr == 1, 1.0, float(normal_weight))


def threshold_metrics(y: Any, scores: Any, threshold: float, amount: Any | None = None) -> dict[str, float]:
    """Precision, recall, F1 and the fraud amount caught when rows with ``score >= threshold`` are flagged."""
    y_arr, s = _binary(y, scores)
    flagged = s >= threshold
    tp = int((flagged & (y_arr == 1)).sum())
    fp = int((flagged & (y_arr == 0)).sum())
    fn = int((~flagged & (y_arr == 1)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out = {"precision": precision, "recall": recall, "f1": f1, "flagged": float(flagged.sum()),
           "false_positives": float(fp)}
    if amount is not None:
        a = np.asarray(amount, dtype=np.float64).ravel()
        if len(a) != len(y_arr):
            raise ValueError(f"amount has {len(a)} values; expected one per row ({len(y_arr)})")
        fraud = y_arr == 1
        caught = float(a[fraud & flagged].sum())
        total = float(a[fraud].sum())
        out["fraud_amount_caught"] = caught
        out["fraud_amount_share"] = caught / total if total > 0 else 0.0
    return out


def fraud_metrics(
    y: Any,
    scores: Any,
    threshold: float | None = None,
    amount: Any | None = None,
    normal_weight: float = NATURAL_NORMAL_WEIGHT,
) -> dict[str, float]:
    """Every metric of the module docstring for one set of scores (``threshold`` None: none of the
    threshold metrics)."""
    y_arr, s = _binary(y, scores)
    out = {
        "auprc": float(average_precision_score(y_arr, s)),
        "auprc_natural": float(average_precision_score(y_arr, s, sample_weight=normal_weights(y_arr,
                                                                                               normal_weight))),
        "auroc": float(roc_auc_score(y_arr, s)),
    }
    for fpr in FPR_TARGETS:
        out[f"recall_at_{round(fpr * 100)}pct_fpr"] = recall_at_fpr(y_arr, s, fpr)
    if threshold is not None:
        out.update(threshold_metrics(y_arr, s, threshold, amount))
    return out


def bootstrap_intervals(
    y: Any,
    scores: Any,
    metrics: Callable[[np.ndarray, np.ndarray, np.ndarray], dict[str, float]],
    n: int = BOOTSTRAP,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """95% percentile intervals of ``metrics(y, scores, rows)`` (``rows``: the resample's indices, for
    per-row extras such as amounts) over ``n`` stratified resamples of the rows."""
    y_arr, s = _binary(y, scores)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y_arr == 1), np.flatnonzero(y_arr == 0)
    draws: dict[str, list[float]] = {}
    for _ in range(n):
        rows = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        for key, value in metrics(y_arr[rows], s[rows], rows).items():
            draws.setdefault(key, []).append(value)
    return {k: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) for k, v in draws.items()}


def report(
    y: Any,
    scores: Any,
    threshold: float | None = None,
    amount: Any | None = None,
    normal_weight: float = NATURAL_NORMAL_WEIGHT,
    n_bootstrap: int = BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """:func:`fraud_metrics` and their bootstrap intervals (``<metric>_ci``) in one dict."""
    a = None if amount is None else np.asarray(amount, dtype=np.float64).ravel()
    point = fraud_metrics(y, scores, threshold, a, normal_weight)

    def metrics(yb: np.ndarray, sb: np.ndarray, rows: np.ndarray) -> dict[str, float]:
        return fraud_metrics(yb, sb, threshold, None if a is None else a[rows], normal_weight)

    out: dict[str, Any] = dict(point)
    if n_bootstrap > 0:
        for key, ci in bootstrap_intervals(y, scores, metrics, n_bootstrap, seed).items():
            out[f"{key}_ci"] = list(ci)
    return out


def f1_threshold(y: Any, scores: Any) -> float:
    """The score threshold with the highest F1 on ``(y, scores)`` (the highest such threshold on ties): the
    midpoint between that score and the next lower one, so that a score just below it is not flagged."""
    y_arr, s = _binary(y, scores)
    order = np.argsort(-s, kind="stable")
    ys, ss = y_arr[order], s[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(1 - ys)
    # only at the last row of each run of equal scores is the cut well defined
    last = np.r_[ss[1:] != ss[:-1], True]
    precision = tp / (tp + fp)
    recall = tp / ys.sum()
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0)
    f1 = np.where(last, f1, -1.0)
    best = int(np.argmax(f1))
    below = ss[best + 1] if best + 1 < len(ss) else ss[best] - 1.0
    return float((ss[best] + below) / 2.0)


__all__ = [
    "BOOTSTRAP",
    "FPR_TARGETS",
    "bootstrap_intervals",
    "f1_threshold",
    "fraud_metrics",
    "normal_weights",
    "recall_at_fpr",
    "report",
    "threshold_metrics",
]

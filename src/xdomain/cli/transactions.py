"""``xdomain transactions classify``: fraud detection through a frozen image classifier or language model
(TransactionClassifier, after Chen et al., CIKM 2021), beside a class-balanced logistic regression, on the
ULB credit-card data with a time-ordered (default) or stratified split; metrics JSON/markdown and PR and
ROC curve plots."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xdomain.cli.common import (
    TRAINING,
    Subparsers,
    add_run,
    add_training,
    given,
    int_at_least,
    log,
    set_threads,
    settings,
    subset,
)
from xdomain.cli.outdir import REPORT_FILES, out_folder, write_run_marker
from xdomain.datasets.transactions import (
    NATURAL_NORMAL_WEIGHT,
    SPLITS,
    TransactionSplits,
    creditcard_splits,
    load_creditcard,
)
from xdomain.estimators.transactions import ROUTES, TransactionClassifier
from xdomain.heads.label_mapping import MAPPINGS
from xdomain.reporting import write_results
from xdomain.training.fraud_metrics import f1_threshold, report

DATASETS = ("transactions/creditcard",)
PLOTS = ("pr.png", "roc.png")
METRICS = ("auprc", "auprc_natural", "auroc", "recall_at_1pct_fpr", "recall_at_5pct_fpr", "f1",
           "fraud_amount_share")


def register(sub: Subparsers) -> None:
    p = sub.add_parser("transactions", help="financial transactions: fraud detection (CIKM 2021 pattern)")
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser(
        "classify",
        help="flag fraudulent card transactions with a frozen vision or language model",
        description="Train TransactionClassifier on the training part (the best epoch and the decision "
        "threshold chosen on the validation part), score every test row once, beside a class-balanced "
        "logistic regression trained on the same rows: AUPRC (also at the natural 0.17% prevalence), "
        "AUROC, recall at 1% and 5% FPR, fraud amount caught, with bootstrap intervals; PR and ROC plots. "
        "The bundled data is a 1,722-row sample with all 492 frauds (28.6% fraud, NOT the natural 0.17%).",
    )
    c.add_argument("--dataset", required=True, choices=DATASETS, help="the ULB credit-card data")
    c.add_argument("--source", default="sample", choices=("sample", "full"),
                   help="sample: the 1,722-row sample in the data home (28.6%% fraud, default); full: the "
                   "284,807-row file (downloaded where a network exists)")
    c.add_argument("--split", default="time", choices=SPLITS,
                   help="time: 60/20/20 by Time, earlier rows for training (default); stratified: a random "
                   "stratified 60/20/20 (as public notebooks do; flatters models)")
    c.add_argument("--hour", action="store_true", help="add an hour-of-day feature derived from Time")
    c.add_argument("--route", default="image", choices=ROUTES,
                   help="image: features drawn into a frozen image classifier's input (default); tokens: "
                   "each feature a soft token of a frozen language model")
    c.add_argument("--backbone", default=None,
                   help="efficientnet-lite0 (image default), minilm (tokens default), a transformers name or "
                   "folder, or none (the same input transformation without the backbone)")
    c.add_argument("--layout", default=None, choices=("grid", "learned"),
                   help="image route: fixed grid or learned feature-to-pixel layout (default: the "
                   "estimator's)")
    c.add_argument("--head", default=None, choices=MAPPINGS,
                   help="linear (default) or a label mapping (image route)")
    c.add_argument("--bootstrap", type=int_at_least(0), default=1000,
                   help="bootstrap resamples of the test rows for the intervals (0: none; default 1000)")
    add_training(c, "10 epochs, batch 32, lr 0.001, patience 3")
    add_run(c, "smoke runs: at most N rows of the training+validation part and N test rows, a seeded subset "
            "balanced over the classes kept in time order (the metrics are then not the benchmark's)")
    c.add_argument("--no-baseline", action="store_true", help="skip the logistic-regression baseline")
    c.set_defaults(handler=classify)


def logistic_baseline(seed: int = 0) -> Any:
    """Class-balanced logistic regression on the standardised features (C = 1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=5000,
                                                              random_state=seed))


def score_model(
    name: str,
    description: str,
    est: Any,
    fit: tuple[Any, Any],
    validation_rows: int,
    test: tuple[Any, Any, np.ndarray],
    trainable: int | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    normal_weight: float = NATURAL_NORMAL_WEIGHT,
) -> tuple[dict[str, Any], np.ndarray]:
    """Fit ``est`` on ``fit`` (rows in order, the last ``validation_rows`` the validation part), score the
    test rows once: the metrics with intervals, trainable parameters, training seconds and test rows a
    second. An estimator without ``decision_threshold_`` (a baseline) is fitted on the training rows
    only and its threshold chosen by F1 on the validation rows, as the reprogrammed model's is."""
    X, y = fit
    X_te, y_te, amount = test
    log(f"training {name}: {description}")
    start = time.perf_counter()
    if isinstance(est, TransactionClassifier):
        est.fit(X, y)
    else:
        cut = len(y) - validation_rows
        est.fit(_rows(X, slice(0, cut)), np.asarray(y)[:cut])
        val = est.predict_proba(_rows(X, slice(cut, None)))[:, 1]
        est.decision_threshold_ = f1_threshold(np.asarray(y)[cut:], val)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    scores = np.asarray(est.predict_proba(X_te))[:, 1]
    rate = len(y_te) / max(time.perf_counter() - start, 1e-9)
    threshold = float(est.decision_threshold_)
    metrics = report(y_te, scores, threshold, amount, normal_weight, n_bootstrap, seed)
    if trainable is None:
        trainable = int(est.num_trainable()) if hasattr(est, "num_trainable") else _linear_size(est)
    row = {"model": name, "description": description, **metrics, "decision_threshold": threshold,
           "trainable_parameters": trainable, "train_seconds": round(seconds, 2),
           "test_rows_per_second": round(rate, 1)}
    history = getattr(est, "history_", None)
    if history is not None:
        row.update({"epochs": history.epochs, "best_step": history.best_step, "stopped": history.stopped})
    return row, scores


def _rows(X: Any, rows: slice) -> Any:
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]


def _linear_size(est: Any) -> int | None:
    last = est[-1] if hasattr(est, "steps") else est
    coef = getattr(last, "coef_", None)
    return None if coef is None else int(coef.size + last.intercept_.size)


def results_table(rows: Sequence[dict[str, Any]]) -> str:
    """A markdown table: each metric with its 95% bootstrap interval where there is one."""
    names = ["AUPRC", "AUPRC (natural 0.17%)", "AUROC", "recall @1% FPR", "recall @5% FPR", "F1 @threshold",
             "fraud amount caught"]
    lines = ["| model | " + " | ".join(names) + " | trainable | train s | rows/s |",
             "|---|" + "---|" * (len(names) + 3)]
    for r in rows:
        cells = []
        for key in METRICS:
            ci = r.get(f"{key}_ci")
            cells.append(f"{r[key]:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""))
        n = r.get("trainable_parameters")
        lines.append(f"| {r['model']} | " + " | ".join(cells) + f" | {'n/a' if n is None else f'{n:,}'} | "
                     f"{r['train_seconds']:.1f} | {r['test_rows_per_second']:,.0f} |")
    return "\n".join(lines)


def plot_curves(y: Any, scores: dict[str, np.ndarray], folder: Path, title: str = "") -> list[Path]:
    """``pr.png`` (precision-recall, the no-skill line at the test prevalence) and ``roc.png`` of each
    model's test scores, written into ``folder``."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend (a notebook's) is left alone
    from sklearn.metrics import precision_recall_curve, roc_curve

    y_arr = np.asarray(y)
    paths = []
    for kind in ("pr", "roc"):
        fig = Figure(figsize=(5.5, 4.5))
        ax = fig.subplots()
        for name, s in scores.items():
            if kind == "pr":
                precision, recall, _ = precision_recall_curve(y_arr, s)
                ax.step(recall, precision, where="post", label=name)
            else:
                fpr, tpr, _ = roc_curve(y_arr, s)
                ax.plot(fpr, tpr, label=name)
        if kind == "pr":
            ax.axhline(y_arr.mean(), color="grey", ls="--", lw=1, label=f"no skill ({y_arr.mean():.3f})")
            ax.set(xlabel="recall", ylabel="precision", title=f"precision-recall {title}".strip())
        else:
            ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1)
            ax.set(xlabel="false-positive rate", ylabel="recall", title=f"ROC {title}".strip())
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"{kind}.png"
        fig.savefig(path, dpi=120)
        paths.append(path)
    return paths


def load_split(args: argparse.Namespace) -> TransactionSplits:
    frame = load_creditcard(args.source, args.data_home)
    return creditcard_splits(frame, split=args.split, seed=args.seed, hour=args.hour)


def classify(args: argparse.Namespace) -> int:
    set_threads(args)
    folder = out_folder(args.out, args.overwrite, files=(*REPORT_FILES, *PLOTS))
    splits = load_split(args)
    X, y, frac = splits.fit_part()
    X_te, y_te, amount = splits.features("test")
    n_val = round(frac * len(X))
    if args.limit:
        keep = subset(list(y), args.limit, args.seed)
        n_val = max(2, round(frac * len(keep)))
        X, y = X.iloc[keep].reset_index(drop=True), y[keep]
        test_keep = subset(list(y_te), args.limit, args.seed)
        X_te, y_te, amount = X_te.iloc[test_keep].reset_index(drop=True), y_te[test_keep], amount[test_keep]
    weight = float(load_creditcard_weight(args.source))
    limited = f" (--limit {args.limit})" if args.limit else ""
    log(f"{args.dataset} ({splits.note or args.source}), {args.split} split: {len(y) - n_val} training, "
        f"{n_val} validation, {len(y_te)} test rows ({int(np.sum(y_te))} frauds){limited}")
    params = given(args, ("backbone", "layout", "head", *TRAINING))
    params.pop("validation_fraction", None)  # the split says which rows validate
    est = TransactionClassifier(route=args.route, validation_fraction=n_val / len(y), validation_split="last",
                                random_state=args.seed, verbose=args.verbose, **params)
    s = est.get_params()
    backbone = s["backbone"] or {"image": "efficientnet-lite0", "tokens": "minilm"}[args.route]
    layout = f", {s['layout']} layout" if args.route == "image" else ""
    description = f"{backbone} ({args.route} route{layout})"
    fit, test = (X, y), (X_te, y_te, amount)
    rows, scores = [], {}
    row, score = score_model("reprogram", description, est, fit, n_val, test, n_bootstrap=args.bootstrap,
                             seed=args.seed, normal_weight=weight)
    rows.append(row)
    scores[description] = score
    if not args.no_baseline:
        row, score = score_model("baseline", "class-balanced logistic regression",
                                 logistic_baseline(args.seed), fit, n_val, test,
                                 n_bootstrap=args.bootstrap, seed=args.seed, normal_weight=weight)
        rows.append(row)
        scores["logistic regression"] = score
    note = splits.note or ""
    table = results_table(rows)
    print(table, flush=True)
    if folder is None:
        return 0
    doc = {
        "command": "transactions classify", "dataset": args.dataset, "source": args.source, "note": note,
        "split": args.split, "hour": args.hour, "limit": args.limit,
        "rows": {"train": len(y) - n_val, "validation": n_val, "test": len(y_te)},
        "test_frauds": int(np.sum(y_te)), "natural_normal_weight": weight, "bootstrap": args.bootstrap,
        "estimator": "TransactionClassifier", "settings": settings(est), "results": rows,
    }
    head = (f"# xdomain transactions classify: {args.dataset} ({args.source}), {args.split} split\n\n"
            f"Data: {note}. Test part: {len(y_te)} rows, {int(np.sum(y_te))} frauds. 95% bootstrap intervals "
            f"over {args.bootstrap} stratified resamples of the test rows; the decision threshold (F1, "
            "amount caught) chosen on the validation rows.\n\n")
    est.save(folder / "model", overwrite=args.overwrite)
    write_results(folder / "metrics", head + table, doc)
    plot_curves(y_te, scores, folder, f"({args.split} split, test)")
    write_run_marker(folder, "transactions classify", ["model", *REPORT_FILES, *PLOTS])
    log(f"wrote {folder / 'model'}, metrics.json, metrics.md, pr.png and roc.png in {folder}")
    return 0


def load_creditcard_weight(source: str) -> float:
    """How many normal rows of the full data each normal row of ``source`` stands for."""
    return NATURAL_NORMAL_WEIGHT if source == "sample" else 1.0


__all__ = ["logistic_baseline", "plot_curves", "register", "results_table", "score_model"]

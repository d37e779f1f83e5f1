"""What every ``xdomain`` command shares: argument types and flags, settings and configs from the flags,
smoke-run subsets, and the fit-then-report steps of the commands that train an estimator beside a
baseline (the ``--out`` folder itself: :mod:`xdomain.cli.outdir`)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from xdomain.cli.outdir import REPORT_FILES, write_run_marker
from xdomain.config import ConfigBase
from xdomain.reporting import write_results

Subparsers = argparse._SubParsersAction  # what a command module's ``register`` adds its parser to
C = TypeVar("C", bound=ConfigBase)

OVERWRITE_HELP = (
    "replace the results and checkpoints of an earlier xdomain run in --out (other files there are kept); "
    "without it such a folder is refused"
)
LIMIT_HELP = (
    "smoke runs: at most N training and N test samples, a seeded subset balanced over the classes "
    "(the metrics are then not the benchmark's)"
)


# -- argument types: a bad value is an argparse error (exit code 2) that names the value seen -----------
def int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    return parse


def float_in(low: float, high: float, low_open: bool, high_open: bool) -> Callable[[str], float]:
    shown = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text!r}") from None
        inside = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
        if not inside:
            raise argparse.ArgumentTypeError(f"expected a number in {shown}, got {text}")
        return value

    return parse


positive = int_at_least(1)
seed_int = int_at_least(0)
positive_float = float_in(0.0, math.inf, True, True)
non_negative_float = float_in(0.0, math.inf, False, True)


# -- flags and settings shared by classify, protein and antibody ----------------------------------------
TRAINING = ("epochs", "batch_size", "lr", "patience", "max_steps", "validation_fraction")


def add_training(p: argparse.ArgumentParser, defaults: str) -> None:
    g = p.add_argument_group("training", f"defaults are the estimator's own ({defaults})")
    g.add_argument("--epochs", type=positive, default=None, help="most passes over the training data")
    g.add_argument("--batch-size", type=positive, default=None)
    g.add_argument("--lr", type=positive_float, default=None, help="Adam learning rate")
    g.add_argument("--patience", type=positive, default=None, help="epochs without a better validation loss")
    g.add_argument("--max-steps", type=positive, default=None, help="stop after this many optimiser steps")
    g.add_argument(
        "--validation-fraction",
        type=float_in(0.0, 1.0, False, True),
        default=None,
        help="part of the training data held back to pick the best epoch (0: none)",
    )
    g.add_argument(
        "--seed", type=seed_int, default=0, help="seed of the splits, subsets and training (default 0)"
    )
    g.add_argument("--verbose", action="store_true", help="show training progress")


def add_run(p: argparse.ArgumentParser, limit_help: str) -> None:
    p.add_argument("--data-home", default=None, help="data folder (default $XDOMAIN_DATA_HOME)")
    p.add_argument("--limit", type=positive, default=None, metavar="N", help=limit_help)
    p.add_argument("--threads", type=positive, default=None, help="torch CPU threads")
    p.add_argument(
        "--out", default=None, metavar="DIR", help="folder for metrics.json, metrics.md and model/"
    )
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def set_threads(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)


def given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The estimator settings the user gave; the others keep the estimator's own defaults."""
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def config_from_args(cls: type[C], args: argparse.Namespace, **values: Any) -> C:
    """The dataclass ``cls`` (a ``TrainConfig``, a ``ForecastConfig``) from the flags named like its fields;
    ``values`` set fields that have no flag of their name; fields with neither keep their defaults."""
    fields = {f.name for f in dataclasses.fields(cls)}
    flags = {name: value for name, value in vars(args).items() if name in fields}
    return cls(**{**flags, **values})


# -- smoke-run subsets -----------------------------------------------------------------------------------
def subset(labels: Sequence[Any], limit: int | None, seed: int) -> Any:
    """Sorted indices of at most ``limit`` of the labelled items: a seeded random choice that takes the
    classes in turn (so every class is present once ``limit`` reaches their number), or all items."""
    n = len(labels)
    if limit is None or limit >= n:
        return np.arange(n)
    order = np.random.default_rng(seed).permutation(n)
    seen: dict[Any, int] = {}
    rank = np.empty(n, dtype=np.int64)
    for position, item in enumerate(order):
        label = labels[int(item)]
        rank[position] = seen.get(label, 0)
        seen[label] = int(rank[position]) + 1
    # first each class's first item (in shuffled order), then each class's second, ...
    chosen = order[np.lexsort((np.arange(n), rank))[:limit]]
    return np.sort(chosen)


def take(items: Any, index: Any) -> Any:
    return items[index] if hasattr(items, "shape") else [items[int(i)] for i in index]


def limit_split(
    x_train: Any, y_train: Any, x_test: Any, y_test: Any, limit: int | None, seed: int
) -> tuple[Any, Any, Any, Any]:
    """``(x_train, y_train, x_test, y_test)`` cut to the balanced seeded subsets of ``--limit``."""
    tr = subset(list(y_train), limit, seed)
    te = subset(list(y_test), limit, seed)
    return take(x_train, tr), y_train[tr], take(x_test, te), y_test[te]


def limit_note(limit: int | None) -> str:
    return f" (--limit {limit})" if limit else ""


def log(message: str) -> None:
    print(f"[xdomain] {message}", file=sys.stderr, flush=True)


# -- reports ---------------------------------------------------------------------------------------------
def settings(est: Any) -> dict[str, Any]:
    """The estimator's settings that JSON holds (a backbone given as an instance is left out)."""
    params = est.get_params(deep=False).items()
    return {k: v for k, v in params if v is None or isinstance(v, (str, int, float, bool))}


def table(rows: list[dict[str, Any]], metric: str, title: str) -> str:
    lines = [
        f"| model | what | {title} | trainable parameters | train seconds |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        n = r["trainable_parameters"]
        lines.append(
            f"| {r['model']} | {r['description']} | {r[metric]:.4f} | {'n/a' if n is None else f'{n:,}'} "
            f"| {r['train_seconds']:.1f} |"
        )
    return "\n".join(lines)


def report(
    folder: Path | None, doc: dict[str, Any], table: str, estimator: Any, overwrite: bool = False
) -> None:
    """Print the table; with ``--out``, save the estimator as ``model/``, the metrics and the run marker."""
    print(table, flush=True)
    if folder is None:
        return
    estimator.save(folder / "model", overwrite=overwrite)
    write_results(folder / "metrics", table, doc)
    write_run_marker(folder, str(doc.get("command", "")), ["model", *REPORT_FILES])
    print(
        f"[xdomain] wrote {folder / 'model'}, {folder / 'metrics.json'} and {folder / 'metrics.md'}",
        file=sys.stderr,
    )


def history_row(est: Any) -> dict[str, Any]:
    """The training history of a fitted estimator (none for an estimator without ``history_``)."""
    history = getattr(est, "history_", None)
    if history is None:
        return {}
    return {
        "steps": history.steps,
        "epochs": history.epochs,
        "best_step": history.best_step,
        "stopped": history.stopped,
    }


def fit_classifier(
    est: Any,
    model: str,
    description: str,
    train: tuple[Any, Any],
    test: tuple[Any, Any],
    trainable: Callable[[Any], int | None],
) -> dict[str, Any]:
    """Fit on ``train``, score accuracy on every sample of ``test``; fit time is wall time (data reading,
    feature extraction and mapping fits included, for the baseline as for the reprogrammed model)."""
    log(f"training {model}: {description}")
    start = time.perf_counter()
    est.fit(*train)
    seconds = time.perf_counter() - start
    pred = np.asarray(est.predict(test[0]))
    row: dict[str, Any] = {
        "model": model,
        "description": description,
        "accuracy": float(np.mean(pred == np.asarray(test[1]))),
        "trainable_parameters": trainable(est),
        "train_seconds": round(seconds, 3),
    }
    return {**row, **history_row(est)}


def counts(labels: Any) -> dict[str, int]:
    values, n = np.unique(np.asarray(labels), return_counts=True)
    return {str(v): int(c) for v, c in zip(values.tolist(), n.tolist(), strict=True)}


def linear_size(model: Any) -> int:
    return int(model.coef_.size + model.intercept_.size)


def classify_and_report(
    args: argparse.Namespace,
    folder: Path | None,
    head: dict[str, Any],
    est: Any,
    description: str,
    baseline: tuple[Any, str, Callable[[Any], int | None]] | None,
    train: tuple[Any, Any],
    test: tuple[Any, Any],
) -> int:
    """Fit the reprogrammed ``est`` and then the ``baseline`` (estimator, description, its trainable
    parameters; None: none) on the same split, report test accuracy of both with the data's facts and
    the estimator's settings after ``head`` (``command``, ``dataset``, ``split``)."""
    rows = [fit_classifier(est, "reprogram", description, train, test, lambda e: int(e.num_trainable()))]
    if baseline is not None:
        model, what, trainable = baseline
        rows.append(fit_classifier(model, "baseline", what, train, test, trainable))
    y_train, y_test = train[1], test[1]
    doc = {
        **head,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "classes": np.unique(y_train).tolist(),
        "class_counts": {"train": counts(y_train), "test": counts(y_test)},
        "limit": args.limit,
        "estimator": type(est).__name__,
        "settings": settings(est),
        "results": rows,
    }
    report(folder, doc, table(rows, "accuracy", "test accuracy"), est, args.overwrite)
    return 0

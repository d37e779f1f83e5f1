"""The ``xdomain`` command line."""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

MODELS = ("reprogram", "no-backbone", "attention-only", "dlinear")
PROTEIN_DATASETS = ("peptides/amp", "peptides/amp-transmembrane", "proteins/deepsol")
_AMP_NAMES = {"peptides/amp": "amp_uniprot", "peptides/amp-transmembrane": "amp_transmembrane"}
# DeepSol's sequences run to ~1,700 residues, past the 512 positions of a BERT: its default is the first 256
# residues (truncation announced with the number of sequences it shortens; --max-length overrides it)
DEEPSOL_MAX_LENGTH = 256
# --out: what the commands write there, and the marker that says a folder was written by xdomain
RUN_MARKER = "xdomain-run.json"
RUN_FORMAT = "xdomain-run"
_FORECAST_FILES = ("metrics.json", "metrics.md", "forecast.png")  # beside one checkpoint folder a model
_REPORT_FILES = ("metrics.json", "metrics.md")  # beside the checkpoint folder model/
_OVERWRITE_HELP = (
    "replace the results and checkpoints of an earlier xdomain run in --out (other files there are kept); "
    "without it such a folder is refused"
)


def _forecast_parser(sub: Any) -> None:
    p = sub.add_parser(
        "forecast",
        help="train and evaluate forecasting models on a benchmark data set",
        description="Train on the official training split, choose on validation, report MSE/MAE on every "
        "window of the official test split (standardised data). Writes checkpoints, metrics.json and a plot.",
    )
    p.add_argument("--dataset", default="ETTh1", help="ETTh1, ETTh2, ETTm1 or ETTm2 (default ETTh1)")
    p.add_argument("--data-home", default=None, help="data folder (default $XDOMAIN_DATA_HOME)")
    p.add_argument("--model", default="reprogram", choices=MODELS, help="model to train (default reprogram)")
    p.add_argument(
        "--compare",
        nargs="*",
        default=[],
        choices=MODELS,
        metavar="MODEL",
        help=f"also train these on the same splits ({', '.join(MODELS)})",
    )
    p.add_argument(
        "--backbone", default="minilm", help="alias, transformers name or local path (default minilm)"
    )
    p.add_argument("--backbone-layers", type=int, default=None, help="keep only the first k backbone layers")
    p.add_argument("--lookback", type=int, default=512)
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--no-prompt", action="store_true", help="disable Prompt-as-Prefix")
    p.add_argument("--num-prototypes", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: per model, reprogram 0.01, dlinear 0.005, ablations 0.001)")
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument(
        "--train-fraction",
        type=float,
        default=1.0,
        help="train on the first fraction of the training span (few-shot: 0.1)",
    )
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-train-seconds", type=float, default=None)
    p.add_argument("--val-every", type=int, default=None, help="validate every k steps (default: each epoch)")
    p.add_argument(
        "--val-windows", type=int, default=None, help="evenly spaced validation windows (default all)"
    )
    p.add_argument("--mixed-precision", default="no", choices=("no", "bf16", "fp16"))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default=None, help="folder for checkpoints, metrics.json and forecast.png")
    p.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)
    p.add_argument("--no-progress", action="store_true")


def _forecast(args: argparse.Namespace) -> int:
    import torch

    from xdomain.backbones.language import load_backbone
    from xdomain.config import ForecastConfig, TrainConfig
    from xdomain.datasets.ett import DESCRIPTION, ett_splits
    from xdomain.estimators.forecasting import needs_backbone, plot_forecasts, results_table, run_ett

    if args.threads:
        torch.set_num_threads(args.threads)
    models = [args.model] + [m for m in args.compare if m != args.model]
    train = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        seed=args.seed,
        train_fraction=args.train_fraction,
        max_steps=args.max_steps,
        max_train_seconds=args.max_train_seconds,
        val_every=args.val_every,
        val_windows=args.val_windows,
        mixed_precision=args.mixed_precision,
        progress=not args.no_progress,
    )
    configs = [
        ForecastConfig(
            lookback=args.lookback,
            horizon=args.horizon,
            model=m,
            backbone=args.backbone,
            backbone_layers=args.backbone_layers,
            prompt=not args.no_prompt,
            num_prototypes=args.num_prototypes,
            description=DESCRIPTION if args.dataset.lower().startswith("ett") else "",
        )
        for m in models
    ]
    out = _out_folder(args.out, args.overwrite, files=_FORECAST_FILES, checkpoints=models)
    splits = ett_splits(args.dataset, args.lookback, args.data_home)
    backbone = None
    if any(needs_backbone(c) for c in configs):
        backbone = load_backbone(args.backbone, args.backbone_layers)
    results = []
    for cfg in configs:
        print(
            f"[xdomain] training {cfg.model} on {splits.name} "
            f"(lookback {cfg.lookback}, horizon {cfg.horizon})",
            file=sys.stderr,
            flush=True,
        )
        results.append(run_ett(cfg, train, splits=splits, backbone=backbone if needs_backbone(cfg) else None))
    table = results_table(results)
    print(table)
    if out is not None:
        for r in results:
            assert r.forecaster is not None
            r.forecaster.save(out / r.model, overwrite=args.overwrite)
        doc = {"dataset": splits.name, "train_config": train.to_dict(), "results": [r.row() for r in results]}
        (out / "metrics.json").write_text(json.dumps(doc, indent=2))
        (out / "metrics.md").write_text(table + "\n")
        plot = plot_forecasts(splits, results, out / "forecast.png")
        _write_run_marker(out, "forecast", [*models, *_FORECAST_FILES])
        print(f"[xdomain] wrote checkpoints, {out / 'metrics.json'} and {plot}", file=sys.stderr)
    return 0


BENCHMARKS = {
    "forecast": "forecast_etth1.py",
    "classify-ucr": "classify_ucr.py",
    "classify-audio": "classify_audio.py",
    "proteins": "proteins.py",
}


def _bench(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[2] / "benchmarks"
    script = root / BENCHMARKS[args.what]
    if not script.is_file():
        print(
            f"benchmark {args.what!r} not found (expected {script}); run it from a source checkout",
            file=sys.stderr,
        )
        return 2
    os.execv(sys.executable, [sys.executable, str(script), *args.rest])
    return 0  # pragma: no cover


# -- argument types: a bad value is an argparse error (exit code 2) that names the value seen -----------
def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    return parse


def _float_in(low: float, high: float, low_open: bool, high_open: bool) -> Callable[[str], float]:
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


_positive = _int_at_least(1)
_seed = _int_at_least(0)
_positive_float = _float_in(0.0, math.inf, True, True)


def _classify_dataset(text: str) -> str:
    """``UCR/<name>`` or ``audio/fsdd``, spelled canonically (the UCR name itself is checked on loading)."""
    family, _, name = text.partition("/")
    if family.lower() == "ucr" and name and "/" not in name:
        return f"UCR/{name}"
    if text.lower() == "audio/fsdd":
        return "audio/fsdd"
    raise argparse.ArgumentTypeError(
        f"unknown data set {text!r}; expected UCR/<name> (a UCR archive set in the data home, e.g. "
        "UCR/GunPoint) or audio/fsdd"
    )


def _region(text: str) -> str:
    from xdomain.adapters.antibody import REGIONS

    key = text.upper()
    if key not in REGIONS:
        raise argparse.ArgumentTypeError(f"unknown region {text!r}; expected one of {list(REGIONS)}")
    return key


# -- shared by classify, protein and antibody ----------------------------------------------------------
def _given(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The estimator settings the user gave; the others keep the estimator's own defaults."""
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


_TRAINING = ("epochs", "batch_size", "lr", "patience", "max_steps", "validation_fraction")


def _add_training(p: argparse.ArgumentParser, defaults: str) -> None:
    g = p.add_argument_group("training", f"defaults are the estimator's own ({defaults})")
    g.add_argument("--epochs", type=_positive, default=None, help="most passes over the training data")
    g.add_argument("--batch-size", type=_positive, default=None)
    g.add_argument("--lr", type=_positive_float, default=None, help="Adam learning rate")
    g.add_argument("--patience", type=_positive, default=None, help="epochs without a better validation loss")
    g.add_argument("--max-steps", type=_positive, default=None, help="stop after this many optimiser steps")
    g.add_argument(
        "--validation-fraction",
        type=_float_in(0.0, 1.0, False, True),
        default=None,
        help="part of the training data held back to pick the best epoch (0: none)",
    )
    g.add_argument(
        "--seed", type=_seed, default=0, help="seed of the splits, subsets and training (default 0)"
    )
    g.add_argument("--verbose", action="store_true", help="show training progress")


def _add_run(p: argparse.ArgumentParser, limit_help: str) -> None:
    p.add_argument("--data-home", default=None, help="data folder (default $XDOMAIN_DATA_HOME)")
    p.add_argument("--limit", type=_positive, default=None, metavar="N", help=limit_help)
    p.add_argument("--threads", type=_positive, default=None, help="torch CPU threads")
    p.add_argument(
        "--out", default=None, metavar="DIR", help="folder for metrics.json, metrics.md and model/"
    )
    p.add_argument("--overwrite", action="store_true", help=_OVERWRITE_HELP)


_LIMIT_HELP = (
    "smoke runs: at most N training and N test samples, a seeded subset balanced over the classes "
    "(the metrics are then not the benchmark's)"
)


def _subset(labels: Sequence[Any], limit: int | None, seed: int) -> Any:
    """Sorted indices of at most ``limit`` of the labelled items: a seeded random choice that takes the
    classes in turn (so every class is present once ``limit`` reaches their number), or all items."""
    import numpy as np

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


def _take(items: Any, index: Any) -> Any:
    return items[index] if hasattr(items, "shape") else [items[int(i)] for i in index]


def _out_folder(
    out: str | None,
    overwrite: bool = False,
    files: Sequence[str] = _REPORT_FILES,
    checkpoints: Sequence[str] = ("model",),
) -> Path | None:
    """The output folder, checked and made before any data is read or any model trained, so that a bad
    path fails in seconds, not after a run.

    A folder counts as written by xdomain when it holds the marker ``xdomain-run.json`` (written last by
    every run, listing the files and checkpoint folders xdomain runs put there), or when everything in it
    bears the name of an output of this command (a run of xdomain 0.1, or one stopped before its marker).
    Outputs of an earlier run are replaced only with ``--overwrite``; a non-empty folder not written by
    xdomain is refused, ``--overwrite`` or not; other files in an xdomain folder are never touched.
    """
    if out is None:
        return None
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {out!r} is a file; expected a folder (it is created when missing)")
    if folder.is_dir():
        _check_out(folder, out, overwrite, files, checkpoints)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(
            f"--out {out!r} cannot be created ({err.strerror}); expected a writable folder"
        ) from err
    return folder


def _shown(names: Sequence[str], most: int = 5) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def _run_marker_files(folder: Path) -> list[str] | None:
    """The outputs the marker of an earlier xdomain run lists, or None where there is no valid marker."""
    try:
        doc = json.loads((folder / RUN_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = doc.get("files") if isinstance(doc, dict) and doc.get("format") == RUN_FORMAT else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return files


def _check_out(
    folder: Path, out: str, overwrite: bool, files: Sequence[str], checkpoints: Sequence[str]
) -> None:
    """Refuse an existing --out folder that the run must not write into (see :func:`_out_folder`)."""
    from xdomain.checkpoint import TMP_PREFIX, check_target

    outputs = {*files, *checkpoints}
    earlier = _run_marker_files(folder)
    hidden = {RUN_MARKER} if earlier is not None else set()
    entries = sorted(n for n in os.listdir(folder) if n not in hidden and not n.startswith(TMP_PREFIX))
    if earlier is None:
        foreign = [n for n in entries if n not in outputs]
        if foreign:
            raise ValueError(
                f"--out {out!r} is not empty and was not written by xdomain (it holds {_shown(foreign)}); "
                "choose a new or empty folder (--overwrite only replaces what an xdomain run wrote)"
            )
        previous = entries
    else:
        previous = [n for n in entries if n in outputs or n in earlier]
    if previous and not overwrite:
        raise ValueError(
            f"--out {out!r} holds results of an earlier run ({_shown(previous)}); pass --overwrite to "
            "replace them, or choose another folder"
        )
    for name in checkpoints:
        try:
            check_target(folder / name, overwrite)
        except FileExistsError as err:
            raise ValueError(f"--out {out!r}: {err}") from err
    for name in files:
        if (folder / name).is_dir():
            raise ValueError(f"--out {out!r}: {name} is a folder; expected to write a file there")


def _write_run_marker(folder: Path, command: str, written: Sequence[str]) -> None:
    """Write ``xdomain-run.json`` (last, atomically): the outputs xdomain runs put in ``folder``."""
    from xdomain.checkpoint import TMP_PREFIX

    earlier = [f for f in _run_marker_files(folder) or [] if (folder / f).exists()]
    doc = {"format": RUN_FORMAT, "version": 1, "command": command, "files": sorted({*earlier, *written})}
    for stale in folder.glob(f"{TMP_PREFIX}*"):
        if stale.is_file():
            stale.unlink(missing_ok=True)
    tmp = folder / f"{TMP_PREFIX}run-{secrets.token_hex(8)}.json"
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, folder / RUN_MARKER)


def _json_ready(value: Any) -> Any:
    """Plain JSON values; numpy scalars as Python numbers; NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    import numpy as np

    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _settings(est: Any) -> dict[str, Any]:
    """The estimator's settings that JSON holds (a backbone given as an instance is left out)."""
    params = est.get_params(deep=False).items()
    return {k: v for k, v in params if v is None or isinstance(v, (str, int, float, bool))}


def _table(rows: list[dict[str, Any]], metric: str, title: str) -> str:
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


def _report(
    folder: Path | None, doc: dict[str, Any], table: str, estimator: Any, overwrite: bool = False
) -> None:
    print(table, flush=True)
    if folder is None:
        return
    estimator.save(folder / "model", overwrite=overwrite)
    (folder / "metrics.json").write_text(json.dumps(_json_ready(doc), indent=2) + "\n")
    (folder / "metrics.md").write_text(table + "\n")
    _write_run_marker(folder, str(doc.get("command", "")), ["model", *_REPORT_FILES])
    print(
        f"[xdomain] wrote {folder / 'model'}, {folder / 'metrics.json'} and {folder / 'metrics.md'}",
        file=sys.stderr,
    )


def _log(message: str) -> None:
    print(f"[xdomain] {message}", file=sys.stderr, flush=True)


def _fit_classifier(
    est: Any,
    model: str,
    description: str,
    train: tuple[Any, Any],
    test: tuple[Any, Any],
    trainable: Callable[[Any], int | None],
) -> dict[str, Any]:
    """Fit on ``train``, score accuracy on every sample of ``test``; fit time is wall time (data reading,
    feature extraction and mapping fits included, for the baseline as for the reprogrammed model)."""
    import numpy as np

    _log(f"training {model}: {description}")
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
    history = getattr(est, "history_", None)
    if history is not None:
        row.update(
            steps=history.steps, epochs=history.epochs, best_step=history.best_step, stopped=history.stopped
        )
    return row


def _counts(labels: Any) -> dict[str, int]:
    import numpy as np

    values, counts = np.unique(np.asarray(labels), return_counts=True)
    return {str(v): int(c) for v, c in zip(values.tolist(), counts.tolist(), strict=True)}


def _linear_size(model: Any) -> int:
    return int(model.coef_.size + model.intercept_.size)


# -- xdomain classify ------------------------------------------------------------------------------------
def _classify_parser(sub: Any) -> None:
    from xdomain.estimators.series import PROGRAMS
    from xdomain.heads.label_mapping import MAPPINGS

    p = sub.add_parser(
        "classify",
        help="reprogram a frozen speech or vision model to classify time series or audio (Voice2Series)",
        description="Train on the official TRAIN split (the best epoch picked on a validation cut of it), "
        "report accuracy on every sample of the official TEST split, trainable parameters and train "
        "seconds, beside a logistic-regression baseline trained and scored in the same run. UCR sets use "
        "TimeSeriesClassifier; audio/fsdd uses AudioClassifier (FSDD's official split).",
    )
    p.add_argument(
        "--dataset",
        required=True,
        type=_classify_dataset,
        help="UCR/<name> (e.g. UCR/GunPoint, from <data home>/UCR/<name>/) or audio/fsdd",
    )
    p.add_argument(
        "--backbone",
        default=None,
        help="crepe-tiny (UCR default), crepe-full, speaker-encoder (audio default), efficientnet-lite0 "
        "(series as images), or none (no backbone: a linear head reads the programmed input)",
    )
    p.add_argument(
        "--mapping",
        default=None,
        choices=MAPPINGS,
        help="output alignment: a label mapping over the source classes, or a linear head "
        "(default ilm for UCR, linear for audio)",
    )
    p.add_argument(
        "--program",
        default=None,
        choices=PROGRAMS,
        help="where the additive program acts (default full; outside is for UCR series only; audio takes "
        "full or none)",
    )
    p.add_argument(
        "--clip-length",
        type=_positive,
        default=None,
        help="UCR: samples per waveform for a speech backbone given by name (default the estimator's, "
        "4,096; vggish needs at least 15,600 and defaults to 16,000, one second)",
    )
    p.add_argument(
        "--backbone-weights",
        metavar="PATH_OR_URL",
        default=None,
        help="vggish only: the torchvggish state dict (a local file, or an https URL downloaded once); "
        "without it VGGish has random weights",
    )
    p.add_argument(
        "--missing",
        default=None,
        choices=("error", "interpolate"),
        help="UCR series with NaN values: an error (default), or interpolate them linearly (for the "
        "baseline too)",
    )
    _add_training(p, "30 epochs, batch 16, lr 0.01, patience 10, validation fraction 0.2")
    _add_run(p, _LIMIT_HELP)
    p.add_argument("--no-baseline", action="store_true", help="skip the logistic-regression baseline")
    p.set_defaults(handler=_classify)



def _classify(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from xdomain.datasets.frames import series_matrix
    from xdomain.estimators.audio import AudioClassifier
    from xdomain.estimators.series import TimeSeriesClassifier

    if args.threads:
        torch.set_num_threads(args.threads)
    audio = args.dataset == "audio/fsdd"
    if audio and args.program == "outside":
        raise ValueError(
            "--program outside places the program around a series; audio/fsdd takes --program full or none"
        )
    if audio and args.missing is not None:
        raise ValueError("--missing applies to UCR series; audio/fsdd holds no missing values")
    folder = _out_folder(args.out, args.overwrite)
    x_train: Any
    x_test: Any
    if audio:
        from xdomain.datasets.fsdd import load_fsdd

        train_set, test_set = load_fsdd("train", args.data_home), load_fsdd("test", args.data_home)
        x_train, y_train = train_set.paths, train_set.labels
        x_test, y_test = test_set.paths, test_set.labels
    else:
        from xdomain.datasets.ucr import load_ucr

        name = args.dataset.split("/", 1)[1]
        x_train, y_train = load_ucr(name, "train", args.data_home)
        x_test, y_test = load_ucr(name, "test", args.data_home)
    tr = _subset(list(y_train), args.limit, args.seed)
    te = _subset(list(y_test), args.limit, args.seed)
    x_train, y_train, x_test, y_test = _take(x_train, tr), y_train[tr], _take(x_test, te), y_test[te]
    classes = np.unique(y_train)
    _log(
        f"{args.dataset}: {len(y_train)} training and {len(y_test)} test samples, {len(classes)} classes"
        + (f" (--limit {args.limit})" if args.limit else "")
    )

    params = _given(args, ("backbone", "mapping", "program", "missing", *_TRAINING))
    vggish = args.backbone == "vggish"
    if args.backbone_weights is not None and not vggish:
        raise ValueError(f"--backbone-weights is for --backbone vggish, got --backbone {args.backbone!r}")
    if args.clip_length is not None and audio:
        raise ValueError("--clip-length applies to UCR series; audio/fsdd clips keep the backbone's length")
    clip = args.clip_length or (16000 if vggish else None)
    if vggish:
        from xdomain.backbones.audio_features import VGGishLogMel
        from xdomain.backbones.speech import VGGishBackbone

        if clip is not None and clip < VGGishLogMel.min_samples():
            raise ValueError(
                f"--clip-length {clip} is too short for vggish: it needs at least "
                f"{VGGishLogMel.min_samples()} samples (one 0.96 s log-mel example at 16 kHz)"
            )
        params["backbone"] = VGGishBackbone(weights=args.backbone_weights, input_length=clip or 16000)
    elif clip is not None:
        params["clip_length"] = clip
    est: Any = (AudioClassifier if audio else TimeSeriesClassifier)(
        **params, random_state=args.seed, verbose=args.verbose
    )
    s = est.get_params()
    rows = [
        _fit_classifier(
            est,
            "reprogram",
            f"{s['backbone']} + {s['mapping']} (program {s['program']})",
            (x_train, y_train),
            (x_test, y_test),
            lambda e: int(e.num_trainable()),
        )
    ]
    if not args.no_baseline:
        from xdomain.baselines.log_mel import log_mel_statistics

        features: Callable[[Any], Any] = (
            log_mel_statistics if audio else functools.partial(series_matrix, missing=args.missing or "error")
        )
        what = "mean and std of 40 log-mel bands" if audio else "the raw series"
        baseline = make_pipeline(
            FunctionTransformer(features), StandardScaler(), LogisticRegression(max_iter=5000)
        )
        rows.append(
            _fit_classifier(
                baseline,
                "baseline",
                f"logistic regression on {what}",
                (x_train, y_train),
                (x_test, y_test),
                lambda b: _linear_size(b[-1]),
            )
        )
    doc = {
        "command": "classify",
        "dataset": args.dataset,
        "split": "official TRAIN/TEST" if not audio else "official FSDD split (recording index 0-4 test)",
        "n_train": len(y_train),
        "n_test": len(y_test),
        "classes": classes.tolist(),
        "class_counts": {"train": _counts(y_train), "test": _counts(y_test)},
        "limit": args.limit,
        "estimator": type(est).__name__,
        "settings": _settings(est),
        "results": rows,
    }
    _report(folder, doc, _table(rows, "accuracy", "test accuracy"), est, args.overwrite)
    return 0


# -- xdomain protein classify -----------------------------------------------------------------------------
def _protein_parser(sub: Any) -> None:
    from xdomain.estimators.proteins import HEAD_CHOICES
    from xdomain.transforms.vocab_map import SPARSITIES

    p = sub.add_parser(
        "protein", help="protein and peptide tasks through a frozen English language model (R2DL)"
    )
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser(
        "classify",
        help="classify proteins or peptides (AMP, DeepSol solubility, or your FASTA and labels)",
        description="Reprogram a frozen language model with a vocabulary map (ProteinClassifier) and report "
        "test accuracy, trainable parameters and train seconds beside a k-mer logistic regression. "
        "peptides/amp: AMP vs UniProt (modlAMP), a fixed stratified split (amp_split, --test-size, --seed); "
        "peptides/amp-transmembrane likewise; proteins/deepsol: trained on DeepSol's val file (a part held "
        "back inside the estimator), tested on its test file. --fasta with --labels: your data, split "
        "like AMP.",
    )
    source = c.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=PROTEIN_DATASETS, help="a bundled benchmark")
    source.add_argument("--fasta", metavar="PATH", help="your sequences (FASTA), with --labels")
    c.add_argument(
        "--labels",
        metavar="PATH",
        help="labels for --fasta: a text file with one label a line in FASTA order, or a .csv with columns "
        "id and label (matched by FASTA id)",
    )
    c.add_argument(
        "--test-size",
        type=_float_in(0.0, 1.0, True, True),
        default=None,
        help="held-out test fraction for peptides/amp* and --fasta (default 0.2)",
    )
    c.add_argument(
        "--backbone",
        default=None,
        help="minilm (default), antiberty, a transformers masked-LM name or folder",
    )
    c.add_argument("--head", default=None, choices=HEAD_CHOICES, help="output head (default linear)")
    c.add_argument("--sparsity", default=None, choices=SPARSITIES, help="vocabulary map (default dense)")
    c.add_argument(
        "--k", type=_positive, default=None, help="source tokens per amino acid for --sparsity topk"
    )
    c.add_argument("--l1", type=_positive_float, default=None, help="L1 penalty for --sparsity l1")
    c.add_argument(
        "--max-length",
        type=_positive,
        default=None,
        help=f"most residues a sequence (default: the backbone's limit; {DEEPSOL_MAX_LENGTH} for DeepSol)",
    )
    c.add_argument(
        "--too-long",
        default=None,
        choices=("error", "truncate"),
        help="longer sequences: an error, or cut to --max-length (default error; truncate for DeepSol)",
    )
    _add_training(c, "10 epochs, batch 32, lr 0.001, patience 3, validation fraction 0.1")
    _add_run(c, _LIMIT_HELP)
    c.add_argument("--no-baseline", action="store_true", help="skip the k-mer logistic-regression baseline")
    c.set_defaults(handler=_protein_classify)


def _read_labels(path: str, ids: list[str]) -> Any:
    """Labels for the FASTA records ``ids``, as text, in their order."""
    import numpy as np
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"labels file not found: {path!r}")
    if file.suffix.lower() == ".csv":
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
        if "id" not in frame.columns or "label" not in frame.columns:
            raise ValueError(f"{path!r} has the columns {list(frame.columns)}; expected 'id' and 'label'")
        by_id = dict(zip(frame["id"], frame["label"], strict=True))
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ValueError(
                f"{path!r} has no label for {len(missing)} FASTA record(s), first {missing[0]!r}; "
                "expected a row for every id"
            )
        labels = [by_id[i] for i in ids]
    else:
        labels = file.read_text(encoding="utf-8").splitlines()
        while labels and not labels[-1].strip():
            labels.pop()
        if len(labels) != len(ids):
            raise ValueError(
                f"{path!r} holds {len(labels)} labels for {len(ids)} FASTA records; expected one label a "
                "line, in the FASTA's order"
            )
    empty = [n for n, label in enumerate(labels, start=1) if not label.strip()]
    if empty:
        raise ValueError(f"{path!r}: label {empty[0]} is empty; expected a label for every sequence")
    return np.asarray([label.strip() for label in labels], dtype=object)


def _protein_classify(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from xdomain.baselines.kmer import KmerLogisticRegression
    from xdomain.datasets.peptides import amp_split
    from xdomain.estimators.proteins import ProteinClassifier

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.labels is not None and args.fasta is None:
        raise ValueError("--labels goes with --fasta (the labels of your sequences)")
    deepsol = args.dataset == "proteins/deepsol"
    if deepsol and args.test_size is not None:
        raise ValueError(
            "--test-size applies to peptides/amp* and --fasta; DeepSol has an official test file"
        )
    folder = _out_folder(args.out, args.overwrite)
    seqs: list[str]
    labels: Any
    if deepsol:
        from xdomain.datasets.deepsol import load_deepsol

        train_seqs, y_train = load_deepsol("val", args.data_home)
        test_seqs, y_test = load_deepsol("test", args.data_home)
        split = "DeepSol val file (train; the estimator holds a part back), test file (test)"
        if args.max_length is None:
            args.max_length = DEEPSOL_MAX_LENGTH
        if args.too_long is None:
            args.too_long = "truncate"
    else:
        if args.fasta is not None:
            from xdomain.datasets.sequences import read_sequences

            if args.labels is None:
                raise ValueError("--fasta needs --labels (a label for each sequence)")
            records = read_sequences(Path(args.fasta))
            seqs, labels = records.sequences, _read_labels(args.labels, records.ids)
            name = args.fasta
        else:
            from xdomain.datasets.peptides import load_amp

            seqs, labels = load_amp(_AMP_NAMES[args.dataset], args.data_home)
            name = args.dataset
        test_size = 0.2 if args.test_size is None else args.test_size
        train_idx, test_idx = amp_split(seqs, labels, test_size=test_size, seed=args.seed)
        train_seqs, y_train = [seqs[i] for i in train_idx], labels[train_idx]
        test_seqs, y_test = [seqs[i] for i in test_idx], labels[test_idx]
        split = f"stratified amp_split of {name}: test_size {test_size}, seed {args.seed}"
    tr = _subset(list(y_train), args.limit, args.seed)
    te = _subset(list(y_test), args.limit, args.seed)
    train_seqs, y_train, test_seqs, y_test = (
        _take(train_seqs, tr),
        y_train[tr],
        _take(test_seqs, te),
        y_test[te],
    )
    dataset = args.dataset or args.fasta
    _log(
        f"{dataset}: {len(y_train)} training and {len(y_test)} test sequences"
        + (f" (--limit {args.limit})" if args.limit else "")
    )
    if args.too_long == "truncate" and args.max_length is not None:
        cut = sum(len(s) > args.max_length for s in [*train_seqs, *test_seqs])
        _log(
            f"truncating {cut} of {len(train_seqs) + len(test_seqs)} sequences to their first "
            f"{args.max_length} residues for the reprogrammed model (--too-long truncate); the k-mer "
            "baseline reads them whole"
        )
    params = _given(args, ("backbone", "head", "sparsity", "k", "l1", "max_length", "too_long", *_TRAINING))
    est = ProteinClassifier(**params, random_state=args.seed, verbose=args.verbose)
    s = est.get_params()
    rows = [
        _fit_classifier(
            est,
            "reprogram",
            f"{s['backbone']}, {s['sparsity']} vocabulary map, {s['head']} head",
            (train_seqs, y_train),
            (test_seqs, y_test),
            lambda e: int(e.num_trainable()),
        )
    ]
    if not args.no_baseline:
        rows.append(
            _fit_classifier(
                KmerLogisticRegression(),
                "baseline",
                "logistic regression on 1..3-mer frequencies",
                (train_seqs, y_train),
                (test_seqs, y_test),
                lambda b: _linear_size(b.model_),
            )
        )
    doc = {
        "command": "protein classify",
        "dataset": dataset,
        "split": split,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "classes": np.unique(y_train).tolist(),
        "class_counts": {"train": _counts(y_train), "test": _counts(y_test)},
        "limit": args.limit,
        "estimator": "ProteinClassifier",
        "settings": _settings(est),
        "results": rows,
    }
    _report(folder, doc, _table(rows, "accuracy", "test accuracy"), est, args.overwrite)
    return 0


# -- xdomain antibody train / infill ------------------------------------------------------------------------
def _antibody_parser(sub: Any) -> None:
    from xdomain.transforms.vocab_map import SPARSITIES

    p = sub.add_parser(
        "antibody", help="antibody CDR infilling through a frozen English masked LM (ReprogBERT)"
    )
    actions = p.add_subparsers(dest="action", required=True)
    t = actions.add_parser(
        "train",
        help="train an AntibodyInfiller on SAbDab and report CDR recovery",
        description="Train on the SAbDab CDR-H3 cluster split's val file (RefineGNN; a part held back inside "
        "the estimator), report amino-acid recovery of the most likely infill on its test file (or RAbD) "
        "beside the position-frequency baseline fitted on the same training chains.",
    )
    t.add_argument("--dataset", default="sabdab", choices=("sabdab",), help="training data (default sabdab)")
    t.add_argument(
        "--test-split",
        default="test",
        choices=("test", "rabd"),
        help="where recovery is measured (default test)",
    )
    t.add_argument("--region", type=_region, default="CDR-H3", help="CDR-H1, CDR-H2 or CDR-H3 (default)")
    t.add_argument(
        "--backbone", default=None, help="minilm (default), a transformers masked-LM name or local folder"
    )
    t.add_argument("--sparsity", default=None, choices=SPARSITIES, help="vocabulary map (default dense)")
    t.add_argument(
        "--k", type=_positive, default=None, help="source tokens per amino acid for --sparsity topk"
    )
    t.add_argument("--l1", type=_positive_float, default=None, help="L1 penalty for --sparsity l1")
    t.add_argument(
        "--max-length", type=_positive, default=None, help="most residues a chain (default: the backbone's)"
    )
    t.add_argument(
        "--too-long", default=None, choices=("error", "truncate"), help="longer chains (default error)"
    )
    t.add_argument(
        "--samples",
        type=_int_at_least(0),
        default=0,
        help="also report recovery and diversity of this many sampled designs a test chain (default 0)",
    )
    t.add_argument(
        "--temperature", type=_float_in(0.0, math.inf, False, True), default=1.0, help="for --samples"
    )
    _add_training(t, "10 epochs, batch 16, lr 0.001, patience 3, validation fraction 0.1")
    _add_run(t, "smoke runs: only the first N chains of the training and of the test file")
    t.set_defaults(handler=_antibody_train)

    i = actions.add_parser(
        "infill",
        help="sample new CDRs for antibody chains with a trained infiller",
        description="Load a trained AntibodyInfiller (the --out folder of 'xdomain antibody train', or its "
        "model/ folder) and sample --n designs of a region for one chain (--sequence with --cdr-mask) or "
        "for every chain of a CSV with columns pdb, seq, cdr (--chains PATH or sabdab/<split>). Writes "
        "FASTA to --output, or to standard output.",
    )
    i.add_argument("--model", required=True, metavar="DIR", help="a trained AntibodyInfiller")
    i.add_argument("--sequence", metavar="SEQ", help="one heavy chain")
    i.add_argument(
        "--cdr-mask", metavar="MASK", help="its CDR mask: a digit a residue, 0 framework, 1/2/3 CDR-H1/H2/H3"
    )
    i.add_argument(
        "--chains", metavar="CSV", help="chains with masks: a CSV with columns pdb,seq,cdr, or sabdab/<split>"
    )
    i.add_argument("--limit", type=_positive, default=None, metavar="N", help="only the first N --chains")
    i.add_argument("--region", type=_region, default=None, help="region to redesign (default: the model's)")
    i.add_argument("--n", type=_positive, default=100, help="designs a chain (default 100)")
    i.add_argument(
        "--temperature",
        type=_float_in(0.0, math.inf, False, True),
        default=1.0,
        help="sampling temperature; 0 gives the most likely design (default 1.0)",
    )
    i.add_argument("--seed", type=_seed, default=None, help="sampling seed (default: the model's)")
    i.add_argument(
        "--output", metavar="PATH", default=None, help="FASTA file to write (default: standard output)"
    )
    i.add_argument("--threads", type=_positive, default=None, help="torch CPU threads")
    i.set_defaults(handler=_antibody_infill)


def _antibody_train(args: argparse.Namespace) -> int:
    import torch

    from xdomain.baselines.position_frequency import position_frequency_infill
    from xdomain.datasets.sabdab import load_sabdab_cdr
    from xdomain.estimators.antibodies import AntibodyInfiller

    if args.threads:
        torch.set_num_threads(args.threads)
    folder = _out_folder(args.out, args.overwrite)
    chains, masks, _ = load_sabdab_cdr("val", args.data_home)
    # chains of the training file are removed from the test file (RAbD shares 5 with val, split_overlap.md)
    test_chains, test_masks, _ = load_sabdab_cdr(args.test_split, args.data_home, exclude="val")
    if args.limit is not None:
        # the first chains of each file: no classes to balance, and a subset anyone can name
        chains, masks = chains[: args.limit], masks[: args.limit]
        test_chains, test_masks = test_chains[: args.limit], test_masks[: args.limit]
    _log(
        f"SAbDab: {len(chains)} training chains (val file), {len(test_chains)} test chains "
        f"({args.test_split} file), region {args.region}" + (f" (--limit {args.limit})" if args.limit else "")
    )
    params = _given(args, ("backbone", "sparsity", "k", "l1", "max_length", "too_long", *_TRAINING))
    est = AntibodyInfiller(**params, region=args.region, random_state=args.seed, verbose=args.verbose)
    s = est.get_params()
    description = f"{s['backbone']}, {s['sparsity']} vocabulary map, vocabulary projection"
    _log(f"training reprogram: {description}")
    start = time.perf_counter()
    est.fit(chains, masks)
    seconds = time.perf_counter() - start
    scores = est.evaluate(test_chains, test_masks, n=args.samples, temperature=args.temperature)
    history = est.history_
    rows = [
        {
            "model": "reprogram",
            "description": description,
            **scores,
            "trainable_parameters": est.num_trainable(),
            "train_seconds": round(seconds, 3),
            "steps": history.steps,
            "epochs": history.epochs,
            "best_step": history.best_step,
            "stopped": history.stopped,
        }
    ]
    start = time.perf_counter()
    base = position_frequency_infill(chains, masks, test_chains, test_masks, region=args.region)
    rows.append(
        {
            "model": "baseline",
            "description": "most frequent residue at each region position of the training chains",
            **base,
            "trainable_parameters": None,
            "train_seconds": round(time.perf_counter() - start, 3),
        }
    )
    doc = {
        "command": "antibody train",
        "dataset": "SAbDab CDR-H3 cluster split (RefineGNN)",
        "train_split": "val",
        "test_split": args.test_split,
        "region": args.region,
        "n_train": len(chains),
        "n_test": len(test_chains),
        "limit": args.limit,
        "samples": args.samples,
        "temperature": args.temperature,
        "estimator": "AntibodyInfiller",
        "settings": _settings(est),
        "results": rows,
    }
    _report(folder, doc, _table(rows, "recovery", f"test {args.region} recovery"), est, args.overwrite)
    return 0


def _infill_chains(args: argparse.Namespace) -> tuple[list[str], list[str], list[Any]]:
    """``(names, chains, masks)`` of the chains to redesign."""
    if args.chains is not None:
        if args.sequence is not None or args.cdr_mask is not None:
            raise ValueError("give either --chains or --sequence with --cdr-mask, not both")
        from xdomain.datasets.sabdab import load_sabdab_cdr, read_cdr_csv
        from xdomain.datasets.sequences import FASTA_SUFFIXES

        if args.chains.lower().startswith("sabdab/"):
            chains, masks, ids = load_sabdab_cdr(args.chains.split("/", 1)[1])
        else:
            path = Path(args.chains)
            if path.suffix.lower() in FASTA_SUFFIXES:
                raise ValueError(
                    f"--chains {args.chains!r} is a FASTA file, which holds no CDR masks; give a CSV with "
                    "columns pdb,seq,cdr, or one chain with --sequence and --cdr-mask"
                )
            if not path.is_file():
                raise FileNotFoundError(f"--chains file not found: {args.chains!r}")
            chains, masks, ids = read_cdr_csv(path)
        keep = len(chains) if args.limit is None else args.limit
        chains, masks, ids = chains[:keep], masks[:keep], ids[:keep]
        # PDB ids repeat when a structure holds several heavy chains: the row number keeps names apart
        names = ids if len(set(ids)) == len(ids) else [f"{pdb}_{row}" for row, pdb in enumerate(ids)]
        return names, chains, list(masks)
    if args.sequence is None or args.cdr_mask is None:
        raise ValueError("give --sequence with --cdr-mask (one chain), or --chains (a CSV of chains)")
    if args.limit is not None:
        raise ValueError("--limit applies to --chains, not to one --sequence")
    return ["design"], [args.sequence], [args.cdr_mask]


def _antibody_infill(args: argparse.Namespace) -> int:
    import torch
    from Bio import SeqIO
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord

    from xdomain.checkpoint import is_checkpoint
    from xdomain.datasets.sequences import write_fasta
    from xdomain.estimators import AntibodyInfiller

    if args.threads:
        torch.set_num_threads(args.threads)
    names, chains, masks = _infill_chains(args)
    output = None if args.output is None else Path(args.output)
    if output is not None and not output.parent.is_dir():
        raise FileNotFoundError(
            f"folder {str(output.parent)!r} does not exist; create it before writing designs"
        )
    model_dir = Path(args.model)
    if not is_checkpoint(model_dir) and is_checkpoint(model_dir / "model"):
        model_dir = model_dir / "model"
    infiller = AntibodyInfiller.load(model_dir)
    region = args.region or infiller.region
    ids: list[str] = []
    designs: list[str] = []
    descriptions: list[str] = []
    for name, chain, mask in zip(names, chains, masks, strict=True):
        sampled = infiller.infill(
            chain, mask, region=region, n=args.n, temperature=args.temperature, seed=args.seed
        )
        ids += [f"{name}_{k}" for k in range(1, len(sampled) + 1)]
        designs += sampled
        descriptions += [f"region={region} temperature={args.temperature:g} source={name}"] * len(sampled)
    if output is not None:
        write_fasta(designs, output, ids=ids, descriptions=descriptions)
        _log(f"wrote {len(designs)} designs of {region} for {len(chains)} chain(s) to {output}")
    else:
        records = [
            SeqRecord(Seq(seq), id=sid, description=f"{sid} {desc}")
            for seq, sid, desc in zip(designs, ids, descriptions, strict=True)
        ]
        SeqIO.write(records, sys.stdout, "fasta")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xdomain",
        description="Cross-domain model reprogramming: frozen pretrained models reused for new domains.",
    )
    from xdomain import __version__

    parser.add_argument("--version", action="version", version=f"xdomain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _forecast_parser(sub)
    _classify_parser(sub)
    _protein_parser(sub)
    _antibody_parser(sub)
    b = sub.add_parser("bench", help="run a benchmark script (from a source checkout)")
    b.add_argument("what", choices=tuple(BENCHMARKS))
    b.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "forecast":
            return _forecast(args)
        handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
        if handler is not None:
            return handler(args)
        return _bench(args)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError) as err:
        print(f"xdomain: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

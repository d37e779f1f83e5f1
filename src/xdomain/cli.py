"""The ``xdomain`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

MODELS = ("reprogram", "no-backbone", "attention-only", "dlinear")


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
    p.add_argument("--no-progress", action="store_true")


def _forecast(args: argparse.Namespace) -> int:
    import torch

    from xdomain.backbones.language import load_backbone
    from xdomain.config import ForecastConfig, TrainConfig
    from xdomain.datasets.ett import DESCRIPTION, ett_splits
    from xdomain.experiments import plot_forecasts, results_table, run_ett
    from xdomain.models import needs_backbone

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
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for r in results:
            assert r.forecaster is not None
            r.forecaster.save(out / r.model)
        doc = {"dataset": splits.name, "train_config": train.to_dict(), "results": [r.row() for r in results]}
        (out / "metrics.json").write_text(json.dumps(doc, indent=2))
        (out / "metrics.md").write_text(table + "\n")
        plot = plot_forecasts(splits, results, out / "forecast.png")
        print(f"[xdomain] wrote checkpoints, {out / 'metrics.json'} and {plot}", file=sys.stderr)
    return 0


def _bench(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[2] / "benchmarks"
    script = root / f"{args.what}_etth1.py" if args.what == "forecast" else None
    if script is None or not script.is_file():
        print(
            f"benchmark {args.what!r} not found (expected {script}); run it from a source checkout",
            file=sys.stderr,
        )
        return 2
    os.execv(sys.executable, [sys.executable, str(script), *args.rest])
    return 0  # pragma: no cover


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xdomain",
        description="Cross-domain model reprogramming: frozen pretrained models reused for new domains.",
    )
    from xdomain import __version__

    parser.add_argument("--version", action="version", version=f"xdomain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _forecast_parser(sub)
    b = sub.add_parser("bench", help="run a benchmark script (from a source checkout)")
    b.add_argument("what", choices=("forecast",))
    b.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "forecast":
            return _forecast(args)
        return _bench(args)
    except (ValueError, FileNotFoundError, KeyError) as err:
        print(f"xdomain: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

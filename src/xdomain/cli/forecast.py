"""``xdomain forecast``: train and evaluate forecasting models on an ETT benchmark data set."""

from __future__ import annotations

import argparse
import sys

from xdomain.backbones.language import load_backbone
from xdomain.cli.common import OVERWRITE_HELP, Subparsers, config_from_args, set_threads
from xdomain.cli.outdir import out_folder, write_run_marker
from xdomain.config import (
    FORECAST_MODELS,
    LINEAR_PATHS,
    LR_SCHEDULES,
    PRECISIONS,
    PROMPT_STATS,
    PROTOTYPES,
    ForecastConfig,
    TrainConfig,
)
from xdomain.datasets.ett import DESCRIPTION, ett_splits
from xdomain.estimators.forecasting import needs_backbone, plot_forecasts, results_table, run_ett
from xdomain.reporting import write_results

MODELS = FORECAST_MODELS
FORECAST_FILES = ("metrics.json", "metrics.md", "forecast.png")  # beside one checkpoint folder a model


def register(sub: Subparsers) -> None:
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
    p.add_argument("--prototypes", default="kmeans", choices=PROTOTYPES,
                   help="text prototypes: kmeans (trainable, from k-means of the word embeddings; default), "
                   "kmeans-fixed, or map (Time-LLM's Linear(vocab -> prototypes))")
    p.add_argument("--linear-path", default="fixed", choices=LINEAR_PATHS,
                   help="the closed-form ridge path the model corrects (default fixed; off: no linear path)")
    p.add_argument("--prompt-stats", default="soft", choices=PROMPT_STATS,
                   help="the prompt's per-series statistics (default soft: 4 learned tokens)")
    p.add_argument("--no-prefix-cache", dest="prefix_cache", action="store_false",
                   help="run the prompt's constant text through the backbone at every step")
    p.add_argument("--patch-len", type=int, default=None,
                   help="patch length (default: 32, capped at the lookback; time-llm: 16)")
    p.add_argument("--stride", type=int, default=None,
                   help="patch stride (default: the patch length; time-llm: 8)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: per model, time-llm 0.01, dlinear 0.005, reprogram and the "
                   "ablations 0.001)")
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--lr-schedule", default="warmup-cosine", choices=LR_SCHEDULES,
                   help="warmup-cosine (default), halving (DLinear's recipe: halved after every epoch), "
                   "constant")
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
    p.add_argument("--mixed-precision", default="no", choices=PRECISIONS)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default=None, help="folder for checkpoints, metrics.json and forecast.png")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    set_threads(args)
    models = [args.model] + [m for m in args.compare if m != args.model]
    # the flags named like TrainConfig's and ForecastConfig's fields; the others set here
    # validate_first: the models with a linear path start as the linear model, a candidate to keep
    train = config_from_args(TrainConfig, args, progress=not args.no_progress, validate_first=True)
    description = DESCRIPTION if args.dataset.lower().startswith("ett") else ""
    configs = [
        config_from_args(ForecastConfig, args, model=m, prompt=not args.no_prompt, description=description)
        for m in models
    ]
    out = out_folder(args.out, args.overwrite, files=FORECAST_FILES, checkpoints=models)
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
        write_results(out / "metrics", table, doc)
        plot = plot_forecasts(splits, results, out / "forecast.png")
        write_run_marker(out, "forecast", [*models, *FORECAST_FILES])
        print(f"[xdomain] wrote checkpoints, {out / 'metrics.json'} and {plot}", file=sys.stderr)
    return 0

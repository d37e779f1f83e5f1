"""Benchmark: Time-LLM-style reprogramming of a frozen MiniLM on ETTh1, beside its ablations and DLinear.

One process, the same splits and seed for every model:

- ``reprogram``: patch reprogramming + Prompt-as-Prefix + frozen MiniLM + flatten head (Time-LLM);
- ``no-backbone``: the same pipeline with the language model removed (Tan et al., "w/o LLM");
- ``attention-only``: the language model replaced by one trainable attention layer ("LLM2Attn");
- ``dlinear``: DLinear (Zeng et al.), the published ETTh1-96 baseline.

Protocol: lookback 512, horizon 96, the official 12/4/4-month split, data standardised with train
statistics; validation chooses the weights (early stopping), the test split reports MSE/MAE on every
window. ``--protocol few-shot`` trains on the first 10% of the training span (Time-LLM's few-shot
setting); ``--protocol full`` on all of it. Also measured: the cost of one training step of the
reprogrammed model against the bare backbone's forward+backward on the same tokens.

    python benchmarks/forecast_etth1.py --protocol few-shot
    python benchmarks/forecast_etth1.py --protocol full --models dlinear no-backbone

Writes ``benchmarks/results/forecast_etth1[_<protocol>].{json,md}`` (``--out STEM``: ``STEM.{json,md}``).
A smoke run on a tiny budget (seconds)::

    python benchmarks/forecast_etth1.py --models dlinear --lookback 32 --horizon 8 --epochs 1 \
        --max-steps 2 --val-windows 16 --no-step-cost --out /tmp/forecast_smoke
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from xdomain.backbones.language import LanguageBackbone, load_backbone
from xdomain.config import ForecastConfig, TrainConfig
from xdomain.datasets.ett import DESCRIPTION, ett_splits
from xdomain.estimators.forecasting import build_model, ett_datasets, needs_backbone, results_table, run_ett
from xdomain.reporting import write_results
from xdomain.training.trainer import set_seed

RESULTS = Path(__file__).resolve().parent / "results"
NOTES = """Columns: MSE/MAE on standardised data over every test window and channel; `MSE / dlinear` the
ratio to DLinear trained in the same run; `val MSE` the best validation loss (it chose the weights);
`s / epoch` training seconds (validation excluded) divided by the epochs run; `infer windows / s` test windows
(one channel each) per second; `peak MB` the process's peak RSS during the model's run, which includes
the loaded MiniLM and whatever earlier runs in the process left allocated (an upper bound, not a
footprint); `added MB` its rise over the RSS at the start of the run (a lower bound: memory freed by
earlier runs is reused). All runs on the CPU of the machine named in the JSON."""
TARGETS = {"few-shot": 0.448, "full": 0.375}


def step_cost(
    config: ForecastConfig, train: TrainConfig, backbone: LanguageBackbone, splits: object, repeats: int = 3
) -> dict[str, float]:
    """Seconds of one training step (forward, backward, AdamW) of the reprogrammed model, against the bare
    backbone's forward+backward (gradient to its inputs, as reprogramming needs) on the same tokens."""
    set_seed(train.seed)
    model = build_model(config, backbone)
    model.train()
    train_ds, _, _ = ett_datasets(splits, config, train)  # type: ignore[arg-type]
    batch = [train_ds[i] for i in range(train.batch_size)]
    x = torch.stack([b[0] for b in batch])
    y = torch.stack([b[1] for b in batch])
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=train.resolved_lr(config.model), fused=True)
    n_tokens = model.transform.num_tokens(config.lookback) + (model.prompt.length if model.prompt else 0)

    def model_step() -> None:
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    embeds = torch.randn(x.shape[0] * x.shape[2], n_tokens, backbone.hidden_size, requires_grad=True)

    def backbone_step() -> None:
        backbone(embeds).pow(2).mean().backward()
        embeds.grad = None

    times: dict[str, list[float]] = {"model": [], "backbone": []}
    for _ in range(repeats + 1):  # the first round warms up
        for name, fn in (("backbone", backbone_step), ("model", model_step)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    model_s = statistics.median(times["model"][1:])
    backbone_s = statistics.median(times["backbone"][1:])
    return {
        "tokens_per_series": float(n_tokens),
        "series_per_step": float(x.shape[0] * x.shape[2]),
        "step_seconds": model_s,
        "backbone_fwd_bwd_seconds": backbone_s,
        "ratio": model_s / backbone_s,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", default="few-shot", choices=("few-shot", "full"))
    p.add_argument("--models", nargs="+", default=["reprogram", "no-backbone", "attention-only", "dlinear"])
    p.add_argument("--dataset", default="ETTh1")
    p.add_argument("--lookback", type=int, default=512)
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--backbone", default="minilm")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=None, help="all models (default: config.DEFAULT_LR per model)")
    p.add_argument("--model-lr", nargs="*", default=[], metavar="MODEL=LR",
                   help="per-model learning rates, e.g. reprogram=0.01 dlinear=0.005 (published values)")
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--val-every", type=int, default=None)
    p.add_argument("--val-windows", type=int, default=None)
    p.add_argument("--max-train-seconds", type=float, default=None, help="per model")
    p.add_argument("--max-steps", type=int, default=None, help="per model: stop after this many steps")
    p.add_argument("--seed", type=int, default=2021)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-step-cost", action="store_true")
    p.add_argument("--tag", default="", help="suffix for the result files (keeps runs apart)")
    p.add_argument("--step-cost-only", action="store_true", help="measure the step cost, train nothing")
    p.add_argument("--step-batch-sizes", type=int, nargs="+", default=None,
                   help="batch sizes for the step-cost measurement (default: --batch-size)")
    p.add_argument("--out", default=None, metavar="STEM",
                   help="write STEM.json and STEM.md (default: benchmarks/results/forecast_<dataset>_...)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stdout)
    if args.threads:
        torch.set_num_threads(args.threads)

    fraction = 0.1 if args.protocol == "few-shot" else 1.0
    train = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        seed=args.seed,
        train_fraction=fraction,
        val_every=args.val_every,
        val_windows=args.val_windows,
        max_train_seconds=args.max_train_seconds,
        max_steps=args.max_steps,
        progress=False,
    )
    configs = [
        ForecastConfig(
            lookback=args.lookback,
            horizon=args.horizon,
            model=m,
            backbone=args.backbone,
            description=DESCRIPTION,
        )
        for m in args.models
    ]
    splits = ett_splits(args.dataset, args.lookback)
    backbone = load_backbone(args.backbone) if any(needs_backbone(c) for c in configs) else None

    doc: dict[str, object] = {
        "dataset": splits.name,
        "protocol": args.protocol,
        "lookback": args.lookback,
        "horizon": args.horizon,
        "backbone": args.backbone,
        "train_config": train.to_dict(),
        "target_mse": TARGETS[args.protocol],
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
        },
        "command": " ".join([os.path.basename(sys.argv[0]), *(sys.argv[1:] if argv is None else argv)]),
    }
    if backbone is not None and "reprogram" in args.models and not args.no_step_cost:
        costs = []
        for size in args.step_batch_sizes or [args.batch_size]:
            sized = TrainConfig.from_dict({**train.to_dict(), "batch_size": size})
            costs.append(step_cost(configs[args.models.index("reprogram")], sized, backbone, splits))
        cost = costs[0]
        doc["step_cost"] = cost
        doc["step_costs"] = costs
        print(
            f"step cost: {cost['step_seconds']:.2f} s per training step vs "
            f"{cost['backbone_fwd_bwd_seconds']:.2f} s bare backbone fwd+bwd on the same "
            f"{cost['series_per_step']:.0f} x {cost['tokens_per_series']:.0f}"
            f" tokens: ratio {cost['ratio']:.2f} (target <= 1.3)",
            flush=True,
        )
        for c in costs[1:]:
            print(f"  batch {c['series_per_step']:.0f}: ratio {c['ratio']:.2f}", flush=True)
    if args.step_cost_only:
        stem = Path(args.out) if args.out else RESULTS / f"forecast_{splits.name.lower()}_step_cost"
        lines = ["| series per step | tokens per series | step s | bare backbone fwd+bwd s | ratio |",
                 "|---|---|---|---|---|"]
        lines += [
            f"| {c['series_per_step']:.0f} | {c['tokens_per_series']:.0f} | {c['step_seconds']:.2f} | "
            f"{c['backbone_fwd_bwd_seconds']:.2f} | {c['ratio']:.2f} |"
            for c in costs
        ]
        write_results(stem, f"Command: `{doc['command']}`\n\n" + "\n".join(lines), doc)
        print("\n".join(lines))
        return 0
    model_lr = {}
    for item in args.model_lr:
        name, _, value = item.partition("=")
        if name not in args.models or not value:
            p.error(f"--model-lr expects MODEL=LR with MODEL in {args.models}, got {item!r}")
        model_lr[name] = float(value)
    doc["model_lr"] = {m: model_lr.get(m, train.resolved_lr(m)) for m in args.models}
    results = []
    for cfg in configs:
        print(f"training {cfg.model} ({args.protocol}) ...", flush=True)
        run_train = TrainConfig.from_dict({**train.to_dict(), "lr": doc["model_lr"][cfg.model]})
        r = run_ett(cfg, run_train, splits=splits, backbone=backbone if needs_backbone(cfg) else None)
        print(
            f"  {cfg.model}: test MSE {r.mse:.4f} MAE {r.mae:.4f} ({r.steps} steps, {r.stopped})", flush=True
        )
        results.append(r)
    table = results_table(results)
    doc["results"] = [r.row() for r in results]
    print(table)
    default = RESULTS / f"forecast_{splits.name.lower()}_{args.protocol}{'_' + args.tag if args.tag else ''}"
    stem = Path(args.out) if args.out else default
    md = [
        f"# {splits.name}, {args.protocol}, lookback {args.lookback}, horizon {args.horizon}",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"Learning rates: {doc['model_lr']}",
        "",
        table,
        "",
        f"Target test MSE ({args.protocol}): <= {TARGETS[args.protocol]}",
        "",
        NOTES,
    ]
    if "step_cost" in doc:
        c = doc["step_cost"]
        assert isinstance(c, dict)
        md.append(
            f"Training step / bare backbone fwd+bwd on the same tokens: {c['ratio']:.2f} "
            f"({c['step_seconds']:.2f} s vs {c['backbone_fwd_bwd_seconds']:.2f} s; target <= 1.3)"
        )
    write_results(stem, "\n".join(md), doc)
    print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

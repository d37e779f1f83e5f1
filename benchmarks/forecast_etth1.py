"""Benchmark: Time-LLM-style reprogramming of a frozen MiniLM on ETTh1, beside its ablations and DLinear.

One process, the same splits and seed for every model:

- ``reprogram`` (the default): a closed-form ridge path plus the correction of patch reprogramming (k-means
  prototypes) + a constant-first prompt (its constant text cached) + frozen MiniLM + a zero-initialised head;
- ``time-llm``: Time-LLM as published (Linear(vocab -> prototypes), the interleaved prompt, no linear path);
- ``no-backbone``: the default's design with the language model removed (Tan et al., "w/o LLM");
- ``attention-only``: the language model replaced by one trainable attention layer ("LLM2Attn");
- ``linear``: the ridge path alone (closed form, lambda and RevIN chosen on validation);
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
import dataclasses
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from xdomain.backbones.language import LanguageBackbone, load_backbone
from xdomain.config import ForecastConfig, TrainConfig
from xdomain.datasets.ett import DESCRIPTION, ett_splits
from xdomain.estimators.forecasting import build_model, ett_datasets, needs_backbone, results_table, run_ett
from xdomain.reporting import write_results
from xdomain.training.trainer import set_seed

RESULTS = Path(__file__).resolve().parent / "results"
NOTES = """Columns: MSE/MAE on standardised data over every test window and channel; `MSE / linear` the
ratio to the closed-form ridge model fitted in the same run (`MSE / dlinear` where it did not run);
`trainable params` the parameters set from data (a linear path fitted in closed form included); `val MSE`
the best validation loss (it chose the weights);
`s / epoch` training seconds (validation excluded) divided by the epochs run; `infer windows / s` test windows
(one channel each) per second; `peak MB` the process's peak RSS during the model's run, which includes
the loaded MiniLM and whatever earlier runs in the process left allocated (an upper bound, not a
footprint); `added MB` its rise over the RSS at the start of the run (a lower bound: memory freed by
earlier runs is reused). All runs on the CPU of the machine named in the JSON."""
TARGETS = {"few-shot": 0.400, "full": 0.360}  # issue 10: the default reprogrammed model, below linear


def step_cost(
    config: ForecastConfig, train: TrainConfig, backbone: LanguageBackbone, splits: object, repeats: int = 3
) -> dict[str, float]:
    """Seconds of one training step (forward, backward, AdamW) of the reprogrammed model, against the bare
    backbone's forward+backward (gradient to its inputs, as reprogramming needs) on the same tokens and on
    the patch tokens alone; and inference windows per second of the model against the Time-LLM
    configuration (``time-llm``, same patching) on the same batch."""
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

    n_patches = model.transform.num_tokens(config.lookback)
    series = x.shape[0] * x.shape[2]
    embeds = torch.randn(series, n_tokens, backbone.hidden_size, requires_grad=True)
    patch_embeds = torch.randn(series, n_patches, backbone.hidden_size, requires_grad=True)

    def backbone_step() -> None:
        backbone(embeds).pow(2).mean().backward()
        embeds.grad = None

    def patch_step() -> None:
        backbone(patch_embeds).pow(2).mean().backward()
        patch_embeds.grad = None

    set_seed(train.seed)
    time_llm = ForecastConfig.from_dict({**config.to_dict(), "model": "time-llm"})
    faithful = build_model(time_llm, backbone).eval()
    model_eval = build_model(config, backbone).eval()
    eval_x = torch.cat([x] * max(1, train.eval_batch_size // x.shape[0]))[: train.eval_batch_size]

    def infer(m: torch.nn.Module) -> Any:
        def run() -> None:
            with torch.no_grad():
                m(eval_x)
        return run

    steps = (("backbone", backbone_step), ("patches", patch_step), ("model", model_step),
             ("infer", infer(model_eval)), ("infer_time_llm", infer(faithful)))
    times: dict[str, list[float]] = {name: [] for name, _ in steps}
    for _ in range(repeats + 1):  # the first round warms up
        for name, fn in steps:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v[1:]) for k, v in times.items()}
    windows = float(eval_x.shape[0] * eval_x.shape[2])
    return {
        "tokens_per_series": float(n_tokens),
        "patch_tokens": float(n_patches),
        "series_per_step": float(series),
        "step_seconds": med["model"],
        "backbone_fwd_bwd_seconds": med["backbone"],
        "patches_fwd_bwd_seconds": med["patches"],
        "ratio": med["model"] / med["backbone"],
        "ratio_to_patch_tokens": med["model"] / med["patches"],
        "infer_windows_per_second": windows / med["infer"],
        "infer_windows_per_second_time_llm": windows / med["infer_time_llm"],
        "infer_speedup_vs_time_llm": med["infer_time_llm"] / med["infer"],
    }


def cost_table(costs: list[dict[str, float]]) -> str:
    lines = [
        "| series per step | tokens per series | patch tokens | step s | bare fwd+bwd s (same tokens) "
        "| ratio | bare fwd+bwd s (patch tokens) | ratio (target <= 1.15) | infer windows / s "
        "| time-llm windows / s | speed-up (target >= 4) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {c['series_per_step']:.0f} | {c['tokens_per_series']:.0f} | {c['patch_tokens']:.0f} | "
        f"{c['step_seconds']:.2f} | {c['backbone_fwd_bwd_seconds']:.2f} | {c['ratio']:.2f} | "
        f"{c['patches_fwd_bwd_seconds']:.2f} | {c['ratio_to_patch_tokens']:.2f} | "
        f"{c['infer_windows_per_second']:.1f} | {c['infer_windows_per_second_time_llm']:.1f} | "
        f"{c['infer_speedup_vs_time_llm']:.2f} |"
        for c in costs
    ]
    return "\n".join(lines)


def seed_table(results: list[Any]) -> str:
    """Mean ± sample std of the rows named ``model (seed s)``, grouped by model (one row: no std)."""
    groups: dict[str, list[Any]] = {}
    for r in results:
        groups.setdefault(r.model.split(" (seed ")[0], []).append(r)
    base = groups.get("linear")

    def cell(values: list[float]) -> str:
        sd = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
        return f"{statistics.fmean(values):.4f}{sd}"

    lines = ["| model | seeds | test MSE | test MAE | val MSE | MSE / linear |", "|---|---|---|---|---|---|"]
    for name, rs in groups.items():
        ratio = f"{statistics.fmean(r.mse for r in rs) / base[0].mse:.3f}" if base else "-"
        lines.append(f"| {name} | {len(rs)} | {cell([r.mse for r in rs])} | {cell([r.mae for r in rs])} | "
                     f"{cell([r.val_mse for r in rs])} | {ratio} |")
    return "\n".join(lines)


def write_table(
    args: argparse.Namespace, doc: dict[str, Any], dataset: str, results: list[Any], complete: bool
) -> Path:
    table = results_table(results)
    doc["results"] = [r.row() for r in results]
    doc["complete"] = complete
    default = RESULTS / f"forecast_{dataset.lower()}_{args.protocol}{'_' + args.tag if args.tag else ''}"
    stem = Path(args.out) if args.out else default
    md = [
        f"# {dataset}, {args.protocol}, lookback {args.lookback}, horizon {args.horizon}",
        "",
        f"Command: `{doc['command']}`",
        "",
        f"Learning rates: {doc['model_lr']}",
        "",
        table,
        *(["", "Mean ± std over the seeds (sample std):", "", seed_table(results)] if args.seeds else []),
        "",
        f"Target test MSE ({args.protocol}, the default reprogrammed model): <= {TARGETS[args.protocol]}",
        "",
        NOTES,
    ]
    if not complete:
        md[1:1] = ["", f"PARTIAL: {len(results)} of {doc['runs']} runs so far."]
    if "step_costs" in doc:
        costs = doc["step_costs"]
        assert isinstance(costs, list)
        md += ["", "Step cost and inference speed of `reprogram` (one batch, median of 3 after a warm-up):",
               "", cost_table(costs)]
    write_results(stem, "\n".join(md), doc)
    print(f"wrote {stem}.json and {stem}.md", flush=True)
    return stem


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", default="few-shot", choices=("few-shot", "full"))
    p.add_argument("--models", nargs="+",
                   default=["reprogram", "time-llm", "no-backbone", "attention-only", "linear", "dlinear"])
    p.add_argument("--patch-len", type=int, default=None, help="default: the model's (ForecastConfig)")
    p.add_argument("--stride", type=int, default=None, help="default: the model's (ForecastConfig)")
    p.add_argument("--prototypes", default="kmeans")
    p.add_argument("--prompt-stats", default="soft")
    p.add_argument("--linear-path", default="fixed")
    p.add_argument("--precision", default="no", choices=("no", "bf16"), help="autocast for training and test")
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
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="run every model trained by gradient once per seed (rows 'model (seed s)') and add a "
                        "mean ± std table; the closed-form linear model runs once (it has no seed)")
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
        mixed_precision=args.precision,
        progress=False,
        validate_first=True,
    )
    def spec(item: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """``reprogram`` or ``reprogram[prompt_stats=soft,stride=16]``: a model and its overrides of
        ForecastConfig and TrainConfig fields (``dlinear[lr_schedule=halving,epochs=10]``)."""
        name, _, rest = item.partition("[")
        model_fields = {f.name for f in dataclasses.fields(ForecastConfig)}
        train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
        overrides: tuple[dict[str, Any], dict[str, Any]] = ({}, {})
        for pair in filter(None, rest.rstrip("]").split(",")):
            key, _, value = pair.partition("=")
            if key not in model_fields | train_fields:
                p.error(f"unknown ForecastConfig / TrainConfig field {key!r} in {item!r}")
            default = getattr(ForecastConfig() if key in model_fields else TrainConfig(), key)
            overrides[key not in model_fields][key] = (
                value.lower() == "true" if isinstance(default, bool)
                else type(default)(value) if default is not None else int(value)
            )
        return name, *overrides

    specs = [spec(m) for m in args.models]
    labels = list(args.models)  # a variant is named as given: reprogram[prompt_stats=soft]
    if args.seeds:  # a row per seed of each model trained by gradient; the closed form has no seed
        seeded: list[tuple[str, tuple[str, dict[str, Any], dict[str, Any]]]] = [
            (label if m == "linear" else f"{label} (seed {seed})",
             (m, model_extra, extra if m == "linear" else {**extra, "seed": seed}))
            for label, (m, model_extra, extra) in zip(labels, specs, strict=True)
            for seed in ([args.seed] if m == "linear" else args.seeds)
        ]
        labels, specs = [label for label, _ in seeded], [sp for _, sp in seeded]
    base = dict(
        lookback=args.lookback, horizon=args.horizon, backbone=args.backbone, description=DESCRIPTION,
        patch_len=args.patch_len, stride=args.stride, prototypes=args.prototypes,
        prompt_stats=args.prompt_stats, linear_path=args.linear_path,
    )
    configs = [ForecastConfig(**{**base, "model": m, **extra}) for m, extra, _ in specs]
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
    if backbone is not None and "reprogram" in [m for m, _, _ in specs] and not args.no_step_cost:
        costs = []
        for size in args.step_batch_sizes or [args.batch_size]:
            sized = TrainConfig.from_dict({**train.to_dict(), "batch_size": size})
            chosen = configs[[m for m, _, _ in specs].index("reprogram")]
            costs.append(step_cost(chosen, sized, backbone, splits))
        cost = costs[0]
        doc["step_cost"] = cost
        doc["step_costs"] = costs
        print(
            f"step cost: {cost['step_seconds']:.2f} s per training step vs "
            f"{cost['backbone_fwd_bwd_seconds']:.2f} s bare backbone fwd+bwd on the same "
            f"{cost['series_per_step']:.0f} x {cost['tokens_per_series']:.0f}"
            f" tokens: ratio {cost['ratio']:.2f}; vs {cost['patches_fwd_bwd_seconds']:.2f} s on the "
            f"{cost['patch_tokens']:.0f} patch tokens alone: ratio {cost['ratio_to_patch_tokens']:.2f} "
            f"(target <= 1.15); inference {cost['infer_windows_per_second']:.1f} windows/s vs time-llm "
            f"{cost['infer_windows_per_second_time_llm']:.1f} ({cost['infer_speedup_vs_time_llm']:.2f}x; "
            "target >= 4x)",
            flush=True,
        )
        for c in costs[1:]:
            print(f"  batch {c['series_per_step']:.0f}: ratio {c['ratio']:.2f}", flush=True)
    if args.step_cost_only:
        stem = Path(args.out) if args.out else RESULTS / f"forecast_{splits.name.lower()}_step_cost"
        lines = [cost_table(costs)]
        write_results(stem, f"Command: `{doc['command']}`\n\n" + "\n".join(lines), doc)
        print("\n".join(lines))
        return 0
    model_lr = {}
    for item in args.model_lr:
        name, _, value = item.partition("=")
        if name not in args.models or not value:
            p.error(f"--model-lr expects MODEL=LR with MODEL in {args.models}, got {item!r}")
        model_lr[name] = float(value)
    doc["model_lr"] = {
        label: extra.get("lr") or model_lr.get(m, train.resolved_lr(m))
        for label, (m, _, extra) in zip(labels, specs, strict=True)
    }
    doc["runs"] = len(configs)
    results = []
    for label, cfg, (_, _, extra) in zip(labels, configs, specs, strict=True):
        print(f"training {label} ({args.protocol}) ...", flush=True)
        run_train = TrainConfig.from_dict({**train.to_dict(), **extra, "lr": doc["model_lr"][label]})
        r = run_ett(cfg, run_train, splits=splits, backbone=backbone if needs_backbone(cfg) else None)
        r.model = label
        print(f"  {label}: val MSE {r.val_mse:.4f}, test MSE {r.mse:.4f} MAE {r.mae:.4f} "
              f"({r.steps} steps, {r.stopped})", flush=True)
        results.append(r)
        r.forecaster = None  # free the model before the next one
        # the file grows a row per model, so a run cut short (or spanning sessions) keeps what it measured
        stem = write_table(args, doc, splits.name, results, complete=len(results) == len(configs))
    print(results_table(results))
    print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

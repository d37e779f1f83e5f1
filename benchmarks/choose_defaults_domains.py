"""Choose ``AudioClassifier``'s and ``ProteinClassifier``'s defaults by cross-validation on TRAIN only.

The companion of ``choose_defaults.py`` (which chooses ``TimeSeriesClassifier``'s); the same tie rule and
racing. No TEST split is ever loaded. Protocol (written before any figure was seen; the output records
the command line and every fold):

- ``--task audio``: the official FSDD *train* recordings (``load_fsdd("train")``, 300 clips), backbone
  ``speaker-encoder`` (the default; its output is an embedding, so the mapping is the linear head).
  Candidates: the learning rate and the epoch budget of the additive waveform program
  (``program="full"``). The frozen-feature linear probe (``program="none"``) is scored on the same folds
  as a reference row, not a candidate: the estimator's defaults describe the reprogrammed model, and the
  probe is the baseline it is reported beside.
- ``--task amp``: the training side of ``amp_split`` of the deduplicated AMPvsUniProt peptides
  (``load_amp``, ``split="unique"``, seed 0); a stratified subsample of ``--subsample`` of them (400 by
  default, seed 0; CPU cost: one MiniLM fit on the whole training side takes about 8 minutes an epoch on
  one thread), backbone ``minilm``. Candidates: the head and the learning rate: ``linear`` at 1e-3 (the
  current default) and 3e-3, and ``label-mapping`` (R2DL's output) at 1e-3.
- Folds: ``StratifiedKFold(n_splits=k, shuffle=True, random_state=0)``; each fit trains on k-1 folds (the
  estimator holds back its own stratified ``validation_fraction`` of them to pick the best epoch) and is
  scored by accuracy on the held-out fold.
- Tie rule (fixed, from ``choose_defaults.py``): the highest mean held-out accuracy wins; candidates within
  0.5 points are tied and the lowest std over folds wins among them; then the listed order (the current
  default first).
- Racing (``--race-margin M``): a candidate more than M points below the best after fold 1 is not run on
  the other folds and cannot be chosen.
- The epoch each fit restored (its best validation epoch) is recorded: a budget whose fits mostly restore
  their last epoch is too small.

Writes ``<out>.md`` and ``<out>.json``::

    python benchmarks/choose_defaults_domains.py --task audio --threads 1 --race-margin 10
    python benchmarks/choose_defaults_domains.py --task amp --threads 1 --race-margin 10
"""

from __future__ import annotations

import argparse
import inspect
import os
import shlex
import sys
import time
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sklearn.model_selection import StratifiedKFold, train_test_split

from choose_defaults import TIE_POINTS, TIE_RULE, choose
from xdomain import AudioClassifier, ProteinClassifier
from xdomain.datasets import amp_split, load_amp, load_fsdd
from xdomain.reporting import write_results


def defaults(cls: type) -> dict[str, Any]:
    return {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items() if k != "self"}


def candidates(task: str) -> tuple[type, list[dict[str, Any]], dict[str, Any] | None]:
    """(estimator, candidates in tie order with the current default first, reference or None)."""
    if task == "audio":
        d = defaults(AudioClassifier)
        grid = [{"program": "full", "lr": lr, "epochs": ep} for ep in (30, 60) for lr in (0.01, 0.003, 0.03)]
        reference = {"program": "none", "lr": d["lr"], "epochs": d["epochs"]}
        current = {"program": d["program"], "lr": d["lr"], "epochs": d["epochs"]}
        return AudioClassifier, [current] + [c for c in grid if c != current], reference
    if task == "amp":
        d = defaults(ProteinClassifier)
        # three, not the full 2 x 2 grid: one MiniLM fit costs minutes on this CPU
        grid = [{"head": "linear", "lr": 1e-3}, {"head": "linear", "lr": 3e-3},
                {"head": "label-mapping", "lr": 1e-3}]
        current = {"head": d["head"], "lr": d["lr"]}
        return ProteinClassifier, [current] + [c for c in grid if c != current], None
    raise ValueError(f"task must be 'audio' or 'amp', got {task!r}")


def load(task: str, subsample: int | None) -> tuple[Any, np.ndarray, str]:
    if task == "audio":
        train = load_fsdd("train")  # the official TRAIN recordings only
        return np.asarray(train.paths, dtype=object), np.asarray(train.labels), "FSDD official train split"
    seqs, y = load_amp("amp_uniprot")
    tr, _ = amp_split(seqs, y, test_size=0.2, seed=0)  # the test side is never indexed
    X, Y = np.asarray([seqs[i] for i in tr], dtype=object), np.asarray(y)[tr]
    what = (f"AMPvsUniProt, training side of amp_split (deduplicated, unique-sequence split, seed 0), "
            f"{len(Y)} rows")
    if subsample is not None and subsample < len(Y):
        X, _, Y, _ = train_test_split(X, Y, train_size=subsample, stratify=Y, random_state=0)
        what += f", stratified subsample of {subsample} (seed 0)"
    return X, Y, what


def label(c: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in c.items())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["audio", "amp"], required=True)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--subsample", type=int, default=400, help="amp: training rows used (None: all)")
    p.add_argument("--race-margin", type=float, default=None)
    p.add_argument("--max-steps", type=int, default=None, help="smoke runs only")
    p.add_argument("--limit", type=int, default=None, help="smoke runs only: first candidates")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="default benchmarks/results/choose_defaults_<task>")
    args = p.parse_args(argv)
    out = args.out or f"benchmarks/results/choose_defaults_{args.task}"
    cmd = "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    torch.set_num_threads(args.threads)
    cls, cands, reference = candidates(args.task)
    if args.limit:
        cands = cands[: args.limit]
    X, y, what = load(args.task, args.subsample)
    folds = list(StratifiedKFold(args.folds, shuffle=True, random_state=0).split(X, y))
    base = defaults(cls)
    fits: dict[str, list[dict[str, Any]]] = {}
    t0 = time.perf_counter()

    def fit(c: dict[str, Any], k: int) -> None:
        tr, va = folds[k]
        t = time.perf_counter()
        extra = {"max_steps": args.max_steps} if args.max_steps else {}
        clf = cls(**{**c, **extra}).fit(list(X[tr]), y[tr])
        acc = 100.0 * float((clf.predict(list(X[va])) == y[va]).mean())
        h = clf.history_
        best = next((r["epoch"] for r in h.records if r["step"] == h.best_step), None)
        fits.setdefault(label(c), []).append(
            {
                "fold": k,
                "acc": acc,
                "n_train": len(tr),
                "n_heldout": len(va),
                "seconds": time.perf_counter() - t,
                "steps": int(h.steps),
                "epochs_run": float(h.epochs),
                "best_epoch": best,
                "stopped": h.stopped,
            }
        )
        print(
            f"  {label(c)} fold {k}: {acc:.2f}% best epoch {best} of {h.epochs:.1f} [{h.stopped}] "
            f"{time.perf_counter() - t:.0f}s, elapsed {time.perf_counter() - t0:.0f}s",
            flush=True,
        )

    print(f"{args.task}: {what}; {args.folds}-fold CV; candidates {[label(c) for c in cands]}", flush=True)
    for c in cands:
        fit(c, 0)
    alive = list(cands)
    if args.race_margin is not None and args.folds > 1:
        top = max(fits[label(c)][0]["acc"] for c in cands)
        alive = [c for c in cands if fits[label(c)][0]["acc"] >= top - args.race_margin]
    for k in range(1, args.folds):
        for c in alive:
            fit(c, k)
    if reference is not None:
        for k in range(args.folds):
            fit(reference, k)
    mean = {n: float(np.mean([f["acc"] for f in v])) for n, v in fits.items()}
    std = {n: float(np.std([f["acc"] for f in v])) for n, v in fits.items()}
    eligible = [label(c) for c in alive]
    chosen = choose(eligible, mean, std)
    rows = [
        "| candidate | folds % | mean % | std | best epoch / epochs run | status |",
        "|---|---|---|---|---|---|",
    ]
    for c in cands + ([reference] if reference else []):
        n = label(c)
        v = fits[n]
        status = (
            "reference (not a candidate)"
            if c is reference
            else "**chosen**"
            if n == chosen
            else "raced out after fold 1"
            if c not in alive
            else ""
        )
        accs = " / ".join(f"{f['acc']:.1f}" for f in v)
        rows.append(
            f"| {n} | {accs} | {mean[n]:.2f} | "
            + (f"{std[n]:.2f}" if len(v) == args.folds else "-")
            + " | "
            + " / ".join(
                f"{f['best_epoch']:.0f} of {f['epochs_run']:.0f}" if f["best_epoch"] is not None else "-"
                for f in v
            )
            + f" | {status} |"
        )
    fixed = {
        k: base[k]
        for k in ("epochs", "lr", "patience", "batch_size", "validation_fraction")
        if k not in cands[0]
    }
    md = (
        f"# Choosing {cls.__name__}'s defaults on TRAIN only\n\n`{cmd}`\n\n"
        f"Data: {what} (no test split is read). {args.folds}-fold `StratifiedKFold(shuffle=True, "
        f"random_state=0)`; held-out fold accuracy. Other settings at the estimator's defaults {fixed}; "
        "each fit picks its epoch on its own stratified validation cut inside the training folds.\n\n"
        f"Tie rule: {TIE_RULE}.\n\n"
        + (
            f"Racing: candidates more than {args.race_margin} points behind the best after fold 1 were not "
            "run on the other folds and cannot be chosen.\n\n"
            if args.race_margin is not None
            else ""
        )
        + "\n".join(rows)
        + f"\n\nChosen: `{chosen}`.\n\n"
        f"Compute: {sum(f['seconds'] for v in fits.values() for f in v) / 60:.1f} min of fitting, "
        f"{sum(len(v) for v in fits.values())} fits, {args.threads} thread(s).\n"
    )
    print(md)
    write_results(
        out,
        md,
        {
            "command": cmd,
            "args": vars(args),
            "data": what,
            "tie_rule": TIE_RULE,
            "tie_points": TIE_POINTS,
            "candidates": cands,
            "reference": reference,
            "fits": fits,
            "mean": mean,
            "std": std,
            "eligible": eligible,
            "chosen": chosen,
            "chosen_params": next(c for c in cands if label(c) == chosen),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

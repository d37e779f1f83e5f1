"""UCR time series classification through frozen speech and vision models (Voice2Series style).

For each data set (official TRAIN/TEST; every model chooses its epoch on a stratified validation cut from
TRAIN, never on TEST), one process runs:

- the reprogrammed frozen backbone with each output mapping (random, FLM, ILM, BLM, BLM+, linear);
- baselines: logistic regression on the raw series and a linear probe on the frozen backbone's features
  (both with C chosen by 5-fold cross-validation on TRAIN), and the same program with no backbone;
- optionally (``--black-box``) BAR: the same program trained from output probabilities only, with the
  number of queries;
- "xdomain, mapping chosen on validation": the mapping picked by stratified k-fold cross-validation on
  TRAIN only (the protocol and tie rule of ``benchmarks/choose_defaults.py``), reported with that
  mapping's TEST accuracy (the same full-TRAIN fit as its per-mapping row). The choice is computed here
  (``--cv-folds``, default 3; no CV when there is one candidate) or read from
  ``choose_defaults.json`` (``--choice-from``; its training settings must match this run's). The
  per-mapping rows stay as a study: choosing among them by their TEST figures would be leakage.

Every row has a 95% bootstrap interval of its TEST accuracy (the test predictions resampled 1,000 times,
seeded; the same resamples for every row of a data set). Training settings default to
``TimeSeriesClassifier``'s own defaults.

Prints a table and writes ``<out>.md`` and ``<out>.json``. Example::

    python benchmarks/classify_ucr.py --datasets GunPoint ItalyPowerDemand Coffee --backbones crepe-tiny
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sklearn.model_selection import StratifiedKFold

from choose_defaults import _DEFAULTS, TIE_RULE, choose
from xdomain import TimeSeriesClassifier
from xdomain.baselines.linear_probe import fit_logistic_probe
from xdomain.datasets import load_ucr
from xdomain.reporting import write_results

UCR_CS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
V2S_PAPER = {"GunPoint": 96.67, "ItalyPowerDemand": 97.08, "Coffee": 100.0}



@torch.no_grad()
def frozen_features(backbone: Any, X: np.ndarray) -> np.ndarray:
    """The frozen backbone's output on the series placed as the classifier places them, no program."""
    clf = TimeSeriesClassifier(backbone=backbone, mapping="linear", program="none")
    clf.series_length_ = X.shape[1]
    model: Any = clf._build_model(2)
    x = torch.from_numpy(X.astype(np.float32))
    return torch.cat([model.features(x[i : i + 64]) for i in range(0, len(x), 64)]).numpy()


BOOTSTRAP = 1000


def bootstrap_ci(correct: np.ndarray, seed: int) -> tuple[float, float]:
    """95% percentile interval of the accuracy over ``BOOTSTRAP`` resamples of the test predictions."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(correct), size=(BOOTSTRAP, len(correct)))
    accs = 100.0 * correct[idx].mean(axis=1)
    return float(np.percentile(accs, 2.5)), float(np.percentile(accs, 97.5))


def row(dataset: str, model: str, backbone: str, mapping: str, pred: np.ndarray, yte: np.ndarray,
        seconds: float, trainable: int, seed: int = 0, **extra: Any) -> dict[str, Any]:
    correct = (np.asarray(pred) == np.asarray(yte)).astype(np.float64)
    lo, hi = bootstrap_ci(correct, seed)
    return {"dataset": dataset, "model": model, "backbone": backbone, "mapping": mapping,
            "test_acc": 100.0 * float(correct.mean()), "test_ci95": [lo, hi], "n_test": len(correct),
            "train_s": seconds, "trainable": trainable, **extra}


def training_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The training settings given on the command line (the rest are the estimator's defaults)."""
    given = {k: getattr(args, k) for k in ("epochs", "lr", "patience", "batch_size", "max_steps")}
    return {k: v for k, v in given.items() if v is not None}


def effective_training(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("epochs", "lr", "patience", "batch_size", "validation_fraction", "max_steps")
    return {**{k: _DEFAULTS[k] for k in keys}, **training_kwargs(args)}


def cv_choice(name: str, bname: str, mappings: list[str], Xtr: np.ndarray, ytr: np.ndarray,
              args: argparse.Namespace) -> dict[str, Any]:
    """The mapping chosen by stratified k-fold CV on TRAIN (the tie rule of choose_defaults.py)."""
    if len(mappings) == 1:
        return {"mapping": mappings[0], "source": "only one candidate (no CV)"}
    if args.choice_from:
        with open(args.choice_from) as f:
            saved = json.load(f)
        proto = saved["protocol"]
        want = effective_training(args)
        mismatch = {k: (proto["training"].get(k, _DEFAULTS.get(k)), v) for k, v in want.items()
                    if proto["training"].get(k, _DEFAULTS.get(k)) != v}
        choice = saved["choice"]
        if (choice["clip_length"], choice["program"]) != (_DEFAULTS["clip_length"], _DEFAULTS["program"]):
            mismatch["layout"] = ((choice["clip_length"], choice["program"]),
                                  (_DEFAULTS["clip_length"], _DEFAULTS["program"]))
        if proto["backbone"] != bname or proto["seed"] != args.seed:
            mismatch["backbone/seed"] = ((proto["backbone"], proto["seed"]), (bname, args.seed))
        if mismatch:
            raise SystemExit(f"{args.choice_from} was made with other settings ({{setting: (there, here)}}: "
                             f"{mismatch}); drop --choice-from to choose by CV here")
        if name in saved["per_dataset_mapping"]:
            folds = {e["mapping"]: e["folds"][name] for e in saved["stage_b"] if name in e["folds"]}
            return {"mapping": saved["per_dataset_mapping"][name], "source": args.choice_from,
                    "cv_folds": folds}
        print(f"{name} is not in {args.choice_from}: choosing by CV here", flush=True)
    common = dict(random_state=args.seed, **training_kwargs(args))
    skf = StratifiedKFold(args.cv_folds, shuffle=True, random_state=0)
    folds: dict[str, list[float]] = {m: [] for m in mappings}
    t = time.perf_counter()
    for tr, va in skf.split(Xtr, ytr):
        for m in mappings:
            clf = TimeSeriesClassifier(backbone=bname, mapping=m, **common).fit(Xtr[tr], ytr[tr])
            folds[m].append(100.0 * float((clf.predict(Xtr[va]) == ytr[va]).mean()))
    mean = {m: float(np.mean(v)) for m, v in folds.items()}
    std = {m: float(np.std(v)) for m, v in folds.items()}
    # tie order: the estimator's default mapping first, then the listed order
    chosen = choose(sorted(mappings, key=lambda m: m != _DEFAULTS["mapping"]), mean, std)
    print(f"{name} {bname}: CV on TRAIN {mean} -> {chosen} ({time.perf_counter() - t:.0f}s)", flush=True)
    return {"mapping": chosen, "source": f"{args.cv_folds}-fold CV on TRAIN here", "cv_folds": folds,
            "cv_seconds": time.perf_counter() - t}


def run_dataset(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    Xtr, ytr = load_ucr(name, "train")
    Xte, yte = load_ucr(name, "test")
    rows = []
    t = time.perf_counter()
    lr = fit_logistic_probe(Xtr, ytr, args.seed, Cs=UCR_CS)
    rows.append(row(name, "logistic regression (raw series)", "-", "-", lr.predict(Xte), yte,
                    time.perf_counter() - t, int(Xtr.shape[1] + 1) * max(1, len(np.unique(ytr)) - 1),
                    args.seed))
    print(rows[-1], flush=True)
    common = dict(random_state=args.seed, **training_kwargs(args))
    # the same program with no backbone: the programmed waveform read by a linear head
    t = time.perf_counter()
    nb = TimeSeriesClassifier(backbone="none", mapping="linear", **common).fit(Xtr, ytr)
    rows.append(row(name, "same program, no backbone", "none", "linear", nb.predict(Xte), yte,
                    time.perf_counter() - t, nb.num_trainable(), args.seed))
    print(rows[-1], flush=True)
    for bname in args.backbones:
        # by name, so that the classifier sizes the clip (clip_length) as a user's would be
        backbone = TimeSeriesClassifier(backbone=bname)._backbone()
        t = time.perf_counter()
        Ftr, Fte = frozen_features(bname, Xtr), frozen_features(bname, Xte)
        probe = fit_logistic_probe(Ftr, ytr, args.seed, Cs=UCR_CS)
        rows.append(row(name, "linear probe (frozen features)", bname, "-", probe.predict(Fte), yte,
                        time.perf_counter() - t, int(Ftr.shape[1] + 1) * max(1, len(np.unique(ytr)) - 1),
                        args.seed))
        print(rows[-1], flush=True)
        mappings = args.mappings if backbone.output_kind == "logits" else ["linear"]
        # chosen on TRAIN only: by k-fold CV before any TEST prediction of this backbone is made, or
        # (--cv-folds 0) by each full-TRAIN fit's own validation cut, read before its TEST figure is
        picked = cv_choice(name, bname, list(mappings), Xtr, ytr, args) if args.cv_folds else None
        fitted: dict[str, dict[str, Any]] = {}
        val_loss: dict[str, float] = {}
        for mapping in dict.fromkeys([*mappings, *([picked["mapping"]] if picked else [])]):
            t = time.perf_counter()
            clf = TimeSeriesClassifier(backbone=bname, mapping=mapping, **common).fit(Xtr, ytr)
            val_loss[mapping] = float(clf.history_.best_val_loss)
            fitted[mapping] = row(name, "reprogrammed", bname, mapping, clf.predict(Xte), yte,
                                  time.perf_counter() - t, clf.num_trainable(), args.seed,
                                  steps=clf.history_.steps, stopped=clf.history_.stopped,
                                  val_loss=val_loss[mapping])
            if mapping in mappings:
                rows.append(fitted[mapping])
                print(rows[-1], flush=True)
        if picked is None:
            # lowest validation cross-entropy; ties (within 1e-6) to the default mapping, then listed order
            order = sorted(mappings, key=lambda m: m != _DEFAULTS["mapping"])
            best = min(val_loss[m] for m in order)
            chosen = next(m for m in order if val_loss[m] <= best + 1e-6)
            picked = {"mapping": chosen, "val_loss": {m: val_loss[m] for m in order},
                      "source": "lowest best validation loss on each fit's own stratified "
                                f"{_DEFAULTS['validation_fraction']:.0%} cut of TRAIN"}
        # the same full-TRAIN fit as that mapping's study row
        rows.append({**fitted[picked["mapping"]], "model": CHOSEN,
                     "choice": picked})
        print(rows[-1], flush=True)
        if args.black_box and backbone.output_kind == "logits":
            for mapping in args.black_box_mappings:
                t = time.perf_counter()
                bar = TimeSeriesClassifier(backbone=bname, mapping=mapping, black_box=True,
                                           directions=args.directions, **{**common, "lr": args.bar_lr})
                bar.fit(Xtr, ytr)
                rows.append(row(name, "reprogrammed, black box (BAR)", bname, mapping, bar.predict(Xte), yte,
                                time.perf_counter() - t, bar.num_trainable(), args.seed,
                                queries=bar.queries_, steps=bar.history_.steps))
                print(rows[-1], flush=True)
    return rows


CHOSEN = "xdomain, mapping chosen on validation"


def reused_rows(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """``--reuse``: the rows of an earlier run of this script (its unedited JSON, the same training settings
    and layout), with the chosen-mapping row made again from ``--choice-from``: no model is refitted and no
    TEST figure is read to choose. The chosen row is that mapping's study row, as in a fresh run."""
    with open(args.reuse) as f:
        earlier = json.load(f)
    if earlier.get("training") != effective_training(args):
        raise SystemExit(f"{args.reuse} was made with training {earlier.get('training')}, this run's is "
                         f"{effective_training(args)}; rerun without --reuse")
    if earlier.get("layout", [4096, "full"]) != [_DEFAULTS["clip_length"], _DEFAULTS["program"]]:
        raise SystemExit(f"{args.reuse} was made at layout {earlier.get('layout')}; rerun without --reuse")
    rows = [{**r, "reused_from": args.reuse} for r in earlier["rows"]
            if r["dataset"] == name and r["model"] != CHOSEN]
    for bname in args.backbones:
        study = {r["mapping"]: r for r in rows if r["model"] == "reprogrammed" and r["backbone"] == bname}
        if not study:
            continue
        picked = cv_choice(name, bname, list(study), np.empty(0), np.empty(0), args)
        last = max(i for i, r in enumerate(rows) if r["model"] == "reprogrammed" and r["backbone"] == bname)
        rows.insert(last + 1, {**study[picked["mapping"]], "model": CHOSEN, "choice": picked})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    base = {r["dataset"]: r["test_acc"] for r in rows if r["model"].startswith("logistic")}
    lines = ["| data set | model | backbone | mapping | test acc % | 95% CI (bootstrap) | acc / logreg "
             "| V2S paper % | trainable | train s | queries |", "|" + "---|" * 11]
    for r in rows:
        lo, hi = r["test_ci95"]
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['backbone']} | {r['mapping']} | {r['test_acc']:.2f} | "
            f"{lo:.1f}-{hi:.1f} | {r['test_acc'] / base[r['dataset']]:.3f} | "
            f"{V2S_PAPER.get(r['dataset'], float('nan')):.2f} | "
            f"{r['trainable']:,} | {r['train_s']:.1f} | {r.get('queries', '')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["GunPoint", "ItalyPowerDemand", "Coffee"])
    p.add_argument("--backbones", nargs="+", default=["crepe-tiny"])
    p.add_argument("--mappings", nargs="+", default=["random", "flm", "ilm", "blm", "blm+", "linear"])
    p.add_argument("--epochs", type=int, default=None, help="default: TimeSeriesClassifier's")
    p.add_argument("--batch-size", type=int, default=None, help="default: TimeSeriesClassifier's")
    p.add_argument("--lr", type=float, default=None, help="default: TimeSeriesClassifier's")
    p.add_argument("--patience", type=int, default=None, help="default: TimeSeriesClassifier's")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--black-box", action="store_true", help="also train BAR (zeroth-order) programs")
    p.add_argument("--black-box-mappings", nargs="+", default=["flm"])
    p.add_argument("--directions", type=int, default=5)
    p.add_argument("--bar-lr", type=float, default=0.05)
    p.add_argument("--cv-folds", type=int, default=3,
                   help="folds of the CV on TRAIN that chooses the mapping of the 'chosen on validation' row "
                   "(0: the lowest validation loss of each full-TRAIN fit on its own validation cut)")
    p.add_argument("--choice-from", default=None,
                   help="read that choice from choose_defaults.json instead (same training settings)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reuse", default=None,
                   help="an earlier run's JSON: copy its rows and make only the chosen row again from "
                        "--choice-from (no refit)")
    p.add_argument("--out", default="benchmarks/results/classify_ucr")
    args = p.parse_args(argv)
    if args.reuse and not args.choice_from:
        p.error("--reuse needs --choice-from (the choice is the only thing made again)")
    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    for name in args.datasets:
        rows.extend(reused_rows(name, args) if args.reuse else run_dataset(name, args))
    text = table(rows)
    print(text)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    header = (f"# UCR classification through frozen models\n\n`python {' '.join(sys.argv)}`\n\n"
              "Official TRAIN/TEST; each model picks its epoch on a stratified 20% validation cut from "
              f"TRAIN. Training: {effective_training(args)}, with TimeSeriesClassifier's default layout "
              f"(clip_length={_DEFAULTS['clip_length']}, program={_DEFAULTS['program']!r}). "
              "\"xdomain, mapping chosen on validation\": the mapping picked by "
              + (f"`{args.choice_from}`" if args.choice_from else f"{args.cv_folds}-fold stratified CV"
                 f" (tie rule: {TIE_RULE})" if args.cv_folds else "the lowest validation loss of each "
                 "fit's own stratified validation cut of TRAIN (ties: the default mapping, then the "
                 "listed order)")
              + " on TRAIN only; the per-mapping rows are a study, not a "
              f"choice. 95% CI: percentile bootstrap over the test predictions ({BOOTSTRAP} resamples, "
              f"seed {args.seed})."
              + (f" Every other row is copied from `{args.reuse}` (same training and layout); only the "
                 "chosen row was made again." if args.reuse else "") + "\n\n")
    write_results(args.out, header + text, {
        "argv": sys.argv, "command": "python " + " ".join(sys.argv), "args": vars(args),
        "training": effective_training(args), "layout": [_DEFAULTS["clip_length"], _DEFAULTS["program"]],
        "tie_rule": TIE_RULE, "bootstrap": BOOTSTRAP, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

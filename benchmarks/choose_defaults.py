"""Choose ``TimeSeriesClassifier``'s defaults by cross-validation on TRAIN only (no TEST split is ever read).

Protocol (written before any figure was seen; the output records the command line and every fold):

- Data: the official TRAIN split of UCR GunPoint, ItalyPowerDemand and Coffee
  (``xdomain.datasets.load_ucr(name, "train")``; this script never loads a TEST split).
- Folds: ``StratifiedKFold(n_splits=k, shuffle=True, random_state=0)`` on each TRAIN split (k=3 by default).
  Every fit trains on k-1 folds and is scored (accuracy) on the held-out fold. Inside the training folds,
  the estimator holds back its own stratified ``validation_fraction`` (default 0.2) to pick the best epoch:
  early stopping never sees the held-out fold.
- Backbone ``crepe-tiny``; training settings (epochs, lr, patience, batch size, seed) are the estimator's
  defaults unless given on the command line.
- Stage (a), layout: ``clip_length`` x ``program`` over LAYOUTS below, with the current default mapping.
- Stage (b), mapping: MAPPINGS below at the layout chosen in (a) (the current mapping's folds are reused).
- Score of a candidate: the mean over the data sets of its mean held-out accuracy over folds. Its spread:
  the standard deviation (ddof=0) over folds of the per-fold mean over the data sets.
- Tie rule (fixed): the highest score wins; every candidate within TIE_POINTS (0.5) accuracy points of the
  highest counts as tied, and among the tied the lowest spread wins; equal spreads go to the earlier
  candidate in the listed order (the current default is listed first, so it wins exact ties).
- Per data set: the mapping with the best mean held-out accuracy on that data set's TRAIN folds, with the
  same tie rule (spread: the std over folds of that data set's accuracy). This is the mapping that
  ``classify_ucr.py`` reports as "xdomain, mapping chosen on validation".
- Optional racing (``--race-margin M``, off by default): after the first fold, a stage-(a) candidate whose
  first-fold score is more than M points below the best first-fold score is not run on the other folds,
  and in stage (b), per data set, a mapping more than M points below that data set's best first-fold
  accuracy is not run on the other folds there. Stopped candidates cannot be chosen (in stage (b) a
  mapping stopped on any data set cannot be the default); they are listed with their first-fold figures.

``--stages a`` runs the layout stage only (the mapping stays the current one); ``--resume`` reuses the
fits of an interrupted or earlier run (by data set, fold, layout and mapping), e.g. to add stage (b).

Writes ``<out>.md`` and ``<out>.json``. Example (the full protocol; add ``--race-margin 10`` to shorten)::

    python benchmarks/choose_defaults.py --threads 1
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sklearn.model_selection import StratifiedKFold

from xdomain import TimeSeriesClassifier
from xdomain.datasets import load_ucr
from xdomain.reporting import write_results

DATASETS = ("GunPoint", "ItalyPowerDemand", "Coffee")
_DEFAULTS = {k: v.default for k, v in inspect.signature(TimeSeriesClassifier.__init__).parameters.items()
             if k != "self"}
CURRENT_LAYOUT = (_DEFAULTS["clip_length"], _DEFAULTS["program"])
CURRENT_MAPPING = _DEFAULTS["mapping"]
# listed order = tie-break order; the current default first
LAYOUTS = [CURRENT_LAYOUT] + [lay for lay in [(1024, "full"), (1024, "outside"), (4096, "full"),
                                               (4096, "outside")] if lay != CURRENT_LAYOUT]
MAPPINGS = [CURRENT_MAPPING] + [m for m in ("random", "flm", "ilm", "blm", "blm+", "linear")
                                if m != CURRENT_MAPPING]
TIE_POINTS = 0.5
TIE_RULE = (f"highest score (mean over data sets of the mean held-out fold accuracy); candidates within "
            f"{TIE_POINTS} points of the highest are tied -> lowest std over folds -> earlier in the listed "
            "order (current default first)")


def choose(cands: list[str], mean: dict[str, float], std: dict[str, float]) -> str:
    """The fixed tie rule over ``cands`` (in listed order)."""
    best = max(mean[c] for c in cands)
    tied = [c for c in cands if mean[c] >= best - TIE_POINTS - 1e-9]
    low = min(round(std[c], 9) for c in tied)
    return next(c for c in tied if round(std[c], 9) == low)


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data = {name: load_ucr(name, "train") for name in args.datasets}  # TRAIN only
        self.folds = {
            name: list(StratifiedKFold(args.folds, shuffle=True, random_state=0).split(X, y))
            for name, (X, y) in self.data.items()
        }
        self.training = {k: getattr(args, k) for k in ("epochs", "lr", "patience", "batch_size", "max_steps")
                         if getattr(args, k) is not None}
        self.fits: dict[str, dict[str, Any]] = {}
        self.resumed = 0
        if args.resume:  # fits of an interrupted (.partial.json) or finished (.json) run, by their key
            for path in (args.out + ".json", args.out + ".partial.json"):
                if os.path.exists(path):
                    with open(path) as f:
                        saved = json.load(f)["fits"]
                    if isinstance(saved, list):
                        saved = {self.key(e["dataset"], e["fold"], e["clip_length"], e["program"],
                                          e["mapping"]): e for e in saved}
                    self.fits.update(saved)
                    self.resumed = len(self.fits)
                    print(f"resumed {len(saved)} fits from {path}", flush=True)
        self.t0 = time.perf_counter()

    @staticmethod
    def key(name: str, fold: int, clip: int, program: str, mapping: str) -> str:
        return f"{name}|fold{fold}|clip{clip}|{program}|{mapping}"

    def fit(self, name: str, fold: int, clip: int, program: str, mapping: str) -> float:
        k = self.key(name, fold, clip, program, mapping)
        if k in self.fits:
            return self.fits[k]["acc"]
        X, y = self.data[name]
        tr, va = self.folds[name][fold]
        t = time.perf_counter()
        clf = TimeSeriesClassifier(backbone=self.args.backbone, mapping=mapping, clip_length=clip,
                                   program=program, random_state=self.args.seed, **self.training)
        clf.fit(X[tr], y[tr])
        acc = 100.0 * float((clf.predict(X[va]) == y[va]).mean())
        sec = time.perf_counter() - t
        self.fits[k] = {"dataset": name, "fold": fold, "clip_length": clip, "program": program,
                        "mapping": mapping, "acc": acc, "n_train": len(tr), "n_heldout": len(va),
                        "seconds": sec, "steps": int(clf.history_.steps), "stopped": clf.history_.stopped}
        if self.args.out:
            with open(self.args.out + ".partial.json", "w") as f:
                json.dump({"argv": sys.argv, "fits": self.fits}, f)
        print(f"  {k}: {acc:.2f}% ({len(va)} held out) {sec:.1f}s {clf.history_.steps} steps "
              f"[{clf.history_.stopped}]  elapsed {time.perf_counter() - self.t0:.0f}s", flush=True)
        return acc

    def estimate(self, plan: list[tuple[str, int, int, str, str]]) -> float:
        """Seconds for ``plan`` extrapolated from the first measured fit: per-step cost scaled by the clip
        (a measured forward+backward ratio) and by the steps an epoch takes on each data set, at the same
        share of the epoch budget the first fit used."""
        first = next(iter(self.fits.values()))
        s_per_step = first["seconds"] / max(1, first["steps"])
        bs = self.training.get("batch_size", _DEFAULTS["batch_size"])
        frac = self.training.get("validation_fraction", _DEFAULTS["validation_fraction"])
        epochs = self.training.get("epochs", _DEFAULTS["epochs"])

        def steps_per_epoch(name: str, fold: int) -> int:
            n = len(self.folds[name][fold][0])
            return int(np.ceil((n - np.ceil(frac * n)) / bs))

        share = first["steps"] / (epochs * steps_per_epoch(first["dataset"], first["fold"]))
        if self.training.get("max_steps"):
            share = 1.0
        total = 0.0
        for name, fold, clip, _, _ in plan:
            steps = epochs * steps_per_epoch(name, fold) * share
            if self.training.get("max_steps"):
                steps = min(steps, self.training["max_steps"])
            total += steps * s_per_step * self.clip_cost.get(clip, clip / first["clip_length"])
        return total

    def measure_clip_cost(self) -> None:
        """Relative cost of a training step for each clip length (forward+backward of a batch)."""
        cost = {}
        for clip in sorted({c for c, _ in LAYOUTS}):
            b = TimeSeriesClassifier(backbone=self.args.backbone, clip_length=clip)._backbone()
            x = torch.randn(16, clip, requires_grad=True)
            b(x).sum().backward()
            t = time.perf_counter()
            for _ in range(3):
                b(x).sum().backward()
            cost[clip] = (time.perf_counter() - t) / 3
        base = cost[CURRENT_LAYOUT[0]]
        self.clip_cost = {c: v / base for c, v in cost.items()}
        print("relative step cost by clip_length:", {c: round(v, 2) for c, v in self.clip_cost.items()})


def summarize(fits: dict[str, dict[str, Any]], datasets: list[str], folds: int,
              cands: list[tuple[int, str, str]]) -> dict[tuple[int, str, str], dict[str, Any]]:
    out = {}
    for cand in cands:
        clip, program, mapping = cand
        per = {}
        for name in datasets:
            accs = [fits[k]["acc"] for f in range(folds)
                    if (k := Runner.key(name, f, clip, program, mapping)) in fits]
            per[name] = accs
        complete = all(len(v) == folds for v in per.values())
        entry: dict[str, Any] = {"folds": per, "complete": complete,
                                 "per_dataset_mean": {n: float(np.mean(v)) for n, v in per.items() if v},
                                 "per_dataset_std": {n: float(np.std(v)) for n, v in per.items() if v}}
        if complete:
            per_fold = [np.mean([per[n][f] for n in datasets]) for f in range(folds)]
            entry["score"] = float(np.mean(per_fold))
            entry["std"] = float(np.std(per_fold))
        else:
            entry["first_fold_score"] = float(np.mean([per[n][0] for n in datasets if per[n]]))
        out[cand] = entry
    return out


def fmt_folds(v: list[float]) -> str:
    return " / ".join(f"{a:.1f}" for a in v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--backbone", default="crepe-tiny")
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--mappings", nargs="+", default=MAPPINGS, help="stage (b) candidates, in tie order")
    p.add_argument("--epochs", type=int, default=None, help="default: the estimator's")
    p.add_argument("--lr", type=float, default=None, help="default: the estimator's")
    p.add_argument("--patience", type=int, default=None, help="default: the estimator's")
    p.add_argument("--batch-size", type=int, default=None, help="default: the estimator's")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0, help="the estimator's random_state")
    p.add_argument("--race-margin", type=float, default=None,
                   help="stop candidates more than this many points behind after the first fold")
    p.add_argument("--stages", choices=["a", "ab"], default="ab",
                   help="'a': the layout stage only (the mapping stays the current one)")
    p.add_argument("--estimate-only", action="store_true", help="measure one fit, print the estimate, stop")
    p.add_argument("--resume", action="store_true", help="reuse the fits of an interrupted run (same flags)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/choose_defaults")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.mappings[0] != CURRENT_MAPPING and CURRENT_MAPPING in args.mappings:
        args.mappings = [CURRENT_MAPPING] + [m for m in args.mappings if m != CURRENT_MAPPING]
    run = Runner(args)
    K = args.folds
    print(f"protocol: {K}-fold stratified CV on TRAIN of {args.datasets}; layouts {LAYOUTS} with mapping "
          f"{CURRENT_MAPPING!r}; then mappings {args.mappings}; training "
          f"{ {**{k: _DEFAULTS[k] for k in ('epochs', 'lr', 'patience', 'batch_size')}, **run.training} }; "
          f"race margin {args.race_margin}", flush=True)
    run.measure_clip_cost()

    # -- stage (a): layout ---------------------------------------------------------------------------
    clip0, prog0 = LAYOUTS[0]
    run.fit(args.datasets[0], 0, clip0, prog0, CURRENT_MAPPING)
    full_a = [(n, f, c, pr, CURRENT_MAPPING) for f in range(K) for (c, pr) in LAYOUTS for n in args.datasets]
    full_b = [(n, f, clip0, prog0, m) for f in range(K) for m in args.mappings[1:] for n in args.datasets]
    est_full = run.estimate(full_a + full_b)
    est_first = run.estimate([x for x in full_a + full_b if x[1] == 0])
    print(f"estimate: full protocol ~{est_full / 60:.0f} min ({len(full_a) + len(full_b)} fits, stage (b) "
          f"at the current layout); first fold only ~{est_first / 60:.0f} min", flush=True)
    if args.estimate_only:
        return 0
    for name in args.datasets:
        for clip, prog in LAYOUTS:
            run.fit(name, 0, clip, prog, CURRENT_MAPPING)
    alive_a = list(LAYOUTS)
    if args.race_margin is not None and K > 1:
        first = {lay: np.mean([run.fits[Runner.key(n, 0, *lay, CURRENT_MAPPING)]["acc"]
                               for n in args.datasets]) for lay in LAYOUTS}
        alive_a = [lay for lay in LAYOUTS if first[lay] >= max(first.values()) - args.race_margin]
        print("stage (a) first fold:", {f"{c}/{pr}": round(v, 2) for (c, pr), v in first.items()},
              "-> continuing", alive_a, flush=True)
    for f in range(1, K):
        for name in args.datasets:
            for clip, prog in alive_a:
                run.fit(name, f, clip, prog, CURRENT_MAPPING)
    cands_a = [(c, pr, CURRENT_MAPPING) for c, pr in LAYOUTS]
    sum_a = summarize(run.fits, args.datasets, K, cands_a)
    elig_a = [c for c in cands_a if sum_a[c]["complete"]]
    lay_key = {c: f"{c[0]}/{c[1]}" for c in cands_a}
    chosen_a = choose([lay_key[c] for c in elig_a], {lay_key[c]: sum_a[c]["score"] for c in elig_a},
                      {lay_key[c]: sum_a[c]["std"] for c in elig_a})
    clip_c, prog_c = next((c[0], c[1]) for c in elig_a if lay_key[c] == chosen_a)
    print(f"stage (a) chose clip_length={clip_c}, program={prog_c!r}", flush=True)

    # -- stage (b): mapping at the chosen layout -------------------------------------------------------
    if args.stages == "a":  # not run: the current mapping stays, nothing is chosen per data set
        args.mappings = [CURRENT_MAPPING]
    for name in args.datasets:
        for m in args.mappings:
            run.fit(name, 0, clip_c, prog_c, m)
    alive_b = {name: list(args.mappings) for name in args.datasets}
    if args.race_margin is not None and K > 1:
        for name in args.datasets:
            first = {m: run.fits[Runner.key(name, 0, clip_c, prog_c, m)]["acc"] for m in args.mappings}
            alive_b[name] = [m for m in args.mappings if first[m] >= max(first.values()) - args.race_margin]
            print(f"stage (b) {name} first fold:", {m: round(v, 1) for m, v in first.items()},
                  "-> continuing", alive_b[name], flush=True)
    for f in range(1, K):
        for name in args.datasets:
            for m in alive_b[name]:
                run.fit(name, f, clip_c, prog_c, m)
    cands_b = [(clip_c, prog_c, m) for m in args.mappings]
    sum_b = summarize(run.fits, args.datasets, K, cands_b)
    elig_b = [c for c in cands_b if sum_b[c]["complete"]]
    chosen_b = choose([c[2] for c in elig_b], {c[2]: sum_b[c]["score"] for c in elig_b},
                      {c[2]: sum_b[c]["std"] for c in elig_b})
    per_dataset: dict[str, str] = {}
    for name in args.datasets if args.stages == "ab" else []:
        ok = [c for c in cands_b if len(sum_b[c]["folds"][name]) == K]
        per_dataset[name] = choose([c[2] for c in ok], {c[2]: sum_b[c]["per_dataset_mean"][name] for c in ok},
                                   {c[2]: sum_b[c]["per_dataset_std"][name] for c in ok})
    elapsed = time.perf_counter() - run.t0

    # -- report -----------------------------------------------------------------------------------------
    def table(summ: dict[tuple[int, str, str], dict[str, Any]], label: Any) -> str:
        head = "| candidate | " + " | ".join(f"{n} folds %" for n in args.datasets) + " | " + \
               " | ".join(f"{n} mean" for n in args.datasets) + " | score % | std over folds |"
        lines = [head, "|" + "---|" * (2 * len(args.datasets) + 3)]
        for cand, e in summ.items():
            score = (f"{e['score']:.2f} | {e['std']:.2f}" if e["complete"] else
                     f"stopped after fold 1 ({e['first_fold_score']:.2f}) | -")
            lines.append(f"| {label(cand)} | " + " | ".join(fmt_folds(e["folds"][n]) for n in args.datasets)
                         + " | " + " | ".join(f"{e['per_dataset_mean'][n]:.2f}" for n in args.datasets)
                         + f" | {score} |")
        return "\n".join(lines)

    keys = ("epochs", "lr", "patience", "batch_size", "validation_fraction")
    training = {**{k: _DEFAULTS[k] for k in keys},
                **run.training}
    ta = table(sum_a, lambda c: f"clip_length={c[0]}, program={c[1]} ({c[2]})")
    tb = table(sum_b, lambda c: c[2])
    cmd = "python " + " ".join(sys.argv)
    md = (
        "# Choosing TimeSeriesClassifier's defaults on TRAIN only\n\n"
        f"`{cmd}`\n\n"
        f"{K}-fold `StratifiedKFold(shuffle=True, random_state=0)` on the official TRAIN split of "
        f"{', '.join(args.datasets)} (no TEST split is read). Backbone `{args.backbone}`; "
        f"training {training} "
        "(each fit picks its epoch on its own stratified validation cut inside the training folds). "
        "Held-out fold accuracy %, folds listed in order.\n\n"
        f"Tie rule: {TIE_RULE}. Score = mean over data sets of the per-data-set mean over folds; std = "
        "std (ddof=0) over folds of the per-fold mean over data sets.\n\n"
        + (f"Racing: after fold 1, candidates more than {args.race_margin} points behind the best were not "
           "run on the other folds (stage (a): on the mean over data sets; stage (b): per data set) and "
           "cannot be chosen.\n\n" if args.race_margin is not None else "")
        + f"## (a) layout, mapping `{CURRENT_MAPPING}`\n\n{ta}\n\n"
        f"Chosen: `clip_length={clip_c}`, `program=\"{prog_c}\"`.\n\n"
        + (f"## (b) mapping at clip_length={clip_c}, program={prog_c}\n\n{tb}\n\n"
           f"Chosen default mapping: `{chosen_b}`.\n\n"
           "## Mapping chosen per data set (best mean CV accuracy on its TRAIN, same tie rule)\n\n"
           "| data set | mapping |\n|---|---|\n"
           + "".join(f"| {n} | {m} |\n" for n, m in per_dataset.items())
           if args.stages == "ab" else
           f"## (b) mapping: not run (`--stages a`)\n\nThe mapping stays `{CURRENT_MAPPING}`; no mapping "
           "was chosen per data set.\n")
        + f"\nCompute: {sum(e['seconds'] for e in run.fits.values()) / 60:.1f} min of fitting, "
        f"{len(run.fits)} fits, {args.threads} thread(s)"
        + (f"; {run.resumed} fits were resumed from an interrupted run of the same protocol "
           f"(`--resume`), this invocation took {elapsed / 60:.1f} min" if run.resumed else "")
        + ".\n"
    )
    print(md)
    write_results(args.out, md, {
        "argv": sys.argv, "command": cmd,
        "protocol": {"data": "official TRAIN split only", "datasets": args.datasets,
                     "cv": f"StratifiedKFold(n_splits={K}, shuffle=True, random_state=0)",
                     "backbone": args.backbone, "training": training, "seed": args.seed,
                     "layouts": [list(x) for x in LAYOUTS], "layout_mapping": CURRENT_MAPPING,
                     "mappings": args.mappings, "tie_rule": TIE_RULE, "tie_points": TIE_POINTS,
                     "race_margin": args.race_margin, "lr_grid": None, "stages": args.stages},
        "fits": list(run.fits.values()),
        "stage_a": [{"clip_length": c[0], "program": c[1], "mapping": c[2], **e}
                    for c, e in sum_a.items()],
        "stage_b": [{"clip_length": c[0], "program": c[1], "mapping": c[2], **e}
                    for c, e in sum_b.items()],
        "choice": {"clip_length": clip_c, "program": prog_c, "mapping": chosen_b},
        "per_dataset_mapping": per_dataset,
        "seconds": elapsed, "fit_seconds": sum(e["seconds"] for e in run.fits.values()),
        "resumed_fits": run.resumed,
    })
    if os.path.exists(args.out + ".partial.json"):
        os.remove(args.out + ".partial.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

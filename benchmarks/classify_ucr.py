"""UCR time series classification through frozen speech and vision models (Voice2Series style).

For each data set (official TRAIN/TEST; every model chooses its epoch on a stratified validation cut from
TRAIN, never on TEST), one process runs:

- the reprogrammed frozen backbone with each output mapping (random, FLM, ILM, BLM, BLM+, linear);
- baselines: logistic regression on the raw series and a linear probe on the frozen backbone's features
  (both with C chosen by 5-fold cross-validation on TRAIN), and the same program with no backbone;
- optionally (``--black-box``) BAR: the same program trained from output probabilities only, with the
  number of queries.

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


from xdomain import TimeSeriesClassifier
from xdomain.baselines.linear_probe import fit_logistic_probe
from xdomain.datasets import load_ucr

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


def row(dataset: str, model: str, backbone: str, mapping: str, acc: float, seconds: float, trainable: int,
        **extra: Any) -> dict[str, Any]:
    return {"dataset": dataset, "model": model, "backbone": backbone, "mapping": mapping,
            "test_acc": 100.0 * acc, "train_s": seconds, "trainable": trainable, **extra}


def run_dataset(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    Xtr, ytr = load_ucr(name, "train")
    Xte, yte = load_ucr(name, "test")
    rows = []
    t = time.perf_counter()
    lr = fit_logistic_probe(Xtr, ytr, args.seed, Cs=UCR_CS)
    acc = float((lr.predict(Xte) == yte).mean())
    rows.append(row(name, "logistic regression (raw series)", "-", "-", acc, time.perf_counter() - t,
                    int(Xtr.shape[1] + 1) * max(1, len(np.unique(ytr)) - 1)))
    print(rows[-1], flush=True)
    common = dict(epochs=args.epochs, lr=args.lr, patience=args.patience, random_state=args.seed,
                  batch_size=args.batch_size, max_steps=args.max_steps)
    # the same program with no backbone: the programmed waveform read by a linear head
    t = time.perf_counter()
    nb = TimeSeriesClassifier(backbone="none", mapping="linear", **common).fit(Xtr, ytr)
    acc = float((nb.predict(Xte) == yte).mean())
    rows.append(row(name, "same program, no backbone", "none", "linear", acc, time.perf_counter() - t,
                    nb.num_trainable()))
    print(rows[-1], flush=True)
    for bname in args.backbones:
        # by name, so that the classifier sizes the clip (clip_length) as a user's would be
        backbone = TimeSeriesClassifier(backbone=bname)._backbone()
        t = time.perf_counter()
        Ftr, Fte = frozen_features(bname, Xtr), frozen_features(bname, Xte)
        probe = fit_logistic_probe(Ftr, ytr, args.seed, Cs=UCR_CS)
        rows.append(row(name, "linear probe (frozen features)", bname, "-",
                        float((probe.predict(Fte) == yte).mean()), time.perf_counter() - t,
                        int(Ftr.shape[1] + 1) * max(1, len(np.unique(ytr)) - 1)))
        print(rows[-1], flush=True)
        mappings = args.mappings if backbone.output_kind == "logits" else ["linear"]
        for mapping in mappings:
            t = time.perf_counter()
            clf = TimeSeriesClassifier(backbone=bname, mapping=mapping, **common).fit(Xtr, ytr)
            rows.append(row(name, "reprogrammed", bname, mapping, float((clf.predict(Xte) == yte).mean()),
                            time.perf_counter() - t, clf.num_trainable(), steps=clf.history_.steps,
                            stopped=clf.history_.stopped))
            print(rows[-1], flush=True)
        if args.black_box and backbone.output_kind == "logits":
            for mapping in args.black_box_mappings:
                t = time.perf_counter()
                bar = TimeSeriesClassifier(backbone=bname, mapping=mapping, black_box=True,
                                           directions=args.directions, **{**common, "lr": args.bar_lr})
                bar.fit(Xtr, ytr)
                rows.append(row(name, "reprogrammed, black box (BAR)", bname, mapping,
                                float((bar.predict(Xte) == yte).mean()), time.perf_counter() - t,
                                bar.num_trainable(), queries=bar.queries_, steps=bar.history_.steps))
                print(rows[-1], flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    base = {r["dataset"]: r["test_acc"] for r in rows if r["model"].startswith("logistic")}
    lines = ["| data set | model | backbone | mapping | test acc % | acc / logreg | V2S paper % | trainable "
             "| train s | queries |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['backbone']} | {r['mapping']} | {r['test_acc']:.2f} | "
            f"{r['test_acc'] / base[r['dataset']]:.3f} | {V2S_PAPER.get(r['dataset'], float('nan')):.2f} | "
            f"{r['trainable']:,} | {r['train_s']:.1f} | {r.get('queries', '')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["GunPoint", "ItalyPowerDemand", "Coffee"])
    p.add_argument("--backbones", nargs="+", default=["crepe-tiny"])
    p.add_argument("--mappings", nargs="+", default=["random", "flm", "ilm", "blm", "blm+", "linear"])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--black-box", action="store_true", help="also train BAR (zeroth-order) programs")
    p.add_argument("--black-box-mappings", nargs="+", default=["flm"])
    p.add_argument("--directions", type=int, default=5)
    p.add_argument("--bar-lr", type=float, default=0.05)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/classify_ucr")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    for name in args.datasets:
        rows.extend(run_dataset(name, args))
    text = table(rows)
    print(text)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    header = (f"# UCR classification through frozen models\n\n`python {' '.join(sys.argv)}`\n\n"
              "Official TRAIN/TEST; each model picks its epoch on a stratified 20% validation cut from "
              "TRAIN.\n\n")
    with open(args.out + ".md", "w") as f:
        f.write(header + text + "\n")
    with open(args.out + ".json", "w") as f:
        json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

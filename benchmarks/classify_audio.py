"""Spoken-digit classification (FSDD) through frozen speech models, beside baselines.

Official split (recording index 0-4 is test); every model chooses its epoch on a stratified validation cut
from the training recordings. One process runs: logistic regression on log-mel statistics (no backbone),
a linear probe on each frozen backbone's output (logistic regression, C by cross-validation on train),
the reprogrammed backbone (additive program on the waveform + linear head or label mapping), and the same
program with no backbone. Prints a table and writes ``<out>.md`` / ``<out>.json``::

    python benchmarks/classify_audio.py --backbones speaker-encoder crepe-tiny
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from typing import Any

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


from xdomain import AudioClassifier
from xdomain.adapters.audio import load_clips
from xdomain.backbones.loader import resolve_backbone
from xdomain.baselines.linear_probe import fit_logistic_probe
from xdomain.baselines.log_mel import log_mel_statistics
from xdomain.datasets import load_fsdd
from xdomain.reporting import write_results


@torch.no_grad()
def frozen_features(backbone: Any, paths: list[Any]) -> np.ndarray:
    x = load_clips(paths, sample_rate=int(backbone.sample_rate), length=int(backbone.input_length))
    peak = x.abs().amax(dim=1, keepdim=True).clamp_min(1e-8)
    x = x / peak  # the classifier's adapter normalises the peak the same way
    return torch.cat([backbone(x[i : i + 32]) for i in range(0, len(x), 32)]).numpy()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbones", nargs="+", default=["speaker-encoder", "crepe-tiny"])
    p.add_argument("--mappings", nargs="+", default=["linear", "flm"],
                   help="mappings for backbones with source classes (embeddings always use linear)")
    p.add_argument("--epochs", type=int, default=None, help="default: AudioClassifier's")
    p.add_argument("--batch-size", type=int, default=None, help="default: AudioClassifier's")
    p.add_argument("--lr", type=float, default=None, help="default: AudioClassifier's")
    p.add_argument("--patience", type=int, default=None, help="default: AudioClassifier's")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/classify_audio")
    args = p.parse_args(argv)
    command = "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    torch.set_num_threads(args.threads)
    train, test = load_fsdd("train"), load_fsdd("test")
    ytr, yte = train.labels, test.labels
    rows: list[dict[str, Any]] = []

    def add(model: str, backbone: str, mapping: str, acc: float, seconds: float, trainable: int) -> None:
        rows.append({"model": model, "backbone": backbone, "mapping": mapping, "test_acc": 100 * acc,
                     "train_s": seconds, "trainable": trainable})
        print(rows[-1], flush=True)

    t = time.perf_counter()
    Ftr, Fte = log_mel_statistics(train.paths), log_mel_statistics(test.paths)
    base = fit_logistic_probe(Ftr, ytr, args.seed)
    add("logistic regression (log-mel mean/std)", "-", "-", float((base.predict(Fte) == yte).mean()),
        time.perf_counter() - t, (Ftr.shape[1] + 1) * 10)
    given = {k: getattr(args, k) for k in ("epochs", "batch_size", "lr", "patience", "max_steps")}
    common = {**{k: v for k, v in given.items() if v is not None}, "random_state": args.seed}
    t = time.perf_counter()
    nb = AudioClassifier(backbone="none", mapping="linear", program="full", **common).fit(train.paths, ytr)
    add("same program, no backbone", "none", "linear", float((nb.predict(test.paths) == yte).mean()),
        time.perf_counter() - t, nb.num_trainable())
    for bname in args.backbones:
        backbone = resolve_backbone(bname, domain="audio")
        t = time.perf_counter()
        Gtr, Gte = frozen_features(backbone, train.paths), frozen_features(backbone, test.paths)
        probe = fit_logistic_probe(Gtr, ytr, args.seed)
        add("linear probe (frozen features)", bname, "-", float((probe.predict(Gte) == yte).mean()),
            time.perf_counter() - t, (Gtr.shape[1] + 1) * 10)
        mappings = args.mappings if backbone.output_kind == "logits" else ["linear"]
        for mapping in mappings:
            t = time.perf_counter()
            clf = AudioClassifier(backbone=bname, mapping=mapping, program="full", **common)
            clf.fit(train.paths, ytr)
            add("reprogrammed (program + frozen model)", bname, mapping,
                float((clf.predict(test.paths) == yte).mean()), time.perf_counter() - t, clf.num_trainable())
    base_acc = rows[0]["test_acc"]
    lines = [f"# FSDD spoken digits through frozen speech models\n\n`python {' '.join(sys.argv)}`\n",
             f"Official split: {len(ytr)} training recordings (a stratified 20% of them choose the epoch), "
             f"{len(yte)} test recordings, all scored. Training: AudioClassifier's defaults"
             + (f" with {dict((k, v) for k, v in common.items() if k != 'random_state')}"
                if len(common) > 1 else "") + ".\n",
             "| model | backbone | mapping | test acc % | acc / log-mel LR | trainable | train s |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['backbone']} | {r['mapping']} | {r['test_acc']:.2f} | "
              f"{r['test_acc'] / base_acc:.3f} | {r['trainable']:,} | {r['train_s']:.1f} |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    write_results(args.out, text, {"command": command, "args": vars(args), "training": common, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Device check: every estimator's fit and predict on a tiny real slice, on one device at one precision.

For each estimator (the real pretrained backbone it ships with, a few optimiser steps):

- ``TimeSeriesForecaster`` with MiniLM on ETTh1 rows (forecasts of held-out windows, standardised);
- ``TimeSeriesClassifier`` with crepe-tiny on GunPoint (class probabilities of test series);
- ``AudioClassifier`` with speaker-encoder on FSDD clips (class probabilities of test clips);
- ``ProteinClassifier`` with MiniLM on AMP peptides (class probabilities of test peptides);
- ``AntibodyInfiller`` with MiniLM on SAbDab heavy chains (residue probabilities over each test chain's
  CDR-H3),

it times ``fit`` and ``predict`` at ``--precision``, records the peak memory (CUDA: the allocator's peak,
``torch.cuda.max_memory_allocated``; CPU: the process's peak RSS, sampled, which includes every backbone
loaded before), summarises the outputs, and compares them with float32 twice, in the same process:
the same fitted weights predicted in float32 (the precision's inference error) and a second fit in
float32 with the same seed (training and inference error together). At ``--precision no`` both
differences check determinism and should be 0. Prints a markdown table and writes ``<out>.md`` /
``<out>.json`` (the JSON records the command line)::

    python benchmarks/device_check.py --device cpu --precision bf16 \
        --out benchmarks/results/device_check_cpu_bf16
    python benchmarks/device_check.py --device cuda --precision fp16

Reads only the data home (``XDOMAIN_DATA_HOME``) and the bundled backbones; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ESTIMATORS = (
    "TimeSeriesForecaster",
    "TimeSeriesClassifier",
    "AudioClassifier",
    "ProteinClassifier",
    "AntibodyInfiller",
)
COLUMNS = [
    "estimator",
    "backbone",
    "device",
    "precision",
    "fit s",
    "predict s",
    "peak MB",
    "output",
    "max abs diff vs fp32 fit",
    "max abs diff vs fp32 predict",
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--precision", choices=("no", "bf16", "fp16"), default="bf16")
    p.add_argument("--estimators", nargs="+", choices=ESTIMATORS, default=list(ESTIMATORS))
    p.add_argument("--steps", type=int, default=2, help="optimiser steps per fit")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--n-train", type=int, default=16, help="training examples per estimator (stratified)")
    p.add_argument("--n-test", type=int, default=8, help="examples predicted per estimator")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--out", default=None, metavar="STEM",
                   help="write STEM.md and STEM.json (default: benchmarks/results/device_check_<device>_"
                        "<precision>)")
    return p.parse_args(argv)


# -- one estimator per function: its backbone, build(precision) -> estimator, fit(est), predict(est) -> array
Setup = tuple[str, Callable[[str], Any], Callable[[Any], Any], Callable[[Any], Any]]


def _stratified(labels: Any, n: int, seed: int) -> Any:
    """``n`` indices taken in turn from each class (each class shuffled with ``seed``), sorted."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    pools = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < n and any(pools):
        for pool in pools:
            if pool and len(picked) < n:
                picked.append(int(pool.pop()))
    return np.sort(np.asarray(picked, dtype=np.int64))


def _forecaster(args: argparse.Namespace) -> Setup:
    import numpy as np

    from xdomain import TimeSeriesForecaster, load_backbone
    from xdomain.datasets import ETT_DESCRIPTION, load_ett

    lookback, horizon = 64, 16
    frame = load_ett("ETTh1", download=False)
    train_rows = lookback + horizon + 4 * args.n_train  # windows of stride 1: a few steps' worth per series
    train = frame.iloc[:train_rows]
    val = frame.iloc[train_rows : train_rows + horizon + 8]
    held = frame.iloc[train_rows + horizon + 8 :].to_numpy()
    minilm = load_backbone("minilm")  # loaded once, untimed, shared by both fits (as the estimators do)

    def build(precision: str) -> Any:
        return TimeSeriesForecaster(
            backbone=minilm, lookback=lookback, horizon=horizon, num_prototypes=32,
            description=ETT_DESCRIPTION, batch_size=args.batch_size, max_steps=args.steps, val_windows=8,
            seed=args.seed, progress=False, mixed_precision=precision,
        )

    def fit(est: Any) -> None:
        est.fit(train, val)

    def predict(est: Any) -> Any:
        # n_test windows per channel, standardised with the training scaler, each channel its own series
        mean = np.array([est.scaler_[c][0] for c in frame.columns])
        std = np.array([est.scaler_[c][1] for c in frame.columns])
        scaled = (held - mean) / std
        starts = np.linspace(0, len(scaled) - lookback, args.n_test).astype(int)
        windows = np.stack([scaled[s : s + lookback] for s in starts])  # (W, L, C)
        x = windows.transpose(0, 2, 1).reshape(-1, lookback, 1)  # (W * C, L, 1)
        return est.predict_array(x.astype(np.float32))

    return "minilm", build, fit, predict


def _ucr(args: argparse.Namespace) -> Setup:
    from xdomain import TimeSeriesClassifier
    from xdomain.datasets import load_ucr

    Xtr, ytr = load_ucr("GunPoint", "train", download=False)
    Xte, _ = load_ucr("GunPoint", "test", download=False)
    keep = _stratified(ytr, args.n_train, args.seed)
    Xtr, ytr, Xte = Xtr[keep], ytr[keep], Xte[: args.n_test]

    def build(precision: str) -> Any:
        return TimeSeriesClassifier(backbone="crepe-tiny", epochs=1, batch_size=args.batch_size,
                                    max_steps=args.steps, random_state=args.seed, mixed_precision=precision)

    return "crepe-tiny", build, lambda est: est.fit(Xtr, ytr), lambda est: est.predict_proba(Xte)


def _audio(args: argparse.Namespace) -> Setup:
    import numpy as np

    from xdomain import AudioClassifier
    from xdomain.datasets import load_fsdd

    train, test = load_fsdd("train"), load_fsdd("test")
    keep = _stratified(train.labels, args.n_train, args.seed)
    paths, labels = [train.paths[i] for i in keep], train.labels[keep]
    test_paths = [test.paths[i] for i in np.linspace(0, len(test) - 1, args.n_test).astype(int)]

    def build(precision: str) -> Any:
        # a handful of clips of 10 digits cannot be stratified: no validation cut, every example trains
        return AudioClassifier(backbone="speaker-encoder", epochs=1, batch_size=args.batch_size,
                               max_steps=args.steps, validation_fraction=0.0, random_state=args.seed,
                               mixed_precision=precision)

    def predict(est: Any) -> Any:
        return est.predict_proba(test_paths)

    return "speaker-encoder", build, lambda est: est.fit(paths, labels), predict


def _protein(args: argparse.Namespace) -> Setup:
    import numpy as np

    from xdomain import ProteinClassifier
    from xdomain.datasets import amp_split, load_amp

    seqs, y = load_amp("amp_uniprot")
    tr, te = amp_split(seqs, y, test_size=0.2, seed=args.seed)
    tr = np.asarray(tr)[_stratified(y[tr], args.n_train, args.seed)]
    te = np.random.default_rng(args.seed).permutation(te)[: args.n_test]  # the files are sorted by class
    Xtr, ytr, Xte = [seqs[i] for i in tr], y[tr], [seqs[i] for i in te]

    def build(precision: str) -> Any:
        return ProteinClassifier(backbone="minilm", epochs=1, batch_size=args.batch_size,
                                 max_steps=args.steps, max_length=64, too_long="truncate",
                                 validation_fraction=0.0, random_state=args.seed, mixed_precision=precision)

    return "minilm", build, lambda est: est.fit(Xtr, ytr), lambda est: est.predict_proba(Xte)


def _antibody(args: argparse.Namespace) -> Setup:
    import torch

    from xdomain import AntibodyInfiller
    from xdomain.datasets import load_sabdab_cdr

    tr_chains, tr_masks, _ = load_sabdab_cdr("val")
    te_chains, te_masks, _ = load_sabdab_cdr("test")
    tr_chains, tr_masks = tr_chains[: args.n_train], tr_masks[: args.n_train]
    te_chains, te_masks = te_chains[: args.n_test], te_masks[: args.n_test]

    def build(precision: str) -> Any:
        return AntibodyInfiller(backbone="minilm", epochs=1, batch_size=args.batch_size,
                                max_steps=args.steps, validation_fraction=0.0, random_state=args.seed,
                                mixed_precision=precision)

    def predict(est: Any) -> Any:
        # the residue distribution at every CDR-H3 position of the test chains (what infill() samples from)
        masked, targets, _ = est._encode(te_chains, te_masks)
        logits = est._logits(masked)  # (N, L, 20)
        return torch.softmax(logits[targets != -100], dim=-1).numpy()  # (residues, 20)

    return "minilm", build, lambda est: est.fit(tr_chains, tr_masks), predict


SETUPS = {
    "TimeSeriesForecaster": _forecaster,
    "TimeSeriesClassifier": _ucr,
    "AudioClassifier": _audio,
    "ProteinClassifier": _protein,
    "AntibodyInfiller": _antibody,
}


def _set_precision(est: Any, precision: str) -> None:
    """Predict with the same fitted weights at another precision (a constructor parameter of every
    estimator, the forecaster's included)."""
    est.set_params(mixed_precision=precision)


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def check(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from xdomain.reporting import PeakMemory

    backbone, build, fit, predict = SETUPS[name](args)
    # the float32 reference first: it also pays for the first load of the backbone (cached per process)
    start = time.perf_counter()
    ref = build("no")
    fit(ref)
    _sync(args.device)
    ref_fit_s = time.perf_counter() - start
    ref_out = np.asarray(predict(ref), dtype=np.float64)
    est = build(args.precision)
    with PeakMemory() as memory:
        start = time.perf_counter()
        fit(est)
        _sync(args.device)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        out = np.asarray(predict(est), dtype=np.float64)
        _sync(args.device)
        predict_s = time.perf_counter() - start
    model_device = str(next(est.model_.parameters()).device)
    _set_precision(est, "no")
    same_weights = np.asarray(predict(est), dtype=np.float64)
    finite = bool(np.isfinite(out).all())
    return {
        "estimator": name,
        "backbone": backbone,
        "device": args.device,
        "model_device": model_device,
        "precision": args.precision,
        "fit_s": fit_s,
        "predict_s": predict_s,
        "peak_mb": memory.peak_mb,
        "output_shape": list(out.shape),
        "output_sum": float(out.sum()),
        "output_mean": float(out.mean()),
        "output_std": float(out.std()),
        "finite": finite,
        "max_abs_diff_vs_fp32_fit": float(np.abs(out - ref_out).max()),
        "max_abs_diff_vs_fp32_predict": float(np.abs(out - same_weights).max()),
        "fp32_fit_s": ref_fit_s,  # includes the first load of the backbone
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for r in rows:
        shape = "x".join(str(n) for n in r["output_shape"])
        output = f"{shape}, mean {r['output_mean']:.4f}, std {r['output_std']:.4f}" + (
            "" if r["finite"] else ", NOT FINITE"
        )
        cells = [
            r["estimator"], r["backbone"], r["model_device"], r["precision"], f"{r['fit_s']:.2f}",
            f"{r['predict_s']:.2f}", f"{r['peak_mb']:.0f}", output, f"{r['max_abs_diff_vs_fp32_fit']:.3g}",
            f"{r['max_abs_diff_vs_fp32_predict']:.3g}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported: no GPU is seen at all
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    if args.device == "cpu" and torch.cuda.is_available():  # torch was imported (and saw a GPU) before
        print("device_check: --device cpu but torch already sees a CUDA device; run it in a fresh process",
              file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("device_check: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    from xdomain.datasets.home import data_home

    rows = []
    start = time.perf_counter()
    for name in args.estimators:
        print(f"{name} ...", flush=True)
        rows.append(check(name, args))
        keys = ("fit_s", "predict_s", "peak_mb", "max_abs_diff_vs_fp32_fit", "max_abs_diff_vs_fp32_predict")
        print({k: rows[-1][k] for k in keys}, flush=True)
    elapsed = time.perf_counter() - start
    memory = "torch.cuda.max_memory_allocated" if args.device == "cuda" else "peak process RSS (psutil)"
    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else None
    processor = gpu or platform.processor() or platform.machine()
    text = "\n".join([
        f"# Device check: {args.device}, precision {args.precision}",
        "",
        f"`{command}`",
        "",
        f"{args.steps} optimiser steps on {args.n_train} training examples, {args.n_test} predicted "
        f"(forecaster: {args.n_test} windows of each ETTh1 channel); data home `{data_home()}`; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {processor}; "
        f"{elapsed:.0f} s in all.",
        "",
        table(rows),
        "",
        f"`peak MB`: {memory} over fit and predict (on a CPU it includes every backbone loaded before). "
        "`output`: shape, mean and std of the predictions (forecasts on standardised data; class or residue "
        "probabilities). `max abs diff vs fp32 fit`: against a second fit in float32 with the same seed "
        "in this process (training and inference together); `vs fp32 predict`: the same fitted weights "
        "predicted in float32 (inference only). At precision `no` both check determinism.",
        "",
    ])
    print(text)
    out = Path(args.out or f"benchmarks/results/device_check_{args.device}_{args.precision}")
    record = {
        "command": command,
        "args": vars(args),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "gpu": gpu,
        },
        "env": {
            k: os.environ.get(k) for k in ("XDOMAIN_DATA_HOME", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")
        },
        "peak_memory": memory,
        "elapsed_s": round(elapsed, 2),
        "rows": rows,
    }
    from xdomain.reporting import write_results

    write_results(out, text, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

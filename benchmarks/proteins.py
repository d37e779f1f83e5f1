"""Proteins and antibodies through a frozen English language model (R2DL / ReprogBERT), beside baselines.

Tasks (one process, one run each; model choice on validation data cut from the training data only):

- ``amp``: antimicrobial peptides vs UniProt (modlAMP), a fixed stratified 80/20 split (``amp_split``,
  seed 0). Models: R2DL-style reprogrammed MiniLM (vocabulary map + pooled linear head; also the
  many-to-one label mapping over MiniLM's vocabulary), a k-mer logistic regression, linear probes on
  frozen MiniLM features (the residues read as English letters) and frozen AntiBERTy features.
- ``deepsol``: DeepSol solubility, trained on its validation file (a held-back part chooses the epoch),
  tested on its test file; sequences cut to ``--deepsol-max-length`` residues for every model.
- ``cdrh3``: CDR-H3 infilling on the SAbDab (RefineGNN) test split, trained on its validation split:
  amino-acid recovery and sample diversity of the reprogrammed MiniLM (ReprogBERT), beside the
  position-frequency baseline and AntiBERTy masked infilling (a real antibody masked LM, zero-shot).

Prints tables and writes ``<out>.md`` / ``<out>.json``::

    python benchmarks/proteins.py --tasks amp deepsol cdrh3
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

from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from xdomain import AntibodyInfiller, ProteinClassifier
from xdomain.adapters.protein import clean_proteins
from xdomain.backbones.loader import resolve_backbone
from xdomain.baselines import KmerLogisticRegression
from xdomain.baselines.linear_probe import fit_logistic_probe
from xdomain.baselines.position_frequency import position_frequency_infill
from xdomain.datasets import amp_split, load_amp, load_deepsol, load_sabdab_cdr
from xdomain.reporting import write_results

TARGETS = {"amp": "R2DL reports 88.6-90.0 % accuracy", "deepsol": "DeepSol reports 77 % test accuracy"}



@torch.no_grad()
def minilm_text_features(seqs: list[str], batch: int = 64) -> np.ndarray:
    """Frozen MiniLM on the residues written as English letters ("M K T ..."), mean-pooled."""
    backbone = resolve_backbone("minilm")
    tok = backbone.tokenizer
    out = []
    for i in range(0, len(seqs), batch):
        text = [" ".join(s) for s in seqs[i : i + batch]]
        enc = tok(text, padding=True, truncation=True, max_length=512, return_tensors="pt")
        hidden = backbone(backbone.embed_ids(enc["input_ids"]), enc["attention_mask"])
        m = enc["attention_mask"].unsqueeze(-1).float()
        out.append(((hidden * m).sum(1) / m.sum(1)).numpy())
    return np.concatenate(out)


@torch.no_grad()
def antiberty_features(seqs: list[str], batch: int = 32) -> np.ndarray:
    """Frozen AntiBERTy on its own residue tokens, mean-pooled (a protein-native language model)."""
    from xdomain.backbones.masked_lm import antiberty_token_ids

    backbone = resolve_backbone("antiberty", domain="masked-lm")
    limit = int(backbone.model.config.max_position_embeddings) - 2
    out = []
    for i in range(0, len(seqs), batch):
        ids = [antiberty_token_ids(s[:limit]) for s in seqs[i : i + batch]]
        width = max(len(x) for x in ids)
        x = torch.zeros(len(ids), width, dtype=torch.long)
        mask = torch.zeros(len(ids), width, dtype=torch.long)
        for j, row in enumerate(ids):
            x[j, : len(row)] = torch.tensor(row)
            mask[j, : len(row)] = 1
        hidden = backbone(backbone.embed_ids(x), mask)
        m = mask.unsqueeze(-1).float()
        out.append(((hidden * m).sum(1) / m.sum(1)).numpy())
    return np.concatenate(out)


def scores(model: Any, X: Any, y: np.ndarray) -> tuple[float, float]:
    """Accuracy and AUROC (class 1 positive) on every test example."""
    proba = model.predict_proba(X)
    classes = list(model.classes_)
    pred = np.asarray(classes)[proba.argmax(1)]
    return float((pred == y).mean()), float(roc_auc_score(y == classes[-1], proba[:, -1]))


def count(value: int | str) -> str:
    return value if isinstance(value, str) else f"{value:,}"


def classification_task(task: str, Xtr: list[str], ytr: np.ndarray, Xte: list[str], yte: np.ndarray,
                        args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []

    def add(model: str, acc: float, auc: float, seconds: float, trainable: int | str) -> None:
        rows.append({"task": task, "model": model, "accuracy": 100 * acc, "auroc": auc, "train_s": seconds,
                     "trainable": trainable})
        print(rows[-1], flush=True)

    t = time.perf_counter()
    kmer = GridSearchCV(KmerLogisticRegression(k=3), {"C": [1.0, 10.0, 100.0, 1000.0]},
                        cv=StratifiedKFold(5, shuffle=True, random_state=args.seed)).fit(Xtr, ytr)
    add("k-mer (1-3) logistic regression", *scores(kmer, Xte, yte), time.perf_counter() - t, "-")
    for name, feats in (("linear probe: frozen MiniLM (residues as text)", minilm_text_features),
                        ("linear probe: frozen AntiBERTy", antiberty_features)):
        if args.no_probes or (name.endswith("AntiBERTy") and args.no_antiberty):
            continue
        t = time.perf_counter()
        Ftr, Fte = feats(Xtr), feats(Xte)
        probe = fit_logistic_probe(Ftr, ytr, args.seed)
        add(name, *scores(probe, Fte, yte), time.perf_counter() - t, int(Ftr.shape[1] + 1))
    variants = {
        "dense": ("reprogrammed MiniLM, dense map + linear head (ReprogBERT theta)", {}),
        "topk": ("reprogrammed MiniLM, top-64 sparse map + linear head (R2DL)", {"sparsity": "topk"}),
        "label-mapping": ("reprogrammed MiniLM, dense map + vocabulary label mapping (R2DL)",
                          {"head": "label-mapping"}),
    }
    for key in args.variants:
        label, kw = variants[key]
        t = time.perf_counter()
        clf = ProteinClassifier(backbone="minilm", epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                max_steps=args.max_steps, random_state=args.seed, max_length=args.max_length,
                                too_long="truncate", **kw).fit(Xtr, ytr)
        seconds = time.perf_counter() - t
        add(label, *scores(clf, Xte, yte), seconds, clf.num_trainable())
    return rows


def cdrh3_task(args: argparse.Namespace) -> list[dict[str, Any]]:
    tr_chains, tr_masks, _ = load_sabdab_cdr("val")
    te_chains, te_masks, _ = load_sabdab_cdr("test")
    if args.limit:
        tr_chains, tr_masks = tr_chains[: args.limit], tr_masks[: args.limit]
        te_chains, te_masks = te_chains[: args.limit], te_masks[: args.limit]
    rows = []

    def add(model: str, result: dict[str, float], seconds: float, trainable: int | str) -> None:
        rows.append({"task": "cdrh3", "model": model, "recovery": 100 * result["recovery"],
                     "diversity": result.get("diversity"), "residues": int(result["residues"]),
                     "train_s": seconds, "trainable": trainable})
        print(rows[-1], flush=True)

    t = time.perf_counter()
    baseline = position_frequency_infill(tr_chains, tr_masks, te_chains, te_masks)
    add("position frequency (train split)", baseline, time.perf_counter() - t, "-")
    if not args.no_antiberty:
        t = time.perf_counter()
        add("AntiBERTy masked infilling (zero-shot)", antiberty_infill(te_chains, te_masks),
            time.perf_counter() - t, 0)
    t = time.perf_counter()
    inf = AntibodyInfiller(backbone="minilm", epochs=args.infill_epochs, batch_size=16, lr=args.infill_lr,
                           max_steps=args.max_steps, random_state=args.seed).fit(tr_chains, tr_masks)
    seconds = time.perf_counter() - t
    add("reprogrammed MiniLM (ReprogBERT: theta + gamma)", inf.evaluate(te_chains, te_masks, n=10), seconds,
        inf.num_trainable())
    return rows


@torch.no_grad()
def antiberty_infill(chains: list[str], masks: list[Any]) -> dict[str, float]:
    """AntiBERTy's own masked-LM prediction of every CDR-H3 residue (the whole region masked at once)."""
    from xdomain.backbones.masked_lm import _antiberty_vocab, antiberty_token_ids

    backbone = resolve_backbone("antiberty", domain="masked-lm")
    vocab = _antiberty_vocab()
    letters = "ACDEFGHIKLMNPQRSTVWY"
    aa_ids = torch.tensor([vocab[a] for a in letters])
    hits = total = 0
    limit = int(backbone.model.config.max_position_embeddings) - 2
    for chain, mask in zip(chains, masks, strict=True):
        chain = clean_proteins([chain])[0][:limit]
        region = np.asarray(mask)[: len(chain)] == 3
        masked = "".join("_" if r else c for c, r in zip(chain, region, strict=True))
        ids = torch.tensor([antiberty_token_ids(masked)])
        logits = backbone.mlm_logits(ids)[0, 1:-1]  # (L, V)
        pred = logits[:, aa_ids].argmax(-1)
        for j in np.flatnonzero(region):
            hits += int(letters[int(pred[j])] == chain[j])
            total += 1
    return {"recovery": hits / total, "residues": float(total)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tasks = ["amp", "deepsol", "cdrh3"]
    p.add_argument("--tasks", nargs="+", default=tasks, choices=tasks)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--deepsol-max-length", type=int, default=256)
    p.add_argument("--deepsol-epochs", type=int, default=1)
    p.add_argument("--infill-epochs", type=int, default=5)
    p.add_argument("--infill-lr", type=float, default=1e-3)
    p.add_argument("--limit", type=int, default=None, help="smoke runs: at most this many examples per split")
    p.add_argument("--variants", nargs="+", default=["dense", "topk", "label-mapping"],
                   choices=["dense", "topk", "label-mapping"], help="reprogrammed variants for amp")
    p.add_argument("--deepsol-train-limit", type=int, default=None,
                   help="train every DeepSol model on a seeded random subset of this many sequences")
    p.add_argument("--no-antiberty", action="store_true")
    p.add_argument("--no-probes", action="store_true", help="skip the frozen-feature linear probes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/proteins")
    args = p.parse_args(argv)
    command = "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    if "amp" in args.tasks:
        seqs, y = load_amp("amp_uniprot")
        tr, te = amp_split(seqs, y, test_size=0.2, seed=args.seed)
        if args.limit:  # smoke runs: a seeded random subset (the files are sorted by class)
            rng = np.random.default_rng(args.seed)
            tr, te = rng.permutation(tr)[: args.limit], rng.permutation(te)[: args.limit]
        rows += classification_task("amp", [seqs[i] for i in tr], y[tr], [seqs[i] for i in te], y[te], args)
    if "deepsol" in args.tasks:
        Xtr, ytr = load_deepsol("val")
        Xte, yte = load_deepsol("test")
        Xtr = clean_proteins(Xtr, args.deepsol_max_length, "truncate")
        Xte = clean_proteins(Xte, args.deepsol_max_length, "truncate")
        if args.limit:
            rng = np.random.default_rng(args.seed)
            a, b = rng.permutation(len(Xtr))[: args.limit], rng.permutation(len(Xte))[: args.limit]
            Xtr, ytr = [Xtr[i] for i in a], np.asarray(ytr)[a]
            Xte, yte = [Xte[i] for i in b], np.asarray(yte)[b]
        if args.deepsol_train_limit:
            keep = np.random.default_rng(args.seed).permutation(len(Xtr))[: args.deepsol_train_limit]
            Xtr, ytr = [Xtr[i] for i in keep], np.asarray(ytr)[keep]
        sub = argparse.Namespace(**{**vars(args), "epochs": args.deepsol_epochs, "variants": ["dense"]})
        rows += classification_task("deepsol", list(Xtr), np.asarray(ytr), list(Xte), np.asarray(yte), sub)
    if "cdrh3" in args.tasks:
        rows += cdrh3_task(args)
    lines = [f"# Proteins and antibodies through frozen language models\n\n`python {' '.join(sys.argv)}`\n"]
    for task in ("amp", "deepsol"):
        task_rows = [r for r in rows if r["task"] == task]
        if not task_rows:
            continue
        base = task_rows[0]["accuracy"]
        lines += [f"\n## {task} ({TARGETS[task]})\n",
                  "| model | test acc % | acc / k-mer | AUROC | trainable | train s |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['accuracy']:.2f} | {r['accuracy'] / base:.3f} | {r['auroc']:.3f} | "
                  f"{count(r['trainable'])} | {r['train_s']:.1f} |" for r in task_rows]
    task_rows = [r for r in rows if r["task"] == "cdrh3"]
    if task_rows:
        base = task_rows[0]["recovery"]
        lines += ["\n## CDR-H3 infilling, SAbDab test split (trained on its validation split)\n",
                  "| model | recovery % | recovery / position frequency | diversity (10 samples) "
                  "| residues | trainable | train s |", "|---|---|---|---|---|---|---|"]
        for r in task_rows:
            div = "" if r["diversity"] is None else f"{r['diversity']:.3f}"
            lines.append(f"| {r['model']} | {r['recovery']:.2f} | {r['recovery'] / base:.3f} | {div} | "
                         f"{r['residues']} | {count(r['trainable'])} | {r['train_s']:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    write_results(args.out, text, {"command": command, "args": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

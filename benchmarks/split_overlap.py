"""Leakage in the peptide, solubility and antibody splits: duplicates, conflicting labels, near-duplicates.

For each data set, what its loader reads (rows, distinct sequences, duplicate rows, sequences that carry
more than one label) and, for each train/test split, what the train side shares with the test side:
test rows whose sequence is in train, and pairs of different but near-identical sequences by the k-mer
rule of :func:`xdomain.datasets.sequences.near_identical_pairs` (k-mers counted with multiplicity;
near-identical when they share at least ``--min-shared`` of the shorter sequence's k-mers).

- AMP vs UniProt and AMP vs transmembrane (modlAMP): the old row split on the raw rows
  (``load_amp(dedup=False)``, ``amp_split(split="rows")``), the new default (``load_amp()``, deduplicated,
  ``amp_split()`` by unique sequence) and the similarity split (``amp_split(split="similarity")``).
- DeepSol: the val file (what the project trains on) against the official test file.
- SAbDab (RefineGNN): val against test and RAbD, test against RAbD, whole heavy chains and their
  CDR-H3 alone (framework regions are conserved, so whole chains are near-identical by any k-mer rule;
  the CDR-H3 is what the cluster split separates); and RAbD with ``exclude="val"``.

Reads only the data home (nothing is downloaded); no model is trained. Prints the tables and writes
``<out>.md`` and ``<out>.json`` (the JSON records the command line and every number)::

    python benchmarks/split_overlap.py
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xdomain.datasets.deepsol import load_deepsol
from xdomain.datasets.home import data_home
from xdomain.datasets.peptides import amp_split, load_amp
from xdomain.datasets.sabdab import load_sabdab_cdr
from xdomain.datasets.sequences import (
    KMER_K,
    KMER_MIN_SHARED,
    deduplicate,
    sequence_key,
    similarity_groups,
    split_overlap,
)
from xdomain.reporting import write_results


def conflicting(sequences: Sequence[str], labels: Sequence[Any] | np.ndarray) -> int:
    """Distinct sequences that carry more than one label."""
    return deduplicate(sequences, labels)[1].conflicting_sequences


def split_row(
    dataset: str,
    split: str,
    train: tuple[list[str], Any],
    test: tuple[list[str], Any],
    k: int,
    min_shared: float,
) -> dict[str, Any]:
    """One train/test comparison; labels ``None``: unlabelled (conflicts not applicable, shown as ``-``)."""
    (tr_x, tr_y), (te_x, te_y) = train, test
    overlap = split_overlap(tr_x, te_x, k, min_shared)
    return {
        "dataset": dataset,
        "split": split,
        "train_rows": len(tr_x),
        "test_rows": len(te_x),
        "train_unique": len({sequence_key(s) for s in tr_x}),
        "test_unique": len({sequence_key(s) for s in te_x}),
        "conflicting_sequences": "-" if tr_y is None else conflicting(tr_x + te_x, [*tr_y, *te_y]),
        **overlap,
    }


def loader_row(dataset: str, sequences: list[str], labels: Any) -> dict[str, Any]:
    return {"dataset": dataset, **deduplicate(sequences, labels)[1].as_dict()}


def cdr_h3(chains: list[str], masks: list[np.ndarray]) -> list[str]:
    return [
        "".join(c for c, m in zip(chain, mask, strict=True) if m == 3)
        for chain, mask in zip(chains, masks, strict=True)
    ]


def markdown(title: str, rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> list[str]:
    lines = [f"## {title}", "", "| " + " | ".join(h for _, h in columns) + " |"]
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        lines.append("| " + " | ".join(str(row[key]) for key, _ in columns) + " |")
    return [*lines, ""]


LOADER_COLUMNS = [
    ("dataset", "data set"),
    ("rows", "rows read"),
    ("unique", "unique"),
    ("duplicates_removed", "duplicate rows"),
    ("conflicting_sequences", "conflicting sequences"),
    ("conflicting_rows", "their rows"),
    ("kept", "rows kept by dedup"),
]
SPLIT_COLUMNS = [
    ("dataset", "data set"),
    ("split", "split"),
    ("train_rows", "train rows"),
    ("test_rows", "test rows"),
    ("train_unique", "train unique"),
    ("test_unique", "test unique"),
    ("conflicting_sequences", "conflicting labels"),
    ("test_rows_in_train", "test rows in train (exact)"),
    ("shared_sequences", "sequences on both sides"),
    ("near_pairs", "near-identical train-test pairs"),
    ("test_sequences_near_train", "test seqs with an identical or near-identical train seq"),
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0, help="seed of amp_split")
    p.add_argument("--test-size", type=float, default=0.2, help="test fraction of amp_split")
    p.add_argument("--k", type=int, default=KMER_K, help="k-mer length of the near-identity rule")
    p.add_argument(
        "--min-shared",
        type=float,
        default=KMER_MIN_SHARED,
        help="shared fraction of the shorter sequence's k-mers that makes a near-identical pair",
    )
    p.add_argument("--out", default="benchmarks/results/split_overlap")
    args = p.parse_args(argv)
    command = "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])
    start = time.perf_counter()
    k, share = args.k, args.min_shared
    loaders: list[dict[str, Any]] = []
    splits: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []

    for name, label in (("amp_uniprot", "AMPvsUniProt"), ("amp_transmembrane", "AMPvsTMset")):
        raw_x, raw_y = load_amp(name, dedup=False)
        loaders.append(loader_row(label, raw_x, raw_y))
        x, y = load_amp(name)
        for split, (sx, sy) in (("rows", (raw_x, raw_y)), ("unique", (x, y)), ("similarity", (x, y))):
            tr, te = amp_split(
                sx, sy, test_size=args.test_size, seed=args.seed, split=split, k=k, min_shared=share
            )
            where = "raw rows, old row split" if split == "rows" else f"dedup, {split} split"
            splits.append(
                split_row(
                    label, where, ([sx[i] for i in tr], sy[tr]), ([sx[i] for i in te], sy[te]), k, share
                )
            )
        sizes = np.bincount(similarity_groups(x, k, share))
        groups.append(
            {
                "dataset": label,
                "sequences": len(x),
                "groups": len(sizes),
                "in_groups_of_2_or_more": int(sizes[sizes > 1].sum()),
                "largest_group": int(sizes.max()),
            }
        )

    ds = {part: load_deepsol(part, download=False) for part in ("val", "test")}
    for part, (x, y) in ds.items():
        loaders.append(loader_row(f"DeepSol {part}", x, y))
    splits.append(split_row("DeepSol", "val (train) / test, official", ds["val"], ds["test"], k, share))

    sab = {part: load_sabdab_cdr(part) for part in ("val", "test", "rabd")}
    for part, (chains, masks, _) in sab.items():
        loaders.append(loader_row(f"SAbDab {part} (label: CDR mask)", chains, masks))
    for a, b in (("val", "test"), ("val", "rabd"), ("test", "rabd")):
        (ca, ma, _), (cb, mb, _) = sab[a], sab[b]
        splits.append(split_row("SAbDab heavy chain", f"{a} / {b}, official", (ca, ma), (cb, mb), k, share))
        ha, hb = cdr_h3(ca, ma), cdr_h3(cb, mb)
        splits.append(split_row("SAbDab CDR-H3", f"{a} / {b}, official", (ha, None), (hb, None), k, share))
    rabd = load_sabdab_cdr("rabd", exclude="val")
    (cv, mv, _) = sab["val"]
    splits.append(
        split_row("SAbDab heavy chain", 'val / rabd, exclude="val"', (cv, mv), (rabd[0], rabd[1]), k, share)
    )

    elapsed = time.perf_counter() - start
    rule = (
        f"near-identical: the two sequences share at least {share} of the {k}-mers of the shorter one "
        "(k-mers counted with multiplicity, sequences compared upper-case and stripped)"
    )
    lines = ["# Split overlap: duplicates, conflicting labels and near-duplicates", "", f"`{command}`", ""]
    lines += [
        f"Data home `{data_home()}`; amp_split seed {args.seed}, test_size {args.test_size}. Rule: {rule}. "
        'Pairs count two different sequences, one on each side; "conflicting labels" counts distinct '
        "sequences with more than one label over both sides (for SAbDab the label is the CDR mask). "
        f"{elapsed:.1f} s.",
        "",
    ]
    lines += markdown("What the loaders read", loaders, LOADER_COLUMNS)
    lines += markdown("Train/test overlap", splits, SPLIT_COLUMNS)
    lines += markdown(
        'Similarity groups of the deduplicated AMP sets (what split="similarity" keeps together)',
        groups,
        [
            ("dataset", "data set"),
            ("sequences", "sequences"),
            ("groups", "groups"),
            ("in_groups_of_2_or_more", "sequences in groups of 2+"),
            ("largest_group", "largest group"),
        ],
    )
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    record = {
        "command": command,
        "executable": sys.executable,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cwd": os.getcwd(),
        "env": {key: os.environ.get(key) for key in ("XDOMAIN_DATA_HOME", "OMP_NUM_THREADS")},
        "python": platform.python_version(),
        "args": vars(args),
        "rule": {"k": k, "min_shared": share, "text": rule},
        "elapsed_s": round(elapsed, 2),
        "loaders": loaders,
        "splits": splits,
        "similarity_groups": groups,
    }
    write_results(out.with_suffix(""), text, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

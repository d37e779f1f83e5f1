"""``xdomain protein classify``: proteins and peptides through a frozen English language model with a
vocabulary map (ProteinClassifier, R2DL), beside a k-mer logistic regression."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xdomain.baselines.kmer import KmerLogisticRegression
from xdomain.cli.common import (
    LIMIT_HELP,
    TRAINING,
    Subparsers,
    add_run,
    add_training,
    classify_and_report,
    float_in,
    given,
    limit_note,
    limit_split,
    linear_size,
    log,
    positive,
    positive_float,
    set_threads,
)
from xdomain.cli.outdir import out_folder
from xdomain.datasets.deepsol import load_deepsol
from xdomain.datasets.peptides import amp_split, load_amp
from xdomain.datasets.sequences import read_sequences
from xdomain.estimators.proteins import HEAD_CHOICES, ProteinClassifier
from xdomain.transforms.vocab_map import SPARSITIES

PROTEIN_DATASETS = ("peptides/amp", "peptides/amp-transmembrane", "proteins/deepsol")
_AMP_NAMES = {"peptides/amp": "amp_uniprot", "peptides/amp-transmembrane": "amp_transmembrane"}
# DeepSol's sequences run to ~1,700 residues, past the 512 positions of a BERT: its default is the first 256
# residues (truncation announced with the number of sequences it shortens; --max-length overrides it)
DEEPSOL_MAX_LENGTH = 256


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "protein", help="protein and peptide tasks through a frozen English language model (R2DL)"
    )
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser(
        "classify",
        help="classify proteins or peptides (AMP, DeepSol solubility, or your FASTA and labels)",
        description="Reprogram a frozen language model with a vocabulary map (ProteinClassifier) and report "
        "test accuracy, trainable parameters and train seconds beside a k-mer logistic regression. "
        "peptides/amp: AMP vs UniProt (modlAMP), a fixed stratified split (amp_split, --test-size, --seed); "
        "peptides/amp-transmembrane likewise; proteins/deepsol: trained on DeepSol's val file (a part held "
        "back inside the estimator), tested on its test file. --fasta with --labels: your data, split "
        "like AMP.",
    )
    source = c.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=PROTEIN_DATASETS, help="a bundled benchmark")
    source.add_argument("--fasta", metavar="PATH", help="your sequences (FASTA), with --labels")
    c.add_argument(
        "--labels",
        metavar="PATH",
        help="labels for --fasta: a text file with one label a line in FASTA order, or a .csv with columns "
        "id and label (matched by FASTA id)",
    )
    c.add_argument(
        "--test-size",
        type=float_in(0.0, 1.0, True, True),
        default=None,
        help="held-out test fraction for peptides/amp* and --fasta (default 0.2)",
    )
    c.add_argument(
        "--backbone",
        default=None,
        help="minilm (default), antiberty, a transformers masked-LM name or folder",
    )
    c.add_argument("--head", default=None, choices=HEAD_CHOICES,
                   help="output head (default: ProteinClassifier's, label-mapping)")
    c.add_argument("--sparsity", default=None, choices=SPARSITIES, help="vocabulary map (default dense)")
    c.add_argument(
        "--k", type=positive, default=None, help="source tokens per amino acid for --sparsity topk"
    )
    c.add_argument("--l1", type=positive_float, default=None, help="L1 penalty for --sparsity l1")
    c.add_argument(
        "--max-length",
        type=positive,
        default=None,
        help=f"most residues a sequence (default: the backbone's limit; {DEEPSOL_MAX_LENGTH} for DeepSol)",
    )
    c.add_argument(
        "--too-long",
        default=None,
        choices=("error", "truncate"),
        help="longer sequences: an error, or cut to --max-length (default error; truncate for DeepSol)",
    )
    add_training(c, "10 epochs, batch 32, lr 0.001, patience 3, validation fraction 0.1")
    add_run(c, LIMIT_HELP)
    c.add_argument("--no-baseline", action="store_true", help="skip the k-mer logistic-regression baseline")
    c.set_defaults(handler=classify)


def read_labels(path: str, ids: list[str]) -> Any:
    """Labels for the FASTA records ``ids``, as text, in their order."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"labels file not found: {path!r}")
    if file.suffix.lower() == ".csv":
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
        if "id" not in frame.columns or "label" not in frame.columns:
            raise ValueError(f"{path!r} has the columns {list(frame.columns)}; expected 'id' and 'label'")
        by_id = dict(zip(frame["id"], frame["label"], strict=True))
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise ValueError(
                f"{path!r} has no label for {len(missing)} FASTA record(s), first {missing[0]!r}; "
                "expected a row for every id"
            )
        labels = [by_id[i] for i in ids]
    else:
        labels = file.read_text(encoding="utf-8").splitlines()
        while labels and not labels[-1].strip():
            labels.pop()
        if len(labels) != len(ids):
            raise ValueError(
                f"{path!r} holds {len(labels)} labels for {len(ids)} FASTA records; expected one label a "
                "line, in the FASTA's order"
            )
    empty = [n for n, label in enumerate(labels, start=1) if not label.strip()]
    if empty:
        raise ValueError(f"{path!r}: label {empty[0]} is empty; expected a label for every sequence")
    return np.asarray([label.strip() for label in labels], dtype=object)


def _split(args: argparse.Namespace) -> tuple[list[str], Any, list[str], Any, str]:
    """``(train sequences, labels, test sequences, labels, what the split is)``; for DeepSol also its
    --max-length and --too-long defaults (set on ``args``)."""
    if args.dataset == "proteins/deepsol":
        train_seqs, y_train = load_deepsol("val", args.data_home)
        test_seqs, y_test = load_deepsol("test", args.data_home)
        if args.max_length is None:
            args.max_length = DEEPSOL_MAX_LENGTH
        if args.too_long is None:
            args.too_long = "truncate"
        split = "DeepSol val file (train; the estimator holds a part back), test file (test)"
        return train_seqs, y_train, test_seqs, y_test, split
    seqs: list[str]
    labels: Any
    if args.fasta is not None:
        if args.labels is None:
            raise ValueError("--fasta needs --labels (a label for each sequence)")
        records = read_sequences(Path(args.fasta))
        seqs, labels = records.sequences, read_labels(args.labels, records.ids)
        name = args.fasta
    else:
        seqs, labels = load_amp(_AMP_NAMES[args.dataset], args.data_home)
        name = args.dataset
    test_size = 0.2 if args.test_size is None else args.test_size
    train_idx, test_idx = amp_split(seqs, labels, test_size=test_size, seed=args.seed)
    split = f"stratified amp_split of {name}: test_size {test_size}, seed {args.seed}"
    return (
        [seqs[i] for i in train_idx],
        labels[train_idx],
        [seqs[i] for i in test_idx],
        labels[test_idx],
        split,
    )


def classify(args: argparse.Namespace) -> int:
    set_threads(args)
    if args.labels is not None and args.fasta is None:
        raise ValueError("--labels goes with --fasta (the labels of your sequences)")
    if args.dataset == "proteins/deepsol" and args.test_size is not None:
        raise ValueError(
            "--test-size applies to peptides/amp* and --fasta; DeepSol has an official test file"
        )
    folder = out_folder(args.out, args.overwrite)
    train_seqs, y_train, test_seqs, y_test, split = _split(args)
    train_seqs, y_train, test_seqs, y_test = limit_split(
        train_seqs, y_train, test_seqs, y_test, args.limit, args.seed
    )
    dataset = args.dataset or args.fasta
    log(
        f"{dataset}: {len(y_train)} training and {len(y_test)} test sequences" + limit_note(args.limit)
    )
    if args.too_long == "truncate" and args.max_length is not None:
        cut = sum(len(s) > args.max_length for s in [*train_seqs, *test_seqs])
        log(
            f"truncating {cut} of {len(train_seqs) + len(test_seqs)} sequences to their first "
            f"{args.max_length} residues for the reprogrammed model (--too-long truncate); the k-mer "
            "baseline reads them whole"
        )
    params = given(args, ("backbone", "head", "sparsity", "k", "l1", "max_length", "too_long", *TRAINING))
    est = ProteinClassifier(**params, random_state=args.seed, verbose=args.verbose)
    s = est.get_params()
    baseline = None
    if not args.no_baseline:
        what = "logistic regression on 1..3-mer frequencies"
        baseline = (KmerLogisticRegression(), what, lambda b: linear_size(b.model_))
    return classify_and_report(
        args,
        folder,
        {"command": "protein classify", "dataset": dataset, "split": split},
        est,
        f"{s['backbone']}, {s['sparsity']} vocabulary map, {s['head']} head",
        baseline,
        (train_seqs, y_train),
        (test_seqs, y_test),
    )

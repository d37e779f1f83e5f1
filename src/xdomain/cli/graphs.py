"""``xdomain graph classify``: a frozen language model reprogrammed to classify TU graphs (GraphClassifier),
on one of the fixed outer folds of Errica et al.'s 10-fold protocol, beside a WL-subtree SVM baseline."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from xdomain.cli.common import (
    LIMIT_HELP,
    TRAINING,
    Subparsers,
    add_run,
    add_training,
    classify_and_report,
    given,
    int_at_least,
    limit_note,
    log,
    set_threads,
    subset,
)
from xdomain.cli.outdir import out_folder
from xdomain.datasets.graphs import MUTAG_ATOMS, graph_folds, load_tu
from xdomain.estimators.graphs import ENCODERS, HEADS, GraphClassifier, WLSubtreeSVM

CONNECTIVITY_CHOICES = ("adjacency", "2-hop", "3-hop", "full")


def dataset_name(text: str) -> str:
    """``TUDataset/<name>``, spelled canonically (the TU name itself is checked on loading)."""
    family, _, name = text.partition("/")
    if family.lower() == "tudataset" and name and "/" not in name:
        return f"TUDataset/{name}"
    raise argparse.ArgumentTypeError(
        f"unknown data set {text!r}; expected TUDataset/<name> (a TU set in the data home or downloadable, "
        "e.g. TUDataset/MUTAG)"
    )


def register(sub: Subparsers) -> None:
    p = sub.add_parser("graph", help="graphs through a frozen language model (graph classification)")
    commands = p.add_subparsers(dest="graph_command", required=True)
    c = commands.add_parser(
        "classify",
        help="reprogram a frozen language model to classify TU graphs, on one fixed outer fold",
        description="Train on the training part of one of the 10 fixed, stratified outer folds of Errica et "
        "al. (isomorphic duplicates kept in one fold; the best epoch picked on a validation cut of the "
        "training part), report accuracy on every graph of the test fold, trainable parameters and train "
        "seconds, beside a WL-subtree SVM (C and iterations by 5-fold CV on the training part). "
        "benchmarks/graphs.py runs all 10 folds and the other baselines.",
    )
    c.add_argument("--dataset", required=True, type=dataset_name,
                   help="TUDataset/<name> (e.g. TUDataset/MUTAG, from <data home>/TUDataset/<name>/raw)")
    c.add_argument("--backbone", default=None, help="minilm (default), a transformers name or a local folder")
    c.add_argument("--encoder", default=None, choices=ENCODERS,
                   help="input transformation (default gin-prefix, chosen by inner validation)")
    c.add_argument("--head", default=None, choices=HEADS, help="output head (default linear)")
    c.add_argument("--connectivity", default=None, choices=CONNECTIVITY_CHOICES,
                   help="node tokens: which nodes a node attends to (default adjacency)")
    c.add_argument("--no-backbone", action="store_true", help="the ablation: the backbone removed")
    c.add_argument("--fold", type=int_at_least(0), default=0, help="outer fold to test on, 0-9 (default 0)")
    add_training(c, "40 epochs, batch 32, lr 0.001, patience 40, validation fraction 0.1")
    add_run(c, LIMIT_HELP)
    c.add_argument("--no-baseline", action="store_true", help="skip the WL-subtree SVM baseline")
    c.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    set_threads(args)
    if args.fold > 9:
        raise ValueError(f"--fold must be one of the 10 outer folds 0-9, got {args.fold}")
    folder = out_folder(args.out, args.overwrite)
    name = args.dataset.split("/", 1)[1]
    ds = load_tu(name, args.data_home)
    graphs = [ds[i] for i in range(len(ds))]
    y = ds.y.numpy()
    train_idx, test_idx = graph_folds(graphs, y)[args.fold]
    if args.limit is not None:
        train_idx = train_idx[subset(list(y[train_idx]), args.limit, args.seed)]
        test_idx = test_idx[subset(list(y[test_idx]), args.limit, args.seed)]
    x_train, y_train = [graphs[i] for i in train_idx], y[train_idx]
    x_test, y_test = [graphs[i] for i in test_idx], y[test_idx]
    log(f"{args.dataset} fold {args.fold}: {len(y_train)} training and {len(y_test)} test graphs, "
        f"{len(np.unique(y))} classes" + limit_note(args.limit))
    params: dict[str, Any] = given(args, ("backbone", "encoder", "head", "connectivity", *TRAINING))
    if args.no_backbone:
        params["no_backbone"] = True
    if name == "MUTAG":
        params["node_names"] = list(MUTAG_ATOMS)
    est = GraphClassifier(**params, random_state=args.seed, verbose=args.verbose)
    s = est.get_params()
    baseline = None
    if not args.no_baseline:
        baseline = (WLSubtreeSVM(random_state=args.seed), "WL subtree features (PyG WLConv) + linear SVM, "
                    "iterations and C by 5-fold CV on the training part", lambda b: int(b.num_parameters()))
    head = {"command": "graph classify", "dataset": args.dataset,
            "split": f"outer fold {args.fold} of 10 (Errica et al.; stratified, isomorphic duplicates "
                     "together)"}
    backbone = "none" if s["no_backbone"] else s["backbone"]
    description = f"{backbone} + {s['encoder']} + {s['head']}"
    return classify_and_report(args, folder, head, est, description, baseline,
                               (x_train, y_train), (x_test, y_test))

"""``xdomain antibody train`` and ``xdomain antibody infill``: antibody CDR infilling through a frozen
English masked language model (AntibodyInfiller, ReprogBERT)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord

from xdomain.adapters.antibody import REGIONS
from xdomain.baselines.position_frequency import position_frequency_infill
from xdomain.checkpoint import is_checkpoint
from xdomain.cli.common import (
    TRAINING,
    Subparsers,
    add_run,
    add_training,
    given,
    history_row,
    int_at_least,
    limit_note,
    log,
    non_negative_float,
    positive,
    positive_float,
    report,
    seed_int,
    set_threads,
    settings,
    table,
)
from xdomain.cli.outdir import out_folder
from xdomain.datasets.sabdab import load_sabdab_cdr, read_cdr_csv
from xdomain.datasets.sequences import FASTA_SUFFIXES, write_fasta
from xdomain.estimators.antibodies import AntibodyInfiller
from xdomain.transforms.vocab_map import SPARSITIES


def region_name(text: str) -> str:
    """A CDR region, any case, spelled canonically (``CDR-H3``)."""
    key = text.upper()
    if key not in REGIONS:
        raise argparse.ArgumentTypeError(f"unknown region {text!r}; expected one of {list(REGIONS)}")
    return key


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "antibody", help="antibody CDR infilling through a frozen English masked LM (ReprogBERT)"
    )
    actions = p.add_subparsers(dest="action", required=True)
    t = actions.add_parser(
        "train",
        help="train an AntibodyInfiller on SAbDab and report CDR recovery",
        description="Train on the SAbDab CDR-H3 cluster split's val file (RefineGNN; a part held back inside "
        "the estimator), report amino-acid recovery of the most likely infill on its test file (or RAbD) "
        "beside the position-frequency baseline fitted on the same training chains.",
    )
    t.add_argument("--dataset", default="sabdab", choices=("sabdab",), help="training data (default sabdab)")
    t.add_argument(
        "--test-split",
        default="test",
        choices=("test", "rabd"),
        help="where recovery is measured (default test)",
    )
    t.add_argument("--region", type=region_name, default="CDR-H3", help="CDR-H1, CDR-H2 or CDR-H3 (default)")
    t.add_argument(
        "--backbone", default=None, help="minilm (default), a transformers masked-LM name or local folder"
    )
    t.add_argument("--sparsity", default=None, choices=SPARSITIES, help="vocabulary map (default dense)")
    t.add_argument(
        "--k", type=positive, default=None, help="source tokens per amino acid for --sparsity topk"
    )
    t.add_argument("--l1", type=positive_float, default=None, help="L1 penalty for --sparsity l1")
    t.add_argument(
        "--max-length", type=positive, default=None, help="most residues a chain (default: the backbone's)"
    )
    t.add_argument(
        "--too-long", default=None, choices=("error", "truncate"), help="longer chains (default error)"
    )
    t.add_argument(
        "--samples",
        type=int_at_least(0),
        default=0,
        help="also report recovery and diversity of this many sampled designs a test chain (default 0)",
    )
    t.add_argument("--temperature", type=non_negative_float, default=1.0, help="for --samples")
    add_training(t, "10 epochs, batch 16, lr 0.001, patience 3, validation fraction 0.1")
    add_run(t, "smoke runs: only the first N chains of the training and of the test file")
    t.set_defaults(handler=train)

    i = actions.add_parser(
        "infill",
        help="sample new CDRs for antibody chains with a trained infiller",
        description="Load a trained AntibodyInfiller (the --out folder of 'xdomain antibody train', or its "
        "model/ folder) and sample --n designs of a region for one chain (--sequence with --cdr-mask) or "
        "for every chain of a CSV with columns pdb, seq, cdr (--chains PATH or sabdab/<split>). Writes "
        "FASTA to --output, or to standard output.",
    )
    i.add_argument("--model", required=True, metavar="DIR", help="a trained AntibodyInfiller")
    i.add_argument("--sequence", metavar="SEQ", help="one heavy chain")
    i.add_argument(
        "--cdr-mask", metavar="MASK", help="its CDR mask: a digit a residue, 0 framework, 1/2/3 CDR-H1/H2/H3"
    )
    i.add_argument(
        "--chains", metavar="CSV", help="chains with masks: a CSV with columns pdb,seq,cdr, or sabdab/<split>"
    )
    i.add_argument("--limit", type=positive, default=None, metavar="N", help="only the first N --chains")
    i.add_argument(
        "--region", type=region_name, default=None, help="region to redesign (default: the model's)"
    )
    i.add_argument("--n", type=positive, default=100, help="designs a chain (default 100)")
    i.add_argument(
        "--temperature",
        type=non_negative_float,
        default=1.0,
        help="sampling temperature; 0 gives the most likely design (default 1.0)",
    )
    i.add_argument("--seed", type=seed_int, default=None, help="sampling seed (default: the model's)")
    i.add_argument(
        "--output", metavar="PATH", default=None, help="FASTA file to write (default: standard output)"
    )
    i.add_argument("--threads", type=positive, default=None, help="torch CPU threads")
    i.set_defaults(handler=infill)


def train(args: argparse.Namespace) -> int:
    set_threads(args)
    folder = out_folder(args.out, args.overwrite)
    chains, masks, _ = load_sabdab_cdr("val", args.data_home)
    # chains of the training file are removed from the test file (RAbD shares 5 with val, split_overlap.md)
    test_chains, test_masks, _ = load_sabdab_cdr(args.test_split, args.data_home, exclude="val")
    if args.limit is not None:
        # the first chains of each file: no classes to balance, and a subset anyone can name
        chains, masks = chains[: args.limit], masks[: args.limit]
        test_chains, test_masks = test_chains[: args.limit], test_masks[: args.limit]
    log(
        f"SAbDab: {len(chains)} training chains (val file), {len(test_chains)} test chains "
        f"({args.test_split} file), region {args.region}" + limit_note(args.limit)
    )
    params = given(args, ("backbone", "sparsity", "k", "l1", "max_length", "too_long", *TRAINING))
    est = AntibodyInfiller(**params, region=args.region, random_state=args.seed, verbose=args.verbose)
    s = est.get_params()
    description = f"{s['backbone']}, {s['sparsity']} vocabulary map, vocabulary projection"
    log(f"training reprogram: {description}")
    start = time.perf_counter()
    est.fit(chains, masks)
    seconds = time.perf_counter() - start
    scores = est.evaluate(test_chains, test_masks, n=args.samples, temperature=args.temperature)
    rows = [
        {
            "model": "reprogram",
            "description": description,
            **scores,
            "trainable_parameters": est.num_trainable(),
            "train_seconds": round(seconds, 3),
            **history_row(est),
        }
    ]
    start = time.perf_counter()
    base = position_frequency_infill(chains, masks, test_chains, test_masks, region=args.region)
    rows.append(
        {
            "model": "baseline",
            "description": "most frequent residue at each region position of the training chains",
            **base,
            "trainable_parameters": None,
            "train_seconds": round(time.perf_counter() - start, 3),
        }
    )
    doc = {
        "command": "antibody train",
        "dataset": "SAbDab CDR-H3 cluster split (RefineGNN)",
        "train_split": "val",
        "test_split": args.test_split,
        "region": args.region,
        "n_train": len(chains),
        "n_test": len(test_chains),
        "limit": args.limit,
        "samples": args.samples,
        "temperature": args.temperature,
        "estimator": "AntibodyInfiller",
        "settings": settings(est),
        "results": rows,
    }
    report(folder, doc, table(rows, "recovery", f"test {args.region} recovery"), est, args.overwrite)
    return 0


def _infill_chains(args: argparse.Namespace) -> tuple[list[str], list[str], list[Any]]:
    """``(names, chains, masks)`` of the chains to redesign."""
    if args.chains is not None:
        if args.sequence is not None or args.cdr_mask is not None:
            raise ValueError("give either --chains or --sequence with --cdr-mask, not both")
        if args.chains.lower().startswith("sabdab/"):
            chains, masks, ids = load_sabdab_cdr(args.chains.split("/", 1)[1])
        else:
            path = Path(args.chains)
            if path.suffix.lower() in FASTA_SUFFIXES:
                raise ValueError(
                    f"--chains {args.chains!r} is a FASTA file, which holds no CDR masks; give a CSV with "
                    "columns pdb,seq,cdr, or one chain with --sequence and --cdr-mask"
                )
            if not path.is_file():
                raise FileNotFoundError(f"--chains file not found: {args.chains!r}")
            chains, masks, ids = read_cdr_csv(path)
        keep = len(chains) if args.limit is None else args.limit
        chains, masks, ids = chains[:keep], masks[:keep], ids[:keep]
        # PDB ids repeat when a structure holds several heavy chains: the row number keeps names apart
        names = ids if len(set(ids)) == len(ids) else [f"{pdb}_{row}" for row, pdb in enumerate(ids)]
        return names, chains, list(masks)
    if args.sequence is None or args.cdr_mask is None:
        raise ValueError("give --sequence with --cdr-mask (one chain), or --chains (a CSV of chains)")
    if args.limit is not None:
        raise ValueError("--limit applies to --chains, not to one --sequence")
    return ["design"], [args.sequence], [args.cdr_mask]


def infill(args: argparse.Namespace) -> int:
    set_threads(args)
    names, chains, masks = _infill_chains(args)
    output = None if args.output is None else Path(args.output)
    if output is not None and not output.parent.is_dir():
        raise FileNotFoundError(
            f"folder {str(output.parent)!r} does not exist; create it before writing designs"
        )
    model_dir = Path(args.model)
    if not is_checkpoint(model_dir) and is_checkpoint(model_dir / "model"):
        model_dir = model_dir / "model"
    infiller = AntibodyInfiller.load(model_dir)
    region = args.region or infiller.region
    ids: list[str] = []
    designs: list[str] = []
    descriptions: list[str] = []
    for name, chain, mask in zip(names, chains, masks, strict=True):
        sampled = infiller.infill(
            chain, mask, region=region, n=args.n, temperature=args.temperature, seed=args.seed
        )
        ids += [f"{name}_{k}" for k in range(1, len(sampled) + 1)]
        designs += sampled
        descriptions += [f"region={region} temperature={args.temperature:g} source={name}"] * len(sampled)
    if output is not None:
        write_fasta(designs, output, ids=ids, descriptions=descriptions)
        log(f"wrote {len(designs)} designs of {region} for {len(chains)} chain(s) to {output}")
    else:
        records = [
            SeqRecord(Seq(seq), id=sid, description=f"{sid} {desc}")
            for seq, sid, desc in zip(designs, ids, descriptions, strict=True)
        ]
        SeqIO.write(records, sys.stdout, "fasta")
    return 0

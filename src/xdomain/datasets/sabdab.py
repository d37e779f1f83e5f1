"""SAbDab antibody heavy chains with CDR masks, in the splits of RefineGNN, for CDR-H3 infilling.

ReprogBERT (Melnyk et al., ICML 2023) masks the CDR-H3 of these chains and infills it; the data and
splits are RefineGNN's (Jin et al., ICLR 2022; SAbDab: Dunbar et al., 2014, CC BY 4.0). Each CSV row
holds ``pdb`` (the structure's PDB id), ``seq`` (the heavy chain) and ``cdr`` (one code a residue:
0 framework, 1/2/3 = CDR-H1/H2/H3):

- ``"val"`` (``sabdab_hcdr3_cluster_val.csv``, 403 chains) and ``"test"``
  (``sabdab_hcdr3_cluster_test.csv``, 437 chains): the CDR-H3 cluster split;
- ``"rabd"`` (``rabd_test.csv``, 58 chains): the RAbD benchmark test set.

The CSV files hold the ``pdb``, ``seq`` and ``cdr`` fields of RefineGNN's gzipped JSON-lines files (the
3D coordinates dropped); they live in ``<data home>/antibodies/sabdab_cdr/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from xdomain.adapters.antibody import parse_cdr_mask
from xdomain.datasets.home import DataNotFoundError, data_home
from xdomain.registry import DATASETS

SABDAB_FOLDER = "antibodies/sabdab_cdr"
SABDAB_FILES: dict[str, str] = {
    "val": "sabdab_hcdr3_cluster_val.csv",
    "test": "sabdab_hcdr3_cluster_test.csv",
    "rabd": "rabd_test.csv",
}
_UPSTREAM = {
    "val": "data/sabdab/hcdr3_cluster/val_data.jsonl.gz",
    "test": "data/sabdab/hcdr3_cluster/test_data.jsonl.gz",
    "rabd": "data/rabd/test.jsonl.gz",
}
_REPO = "github.com/wengong-jin/RefineGNN (commit f41aa5fea6679d7e4c4dbce776b4bac89115a03a)"
COLUMNS = ("pdb", "seq", "cdr")


def sabdab_path(split: str, home: str | os.PathLike[str] | None = None) -> Path:
    """Where the split's CSV is expected; :class:`DataNotFoundError` if it is not there."""
    if split not in SABDAB_FILES:
        raise ValueError(f"unknown SAbDab split {split!r}; expected one of {sorted(SABDAB_FILES)}")
    root = data_home(home)
    path = root / SABDAB_FOLDER / SABDAB_FILES[split]
    if not path.is_file():
        raise DataNotFoundError(
            f"data file {SABDAB_FILES[split]!r} not found: expected it at {path} (data home {root}; set "
            f"XDOMAIN_DATA_HOME to change it). Get it from {_REPO}, file {_UPSTREAM[split]}: "
            f"write its fields {', '.join(COLUMNS)} as CSV columns"
        )
    return path


def read_cdr_csv(path: str | os.PathLike[str]) -> tuple[list[str], list[np.ndarray], list[str]]:
    """A ``pdb,seq,cdr`` CSV: ``(chains, cdr_masks, ids)``, every mask checked against its chain."""
    file = Path(path)
    # all text: PDB ids such as "1e10" must not become numbers
    frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{str(file)!r} lacks the columns {missing}; its columns are {list(frame.columns)}")
    chains = [str(s) for s in frame["seq"]]
    ids = [str(s) for s in frame["pdb"]]
    masks: list[np.ndarray] = []
    for row, (pdb, chain, cdr) in enumerate(zip(ids, chains, frame["cdr"], strict=True), start=1):
        try:
            mask = parse_cdr_mask(str(cdr))
        except ValueError as err:
            raise ValueError(f"{str(file)!r} data row {row} ({pdb}): {err}") from None
        if len(mask) != len(chain):
            raise ValueError(
                f"{str(file)!r} data row {row} ({pdb}): the chain has {len(chain)} residues but its CDR mask "
                f"has {len(mask)} codes; expected one code per residue"
            )
        masks.append(mask)
    return chains, masks, ids


def load_sabdab_cdr(
    split: str = "test", data_home: str | os.PathLike[str] | None = None
) -> tuple[list[str], list[np.ndarray], list[str]]:
    """One split: ``(chains, cdr_masks, ids)``; masks are int64 arrays of the chains' lengths, ids PDB ids."""
    return read_cdr_csv(sabdab_path(split, data_home))


DATASETS.register("sabdab_cdr")(load_sabdab_cdr)

__all__ = ["SABDAB_FILES", "load_sabdab_cdr", "read_cdr_csv", "sabdab_path"]

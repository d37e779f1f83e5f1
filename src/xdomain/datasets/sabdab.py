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

Overlap (``benchmarks/split_overlap.py``): no chain of ``"val"`` is in ``"test"``, but 5 of the 58
``"rabd"`` chains are verbatim in ``"val"`` (4 of them the same PDB entries) and 3 in ``"test"`` (the
same entries); within a split, distinct PDB entries often hold the same chain (``"val"``: 403 rows,
340 distinct chains; ``"test"``: 437 rows, 372), always with the same CDR mask (no conflicting labels).
:func:`load_sabdab_cdr` returns the official files as they are by default; ``unique=True`` keeps one
row per chain, ``exclude`` drops the chains of other splits (``load_sabdab_cdr("rabd", exclude="val")``
when training on ``"val"``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from xdomain.datasets.home import DataNotFoundError, data_home
from xdomain.datasets.sequences import deduplicate, parse_cdr_mask, sequence_key
from xdomain.registry import DATASETS

logger = logging.getLogger(__name__)

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
    split: str = "test",
    data_home: str | os.PathLike[str] | None = None,
    unique: bool = False,
    exclude: str | Sequence[str] = (),
) -> tuple[list[str], list[np.ndarray], list[str]]:
    """One split: ``(chains, cdr_masks, ids)``; masks are int64 arrays of the chains' lengths, ids PDB ids.

    Args:
        split: ``"val"``, ``"test"`` or ``"rabd"``.
        unique: keep the first row of each distinct chain (compared as
            :func:`~xdomain.datasets.sequences.sequence_key`) and drop any chain whose rows carry
            different CDR masks (:func:`~xdomain.datasets.sequences.deduplicate`).
        exclude: a split or splits whose chains are removed from this one: the chains one trains on,
            so that none of them is tested (``"rabd"`` shares 5 chains with ``"val"``, 3 with ``"test"``).

    The defaults (``unique=False``, no ``exclude``) return the official file row for row: these are
    published benchmark sets, scored as they are in the papers one compares with; the repeated chains
    within a split are different PDB entries with identical masks (no label conflict), and which chains
    leak depends on what one trains on, which this function cannot know. Pass ``exclude`` for a
    leak-free test set. What was removed is logged (logger ``xdomain.datasets.sabdab``, level INFO).
    """
    chains, masks, ids = read_cdr_csv(sabdab_path(split, data_home))
    keep = np.arange(len(chains), dtype=np.int64)
    if unique:
        keep, counts = deduplicate(chains, masks)
        logger.info("SAbDab %s, unique=True: %s", split, counts)
    others = [exclude] if isinstance(exclude, str) else list(exclude)
    if split in others:
        raise ValueError(f"exclude={exclude!r} names the split {split!r} itself")
    if others:
        seen = {sequence_key(c) for other in others for c in read_cdr_csv(sabdab_path(other, data_home))[0]}
        before = len(keep)
        keep = keep[[sequence_key(chains[i]) not in seen for i in keep]]
        logger.info("SAbDab %s: %d rows whose chain is in %s removed", split, before - len(keep), others)
    return [chains[i] for i in keep], [masks[i] for i in keep], [ids[i] for i in keep]


DATASETS.register("sabdab_cdr")(load_sabdab_cdr)

__all__ = ["SABDAB_FILES", "load_sabdab_cdr", "read_cdr_csv", "sabdab_path"]

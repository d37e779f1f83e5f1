"""Antimicrobial peptides (AMP) as binary classification, from modlAMP (Müller et al., 2017).

R2DL (Vinod, Chen & Das, Digital Discovery 2025) reprograms an English language model to classify
antimicrobial peptides; these are the AMP sets that modlAMP ships (BSD-3), in its CSV format: a first
line ``n,ncols-1,class0,class1`` (e.g. ``5200,1,UniProt,AMP``) then ``sequence,label`` rows.

- ``"amp_uniprot"`` (``AMPvsUniProt.csv``): 2,600 AMPs from APD3 (label 1) vs 2,600 random UniProt
  peptides of 10-50 residues (label 0).
- ``"amp_transmembrane"`` (``AMPvsTMset.csv``): 206 AMPs (APD2, CAMP; label 1) vs 206 transmembrane
  helices (label 0); Müller et al., Mol. Inf. 2017, doi:10.1002/minf.201600011.

Files are read from ``<data home>/peptides/amp_modlamp/``, or, when missing there, from an installed
``modlamp`` package (``modlamp/data/``).

Duplicates: ``AMPvsUniProt.csv`` holds 5,200 rows but 4,642 distinct sequences, and 22 of them carry
both labels. :func:`load_amp` therefore deduplicates by default (``dedup=True``): identical sequences
(compared as :func:`~xdomain.datasets.sequences.sequence_key`: ends stripped, upper case) collapse to
their first row, and a sequence with conflicting labels is dropped, leaving 4,620 rows; the counts
come back with ``return_counts=True`` (a :class:`~xdomain.datasets.sequences.DedupCounts`) and are
logged. ``AMPvsTMset.csv`` has no duplicates.

There is no split in the files: :func:`amp_split` gives a fixed, stratified one, by unique sequence
(identical sequences never straddle it, whatever rows it is given), or with ``split="similarity"``
by groups of near-identical peptides; ``split="rows"`` is the old row split (it leaks when rows
repeat: on the raw 5,200 rows, 142 of its 1,040 test rows also appear in train).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Literal, overload

import numpy as np

from xdomain.datasets.home import DataNotFoundError, data_home
from xdomain.datasets.sequences import (
    KMER_K,
    KMER_MIN_SHARED,
    DedupCounts,
    deduplicate,
    group_split,
    sequence_groups,
    similarity_groups,
)
from xdomain.registry import DATASETS

logger = logging.getLogger(__name__)

AMP_FOLDER = "peptides/amp_modlamp"
AMP_FILES: dict[str, str] = {"amp_uniprot": "AMPvsUniProt.csv", "amp_transmembrane": "AMPvsTMset.csv"}
AMP_SOURCE = (
    "the modlAMP wheel on PyPI (pip download modlamp==4.3.3 --no-deps; members modlamp/data/{file}), "
    "or pip install modlamp"
)


def _modlamp_file(filename: str) -> Path | None:
    # the package imports heavy plotting modules at import time: only locate it, never import it
    spec = importlib.util.find_spec("modlamp")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / filename
    return path if path.is_file() else None


def amp_path(name: str = "amp_uniprot", home: str | os.PathLike[str] | None = None) -> Path:
    """Where the AMP set ``name`` is read from; :class:`DataNotFoundError` if it is nowhere."""
    key = name.lower() if isinstance(name, str) else name
    if key not in AMP_FILES:
        raise ValueError(f"unknown AMP data set {name!r}; expected one of {sorted(AMP_FILES)}")
    filename = AMP_FILES[key]
    root = data_home(home)
    path = root / AMP_FOLDER / filename
    if path.is_file():
        return path
    packaged = _modlamp_file(filename)
    if packaged is not None:
        return packaged
    raise DataNotFoundError(
        f"data file {filename!r} not found: expected it at {path} (data home {root}; set "
        f"XDOMAIN_DATA_HOME to change it). Get it from {AMP_SOURCE.format(file=filename)}"
    )


def read_modlamp_csv(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """A modlAMP CSV (header ``n,ncols-1,class0,class1``, then ``sequence,label`` rows), checked."""
    file = Path(path)
    lines = file.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise ValueError(f"{str(file)!r} is empty; expected a modlAMP CSV")
    header = [h.strip() for h in lines[0].split(",")]
    if len(header) != 4 or not header[0].isdigit() or header[1] != "1":
        raise ValueError(
            f"{str(file)!r} starts with {lines[0]!r}; expected the modlAMP header 'n,1,class0,class1'"
        )
    sequences: list[str] = []
    labels: list[int] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        label = parts[-1].strip() if len(parts) == 2 else ""
        if label not in ("0", "1") or not parts[0].strip():
            raise ValueError(
                f"{str(file)!r} line {number} is {line!r}; expected 'sequence,label' with label 0 or 1"
            )
        sequences.append(parts[0].strip())
        labels.append(int(label))
    if len(sequences) != int(header[0]):
        raise ValueError(
            f"{str(file)!r} announces {header[0]} sequences in its header but holds {len(sequences)}"
        )
    return sequences, np.asarray(labels, dtype=np.int64)


@overload
def load_amp(
    name: str = ...,
    data_home: str | os.PathLike[str] | None = ...,
    dedup: bool = ...,
    *,
    return_counts: Literal[False] = ...,
) -> tuple[list[str], np.ndarray]: ...


@overload
def load_amp(
    name: str = ...,
    data_home: str | os.PathLike[str] | None = ...,
    dedup: bool = ...,
    *,
    return_counts: Literal[True],
) -> tuple[list[str], np.ndarray, DedupCounts]: ...


def load_amp(
    name: str = "amp_uniprot",
    data_home: str | os.PathLike[str] | None = None,
    dedup: bool = True,
    *,
    return_counts: bool = False,
) -> tuple[list[str], np.ndarray] | tuple[list[str], np.ndarray, DedupCounts]:
    """An AMP set: ``(sequences, labels)``, labels int64 with 1 = antimicrobial, in file order.

    Args:
        name: ``"amp_uniprot"`` or ``"amp_transmembrane"``.
        data_home: the data home (default: :func:`~xdomain.datasets.home.data_home`).
        dedup: one row per distinct sequence (its first row), sequences that carry both labels
            dropped (:func:`~xdomain.datasets.sequences.deduplicate`); ``False``: every row as read.
        return_counts: also return the :class:`~xdomain.datasets.sequences.DedupCounts` of the file
            (rows read, duplicates removed, conflicting sequences dropped, rows kept); with
            ``dedup=False`` they say what deduplication would remove. The counts are also logged
            (logger ``xdomain.datasets.peptides``, level INFO).
    """
    sequences, labels = read_modlamp_csv(amp_path(name, data_home))
    kept, counts = deduplicate(sequences, labels)
    logger.info("AMP set %s: %s%s", name, counts, "" if dedup else " (dedup=False: all rows returned)")
    if dedup:
        sequences, labels = [sequences[i] for i in kept], labels[kept]
    if return_counts:
        return sequences, labels, counts
    return sequences, labels


AMP_SPLITS = ("unique", "similarity", "rows")


def amp_split(
    sequences: list[str] | np.ndarray,
    labels: np.ndarray | list[int],
    test_size: float = 0.2,
    seed: int = 0,
    split: str = "unique",
    k: int = KMER_K,
    min_shared: float = KMER_MIN_SHARED,
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed stratified split: ``(train_indices, test_indices)``, row indices, each sorted.

    Args:
        split: what stays together on one side:

            - ``"unique"`` (default): identical sequences (compared as
              :func:`~xdomain.datasets.sequences.sequence_key`), so no test sequence is in train;
            - ``"similarity"``: near-identical peptides too: the connected components of pairs that
              share at least ``min_shared`` of the shorter peptide's k-mers
              (:func:`~xdomain.datasets.sequences.near_identical_pairs`; k = 3 and 0.5 by default,
              about 85-90 % identity for scattered substitutions, and any fragment of another
              peptide), so no test peptide has a near-identical train peptide;
            - ``"rows"``: the old row split (scikit-learn's ``train_test_split`` with
              ``stratify=labels``), kept to reproduce earlier results; it leaks repeated rows.

            ``"unique"`` and ``"similarity"`` use :func:`~xdomain.datasets.sequences.group_split`:
            stratified by label, ``round(test_size * n_c)`` test rows of each label ``c`` as nearly as
            whole groups allow (exactly, for ``"unique"`` on deduplicated rows).
        k, min_shared: the near-identity rule of ``split="similarity"``.

    The same seed gives the same split. Sequences with conflicting labels are best dropped first
    (:func:`load_amp` does by default); here they only stay on one side.
    """
    y = np.asarray(labels)
    if len(sequences) != len(y):
        raise ValueError(f"got {len(sequences)} sequences but {len(y)} labels; expected one label a sequence")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
    if split not in AMP_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(AMP_SPLITS)}")
    if split == "rows":
        from sklearn.model_selection import train_test_split

        train, test = train_test_split(np.arange(len(y)), test_size=test_size, random_state=seed, stratify=y)
        return np.sort(train), np.sort(test)
    seqs = [str(s) for s in sequences]
    groups = sequence_groups(seqs) if split == "unique" else similarity_groups(seqs, k, min_shared)
    return group_split(groups, y, test_size=test_size, seed=seed)


for _name in AMP_FILES:
    DATASETS.register(_name)(lambda data_home=None, _n=_name: load_amp(_n, data_home))

__all__ = ["AMP_FILES", "AMP_SPLITS", "amp_path", "amp_split", "load_amp", "read_modlamp_csv"]

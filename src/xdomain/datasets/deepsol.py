"""DeepSol protein solubility (Khurana et al., Bioinformatics 2018): E. coli expression, binary.

One of the protein tasks R2DL (Vinod, Chen & Das, Digital Discovery 2025) reprograms a language model
for. The official files (github.com/sameerkhurana10/DSOL_rv0.2, MIT) come in pairs: ``<split>_src``
holds one sequence a line, ``<split>_tgt`` its label on the same line (1 soluble, 0 insoluble).

- ``"test"``: 2,001 sequences (1,000 soluble), the standard DeepSol / PEER test set;
- ``"val"``: 6,942 sequences (2,897 soluble);
- ``"train"``: 28,972 sequences, downloaded where a network is present (not in the shared data copy).

Files live in ``<data home>/proteins/solubility_deepsol/`` and are checked against their sha256.

Overlap (``benchmarks/split_overlap.py``): ``"val"`` and ``"test"`` hold no repeated sequence, share
none, and no sequence carries both labels, so the files are returned as they are (no dedup option is
needed). 36 val-test pairs are near-identical by the k-mer rule of
:func:`~xdomain.datasets.sequences.near_identical_pairs` (k = 3, half the shorter one's k-mers),
involving 31 test sequences. ``"train"`` is not in the shared copy and was not checked; use
:func:`~xdomain.datasets.sequences.split_overlap` on it where it has been downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xdomain.datasets.home import fetch
from xdomain.registry import DATASETS

DEEPSOL_FOLDER = "proteins/solubility_deepsol"
_BASE = "https://raw.githubusercontent.com/sameerkhurana10/DSOL_rv0.2/9cc5da72f1cf3f46350470a06a4d04abbf171f32/data/"
# sha256 of the files at that commit, taken from verbatim copies; None: not verified here
DEEPSOL_FILES: dict[str, dict[str, str | None]] = {
    "test": {
        "src": "67e6dc6e104eee78c699b7dc592ffd6a14279abd3bbbd779ac96d7a5f4ab0f11",
        "tgt": "ec73662e8911d9bc6de2e9c7d5147b66fb897651c2447f325832c2749c0e48d7",
    },
    "val": {
        "src": "4b869b7ae014fc490930cee5a36284a8e7dbe80eefcb90e280378a052c64eda4",
        "tgt": "0b2bb65e082bf9cbeb9b46cd917aa417511075404d77f491ed9afd7112e71227",
    },
    "train": {"src": None, "tgt": None},
}


def _lines(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    return [line.rstrip("\r") for line in lines]


def read_deepsol_pair(
    src: str | os.PathLike[str], tgt: str | os.PathLike[str]
) -> tuple[list[str], np.ndarray]:
    """A ``*_src`` / ``*_tgt`` pair: ``(sequences, labels)``, checked line by line."""
    src_path, tgt_path = Path(src), Path(tgt)
    sequences = _lines(src_path)
    targets = _lines(tgt_path)
    if len(sequences) != len(targets):
        raise ValueError(
            f"{src_path.name} holds {len(sequences)} sequences but {tgt_path.name} holds {len(targets)} "
            f"labels (in {src_path.parent}); expected one label a sequence"
        )
    for number, (sequence, target) in enumerate(zip(sequences, targets, strict=True), start=1):
        if not sequence.strip():
            raise ValueError(f"{src_path} line {number} is empty; expected a sequence")
        if target.strip() not in ("0", "1"):
            raise ValueError(f"{tgt_path} line {number} is {target!r}; expected the label 0 or 1")
    return sequences, np.asarray([int(t) for t in targets], dtype=np.int64)


def load_deepsol(
    split: str = "test", data_home: str | os.PathLike[str] | None = None, download: bool = True
) -> tuple[list[str], np.ndarray]:
    """One DeepSol split: ``(sequences, labels)``, labels int64 with 1 = soluble, in file order."""
    if split not in DEEPSOL_FILES:
        raise ValueError(f"unknown DeepSol split {split!r}; expected one of {sorted(DEEPSOL_FILES)}")
    paths = {
        part: fetch(f"{DEEPSOL_FOLDER}/{split}_{part}", _BASE + f"{split}_{part}", sha, data_home, download)
        for part, sha in DEEPSOL_FILES[split].items()
    }
    return read_deepsol_pair(paths["src"], paths["tgt"])


DATASETS.register("deepsol")(load_deepsol)

__all__ = ["DEEPSOL_FILES", "load_deepsol", "read_deepsol_pair"]

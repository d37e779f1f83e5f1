"""Free Spoken Digit Dataset (FSDD; Jackson et al., github.com/Jakobovski/free-spoken-digit-dataset).

Recordings of the digits 0-9 spoken in English, 8 kHz mono WAV, named ``{digit}_{speaker}_{index}.wav``,
in ``<data home>/audio/fsdd/recordings/``. The official split (the repository's README): recordings with
index 0-4 are the test set, the rest (5-49) the training set.

The loader lists files; it reads no audio (see :func:`xdomain.adapters.audio.load_clips`).
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xdomain.datasets.home import DataNotFoundError, data_home
from xdomain.registry import DATASETS

REPOSITORY = "https://github.com/Jakobovski/free-spoken-digit-dataset"
FOLDER = "audio/fsdd/recordings"
TEST_INDICES = range(5)  # official split: index 0-4 test, the rest train
_PATTERN = re.compile(r"([0-9])_([A-Za-z0-9]+)_([0-9]+)\.wav")
_SPLITS = ("train", "test", "all")


@dataclass
class FSDD:
    """One split of FSDD, sorted by (digit, speaker, index).

    Shapes:
        - ``paths``, ``speakers``: ``N`` entries; ``labels``, ``indices``: ``(N,)`` int64
    """

    paths: list[Path]
    labels: np.ndarray  # (N,) the spoken digit
    speakers: list[str]
    indices: np.ndarray  # (N,) the recording's index for its (digit, speaker)
    split: str = "all"
    folder: Path = field(default_factory=Path)

    def __len__(self) -> int:
        return len(self.paths)


def load_fsdd(split: str = "train", home: str | os.PathLike[str] | None = None) -> FSDD:
    """The recordings of one official split (``"train"``, ``"test"``) or of all (``"all"``).

    Files in the folder whose names do not follow ``{digit}_{speaker}_{index}.wav`` are left out with a
    warning that counts them.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {list(_SPLITS)}, got {split!r}")
    folder = data_home(home) / FOLDER
    if not folder.is_dir():
        raise DataNotFoundError(
            f"FSDD recordings not found: expected the folder {folder} holding "
            f"{{digit}}_{{speaker}}_{{index}}.wav files (data home {data_home(home)}; "
            "set XDOMAIN_DATA_HOME to change it); copy the "
            f"'recordings' folder of the official repository {REPOSITORY} there"
        )
    rows: list[tuple[int, str, int, Path]] = []
    skipped = 0
    for path in folder.iterdir():
        match = _PATTERN.fullmatch(path.name)
        if match is None or not path.is_file():
            skipped += 1
            continue
        rows.append((int(match[1]), match[2], int(match[3]), path))
    if skipped:
        warnings.warn(
            f"{skipped} file(s) in {folder} do not match {{digit}}_{{speaker}}_{{index}}.wav "
            "and were ignored",
            stacklevel=2,
        )
    if not rows:
        raise DataNotFoundError(
            f"no FSDD recordings ({{digit}}_{{speaker}}_{{index}}.wav) in {folder}; copy the 'recordings' "
            f"folder of {REPOSITORY} there"
        )
    if split != "all":
        rows = [r for r in rows if (r[2] in TEST_INDICES) == (split == "test")]
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    return FSDD(
        paths=[r[3] for r in rows],
        labels=np.asarray([r[0] for r in rows], dtype=np.int64),
        speakers=[r[1] for r in rows],
        indices=np.asarray([r[2] for r in rows], dtype=np.int64),
        split=split,
        folder=folder,
    )


DATASETS.register("fsdd")(load_fsdd)

__all__ = ["FOLDER", "FSDD", "REPOSITORY", "TEST_INDICES", "load_fsdd"]

"""Biological sequences in and out, through Biopython (``Bio.SeqIO``): FASTA files, records, plain strings.

Every sequence model of xdomain takes what :func:`read_sequences` takes: a list (or tuple, or other
iterable) of ``str``, ``Bio.Seq.Seq`` or ``Bio.SeqRecord.SeqRecord`` (mixed freely), a
:class:`SequenceSet`, or the path of a FASTA file. Sequences are returned as read, letter case and
all: cleaning belongs to the encoders (:func:`xdomain.adapters.protein.encode_proteins`).

In a :class:`SequenceSet`, ``descriptions`` hold the FASTA header text after the id (Biopython's
``SeqRecord.description`` repeats the id at its start; it is removed here so that
:func:`write_fasta` followed by :func:`read_sequences` gives back exactly the ids, descriptions and
sequences written).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fas", ".fna", ".ffn", ".mpfa")


@dataclass
class SequenceSet:
    """Sequences with their ids and header descriptions, aligned by position."""

    sequences: list[str]
    ids: list[str] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.sequences)
        if not self.ids:
            self.ids = [f"seq{i}" for i in range(n)]
        if not self.descriptions:
            self.descriptions = [""] * n
        if len(self.ids) != n or len(self.descriptions) != n:
            raise ValueError(
                f"a SequenceSet needs one id and one description per sequence: got {n} sequences, "
                f"{len(self.ids)} ids, {len(self.descriptions)} descriptions"
            )

    def __len__(self) -> int:
        return len(self.sequences)


def _looks_like_path(text: str) -> bool:
    # amino-acid and nucleotide strings never hold a dot or a path separator
    return any(sep in text for sep in ("/", "\\", ".", os.sep)) or text.lower().endswith(FASTA_SUFFIXES)


def _description_after_id(record_id: str, description: str) -> str:
    """Biopython's description without the id it starts with (the FASTA header text after the id)."""
    if description == record_id:
        return ""
    if record_id and description.startswith(record_id) and description[len(record_id)].isspace():
        return description[len(record_id) + 1 :]
    return description


def _record_sequence(record: Any, index: int) -> str:
    from Bio.Seq import UndefinedSequenceError

    try:
        return str(record.seq)
    except UndefinedSequenceError:
        raise ValueError(
            f"record {index} ({record.id!r}) has an undefined sequence (only its length is known)"
        ) from None


def read_fasta(path: str | os.PathLike[str]) -> SequenceSet:
    """Every record of a FASTA file (any name: the content decides)."""
    from Bio import SeqIO

    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"sequence file not found: {str(file)!r}")
    if file.is_dir():
        raise ValueError(f"{str(file)!r} is a folder; expected a FASTA file")
    try:
        records = list(SeqIO.parse(str(file), "fasta"))
    except (ValueError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{str(file)!r} does not parse as FASTA ({first}); expected records that start with a "
            "'>id description' line (for a table of sequences use read_labelled_csv)"
        ) from err
    if not records:
        raise ValueError(f"{str(file)!r} holds no FASTA records (is it empty?)")
    sequences = [_record_sequence(r, i) for i, r in enumerate(records)]
    ids = [r.id for r in records]
    descriptions = [_description_after_id(r.id, r.description) for r in records]
    return SequenceSet(sequences, ids, descriptions)


def read_sequences(source: Any) -> SequenceSet:
    """Sequences from a FASTA path, a :class:`SequenceSet`, or a list of str / ``Seq`` / ``SeqRecord``.

    Plain strings and ``Seq`` objects get the ids ``seq0, seq1, ...`` (by position) and empty
    descriptions; records keep their own. A single string is a path when such a file exists or when it
    looks like one (holds ``/``, ``\\`` or ``.``); any other single string is refused, since iterating
    it would read each letter as a sequence.
    """
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord

    if isinstance(source, SequenceSet):
        return SequenceSet(list(source.sequences), list(source.ids), list(source.descriptions))
    if isinstance(source, os.PathLike):
        return read_fasta(source)
    if isinstance(source, str):
        if Path(source).is_file() or _looks_like_path(source):
            return read_fasta(source)
        raise TypeError(
            f"got a single string {source[:30]!r}{'...' if len(source) > 30 else ''} that is not an "
            "existing file; pass sequences as a list (e.g. [sequence]) or a FASTA file's path"
        )
    if isinstance(source, (bytes, SeqRecord, Seq)) or not isinstance(source, Iterable):
        raise TypeError(
            f"sequences must be a list of str, Bio.Seq.Seq or Bio.SeqRecord.SeqRecord, or a FASTA path; "
            f"got a single {type(source).__name__} (wrap one sequence in a list)"
        )
    sequences: list[str] = []
    ids: list[str] = []
    descriptions: list[str] = []
    for i, item in enumerate(source):
        if isinstance(item, SeqRecord):
            record_id = str(item.id)
            sequences.append(_record_sequence(item, i))
            ids.append(record_id)
            descriptions.append(_description_after_id(record_id, str(item.description)))
        elif isinstance(item, (str, Seq)):
            sequences.append(str(item))
            ids.append(f"seq{i}")
            descriptions.append("")
        else:
            raise TypeError(
                f"item {i} is a {type(item).__name__}; expected str, Bio.Seq.Seq or Bio.SeqRecord.SeqRecord"
            )
    if not sequences:
        raise ValueError("no sequences given (an empty collection)")
    return SequenceSet(sequences, ids, descriptions)


def _check_writable(ids: Sequence[str], descriptions: Sequence[str], sequences: Sequence[str]) -> None:
    # what the FASTA format cannot hold exactly is refused, so a read after a write is exact
    for i, (sid, desc, seq) in enumerate(zip(ids, descriptions, sequences, strict=True)):
        if not isinstance(sid, str) or not sid or any(c.isspace() for c in sid):
            raise ValueError(f"id {i} must be a non-empty string without whitespace, got {sid!r}")
        if sid.startswith(">"):
            raise ValueError(f"id {i} must not start with '>', got {sid!r}")
        if not isinstance(desc, str) or "\n" in desc or "\r" in desc or desc != desc.rstrip():
            raise ValueError(
                f"description {i} must be one line without trailing whitespace, got {desc!r}"
            )
        bad = next((c for c in seq if c.isspace() or c == ">"), None)
        if bad is not None:
            raise ValueError(
                f"sequence {i} ({sid!r}) holds {bad!r} at position {seq.index(bad) + 1}, which FASTA "
                "cannot store as is"
            )


def write_fasta(
    sequences: Any,
    path: str | os.PathLike[str],
    ids: Sequence[str] | None = None,
    descriptions: Sequence[str] | None = None,
) -> Path:
    """Write sequences to a FASTA file with ``Bio.SeqIO.write``, atomically; return the path.

    ``sequences`` is anything :func:`read_sequences` takes; ``ids`` and ``descriptions`` (one a
    sequence) replace the ones it carries. The file appears complete or not at all: it is written to a
    temporary file in the same folder and moved into place with ``os.replace``.
    """
    from Bio import SeqIO
    from Bio.Seq import Seq
    from Bio.SeqRecord import SeqRecord

    data = read_sequences(sequences)
    n = len(data)
    if ids is not None:
        ids = list(ids)
        if len(ids) != n:
            raise ValueError(f"got {len(ids)} ids for {n} sequences; expected one id a sequence")
        data.ids = ids
    if descriptions is not None:
        descriptions = list(descriptions)
        if len(descriptions) != n:
            raise ValueError(
                f"got {len(descriptions)} descriptions for {n} sequences; expected one a sequence"
            )
        data.descriptions = descriptions
    _check_writable(data.ids, data.descriptions, data.sequences)
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(
            f"folder {str(target.parent)!r} does not exist; create it before writing {target.name!r}"
        )
    # the id repeated at the start of the description makes Biopython write exactly "id description"
    records = [
        SeqRecord(Seq(seq), id=sid, name=sid, description=f"{sid} {desc}" if desc else "")
        for seq, sid, desc in zip(data.sequences, data.ids, data.descriptions, strict=True)
    ]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            SeqIO.write(records, handle, "fasta")
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file readable by its owner only; give it a normal file's permissions
        os.chmod(tmp_name, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return target


def read_labelled_csv(
    path: str | os.PathLike[str], sequence_column: str, label_column: str, sep: str = ","
) -> tuple[list[str], np.ndarray]:
    """A user's table of labelled sequences: ``(sequences, labels)``, rows in file order.

    Sequences are read as text, unchanged; labels as pandas infers them (ints stay ints, names stay
    strings). A missing column, an empty cell in either column, or an empty table is an error.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"CSV file not found: {str(file)!r}")
    # only empty cells are missing: "NA" is a dipeptide (Asn-Ala), not a missing value
    frame = pd.read_csv(file, sep=sep, dtype={sequence_column: str}, keep_default_na=False, na_values=[""])
    for column in (sequence_column, label_column):
        if column not in frame.columns:
            raise ValueError(f"{str(file)!r} has no column {column!r}; its columns are {list(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{str(file)!r} has a header but no rows")
    for column in (sequence_column, label_column):
        empty = np.flatnonzero(frame[column].isna().to_numpy())
        if empty.size:
            raise ValueError(
                f"{str(file)!r}: column {column!r} is empty in {empty.size} row(s), first at data row "
                f"{int(empty[0]) + 1}; fill or drop them"
            )
    sequences = [str(s) for s in frame[sequence_column]]
    labels = frame[label_column].to_numpy()
    if labels.dtype.kind not in "biuf":
        labels = np.asarray(labels.astype(str), dtype=object)
    return sequences, labels


__all__ = [
    "FASTA_SUFFIXES",
    "SequenceSet",
    "read_fasta",
    "read_labelled_csv",
    "read_sequences",
    "write_fasta",
]

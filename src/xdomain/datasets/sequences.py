"""Biological sequences in and out, through Biopython (``Bio.SeqIO``): FASTA files, records, plain strings.

Every sequence model of xdomain takes what :func:`read_sequences` takes: a list (or tuple, or other
iterable) of ``str``, ``Bio.Seq.Seq`` or ``Bio.SeqRecord.SeqRecord`` (mixed freely), a
:class:`SequenceSet`, or the path of a FASTA file. Sequences are returned as read, letter case and
all: cleaning belongs to the encoders (:func:`xdomain.adapters.protein.encode_proteins`).

In a :class:`SequenceSet`, ``descriptions`` hold the FASTA header text after the id (Biopython's
``SeqRecord.description`` repeats the id at its start; it is removed here so that
:func:`write_fasta` followed by :func:`read_sequences` gives back exactly the ids, descriptions and
sequences written).

Duplicates, near-duplicates and leak-free splits (shared by the peptide, solubility and antibody
loaders and ``benchmarks/split_overlap.py``):

- :func:`sequence_key` is the form in which two sequences count as the same (ends stripped, upper
  case); :func:`deduplicate` keeps one row per sequence and drops sequences seen with conflicting
  labels, and says so in a :class:`DedupCounts`; :func:`sequence_groups` numbers identical sequences.
- :func:`near_identical_pairs` finds near-identical pairs by shared k-mers (the rule is in its
  docstring: k = 3, at least half of the shorter sequence's k-mers, by default), vectorised with a
  sparse k-mer matrix; :func:`similarity_groups` is the connected components of those pairs.
- :func:`group_split` splits rows so that whole groups stay on one side, stratified by label;
  :func:`split_overlap` counts what a train side shares with a test side, exactly and nearly.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
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


# -- duplicates, near-duplicates and splits that keep them on one side ------------------------------------

#: the defaults of the near-identity rule (:func:`near_identical_pairs`)
KMER_K = 3
KMER_MIN_SHARED = 0.5


def sequence_key(sequence: str) -> str:
    """The form in which two sequences count as the same: whitespace at either end dropped, upper case.

    The loaders strip the ends, the encoders upper-case (:func:`xdomain.adapters.protein.clean_sequence`),
    so ``"gLF"`` and ``"GLF "`` are one input to a model and one sequence here.
    """
    return str(sequence).strip().upper()


def _label_key(label: Any) -> Any:
    # labels compared by value: numbers, strings, or arrays (a CDR mask) element by element
    if isinstance(label, np.ndarray):
        return (label.shape, tuple(label.ravel().tolist()))
    if isinstance(label, np.generic):
        return label.item()
    if isinstance(label, list):
        return tuple(label)
    return label


@dataclass(frozen=True)
class DedupCounts:
    """What :func:`deduplicate` found in a table of (sequence, label) rows.

    Attributes:
        rows: rows read.
        unique: distinct sequences (by :func:`sequence_key`).
        duplicates_removed: ``rows - unique``, the rows that repeat a sequence of an earlier row.
        conflicting_sequences: distinct sequences that carry more than one label (0 without labels).
        conflicting_rows: the rows of those sequences.
        kept: the rows kept: ``unique - conflicting_sequences`` when conflicts are dropped, else ``unique``.
    """

    rows: int
    unique: int
    duplicates_removed: int
    conflicting_sequences: int
    conflicting_rows: int
    kept: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def __str__(self) -> str:
        dropped = self.unique - self.kept
        return (
            f"{self.rows} rows read, {self.duplicates_removed} duplicate rows removed ({self.unique} unique "
            f"sequences), {self.conflicting_sequences} sequences with conflicting labels "
            f"({self.conflicting_rows} rows) {'dropped' if dropped else 'kept'}: {self.kept} rows kept"
        )


def deduplicate(
    sequences: Sequence[str], labels: Sequence[Any] | np.ndarray | None = None, drop_conflicts: bool = True
) -> tuple[np.ndarray, DedupCounts]:
    """The rows to keep so that each sequence appears once: ``(kept_rows, counts)``.

    Rows whose sequences have the same :func:`sequence_key` collapse to the first of them. With
    ``labels`` (one per row: numbers, strings, or arrays such as CDR masks, compared by value), a
    sequence that carries two or more different labels is a conflict: with ``drop_conflicts`` (the
    default) none of its rows is kept, since no label is right for it. ``kept_rows`` are int64
    indices into the input, increasing (file order is kept).
    """
    keys = [sequence_key(s) for s in sequences]
    if labels is not None and len(labels) != len(keys):
        raise ValueError(f"got {len(keys)} sequences but {len(labels)} labels; expected one label a sequence")
    first: dict[str, int] = {}
    seen_labels: dict[str, set[Any]] = {}
    rows_of: dict[str, int] = {}
    for row, key in enumerate(keys):
        first.setdefault(key, row)
        rows_of[key] = rows_of.get(key, 0) + 1
        if labels is not None:
            seen_labels.setdefault(key, set()).add(_label_key(labels[row]))
    conflicts = {key for key, found in seen_labels.items() if len(found) > 1}
    kept = [row for key, row in first.items() if not (drop_conflicts and key in conflicts)]
    counts = DedupCounts(
        rows=len(keys),
        unique=len(first),
        duplicates_removed=len(keys) - len(first),
        conflicting_sequences=len(conflicts),
        conflicting_rows=sum(rows_of[key] for key in conflicts),
        kept=len(kept),
    )
    return np.asarray(sorted(kept), dtype=np.int64), counts


def sequence_groups(sequences: Sequence[str]) -> np.ndarray:
    """A group id a row (int64): rows with the same :func:`sequence_key` share one; ids count 0, 1, ...
    in the order in which the sequences first appear."""
    ids: dict[str, int] = {}
    return np.asarray([ids.setdefault(sequence_key(s), len(ids)) for s in sequences], dtype=np.int64)


def _check_rule(k: int, min_shared: float) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if not 0.0 < float(min_shared) <= 1.0:
        raise ValueError(f"min_shared must be a fraction in (0, 1], got {min_shared!r}")


def _kmer_matrix(keys: Sequence[str], k: int) -> tuple[Any, np.ndarray]:
    """A binary sparse ``(n, F)`` CSR matrix of k-mer occurrences, and the k-mer count a sequence.

    A feature is a k-mer with its occurrence number in the sequence ((``"KLK"``, 1st), (``"KLK"``, 2nd),
    ...), so that the dot product of two rows is ``sum_w min(count_a(w), count_b(w))``: the k-mers the two
    sequences share, counted with multiplicity.
    """
    from scipy import sparse  # type: ignore[import-untyped]

    lengths = np.asarray([len(s) for s in keys], dtype=np.int64)
    n = len(keys)
    n_kmers = np.maximum(lengths - k + 1, 0)
    total = int(n_kmers.sum())
    if total == 0:
        return sparse.csr_matrix((n, 0), dtype=np.int32), n_kmers
    joined = "".join(keys)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype="<u4")
    alphabet, symbols = np.unique(codes, return_inverse=True)
    symbols = symbols.ravel().astype(np.int64)
    base = max(len(alphabet), 2)
    if base**k >= 2**62:
        raise ValueError(
            f"k={k} is too large for an alphabet of {len(alphabet)} letters (k-mer codes overflow)"
        )
    starts = np.cumsum(lengths) - lengths  # where each sequence starts in the joined string
    seq_of = np.repeat(np.arange(n, dtype=np.int64), n_kmers)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n_kmers) - n_kmers, n_kmers)
    pos = np.repeat(starts, n_kmers) + offset
    code = np.zeros(total, dtype=np.int64)
    for t in range(k):
        code = code * base + symbols[pos + t]
    # occurrence number of each k-mer in its sequence: rank within runs of equal (sequence, code)
    order = np.lexsort((pos, code, seq_of))
    s_sorted, c_sorted = seq_of[order], code[order]
    new_run = np.ones(total, dtype=bool)
    new_run[1:] = (s_sorted[1:] != s_sorted[:-1]) | (c_sorted[1:] != c_sorted[:-1])
    index = np.arange(total, dtype=np.int64)
    occurrence = np.empty(total, dtype=np.int64)
    occurrence[order] = index - np.maximum.accumulate(np.where(new_run, index, 0))
    _, feature = np.unique(np.stack([code, occurrence], axis=1), axis=0, return_inverse=True)
    feature = feature.ravel()
    matrix = sparse.csr_matrix(
        (np.ones(total, dtype=np.int32), (seq_of, feature)), shape=(n, int(feature.max()) + 1)
    )
    return matrix, n_kmers


def near_identical_pairs(
    sequences: Sequence[str], k: int = KMER_K, min_shared: float = KMER_MIN_SHARED, block_size: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of near-identical sequences: ``(i, j, fraction)``, ``i < j`` row indices and the
    shared fraction, ordered by ``i`` then ``j``.

    The rule: two sequences (compared as :func:`sequence_key`) are near-identical when they share at
    least ``min_shared`` of the k-mers of the shorter one. A sequence of length ``L`` has ``L - k + 1``
    k-mers; shared k-mers are counted with multiplicity (``sum_w min(count_a(w), count_b(w))``), so
    ``fraction = shared / min(L_a - k + 1, L_b - k + 1)``. Identical sequences and a sequence contained in
    another have fraction 1. With the defaults (k = 3, ``min_shared`` = 0.5) one substitution removes at
    most 3 of the shorter sequence's k-mers: a 20-residue peptide pairs with any sequence it matches up to
    3 scattered substitutions (85 % identity), a 10-residue one up to 1 (90 %); clustered substitutions,
    fragments and extensions pass at lower identity. Sequences shorter than ``k`` have no k-mers and
    pair with nothing here.

    Vectorised: a sparse k-mer matrix ``X`` and ``X @ X.T`` a block of ``block_size`` rows at a time
    (upper triangle only), so memory stays bounded for thousands of long proteins.
    """
    _check_rule(k, min_shared)
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size!r}")
    keys = [sequence_key(s) for s in sequences]
    matrix, n_kmers = _kmer_matrix(keys, k)
    n = len(keys)
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    found_f: list[np.ndarray] = []
    if matrix.shape[1]:
        for a in range(0, n, block_size):
            b = min(a + block_size, n)
            shared = (matrix[a:b] @ matrix[a:].T).tocoo()
            i = shared.row.astype(np.int64) + a
            j = shared.col.astype(np.int64) + a
            upper = j > i
            i, j, count = i[upper], j[upper], shared.data[upper].astype(np.float64)
            shorter = np.minimum(n_kmers[i], n_kmers[j]).astype(np.float64)
            fraction = count / shorter
            keep = fraction >= float(min_shared) - 1e-12
            found_i.append(i[keep])
            found_j.append(j[keep])
            found_f.append(fraction[keep])
    if not found_i:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.float64)
    i_all, j_all, f_all = np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_f)
    order = np.lexsort((j_all, i_all))
    return i_all[order], j_all[order], f_all[order]


def similarity_groups(
    sequences: Sequence[str], k: int = KMER_K, min_shared: float = KMER_MIN_SHARED
) -> np.ndarray:
    """A group id a row (int64): the connected components of the near-identity graph.

    Identical sequences (:func:`sequence_key`) share a group; so do two sequences linked by a chain of
    near-identical pairs (:func:`near_identical_pairs` with ``k`` and ``min_shared``). Ids count 0, 1,
    ... in the order in which the groups first appear.
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components  # type: ignore[import-untyped]

    _check_rule(k, min_shared)
    exact = sequence_groups(sequences)
    if exact.size == 0:
        return exact
    firsts = np.unique(exact, return_index=True)[1]
    unique = [sequence_key(sequences[int(r)]) for r in firsts]
    i, j, _ = near_identical_pairs(unique, k, min_shared)
    graph = sparse.coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(len(unique), len(unique)))
    _, component = connected_components(graph, directed=False)
    per_row = np.asarray(component, dtype=np.int64)[exact]
    # renumber in order of first appearance (connected_components' own numbering is also deterministic)
    _, first_row, inverse = np.unique(per_row, return_index=True, return_inverse=True)
    rank = np.empty(len(first_row), dtype=np.int64)
    rank[np.argsort(first_row, kind="stable")] = np.arange(len(first_row))
    return rank[inverse.ravel()]


def group_split(
    groups: Sequence[Any] | np.ndarray,
    labels: Sequence[Any] | np.ndarray,
    test_size: float = 0.2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows split so that every group lies wholly on one side, stratified by label: ``(train, test)``,
    sorted int64 row indices.

    The rule (the same seed gives the same split): the targets are ``round(test_size * n_c)`` test rows
    of each label ``c``; groups are visited in the order ``numpy.random.default_rng(seed).permutation``;
    a group goes to the test side when adding all its rows brings the test side's label counts closer
    (in L1 distance) to the targets, else to the train side. With one row a group this is an exactly
    stratified random sample; with larger groups the test side comes as close to the targets as whole
    groups allow, and a group whose rows carry different labels stays whole.
    """
    group_arr = np.asarray(groups)
    label_arr = np.asarray(labels)
    if group_arr.ndim != 1 or len(group_arr) != len(label_arr):
        raise ValueError(
            f"got {len(group_arr)} groups but {len(label_arr)} labels; expected one of each a row"
        )
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be a fraction in (0, 1), got {test_size!r}")
    if len(group_arr) < 2:
        raise ValueError(f"cannot split {len(group_arr)} row(s) into a train and a test side")
    _, group = np.unique(group_arr, return_inverse=True)
    _, label = np.unique(label_arr, return_inverse=True)
    group, label = group.ravel(), label.ravel()
    n_groups, n_labels = int(group.max()) + 1, int(label.max()) + 1
    counts = np.zeros((n_groups, n_labels), dtype=np.int64)
    np.add.at(counts, (group, label), 1)
    target = np.round(test_size * counts.sum(axis=0)).astype(np.int64).tolist()
    rows = counts.tolist()
    in_test = np.zeros(n_groups, dtype=bool)
    have = [0] * n_labels
    for g in np.random.default_rng(seed).permutation(n_groups).tolist():
        before = sum(abs(h - t) for h, t in zip(have, target, strict=True))
        after = sum(abs(h + c - t) for h, c, t in zip(have, rows[g], target, strict=True))
        if after < before:
            in_test[g] = True
            have = [h + c for h, c in zip(have, rows[g], strict=True)]
    test_mask = in_test[group]
    if test_mask.all() or not test_mask.any():
        raise ValueError(
            f"cannot split {len(group_arr)} rows in {n_groups} group(s) with test_size={test_size}: every "
            f"group went to the {'test' if test_mask.all() else 'train'} side (too few or too large groups)"
        )
    return np.flatnonzero(~test_mask).astype(np.int64), np.flatnonzero(test_mask).astype(np.int64)


def split_overlap(
    train_sequences: Sequence[str],
    test_sequences: Sequence[str],
    k: int = KMER_K,
    min_shared: float = KMER_MIN_SHARED,
) -> dict[str, int]:
    """What a train side shares with a test side (sequences compared as :func:`sequence_key`).

    Returns:
        ``test_rows_in_train``: test rows whose sequence is also a train sequence;
        ``shared_sequences``: distinct sequences on both sides;
        ``near_pairs``: pairs (train sequence, test sequence) of two different, near-identical sequences
        (:func:`near_identical_pairs` with ``k`` and ``min_shared``);
        ``test_sequences_near_train``: distinct test sequences with an identical or near-identical train
        sequence (the test sequences the train side gives away).
    """
    train_keys = list(dict.fromkeys(sequence_key(s) for s in train_sequences))
    test_keys = list(dict.fromkeys(sequence_key(s) for s in test_sequences))
    in_train = set(train_keys)
    union = list(dict.fromkeys([*train_keys, *test_keys]))
    side_train = np.asarray([key in in_train for key in union], dtype=bool)
    test_set = set(test_keys)
    side_test = np.asarray([key in test_set for key in union], dtype=bool)
    i, j, _ = near_identical_pairs(union, k, min_shared)
    forward = side_train[i] & side_test[j]
    backward = side_train[j] & side_test[i]
    leaked = side_test & side_train
    leaked[j[forward]] = True
    leaked[i[backward]] = True
    return {
        "test_rows_in_train": sum(1 for s in test_sequences if sequence_key(s) in in_train),
        "shared_sequences": int((side_train & side_test).sum()),
        "near_pairs": int(forward.sum() + backward.sum()),
        "test_sequences_near_train": int(leaked.sum()),
    }


_MASK_CODES = "0123"


def parse_cdr_mask(mask: str | Sequence[int] | np.ndarray) -> np.ndarray:
    """A CDR mask (``"000111..."`` or a sequence of ints in 0..3) -> int64 array ``(L,)``."""
    if isinstance(mask, str):
        if not mask:
            raise ValueError("the CDR mask is empty")
        for position, char in enumerate(mask, start=1):
            if char not in _MASK_CODES:
                raise ValueError(
                    f"CDR mask has {char!r} at position {position}; expected only the digits 0 (framework), "
                    "1, 2, 3 (CDR-H1/H2/H3)"
                )
        return np.frombuffer(mask.encode("ascii"), dtype=np.uint8).astype(np.int64) - ord("0")
    if isinstance(mask, bytes):
        raise TypeError("the CDR mask must be a str or a sequence of ints, got bytes; decode it first")
    array = np.asarray(mask)
    if array.ndim != 1:
        raise ValueError(f"a CDR mask must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError("the CDR mask is empty")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"a CDR mask must hold integers 0..3, got dtype {array.dtype}")
    bad = np.flatnonzero((array < 0) | (array > 3))
    if bad.size:
        raise ValueError(
            f"CDR mask has {int(array[bad[0]])} at position {int(bad[0]) + 1}; expected 0 (framework), "
            "1, 2, 3 (CDR-H1/H2/H3)"
        )
    return array.astype(np.int64)


__all__ = [
    "FASTA_SUFFIXES",
    "KMER_K",
    "KMER_MIN_SHARED",
    "DedupCounts",
    "SequenceSet",
    "deduplicate",
    "group_split",
    "near_identical_pairs",
    "parse_cdr_mask",
    "read_fasta",
    "read_labelled_csv",
    "read_sequences",
    "sequence_groups",
    "sequence_key",
    "similarity_groups",
    "split_overlap",
    "write_fasta",
]

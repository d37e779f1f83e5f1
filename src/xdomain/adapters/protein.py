"""Domain adapter for proteins and peptides: amino-acid strings into token ids of a protein vocabulary.

The ids index the target vocabulary of a vocabulary-map input transform I (R2DL, Vinod, Chen & Das,
Digital Discovery 2025; ReprogBERT, Melnyk et al., ICML 2023): each protein token learns a mixture of
the frozen source model's word embeddings.

The alphabet is explicit, and every letter is its own token: the 20 standard residues, then the IUPAC
extra and ambiguity codes B (D or N), Z (E or Q), J (I or L), X (any), U (selenocysteine) and
O (pyrrolysine). An ambiguity code is not folded into one of the residues it stands for: the vocabulary
map learns one embedding per token, so B, Z, J and X each get a mixture of their own (which training can
place between the residues they stand for), and the rare U and O are kept apart from C and K.

Cleaning (:func:`clean_sequence`, applied to a copy; the caller's strings are never changed): letters
are upper-cased; whitespace at either end (a newline from a file) is dropped, then one trailing ``*`` (the
stop codon of a translated coding sequence). Anything else that is not in the alphabet, an inner ``*`` or
space included, is an error that names the sequence, the 1-based position and the character.

Shapes:
    - :func:`encode_proteins`: ``N`` strings -> ids ``(N, L_max)``, ``L_max`` the longest cleaned sequence
      (after truncation), padded on the right with ``PAD_ID = 0``
    - :class:`ProteinAdapter` encode: ids ``(B, L)`` -> ids ``(B, L)`` and an attention mask ``(B, L)``
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from xdomain.datasets.sequences import read_sequences
from xdomain.registry import ADAPTERS

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
# IUPAC: B = D|N, Z = E|Q, J = I|L, X = any, U = selenocysteine, O = pyrrolysine
EXTRA_CODES = "BZJXUO"
PAD_TOKEN = "<pad>"
MASK_TOKEN = "<mask>"
# <pad> first so that zero-filled tensors are padding; <mask> last, as in ESM's vocabulary
PROTEIN_VOCAB: list[str] = [PAD_TOKEN, *AMINO_ACIDS, *EXTRA_CODES, MASK_TOKEN]
PAD_ID = 0
MASK_ID = len(PROTEIN_VOCAB) - 1
TOKEN_TO_ID: dict[str, int] = {token: i for i, token in enumerate(PROTEIN_VOCAB)}
TOO_LONG_CHOICES = ("error", "truncate")
_LETTERS = frozenset(AMINO_ACIDS + EXTRA_CODES)


def clean_sequence(sequence: str, index: int = 0) -> str:
    """The upper-cased sequence without surrounding whitespace and one trailing stop ``*``, checked.

    ``index`` is the sequence's place in its batch, named in the errors.
    """
    if not isinstance(sequence, str):
        raise TypeError(
            f"sequence {index} must be a str, got {type(sequence).__name__} "
            "(read Biopython records or FASTA files with xdomain.datasets.sequences.read_sequences)"
        )
    cleaned = sequence.strip()
    if cleaned.endswith("*"):
        cleaned = cleaned[:-1]
    if not cleaned:
        raise ValueError(f"sequence {index} is empty (seen {sequence!r})")
    # ASCII only: str.upper() maps some other letters onto these ("ı" -> "I") or changes the length
    for position, letter in enumerate(cleaned, start=1):
        if not letter.isascii() or letter.upper() not in _LETTERS:
            offset = len(sequence) - len(sequence.lstrip())  # report positions in the caller's string
            raise ValueError(
                f"sequence {index} has {letter!r} at position {position + offset}, which is not an "
                f"amino-acid code; expected one of {AMINO_ACIDS + EXTRA_CODES} (lower case accepted)"
            )
    return cleaned.upper()


def _check_too_long(max_length: int | None, too_long: str) -> None:
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                   or max_length < 1):
        raise ValueError(f"max_length must be a positive int or None, got {max_length!r}")
    if too_long not in TOO_LONG_CHOICES:
        raise ValueError(f"too_long must be one of {TOO_LONG_CHOICES}, got {too_long!r}")


def _as_list(sequences: Iterable[Any], what: str) -> list[Any]:
    if isinstance(sequences, (str, bytes, os.PathLike)):
        text = str(sequences)
        shown = text if len(text) <= 20 else text[:20] + "..."
        raise TypeError(
            f"{what} must be a list of sequences, got a single {type(sequences).__name__} {shown!r}; "
            "wrap one sequence in a list ([sequence]), or read a FASTA file with "
            "xdomain.datasets.sequences.read_sequences"
        )
    items = list(sequences)
    if not items:
        raise ValueError(f"{what} is empty: expected at least one sequence")
    return items


def clean_proteins(
    sequences: Sequence[str], max_length: int | None = None, too_long: str = "error"
) -> list[str]:
    """Clean every sequence (:func:`clean_sequence`) and apply the length limit."""
    _check_too_long(max_length, too_long)
    cleaned = [clean_sequence(s, i) for i, s in enumerate(_as_list(sequences, "sequences"))]
    if max_length is not None:
        for i, s in enumerate(cleaned):
            if len(s) > max_length:
                if too_long == "error":
                    raise ValueError(
                        f"sequence {i} has {len(s)} residues, more than max_length={max_length}; "
                        "pass too_long='truncate' to keep the first max_length residues, or cut it "
                        "into windows (xdomain.adapters.protein.windows)"
                    )
                cleaned[i] = s[:max_length]
    return cleaned


def ids_of(cleaned: Sequence[str]) -> torch.Tensor:
    """Already-cleaned sequences -> ``(N, L_max)`` int64 ids, right-padded with ``PAD_ID``."""
    width = max(len(s) for s in cleaned)
    ids = torch.full((len(cleaned), width), PAD_ID, dtype=torch.long)
    for i, s in enumerate(cleaned):
        ids[i, : len(s)] = torch.tensor([TOKEN_TO_ID[c] for c in s], dtype=torch.long)
    return ids


def encode_proteins(
    sequences: Sequence[str], max_length: int | None = None, too_long: str = "error"
) -> torch.Tensor:
    """Amino-acid strings -> token ids ``(N, L_max)`` (int64), right-padded with ``PAD_ID = 0``.

    Args:
        sequences: one string per protein (upper or lower case; see the module doc for what is cleaned).
        max_length: the most residues a sequence may have (None: no limit).
        too_long: what a longer sequence gets: ``"error"`` (a ValueError naming it) or ``"truncate"``
            (its first ``max_length`` residues are kept).
    """
    return ids_of(clean_proteins(sequences, max_length, too_long))


def decode_proteins(ids: torch.Tensor) -> list[str]:
    """Token ids ``(N, L)`` -> strings; padding is dropped and ``<mask>`` is written as ``?``."""
    if ids.ndim != 2:
        raise ValueError(f"ids must be (N, L), got shape {tuple(ids.shape)}")
    letters = {i: (t if len(t) == 1 else "?") for i, t in enumerate(PROTEIN_VOCAB)}
    out = []
    for row in ids.tolist():
        out.append("".join(letters[i] for i in row if i != PAD_ID))
    return out


def windows(sequence: str, length: int, stride: int | None = None) -> list[str]:
    """Windows of ``length`` residues every ``stride`` (default ``length``) that cover every residue.

    For proteins longer than a backbone takes. Windows start at ``0, stride, 2*stride, ...``; where the
    last of these stops short of the end, one more window is aligned to the end, so no residue is left
    out (and no window is shorter than ``length``). A sequence of at most ``length`` residues is one
    window. The substrings are returned as given (not cleaned). A caller can score each window and
    average its windows' class probabilities into the protein's prediction; the sequence estimators do
    not do this themselves: longer sequences are an error or truncated (their ``too_long`` option).
    """
    if not isinstance(sequence, str):
        raise TypeError(f"sequence must be a str, got {type(sequence).__name__}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"window length must be a positive int, got {length!r}")
    step = length if stride is None else stride
    if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= length:
        raise ValueError(
            f"stride must be an int in [1, length={length}] so no residue is skipped, got {stride!r}"
        )
    if not sequence:
        raise ValueError("cannot cut an empty sequence into windows")
    n = len(sequence)
    if n <= length:
        return [sequence]
    starts = list(range(0, n - length + 1, step))
    if starts[-1] + length < n:
        starts.append(n - length)
    return [sequence[s : s + length] for s in starts]


def check_ids(ids: torch.Tensor, vocab_size: int) -> None:
    """A ``(B, L)`` integer tensor of ids in ``[0, vocab_size)``, or a clear error."""
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"ids must be a torch.Tensor, got {type(ids).__name__}; tokenize strings first")
    if ids.ndim != 2:
        raise ValueError(f"ids must be (B, L), got shape {tuple(ids.shape)}")
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"ids must be an integer tensor, got dtype {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(
            f"ids must lie in [0, {vocab_size}), got values from {int(ids.min())} to {int(ids.max())}"
        )


@ADAPTERS.register("protein")
class ProteinAdapter(nn.Module):
    """Domain adapter in front of I: protein and peptide sequences as token ids for a vocabulary-map
    input transform (R2DL, Vinod, Chen & Das, Digital Discovery 2025). It has no weights.

    Args:
        max_length: the most residues a sequence may have (None: no limit).
        too_long: ``"error"`` or ``"truncate"`` (see :func:`encode_proteins`).

    Shapes:
        - tokenize: ``N`` sequences -> ids ``(N, L_max)``
        - encode: ids ``(B, L)`` -> ids ``(B, L)``, state ``{"attention_mask": (B, L) bool}``
        - decode: ``y`` unchanged (a head's output already is the answer)
    """

    vocab: list[str] = PROTEIN_VOCAB
    vocab_size: int = len(PROTEIN_VOCAB)
    pad_id: int = PAD_ID
    mask_id: int = MASK_ID

    def __init__(self, max_length: int | None = None, too_long: str = "error") -> None:
        super().__init__()
        self.max_length = max_length
        self.too_long = too_long

    def tokenize(self, sequences: Any) -> torch.Tensor:
        """Sequences (anything :func:`~xdomain.datasets.sequences.read_sequences` takes) -> ``(N, L_max)``."""
        return encode_proteins(read_sequences(sequences).sequences, self.max_length, self.too_long)

    def encode(self, ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        check_ids(ids, self.vocab_size)
        return ids, {"attention_mask": ids != PAD_ID}

    def decode(self, y: torch.Tensor, state: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        return y

    def extra_repr(self) -> str:
        return f"max_length={self.max_length}, too_long={self.too_long!r}, vocab_size={self.vocab_size}"


__all__ = [
    "AMINO_ACIDS",
    "EXTRA_CODES",
    "MASK_ID",
    "MASK_TOKEN",
    "PAD_ID",
    "PAD_TOKEN",
    "PROTEIN_VOCAB",
    "TOKEN_TO_ID",
    "ProteinAdapter",
    "check_ids",
    "clean_proteins",
    "clean_sequence",
    "decode_proteins",
    "encode_proteins",
    "ids_of",
    "windows",
]

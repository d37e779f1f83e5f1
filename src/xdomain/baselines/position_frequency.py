"""The position-frequency baseline for CDR infilling: the most frequent training residue at each position."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xdomain.adapters.antibody import encode_antibodies, region_code


def position_frequency_infill(
    train_chains: Sequence[str], train_masks: Sequence[Any], chains: Sequence[str], cdr_masks: Sequence[Any],
    region: str = "CDR-H3",
) -> dict[str, float]:
    """The baseline: each region position (counted from the region's start) gets the residue most frequent
    at that position in the training chains' region. Returns recovery over every region residue."""
    code = region_code(region)
    ids, regions = encode_antibodies(list(train_chains), list(train_masks))
    counts: dict[int, np.ndarray] = {}
    for row, reg in zip(ids.numpy(), regions.numpy(), strict=True):
        for j, tok in enumerate(row[reg == code]):
            counts.setdefault(j, np.zeros(64, dtype=np.int64))[tok] += 1
    if not counts:
        raise ValueError(f"the training chains have no {region} to learn position frequencies from")
    overall = sum(counts.values())
    ids, regions = encode_antibodies(list(chains), list(cdr_masks))
    hits = total = 0
    for row, reg in zip(ids.numpy(), regions.numpy(), strict=True):
        for j, tok in enumerate(row[reg == code]):
            guess = int(np.argmax(counts.get(j, overall)))
            hits += int(guess == tok)
            total += 1
    if total == 0:
        raise ValueError(f"the chains to infill have no {region}")
    return {"recovery": hits / total, "residues": float(total)}


__all__ = ["position_frequency_infill"]

"""Domain adapter for antibody heavy chains with CDR annotation, for CDR infilling (ReprogBERT).

ReprogBERT (Melnyk et al., ICML 2023) masks the CDR-H3 loop of a heavy chain and lets a frozen English
BERT, reprogrammed by a vocabulary map (input I) and a linear map of its masked-LM logits back to amino
acids (output O), infill it. Chains use the protein alphabet of :mod:`xdomain.adapters.protein`; a CDR
mask gives each residue a region code: 0 framework, 1/2/3 = CDR-H1/H2/H3 (the RefineGNN / SAbDab
convention).

Shapes:
    - :func:`encode_antibodies`: ``N`` chains and masks -> ids ``(N, L_max)`` (padded with ``PAD_ID = 0``)
      and region codes ``(N, L_max)`` (padded with ``REGION_PAD = -1``)
    - :func:`mask_region`: ids, regions ``(N, L)`` -> masked ids ``(N, L)``, targets ``(N, L)``
      (``IGNORE_INDEX = -100`` outside the region)
    - :class:`AntibodyAdapter` encode: ids ``(B, L)`` -> ids ``(B, L)``, attention mask ``(B, L)``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from xdomain.adapters.protein import (
    MASK_ID,
    ProteinAdapter,
    _as_list,
    _check_too_long,
    clean_sequence,
    ids_of,
)
from xdomain.datasets.sequences import parse_cdr_mask
from xdomain.registry import ADAPTERS

REGIONS: dict[str, int] = {"CDR-H1": 1, "CDR-H2": 2, "CDR-H3": 3}
FRAMEWORK = 0
# padding is neither framework nor a CDR: a distinct code keeps it from being read as either
REGION_PAD = -1
# the ignore index of torch.nn.functional.cross_entropy: positions outside the region add no loss
IGNORE_INDEX = -100


def encode_antibodies(
    chains: Sequence[str],
    cdr_masks: Sequence[str | Sequence[int] | np.ndarray],
    max_length: int | None = None,
    too_long: str = "error",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Heavy chains and their CDR masks -> ids ``(N, L_max)`` and region codes ``(N, L_max)``.

    Chains are cleaned as :func:`~xdomain.adapters.protein.encode_proteins` does, and each mask must have
    one code per cleaned residue. A chain longer than ``max_length`` is an error, or with
    ``too_long="truncate"`` keeps its first ``max_length`` residues and mask codes.
    """
    _check_too_long(max_length, too_long)
    chain_list = _as_list(chains, "chains")
    mask_list = _as_list(cdr_masks, "cdr_masks")
    if len(chain_list) != len(mask_list):
        raise ValueError(
            f"got {len(chain_list)} chains but {len(mask_list)} CDR masks; expected one mask a chain"
        )
    cleaned: list[str] = []
    codes: list[np.ndarray] = []
    for i, (chain, mask) in enumerate(zip(chain_list, mask_list, strict=True)):
        residues = clean_sequence(chain, i)
        try:
            region = parse_cdr_mask(mask)
        except (ValueError, TypeError) as err:
            raise type(err)(f"CDR mask {i}: {err}") from None
        if len(region) != len(residues):
            raise ValueError(
                f"chain {i} has {len(residues)} residues but its CDR mask has {len(region)} codes; "
                "expected one code per residue"
            )
        if max_length is not None and len(residues) > max_length:
            if too_long == "error":
                raise ValueError(
                    f"chain {i} has {len(residues)} residues, more than max_length={max_length}; "
                    "pass too_long='truncate' to keep the first max_length residues and codes"
                )
            residues, region = residues[:max_length], region[:max_length]
        cleaned.append(residues)
        codes.append(region)
    ids = ids_of(cleaned)
    regions = torch.full_like(ids, REGION_PAD)
    for i, region in enumerate(codes):
        regions[i, : len(region)] = torch.from_numpy(region)
    return ids, regions


def region_code(region: str) -> int:
    """The code of a region name (``"CDR-H3"`` -> 3; case-insensitive)."""
    for name, code in REGIONS.items():
        if isinstance(region, str) and region.upper() == name:
            return code
    raise ValueError(f"unknown region {region!r}; expected one of {list(REGIONS)}")


def mask_region(
    ids: torch.Tensor, regions: torch.Tensor, region: str = "CDR-H3", mask_id: int = MASK_ID
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide one region for infilling: ``(masked_ids, targets)``, new tensors (the inputs are untouched).

    ``masked_ids`` has ``mask_id`` inside the region and the true ids elsewhere; ``targets`` has the true
    ids inside the region and ``IGNORE_INDEX = -100`` elsewhere, ready for ``cross_entropy``.
    """
    code = region_code(region)
    if ids.shape != regions.shape:
        raise ValueError(
            f"ids and regions must have the same shape, got {tuple(ids.shape)} and {tuple(regions.shape)}"
        )
    if ids.ndim != 2:
        raise ValueError(f"ids must be (N, L), got shape {tuple(ids.shape)}")
    inside = regions == code  # (N, L)
    missing = (~inside.any(dim=1)).nonzero().flatten().tolist()
    if missing:
        shown = missing[:10]
        raise ValueError(
            f"{len(missing)} chain(s) have no {list(REGIONS)[code - 1]} to mask: rows {shown}"
            f"{' ...' if len(missing) > len(shown) else ''}"
        )
    masked = ids.masked_fill(inside, mask_id)
    targets = torch.where(inside, ids, torch.full_like(ids, IGNORE_INDEX))
    return masked, targets


@ADAPTERS.register("antibody")
class AntibodyAdapter(ProteinAdapter):
    """Antibody heavy chains with CDR masks as protein token ids, for CDR infilling (ReprogBERT).

    The same ids, mask and pass-through decode as :class:`~xdomain.adapters.protein.ProteinAdapter`;
    what it adds is reading chains together with their CDR masks, and hiding one region.

    Args:
        max_length: the most residues a chain may have (None: no limit).
        too_long: ``"error"`` or ``"truncate"`` (see :func:`encode_antibodies`).

    Shapes:
        - tokenize_chains: ``N`` chains and masks -> ids ``(N, L_max)``, regions ``(N, L_max)``
        - mask: ids, regions ``(B, L)`` -> masked ids ``(B, L)``, targets ``(B, L)``
        - encode: ids ``(B, L)`` -> ids ``(B, L)``, state ``{"attention_mask": (B, L) bool}``
        - decode: ``y`` unchanged (e.g. amino-acid logits ``(B, L, vocab_size)``)
    """

    def tokenize_chains(
        self, chains: Sequence[str], cdr_masks: Sequence[str | Sequence[int] | np.ndarray]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return encode_antibodies(chains, cdr_masks, self.max_length, self.too_long)

    def mask(
        self, ids: torch.Tensor, regions: torch.Tensor, region: str = "CDR-H3"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return mask_region(ids, regions, region, self.mask_id)


__all__ = [
    "FRAMEWORK",
    "IGNORE_INDEX",
    "REGIONS",
    "REGION_PAD",
    "AntibodyAdapter",
    "encode_antibodies",
    "mask_region",
    "region_code",
]

"""Antibody CDR infilling with a frozen English masked language model (ReprogBERT, Melnyk et al., ICML 2023).

    p(a_i | chain with the CDR masked) = softmax( gamma( MLM_f( theta . E_source [x] ) ) )_i

``theta`` (the vocabulary map, I) turns each amino acid (and the mask token) into a mixture of the frozen
model's word embeddings; the frozen model (f) and its masked-LM output over the English vocabulary follow;
``gamma`` (O) maps the English-vocabulary logits back to amino acids. Only theta and gamma train. A region
(CDR-H3 by default) is hidden and predicted; new sequences are sampled position by position from the
predicted distributions (one pass, as ReprogBERT), over the 20 standard residues.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from xdomain.adapters.antibody import AntibodyAdapter, encode_antibodies, mask_region
from xdomain.adapters.protein import AMINO_ACIDS, PAD_ID, PROTEIN_VOCAB
from xdomain.backbones.loader import resolve_backbone
from xdomain.datasets.sequences import read_sequences
from xdomain.estimators.base import ReprogrammingEstimator
from xdomain.heads.vocab_projection import VocabProjectionHead
from xdomain.registry import ESTIMATORS
from xdomain.reprogrammer import Reprogrammer
from xdomain.training.metrics import diversity
from xdomain.transforms.vocab_map import VocabMapTransform

_STANDARD = slice(1, 21)  # ids of the 20 standard residues in PROTEIN_VOCAB (after <pad>)



def _check_temperature(temperature: Any) -> None:
    """A finite number >= 0 (0: the most likely design); NaN would pass ``temperature < 0`` unnoticed and
    sample from NaN probabilities."""
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not 0 <= float(temperature) < math.inf
    ):
        raise ValueError(
            f"temperature must be >= 0, got {temperature!r}; expected a finite number >= 0 "
            "(0: the most likely design)"
        )


@ESTIMATORS.register("AntibodyInfiller")
class AntibodyInfiller(ReprogrammingEstimator):
    """Infill a CDR of antibody heavy chains with a reprogrammed frozen masked language model.

    Args:
        backbone: ``minilm`` (bundled English BERT; it ships without a masked-LM head, so the tied decoder
            ``hidden @ E^T`` gives the English-vocabulary scores), any ``transformers`` masked LM, or a
            loaded :class:`~xdomain.backbones.masked_lm.MaskedLanguageBackbone`.
        region: the region hidden in training and infilled by default (``CDR-H1``/``CDR-H2``/``CDR-H3``).
        sparsity, k, l1: the vocabulary map (see :class:`~xdomain.transforms.vocab_map.VocabMapTransform`).
        max_length: most residues per chain (None: the backbone's position limit); too_long: ``error`` or
            ``truncate``.
        epochs, batch_size, lr, patience, max_steps, validation_fraction, random_state, verbose,
            mixed_precision: training.

    Example::

        inf = AntibodyInfiller(backbone="minilm").fit(heavy_chains, cdr_masks)
        designs = inf.infill(chain, mask, n=100, temperature=1.0)
        write_fasta(designs, "designs.fasta")
    """

    _loss = "cross_entropy"

    def __init__(
        self,
        backbone: Any = "minilm",
        region: str = "CDR-H3",
        sparsity: str = "dense",
        k: int = 64,
        l1: float = 1e-4,
        max_length: int | None = None,
        too_long: str = "error",
        epochs: int = 10,
        batch_size: int = 16,
        lr: float | None = 1e-3,
        patience: int = 3,
        validation_fraction: float = 0.1,
        max_steps: int | None = None,
        random_state: int = 0,
        verbose: bool = False,
        mixed_precision: str = "no",
    ) -> None:
        self.backbone = backbone
        self.region = region
        self.sparsity = sparsity
        self.k = k
        self.l1 = l1
        self.max_length = max_length
        self.too_long = too_long
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.max_steps = max_steps
        self.random_state = random_state
        self.verbose = verbose
        self.mixed_precision = mixed_precision

    # -- data ---------------------------------------------------------------------------------------
    def _encode(
        self, chains: Any, cdr_masks: Any, region: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(masked ids, targets, true ids), each ``(N, L)``."""
        if isinstance(chains, str) and not os.path.exists(chains):
            raise TypeError("chains must be a list of sequences (or a FASTA path), got a single string")
        seqs = read_sequences(chains).sequences
        limit = self.max_length
        if limit is None:
            backbone = resolve_backbone(self.backbone, domain="masked-lm")
            config = getattr(getattr(backbone, "model", None), "config", None)
            limit = getattr(config, "max_position_embeddings", None)
        ids, regions = encode_antibodies(seqs, cdr_masks, max_length=limit, too_long=self.too_long)
        masked, targets = mask_region(ids, regions, region or self.region)
        return masked, targets, ids

    def _build_model(self, n_outputs: int) -> nn.Module:
        transform = VocabMapTransform(
            n_outputs, sparsity=self.sparsity, k=self.k, l1=self.l1, padding_idx=PAD_ID,
            seed=self.random_state,
        )
        backbone = resolve_backbone(self.backbone, domain="masked-lm")
        return Reprogrammer(backbone, transform, VocabProjectionHead(n_outputs), adapter=AntibodyAdapter())

    def _n_outputs(self) -> int:
        return len(PROTEIN_VOCAB)

    def _inputs(self, X: Any, fitting: bool) -> torch.Tensor:
        del fitting
        return torch.as_tensor(X)

    # -- fit ----------------------------------------------------------------------------------------
    def fit(self, chains: Any, cdr_masks: Any) -> AntibodyInfiller:
        """Train theta and gamma to predict the hidden region of each chain from the rest of it."""
        masked, targets, _ = self._encode(chains, cdr_masks)
        self._fit_tensors(masked, targets, None, self._n_outputs())
        return self

    @torch.no_grad()
    def _logits(self, masked: torch.Tensor) -> torch.Tensor:
        """Amino-acid logits ``(N, L, 20)`` over the standard residues."""
        return self._outputs(masked)[..., _STANDARD]

    # -- use ----------------------------------------------------------------------------------------
    def infill(
        self,
        chain: str,
        cdr_mask: Any,
        region: str | None = None,
        n: int = 100,
        temperature: float = 1.0,
        seed: int | None = None,
    ) -> list[str]:
        """``n`` sampled full chains with ``region`` redesigned (every other residue kept).

        Each position of the region is drawn from softmax(logits / temperature) over the 20 standard
        residues; ``temperature=0`` gives the single most likely design (``n`` copies of it)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        _check_temperature(temperature)
        masked, targets, ids = self._encode([chain], [cdr_mask], region)
        logits = self._logits(masked)[0]  # (L, 20)
        where = (targets[0] != -100).nonzero().flatten()
        base = np.array(list(chain.strip().upper()[: ids.shape[1]]))
        if temperature == 0:
            picks = logits[where].argmax(-1).repeat(n, 1)  # (n, R)
        else:
            gen = torch.Generator().manual_seed(self.random_state if seed is None else seed)
            probs = torch.softmax(logits[where] / temperature, dim=-1)  # (R, 20)
            picks = torch.multinomial(probs, n, replacement=True, generator=gen).T  # (n, R)
        letters = np.array(list(AMINO_ACIDS))
        out = []
        for row in picks.numpy():
            seq = base.copy()
            seq[where.numpy()] = letters[row]
            out.append("".join(seq))
        return out

    def evaluate(
        self, chains: Any, cdr_masks: Any, region: str | None = None, n: int = 0, temperature: float = 1.0
    ) -> dict[str, float]:
        """Amino-acid recovery of the most likely infill (over every residue of the region, all chains),
        mean per-chain recovery, and, with ``n > 0``, recovery and diversity of ``n`` samples a chain."""
        _check_temperature(temperature)
        masked, targets, _ = self._encode(chains, cdr_masks, region)
        logits = self._logits(masked)  # (N, L, 20)
        keep = targets != -100
        pred = logits.argmax(-1) + _STANDARD.start
        hits = (pred == targets) & keep
        per_chain = hits.sum(1).double() / keep.sum(1).double()
        result = {
            "recovery": float(hits.sum()) / float(keep.sum()),
            "recovery_per_chain": float(per_chain.mean()),
            "residues": float(keep.sum()),
            "chains": float(len(per_chain)),
        }
        if n > 0:
            gen = torch.Generator().manual_seed(self.random_state)
            rec, div = [], []
            for i in range(logits.shape[0]):
                where = keep[i].nonzero().flatten()
                probs = torch.softmax(logits[i, where] / max(temperature, 1e-6), dim=-1)
                picks = torch.multinomial(probs, n, replacement=True, generator=gen).T + _STANDARD.start
                rec.append(float((picks == targets[i, where]).double().mean()))
                div.append(diversity(["".join(chr(65 + int(v)) for v in row) for row in picks]))
            result["sample_recovery"] = float(np.mean(rec))
            result["diversity"] = float(np.mean(div))
        return result

    def score(self, chains: Any, cdr_masks: Any) -> float:
        """Amino-acid recovery of the default region (higher is better), for model selection."""
        return self.evaluate(chains, cdr_masks)["recovery"]


__all__ = ["AntibodyInfiller"]

"""I: a learned vocabulary map from target tokens (amino acids) onto a frozen language model's vocabulary.

Each of the ``num_tokens`` target tokens is a learned mixture of the frozen source word embeddings::

    E_target = Theta @ E_source        Theta: (num_tokens, V), trainable; E_source: (V, D), frozen

- ReprogBERT (Melnyk et al., ICML 2023) learns a dense ``theta = Embedding(V_prot, V_eng)`` multiplied by
  BERT's word-embedding matrix (``sparsity="dense"``); the frozen position embeddings and LayerNorm of the
  backbone are then added by the model itself to whatever ``inputs_embeds`` it receives.
- R2DL (Vinod, Chen, Das; Digital Discovery 2025) asks for a *sparse* code of each target token over the
  source vocabulary (k-SVD in the paper). Two versions here: ``sparsity="l1"`` adds the penalty
  ``l1 * |Theta|.sum()`` (:meth:`VocabMapTransform.penalty`, which the trainer adds to the loss), and
  ``sparsity="topk"`` uses only the ``k`` largest-magnitude entries of each row in the forward pass (a
  hard k-sparse code; gradients reach exactly those entries, so the support can change as they grow).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xdomain.registry import TRANSFORMS

SPARSITIES = ("dense", "l1", "topk")
INITS = ("random-token", "uniform")

# relative size of the seeded jitter added to the "random-token" start: each target embedding starts
# within about 1% of its chosen source embedding, and ties in the top-k selection are broken by seed
_JITTER = 0.01


@TRANSFORMS.register("vocab-map")
class VocabMapTransform(nn.Module):
    """I: target token ids -> learned mixtures of the frozen source word embeddings (R2DL, ReprogBERT).

    Args:
        num_tokens: size of the target vocabulary (e.g. 20 amino acids plus special tokens).
        sparsity: ``"dense"`` (ReprogBERT's theta), ``"l1"`` (R2DL with an L1 penalty) or ``"topk"``
            (k-sparse rows).
        k: non-zero entries per row for ``"topk"``.
        l1: weight of the L1 penalty for ``"l1"``.
        padding_idx: a target id whose embedding is always zero and whose row gets no gradient
            (None: no padding token).
        init: ``"random-token"``: each target token starts as (within about 1% of) the embedding of one
            source token, drawn without replacement (seeded) among the non-special tokens, so that the
            frozen model first sees embeddings of real words, the distribution it was trained on;
            ``"uniform"``: every row ``1/V``, i.e. every target token starts as the mean source embedding
            (identical inputs for all tokens; with ``"topk"`` a tiny seeded jitter picks which ``k``
            entries are kept, so the start is ``k/V`` times the mean of ``k`` random source embeddings).
        seed: seeds the initialisation (the global random state is not touched).

    ``Theta`` is created by :meth:`bind`, which reads the vocabulary size ``V`` and the frozen word
    embeddings from the backbone.

    Shapes:
        - input: target token ids ``(B, L)`` (any leading shape), integers in ``[0, num_tokens)``
        - output: ``(B, L, D)`` embeddings for the backbone's ``inputs_embeds``
        - :meth:`table`: ``(num_tokens, D)``; ``theta``: ``(num_tokens, V)``
    """

    theta: nn.Parameter

    def __init__(
        self,
        num_tokens: int,
        sparsity: str = "dense",
        k: int = 64,
        l1: float = 1e-4,
        padding_idx: int | None = 0,
        init: str = "random-token",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.sparsity = sparsity
        self.k = k
        self.l1 = l1
        self.padding_idx = padding_idx
        self.init = init
        self.seed = seed
        self.bound = False
        self._source: tuple[Any, ...] = ()

    # -- binding ------------------------------------------------------------------------------------
    def _check_settings(self, vocab: int) -> None:
        if isinstance(self.num_tokens, bool) or not isinstance(self.num_tokens, int) or self.num_tokens < 1:
            raise ValueError(f"num_tokens must be a positive int, got {self.num_tokens!r}")
        if self.sparsity not in SPARSITIES:
            raise ValueError(f"sparsity must be one of {list(SPARSITIES)}, got {self.sparsity!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {list(INITS)}, got {self.init!r}")
        if self.sparsity == "topk" and (
            isinstance(self.k, bool) or not isinstance(self.k, int) or not 1 <= self.k <= vocab
        ):
            raise ValueError(f"k must be an int in [1, {vocab}] (the source vocabulary size), got {self.k!r}")
        if self.sparsity == "l1" and not (isinstance(self.l1, (int, float)) and self.l1 >= 0):
            raise ValueError(f"l1 must be a number >= 0, got {self.l1!r}")
        if self.padding_idx is not None and (
            isinstance(self.padding_idx, bool)
            or not isinstance(self.padding_idx, int)
            or not 0 <= self.padding_idx < self.num_tokens
        ):
            raise ValueError(
                f"padding_idx must be None or an int in [0, {self.num_tokens}), got {self.padding_idx!r}"
            )

    def bind(self, backbone: Any, **_: Any) -> VocabMapTransform:
        """Read the frozen word embeddings ``(V, D)`` of ``backbone`` and create ``theta (num_tokens, V)``."""
        if self.bound:
            if self._source[0] is not backbone:
                raise ValueError(
                    "this VocabMapTransform is already bound to another backbone; its theta is sized for "
                    "that vocabulary: build a new transform"
                )
            return self
        emb = getattr(backbone, "word_embeddings", None)
        if not isinstance(emb, torch.Tensor) or emb.ndim != 2:
            raise TypeError(
                "VocabMapTransform needs a backbone with a frozen word-embedding matrix `word_embeddings` "
                f"(V, D), such as a LanguageBackbone; got {type(backbone).__name__} whose word_embeddings "
                f"is {type(emb).__name__ if not isinstance(emb, torch.Tensor) else tuple(emb.shape)}"
            )
        vocab = int(emb.shape[0])
        self._check_settings(vocab)
        self.theta = nn.Parameter(self._initial_theta(vocab, self._special_ids(backbone), emb.device))
        # held outside the module tree (a tuple): the frozen matrix is read where it lives, never copied
        # into this module's parameters or checkpoints
        self._source = (backbone,)
        self.bound = True
        return self

    @staticmethod
    def _special_ids(backbone: Any) -> set[int]:
        tokenizer = getattr(backbone, "tokenizer", None)
        ids = getattr(tokenizer, "all_special_ids", None) or []
        return {int(i) for i in ids}

    def _initial_theta(self, vocab: int, special: set[int], device: torch.device) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        n = self.num_tokens
        if self.init == "random-token":
            candidates = torch.tensor([i for i in range(vocab) if i not in special] or list(range(vocab)))
            if n <= len(candidates):
                chosen = candidates[torch.randperm(len(candidates), generator=gen)[:n]]
            else:  # more target tokens than source tokens: some must share a start
                chosen = candidates[torch.randint(len(candidates), (n,), generator=gen)]
            theta = torch.zeros(n, vocab)
            theta[torch.arange(n), chosen] = 1.0
            # std chosen so that the jitter's contribution to an embedding, sum_j n_j E_j, is ~1% of E
            theta += torch.randn(n, vocab, generator=gen) * (_JITTER / vocab**0.5)
        else:
            theta = torch.full((n, vocab), 1.0 / vocab)
            if self.sparsity == "topk":  # all entries tie: let the seed, not the sort order, pick the k kept
                theta += torch.rand(n, vocab, generator=gen) * (1e-3 / vocab)
        if self.padding_idx is not None:
            theta[self.padding_idx] = 0.0
        return theta.to(device)

    # -- what the frozen model sees -----------------------------------------------------------------
    @property
    def word_embeddings(self) -> torch.Tensor:
        """The frozen source word-embedding matrix, ``(V, D)``."""
        self._require_bound()
        emb: torch.Tensor = self._source[0].word_embeddings
        return emb.detach()

    def _require_bound(self) -> None:
        if not self.bound:
            raise RuntimeError("VocabMapTransform is not bound to a backbone; call bind(backbone)")

    def _weights(self) -> torch.Tensor:
        """Theta with the padding row zeroed (out of place, so that row never receives a gradient)."""
        if self.padding_idx is None:
            return self.theta
        keep = torch.ones(self.num_tokens, 1, device=self.theta.device, dtype=self.theta.dtype)
        keep[self.padding_idx] = 0.0
        return self.theta * keep

    def table(self) -> torch.Tensor:
        """The current target embedding table ``Theta @ E``, ``(num_tokens, D)``, in the backbone's dtype."""
        self._require_bound()
        emb = self.word_embeddings  # (V, D)
        w = self._weights()  # (T, V)
        if self.sparsity == "topk":
            # selection by magnitude is not differentiable; the kept values are, through gather
            idx = w.detach().abs().topk(self.k, dim=1).indices  # (T, k)
            values = w.gather(1, idx)  # (T, k)
            table = torch.einsum("tk,tkd->td", values, emb[idx].to(values.dtype))  # (T, D)
        else:
            table = w @ emb.to(w.dtype)  # (T, V) @ (V, D) -> (T, D)
        return table.to(emb.dtype)

    def effective_theta(self) -> torch.Tensor:
        """Theta as the forward pass uses it: padding row zero, and only the top-k entries for ``"topk"``."""
        self._require_bound()
        w = self._weights().detach()
        if self.sparsity != "topk":
            return w.clone()
        idx = w.abs().topk(self.k, dim=1).indices
        return torch.zeros_like(w).scatter_(1, idx, w.gather(1, idx))

    def penalty(self) -> torch.Tensor:
        """R2DL's sparsity term ``l1 * |Theta|.sum()`` for ``sparsity="l1"``; zero otherwise.

        The trainer adds ``penalty()`` of every part that defines one to the loss."""
        self._require_bound()
        if self.sparsity != "l1":
            return self.theta.new_zeros(())
        return self.l1 * self._weights().abs().sum()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        self._require_bound()
        if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.is_complex() or (
            ids.dtype == torch.bool
        ):
            raise TypeError(
                "VocabMapTransform takes integer token ids (B, L), got "
                + (f"a tensor of dtype {ids.dtype}" if isinstance(ids, torch.Tensor) else type(ids).__name__)
            )
        if ids.numel():
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= self.num_tokens:
                raise ValueError(
                    f"token ids must be in [0, {self.num_tokens}) (num_tokens), got values in [{lo}, {hi}]"
                )
        # the (T, D) table is computed once per call and indexed, never a (B, L, V) mixture
        return F.embedding(ids, self.table())  # (B, L, D)

    # -- inspection -----------------------------------------------------------------------------------
    @torch.no_grad()
    def nearest_source_tokens(self, k: int = 5) -> dict[int, list[int]]:
        """For each target token, the ``k`` source token ids whose embeddings are closest (cosine) to its
        current mixed embedding: what the frozen model reads each target token as. The padding token
        (always the zero vector) is left out."""
        self._require_bound()
        emb = self.word_embeddings.float()
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= emb.shape[0]:
            raise ValueError(
                f"k must be an int in [1, {emb.shape[0]}] (the source vocabulary size), got {k!r}"
            )
        table = self.table().float()  # (T, D)
        sims = F.normalize(table, dim=-1) @ F.normalize(emb, dim=-1).t()  # (T, V)
        top = sims.topk(k, dim=-1).indices
        return {t: [int(i) for i in top[t]] for t in range(self.num_tokens) if t != self.padding_idx}

    def extra_repr(self) -> str:
        sparsity = f"topk(k={self.k})" if self.sparsity == "topk" else (
            f"l1({self.l1})" if self.sparsity == "l1" else "dense"
        )
        shape = f", theta={tuple(self.theta.shape)}" if self.bound else ", unbound"
        return f"num_tokens={self.num_tokens}, sparsity={sparsity}, init={self.init!r}{shape}"


__all__ = ["INITS", "SPARSITIES", "VocabMapTransform"]

"""I: Time-LLM patch reprogramming (Jin et al., ICLR 2024).

Each normalised series is cut into patches, each patch embedded by a bias-free circular Conv1d, and the
patch embeddings attend (multi-head cross-attention) over a small set of *text prototypes*: trainable
linear mixtures of the frozen word-embedding matrix. The attention output, projected to the backbone's
hidden size, is what the frozen language model reads.

``prototypes`` chooses where the prototypes come from: ``"map"`` is Time-LLM's trainable
``Linear(vocab -> num_prototypes)`` over the vocabulary (30.5M parameters for MiniLM's 30,522 words);
``"kmeans"`` starts them at k-means centroids of the frozen word embeddings and trains them directly
(``num_prototypes x hidden``: 0.38M for 1,000 MiniLM prototypes); ``"kmeans-fixed"`` keeps the centroids
fixed (saved with the trained tensors, never recomputed on load).

Departures from the official code, all for cost: the prototypes and their key/value projections are
computed once and cached while the module is in eval mode (the official code recomputes them every
forward), and the attention runs through ``scaled_dot_product_attention``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xdomain.config import PROTOTYPES, num_patches
from xdomain.registry import TRANSFORMS

_CENTROIDS: dict[tuple[Any, ...], torch.Tensor] = {}  # k-means of a frozen embedding matrix, per process


def kmeans_centroids(points: torch.Tensor, k: int, seed: int = 0, iterations: int = 15) -> torch.Tensor:
    """``k`` centroids of the rows of ``points`` ``(n, d)`` by Lloyd's algorithm from ``k`` seeded distinct
    rows (a cluster that empties keeps its centre). Deterministic for a seed; cached per process for a
    frozen matrix, so rebuilding a model does not cluster the vocabulary again."""
    n = int(points.shape[0])
    if not 0 < k <= n:
        raise ValueError(f"num_prototypes must be in [1, {n}] (the vocabulary size) for k-means, got {k}")
    key = (points.data_ptr(), tuple(points.shape), points.dtype, float(points[:2].sum()), k, seed, iterations)
    cached = _CENTROIDS.get(key)
    if cached is not None:
        return cached.clone()
    x = points.detach().float()
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randperm(n, generator=g)[:k]].clone()
    sq = (x * x).sum(1, keepdim=True)
    for _ in range(iterations):
        # nearest centre by ||x||^2 - 2 x.c + ||c||^2 (one matrix product per iteration)
        dist = sq - 2.0 * x @ centres.t() + (centres * centres).sum(1)[None, :]
        assign = dist.argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)[:, None]
        centres = torch.where(counts > 0, sums / counts.clamp_min(1.0), centres)
    _CENTROIDS[key] = centres.clone()
    return centres


class PatchEmbedding(nn.Module):
    """Replication-pad by one stride, unfold into patches, embed each with a circular Conv1d (no bias).

    Shapes:
        - input: ``(B', L)`` -> output: ``(B', P, d_model)`` with ``P = (L - patch_len) // stride + 2``
    """

    def __init__(self, patch_len: int, stride: int, d_model: int, dropout: float) -> None:
        super().__init__()
        self.patch_len = patch_len
        self.stride = stride
        self.pad = nn.ReplicationPad1d((0, stride))
        self.conv = nn.Conv1d(
            patch_len, d_model, kernel_size=3, padding=1, padding_mode="circular", bias=False
        )
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.dropout = nn.Dropout(dropout)

    def num_patches(self, length: int) -> int:
        return num_patches(length, self.patch_len, self.stride)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.pad(z.unsqueeze(1)).squeeze(1)  # (B', L + stride)
        patches = z.unfold(-1, self.patch_len, self.stride)  # (B', P, patch_len)
        emb = self.conv(patches.transpose(1, 2)).transpose(1, 2)  # (B', P, d_model)
        return self.dropout(emb)


@TRANSFORMS.register("patch-reprogramming")
class PatchReprogrammingTransform(nn.Module):
    """I: patches -> cross-attention onto text prototypes -> the backbone's embedding space.

    Args:
        patch_len, stride: patching (Time-LLM: 16, 8).
        d_model: patch embedding width (32).
        n_heads, d_keys: the reprogramming attention (8 heads of 128).
        num_prototypes: text prototypes (1000).
        dropout: on patch embeddings and attention weights.
        prototypes: ``"map"`` (Time-LLM), ``"kmeans"`` or ``"kmeans-fixed"`` (see the module docstring).
        seed: of the k-means start.

    Layers whose size depends on the backbone (vocabulary, hidden size) are created by :meth:`bind`.

    Shapes:
        - input: ``(B', L)`` normalised series
        - output: ``(B', P, hidden_size)``
    """

    def __init__(
        self,
        patch_len: int = 16,
        stride: int = 8,
        d_model: int = 32,
        n_heads: int = 8,
        d_keys: int = 128,
        num_prototypes: int = 1000,
        dropout: float = 0.1,
        prototypes: str = "map",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if prototypes not in PROTOTYPES:
            raise ValueError(f"prototypes must be one of {PROTOTYPES}, got {prototypes!r}")
        self.prototype_source = prototypes
        self.seed = seed
        self.patch_len = patch_len
        self.stride = stride
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_keys = d_keys
        self.num_prototypes = num_prototypes
        self.dropout = dropout
        self.bound = False
        self._source: tuple[Any, ...] = ()
        self._cache: tuple[tuple[Any, ...], torch.Tensor, torch.Tensor] | None = None

    def bind(self, backbone: Any, **context: Any) -> PatchReprogrammingTransform:
        del context
        if self.bound:
            return self
        vocab, hidden = backbone.vocab_size, backbone.hidden_size
        inner = self.n_heads * self.d_keys
        self.patch_embedding = PatchEmbedding(self.patch_len, self.stride, self.d_model, self.dropout)
        if self.prototype_source == "map":
            self.prototype_map = nn.Linear(vocab, self.num_prototypes)  # mixes the vocabulary into prototypes
        else:
            emb = backbone.word_embeddings.detach()
            centres = kmeans_centroids(emb.cpu(), self.num_prototypes, self.seed).to(emb.device)
            if self.prototype_source == "kmeans":
                self.prototype_matrix = nn.Parameter(centres)
            else:  # fixed: a buffer saved with the trained tensors (see learned_buffers)
                self.register_buffer("prototype_matrix", centres)
                self.learned_buffers = ("prototype_matrix",)
        self.query = nn.Linear(self.d_model, inner)
        self.key = nn.Linear(hidden, inner)
        self.value = nn.Linear(hidden, inner)
        self.out = nn.Linear(inner, hidden)
        # the backbone is held outside the module tree (a tuple): its embedding matrix is read where it
        # lives, so `.to(device)` on the Reprogrammer moves it once and no copy is saved or duplicated
        self._source = (backbone,)
        self.bound = True
        return self

    @property
    def word_embeddings(self) -> torch.Tensor:
        """The frozen word-embedding matrix of the bound backbone, ``(vocab_size, hidden_size)``."""
        return self._source[0].word_embeddings.detach()

    def train(self, mode: bool = True) -> PatchReprogrammingTransform:
        self._cache = None
        return super().train(mode)

    def num_tokens(self, lookback: int) -> int:
        return num_patches(lookback, self.patch_len, self.stride)

    def _keys_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        source = (
            (self.prototype_map.weight, self.prototype_map.bias)
            if self.prototype_source == "map"
            else (self.prototype_matrix,)
        )
        params = (
            *source,
            self.key.weight,
            self.key.bias,
            self.value.weight,
            self.value.bias,
        )
        emb = self.word_embeddings
        # _version catches optimiser steps and load_state_dict; the sums catch in-place edits through
        # .data (weight averaging), which do not bump it. Summing is cheap next to the W @ E product.
        key = (*(p._version for p in params), *(p.data_ptr() for p in params), emb.data_ptr(), emb.dtype,
               *(float(p.detach().sum()) for p in params))
        if (
            not self.training
            and not torch.is_grad_enabled()
            and self._cache is not None
            and self._cache[0] == key
        ):
            return self._cache[1], self._cache[2]
        # (V, D) -> (D, V) -> Linear over V -> (D, S) -> (S, D)
        prototypes = self.prototypes()
        s = prototypes.shape[0]
        k = self.key(prototypes).view(s, self.n_heads, self.d_keys).transpose(0, 1)  # (H, S, E)
        v = self.value(prototypes).view(s, self.n_heads, self.d_keys).transpose(0, 1)  # (H, S, E)
        if not self.training and not torch.is_grad_enabled():
            self._cache = (key, k, v)
        else:
            self._cache = None
        return k, v

    def prototypes(self) -> torch.Tensor:
        """The current text prototypes, ``(num_prototypes, hidden_size)``."""
        if self.prototype_source != "map":
            return self.prototype_matrix
        return self.prototype_map(self.word_embeddings.t()).t()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.bound:
            raise RuntimeError("PatchReprogrammingTransform is not bound to a backbone; call bind(backbone)")
        emb = self.patch_embedding(z)  # (B', P, d_model)
        b, p, _ = emb.shape
        # every series attends over the same prototypes: fold the batch into the query axis instead of
        # expanding keys and values to (B', H, S, E)
        q = self.query(emb).view(b * p, self.n_heads, self.d_keys).transpose(0, 1)  # (H, B'*P, E)
        k, v = self._keys_values()  # (H, S, E)
        attn = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, scale=1.0 / math.sqrt(self.d_keys)
        )  # (H, B'*P, E)
        out = attn.transpose(0, 1).reshape(b, p, self.n_heads * self.d_keys)  # (B', P, H*E)
        return self.out(out)  # (B', P, hidden_size)


__all__ = ["PatchEmbedding", "PatchReprogrammingTransform"]

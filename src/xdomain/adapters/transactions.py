"""Domain adapter and input transforms: tabular transactions into a frozen vision or language model.

Two routes, both fed by :class:`~xdomain.datasets.transactions.TransactionSchema` (numeric columns
standardised on the training rows, categorical columns as level ids with ``0`` the unknown level):

- **image** (Chen et al., "Adversarial Reprogramming of Pretrained Neural Networks for Fraud Detection",
  CIKM 2021: transaction features overlaid on an image read by a frozen ImageNet classifier, with a learned
  program). :class:`TransactionAdapter` squashes each standardised value ``z`` to ``u = asinh(z)`` (sign
  and order kept, heavy tails compressed: ``Amount`` and the V columns of frauds reach ``|z| > 20``) and
  one-hot codes each categorical column as ``-2 / +2``; :class:`FeatureImageTransform` places the features
  into a square region at the centre of the canvas, either on a **fixed grid** (feature ``j`` fills cell
  ``(j // g, j % g)`` of a ``g x g`` grid, ``g = ceil(sqrt(F))``, with intensity ``sigmoid(u_j)``) or
  through a **learned feature-to-pixel layout** (every pixel of a ``3 x L x L`` map, ``L = g * k``, is
  ``sigmoid(sum_j A[., j] u_j + b)``, upsampled to the region; ``A`` starts as the grid, so the learned
  layout begins where the fixed one stays), and adds a trainable program ``W`` everywhere else.
- **tokens**: :class:`FeatureTokenTransform` makes each feature a soft token in the frozen language
  model's embedding space: numeric column ``j`` becomes ``u_j * e_j + p_j`` (a learned per-feature
  embedding ``e_j`` scaled by the value, plus a learned field embedding ``p_j`` that says which column it
  is, initialised from the model's own word embeddings of the column's name), a categorical column the
  row of its own embedding table for the level (id ``0``: the unknown token) plus its field embedding.

Shapes:
    - adapter encode (image): ``{"values": (B, n), "ids": (B, c)}`` -> ``(B, F)``, ``F = n + sum(K_c + 1)``
    - adapter encode (tokens): the same dict, ``values`` squashed, ``ids`` checked
    - FeatureImageTransform: ``(B, F)`` -> ``(B, 3, S, S)`` pixels in ``[0, 1]``, ``S = backbone.image_size``
    - FeatureTokenTransform: ``{"values": (B, n), "ids": (B, c)}`` -> ``(B, n + c, hidden_size)``
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xdomain.registry import ADAPTERS, TRANSFORMS

LAYOUTS = ("grid", "learned")
ONE_HOT_LEVEL = 2.0  # a one-hot categorical feature is -2 / +2 in u: sigmoid gives pixels 0.12 / 0.88


def _positive_int(name: str, value: Any, owner: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return value


def _cardinalities(values: Sequence[int], owner: str) -> list[int]:
    out = list(values)
    for c in out:
        if not isinstance(c, int) or isinstance(c, bool) or c < 1:
            raise ValueError(f"{owner}: each cardinality (levels + the unknown id) must be an int >= 1, "
                             f"got {values!r}")
    return out


@ADAPTERS.register("transactions")
class TransactionAdapter(nn.Module):
    """Domain adapter: a batch of encoded transactions into what the image or token transform reads.

    Args:
        cardinalities: ids per categorical column, the unknown id 0 included (``K_c + 1``).
        one_hot: ``True`` for the image route (one flat feature vector: squashed numeric values, then each
            categorical column one-hot over its ``K_c + 1`` ids as ``-2 / +2``); ``False`` for the token
            route (the dict, values squashed).

    Shapes:
        - encode: ``{"values": (B, n) float, "ids": (B, c) int64}`` -> ``(B, n + sum(cardinalities))``
          (``one_hot``) or the dict, and no state (None)
        - decode: any -> unchanged
    """

    def __init__(self, cardinalities: Sequence[int] = (), one_hot: bool = True) -> None:
        super().__init__()
        self.cardinalities = tuple(cardinalities)
        self.one_hot = one_hot

    def encode(self, x: Any) -> tuple[Any, None]:
        owner = type(self).__name__
        cards = _cardinalities(self.cardinalities, owner)
        if not isinstance(x, dict) or "values" not in x or "ids" not in x:
            raise ValueError(f"{owner} expects a dict with 'values' (B, n) and 'ids' (B, c), got "
                             f"{type(x).__name__}{sorted(x) if isinstance(x, dict) else ''}")
        values, ids = x["values"], x["ids"]
        if values.ndim != 2 or not values.is_floating_point():
            raise ValueError(f"{owner}: values must be a float tensor (B, n), got {tuple(values.shape)} "
                             f"{values.dtype}")
        if ids.ndim != 2 or ids.shape[1] != len(cards) or ids.shape[0] != values.shape[0] or (
            ids.is_floating_point()
        ):
            raise ValueError(f"{owner}: ids must be an integer tensor (B, {len(cards)}) beside values "
                             f"(B, n), got {tuple(ids.shape)} {ids.dtype} and {tuple(values.shape)}")
        if not torch.isfinite(values).all():
            raise ValueError(f"{owner}: values hold NaN or infinite entries; impute or clean them first")
        for j, card in enumerate(cards):
            column = ids[:, j]
            if len(column) and (int(column.min()) < 0 or int(column.max()) >= card):
                raise ValueError(f"{owner}: categorical column {j} has ids in [{int(column.min())}, "
                                 f"{int(column.max())}]; expected ids in [0, {card - 1}] (0: unknown)")
        u = torch.asinh(values)  # (B, n): sign and order kept, heavy tails compressed
        if not self.one_hot:
            return {"values": u, "ids": ids}, None
        parts = [u] + [
            (2.0 * F.one_hot(ids[:, j], card).to(u.dtype) - 1.0) * ONE_HOT_LEVEL
            for j, card in enumerate(cards)
        ]
        return torch.cat(parts, dim=1), None  # (B, F)

    def decode(self, y: Any, state: Any = None) -> Any:
        return y


def grid_side(n_features: int) -> int:
    """``g``: the side of the smallest square grid with a cell for each of ``n_features`` features."""
    return max(1, math.ceil(math.sqrt(n_features)))


@TRANSFORMS.register("feature-image")
class FeatureImageTransform(nn.Module):
    """I: transaction features drawn into a region at the centre of the canvas, a program around it.

    Args:
        n_features: ``F``, the width of the adapter's feature vector.
        layout: ``"grid"`` (fixed: feature ``j`` fills cell ``(j // g, j % g)`` with ``sigmoid(u_j)`` in
            all three channels) or ``"learned"`` (a trained map ``A (3 L L, F)`` and bias ``b`` from the
            features to a ``3 x L x L`` image, ``L = g * subcells``, upsampled to the region; initialised
            to reproduce the grid on its cells).
        region_size: side of the feature region in pixels (default ``image_size // 2``); it is rounded
            down to a multiple of ``g`` so every cell has the same size.
        subcells: sub-cells per cell side of the learned map (``"learned"`` only).
        learnable: the program trains (an ``nn.Parameter``); ``False`` keeps it fixed at zero (a buffer).

    The program ``W (3, S, S)`` is added outside the pixels that carry data (grid: the used cells;
    learned: the whole region), and the output is clamped to ``[0, 1]`` with a straight-through clamp (the
    forward pass clips, the gradient passes), as :class:`~xdomain.transforms.additive.VisualPromptTransform`.

    Shapes:
        - input: ``(B, F)`` squashed features (:class:`TransactionAdapter` with ``one_hot=True``)
        - output: ``(B, 3, S, S)``, ``S = backbone.image_size``
    """

    program: torch.Tensor  # (3, S, S)
    data_mask: torch.Tensor  # (1, S, S): 1 where features are drawn
    cell_index: torch.Tensor  # (g*g,) which feature each grid cell shows (F: none)

    def __init__(
        self,
        n_features: int,
        layout: str = "grid",
        region_size: int | None = None,
        subcells: int = 4,
        learnable: bool = True,
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.layout = layout
        self.region_size = region_size
        self.subcells = subcells
        self.learnable = learnable
        self.size: int | None = None  # S, set by bind()

    def bind(self, backbone: Any, **_: Any) -> FeatureImageTransform:
        owner = type(self).__name__
        size = getattr(backbone, "image_size", None)
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ValueError(f"{owner} needs a backbone with a positive int 'image_size' (an image "
                             f"classifier); {type(backbone).__name__} has image_size={size!r}")
        if self.size is not None:
            if size != self.size:
                raise ValueError(f"{owner} is bound to {self.size} x {self.size} images; this backbone takes "
                                 f"{size} x {size}")
            return self
        n = _positive_int("n_features", self.n_features, owner)
        if self.layout not in LAYOUTS:
            raise ValueError(f"{owner}: layout must be one of {list(LAYOUTS)}, got {self.layout!r}")
        g = grid_side(n)
        region = size // 2 if self.region_size is None else self.region_size
        if not isinstance(region, int) or isinstance(region, bool) or not g <= region <= size:
            raise ValueError(f"{owner}: region_size must be an int in [{g}, {size}] ({n} features need a "
                             f"{g} x {g} grid on a {size} x {size} canvas), got {self.region_size!r}")
        cell = region // g
        side = cell * g  # the region, a whole number of cells
        top = (size - side) // 2
        self.cell, self.side, self.top, self.grid = cell, side, top, g
        mask = torch.zeros(1, size, size)
        if self.layout == "grid":
            for j in range(n):
                r, c = divmod(j, g)
                mask[:, top + r * cell : top + (r + 1) * cell, top + c * cell : top + (c + 1) * cell] = 1.0
        else:
            mask[:, top : top + side, top : top + side] = 1.0
            k = _positive_int("subcells", self.subcells, owner)
            side_l = g * k
            weight = torch.zeros(3, side_l, side_l, n)
            for j in range(n):
                r, c = divmod(j, g)
                weight[:, r * k : (r + 1) * k, c * k : (c + 1) * k, j] = 1.0
            self.layout_weight = nn.Parameter(weight.reshape(3 * side_l * side_l, n))  # A (3 L L, F)
            self.layout_bias = nn.Parameter(torch.zeros(3 * side_l * side_l))  # b
            self.map_side = side_l
        self.register_buffer("data_mask", mask)
        self.register_buffer("cell_index", torch.tensor([j if j < n else n for j in range(g * g)]))
        if self.learnable:
            self.program = nn.Parameter(torch.zeros(3, size, size))
        else:
            self.register_buffer("program", torch.zeros(3, size, size))
        self.size = size
        return self

    def feature_pixels(self) -> dict[int, tuple[int, int, int, int]]:
        """Grid layout: feature ``j`` -> its cell ``(top, bottom, left, right)`` in canvas pixels."""
        self._bound()
        out = {}
        for j in range(self.n_features):
            r, c = divmod(j, self.grid)
            y0, x0 = self.top + r * self.cell, self.top + c * self.cell
            out[j] = (y0, y0 + self.cell, x0, x0 + self.cell)
        return out

    def _bound(self) -> int:
        if self.size is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a backbone; call bind(backbone)")
        return self.size

    def region(self, u: torch.Tensor) -> torch.Tensor:
        """The feature region alone: ``(B, F)`` -> ``(B, 3, side, side)`` in ``(0, 1)``."""
        b = u.shape[0]
        if self.layout == "grid":
            cells = torch.cat([torch.sigmoid(u), u.new_zeros(b, 1)], dim=1)[:, self.cell_index]  # (B, g*g)
            image = cells.view(b, 1, self.grid, self.grid)
            image = image.repeat_interleave(self.cell, dim=2).repeat_interleave(self.cell, dim=3)
            return image.expand(-1, 3, -1, -1)  # (B, 3, side, side)
        logits = F.linear(u, self.layout_weight.to(u.dtype), self.layout_bias.to(u.dtype))  # (B, 3 L L)
        small = torch.sigmoid(logits).view(b, 3, self.map_side, self.map_side)
        return F.interpolate(small, size=(self.side, self.side), mode="nearest")  # (B, 3, side, side)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        size = self._bound()
        if u.ndim != 2 or u.shape[1] != self.n_features or not u.is_floating_point():
            raise ValueError(f"{type(self).__name__} expects float features (B, {self.n_features}), got "
                             f"{tuple(u.shape)} {u.dtype}")
        pad = (self.top, size - self.side - self.top, self.top, size - self.side - self.top)
        placed = F.pad(self.region(u), pad)  # (B, 3, S, S)
        mask = self.data_mask.to(u.dtype)
        out = placed * mask + (1.0 - mask) * self.program.to(u.dtype)
        return out + (out.clamp(0.0, 1.0) - out).detach()  # straight-through clamp


@TRANSFORMS.register("feature-tokens")
class FeatureTokenTransform(nn.Module):
    """I: each transaction feature a soft token in a frozen language model's embedding space.

    Args:
        n_numeric: numeric columns ``n``: token ``u_j * e_j + p_j``.
        cardinalities: ids per categorical column (``K_c + 1``, the unknown id 0 included): token
            ``T_c[id] + p_c``, a row of the column's own learned table.
        names: the columns' names (numeric first, then categorical); where the backbone can tokenise, each
            field embedding ``p`` starts as the mean word embedding of its name's tokens.
        seed: seed of the initial embeddings (rows of the model's word-embedding matrix drawn at random).

    Every embedding is a trained copy (the backbone's matrix is read once, at bind, never changed).

    Shapes:
        - input: ``{"values": (B, n) float, "ids": (B, c) int64}``
        - output: ``(B, n + c, hidden_size)``
    """

    value_embedding: nn.Parameter | None
    level_embedding: nn.Parameter | None
    offsets: torch.Tensor

    def __init__(
        self,
        n_numeric: int,
        cardinalities: Sequence[int] = (),
        names: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.n_numeric = n_numeric
        self.cardinalities = tuple(cardinalities)
        self.names = None if names is None else tuple(names)
        self.seed = seed
        self.hidden: int | None = None

    def bind(self, backbone: Any, **_: Any) -> FeatureTokenTransform:
        owner = type(self).__name__
        hidden = getattr(backbone, "hidden_size", None)
        if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden <= 0:
            raise ValueError(f"{owner} needs a language backbone with a positive int hidden_size; "
                             f"{type(backbone).__name__} has hidden_size={hidden!r}")
        if self.hidden is not None:
            if hidden != self.hidden:
                raise ValueError(f"{owner} is bound to a backbone of width {self.hidden}; got {hidden}")
            return self
        n = self.n_numeric
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"{owner}: n_numeric must be an int >= 0, got {n!r}")
        cards = _cardinalities(self.cardinalities, owner)
        fields = n + len(cards)
        if fields == 0:
            raise ValueError(f"{owner}: no features (n_numeric=0 and no categorical columns)")
        if self.names is not None and len(self.names) != fields:
            raise ValueError(f"{owner}: names has {len(self.names)} entries; expected one per feature "
                             f"({fields})")
        source = getattr(backbone, "word_embeddings", None)
        generator = torch.Generator().manual_seed(self.seed)
        if isinstance(source, torch.Tensor):
            table = source.detach().float()
            rows = lambda k: table[torch.randint(0, table.shape[0], (k,), generator=generator)].clone()  # noqa: E731
        else:
            scale = 1.0 / math.sqrt(hidden)
            rows = lambda k: torch.randn(k, hidden, generator=generator) * scale  # noqa: E731
        # no zero-size parameters: a table exists only where there are columns for it
        self.value_embedding = nn.Parameter(rows(n)) if n else None  # e (n, D)
        self.field_embedding = nn.Parameter(self._field_init(backbone, rows(fields)))  # p (n + c, D)
        offsets = [0]
        for c in cards:
            offsets.append(offsets[-1] + c)
        self.register_buffer("offsets", torch.tensor(offsets[:-1], dtype=torch.long), persistent=False)
        # every column's table, stacked: (sum(K_c + 1), D)
        self.level_embedding = nn.Parameter(rows(offsets[-1])) if cards else None
        self.hidden = hidden
        return self

    def _field_init(self, backbone: Any, fallback: torch.Tensor) -> torch.Tensor:
        """Field embeddings: the mean word embedding of each column name's tokens, where the backbone has
        a tokenizer and its embeddings; the random rows otherwise (and for a name with no tokens)."""
        token_ids = getattr(backbone, "token_ids", None)
        table = getattr(backbone, "word_embeddings", None)
        if self.names is None or not callable(token_ids) or not isinstance(table, torch.Tensor):
            return fallback
        out = fallback.clone()
        for j, name in enumerate(self.names):
            ids = token_ids(str(name))
            if ids:
                out[j] = table.detach().float()[torch.tensor(ids)].mean(0)
        return out

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.hidden is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a backbone; call bind(backbone)")
        values, ids = x["values"], x["ids"]
        if values.ndim != 2 or values.shape[1] != self.n_numeric:
            raise ValueError(f"{type(self).__name__} expects values (B, {self.n_numeric}), got "
                             f"{tuple(values.shape)}")
        if ids.ndim != 2 or ids.shape[1] != len(self.cardinalities):
            raise ValueError(f"{type(self).__name__} expects ids (B, {len(self.cardinalities)}), got "
                             f"{tuple(ids.shape)}")
        dtype = values.dtype
        parts = []
        if self.value_embedding is not None:
            parts.append(values[:, :, None] * self.value_embedding.to(dtype))  # (B, n, D)
        if self.level_embedding is not None:
            parts.append(self.level_embedding.to(dtype)[ids + self.offsets])  # (B, c, D)
        tokens = torch.cat(parts, dim=1)  # (B, n + c, D)
        return tokens + self.field_embedding.to(dtype)[None]


__all__ = [
    "LAYOUTS",
    "FeatureImageTransform",
    "FeatureTokenTransform",
    "TransactionAdapter",
    "grid_side",
]

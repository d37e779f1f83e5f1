"""Graphs into a frozen language model: the input transformations I of graph classification.

Three ways a graph reaches the frozen LM (f), chosen between by measurement (``benchmarks/graphs.py``):

- **node tokens** (:class:`NodeTokenTransform` behind :class:`GraphAdapter` with ``tokens="nodes"``): each
  node is one soft token in the LM's embedding space, a trained linear map of its features and its
  structural encodings (degree one-hot, random-walk return probabilities: Dwivedi et al., ICLR 2022); the
  graph's connectivity reaches the frozen model as an additive attention bias (a node attends to the nodes
  within ``k`` hops, itself included, or to every node), the position embeddings follow a canonical node
  order (Weisfeiler-Lehman colours, :func:`canonical_order`);
- **GNN prefix** (:class:`GINPrefixTransform`, ``tokens="prefix"``): a small trained GIN (PyG's
  ``DenseGINConv``, Xu et al., ICLR 2019) whose sum-pooled layers are projected to ``K`` soft prefix
  tokens, the GraphToken (Perozzi et al., 2024) / G-Retriever (He et al., 2024) pattern with the LM frozen;
- **graphs as text** (:class:`GraphTextAdapter` + :class:`TokenEmbeddingTransform`): the graph written out
  ("Talk like a Graph", Fatemi et al., ICLR 2024) and tokenised, no trainable input at all.

The estimator (:class:`xdomain.estimators.graphs.GraphClassifier`) turns PyG ``Data`` (or networkx graphs)
into per-graph records (:func:`graph_record`) and pads a batch into one dense tensor (:func:`collate_graphs`):

    G (B, N, 1 + F + N) = [ real-node flag | node features (F) | adjacency row (N) ]

so every part downstream takes a tensor, one row per graph, that the trainer can move and split.

Shapes:
    - :func:`collate_graphs`: ``B`` records -> ``(B, N_max, 1 + F + N_max)``
    - :class:`GraphAdapter` encode: ``(B, N, C)`` -> the same tensor, state ``{"attention_mask": (B, N),
      "attention_bias": (B, N, N)}`` (node tokens) or ``{}`` (prefix)
    - :class:`NodeTokenTransform`: ``(B, N, C)`` -> ``(B, N, D)``; :class:`GINPrefixTransform`: ``(B, K, D)``
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xdomain.parts import Part
from xdomain.registry import ADAPTERS, TRANSFORMS

CONNECTIVITY = ("adjacency", "2-hop", "3-hop", "full")
TOKENS = ("nodes", "prefix")
NODE_ORDERS = ("wl", "given")
FEATURES = ("x", "structure")
TOO_LARGE = ("error", "truncate")
# an attention score barred by the graph: finite, so a row with every key barred still has a softmax
BARRED = -1.0e4


# -- graphs in: checks, canonical order, structural encodings -------------------------------------------
@dataclass(frozen=True)
class GraphRecord:
    """One graph, ready to pad: node features ``(n, F)`` (structural encodings included) and its
    symmetric 0/1 adjacency ``(n, n)`` without self-loops, nodes in the chosen order."""

    x: torch.Tensor
    adj: torch.Tensor
    labels: tuple[int, ...] = ()  # categorical node labels in the same order (:func:`node_labels`)


def check_graph(data: Any, index: int, need_x: bool) -> tuple[int, torch.Tensor, torch.Tensor | None]:
    """``(num_nodes, edge_index, x)`` of a PyG ``Data``, checked; errors name the graph and the value."""
    x = getattr(data, "x", None)
    n_attr = getattr(data, "num_nodes", None)
    n = int(n_attr) if n_attr is not None else (int(x.shape[0]) if x is not None else 0)
    if n < 1:
        raise ValueError(f"graph {index} has no nodes (num_nodes {n_attr!r}); expected at least one node")
    edge_index = getattr(data, "edge_index", None)
    if edge_index is None:
        edge_index = torch.zeros(2, 0, dtype=torch.long)
    if not isinstance(edge_index, torch.Tensor) or edge_index.ndim != 2 or edge_index.shape[0] != 2:
        shape = tuple(edge_index.shape) if isinstance(edge_index, torch.Tensor) else type(edge_index).__name__
        raise ValueError(f"graph {index} has edge_index of shape {shape}; expected (2, num_edges)")
    if edge_index.dtype.is_floating_point or edge_index.dtype == torch.bool:
        raise ValueError(f"graph {index} has edge_index of dtype {edge_index.dtype}; expected integers")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise ValueError(
            f"graph {index} has edge_index values from {int(edge_index.min())} to {int(edge_index.max())}; "
            f"expected node indices in [0, {n}) for its {n} nodes"
        )
    if x is None:
        if need_x:
            raise ValueError(
                f"graph {index} has no node features (x is None); pass features='structure' to use its "
                "degree and random-walk encodings only"
            )
        return n, edge_index.long(), None
    x = torch.as_tensor(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != n:
        raise ValueError(f"graph {index} has node features of shape {tuple(x.shape)}; expected ({n}, F)")
    if x.is_complex() or not (x.dtype.is_floating_point or x.dtype in (torch.int64, torch.int32, torch.bool,
                                                                      torch.uint8, torch.int16, torch.int8)):
        raise ValueError(f"graph {index} has node features of dtype {x.dtype}; expected real numbers")
    xf = x.to(torch.float32)
    if not bool(torch.isfinite(xf).all()):
        row, col = (int(v) for v in torch.nonzero(~torch.isfinite(xf))[0])
        raise ValueError(
            f"graph {index} has NaN or infinite node features (x[{row}, {col}] = {float(xf[row, col])}); "
            "expected finite values"
        )
    return n, edge_index.long(), xf


def adjacency(n: int, edge_index: torch.Tensor) -> torch.Tensor:
    """Symmetric 0/1 ``(n, n)`` adjacency of an edge list (direction and self-loops dropped)."""
    a = torch.zeros(n, n)
    if edge_index.numel():
        a[edge_index[0], edge_index[1]] = 1.0
        a[edge_index[1], edge_index[0]] = 1.0
    a.fill_diagonal_(0.0)
    return a


def canonical_order(adj: torch.Tensor, labels: Sequence[Any], rounds: int = 3) -> list[int]:
    """The nodes sorted by their Weisfeiler-Lehman colour after ``rounds`` refinements (start colour:
    the node label), ties by the given index: the same order for any relabelling of the nodes, up to
    nodes WL cannot tell apart. Colours are ranks of sorted signatures, so no hash can collide."""
    n = int(adj.shape[0])
    nbrs = [torch.nonzero(adj[v]).flatten().tolist() for v in range(n)]
    start = sorted(set(labels))
    colour = [start.index(labels[v]) for v in range(n)]
    for _ in range(rounds):
        sig = [(colour[v], tuple(sorted(colour[u] for u in nbrs[v]))) for v in range(n)]
        ranks = {s: i for i, s in enumerate(sorted(set(sig)))}
        colour = [ranks[s] for s in sig]
    return sorted(range(n), key=lambda v: (colour[v], v))


def structural_encodings(adj: torch.Tensor, rw_steps: int, max_degree: int) -> torch.Tensor:
    """``(n, max_degree + 1 + rw_steps)``: the degree one-hot (degrees above ``max_degree`` in the last
    slot) and the random-walk return probabilities ``[(D^-1 A)^k]_ii`` for ``k = 1 .. rw_steps``."""
    n = int(adj.shape[0])
    deg = adj.sum(1)
    onehot = torch.zeros(n, max_degree + 1)
    onehot[torch.arange(n), deg.clamp_max(max_degree).long()] = 1.0
    walk = adj / deg.clamp_min(1.0)[:, None]  # (n, n) row-stochastic where a node has neighbours
    power = torch.eye(n)
    rw = []
    for _ in range(rw_steps):
        power = power @ walk
        rw.append(power.diagonal())
    return torch.cat([onehot, torch.stack(rw, 1) if rw else torch.zeros(n, 0)], dim=1)


def node_labels(x: torch.Tensor | None, n: int) -> list[int]:
    """Per-node categorical labels for ordering and text: the argmax of one-hot features, else 0."""
    if x is None or x.shape[1] == 0:
        return [0] * n
    onehot = bool(((x == 0) | (x == 1)).all()) and bool((x.sum(1) == 1).all())
    if onehot:
        return [int(v) for v in x.argmax(1).tolist()]
    # not one-hot: order by the whole feature row (rounded), a label for WL's first colour
    rows = [tuple(round(float(v), 6) for v in r) for r in x.tolist()]
    keys = sorted(set(rows))
    return [keys.index(r) for r in rows]


def graph_record(
    data: Any,
    index: int,
    features: str = "x",
    rw_steps: int = 8,
    max_degree: int = 6,
    node_order: str = "wl",
    max_nodes: int | None = None,
    too_large: str = "error",
    permutation: Sequence[int] | None = None,
) -> GraphRecord:
    """A checked PyG ``Data`` as a :class:`GraphRecord` (the caller's graph is not modified).

    ``permutation`` relabels the nodes first (node ``permutation[i]`` becomes node ``i``), for the
    shuffled-order evaluation; ``max_nodes`` caps the nodes (``too_large``: an error, or the first
    ``max_nodes`` in the chosen order)."""
    n, edge_index, x = check_graph(data, index, need_x=features == "x")
    adj = adjacency(n, edge_index)
    if permutation is not None:
        perm = torch.as_tensor(list(permutation), dtype=torch.long)
        adj = adj[perm][:, perm]
        x = None if x is None else x[perm]
    labels = node_labels(x, n)
    order = canonical_order(adj, labels) if node_order == "wl" else list(range(n))
    o = torch.as_tensor(order, dtype=torch.long)
    adj = adj[o][:, o]
    x = None if x is None else x[o]
    if max_nodes is not None and n > max_nodes:
        if too_large == "error":
            raise ValueError(
                f"graph {index} has {n} nodes, more than the {max_nodes} positions of the backbone; pass "
                f"too_large='truncate' (keeps the first {max_nodes} nodes in {node_order!r} order) or "
                "encoder='gin-prefix' (a fixed number of tokens)"
            )
        adj, x = adj[:max_nodes, :max_nodes], None if x is None else x[:max_nodes]
    enc = structural_encodings(adj, rw_steps, max_degree)
    feats = enc if features == "structure" or x is None else torch.cat([x, enc], dim=1)
    kept = tuple(labels[v] for v in order[: int(adj.shape[0])])
    return GraphRecord(feats.contiguous(), adj.contiguous(), kept)


def collate_graphs(records: Sequence[GraphRecord]) -> torch.Tensor:
    """Pad records into ``G (B, N_max, 1 + F + N_max)``: flag 1 on real nodes, features, adjacency."""
    if not records:
        raise ValueError("cannot collate an empty list of graphs")
    width = int(records[0].x.shape[1])
    n_max = max(int(r.x.shape[0]) for r in records)
    out = torch.zeros(len(records), n_max, 1 + width + n_max)
    for b, r in enumerate(records):
        n = int(r.x.shape[0])
        if int(r.x.shape[1]) != width:
            raise ValueError(f"graph {b} of the batch has {int(r.x.shape[1])} features; expected {width}")
        out[b, :n, 0] = 1.0
        out[b, :n, 1 : 1 + width] = r.x
        out[b, :n, 1 + width : 1 + width + n] = r.adj
    return out


def graph_text(record_labels: Sequence[int], adj: torch.Tensor, names: Sequence[str] | None = None) -> str:
    """A graph written as text ("Talk like a Graph", incident style): its nodes with their labels, then
    its edges, e.g. ``"graph of 3 nodes. nodes: 0 c, 1 c, 2 n. edges: 0 - 1, 1 - 2."``"""
    n = int(adj.shape[0])

    def name(v: int) -> str:
        lab = int(record_labels[v])
        return str(names[lab]).lower() if names is not None and lab < len(names) else f"label {lab}"

    nodes = ", ".join(f"{v} {name(v)}" for v in range(n))
    iu = torch.triu_indices(n, n, offset=1)
    keep = adj[iu[0], iu[1]] > 0
    edges = ", ".join(f"{int(a)} - {int(b)}" for a, b in zip(iu[0][keep], iu[1][keep], strict=True))
    return f"graph of {n} nodes. nodes: {nodes}. edges: {edges or 'none'}."


def check_graph_batch(g: torch.Tensor) -> tuple[int, int]:
    """``(N, F)`` of a collated batch ``(B, N, 1 + F + N)``, or a clear error."""
    if not isinstance(g, torch.Tensor) or g.ndim != 3:
        shape = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
        raise ValueError(f"a graph batch must be (B, N, 1 + F + N) (collate_graphs), got {shape}")
    n = int(g.shape[1])
    f = int(g.shape[2]) - 1 - n
    if f < 0:
        raise ValueError(f"a graph batch of {n} nodes needs at least {1 + n} columns, got {int(g.shape[2])}")
    return n, f


def hop_bias(adj: torch.Tensor, hops: int | None) -> torch.Tensor | None:
    """0 where node ``j`` is within ``hops`` of node ``i`` (itself included), :data:`BARRED` elsewhere;
    None (no bias) for ``hops=None`` (every node attends to every node)."""
    if hops is None:
        return None
    n = int(adj.shape[-1])
    step = (adj > 0).to(adj.dtype) + torch.eye(n, dtype=adj.dtype, device=adj.device)  # (B, N, N)
    reach = step
    for _ in range(hops - 1):
        reach = (reach @ step).clamp_max(1.0)
    return torch.where(reach > 0, torch.zeros_like(reach), torch.full_like(reach, BARRED))


# -- the adapters ---------------------------------------------------------------------------------------
@ADAPTERS.register("graph")
class GraphAdapter(nn.Module):
    """Domain adapter for collated graphs ``G`` (:func:`collate_graphs`): the node mask and the graph's
    connectivity as an attention bias for the frozen LM (node tokens), or nothing (prefix tokens, which
    are all real and attend freely). It has no weights; ``G`` passes on unchanged.

    Args:
        tokens: ``"nodes"`` (one token a node: mask and bias given) or ``"prefix"`` (none given).
        connectivity: which nodes a node attends to: ``"adjacency"`` (its neighbours and itself),
            ``"2-hop"``, ``"3-hop"``, or ``"full"`` (all nodes; structure then only through the encodings).

    Shapes:
        - encode: ``(B, N, 1 + F + N)`` -> the same, state ``{"attention_mask": (B, N) bool,
          "attention_bias": (B, N, N)}`` (no bias for ``"full"``; an empty state for ``"prefix"``)
        - decode: ``y`` unchanged
    """

    def __init__(self, tokens: str = "nodes", connectivity: str = "adjacency") -> None:
        super().__init__()
        if tokens not in TOKENS:
            raise ValueError(f"tokens must be one of {TOKENS}, got {tokens!r}")
        if connectivity not in CONNECTIVITY:
            raise ValueError(f"connectivity must be one of {CONNECTIVITY}, got {connectivity!r}")
        self.tokens = tokens
        self.connectivity = connectivity

    @property
    def hops(self) -> int | None:
        return {"adjacency": 1, "2-hop": 2, "3-hop": 3, "full": None}[self.connectivity]

    def encode(self, g: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        n, f = check_graph_batch(g)
        if self.tokens == "prefix":
            return g, {}
        mask = g[..., 0] > 0.5  # (B, N)
        state = {"attention_mask": mask}
        bias = hop_bias(g[..., 1 + f : 1 + f + n], self.hops)  # (B, N, N)
        if bias is not None:
            state["attention_bias"] = bias
        return g, state

    def decode(self, y: torch.Tensor, state: Any = None) -> torch.Tensor:
        return y

    def extra_repr(self) -> str:
        return f"tokens={self.tokens!r}, connectivity={self.connectivity!r}"


@ADAPTERS.register("graph-text")
class GraphTextAdapter(nn.Module):
    """Domain adapter for graphs written as text (:func:`graph_text`), tokenised by the LM's tokenizer:
    token ids ``(B, L)`` right-padded with ``pad_id``. No weights.

    Shapes:
        - encode: ids ``(B, L)`` -> ids ``(B, L)``, state ``{"attention_mask": (B, L) bool}``
        - decode: ``y`` unchanged
    """

    def __init__(self, pad_id: int = 0) -> None:
        super().__init__()
        self.pad_id = pad_id

    def encode(self, ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not isinstance(ids, torch.Tensor) or ids.ndim != 2 or ids.dtype.is_floating_point:
            shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
            raise ValueError(f"graph text must be token ids (B, L) of integers, got {shape}")
        return ids, {"attention_mask": ids != self.pad_id}

    def decode(self, y: torch.Tensor, state: Any = None) -> torch.Tensor:
        return y


# -- the input transformations I --------------------------------------------------------------------------
@TRANSFORMS.register("node-tokens")
class NodeTokenTransform(nn.Module):
    """I: every node a soft token, a trained linear map of its features (structural encodings included)
    into the LM's embedding space; padding nodes give zero tokens (the attention mask hides them).

    Args:
        in_features: ``F``, the node feature width of the collated batch.

    Shapes:
        - input: ``(B, N, 1 + F + N')`` (:func:`collate_graphs`; ``N'`` >= ``N`` after trimming)
        - output: ``(B, N, D)``
    """

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.proj: nn.Linear | None = None

    def bind(self, backbone: Any, **_: Any) -> NodeTokenTransform:
        d = int(backbone.hidden_size)
        if self.proj is not None:
            if self.proj.out_features != d:
                raise ValueError(f"bound to width {self.proj.out_features}; got a backbone of width {d}")
            return self
        f = self.in_features
        if isinstance(f, bool) or not isinstance(f, int) or f < 1:
            raise ValueError(f"in_features must be a positive integer, got {self.in_features!r}")
        self.proj = nn.Linear(self.in_features, d)
        # tokens on the scale of the frozen word embeddings, which the LM's embedding LayerNorm expects
        scale = float(backbone.word_embeddings.detach().float().std())
        nn.init.normal_(self.proj.weight, std=scale / math.sqrt(self.in_features))
        nn.init.zeros_(self.proj.bias)
        return self

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        if self.proj is None:
            raise RuntimeError("NodeTokenTransform is not bound to a backbone; call bind(backbone) first")
        f = self.in_features
        if g.ndim != 3 or g.shape[-1] < 1 + f:
            raise ValueError(f"expected a graph batch (B, N, 1 + {f} + N), got {tuple(g.shape)}")
        real = g[..., :1]  # (B, N, 1)
        out: torch.Tensor = self.proj(g[..., 1 : 1 + f]) * real
        return out  # (B, N, D)


@TRANSFORMS.register("gin-prefix")
class GINPrefixTransform(nn.Module):
    """I: a small trained GIN (PyG ``DenseGINConv`` layers, sum-pooled and concatenated as in Xu et al.,
    ICLR 2019) whose graph embedding is projected to ``num_tokens`` soft prefix tokens of the LM's width
    (GraphToken; G-Retriever's projector, the LM kept frozen here).

    Args:
        in_features: ``F``, the node feature width of the collated batch.
        num_tokens: ``K`` prefix tokens.
        hidden: the GIN's width; layers: its number of layers.

    Shapes:
        - input: ``(B, N, 1 + F + N)`` (:func:`collate_graphs`)
        - output: ``(B, K, D)``
    """

    def __init__(self, in_features: int, num_tokens: int = 4, hidden: int = 64, layers: int = 3) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_tokens = num_tokens
        self.hidden = hidden
        self.layers = layers
        self.width: int | None = None

    def bind(self, backbone: Any, **_: Any) -> GINPrefixTransform:
        from torch_geometric.nn.dense import DenseGINConv

        d = int(backbone.hidden_size)
        if self.width is not None:
            if self.width != d:
                raise ValueError(f"bound to width {self.width}; got a backbone of width {d}")
            return self
        for name in ("in_features", "num_tokens", "hidden", "layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        convs = []
        width = self.in_features
        for _layer in range(self.layers):
            mlp = nn.Sequential(nn.Linear(width, self.hidden), nn.ReLU(), nn.Linear(self.hidden, self.hidden),
                                nn.ReLU())
            convs.append(DenseGINConv(mlp, train_eps=False))
            width = self.hidden
        self.convs = nn.ModuleList(convs)
        self.project = nn.Linear(self.in_features + self.layers * self.hidden, self.num_tokens * d)
        self.width = d
        return self

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        if self.width is None:
            raise RuntimeError("GINPrefixTransform is not bound to a backbone; call bind(backbone) first")
        n, f_total = check_graph_batch(g)
        f = self.in_features
        if f_total < f:
            raise ValueError(f"expected a graph batch (B, N, 1 + {f} + N), got {tuple(g.shape)}")
        mask = g[..., 0] > 0.5  # (B, N)
        h = g[..., 1 : 1 + f]  # (B, N, F)
        adj = g[..., 1 + f : 1 + f + n]  # (B, N, N)
        pooled = [h.sum(1)]  # sum pooling of every layer, as GIN's graph readout
        for conv in self.convs:
            h = conv(h, adj, mask)  # (B, N, hidden), padding rows zeroed
            pooled.append(h.sum(1))
        tokens: torch.Tensor = self.project(torch.cat(pooled, dim=-1))  # (B, K * D)
        return tokens.view(g.shape[0], self.num_tokens, self.width)  # (B, K, D)


@TRANSFORMS.register("token-embedding")
class TokenEmbeddingTransform(Part):
    """I with no parameters: token ids looked up in the frozen LM's own word embeddings (graphs as text,
    the zero-parameter reference). The backbone is read where it is, never registered here.

    Shapes:
        - input: ids ``(B, L)``; output: ``(B, L, D)``
    """

    def __init__(self) -> None:
        super().__init__()
        self._source: tuple[Any, ...] = ()

    def bind(self, backbone: Any, **_: Any) -> TokenEmbeddingTransform:
        if not hasattr(backbone, "embed_ids"):
            raise TypeError(f"token embedding needs a language backbone, got {type(backbone).__name__}")
        self._source = (backbone,)
        return self

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not self._source:
            raise RuntimeError("TokenEmbeddingTransform is not bound to a backbone; call bind(backbone) "
                               "first")
        out: torch.Tensor = self._source[0].embed_ids(ids)
        return out


__all__ = [
    "BARRED",
    "CONNECTIVITY",
    "FEATURES",
    "NODE_ORDERS",
    "TOKENS",
    "TOO_LARGE",
    "GINPrefixTransform",
    "GraphAdapter",
    "GraphRecord",
    "GraphTextAdapter",
    "NodeTokenTransform",
    "TokenEmbeddingTransform",
    "adjacency",
    "canonical_order",
    "check_graph",
    "check_graph_batch",
    "collate_graphs",
    "graph_record",
    "graph_text",
    "hop_bias",
    "node_labels",
    "structural_encodings",
]

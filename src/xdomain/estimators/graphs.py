"""Graph classification through a frozen language model (PyG graphs in, soft tokens into MiniLM).

    y_hat = O( f( I(G) ) )

I is one of the graph input transformations of :mod:`xdomain.adapters.graph` (node tokens with the
graph's connectivity as an attention bias, a small GIN's ``K`` prefix tokens, or the graph written as
text); f a frozen language model (MiniLM by default, or none: the same transformation with the backbone
removed, the ablation); O a pooled linear head or a label mapping over the frozen LM's vocabulary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn
from torch.utils.data import Dataset

from xdomain.adapters.graph import (
    CONNECTIVITY,
    FEATURES,
    NODE_ORDERS,
    TOO_LARGE,
    GINPrefixTransform,
    GraphAdapter,
    GraphRecord,
    GraphTextAdapter,
    NodeTokenTransform,
    TokenEmbeddingTransform,
    check_graph,
    collate_graphs,
    graph_record,
    graph_text,
)
from xdomain.backbones.ablation import IdentityBackbone
from xdomain.backbones.loader import resolve_backbone
from xdomain.estimators.base import ReprogrammingClassifier
from xdomain.heads.linear import LinearHead
from xdomain.heads.vocab_label_mapping import VocabLabelMappingHead
from xdomain.registry import ESTIMATORS
from xdomain.reprogrammer import Reprogrammer
from xdomain.training.batches import Collate

ENCODERS = ("node-tokens", "gin-prefix", "text")
HEADS = ("linear", "label-mapping")


def as_graphs(X: Any) -> list[Any]:
    """A list of PyG ``Data`` from a PyG dataset, a list of ``Data``, or a list of networkx graphs (node
    attribute ``x`` as features where every node has one; graph attribute ``y`` as the label). The
    caller's graphs are read, never modified."""
    from torch_geometric.data import Data

    try:
        import networkx as nx  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - torch depends on networkx
        nx = None
    if isinstance(X, Data) or (nx is not None and isinstance(X, nx.Graph)):
        raise TypeError(
            f"X must be a collection of graphs, got a single {type(X).__name__}; wrap one graph in a list"
        )
    if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
        raise TypeError(
            f"X must be a PyG dataset, a list of torch_geometric Data, or a list of networkx graphs; got "
            f"{type(X).__name__}"
        )
    items = [X[i] for i in range(len(X))]
    if not items:
        raise ValueError("X holds no graphs; expected at least one")
    out = []
    for i, g in enumerate(items):
        if isinstance(g, Data):
            out.append(g)
        elif nx is not None and isinstance(g, nx.Graph):
            out.append(_from_networkx(g, i))
        else:
            raise TypeError(
                f"graph {i} is a {type(g).__name__}; expected a torch_geometric Data or a networkx graph"
            )
    return out


def _from_networkx(g: Any, index: int) -> Any:
    from torch_geometric.data import Data

    nodes = list(g.nodes)
    where = {v: i for i, v in enumerate(nodes)}
    edges = [(where[a], where[b]) for a, b in g.edges]
    edge_index = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
    feats = [g.nodes[v].get("x") for v in nodes]
    x = None
    if nodes and all(f is not None for f in feats):
        try:
            x = torch.as_tensor(np.asarray(feats, dtype=np.float64), dtype=torch.float32)
        except ValueError as err:
            raise ValueError(f"graph {index}: its nodes' attribute 'x' is not one width ({err})") from err
    data = Data(x=x, edge_index=edge_index, num_nodes=len(nodes))
    if "y" in g.graph:
        data.y = torch.as_tensor([g.graph["y"]])
    return data


def graph_labels(graphs: list[Any]) -> np.ndarray:
    """Every graph's ``.y`` (one value each), or an error naming the graphs without one."""
    missing = [i for i, g in enumerate(graphs) if getattr(g, "y", None) is None]
    if missing:
        raise ValueError(
            f"graphs {missing[:10]}{' ...' if len(missing) > 10 else ''} have no label (.y is None); pass "
            "y= to fit, or give every graph its .y"
        )
    values = []
    for i, g in enumerate(graphs):
        y = torch.as_tensor(g.y).reshape(-1)
        if y.numel() != 1:
            raise ValueError(f"graph {i} has .y of {y.numel()} values; expected one graph label")
        values.append(y.item())
    return np.asarray(values)


class _Items(Dataset[Any]):
    """A list of records (and labels) as a dataset of ``(record,)`` or ``(record, y)`` items."""

    def __init__(self, records: list[Any], y: torch.Tensor | None) -> None:
        self.records, self.y = records, y

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Any:
        return (self.records[i],) if self.y is None else (self.records[i], self.y[i])


@ESTIMATORS.register("GraphClassifier")
class GraphClassifier(ReprogrammingClassifier):
    """Classify graphs with a frozen language model (scikit-learn estimator).

    Args:
        backbone: ``minilm`` (default), a ``transformers`` name or path, or a loaded language backbone.
        encoder: the input transformation: ``gin-prefix`` (default: a small GIN's ``prefix_tokens`` soft
            tokens), ``node-tokens`` (a token a node, connectivity as attention bias) or ``text`` (the graph
            written as text, no trainable input). The default was chosen once by inner validation
            (``benchmarks/results/graphs_selection.md``): on an 80/20 stratified split of the training part
            of MUTAG's first outer fold (135 / 34 graphs), 40 epochs each with the best epoch on a 10% cut,
            ``gin-prefix`` scored 94.1% (44 s), ``node-tokens`` with adjacency or with full attention 91.2%
            (464 s / 386 s), the zero-parameter text + vocabulary label mapping 85.3%.
        head: ``linear`` (mean-pooled tokens, one linear layer) or ``label-mapping`` (the frozen LM's
            vocabulary scores mapped many-to-one onto the classes, ``sources_per_class`` words each).
        connectivity: node tokens: which nodes a node attends to (``adjacency``, ``2-hop``, ``3-hop``,
            ``full``).
        features: ``x`` (node features and structural encodings) or ``structure`` (encodings only, for
            graphs without ``x``).
        rw_steps, max_degree: the structural encodings (random-walk steps; degree one-hot size - 1).
        node_order: ``wl`` (canonical Weisfeiler-Lehman order for the position embeddings) or ``given``.
        prefix_tokens, gnn_hidden, gnn_layers: the GIN prefix.
        node_names: names of the node label classes, for ``encoder="text"`` (e.g. atom symbols).
        too_large: a graph with more nodes (``node-tokens``) or text tokens (``text``) than the backbone
            has positions: ``error`` or ``truncate``.
        no_backbone: remove the backbone (its embeddings kept for ``text``): the ablation.
        epochs, batch_size, lr, patience, max_steps, validation_fraction, random_state, verbose,
        mixed_precision: training, as for every estimator (Adam; the best epoch by validation loss on a
            stratified cut of the training graphs). 40 epochs without early stopping (``patience=40``) are
            the settings the choice above and ``benchmarks/graphs.py`` were measured at.

    ``X`` is a PyG dataset, a list of ``Data`` or a list of networkx graphs; ``y`` may be omitted in
    ``fit`` when every graph carries ``.y``.
    """

    def __init__(
        self,
        backbone: Any = "minilm",
        encoder: str = "gin-prefix",
        head: str = "linear",
        connectivity: str = "adjacency",
        features: str = "x",
        rw_steps: int = 8,
        max_degree: int = 6,
        node_order: str = "wl",
        prefix_tokens: int = 4,
        gnn_hidden: int = 64,
        gnn_layers: int = 3,
        node_names: Any = None,
        too_large: str = "error",
        no_backbone: bool = False,
        sources_per_class: int = 10,
        epochs: int = 40,
        batch_size: int = 32,
        lr: float | None = 1e-3,
        patience: int = 40,
        validation_fraction: float = 0.1,
        max_steps: int | None = None,
        random_state: int = 0,
        verbose: bool = False,
        mixed_precision: str = "no",
    ) -> None:
        self.backbone = backbone
        self.encoder = encoder
        self.head = head
        self.connectivity = connectivity
        self.features = features
        self.rw_steps = rw_steps
        self.max_degree = max_degree
        self.node_order = node_order
        self.prefix_tokens = prefix_tokens
        self.gnn_hidden = gnn_hidden
        self.gnn_layers = gnn_layers
        self.node_names = node_names
        self.too_large = too_large
        self.no_backbone = no_backbone
        self.sources_per_class = sources_per_class
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.max_steps = max_steps
        self.random_state = random_state
        self.verbose = verbose
        self.mixed_precision = mixed_precision

    # -- settings -------------------------------------------------------------------------------------
    def _check_settings(self) -> None:
        for name, allowed in (("encoder", ENCODERS), ("head", HEADS), ("connectivity", CONNECTIVITY),
                              ("features", FEATURES), ("node_order", NODE_ORDERS), ("too_large", TOO_LARGE)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name, low in (("rw_steps", 0), ("max_degree", 0), ("prefix_tokens", 1), ("gnn_hidden", 1),
                          ("gnn_layers", 1), ("sources_per_class", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.no_backbone and self.head == "label-mapping":
            raise ValueError("no_backbone=True removes the LM whose vocabulary head='label-mapping' reads; "
                             "use head='linear'")

    def _language(self) -> Any:
        domain = "masked-lm" if self.head == "label-mapping" else "language"
        return resolve_backbone(self.backbone, domain=domain)

    def _positions(self) -> int | None:
        config = getattr(getattr(self._language(), "model", None), "config", None)
        n = getattr(config, "max_position_embeddings", None)
        return int(n) if n is not None else None

    # -- inputs ---------------------------------------------------------------------------------------
    def _inputs(self, X: Any, fitting: bool, permutations: Any = None) -> Any:
        self._check_settings()
        graphs = as_graphs(X)
        limit = self._positions()
        if self.encoder == "text":
            return self._texts(graphs, limit, permutations)
        cap = limit if self.encoder == "node-tokens" else None
        records = [
            graph_record(g, i, self.features, self.rw_steps, self.max_degree, self.node_order, cap,
                         self.too_large, None if permutations is None else permutations[i])
            for i, g in enumerate(graphs)
        ]
        widths = {int(r.x.shape[1]) for r in records}
        width = int(records[0].x.shape[1])
        if len(widths) > 1:
            first = next(i for i, r in enumerate(records) if int(r.x.shape[1]) != width)
            raise ValueError(
                f"graph {first} has {int(records[first].x.shape[1])} node features (encodings included), "
                f"graph 0 has {width}; expected one node feature width for all graphs"
            )
        if fitting:
            self.node_features_ = width
        elif width != getattr(self, "node_features_", width):
            raise ValueError(
                f"graphs have {width} node features (encodings included), but the classifier was fitted on "
                f"{self.node_features_}; expected the same features as in training"
            )
        return records

    def _texts(self, graphs: list[Any], limit: int | None, permutations: Any) -> list[torch.Tensor]:
        lm = self._language()
        names = None if self.node_names is None else [str(v) for v in self.node_names]
        out = []
        for i, g in enumerate(graphs):
            rec = graph_record(g, i, "x" if getattr(g, "x", None) is not None else "structure", 0, 0,
                               self.node_order, None, "error",
                               None if permutations is None else permutations[i])
            text = graph_text(rec.labels, rec.adj, names)
            ids = lm.tokenizer(text, add_special_tokens=True)["input_ids"]
            if limit is not None and len(ids) > limit:
                if self.too_large == "error":
                    raise ValueError(
                        f"graph {i} written as text is {len(ids)} tokens, more than the backbone's {limit} "
                        "positions; pass too_large='truncate' or encoder='gin-prefix'"
                    )
                ids = ids[: limit - 1] + ids[-1:]
            out.append(torch.tensor(ids, dtype=torch.long))
        return out

    def fit(self, X: Any, y: Any = None) -> GraphClassifier:
        """Fit on the graphs ``X``; ``y`` defaults to the graphs' own ``.y``."""
        if y is None:
            y = graph_labels(as_graphs(X))
        elif isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        super().fit(X, y)
        return self

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        if y is None:
            y = graph_labels(as_graphs(X))
        elif isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        return super().score(X, y, sample_weight=sample_weight)

    def predict_proba_permuted(self, X: Any, seed: int = 0) -> np.ndarray:
        """Class probabilities with every graph's nodes shuffled (seeded) before encoding: the model's
        sensitivity to node order (with ``node_order="wl"`` only WL-equivalent ties can move)."""
        model = self._check_fitted()
        graphs = as_graphs(X)
        rng = np.random.default_rng(seed)
        perms = [rng.permutation(int(check_graph(g, i, False)[0])).tolist() for i, g in enumerate(graphs)]
        inputs = self._inputs(graphs, fitting=False, permutations=perms)
        from xdomain.training.trainer import check_precision, predict_batches

        with torch.no_grad():
            out = predict_batches(model, self._dataset(inputs, None, None), self._eval_batch_size,
                                  check_precision(self.mixed_precision), collate_fn=self._collate())
        return torch.softmax(out, dim=-1).numpy()

    def _dataset(self, inputs: Any, y: torch.Tensor | None, indices: np.ndarray | None) -> Dataset[Any]:
        rows = range(len(inputs)) if indices is None else [int(i) for i in indices]
        return _Items([inputs[i] for i in rows], None if y is None else y[list(rows)])

    def _collate(self) -> Collate | None:
        pad = 0
        if self.encoder == "text":
            pad = int(getattr(self._language().tokenizer, "pad_token_id", 0) or 0)

        def collate(items: list[Any]) -> Any:
            first = [it[0] for it in items]
            if isinstance(first[0], GraphRecord):
                x = collate_graphs(first)
            else:
                width = max(int(t.shape[0]) for t in first)
                x = torch.full((len(first), width), pad, dtype=torch.long)
                for b, t in enumerate(first):
                    x[b, : t.shape[0]] = t
            if len(items[0]) == 1:
                return (x,)
            return x, torch.stack([torch.as_tensor(it[1]) for it in items])

        return collate

    # -- the model ------------------------------------------------------------------------------------
    def _build_model(self, n_outputs: int) -> nn.Module:
        self._check_settings()
        lm = self._language()
        backbone = IdentityBackbone(lm) if self.no_backbone else lm
        transform: nn.Module
        adapter: nn.Module
        if self.encoder == "text":
            pad = int(getattr(lm.tokenizer, "pad_token_id", 0) or 0)
            adapter, transform = GraphTextAdapter(pad), TokenEmbeddingTransform()
        elif self.encoder == "node-tokens":
            adapter = GraphAdapter("nodes", self.connectivity)
            transform = NodeTokenTransform(int(self.node_features_))
        else:
            adapter = GraphAdapter("prefix")
            transform = GINPrefixTransform(int(self.node_features_), self.prefix_tokens, self.gnn_hidden,
                                           self.gnn_layers)
        head: nn.Module
        if self.head == "linear":
            head = LinearHead(n_outputs, pooling="mean")
        else:
            head = VocabLabelMappingHead(n_outputs, sources_per_class=self.sources_per_class,
                                         seed=self.random_state)
        return Reprogrammer(backbone, transform, head, adapter=adapter)

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "node_features": getattr(self, "node_features_", None)}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        super()._set_extra_state(state)
        if state.get("node_features") is not None:
            self.node_features_ = int(state["node_features"])




class WLSubtreeSVM(ClassifierMixin, BaseEstimator):
    """Baseline: the Weisfeiler-Lehman subtree kernel (Shervashidze et al., JMLR 2011) as explicit features
    (per-iteration colour histograms, PyG ``WLConv``) and a linear SVM, with the number of iterations and
    ``C`` chosen by stratified ``cv``-fold cross-validation on the training graphs only.

    Colours first seen at prediction time have no weight (no training graph had them) and are dropped.
    """

    def __init__(self, iterations: Any = (1, 2, 3, 4, 5), Cs: Any = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0),
                 cv: int = 5, random_state: int = 0) -> None:
        self.iterations = iterations
        self.Cs = Cs
        self.cv = cv
        self.random_state = random_state

    def _features(self, X: Any, fitting: bool) -> np.ndarray:
        from torch_geometric.nn import WLConv

        graphs = as_graphs(X)
        colours, edges, owner, offset = [], [], [], 0
        for i, g in enumerate(graphs):
            n, ei, x = check_graph(g, i, need_x=False)
            colours.append(torch.zeros(n, dtype=torch.long) if x is None else x.argmax(1))
            edges.append(ei + offset)
            owner.append(torch.full((n,), i, dtype=torch.long))
            offset += n
        c = torch.cat(colours)
        edge_index = torch.cat(edges, dim=1)
        batch = torch.cat(owner)
        if fitting:
            self.convs_ = [WLConv() for _ in range(max(self.iterations))]
            self.widths_: list[int] = []
        blocks = []
        for h in range(max(self.iterations) + 1):
            if h:
                c = self.convs_[h - 1](c, edge_index)
            if fitting:
                self.widths_.append(int(c.max()) + 1)
            width = self.widths_[h]
            keep = c < width  # colours no training graph had carry no weight
            hist = torch.zeros(len(graphs), width)
            hist.index_put_((batch[keep], c[keep]), torch.ones(int(keep.sum())), accumulate=True)
            blocks.append(hist)
        return torch.cat(blocks, dim=1).numpy()

    def _columns(self, h: int) -> int:
        return int(sum(self.widths_[: h + 1]))

    def fit(self, X: Any, y: Any = None) -> WLSubtreeSVM:
        from sklearn.model_selection import StratifiedKFold, cross_val_score
        from sklearn.svm import SVC

        graphs = as_graphs(X)
        y_arr = graph_labels(graphs) if y is None else np.asarray(y)
        feats = self._features(graphs, fitting=True)
        cv = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        scores = {}
        for h in self.iterations:
            for C in self.Cs:
                svm = SVC(kernel="linear", C=C)
                cols = feats[:, : self._columns(h)]
                scores[(h, C)] = float(cross_val_score(svm, cols, y_arr, cv=cv).mean())
        # the best mean CV accuracy; ties to fewer iterations, then smaller C
        self.best_iterations_, self.best_C_ = max(scores, key=lambda k: (scores[k], -k[0], -k[1]))
        self.cv_scores_ = {f"h={h}, C={C:g}": s for (h, C), s in scores.items()}
        self.svm_ = SVC(kernel="linear", C=self.best_C_).fit(feats[:, : self._columns(self.best_iterations_)],
                                                             y_arr)
        self.classes_ = self.svm_.classes_
        return self

    def predict(self, X: Any) -> np.ndarray:
        feats = self._features(X, fitting=False)
        return np.asarray(self.svm_.predict(feats[:, : self._columns(self.best_iterations_)]))

    def num_parameters(self) -> int:
        return int(self.svm_.coef_.size + self.svm_.intercept_.size)


__all__ = ["ENCODERS", "HEADS", "GraphClassifier", "WLSubtreeSVM", "as_graphs", "graph_labels"]

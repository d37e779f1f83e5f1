"""Graphs through a frozen language model: the input transformations against hand-worked small graphs
(a triangle, a path), the GraphClassifier's contract on a tiny BERT, bad inputs, the TU loader and the
protocol's folds; the real MUTAG with the real MiniLM in a slow test."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold, cross_val_score

import xdomain
from helpers import assert_unchanged, make_tiny_bert, make_tiny_masked_lm, require_data, state_snapshot
from xdomain.adapters.graph import (
    BARRED,
    GINPrefixTransform,
    GraphAdapter,
    NodeTokenTransform,
    canonical_order,
    collate_graphs,
    graph_record,
    graph_text,
    hop_bias,
    structural_encodings,
)
from xdomain.datasets.graphs import load_tu
from xdomain.datasets.home import DataNotFoundError
from xdomain.estimators.graphs import GraphClassifier

MUTAG_FILE = "TUDataset/MUTAG/raw/MUTAG_A.txt"
FAST = {"epochs": 2, "batch_size": 8, "validation_fraction": 0.0}
NODES = {**FAST, "encoder": "node-tokens"}


def data(n: int, edges: list[tuple[int, int]], labels: list[int] | None = None, n_labels: int = 3,
         y: int | None = None) -> Any:
    from torch_geometric.data import Data

    ei = torch.tensor(edges + [(b, a) for a, b in edges], dtype=torch.long).t().reshape(2, -1)
    x = None if labels is None else torch.eye(n_labels)[torch.tensor(labels)]
    g = Data(x=x, edge_index=ei, num_nodes=n)
    if y is not None:
        g.y = torch.tensor([y])
    return g


def triangle(**kw: Any) -> Any:
    return data(3, [(0, 1), (1, 2), (0, 2)], [0, 0, 1], **kw)


def path(**kw: Any) -> Any:
    return data(3, [(0, 1), (1, 2)], [0, 1, 2], **kw)


def cycles_and_paths(n_per_class: int = 8, seed: int = 0) -> tuple[list[Any], np.ndarray]:
    """Rings (class 1) and chains (class 0) of 4 to 8 nodes with random node labels."""
    rng = np.random.default_rng(seed)
    graphs, ys = [], []
    for i in range(2 * n_per_class):
        n = int(rng.integers(4, 9))
        edges = [(v, v + 1) for v in range(n - 1)] + ([(n - 1, 0)] if i % 2 else [])
        graphs.append(data(n, edges, rng.integers(0, 3, n).tolist(), y=i % 2))
        ys.append(i % 2)
    return graphs, np.array(ys)


# -- the transformations on a triangle and a path ------------------------------------------------------
def test_structural_encodings_of_a_triangle_and_a_path_by_hand() -> None:
    tri = torch.tensor([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.float32)
    enc = structural_encodings(tri, rw_steps=3, max_degree=3)
    # degree one-hot (0..3): every node degree 2; return probabilities of P = (J - I) / 2: 0, 1/2, 1/4
    torch.testing.assert_close(enc, torch.tensor([[0, 0, 1, 0, 0, 0.5, 0.25]] * 3))
    line = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=torch.float32)
    enc = structural_encodings(line, rw_steps=2, max_degree=1)
    # degrees 1, 2, 1 (2 clipped into the last slot); two-step returns: ends 1/2, middle 1
    torch.testing.assert_close(enc, torch.tensor([[0, 1, 0, 0.5], [0, 1, 0, 1.0], [0, 1, 0, 0.5]]))


def test_hop_bias_bars_what_is_out_of_reach() -> None:
    line = torch.tensor([[[0, 1, 0], [1, 0, 1], [0, 1, 0]]], dtype=torch.float32)
    one = hop_bias(line, 1)
    assert one is not None
    expected = torch.tensor([[0, 0, BARRED], [0, 0, 0], [BARRED, 0, 0]])
    torch.testing.assert_close(one[0], expected)
    two = hop_bias(line, 2)
    assert two is not None and torch.equal(two, torch.zeros(1, 3, 3))
    assert hop_bias(line, None) is None


def test_collate_and_adapter_give_the_hand_worked_mask_and_bias() -> None:
    recs = [graph_record(triangle(), 0, rw_steps=0, max_degree=2, node_order="given"),
            graph_record(data(2, [(0, 1)], [2, 0]), 1, rw_steps=0, max_degree=2, node_order="given")]
    g = collate_graphs(recs)
    f = 3 + 3  # labels one-hot + degree one-hot 0..2
    assert g.shape == (2, 3, 1 + f + 3)
    assert g[:, :, 0].tolist() == [[1, 1, 1], [1, 1, 0]]
    torch.testing.assert_close(g[1, :2, 1:4], torch.tensor([[0.0, 0, 1], [1, 0, 0]]))
    assert g[1, 2].abs().sum() == 0  # the padding node is all zeros
    torch.testing.assert_close(g[0, :, 1 + f:], torch.ones(3, 3) - torch.eye(3))
    z, state = GraphAdapter("nodes", "adjacency").encode(g)
    assert z is g
    assert state["attention_mask"].tolist() == [[True, True, True], [True, True, False]]
    bias = state["attention_bias"]
    assert torch.equal(bias[0], torch.zeros(3, 3))  # a triangle: everyone within one hop
    assert bias[1, :2, :2].tolist() == [[0, 0], [0, 0]] and bias[1, 0, 2] == BARRED
    z, state = GraphAdapter("nodes", "full").encode(g)
    assert "attention_bias" not in state and state["attention_mask"].shape == (2, 3)
    assert GraphAdapter("prefix").encode(g)[1] == {}


def test_canonical_order_is_the_same_for_any_relabelling() -> None:
    g = path()
    base = graph_record(g, 0, rw_steps=2, max_degree=2)
    for perm in ([2, 1, 0], [1, 0, 2], [0, 2, 1]):
        shuffled = graph_record(g, 0, rw_steps=2, max_degree=2, permutation=perm)
        assert torch.equal(shuffled.x, base.x) and torch.equal(shuffled.adj, base.adj)
    line = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=torch.float32)
    # labels 2, 0, 1 -> WL colours sort by (label, neighbours' colours): node 1 (label 0) first
    assert canonical_order(line, [2, 0, 1]) == [1, 2, 0]


def test_node_tokens_and_gin_prefix_shapes_and_padding(tiny_bert: Any) -> None:
    recs = [graph_record(triangle(), 0, rw_steps=2, max_degree=2), graph_record(path(), 1, rw_steps=2,
                                                                                max_degree=2)]
    recs.append(graph_record(data(1, [], [1]), 2, rw_steps=2, max_degree=2))
    g = collate_graphs(recs)
    f = int(recs[0].x.shape[1])
    tokens = NodeTokenTransform(f).bind(tiny_bert)(g)
    assert tokens.shape == (3, 3, tiny_bert.hidden_size)
    assert tokens[2, 1:].abs().sum() == 0  # the single-node graph's padding tokens are zero
    torch.manual_seed(0)
    gin = GINPrefixTransform(f, num_tokens=2, hidden=8, layers=2).bind(tiny_bert)
    out = gin(g)
    assert out.shape == (3, 2, tiny_bert.hidden_size)
    # sum pooling over a GIN: the prefix does not depend on the node order, nor on padding
    given = collate_graphs([graph_record(path(), 0, rw_steps=2, max_degree=2, node_order="given",
                                         permutation=[2, 0, 1])])
    torch.testing.assert_close(gin(given)[0], out[1], atol=1e-5, rtol=1e-5)
    alone = collate_graphs(recs[2:])
    torch.testing.assert_close(gin(alone)[0], out[2], atol=1e-5, rtol=1e-5)


def test_graph_text_of_a_triangle() -> None:
    rec = graph_record(triangle(), 0, node_order="given")
    assert graph_text(rec.labels, rec.adj, ["C", "N", "O"]) == (
        "graph of 3 nodes. nodes: 0 c, 1 c, 2 n. edges: 0 - 1, 0 - 2, 1 - 2.")
    single = graph_record(data(1, [], [2]), 0)
    assert graph_text(single.labels, single.adj) == "graph of 1 nodes. nodes: 0 label 2. edges: none."


# -- the estimator -----------------------------------------------------------------------------------
@pytest.mark.parametrize("encoder", ["node-tokens", "gin-prefix", "text"])
def test_fit_trains_only_its_parts_and_save_load_is_identical(
    encoder: str, minilm_tokenizer: Any, tmp_path: Path
) -> None:
    bb = make_tiny_bert(minilm_tokenizer)
    before = state_snapshot(bb)
    graphs, y = cycles_and_paths()
    kept = copy.deepcopy(graphs)
    clf = GraphClassifier(backbone=bb, encoder=encoder, gnn_hidden=8, gnn_layers=2, **FAST)
    assert GraphClassifier().encoder == "gin-prefix"  # the default, chosen by inner validation
    assert clf.fit(graphs, y) is clf
    assert_unchanged(bb, before)
    for a, b in zip(graphs, kept, strict=True):  # the caller's graphs are untouched
        assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x)
    proba = clf.predict_proba(graphs)
    assert proba.shape == (16, 2) and np.allclose(proba.sum(1), 1.0, atol=1e-5)
    assert np.ptp(proba[:, 0]) > 0
    d = bb.hidden_size
    f = 3 + 7 + 8  # labels, degree one-hot (0..6), 8 random-walk steps
    expected = {"node-tokens": f * d + d, "text": 0,
                # GIN MLPs (F -> 8 -> 8, then 8 -> 8 -> 8), the projection of F + 2 * 8 pooled to 4 tokens
                "gin-prefix": (f * 8 + 8 + 8 * 8 + 8) + (8 * 8 + 8) * 2 + (f + 2 * 8) * 4 * d + 4 * d,
                }[encoder]
    assert clf.num_trainable() == expected + d * 2 + 2  # the linear head
    clf.save(tmp_path / "ckpt")
    loaded = xdomain.load(tmp_path / "ckpt", backbone=bb)
    assert type(loaded) is GraphClassifier
    np.testing.assert_array_equal(loaded.predict_proba(graphs), proba)
    again = clone(clf).fit(graphs, y)  # the same seed, the same model
    np.testing.assert_array_equal(again.predict_proba(graphs), proba)


def test_labels_from_the_graphs_and_networkx_input(tiny_bert: Any) -> None:
    import networkx as nx

    graphs, y = cycles_and_paths()
    a = GraphClassifier(backbone=tiny_bert, **NODES).fit(graphs, y)
    b = GraphClassifier(backbone=tiny_bert, **NODES).fit(graphs)  # y from .y
    np.testing.assert_array_equal(a.predict_proba(graphs), b.predict_proba(graphs))
    assert a.classes_.tolist() == [0, 1]
    nxg = []
    for g in graphs:
        h = nx.Graph()
        for v in range(g.num_nodes):
            h.add_node(v, x=g.x[v].tolist())
        h.add_edges_from(g.edge_index.t().tolist())
        h.graph["y"] = int(g.y)
        nxg.append(h)
    np.testing.assert_allclose(b.predict_proba(nxg), b.predict_proba(graphs), atol=1e-6)
    assert b.score(nxg) == b.score(graphs, y)


def test_label_mapping_head_over_the_vocabulary(minilm_tokenizer: Any) -> None:
    mlm = make_tiny_masked_lm(minilm_tokenizer)
    graphs, y = cycles_and_paths()
    text = GraphClassifier(backbone=mlm, encoder="text", head="label-mapping", **FAST).fit(graphs, y)
    assert text.num_trainable() == 0 and text.history_.stopped == "nothing to train"
    nodes = GraphClassifier(backbone=mlm, head="label-mapping", **NODES).fit(graphs, y)
    assert nodes.num_trainable() == 18 * mlm.hidden_size + mlm.hidden_size  # the node tokens only
    assert nodes.predict_proba(graphs).shape == (16, 2)


def test_no_backbone_ablation_keeps_the_transformation(tiny_bert: Any) -> None:
    graphs, y = cycles_and_paths()
    with_lm = GraphClassifier(backbone=tiny_bert, **NODES).fit(graphs, y)
    without = GraphClassifier(backbone=tiny_bert, no_backbone=True, **NODES).fit(graphs, y)
    assert without.num_trainable() == with_lm.num_trainable()
    assert type(without.model_.backbone).__name__ == "IdentityBackbone"
    assert not np.allclose(without.predict_proba(graphs), with_lm.predict_proba(graphs))


def test_clone_and_cross_val_score(tiny_bert: Any) -> None:
    graphs, y = cycles_and_paths(6)
    est = GraphClassifier(backbone=tiny_bert, **FAST)
    scores = cross_val_score(est, graphs, y, cv=StratifiedKFold(3))
    assert scores.shape == (3,) and ((0 <= scores) & (scores <= 1)).all()
    assert not hasattr(est, "model_")


def test_shuffled_node_order_with_a_canonical_order(tiny_bert: Any) -> None:
    graphs, y = cycles_and_paths()
    clf = GraphClassifier(backbone=tiny_bert, **NODES).fit(graphs, y)
    p = clf.predict_proba(graphs)
    # WL colours tell apart every node of these chains (labels random), but not mirror-image ties
    shuffled = clf.predict_proba_permuted(graphs, seed=1)
    assert shuffled.shape == p.shape and np.isfinite(shuffled).all()
    given = GraphClassifier(backbone=tiny_bert, node_order="given", **NODES).fit(graphs, y)
    assert given.predict_proba_permuted(graphs, seed=1).shape == p.shape


# -- bad inputs: a clear error naming the value; nothing modified ---------------------------------------
def _bad(tiny_bert: Any, graphs: list[Any], message: str, y: Any = None, **params: Any) -> None:
    kept = copy.deepcopy(graphs)
    with pytest.raises(ValueError, match=message):
        GraphClassifier(backbone=tiny_bert, **{**NODES, **params}).fit(graphs, y)
    for a, b in zip(graphs, kept, strict=True):
        assert a.num_nodes == b.num_nodes
        assert torch.equal(a.edge_index, b.edge_index)
        assert (a.x is None and b.x is None) or torch.equal(a.x, b.x) or (
            torch.isnan(a.x).any() and torch.isnan(b.x).any())


def test_bad_graphs_are_clear_errors(tiny_bert: Any) -> None:
    from torch_geometric.data import Data

    good, y = cycles_and_paths(2)
    empty = Data(x=torch.zeros(0, 3), edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=0)
    _bad(tiny_bert, [*good, empty], r"graph 4 has no nodes", [*y, 0])
    far = data(3, [(0, 5)], [0, 1, 2])
    _bad(tiny_bert, [*good, far],
         r"graph 4 has edge_index values from 0 to 5; expected node indices in \[0, 3\)",
         [*y, 0])
    flat = Data(x=torch.eye(3), edge_index=torch.tensor([0, 1, 1, 2]), num_nodes=3)
    _bad(tiny_bert, [*good, flat], r"graph 4 has edge_index of shape \(4,\); expected \(2, num_edges\)",
         [*y, 0])
    wide = data(3, [(0, 1)], [0, 1, 2], n_labels=5)
    _bad(tiny_bert, [*good, wide], r"graph 4 has 20 node features .* graph 0 has 18; expected one node",
         [*y, 0])
    nan = path()
    nan.x = nan.x.clone()
    nan.x[1, 2] = math.nan
    _bad(tiny_bert, [*good, nan], r"graph 4 has NaN or infinite node features \(x\[1, 2\] = nan\)", [*y, 0])
    bare = data(3, [(0, 1), (1, 2)])
    _bad(tiny_bert, [*good, bare], r"graph 4 has no node features \(x is None\); pass features='structure'",
         [*y, 0])
    # structural features only, when asked: graphs without x are fine
    ok = GraphClassifier(backbone=tiny_bert, features="structure", **NODES).fit([*good, bare], [*y, 0])
    assert ok.node_features_ == 15
    _bad(tiny_bert, [*good, path()], r"graphs \[4\] have no label \(.y is None\); pass y=")
    big = data(40, [(v, v + 1) for v in range(39)], [0] * 40)
    small_positions = make_tiny_bert(tiny_bert.tokenizer, max_position_embeddings=32)
    with pytest.raises(ValueError, match=r"graph 4 has 40 nodes, more than the 32 positions .*too_large="):
        GraphClassifier(backbone=small_positions, **NODES).fit([*good, big], [*y, 0])
    cut = GraphClassifier(backbone=small_positions, too_large="truncate", **NODES).fit([*good, big], [*y, 0])
    # a GIN prefix has a fixed number of tokens: the same graph fits whatever its size
    gin = GraphClassifier(backbone=small_positions, **FAST).fit([*good, big], [*y, 0])
    assert gin.predict_proba([big]).shape == (1, 2)
    assert cut.predict_proba([big]).shape == (1, 2)
    with pytest.raises(TypeError, match="single Data; wrap one graph in a list"):
        GraphClassifier(backbone=tiny_bert, **FAST).fit(path(y=0))
    with pytest.raises(ValueError, match="encoder must be one of"):
        GraphClassifier(backbone=tiny_bert, encoder="bogus", **FAST).fit(good, y)


def test_predicting_other_features_than_fitted_is_an_error(tiny_bert: Any) -> None:
    graphs, y = cycles_and_paths(2)
    clf = GraphClassifier(backbone=tiny_bert, **NODES).fit(graphs, y)
    with pytest.raises(ValueError, match=r"graphs have 20 node features .* fitted on 18"):
        clf.predict([data(3, [(0, 1)], [0, 1, 2], n_labels=5)])


# -- the TU loader and the folds -----------------------------------------------------------------------
def test_an_unknown_tu_name_offline_names_the_files_to_place(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDOMAIN_OFFLINE", "1")
    expected = r"TU data set 'NOPE' not found: expected the files NOPE_A.txt, NOPE_graph_indicator.txt, "
    with pytest.raises(DataNotFoundError, match=expected + r"NOPE_graph_labels.txt"):
        load_tu("NOPE", home=tmp_path)
    with pytest.raises(ValueError, match="plain name"):
        load_tu("../MUTAG", home=tmp_path)


def test_mutag_loads_into_the_cache_and_the_folds_are_the_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = require_data(MUTAG_FILE).parent
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = sorted(p.name for p in raw.parent.iterdir())
    from xdomain.datasets.graphs import graph_folds, isomorphism_groups, load_tu

    ds = load_tu("MUTAG")
    assert len(ds) == 188 and ds.num_node_features == 7
    assert (tmp_path / "cache" / "xdomain" / "TUDataset" / "MUTAG" / "processed").is_dir()
    assert sorted(p.name for p in raw.parent.iterdir()) == before  # nothing written into the data home
    groups = isomorphism_groups(ds)
    assert len(groups) - len(set(groups.tolist())) == 13  # MUTAG's isomorphic duplicates
    y = ds.y.numpy()
    folds = graph_folds(ds, y)
    assert len(folds) == 10
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(188))  # disjoint, every graph tested once
    for tr, te in folds:
        assert set(tr.tolist()).isdisjoint(te.tolist()) and len(tr) + len(te) == 188
        assert abs(y[te].mean() - y.mean()) < 0.1  # stratified
        assert set(groups[tr].tolist()).isdisjoint(groups[te].tolist())  # duplicates in one fold
    again = graph_folds(ds, y)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))  # fixed


@pytest.mark.slow
def test_minilm_on_real_mutag_beats_the_majority_class(minilm: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    require_data(MUTAG_FILE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    from xdomain.datasets.graphs import graph_folds, load_tu

    ds = load_tu("MUTAG")
    y = ds.y.numpy()
    tr, te = graph_folds(ds, y)[0]
    before = state_snapshot(minilm)
    clf = GraphClassifier(backbone=minilm, epochs=15, patience=15).fit(ds[tr])  # the default: a GIN prefix
    assert_unchanged(minilm, before)
    majority = max(y[te].mean(), 1 - y[te].mean())
    assert clf.score(ds[te]) > majority
    assert isinstance(clf.model_.transform, GINPrefixTransform)
    assert clf.num_trainable() > 0 and clf.predict_proba_permuted(ds[te]).shape == (len(te), 2)

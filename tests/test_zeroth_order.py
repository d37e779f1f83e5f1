"""BAR's zeroth-order trainer and the black-box view of a frozen classifier (tiny models, CPU, fast)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from xdomain.backbones.base import FrozenBackbone
from xdomain.backbones.black_box import BlackBoxBackbone
from xdomain.config import TrainConfig
from xdomain.registry import BACKBONES
from xdomain.training.zeroth_order import (
    ZerothOrderTrainer,
    unit_directions,
    zeroth_order_gradient,
)

torch.set_num_threads(1)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float) -> None:
    # torch.testing.assert_close imports the compiler stack on first use (about 2 s)
    assert actual.shape == expected.shape
    assert float((actual.double() - expected.double()).abs().max()) <= atol


class TinySourceBackbone(FrozenBackbone):
    """f: a fixed random linear "source classifier" over 8-sample waveforms with 6 source classes."""

    input_kind = "waveform"
    output_kind = "logits"
    num_outputs = 6
    input_length = 8
    sample_rate = 8000

    def __init__(self, seed: int = 0, output_kind: str = "logits") -> None:
        super().__init__(name="tiny-source")
        self.output_kind = output_kind
        self.source_labels = ["a", "b", "c", "d", "e", "f"]
        generator = torch.Generator().manual_seed(seed)
        self.linear = nn.Linear(8, 6)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(6, 8, generator=generator))
            self.linear.bias.copy_(torch.randn(6, generator=generator))
        self.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return self.linear(x)


class AdditiveProgram(nn.Module):
    """I: x + W, W trainable (zeros at start)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.delta


class PickHead(nn.Module):
    """O: target class k reads source score ``index[k]`` (fixed one-to-one label mapping)."""

    index: torch.Tensor

    def __init__(self, index: tuple[int, ...] = (0, 1)) -> None:
        super().__init__()
        self.register_buffer("index", torch.tensor(index))

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return scores[:, self.index]


def program(model: nn.Sequential) -> torch.Tensor:
    """W of the additive program at the front of ``model``."""
    first = model[0]
    assert isinstance(first, AdditiveProgram)
    return first.delta


def black_box_model(seed: int = 0) -> tuple[nn.Sequential, TinySourceBackbone, BlackBoxBackbone]:
    source = TinySourceBackbone(seed)
    box = BlackBoxBackbone(source)
    return nn.Sequential(AdditiveProgram(), box, PickHead()), source, box


def separable_task(source: TinySourceBackbone, n: int = 64, offset: float = 3.0) -> TensorDataset:
    """Two classes split by a margin along the direction that separates source classes 0 and 1, placed
    ``offset`` past the source model's own threshold: a constant shift W solves it, W = 0 does not."""
    v = (source.linear.weight[0] - source.linear.weight[1]).detach()
    c = float(source.linear.bias[0] - source.linear.bias[1])
    unit = v / v.norm()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, 8, generator=generator)
    y = (x @ unit < 0).long()  # class 0 on the positive side
    threshold = offset - c / float(v.norm())
    x = x + (torch.where(y == 0, 0.5, -0.5)[:, None] + threshold) * unit
    return TensorDataset(x, y)


def config(**overrides: object) -> TrainConfig:
    return TrainConfig(**{"batch_size": 16, "lr": 0.2, "progress": False, "seed": 3, **overrides})  # type: ignore[arg-type]


# -- the black box ---------------------------------------------------------------------------------
def test_black_box_returns_detached_log_probabilities() -> None:
    source = TinySourceBackbone()
    box = BlackBoxBackbone(source)
    x = torch.randn(5, 8, requires_grad=True)
    out = box(x)
    assert out.shape == (5, 6)
    assert out.grad_fn is None and not out.requires_grad
    # a downstream softmax recovers exactly the source model's probabilities
    expected = torch.softmax(source(x).detach(), dim=-1)
    assert_close(torch.softmax(out, dim=-1), expected, atol=1e-6)
    assert_close(out.exp().sum(dim=-1), torch.ones(5), atol=1e-6)
    # and no gradient can reach the input through it
    with pytest.raises(RuntimeError):
        out.sum().backward()
    assert x.grad is None


def test_black_box_describes_and_fingerprints_as_the_wrapped_backbone() -> None:
    source = TinySourceBackbone()
    box = BlackBoxBackbone(source)
    for name in ("input_kind", "output_kind", "num_outputs", "sample_rate", "input_length", "image_size",
                 "source_labels", "name"):
        assert getattr(box, name) == getattr(source, name), name
    assert box.spec() == source.spec()
    assert box.fingerprint() == source.fingerprint()
    assert box.fingerprint() != TinySourceBackbone(seed=1).fingerprint()
    assert all(not p.requires_grad for p in box.parameters())
    assert not box.train().training
    assert "black-box" in BACKBONES
    assert isinstance(BACKBONES.build("black-box", backbone=source), BlackBoxBackbone)


def test_black_box_counts_one_query_per_example() -> None:
    box = BlackBoxBackbone(TinySourceBackbone())
    box(torch.randn(3, 8))
    box(torch.randn(5, 8))
    assert box.queries == 8
    box.reset_queries()
    assert box.queries == 0


def test_black_box_refuses_an_embedding_backbone() -> None:
    with pytest.raises(TypeError, match=r"output_kind 'logits'.*'embedding'"):
        BlackBoxBackbone(TinySourceBackbone(output_kind="embedding"))
    with pytest.raises(TypeError, match=r"nn\.Module"):
        BlackBoxBackbone("tiny")  # type: ignore[arg-type]


def test_black_box_rejects_scores_of_the_wrong_shape() -> None:
    box = BlackBoxBackbone(nn.Identity())
    with pytest.raises(ValueError, match=r"\(B, num_outputs\).*got \(2, 3, 4\)"):
        box(torch.zeros(2, 3, 4))
    assert box.queries == 0


# -- the estimate ----------------------------------------------------------------------------------
def quadratic(d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A, b, w of L(w) = 0.5 w^T A w + b^T w with A symmetric positive definite (float64)."""
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(d, d, generator=g, dtype=torch.float64)
    a = m @ m.T / d + torch.eye(d, dtype=torch.float64)
    b = torch.randn(d, generator=g, dtype=torch.float64)
    return a, b, torch.randn(d, generator=g, dtype=torch.float64)


def test_unit_directions_lie_on_the_sphere_and_follow_the_seed() -> None:
    u = unit_directions(7, 5, torch.Generator().manual_seed(4))
    assert u.shape == (7, 5) and u.dtype == torch.float32
    assert_close(u.norm(dim=1), torch.ones(7), atol=1e-6)
    assert torch.equal(u, unit_directions(7, 5, torch.Generator().manual_seed(4)))
    assert not torch.equal(u, unit_directions(7, 5, torch.Generator().manual_seed(5)))
    with pytest.raises(ValueError, match="count=0"):
        unit_directions(0, 5, torch.Generator())


def test_estimate_matches_the_formula_by_hand_on_a_quadratic() -> None:
    # on L(w) = 0.5 w'Aw + b'w: (L(w + beta u) - L(w)) / beta = u'(Aw + b) + beta/2 u'Au exactly, so
    # g = d/q sum_j (u_j'grad + beta/2 u_j'A u_j) u_j with the same directions
    a, b, w = quadratic(6)
    d, q, beta = 6, 3, 0.1
    calls: list[torch.Tensor] = []

    def loss(v: torch.Tensor) -> float:
        calls.append(v.clone())
        return float(0.5 * v @ a @ v + b @ v)

    g, base = zeroth_order_gradient(loss, w, q, beta, torch.Generator().manual_seed(11))
    u = unit_directions(q, d, torch.Generator().manual_seed(11), dtype=torch.float64)
    grad = a @ w + b
    by_hand = sum(((u[j] @ grad + beta / 2 * u[j] @ a @ u[j]) * u[j] for j in range(q)), torch.zeros(d))
    assert_close(g, d / q * by_hand, atol=1e-9)
    assert base == pytest.approx(float(0.5 * w @ a @ w + b @ w), rel=1e-12)
    # L(W) first, then W + beta u_j in turn; W itself untouched
    assert len(calls) == q + 1 and torch.equal(calls[0], w)
    for j in range(q):
        assert_close(calls[j + 1], w + beta * u[j], atol=1e-15)


def test_estimate_points_along_the_true_gradient_in_expectation() -> None:
    a, b, w = quadratic(10, seed=2)
    w.requires_grad_(True)
    loss = 0.5 * w @ a @ w + b @ w
    (true,) = torch.autograd.grad(loss, w)
    w = w.detach()
    g, _ = zeroth_order_gradient(
        lambda v: float(0.5 * v @ a @ v + b @ v), w, 4000, 0.01, torch.Generator().manual_seed(0)
    )
    cosine = float(g @ true / (g.norm() * true.norm()))
    assert cosine > 0.9
    assert float((g - true).norm() / true.norm()) < 0.25  # unbiased up to O(beta): E[d uu'] = I
    # a single direction is a poor estimate: averaging is what makes it work
    g1, _ = zeroth_order_gradient(
        lambda v: float(0.5 * v @ a @ v + b @ v), w, 1, 0.01, torch.Generator().manual_seed(0)
    )
    assert float(g1 @ true / (g1.norm() * true.norm())) < cosine


def test_trainer_estimate_matches_autograd_on_the_white_box_model() -> None:
    # the same composition without the black box, so autograd can give the reference gradient
    source = TinySourceBackbone()
    model = nn.Sequential(AdditiveProgram(), source, PickHead())
    with torch.no_grad():
        program(model).copy_(torch.linspace(-1, 1, 8))
    ds = separable_task(source, n=16)
    x, y = ds.tensors
    loss = nn.functional.cross_entropy(model(x), y)
    (true,) = torch.autograd.grad(loss, [program(model)])
    trainer = ZerothOrderTrainer(model, config(), directions=2000, beta=1e-3)
    g, base = trainer.estimate(x, y)
    assert base == pytest.approx(float(loss.detach()), rel=1e-5)
    assert float(g @ true / (g.norm() * true.norm())) > 0.9
    assert trainer.queries == trainer.train_queries == 2001 * 16


def test_estimate_restores_the_parameters_exactly() -> None:
    model, source, _ = black_box_model()
    with torch.no_grad():
        program(model).copy_(torch.randn(8, generator=torch.Generator().manual_seed(5)) / 3)
    before = program(model).detach().clone()
    x, y = separable_task(source, n=8).tensors
    trainer = ZerothOrderTrainer(model, config(), directions=7, beta=0.37)
    for _ in range(30):
        trainer.estimate(x, y)
    assert torch.equal(program(model), before)  # no drift from add/subtract round trips


def test_a_model_that_edits_its_own_parameters_is_refused() -> None:
    class Drifting(AdditiveProgram):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.delta.data += 1.0
            return x + self.delta

    source = TinySourceBackbone()
    model = nn.Sequential(Drifting(), BlackBoxBackbone(source), PickHead())
    x, y = separable_task(source, n=4).tensors
    with pytest.raises(RuntimeError, match="parameters of Sequential changed during its forward"):
        ZerothOrderTrainer(model, config(), directions=2).estimate(x, y)


# -- losses ----------------------------------------------------------------------------------------
def test_cross_entropy_and_focal_loss_by_hand() -> None:
    model = AdditiveProgram(width=2)  # target scores = x + W, W = 0
    x, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0])
    p = [math.exp(2) / (math.exp(2) + 1), 1 / (1 + math.e)]  # probability of class 0 per example
    ce = ZerothOrderTrainer(model, config()).batch_loss(x, y)
    assert ce == pytest.approx(-(math.log(p[0]) + math.log(p[1])) / 2, rel=1e-6)
    focal = ZerothOrderTrainer(model, config(), loss="focal", focal_gamma=2.0).batch_loss(x, y)
    assert focal == pytest.approx(-sum((1 - pi) ** 2 * math.log(pi) for pi in p) / 2, rel=1e-6)
    no_focus = ZerothOrderTrainer(model, config(), loss="focal", focal_gamma=0.0).batch_loss(x, y)
    assert no_focus == pytest.approx(ce, rel=1e-6)


# -- training --------------------------------------------------------------------------------------
def test_training_through_the_black_box_solves_a_separable_task() -> None:
    model, source, box = black_box_model()
    frozen = {k: v.clone() for k, v in source.state_dict().items()}
    ds = separable_task(source)
    trainer = ZerothOrderTrainer(model, config(epochs=10), directions=5)
    before = trainer.evaluate(ds)
    history = trainer.fit(ds)
    after = trainer.evaluate(ds)
    assert before["accuracy"] < 0.6 and before["loss"] > 2.0
    assert after["accuracy"] == 1.0
    assert after["loss"] < 0.1 * before["loss"]
    assert history.steps == 40 and history.stopped == "epochs"
    assert [r["step"] for r in history.records] == [4.0 * k for k in range(1, 11)]
    assert history.records[-1]["train_loss"] < history.records[0]["train_loss"]
    # the source model is untouched bit for bit, received no gradient, and the program none either
    assert all(torch.equal(v, frozen[k]) for k, v in source.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert box.queries == trainer.queries


def test_queries_are_q_plus_one_per_example_per_step() -> None:
    model, source, box = black_box_model()
    ds = TensorDataset(*(t[:10] for t in separable_task(source).tensors))
    trainer = ZerothOrderTrainer(model, config(batch_size=4, epochs=1, max_steps=1), directions=3)
    trainer.fit(ds)
    assert trainer.queries == trainer.train_queries == box.queries == (3 + 1) * 4

    model, source, box = black_box_model()
    val = TensorDataset(*(t[10:15] for t in separable_task(source).tensors))
    trainer = ZerothOrderTrainer(model, config(batch_size=4, epochs=2, val_every=2, patience=9), directions=3)
    history = trainer.fit(ds, val)
    # batches of 4, 4, 2 per epoch (the last one is not dropped), 6 steps, validations after steps 2, 4, 6
    assert history.steps == 6
    assert trainer.train_queries == (3 + 1) * 10 * 2
    assert trainer.queries == trainer.train_queries + 3 * 5 == box.queries
    # steps 1-2 see 4 + 4 examples, steps 1-4 see 4 + 4 + 2 + 4, steps 1-6 all 20; each validation 5 more
    assert [r["train_queries"] for r in history.records] == [4.0 * 8, 4.0 * 14, 4.0 * 20]
    assert [r["queries"] for r in history.records] == [32.0 + 5, 56.0 + 10, 80.0 + 15]
    assert [r["backbone_queries"] for r in history.records] == [r["queries"] for r in history.records]
    assert all({"val_loss", "val_accuracy"} <= set(r) for r in history.records)


def test_same_seed_same_trained_program() -> None:
    def train(seed: int) -> torch.Tensor:
        model, source, _ = black_box_model()
        ZerothOrderTrainer(model, config(epochs=2, seed=seed), directions=3).fit(separable_task(source))
        return program(model).detach().clone()

    first = train(3)
    assert torch.equal(first, train(3))
    assert not torch.equal(first, train(4))
    assert not torch.equal(first, torch.zeros(8))


def test_early_stopping_restores_the_best_program() -> None:
    # a validation set whose examples are all labelled 0: training moves the decision threshold so that
    # fewer inputs score as class 0, so the validation loss is best at the first validation and only gets
    # worse; training stops `patience` validations later and comes back to step 2
    model, source, _ = black_box_model()
    ds = separable_task(source)
    x, _ = ds.tensors
    zeros = TensorDataset(x, torch.zeros(len(x), dtype=torch.long))
    trainer = ZerothOrderTrainer(model, config(epochs=20, val_every=2, patience=2), directions=3)
    history = trainer.fit(ds, zeros)
    assert history.stopped == "early stopping"
    assert history.best_step == 2 and history.steps == 6
    val_losses = [r["val_loss"] for r in history.records]
    assert val_losses[0] == min(val_losses) == history.best_val_loss
    assert trainer.evaluate(zeros)["loss"] == pytest.approx(history.best_val_loss, rel=1e-6)

    # the restored program is the one a run stopped at step 2 ends with
    again, source_again, _ = black_box_model()
    ZerothOrderTrainer(again, config(epochs=20, max_steps=2), directions=3).fit(separable_task(source_again))
    assert torch.equal(program(model), program(again))


def test_evaluate_covers_every_example() -> None:
    model, source, box = black_box_model()
    ds = TensorDataset(*(t[:10] for t in separable_task(source).tensors))
    trainer = ZerothOrderTrainer(model, config(eval_batch_size=4))
    result = trainer.evaluate(ds)
    x, y = ds.tensors
    scores = model(x)
    assert result["n"] == 10.0 and box.queries == 20  # 10 from evaluate, 10 from the reference pass
    assert result["accuracy"] == pytest.approx(float((scores.argmax(1) == y).float().mean()))
    assert result["loss"] == pytest.approx(float(nn.functional.cross_entropy(scores, y)), rel=1e-6)


# -- bad input -------------------------------------------------------------------------------------
def test_a_model_without_trainable_parameters_is_refused() -> None:
    source = TinySourceBackbone()
    model = nn.Sequential(BlackBoxBackbone(source), PickHead())
    trainer = ZerothOrderTrainer(model, config())
    with pytest.raises(ValueError, match="no trainable parameters"):
        trainer.fit(separable_task(source, n=8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"directions": 0}, "directions must be a positive integer, got 0"),
        ({"beta": 0.0}, "beta must be a positive number, got 0.0"),
        ({"loss": "mse"}, r"loss must be one of .*got 'mse'"),
        ({"focal_gamma": -1.0}, "focal_gamma must be a number >= 0, got -1.0"),
        ({"lr_decay": 1.5}, r"lr_decay must be in \(0, 1\], got 1.5"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ZerothOrderTrainer(AdditiveProgram(), config(), **kwargs)  # type: ignore[arg-type]


def test_bad_labels_are_refused() -> None:
    model, source, _ = black_box_model()
    x, y = separable_task(source, n=4).tensors
    trainer = ZerothOrderTrainer(model, config())
    with pytest.raises(TypeError, match=r"integer class indices, got dtype torch\.float32"):
        trainer.batch_loss(x, y.float())
    with pytest.raises(ValueError, match=r"class indices in \[0, 1\].*got values in \[0, 2\]"):
        trainer.batch_loss(x, torch.tensor([0, 1, 2, 0]))
    flat = nn.Sequential(AdditiveProgram(), nn.Flatten(0))
    with pytest.raises(ValueError, match=r"target scores \(B, C\) with B = 4, got \(32,\)"):
        ZerothOrderTrainer(flat, config()).batch_loss(x, y)

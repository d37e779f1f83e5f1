"""O: label mapping heads (random, FLM, ILM, BLM, BLM+), checked against hand-worked cases."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from xdomain.heads.label_mapping import (
    LabelMappingHead,
    bayesian_omega,
    greedy_assignment,
    random_assignment,
)
from xdomain.registry import HEADS


def classifier(num_outputs: int) -> SimpleNamespace:
    return SimpleNamespace(output_kind="logits", num_outputs=num_outputs)


def logits_for_counts(counts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen-model outputs whose (argmax source, target) counts are exactly ``counts (S, T)``."""
    rows, labels = [], []
    num_sources = len(counts)
    for s, row in enumerate(counts):
        for t, n in enumerate(row):
            for _ in range(n):
                rows.append(3.0 * F.one_hot(torch.tensor(s), num_sources).float() - 1.0)
                labels.append(t)
    return torch.stack(rows), torch.tensor(labels)


def as_mapping(assigned: torch.Tensor) -> dict[int, list[int]]:
    return {t: torch.nonzero(assigned[:, t]).flatten().tolist() for t in range(assigned.shape[1])}


# -- FLM / ILM: greedy assignment ------------------------------------------------------------------
GREEDY_COUNTS = [
    [7, 8, 0],  # s0 is the best source of t0 and t1; t1's 8 is the largest count, so s0 goes to t1
    [6, 1, 0],
    [0, 0, 3],  # s2 and s3 tie for t2: the lower source index wins
    [1, 2, 3],
]


def test_greedy_takes_the_largest_count_first_and_breaks_ties_by_lowest_index() -> None:
    assigned = greedy_assignment(torch.tensor(GREEDY_COUNTS))
    # 8 at (s0, t1) first; then 6 at (s1, t0); then t2: s2 = s3 = 3, the lower source index wins
    assert as_mapping(assigned) == {0: [1], 1: [0], 2: [2]}
    assert assigned.sum(dim=0).tolist() == [1, 1, 1]
    assert assigned.sum(dim=1).tolist() == [1, 1, 1, 0]


def test_greedy_ties_between_targets_go_to_the_lowest_target() -> None:
    # s0 scores 4 for both targets: the first maximum in row-major order is (s0, t0)
    assert as_mapping(greedy_assignment(torch.tensor([[4, 4], [1, 0], [0, 2]]))) == {0: [0], 1: [2]}
    # all counts zero: (s0, t0), then (s1, t1)
    assert as_mapping(greedy_assignment(torch.zeros(3, 2))) == {0: [0], 1: [1]}


def test_greedy_many_to_one_assigns_in_rounds() -> None:
    counts = torch.tensor([[9, 1], [8, 7], [0, 6], [5, 0], [1, 2]])
    # round 1: 9 -> (s0, t0), then t1's best free source is s1 (7)
    # round 2 on s2, s3, s4: 6 -> (s2, t1), then t0's best is s3 (5)
    # (a capacity greedy would have given s0 and s1 both to t0)
    assert as_mapping(greedy_assignment(counts, sources_per_class=2)) == {0: [0, 3], 1: [1, 2]}
    assert counts.tolist()[0] == [9, 1]  # the input is not modified


def test_flm_head_fits_the_greedy_mapping_from_frozen_outputs() -> None:
    head = LabelMappingHead(num_classes=3, method="flm").bind(classifier(4))
    logits, targets = logits_for_counts(GREEDY_COUNTS)
    head.fit_mapping(logits, targets)
    assert head.mapping() == {0: [1], 1: [0], 2: [2]}
    expected = torch.zeros(4, 3)
    expected[1, 0] = expected[0, 1] = expected[2, 2] = 1.0
    assert torch.equal(head.omega, expected)


def test_ilm_many_to_one_omega_averages_two_sources() -> None:
    head = LabelMappingHead(num_classes=2, method="ilm", sources_per_class=2).bind(classifier(5))
    head.fit_mapping(*logits_for_counts([[9, 1], [8, 7], [0, 6], [5, 0], [1, 2]]))
    assert head.mapping() == {0: [0, 3], 1: [1, 2]}
    expected = torch.tensor([[0.5, 0.0], [0.0, 0.5], [0.0, 0.5], [0.5, 0.0], [0.0, 0.0]])
    assert torch.equal(head.omega, expected)


# -- BLM / BLM+ --------------------------------------------------------------------------------------
BLM_COUNTS = [[2, 1], [0, 1], [1, 0]]  # (S=3, T=2)


def test_bayesian_omega_by_hand() -> None:
    # smoothing 1: rows / (row sum + 1) = [2/4, 1/4], [0/2, 1/2], [1/2, 0/2];
    # column sums 1 and 3/4 -> omega = [1/2, 1/3], [0, 2/3], [1/2, 0]
    omega = bayesian_omega(torch.tensor(BLM_COUNTS, dtype=torch.float64), smoothing=1.0)
    expected = torch.tensor([[1 / 2, 1 / 3], [0.0, 2 / 3], [1 / 2, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(omega, expected)
    # no smoothing: rows [2/3, 1/3], [0, 1], [1, 0]; column sums 5/3, 4/3
    omega0 = bayesian_omega(torch.tensor(BLM_COUNTS, dtype=torch.float64), smoothing=0.0)
    expected0 = torch.tensor([[0.4, 0.25], [0.0, 0.75], [0.6, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(omega0, expected0)


def test_bayesian_omega_keeps_a_never_predicted_source_at_zero() -> None:
    counts = torch.tensor([[2.0, 1.0], [0.0, 0.0], [1.0, 3.0]])
    for smoothing in (0.0, 1.0):
        omega = bayesian_omega(counts, smoothing)
        assert torch.isfinite(omega).all()
        assert omega[1].tolist() == [0.0, 0.0]
        torch.testing.assert_close(omega.sum(dim=0), torch.ones(2, dtype=torch.float64))


def test_blm_head_fits_the_hand_computed_omega() -> None:
    head = LabelMappingHead(num_classes=2, method="blm").bind(classifier(3))
    head.fit_mapping(*logits_for_counts(BLM_COUNTS))
    expected = torch.tensor([[1 / 2, 1 / 3], [0.0, 2 / 3], [1 / 2, 0.0]])
    torch.testing.assert_close(head.omega, expected)
    # heaviest source first
    assert head.mapping() == {0: [0, 2], 1: [1, 0]}


def test_blm_plus_top2_by_hand() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3], [0.25, 0.15, 0.6]], dtype=torch.float64)
    targets = torch.tensor([0, 1, 0])
    # top-2 mass: x0 -> (0.5, 0.3, 0), x1 -> (0, 0.6, 0.3), x2 -> (0.25, 0, 0.6)
    # joint (S, T): s0 (0.75, 0), s1 (0.3, 0.6), s2 (0.6, 0.3); / (row sum + 1):
    # s0 (3/7, 0), s1 (3/19, 6/19), s2 (6/19, 3/19); column sums 120/133, 9/19
    expected = torch.tensor([[57 / 120, 0.0], [21 / 120, 2 / 3], [42 / 120, 1 / 3]])
    head = LabelMappingHead(num_classes=2, method="blm+", top_k=2).bind(classifier(3))
    head.fit_mapping(probs.log(), targets)
    torch.testing.assert_close(head.omega, expected)
    # top_k = 3 keeps all the mass and gives a different omega
    full = LabelMappingHead(num_classes=2, method="blm+", top_k=3).bind(classifier(3))
    full.fit_mapping(probs.log(), targets)
    assert not torch.allclose(full.omega, expected)


def test_blm_plus_default_top_k_follows_the_official_ratio() -> None:
    logits = torch.randn(40, 30, generator=torch.Generator().manual_seed(0))
    targets = torch.arange(40) % 20
    # T = 20: top_k = floor(0.15 * 20) = 3
    default = LabelMappingHead(num_classes=20, method="blm+").bind(classifier(30))
    explicit = LabelMappingHead(num_classes=20, method="blm+", top_k=3).bind(classifier(30))
    default.fit_mapping(logits, targets)
    explicit.fit_mapping(logits, targets)
    assert torch.equal(default.omega, explicit.omega)


def test_blm_allows_more_targets_than_sources() -> None:
    head = LabelMappingHead(num_classes=4, method="blm").bind(classifier(3))
    logits = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    head.fit_mapping(logits, torch.tensor([0, 1, 2, 3, 0, 1, 2, 3]))
    torch.testing.assert_close(head.omega.sum(dim=0), torch.ones(4))


def test_blm_needs_every_target_class() -> None:
    head = LabelMappingHead(num_classes=3, method="blm").bind(classifier(4))
    with pytest.raises(ValueError, match=r"target classes \[2\] have no example"):
        head.fit_mapping(torch.randn(4, 4), torch.tensor([0, 1, 1, 0]))


# -- random mapping ------------------------------------------------------------------------------------
def test_random_mapping_is_seeded_disjoint_and_many_to_one() -> None:
    a = LabelMappingHead(num_classes=3, method="random", sources_per_class=2, seed=5).bind(classifier(20))
    b = LabelMappingHead(num_classes=3, method="random", sources_per_class=2, seed=5).bind(classifier(20))
    c = LabelMappingHead(num_classes=3, method="random", sources_per_class=2, seed=6).bind(classifier(20))
    assert torch.equal(a.omega, b.omega)
    assert a.mapping() == b.mapping()
    assert a.mapping() != c.mapping()
    assert (a.omega > 0).sum(dim=1).max() == 1  # no source serves two targets
    assert a.omega.sum(dim=0).tolist() == [1.0, 1.0, 1.0]
    assert sorted(a.omega.unique().tolist()) == [0.0, 0.5]
    assert all(len(sources) == 2 for sources in a.mapping().values())
    before = a.omega.clone()
    a.fit_mapping(torch.randn(6, 20), torch.tensor([0, 1, 2, 0, 1, 2]))  # a no-op for "random"
    assert torch.equal(a.omega, before)


def test_random_assignment_function() -> None:
    assigned = random_assignment(10, 4, 2, seed=0)
    assert assigned.shape == (10, 4)
    assert assigned.sum(dim=0).tolist() == [2, 2, 2, 2]
    assert assigned.sum(dim=1).max() == 1
    assert torch.equal(assigned, random_assignment(10, 4, 2, seed=0))


def test_the_other_methods_start_from_the_random_mapping() -> None:
    random = LabelMappingHead(num_classes=3, method="random", seed=3).bind(classifier(8))
    ilm = LabelMappingHead(num_classes=3, method="ilm", seed=3).bind(classifier(8))
    assert torch.equal(random.omega, ilm.omega)


# -- forward -------------------------------------------------------------------------------------------
def test_forward_is_the_log_of_averaged_source_probabilities() -> None:
    head = LabelMappingHead(num_classes=2, method="flm", sources_per_class=2).bind(classifier(4))
    head.fit_mapping(*logits_for_counts([[5, 0], [0, 5], [4, 0], [0, 4]]))
    assert head.mapping() == {0: [0, 2], 1: [1, 3]}
    logits = torch.tensor([[0.1, 0.2, 0.3, 0.4]]).log() + 7.0  # softmax is shift-invariant
    scores = head(logits)
    # t0: (0.1 + 0.3) / 2 = 0.2; t1: (0.2 + 0.4) / 2 = 0.3
    torch.testing.assert_close(scores, torch.tensor([[math.log(0.2), math.log(0.3)]]))
    # cross-entropy is minus the log of the mapped probability renormalised over targets: 0.3 / 0.5
    loss = F.cross_entropy(scores, torch.tensor([1]))
    torch.testing.assert_close(loss, torch.tensor(-math.log(0.6)))


def test_forward_is_finite_when_mapped_probability_underflows() -> None:
    head = LabelMappingHead(num_classes=2, method="flm").bind(classifier(3))
    head.fit_mapping(*logits_for_counts([[3, 0], [0, 3], [0, 0]]))
    scores = head(torch.tensor([[0.0, -1e4, 0.0]]))  # target 1's only source has probability 0
    assert torch.isfinite(scores).all()
    assert scores[0, 1] < -80
    torch.testing.assert_close(scores[0, 0], torch.tensor(math.log(0.5)))


def test_gradient_reaches_the_logits_not_omega() -> None:
    head = LabelMappingHead(num_classes=3, method="random").bind(classifier(6))
    logits = torch.randn(4, 6, requires_grad=True)
    F.cross_entropy(head(logits), torch.tensor([0, 1, 2, 0])).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert not head.omega.requires_grad


def test_half_precision_logits_give_float32_scores() -> None:
    head = LabelMappingHead(num_classes=2, method="random").bind(classifier(4))
    out = head(torch.zeros(2, 4, dtype=torch.float16))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.full((2, 2), math.log(0.25)))


# -- the buffer, flags, registry ------------------------------------------------------------------------
def test_omega_is_a_saved_buffer_not_a_parameter() -> None:
    head = LabelMappingHead(num_classes=2, method="blm").bind(classifier(3))
    head.fit_mapping(*logits_for_counts(BLM_COUNTS))
    assert list(head.parameters()) == []
    assert set(head.state_dict()) == {"omega"}
    fresh = LabelMappingHead(num_classes=2, method="blm").bind(classifier(3))
    assert not torch.equal(fresh.omega, head.omega)
    fresh.load_state_dict(head.state_dict())
    assert torch.equal(fresh.omega, head.omega)


@pytest.mark.parametrize(
    ("method", "refit"),
    [("random", False), ("flm", False), ("ilm", True), ("blm", True), ("blm+", True)],
)
def test_refit_each_epoch(method: str, refit: bool) -> None:
    assert LabelMappingHead(num_classes=2, method=method).refit_each_epoch is refit


def test_registered_by_name() -> None:
    head = HEADS.build("label-mapping", num_classes=3, method="flm")
    assert isinstance(head, LabelMappingHead)
    assert head.method == "flm"


def test_bind_is_idempotent_and_keeps_the_fitted_mapping() -> None:
    head = LabelMappingHead(num_classes=3, method="flm").bind(classifier(4))
    head.fit_mapping(*logits_for_counts(GREEDY_COUNTS))
    fitted = head.omega.clone()
    assert head.bind(classifier(4)) is head
    assert torch.equal(head.omega, fitted)
    with pytest.raises(ValueError, match="bound to a backbone with 4 source classes; got another with 5"):
        head.bind(classifier(5))


# -- errors ------------------------------------------------------------------------------------------
def test_one_to_one_needs_enough_source_classes() -> None:
    with pytest.raises(ValueError, match=r"T=5 target classes.*only S=4.*LinearHead"):
        LabelMappingHead(num_classes=5, method="ilm").bind(classifier(4))
    with pytest.raises(ValueError, match=r"sources_per_class=3.*only S=8.*at most 2"):
        LabelMappingHead(num_classes=3, method="random", sources_per_class=3).bind(classifier(8))


def test_embedding_backbone_is_refused() -> None:
    backbone = SimpleNamespace(output_kind="embedding", num_outputs=256)
    with pytest.raises(ValueError, match=r"classifier backbone.*'embedding'.*LinearHead"):
        LabelMappingHead(num_classes=2).bind(backbone)
    with pytest.raises(ValueError, match=r"output_kind=None.*LinearHead"):
        LabelMappingHead(num_classes=2).bind(SimpleNamespace(hidden_size=32))


def test_fewer_than_two_target_classes_is_refused() -> None:
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2, got 1"):
        LabelMappingHead(num_classes=1).bind(classifier(6))


def test_bad_method_name_is_refused() -> None:
    head = LabelMappingHead(num_classes=2, method="bayes")
    with pytest.raises(ValueError, match=r"unknown label-mapping method 'bayes'.*'blm\+'"):
        head.bind(classifier(6))
    with pytest.raises(ValueError, match="unknown label-mapping method 'bayes'"):
        _ = head.refit_each_epoch


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="sources_per_class must be an integer >= 1, got 0"):
        LabelMappingHead(num_classes=2, sources_per_class=0).bind(classifier(6))
    with pytest.raises(ValueError, match=r"top_k must be an integer in \[1, 6\], got 7"):
        LabelMappingHead(num_classes=2, method="blm+", top_k=7).bind(classifier(6))
    with pytest.raises(ValueError, match="smoothing must be >= 0, got -1"):
        LabelMappingHead(num_classes=2, method="blm", smoothing=-1.0).bind(classifier(6))


def test_use_before_bind_is_refused() -> None:
    head = LabelMappingHead(num_classes=2)
    with pytest.raises(RuntimeError, match=r"not bound.*bind"):
        head(torch.randn(2, 6))
    with pytest.raises(RuntimeError, match="not bound"):
        head.fit_mapping(torch.randn(2, 6), torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="not bound"):
        head.mapping()


def test_bad_shapes_and_targets_are_refused() -> None:
    head = LabelMappingHead(num_classes=2, method="flm").bind(classifier(6))
    with pytest.raises(ValueError, match=r"source_logits must be \(B, 6\), got shape \(2, 5\)"):
        head(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"source_logits must be \(N, 6\), got shape \(3, 6, 1\)"):
        head.fit_mapping(torch.randn(3, 6, 1), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match=r"targets must be \(N,\) = \(3,\), got shape \(2,\)"):
        head.fit_mapping(torch.randn(3, 6), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match=r"integer class labels, got dtype torch\.float32"):
        head.fit_mapping(torch.randn(2, 6), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 2\), got values in \[1, 2\]"):
        head.fit_mapping(torch.randn(2, 6), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        head.fit_mapping(torch.full((2, 6), float("nan")), torch.tensor([0, 1]))


def test_greedy_refuses_too_few_sources() -> None:
    with pytest.raises(ValueError, match="need 6 source classes, but there are only 5"):
        greedy_assignment(torch.zeros(5, 3), sources_per_class=2)


def test_with_a_frozen_classifier_backbone_and_an_additive_program() -> None:
    from torch import nn

    from xdomain.backbones.base import FrozenBackbone

    class TinyClassifier(FrozenBackbone):
        output_kind = "logits"
        num_outputs = 6
        input_length = 8

        def __init__(self) -> None:
            super().__init__("tiny")
            torch.manual_seed(0)
            self.net = nn.Linear(8, 6)
            self.freeze()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    backbone = TinyClassifier()
    head = LabelMappingHead(num_classes=3, method="ilm").bind(backbone)
    program = nn.Parameter(torch.zeros(8))
    x = torch.randn(12, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(12) % 3
    with torch.no_grad():
        head.fit_mapping(backbone(x + program), y)
    sources = [s for assigned in head.mapping().values() for s in assigned]
    assert len(sources) == len(set(sources)) == 3  # one-to-one
    loss = F.cross_entropy(head(backbone(x + program)), y)
    loss.backward()
    assert program.grad is not None and program.grad.abs().sum() > 0
    assert all(p.grad is None for p in backbone.parameters())

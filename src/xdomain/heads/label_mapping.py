"""O: label mapping, reading a frozen classifier's source classes as target classes.

A frozen classifier (a pitch CNN with 360 pitch bins, an ImageNet model with 1000 classes) scores
``S`` source classes. A label mapping ``omega (S, T)`` turns its source probabilities into ``T`` target
scores without a trained layer: ``p_target = softmax(source_logits) @ omega``. Five ways to choose
``omega`` are implemented, from the visual-reprogramming literature:

- ``"random"``: a fixed seeded assignment of ``sources_per_class`` distinct source classes to each
  target class, their probabilities averaged (the many-to-one mapping of Voice2Series, Yang et al.,
  ICML 2021);
- ``"flm"``: frequency label mapping, computed once before training from the frozen model's
  predictions on the training set (Chen et al., "Understanding and Improving Visual Prompting: A
  Label-Mapping Perspective", CVPR 2023; BAR, Tsai et al., ICML 2020, for the many-to-one variant);
- ``"ilm"``: iterative label mapping, the same computation redone every epoch as the program learns
  (Chen et al., CVPR 2023);
- ``"blm"`` and ``"blm+"``: Bayesian-guided label mapping, a real-valued ``omega`` from the joint
  frequencies of source predictions and target labels (Cai et al., "Bayesian-guided Label Mapping for
  Visual Reprogramming", NeurIPS 2024), also recomputed every epoch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xdomain.registry import HEADS

METHODS = ("random", "flm", "ilm", "blm", "blm+")
# what a classifier's ``mapping=`` accepts: a label mapping, or a trained linear head (LinearHead)
MAPPINGS = (*METHODS, "linear")
_HARD_METHODS = ("random", "flm", "ilm")  # one-to-one / many-to-one assignments
_REFIT_METHODS = ("ilm", "blm", "blm+")
# BLM+'s official configuration keeps the top 15% of the target-class count (at least one)
_BLM_PLUS_TOPK_RATIO = 0.15


def random_assignment(num_sources: int, num_classes: int, sources_per_class: int, seed: int) -> torch.Tensor:
    """A seeded random many-to-one assignment: ``(S, T)`` bool, ``sources_per_class`` sources per column.

    Target ``t`` gets the entries ``t*k ... t*k + k - 1`` of a seeded permutation of the source classes,
    so the sources of different targets are disjoint. When ``T * k > S`` (possible only for the Bayesian
    methods, whose fitted ``omega`` does not need disjoint sources) the permutation is reused cyclically.
    """
    generator = torch.Generator().manual_seed(seed)
    perm = torch.randperm(num_sources, generator=generator)
    need = num_classes * sources_per_class
    chosen = perm[torch.arange(need) % num_sources]  # (T*k,)
    targets = torch.arange(num_classes).repeat_interleave(sources_per_class)  # (T*k,)
    assigned = torch.zeros(num_sources, num_classes, dtype=torch.bool)
    assigned[chosen, targets] = True
    return assigned


def greedy_assignment(counts: torch.Tensor, sources_per_class: int = 1) -> torch.Tensor:
    """Greedy frequency assignment (FLM / ILM): ``counts (S, T)`` -> ``(S, T)`` bool.

    One round assigns one source to every target class: repeatedly take the largest remaining count,
    fix that source for that target, and remove that source row and that target column. With
    ``sources_per_class = k > 1`` the round is repeated ``k`` times on the sources not yet used, so every
    target gets its ``j``-th source before any gets its ``j+1``-th (ILM-VP's multi-label code instead
    lets one target take all ``k`` before another gets one).

    Ties go to the lowest source index, then the lowest target index (the first maximum in row-major
    order), so the result is a deterministic function of ``counts``.
    """
    if counts.ndim != 2:
        raise ValueError(f"counts must be (S, T), got shape {tuple(counts.shape)}")
    num_sources, num_classes = counts.shape
    if num_classes * sources_per_class > num_sources:
        raise ValueError(
            f"{num_classes} target classes x {sources_per_class} sources per class need "
            f"{num_classes * sources_per_class} source classes, but there are only {num_sources}"
        )
    work = counts.detach().to("cpu", torch.float64)
    assigned = torch.zeros(num_sources, num_classes, dtype=torch.bool)
    free_sources = torch.ones(num_sources, dtype=torch.bool)
    for _ in range(sources_per_class):
        open_targets = torch.ones(num_classes, dtype=torch.bool)
        for _ in range(num_classes):
            allowed = free_sources[:, None] & open_targets[None, :]  # (S, T)
            # torch.argmax returns the first maximum: the tie rule documented above
            flat = int(work.masked_fill(~allowed, float("-inf")).reshape(-1).argmax())
            source, target = divmod(flat, num_classes)
            assigned[source, target] = True
            free_sources[source] = False
            open_targets[target] = False
    return assigned


def bayesian_omega(joint: torch.Tensor, smoothing: float = 1.0) -> torch.Tensor:
    """BLM's real-valued mapping from a joint source x target frequency matrix ``(S, T)``.

    ``joint[s, t]`` is the (possibly soft) count of training examples whose source prediction is ``s``
    and whose label is ``t``. Following the BLM paper and its official code:

    1. Conditional: ``cond[s, t] = joint[s, t] / (sum_t' joint[s, t'] + smoothing)``, an estimate of
       ``P(target = t | source prediction = s)`` with Laplace ``smoothing`` in the denominator. It damps
       source classes predicted only a few times (one lucky hit does not give weight 1) and keeps a
       never-predicted source at 0 instead of 0/0. A source row with no mass and no smoothing gets 0.
    2. Column normalisation: ``omega[:, t] = cond[:, t] / sum_s cond[s, t]``. Every target column sums to
       1, so each target score is a weighted average of source probabilities and targets whose sources
       are rarely predicted are not penalised for it.

    Every target column needs some mass (each target class at least one training example).
    """
    if joint.ndim != 2:
        raise ValueError(f"joint frequencies must be (S, T), got shape {tuple(joint.shape)}")
    joint = joint.detach().to(torch.float64)
    denominator = joint.sum(dim=1, keepdim=True) + smoothing  # (S, 1)
    cond = torch.where(denominator > 0, joint / denominator.clamp_min(1e-300), torch.zeros_like(joint))
    column = cond.sum(dim=0)  # (T,)
    empty = torch.nonzero(column <= 0).flatten().tolist()
    if empty:
        raise ValueError(f"target classes {empty} have no mass in the joint frequencies; every target class "
                         "needs at least one training example to fit a Bayesian label mapping")
    return cond / column  # (S, T)


@HEADS.register("label-mapping")
class LabelMappingHead(nn.Module):
    """O: map a frozen classifier's source-class probabilities onto target classes (no trained weights).

    Args:
        num_classes: number of target classes ``T`` (at least 2).
        method: ``"random"``, ``"flm"``, ``"ilm"``, ``"blm"`` or ``"blm+"`` (see the module docstring).
        sources_per_class: ``k`` source classes per target class for the one-to-one (``k = 1``) and
            many-to-one methods (random, flm, ilm); their probabilities are averaged.
        top_k: BLM+ only: how many of each example's largest source probabilities count (None: 15% of
            ``T``, at least 1, as in the official BLM+ configuration).
        smoothing: BLM / BLM+ Laplace smoothing ``lambda`` (the official value is 1).
        seed: seed of the random mapping (the mapping of ``"random"``, and the starting point of the others).

    The mapping is a buffer ``omega (S, T)``: saved in the ``state_dict``, never a parameter, never
    trained by gradient. It starts as the seeded random mapping; :meth:`fit_mapping` recomputes it from
    the frozen model's outputs on the training set: once before training for ``"flm"``, before every
    epoch for the methods with :attr:`refit_each_epoch`.

    The score of target ``t`` is ``log(sum_s softmax(source_logits)_s * omega[s, t])``, clamped away from
    ``log 0``. For a hard mapping that is the log of the mean probability of ``t``'s sources, so
    ``cross_entropy`` on the scores is the negative log of the mapped probability renormalised over the
    target classes. (BLM's official code multiplies ``omega`` with the logits; here it weighs
    probabilities, as for the other methods, so that a score is always the log of a probability mass.)

    Shapes:
        - bind: ``backbone.num_outputs = S``, ``backbone.output_kind == "logits"``
        - input: source logits ``(B, S)``
        - output: target scores ``(B, T)`` (log mapped probabilities)
        - ``omega``: ``(S, T)``
    """

    omega: torch.Tensor
    # fitted from data, not by gradient: saved with the trained parameters (xdomain.reprogrammer)
    learned_buffers = ("omega",)

    def __init__(
        self,
        num_classes: int,
        method: str = "ilm",
        sources_per_class: int = 1,
        top_k: int | None = None,
        smoothing: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.method = method
        self.sources_per_class = sources_per_class
        self.top_k = top_k
        self.smoothing = smoothing
        self.seed = seed
        self.num_sources: int | None = None

    # -- settings ---------------------------------------------------------------------------------
    def _check_method(self) -> str:
        method = self.method.lower() if isinstance(self.method, str) else self.method
        if method not in METHODS:
            raise ValueError(f"unknown label-mapping method {self.method!r}; expected one of {list(METHODS)}")
        return str(method)

    @property
    def refit_each_epoch(self) -> bool:
        """True for ilm, blm and blm+ (refit as the program learns); False for random and flm."""
        return self._check_method() in _REFIT_METHODS

    def _top_k(self) -> int:
        if self.top_k is not None:
            return self.top_k
        return max(1, int(_BLM_PLUS_TOPK_RATIO * self.num_classes))

    # -- binding ----------------------------------------------------------------------------------
    def bind(self, backbone: Any, **_: Any) -> LabelMappingHead:
        """Read ``S`` from a classifier backbone, check the settings, set ``omega`` to the random mapping."""
        method = self._check_method()
        kind = getattr(backbone, "output_kind", None)
        if kind != "logits":
            raise ValueError(
                f"label mapping needs a classifier backbone (output_kind='logits'), got "
                f"output_kind={kind!r} from {type(backbone).__name__}; use LinearHead ('linear') for "
                "embedding or language backbones"
            )
        num_sources = getattr(backbone, "num_outputs", None)
        if not isinstance(num_sources, int) or isinstance(num_sources, bool) or num_sources < 2:
            raise ValueError(f"the backbone must give num_outputs >= 2 source classes, got {num_sources!r}")
        if self.num_sources is not None:
            if self.num_sources != num_sources:
                raise ValueError(f"this head is bound to a backbone with {self.num_sources} source classes; "
                                 f"got another with {num_sources}")
            return self
        T, k = self.num_classes, self.sources_per_class
        if not isinstance(T, int) or isinstance(T, bool) or T < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {T!r}")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"sources_per_class must be an integer >= 1, got {k!r}")
        if method in _HARD_METHODS and T * k > num_sources:
            fewer = (f"a many-to-one mapping with fewer sources_per_class (at most {num_sources // T}), "
                     if num_sources >= T else "")
            raise ValueError(
                f"method {method!r} maps sources_per_class={k} distinct source classes to each of T={T} "
                f"target classes ({T * k} in all), but the backbone has only S={num_sources}; use {fewer}"
                "method 'blm' / 'blm+', or LinearHead ('linear')"
            )
        if not self.smoothing >= 0:
            raise ValueError(f"smoothing must be >= 0, got {self.smoothing!r}")
        if method == "blm+":
            top_k = self._top_k()
            if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= num_sources:
                raise ValueError(f"top_k must be an integer in [1, {num_sources}], got {top_k!r}")
        omega = random_assignment(num_sources, T, k, self.seed).float() / k  # (S, T)
        self.register_buffer("omega", omega)
        self.num_sources = num_sources
        return self

    def _require_bound(self) -> int:
        if self.num_sources is None:
            raise RuntimeError("LabelMappingHead is not bound to a backbone; call head.bind(backbone) first")
        return self.num_sources

    # -- the mapping ------------------------------------------------------------------------------
    def fit_mapping(self, source_logits: torch.Tensor, targets: torch.Tensor) -> None:
        """Recompute ``omega`` from the frozen model's outputs on the training set (no-op for "random").

        Shapes: ``source_logits (N, S)``, ``targets (N,)`` integer labels in ``[0, T)``.
        """
        S = self._require_bound()
        T = self.num_classes
        method = self._check_method()
        if source_logits.ndim != 2 or source_logits.shape[1] != S:
            raise ValueError(f"source_logits must be (N, {S}), got shape {tuple(source_logits.shape)}")
        if targets.ndim != 1 or targets.shape[0] != source_logits.shape[0]:
            raise ValueError(
                f"targets must be (N,) = ({source_logits.shape[0]},), got shape {tuple(targets.shape)}"
            )
        if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
            raise TypeError(f"targets must be integer class labels, got dtype {targets.dtype}")
        if targets.numel() == 0:
            raise ValueError("fit_mapping needs at least one example, got N=0")
        low, high = int(targets.min()), int(targets.max())
        if low < 0 or high >= T:
            raise ValueError(f"targets must lie in [0, {T}), got values in [{low}, {high}]")
        if not torch.isfinite(source_logits).all():
            raise ValueError("source_logits contain NaN or infinite values")
        if method == "random":
            return
        logits = source_logits.detach()
        labels = targets.detach().long()
        if method == "blm+":
            probs = torch.softmax(logits.to(torch.float64), dim=-1)  # (N, S)
            values, indices = probs.topk(self._top_k(), dim=-1)  # (N, k)
            kept = torch.zeros_like(probs).scatter_(1, indices, values)  # (N, S)
            joint = kept.T @ F.one_hot(labels, T).to(torch.float64)  # (S, T)
        else:
            predicted = logits.argmax(dim=-1)  # (N,)
            joint = torch.zeros(S, T, dtype=torch.float64, device=logits.device)
            ones = torch.ones_like(labels, dtype=torch.float64)
            joint.index_put_((predicted, labels), ones, accumulate=True)  # (S, T) counts
        if method in _HARD_METHODS:
            k = self.sources_per_class
            omega = greedy_assignment(joint, k).to(torch.float64) / k
        else:
            missing = torch.nonzero(torch.bincount(labels, minlength=T) == 0).flatten().tolist()
            if missing:
                raise ValueError(f"target classes {missing} have no example in targets; method {method!r} "
                                 "needs every class in [0, num_classes) at least once")
            omega = bayesian_omega(joint, self.smoothing)
        with torch.no_grad():
            self.omega.copy_(omega)

    def mapping(self) -> dict[int, list[int]]:
        """Target class -> its source classes.

        For the hard methods, the assigned sources in increasing order. For BLM / BLM+, every source with
        a nonzero weight, the heaviest first (ties by index)."""
        self._require_bound()
        omega = self.omega.detach().cpu()
        result: dict[int, list[int]] = {}
        for t in range(omega.shape[1]):
            column = omega[:, t]
            sources = torch.nonzero(column > 0).flatten().tolist()
            if self._check_method() not in _HARD_METHODS:
                sources.sort(key=lambda s: (-float(column[s]), s))
            result[t] = [int(s) for s in sources]
        return result

    def forward(self, source_logits: torch.Tensor) -> torch.Tensor:
        S = self._require_bound()
        if source_logits.ndim != 2 or source_logits.shape[1] != S:
            raise ValueError(f"source_logits must be (B, {S}), got shape {tuple(source_logits.shape)}")
        # half-precision probabilities of 1000 classes underflow: compute in at least float32
        dtype = torch.promote_types(source_logits.dtype, torch.float32)
        probs = torch.softmax(source_logits.to(dtype), dim=-1)  # (B, S)
        mapped = probs @ self.omega.to(dtype)  # (B, T)
        return torch.log(mapped.clamp_min(torch.finfo(dtype).tiny))  # (B, T)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, method={self.method!r}, "
                f"sources_per_class={self.sources_per_class}, num_sources={self.num_sources}")


__all__ = ["METHODS", "LabelMappingHead", "bayesian_omega", "greedy_assignment", "random_assignment"]

"""Black-box reprogramming (BAR, Tsai, Chen & Ho, ICML 2020): train a program from output probabilities.

The frozen model f is reached only through its class probabilities (:class:`BlackBoxBackbone`), so no
gradient can flow back to the input program I. :class:`ZerothOrderTrainer` estimates the gradient of the
loss with respect to the trainable parameters ``W`` from loss values only (BAR's one-sided random
gradient-free estimate with ``q`` random unit directions ``u_j`` and smoothing ``beta``)::

    g = (d / (beta * q)) * sum_j (L(W + beta * u_j) - L(W)) * u_j

and applies *that estimate* with Adam. The official BAR code computes the estimate but then steps with
the white-box gradient ``tf.gradients``; here autograd is never used, and every example sent to the model
is counted as a query (``q + 1`` loss evaluations, so ``(q + 1) * batch`` queries per step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xdomain.backbones.black_box import BlackBoxBackbone
from xdomain.config import TrainConfig
from xdomain.training.batches import Collate, _call, batch_weight, split_batch, to_device
from xdomain.training.loop import History, TrainStep, train_loop

LOSSES = ("cross_entropy", "focal")


def unit_directions(
    count: int,
    dim: int,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``count`` random directions drawn uniformly from the unit sphere in ``dim`` dimensions (BAR).

    Normalised Gaussian vectors, drawn on the CPU from ``generator`` (so a seed gives the same directions
    on any device), then moved to ``device``.

    Shapes:
        - output: ``(count, dim)``, each row of Euclidean norm 1
    """
    if count <= 0 or dim <= 0:
        raise ValueError(f"count and dim must be positive, got count={count!r}, dim={dim!r}")
    u = torch.randn(count, dim, generator=generator, dtype=torch.float64)
    u = u / u.norm(dim=1, keepdim=True)
    return u.to(dtype=dtype, device=device)


def zeroth_order_gradient(
    loss_fn: Callable[[torch.Tensor], float],
    w: torch.Tensor,
    directions: int,
    beta: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, float]:
    """BAR's one-sided random gradient-free estimate of ``grad L(w)`` from ``directions + 1`` loss values.

    ``g = (d / (beta * q)) * sum_j (L(w + beta u_j) - L(w)) u_j`` with ``q = directions`` unit vectors
    ``u_j`` (:func:`unit_directions`) and ``d = w.numel()``. ``L(w)`` is evaluated first, then each
    perturbed point in turn; ``w`` itself is never modified. For a smooth ``L`` the estimate is unbiased
    for the gradient of a ``beta``-smoothed ``L``: ``E[d (u . grad) u] = grad`` since ``E[u u^T] = I / d``.

    Shapes:
        - w: flat ``(d,)``; output: ``(g (d,), L(w))``
    """
    if w.ndim != 1:
        raise ValueError(f"w must be a flat vector (d,), got shape {tuple(w.shape)}")
    d = w.numel()
    u = unit_directions(directions, d, generator, dtype=w.dtype, device=w.device)  # (q, d)
    base = float(loss_fn(w))
    diffs = torch.tensor(
        [float(loss_fn(w + beta * u[j])) - base for j in range(directions)], dtype=torch.float64
    )
    g = (d / (beta * directions)) * (diffs.to(w.device) @ u.double())  # (d,)
    return g.to(w.dtype), base


def _flatten(params: list[nn.Parameter]) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def _write(params: list[nn.Parameter], flat: torch.Tensor) -> None:
    """Copy the flat vector into the parameters, in place (exact: no add/subtract round trip)."""
    offset = 0
    for p in params:
        n = p.numel()
        p.copy_(flat[offset : offset + n].view_as(p))
        offset += n


class _AdamW:
    """Adam with decoupled weight decay on one flat tensor, stepped with a given gradient estimate.

    The same update as ``torch.optim.AdamW`` (betas 0.9 / 0.999, eps 1e-8), written out: the estimate is
    not an autograd gradient, and ``torch.optim`` imports its compiler stack (seconds) at the first step.
    """

    def __init__(self, w: torch.Tensor, lr: float, weight_decay: float = 0.0) -> None:
        self.w = w
        self.lr = lr
        self.weight_decay = weight_decay
        self.betas = (0.9, 0.999)
        self.eps = 1e-8
        self.m = torch.zeros_like(w)
        self.v = torch.zeros_like(w)
        self.t = 0

    def step(self, g: torch.Tensor, lr_factor: float = 1.0) -> None:
        b1, b2 = self.betas
        lr = self.lr * lr_factor
        self.t += 1
        self.w.mul_(1 - lr * self.weight_decay)
        self.m.mul_(b1).add_(g, alpha=1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        m_hat = self.m / (1 - b1**self.t)
        v_hat = self.v / (1 - b2**self.t)
        self.w.addcdiv_(m_hat, v_hat.sqrt().add_(self.eps), value=-lr)


class ZerothOrderTrainer:
    """Train the input program (and any trainable head) of a reprogrammed black box with BAR.

    Only the parameters of ``model`` with ``requires_grad`` train; they are treated as one flat vector
    ``W`` of ``d`` numbers. Each step takes a batch ``(x, y)`` (``x`` what the model takes, ``y`` integer
    class labels ``(B,)``), computes the loss ``L`` of the model's target scores ``(B, C)`` (cross-entropy,
    or BAR's focal loss), estimates ``grad L`` with :func:`zeroth_order_gradient` and applies that estimate
    with AdamW (``config.lr``, ``config.weight_decay``). Autograd is never used: everything runs under
    ``torch.no_grad()``, and the parameters are written in place from a flat master copy, so each
    perturbation is undone exactly (no drift).

    Learning rate: ``config.resolved_lr(None)`` (``config.lr``, or 0.001), decayed exponentially by
    ``lr_decay`` per epoch (BAR uses an exponential decay; the official code sets ``decay_rate = 0.96``).

    The model runs in eval mode throughout: dropout would make ``L(W + beta u) - L(W)`` noise.

    Queries: every example sent through the model is one query. :attr:`queries` counts all of them
    (estimate and evaluation), :attr:`train_queries` those of the estimate alone, which is
    ``(directions + 1) * batch`` per step. Each validation record also carries ``backbone_queries``, the
    count read from the :class:`BlackBoxBackbone` modules inside ``model`` since :meth:`fit` started.

    ``config.seed`` sets the batch order and the random directions: the same seed (and the same initial
    parameters) gives the same trained parameters. ``epochs``, ``max_steps``, ``max_train_seconds``,
    ``val_every``, ``patience`` and ``batch_size`` mean what they mean for :class:`~xdomain.Trainer`,
    whose loop this is (:func:`~xdomain.training.loop.train_loop` with a :class:`ZerothOrderStep`);
    early stopping is on the validation loss, and the best parameters are restored at the end.

    Data as for the Trainer: any map-style dataset, batched by ``collate_fn`` (default torch's), of
    ``(x, y)`` or ``(x, y, weight)`` items; ``x`` any nested structure (moved with
    :func:`~xdomain.training.batches.to_device`), ``weight`` per-example weights of the loss (a weighted
    mean; constant weights give exactly the plain mean).
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig | None = None,
        directions: int = 5,
        beta: float = 0.01,
        loss: str = "cross_entropy",
        focal_gamma: float = 2.0,
        lr_decay: float = 0.96,
        collate_fn: Collate | None = None,
    ) -> None:
        if not isinstance(directions, int) or isinstance(directions, bool) or directions <= 0:
            raise ValueError(f"directions must be a positive integer, got {directions!r}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
            raise ValueError(f"beta must be a positive number, got {beta!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if isinstance(focal_gamma, bool) or not isinstance(focal_gamma, (int, float)) or focal_gamma < 0:
            raise ValueError(f"focal_gamma must be a number >= 0, got {focal_gamma!r}")
        if isinstance(lr_decay, bool) or not isinstance(lr_decay, (int, float)) or not 0 < lr_decay <= 1:
            raise ValueError(f"lr_decay must be in (0, 1], got {lr_decay!r}")
        self.model = model
        self.config = config or TrainConfig()
        self.directions = directions
        self.beta = float(beta)
        self.loss = loss
        self.focal_gamma = float(focal_gamma)
        self.lr_decay = float(lr_decay)
        self.lr = self.config.resolved_lr(None)
        self.collate_fn = collate_fn
        self.queries = 0
        self.train_queries = 0
        self._generator = torch.Generator().manual_seed(self.config.seed)

    # -- what trains --------------------------------------------------------------------------------
    def _params(self) -> list[nn.Parameter]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(
                f"{type(self.model).__name__} has no trainable parameters (requires_grad=True): "
                "nothing for the zeroth-order trainer to train"
            )
        return params

    def _black_boxes(self) -> list[BlackBoxBackbone]:
        return [m for m in self.model.modules() if isinstance(m, BlackBoxBackbone)]

    # -- loss on a batch ----------------------------------------------------------------------------
    def _check_labels(self, y: Any) -> torch.Tensor:
        if not isinstance(y, torch.Tensor):
            raise TypeError(f"labels must be a tensor of integer class indices, got {type(y).__name__}")
        if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
            raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
        if y.ndim != 1:
            raise ValueError(f"labels must have shape (B,), got {tuple(y.shape)}")
        return y

    def _scores(self, x: Any, y: torch.Tensor) -> torch.Tensor:
        """The model's target scores ``(B, C)`` for ``x``; counts ``B`` queries."""
        out = _call(self.model, x)
        n = int(y.shape[0])
        self.queries += n
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != n:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"the model must return target scores (B, C) with B = {n}, got {shape}")
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= out.shape[1]:
            raise ValueError(
                f"labels must be class indices in [0, {out.shape[1] - 1}] for {out.shape[1]} target scores, "
                f"got values in [{low}, {high}]"
            )
        return out.double()  # the loss differences are small: no float32 rounding on top

    def _per_example_loss(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(scores, dim=-1).gather(1, y.long()[:, None]).squeeze(1)  # (B,)
        if self.loss == "focal":
            # Lin et al. 2017, the loss BAR trains with: down-weights examples already classified well
            return -((1 - log_p.exp()).clamp_min(0) ** self.focal_gamma) * log_p
        return -log_p

    def _mean_loss(self, x: Any, y: torch.Tensor, weight: torch.Tensor | None) -> float:
        """The batch's mean loss, or its weighted mean ``sum(w * l) / sum(w)`` (``B`` queries)."""
        per_example = self._per_example_loss(self._scores(x, y), y)
        if weight is None:
            return float(per_example.mean())
        w = weight.to(device=per_example.device, dtype=per_example.dtype)
        return float((per_example * w).sum() / w.sum())

    @torch.no_grad()
    def batch_loss(self, x: Any, y: torch.Tensor, weight: torch.Tensor | None = None) -> float:
        """The mean loss on one batch at the current parameters (``B`` queries); with ``weight`` ``(B,)``
        the weighted mean."""
        y = self._check_labels(y)
        return self._mean_loss(x, y, batch_weight(weight, y))

    @torch.no_grad()
    def estimate(
        self, x: Any, y: torch.Tensor, weight: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, float]:
        """The zeroth-order gradient estimate ``(d,)`` on one batch and the loss there (weighted by
        ``weight`` ``(B,)`` if given); the parameters are left bit for bit as they were. Costs
        ``(directions + 1) * B`` queries.

        The flat vector follows the order of ``model.parameters()`` (trainable ones only)."""
        params = self._params()
        w = _flatten(params)
        return self._estimate(params, w, x, y, batch_weight(weight, self._check_labels(y)))

    def _estimate(
        self, params: list[nn.Parameter], w: torch.Tensor, x: Any, y: torch.Tensor,
        weight: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, float]:
        y = self._check_labels(y)
        self.model.eval()
        start = self.queries

        def loss_at(v: torch.Tensor) -> float:
            _write(params, v)
            at = _flatten(params)
            loss = self._mean_loss(x, y, weight)
            if not torch.equal(_flatten(params), at):
                # the loss difference would then not be the one at W + beta u
                raise RuntimeError(
                    f"the trainable parameters of {type(self.model).__name__} changed during its forward "
                    "pass; the zeroth-order estimate needs a forward that leaves its parameters alone"
                )
            return loss

        try:
            g, base = zeroth_order_gradient(loss_at, w, self.directions, self.beta, self._generator)
        finally:
            # a copy from the flat master, not a subtraction: the parameters come back bit for bit
            _write(params, w)
            self.train_queries += self.queries - start
        return g, base

    # -- training -----------------------------------------------------------------------------------
    def _loader(
        self, ds: Dataset[Any], batch_size: int, shuffle: bool, collate_fn: Collate | None = None
    ) -> DataLoader[Any]:
        generator = torch.Generator().manual_seed(self.config.seed)
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=False, generator=generator,
                          collate_fn=collate_fn or self.collate_fn)

    @torch.no_grad()
    def fit(
        self, train: Dataset[Any], val: Dataset[Any] | None = None, collate_fn: Collate | None = None
    ) -> History:
        """Train on ``train`` (items ``(x, y)`` or ``(x, y, weight)``) with the BAR estimate; validate on
        ``val`` if given. The loop is :func:`~xdomain.training.loop.train_loop`'s, with a
        :class:`ZerothOrderStep`."""
        step = ZerothOrderStep(self)
        if len(train) == 0:  # type: ignore[arg-type]
            raise ValueError("the training set is empty")
        collate = collate_fn or self.collate_fn
        loader = self._loader(train, self.config.batch_size, shuffle=True, collate_fn=collate)

        def validate() -> dict[str, float]:
            assert val is not None
            metrics = self.evaluate(val, collate_fn=collate)
            return {"val_loss": metrics["loss"], "val_accuracy": metrics["accuracy"]}

        history = train_loop(step, loader, self.config, validate if val is not None else None,
                             progress=self.config.progress)
        self.model.eval()
        return history

    @torch.no_grad()
    def evaluate(
        self, ds: Dataset[Any], batch_size: int | None = None, collate_fn: Collate | None = None
    ) -> dict[str, float]:
        """Mean loss and accuracy over every example of ``ds`` (no dropped batch); ``n`` examples. Weights
        in the batches are ignored."""
        params = list(self.model.parameters())
        device = params[0].device if params else torch.device("cpu")
        was_training = self.model.training
        self.model.eval()
        total, correct, n = 0.0, 0, 0
        size = batch_size or self.config.eval_batch_size
        try:
            for batch in self._loader(ds, size, shuffle=False, collate_fn=collate_fn):
                x, y, _ = split_batch(batch)
                y = self._check_labels(y).to(device)
                scores = self._scores(to_device(x, device), y)
                total += float(self._per_example_loss(scores, y).double().sum())
                correct += int((scores.argmax(dim=1) == y).sum())
                n += int(y.shape[0])
        finally:
            self.model.train(was_training)
        if n == 0:
            raise ValueError("cannot evaluate on an empty data set")
        return {"loss": total / n, "accuracy": correct / n, "n": float(n)}


class ZerothOrderStep(TrainStep):
    """BAR's update for :func:`~xdomain.training.loop.train_loop`: the zeroth-order estimate on the
    batch (:meth:`ZerothOrderTrainer._estimate`, counting queries), then AdamW on the flat master copy
    ``W`` with the learning rate decayed by ``lr_decay`` per epoch; snapshots are copies of ``W``, and each
    record carries the query counts."""

    progress_desc = "train (zeroth order)"

    def __init__(self, trainer: ZerothOrderTrainer) -> None:
        self.trainer = trainer
        self.params = trainer._params()
        self.device = self.params[0].device
        self.w = _flatten(self.params).clone()  # the master copy: the parameters are always written from it
        trainer._generator.manual_seed(trainer.config.seed)
        self.optimizer = _AdamW(self.w, lr=trainer.lr, weight_decay=trainer.config.weight_decay)
        self.boxes = trainer._black_boxes()
        self.box_start = sum(b.queries for b in self.boxes)
        self.steps_per_epoch = 1

    def start(self, steps_per_epoch: int, total: int) -> None:
        del total
        self.steps_per_epoch = steps_per_epoch

    @torch.no_grad()
    def __call__(self, batch: Any, step: int) -> float:
        t = self.trainer
        x, y, weight = split_batch(batch)
        x = to_device(x, self.device)
        y = t._check_labels(y).to(self.device)
        w = batch_weight(weight, y)
        g, loss = t._estimate(self.params, self.w, x, y, None if w is None else w.to(self.device))
        # exponential decay per epoch, as BAR
        self.optimizer.step(g, lr_factor=t.lr_decay ** (step / self.steps_per_epoch))
        _write(self.params, self.w)
        return loss

    def record(self) -> dict[str, float]:
        t = self.trainer
        extra = {"queries": float(t.queries), "train_queries": float(t.train_queries)}
        if self.boxes:
            extra["backbone_queries"] = float(sum(b.queries for b in self.boxes) - self.box_start)
        return extra

    def snapshot(self) -> torch.Tensor:
        return self.w.clone()

    @torch.no_grad()
    def restore(self, snapshot: torch.Tensor) -> None:
        self.w.copy_(snapshot)
        _write(self.params, self.w)


__all__ = ["ZerothOrderStep", "ZerothOrderTrainer", "unit_directions", "zeroth_order_gradient"]

"""scikit-learn estimators around a :class:`~xdomain.reprogrammer.Reprogrammer`.

A subclass says how the user's inputs become a tensor (:meth:`ReprogrammingEstimator._inputs`) and which
parts make the model (:meth:`ReprogrammingEstimator._build_model`); this module does the rest the way
scikit-learn expects: ``__init__`` only stores its arguments (so ``get_params``/``set_params``/``clone``,
``Pipeline``, ``GridSearchCV`` and ``cross_val_score`` work), ``fit`` returns ``self``, learned attributes
end in ``_``. Training holds back a stratified ``validation_fraction`` of the training data to choose the
best epoch (early stopping); the test data a user scores later is never seen.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from xdomain.backbones.black_box import BlackBoxBackbone
from xdomain.checkpoint import CheckpointError
from xdomain.config import TrainConfig
from xdomain.estimators.schema import estimator_config, estimator_meta, read_estimator_meta
from xdomain.training.batches import Collate, _call, iter_batches, split_batch, to_device
from xdomain.training.loop import History
from xdomain.training.trainer import Trainer, autocast, check_precision, predict_batches, set_seed
from xdomain.training.zeroth_order import ZerothOrderTrainer


class ReprogrammingEstimator(BaseEstimator):
    """Shared fit / predict / save / load for the reprogramming estimators.

    Subclasses define ``__init__`` with explicit keyword arguments (scikit-learn reads them), including
    at least ``backbone``, ``epochs``, ``batch_size``, ``lr``, ``patience``, ``validation_fraction``,
    ``max_steps``, ``random_state`` and ``verbose``, and implement :meth:`_inputs` and
    :meth:`_build_model`.
    """

    _loss = "cross_entropy"
    # the model outputs for a batch of inputs; eval batches are large (a CPU is fastest that way)
    _eval_batch_size = 256

    # -- what subclasses provide ------------------------------------------------------------------
    def _inputs(self, X: Any, fitting: bool) -> torch.Tensor:
        raise NotImplementedError

    def _build_model(self, n_outputs: int) -> nn.Module:
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        """Anything besides the parameters that predictions need (saved as JSON)."""
        return {}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        del state

    # -- shared -----------------------------------------------------------------------------------
    def _train_config(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            patience=self.patience,
            seed=self.random_state,
            max_steps=self.max_steps,
            eval_batch_size=self._eval_batch_size,
            progress=bool(self.verbose),
            mixed_precision=check_precision(getattr(self, "mixed_precision", "no")),
        )

    def _split(self, y_idx: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Training and validation indices: a stratified cut of the training data (no test data)."""
        frac = self.validation_fraction
        if not isinstance(frac, (int, float)) or not 0.0 <= frac < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {frac!r}")
        idx = np.arange(n)
        if frac == 0.0:
            return idx, None
        n_val = math.ceil(frac * n)
        stratify = None
        if y_idx is not None:
            counts = np.bincount(y_idx)
            if counts.min() >= 2 and n_val >= len(counts) and n - n_val >= len(counts):
                stratify = y_idx
            else:
                warnings.warn(
                    f"validation_fraction={frac} cannot be stratified (class counts {counts.tolist()}, "
                    f"{n} samples); training on all data without early stopping",
                    stacklevel=3,
                )
                return idx, None
        if n_val < 1 or n - n_val < 1:
            return idx, None

        train_idx, val_idx = train_test_split(
            idx, test_size=n_val, stratify=stratify, random_state=self.random_state
        )
        return np.sort(train_idx), np.sort(val_idx)

    def _dataset(self, inputs: Any, y: torch.Tensor | None, indices: np.ndarray | None) -> Dataset[Any]:
        """The examples ``indices`` (all when None) of ``inputs`` (what :meth:`_inputs` returned) as a
        dataset of ``(x, y)`` items, or of ``(x,)`` items when ``y`` is None (for predictions).

        Override it (with :meth:`_collate`) for inputs that are not one tensor with a row per example:
        graphs, variable-length or mixed-type rows. A third item element, a per-example weight, weights
        the training loss."""
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(
                f"{type(self).__name__}._inputs gave a {type(inputs).__name__}, not a tensor; an estimator "
                "with such inputs overrides _dataset (and _collate) to make its datasets"
            )
        rows = None if indices is None else torch.as_tensor(indices)
        x = inputs if rows is None else inputs[rows]
        if y is None:
            return TensorDataset(x)
        return TensorDataset(x, y if rows is None else y[rows])

    def _collate(self) -> Collate | None:
        """What batches the items of :meth:`_dataset` (None: torch's default collate, which stacks)."""
        return None

    def _callbacks(self, model: nn.Module, train: Dataset[Any]) -> list[Callable[..., None]]:
        """Called as ``callback(trainer, epoch)`` before each epoch; ``train`` is the training dataset."""
        del model, train
        return []

    @staticmethod
    def _num_samples(inputs: Any) -> int:
        """How many examples :meth:`_inputs` gave: the rows of a tensor or array, else ``len``."""
        shape = getattr(inputs, "shape", None)
        return int(shape[0]) if shape is not None else len(inputs)

    def _fit_tensors(self, x: Any, y: torch.Tensor, y_idx: np.ndarray | None, n_outputs: int) -> None:
        """Fit on the inputs ``x`` (from :meth:`_inputs`: a tensor, or whatever :meth:`_dataset` takes)
        and the targets ``y`` (a tensor, one row per example)."""
        self.history_: History
        train_idx, val_idx = self._split(y_idx, self._num_samples(x))
        set_seed(self.random_state)
        model: Any = self._build_model(n_outputs)
        train_ds = self._dataset(x, y, train_idx)
        val_ds = None if val_idx is None else self._dataset(x, y, val_idx)
        collate = self._collate()
        callbacks = self._callbacks(model, train_ds)
        trainer: Any = Trainer(model, self._train_config(), loss=self._loss, callbacks=callbacks,
                               collate_fn=collate)
        if getattr(self, "black_box", False):
            # BAR: only the backbone's output probabilities are used, and the program is trained with a
            # zeroth-order estimate; the mapping is fitted once from the black box's answers

            model.backbone = BlackBoxBackbone(model.backbone)
            for callback in callbacks:
                callback(trainer, 0)
            trainer = ZerothOrderTrainer(model, self._train_config(), directions=self.directions,
                                         collate_fn=collate)
            self.history_ = trainer.fit(train_ds, val_ds)
            # every example the black box answered: the mapping fit, training and validation
            self.queries_ = int(model.backbone.queries)
            model.backbone = model.backbone.backbone  # the white-box model again, for predictions
        elif any(p.requires_grad for p in model.parameters()):
            self.history_ = trainer.fit(train_ds, val_ds)
        else:
            # nothing to train (no program, a fixed mapping): the mapping is still fitted from the data
            for callback in callbacks:
                callback(trainer, 0)
            self.history_ = History(stopped="nothing to train")
        model.eval()
        self.model_: nn.Module = model
        self.n_train_ = len(train_idx)
        self.n_validation_ = 0 if val_idx is None else len(val_idx)

    def _check_fitted(self) -> nn.Module:
        model = getattr(self, "model_", None)
        if model is None:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() or load() first")
        return model

    @torch.no_grad()
    def _outputs(self, X: Any) -> torch.Tensor:
        """The model's raw outputs for ``X``, every sample, in eval mode, on the CPU."""
        model = self._check_fitted()
        x = self._inputs(X, fitting=False)
        precision = check_precision(getattr(self, "mixed_precision", "no"))
        return predict_batches(model, self._dataset(x, None, None), self._eval_batch_size, precision,
                               collate_fn=self._collate())

    @property
    def config(self) -> Any:
        """The settings as one typed, frozen value (``<Estimator>Config``, a dataclass with a field per
        constructor parameter; ``dataclasses.asdict`` gives them as a dict)."""
        return estimator_config(self)

    def num_trainable(self) -> int:
        """Trainable parameters of the fitted model (the program and the head; never the backbone)."""
        model = self._check_fitted()
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """Write the trained tensors (safetensors) and the settings (JSON, the schema of
        :mod:`xdomain.estimators.schema`) into the folder ``path``; an existing checkpoint there is
        replaced only with ``overwrite=True`` (see :mod:`xdomain.checkpoint`)."""
        model = self._check_fitted()
        save: Any = getattr(model, "save", None)
        if save is None:
            raise TypeError(f"{type(model).__name__} cannot be saved (no save method)")
        save(path, estimator_meta(self, self._extra_state()), overwrite=overwrite)  # adds the backbone spec

    @classmethod
    def load(cls, path: str | os.PathLike[str], backbone: Any = None) -> Any:
        """Rebuild a saved estimator; its backbone is loaded by the name in the checkpoint unless given."""
        params, extra, history, _ = read_estimator_meta(path, cls)
        if backbone is not None:
            params["backbone"] = backbone
        elif params.get("backbone") is None:
            raise CheckpointError("this checkpoint was made with an in-memory backbone; pass it as backbone=")
        est = cls(**params)
        est._set_extra_state(extra)
        model: Any = est._build_model(est._n_outputs())
        model.load_trained(path)
        model.eval()
        est.model_ = model
        if history is not None:
            est.history_ = history
        return est

    def _n_outputs(self) -> int:
        raise NotImplementedError


def _check_labels(y: Any) -> None:
    """Missing labels (None, NaN, NaT, pd.NA) in the caller's 1-D ``y`` are an error naming where they
    are: numpy cannot sort None among other labels, and turns a NaN among strings into a class "nan"."""
    bad = np.flatnonzero(np.asarray(pd.isna(np.asarray(y, dtype=object)), dtype=bool))
    if bad.size:
        raise ValueError(
            f"y contains NaN labels (missing: None or NaN) at position(s) {bad[:10].tolist()}"
            f"{' ...' if bad.size > 10 else ''}; expected a label for every sample"
        )


class ReprogrammingClassifier(ClassifierMixin, ReprogrammingEstimator):
    """A classifier: labels of any type (kept as given in ``classes_``), cross-entropy, softmax scores."""

    _loss = "cross_entropy"

    def fit(self, X: Any, y: Any) -> ReprogrammingClassifier:
        x = self._inputs(X, fitting=True)
        y_arr = np.asarray(y)
        if y_arr.ndim != 1:
            raise ValueError(f"y must be one label per sample (1-D), got shape {y_arr.shape}")
        n = self._num_samples(x)
        if len(y_arr) != n:
            raise ValueError(
                f"X has {n} samples but y has {len(y_arr)} labels; expected one label per sample"
            )
        _check_labels(y)
        check_classification_targets(y_arr)  # a continuous target is an error, not one class per value
        classes, y_idx = np.unique(y_arr, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"need at least 2 classes to train a classifier, got {classes.tolist()}")
        self.classes_ = classes
        self._fit_tensors(x, torch.as_tensor(y_idx, dtype=torch.long), y_idx, len(classes))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(N, n_classes)``, columns in the order of ``classes_``."""
        return torch.softmax(self._outputs(X), dim=-1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)  # checks that the estimator is fitted first
        return np.asarray(self.classes_[proba.argmax(axis=1)])

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy on ``(X, y)``; a label the classifier never saw in training is an error (it could only
        ever be counted wrong), naming the labels seen and the classes known."""
        self._check_fitted()
        unseen = sorted({str(v) for v in np.asarray(y).tolist()} - {str(c) for c in self.classes_.tolist()})
        if unseen:
            raise ValueError(
                f"y has labels never seen in training: {unseen[:10]}; the classifier knows "
                f"{self.classes_.tolist()[:20]}"
            )
        return float(super().score(X, y, sample_weight=sample_weight))

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _extra_state(self) -> dict[str, Any]:
        classes = getattr(self, "classes_", None)
        if classes is None:
            return {}
        return {"classes": classes.tolist(), "classes_dtype": classes.dtype.str}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        if "classes" in state:
            self.classes_ = np.asarray(state["classes"], dtype=np.dtype(state["classes_dtype"]))

    def _callbacks(self, model: nn.Module, train: Dataset[Any]) -> list[Callable[..., None]]:
        head = getattr(model, "head", None)
        if head is None or not hasattr(head, "fit_mapping"):
            return []
        collate = self._collate()

        def refit_mapping(trainer: Trainer, epoch: int) -> None:
            # frequency mapping once from the frozen model's outputs; iterative and Bayesian ones again
            # every epoch as the program changes what the frozen model sees
            if epoch == 0 or getattr(head, "refit_each_epoch", False):
                # on the device the trainer moved the model to, at the estimator's precision; every
                # process holds all training rows, so each fits the same mapping
                live: Any = trainer.model
                device = next((p.device for p in live.parameters()), torch.device("cpu"))
                outs, labels = [], []
                with autocast(trainer.config.mixed_precision, device):
                    for batch in iter_batches(train, self._eval_batch_size, collate):
                        x, y, _ = split_batch(batch)
                        outs.append(_call(live.features, to_device(x, device)).float())
                        labels.append(y)
                    features = torch.cat(outs)
                head.fit_mapping(features, torch.cat(labels).to(device))

        return [refit_mapping]


class ReprogrammingRegressor(RegressorMixin, ReprogrammingEstimator):
    """A regressor: targets standardised on the training data for the MSE loss, returned in their units."""

    _loss = "mse"

    def fit(self, X: Any, y: Any) -> ReprogrammingRegressor:
        x = self._inputs(X, fitting=True)
        y_arr = np.asarray(y, dtype=np.float64)
        if y_arr.ndim != 1:
            raise ValueError(f"y must be one target per sample (1-D), got shape {y_arr.shape}")
        n = self._num_samples(x)
        if len(y_arr) != n:
            raise ValueError(
                f"X has {n} samples but y has {len(y_arr)} targets; expected one target per sample"
            )
        if not np.isfinite(y_arr).all():
            bad = np.flatnonzero(~np.isfinite(y_arr))
            raise ValueError(
                f"y contains NaN or infinite targets at position(s) {bad[:10].tolist()}"
                f"{' ...' if len(bad) > 10 else ''} (first {y_arr[bad[0]]!r}); expected a finite number "
                "for every sample"
            )
        self.target_mean_ = float(y_arr.mean())
        self.target_std_ = float(y_arr.std()) or 1.0
        scaled = torch.as_tensor((y_arr - self.target_mean_) / self.target_std_, dtype=torch.float32)
        self._fit_tensors(x, scaled[:, None], None, 1)
        return self

    def predict(self, X: Any) -> np.ndarray:
        out = self._outputs(X)[:, 0].double().numpy()
        return np.asarray(out * self.target_std_ + self.target_mean_)

    def _n_outputs(self) -> int:
        return 1

    def _extra_state(self) -> dict[str, Any]:
        if not hasattr(self, "target_mean_"):
            return {}
        return {"target_mean": self.target_mean_, "target_std": self.target_std_}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        if "target_mean" in state:
            self.target_mean_ = float(state["target_mean"])
            self.target_std_ = float(state["target_std"])


__all__ = ["ReprogrammingClassifier", "ReprogrammingEstimator", "ReprogrammingRegressor"]

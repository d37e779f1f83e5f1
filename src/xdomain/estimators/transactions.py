"""Fraud detection on tabular transactions through a frozen vision or language model.

    y_hat = O( f( I(schema(x)) ) )

The seed system is Chen et al., "Adversarial Reprogramming of Pretrained Neural Networks for Fraud
Detection" (CIKM 2021): each transaction's features are drawn into an image read by a frozen ImageNet
classifier, a learned program fills the rest of the image, and a label mapping or a linear head reads the
answer. It published no code or public figures; this is built from its description. A second route makes
each feature a soft token of a frozen language model (as frozen-transformer tabular work does: Lu et al.,
"Pretrained transformers as universal computation engines", 2021).

- schema (:class:`~xdomain.datasets.transactions.TransactionSchema`): the columns remembered at fit and
  matched by name at predict, numeric columns standardised with the training rows only, categorical ones
  as level ids (an unseen level: the explicit unknown id 0, counted in ``unknown_levels_``);
- I (:mod:`xdomain.adapters.transactions`): the image route's feature layout (fixed grid or learned) and
  additive program, or the token route's per-feature soft tokens;
- f: EfficientNet-Lite0 (``route="image"``) or MiniLM (``route="tokens"``), frozen; ``backbone="none"``
  removes it (the same input transformation read by the head directly: the ablation);
- O: a linear head (standardised logits for the image route, mean-pooled tokens for the token route) or,
  for the image route, a label mapping over the source classes.

Training weights the classes (``class_weight="balanced"``: each class carries half the loss) and stops at
the best validation loss; the decision threshold (``decision_threshold_``) is then chosen on the same
validation rows, and :meth:`TransactionClassifier.predict` flags a row when its fraud probability reaches
it.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.utils.multiclass import check_classification_targets
from torch import nn
from torch.utils.data import Dataset

from xdomain.adapters.transactions import (
    LAYOUTS,
    FeatureImageTransform,
    FeatureTokenTransform,
    TransactionAdapter,
)
from xdomain.backbones.ablation import IdentityBackbone
from xdomain.backbones.base import FrozenBackbone
from xdomain.backbones.loader import resolve_backbone
from xdomain.datasets.transactions import MISSING, TransactionSchema, as_frame
from xdomain.estimators.base import ReprogrammingClassifier, _check_labels
from xdomain.estimators.schema import estimator_meta, json_param
from xdomain.heads.label_mapping import MAPPINGS, LabelMappingHead
from xdomain.heads.linear import LinearHead
from xdomain.registry import ESTIMATORS
from xdomain.reprogrammer import Reprogrammer
from xdomain.training.fraud_metrics import f1_threshold

ROUTES = ("image", "tokens")
DEFAULT_BACKBONES = {"image": "efficientnet-lite0", "tokens": "minilm"}
VALIDATION_SPLITS = ("last", "stratified")


class PixelPassThroughBackbone(FrozenBackbone):
    """f removed on the image route: the programmed image itself, flattened, is what the head reads.

    Shapes:
        - input: ``(B, 3, image_size, image_size)``
        - output: ``(B, 3 * image_size ** 2)`` (``output_kind = "embedding"``)
    """

    input_kind = "image"
    output_kind = "embedding"

    def __init__(self, image_size: int = 224, name: str = "none") -> None:
        super().__init__(name=name)
        self.image_size = image_size
        self.num_outputs = 3 * image_size * image_size
        self.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return x.flatten(1)


class _Rows(Dataset[Any]):
    """Encoded transactions ``{"values": (N, n), "ids": (N, c)}`` as items ``(x,)``, ``(x, y)`` or
    ``(x, y, weight)``, restricted to ``indices``."""

    def __init__(self, inputs: dict[str, torch.Tensor], y: torch.Tensor | None, weight: torch.Tensor | None,
                 indices: np.ndarray | None) -> None:
        rows = torch.arange(inputs["values"].shape[0]) if indices is None else torch.as_tensor(indices)
        self.values, self.ids = inputs["values"][rows], inputs["ids"][rows]
        self.y = None if y is None else y[rows]
        self.weight = None if weight is None or y is None else weight[rows]

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def __getitem__(self, i: int) -> Any:
        x = {"values": self.values[i], "ids": self.ids[i]}
        if self.y is None:
            return (x,)
        if self.weight is None:
            return x, self.y[i]
        return x, self.y[i], self.weight[i]


@ESTIMATORS.register("TransactionClassifier")
class TransactionClassifier(ReprogrammingClassifier):
    """Flag fraudulent transactions with a frozen image classifier or language model (scikit-learn
    estimator; binary labels, ``classes_[1]`` the positive class, e.g. ``1`` = fraud).

    Args:
        backbone: None (the route's default: ``efficientnet-lite0`` for ``image``, ``minilm`` for
            ``tokens``), a registered alias, a ``transformers`` image classifier or language model name or
            folder, ``"none"`` (no backbone: the ablation), or a loaded backbone.
        route: ``"image"`` (features drawn into the frozen classifier's input, CIKM 2021) or ``"tokens"``
            (each feature a soft token of a frozen language model).
        layout: image route: ``"learned"`` (default) feature-to-pixel layout, starting as the grid, or
            ``"grid"`` (fixed). Chosen on validation: EfficientNet-Lite0, seed 0, 3 epochs, time-ordered
            ULB sample, validation AUPRC 0.9328 learned against 0.9115 grid
            (``benchmarks/results/transactions.md``).
        region_size: image route: side of the feature region (None: half the input image).
        head: ``"linear"`` (default) or, for the image route, a label mapping over the source classes
            (``random``, ``flm``, ``ilm``, ``blm``, ``blm+``).
        categorical: names of the categorical columns (None: every non-numeric column).
        missing: ``"error"`` on NaN, or ``"impute"`` (numeric: the training mean; categorical: unknown).
        class_weight: ``"balanced"`` (each class carries half the training loss), None, or a dict
            ``{label: weight}``.
        threshold: how ``decision_threshold_`` is chosen: ``"f1"`` (the best F1 on the validation rows) or
            a number in ``(0, 1)`` (fixed).
        validation_split: ``"last"`` (the last ``validation_fraction`` of the rows as given: pass them in
            time order for a time-ordered protocol) or ``"stratified"`` (a stratified random cut).
        validation_fraction: the share of the training rows held back to choose the epoch and threshold.
        epochs, batch_size, lr, patience, max_steps: training (Adam on the program, layout or embeddings,
            and the head).
        random_state: seed of the split, initial weights and batches.
        verbose: show training progress.
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"`` autocast.

    The column schema is fitted on the training rows only (not the validation rows); at predict the
    columns are matched by name, so a frame with its columns in another order is reordered, and a missing
    or an extra column is an error.

    Example::

        clf = TransactionClassifier(route="tokens").fit(train_df.drop(columns="Class"), train_df["Class"])
        clf.predict_proba(test_df)[:, 1]; clf.decision_threshold_
    """

    def __init__(
        self,
        backbone: Any = None,
        route: str = "image",
        layout: str = "learned",
        region_size: int | None = None,
        head: str = "linear",
        categorical: list[str] | None = None,
        missing: str = "error",
        class_weight: Any = "balanced",
        threshold: Any = "f1",
        validation_split: str = "last",
        validation_fraction: float = 0.25,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float | None = 1e-3,
        patience: int = 3,
        max_steps: int | None = None,
        random_state: int = 0,
        verbose: bool = False,
        mixed_precision: str = "no",
    ) -> None:
        self.backbone = backbone
        self.route = route
        self.layout = layout
        self.region_size = region_size
        self.head = head
        self.categorical = categorical
        self.missing = missing
        self.class_weight = class_weight
        self.threshold = threshold
        self.validation_split = validation_split
        self.validation_fraction = validation_fraction
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.max_steps = max_steps
        self.random_state = random_state
        self.verbose = verbose
        self.mixed_precision = mixed_precision

    # -- settings ----------------------------------------------------------------------------------
    def _check_settings(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"route must be one of {list(ROUTES)}, got {self.route!r}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {list(LAYOUTS)}, got {self.layout!r}")
        heads = MAPPINGS if self.route == "image" else ("linear",)
        if self.head not in heads:
            raise ValueError(f"head must be one of {list(heads)} for route={self.route!r}, got {self.head!r}")
        if self.missing not in MISSING:
            raise ValueError(f"missing must be one of {list(MISSING)}, got {self.missing!r}")
        if self.validation_split not in VALIDATION_SPLITS:
            raise ValueError(f"validation_split must be one of {list(VALIDATION_SPLITS)}, got "
                             f"{self.validation_split!r}")
        t = self.threshold
        if not (t == "f1" or (isinstance(t, (int, float)) and not isinstance(t, bool) and 0.0 < t < 1.0)):
            raise ValueError(f"threshold must be 'f1' or a number in (0, 1), got {t!r}")
        cw = self.class_weight
        if not (cw is None or cw == "balanced" or isinstance(cw, dict)):
            raise ValueError(f"class_weight must be 'balanced', None or a dict {{label: weight}}, got {cw!r}")
        frac = self.validation_fraction
        if not isinstance(frac, (int, float)) or isinstance(frac, bool) or not 0.0 < frac < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1) (the threshold is chosen on it), got "
                             f"{frac!r}")

    def _backbone(self) -> Any:
        name = DEFAULT_BACKBONES[self.route] if self.backbone is None else self.backbone
        if isinstance(name, str) and name.lower() == "none":
            if self.route == "image":
                return _pass_through(224)
            return _identity(resolve_backbone(DEFAULT_BACKBONES["tokens"], domain="language"))
        backbone = resolve_backbone(name, domain="image" if self.route == "image" else "language")
        kind = getattr(backbone, "input_kind", None)
        if self.route == "image" and kind != "image":
            raise ValueError(f"route='image' needs an image classifier backbone; "
                             f"{getattr(backbone, 'name', type(backbone).__name__)!r} takes {kind!r} input")
        if self.route == "tokens" and not isinstance(getattr(backbone, "hidden_size", None), int):
            raise ValueError(f"route='tokens' needs a language backbone (with hidden_size and word "
                             f"embeddings); {getattr(backbone, 'name', type(backbone).__name__)!r} has none")
        return backbone

    # -- fit ---------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> TransactionClassifier:
        self._check_settings()
        self.__dict__.pop("model_", None)  # a refit starts afresh
        frame = as_frame(X)
        y_arr = np.asarray(y)
        if y_arr.ndim != 1:
            raise ValueError(f"y must be one label per row (1-D), got shape {y_arr.shape}")
        if len(frame) == 0:
            raise ValueError(f"X is empty (0 rows, columns {list(frame.columns)[:8]}); expected at least one "
                             "transaction")
        if len(y_arr) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(y_arr)} labels; expected one per row")
        _check_labels(y)
        check_classification_targets(y_arr)
        classes, y_idx = np.unique(y_arr, return_inverse=True)
        if len(classes) != 2:
            raise ValueError(
                f"TransactionClassifier needs exactly 2 classes (normal and fraud), got {len(classes)}: "
                f"{classes.tolist()[:10]}"
            )
        train_idx, val_idx = self._cut(y_idx, classes)
        self.schema_ = TransactionSchema(categorical=self.categorical, missing=self.missing)
        self.schema_.fit(frame.iloc[train_idx])  # scaling and levels from the training rows only
        self.classes_ = classes
        self.n_features_in_ = len(self.schema_.columns)
        self.feature_names_in_ = np.asarray(self.schema_.columns, dtype=object)
        inputs = self._encode(frame)
        self._planned = (train_idx, val_idx)
        self._weights = torch.as_tensor(self._row_weights(y_idx, train_idx), dtype=torch.float32)
        try:
            self._fit_tensors(inputs, torch.as_tensor(y_idx, dtype=torch.long), y_idx, 2)
        finally:
            del self._planned, self._weights
        self.validation_rows_ = len(val_idx)
        self._choose_threshold(inputs, y_idx[val_idx], val_idx)
        return self

    def _cut(self, y_idx: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Training and validation rows: the last ``validation_fraction`` of the rows, or a stratified cut;
        each part must hold both classes (the threshold is chosen on the validation part)."""
        n = len(y_idx)
        n_val = round(self.validation_fraction * n)
        if n_val < 2 or n - n_val < 2:
            raise ValueError(f"{n} rows with validation_fraction={self.validation_fraction} leave "
                             f"{n - n_val} training and {n_val} validation rows; expected at least 2 of each")
        idx = np.arange(n)
        if self.validation_split == "last":
            train_idx, val_idx = idx[: n - n_val], idx[n - n_val :]
        else:
            from sklearn.model_selection import train_test_split

            counts = np.bincount(y_idx, minlength=2)
            if counts.min() < 2:
                raise ValueError(f"a stratified validation cut needs 2 rows of each class, got class counts "
                                 f"{counts.tolist()}")
            tr, va = train_test_split(idx, test_size=n_val, stratify=y_idx, random_state=self.random_state)
            train_idx, val_idx = np.sort(tr), np.sort(va)
        for part, rows in (("training", train_idx), ("validation", val_idx)):
            counts = np.bincount(y_idx[rows], minlength=2)
            if counts.min() == 0:
                raise ValueError(
                    f"the {part} part ({len(rows)} rows, validation_split={self.validation_split!r}) holds "
                    f"only one class (counts {counts.tolist()} of the labels {classes.tolist()}); expected "
                    "both classes in each part (use validation_split='stratified', or more rows)"
                )
        return train_idx, val_idx

    def _split(self, y_idx: np.ndarray | None, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        return self._planned

    def _row_weights(self, y_idx: np.ndarray, train_idx: np.ndarray) -> np.ndarray:
        """Per-row loss weights: ``"balanced"`` gives each class half the training rows' total weight
        (``n / (2 n_c)``, counted on the training rows)."""
        cw = self.class_weight
        if cw is None:
            return np.ones(len(y_idx))
        if cw == "balanced":
            counts = np.bincount(y_idx[train_idx], minlength=2)
            per_class = len(train_idx) / (2.0 * np.maximum(counts, 1))
            return np.asarray(per_class[y_idx], dtype=np.float64)
        unknown = [k for k in cw if k not in set(self.classes_.tolist())]
        if unknown:
            raise ValueError(f"class_weight names labels {unknown} that are not in y; the classes are "
                             f"{self.classes_.tolist()}")
        per_class = np.array([float(cw.get(c, 1.0)) for c in self.classes_.tolist()])
        if not np.isfinite(per_class).all() or (per_class <= 0).any():
            raise ValueError(f"class_weight values must be positive numbers, got {cw!r}")
        return np.asarray(per_class[y_idx], dtype=np.float64)

    def _choose_threshold(
        self, inputs: dict[str, torch.Tensor], y_val: np.ndarray, val_idx: np.ndarray
    ) -> None:
        if self.threshold != "f1":
            self.decision_threshold_ = float(self.threshold)
            return
        model = self._check_fitted()
        from xdomain.training.trainer import check_precision, predict_batches

        with torch.no_grad():
            out = predict_batches(model, _Rows(inputs, None, None, val_idx), self._eval_batch_size,
                                  check_precision(self.mixed_precision))
        scores = torch.softmax(out, dim=-1)[:, 1].numpy()
        self.decision_threshold_ = f1_threshold(y_val, scores)

    # -- inputs ------------------------------------------------------------------------------------
    def _encode(self, frame: pd.DataFrame) -> dict[str, torch.Tensor]:
        values, ids = self.schema_.transform(frame)
        self.unknown_levels_ = dict(self.schema_.unknown_counts)
        unseen = {c: n for c, n in self.unknown_levels_.items() if n}
        if unseen and hasattr(self, "model_"):
            warnings.warn(f"levels never seen in training went to the unknown token: {unseen} (rows per "
                          "column)", UserWarning, stacklevel=4)
        return {"values": torch.from_numpy(values), "ids": torch.from_numpy(ids)}

    def _inputs(self, X: Any, fitting: bool) -> Any:
        del fitting
        schema = getattr(self, "schema_", None)
        if schema is None:
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit() or load() first")
        return self._encode(as_frame(X, schema.columns))

    def _dataset(self, inputs: Any, y: torch.Tensor | None, indices: np.ndarray | None) -> Dataset[Any]:
        return _Rows(inputs, y, getattr(self, "_weights", None), indices)

    @staticmethod
    def _num_samples(inputs: Any) -> int:
        return int(inputs["values"].shape[0])

    # -- model -------------------------------------------------------------------------------------
    def _build_model(self, n_outputs: int) -> nn.Module:
        self._check_settings()
        backbone = self._backbone()
        schema = self.schema_
        cards = schema.cardinalities
        transform: nn.Module
        head: nn.Module
        if self.route == "image":
            n_features = len(schema.numeric_columns) + sum(cards)
            adapter = TransactionAdapter(cards, one_hot=True)
            transform = FeatureImageTransform(n_features, layout=self.layout, region_size=self.region_size)
            if self.head == "linear":
                head = LinearHead(n_outputs, pooling="none", standardize=True)
            else:
                if getattr(backbone, "output_kind", "logits") != "logits":
                    raise ValueError(f"head={self.head!r} maps source classes; backbone "
                                     f"{getattr(backbone, 'name', '?')!r} gives embeddings: use "
                                     "head='linear'")
                head = LabelMappingHead(n_outputs, method=self.head, seed=self.random_state)
        else:
            adapter = TransactionAdapter(cards, one_hot=False)
            names = [*schema.numeric_columns, *schema.categorical_columns]
            transform = FeatureTokenTransform(len(schema.numeric_columns), cards, names=names,
                                              seed=self.random_state)
            head = LinearHead(n_outputs, pooling="mean")
        return Reprogrammer(backbone, transform, head, adapter=adapter)

    # -- predictions -------------------------------------------------------------------------------
    def predict(self, X: Any) -> np.ndarray:
        """``classes_[1]`` where the positive-class probability reaches ``decision_threshold_``."""
        proba = self.predict_proba(X)
        return np.asarray(self.classes_[(proba[:, 1] >= self.decision_threshold_).astype(int)])

    def decision_function(self, X: Any) -> np.ndarray:
        """The positive-class probability of each row (what the ranking metrics read)."""
        return np.asarray(self.predict_proba(X)[:, 1])

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """As :meth:`ReprogrammingEstimator.save`; ``backbone=None`` (the route's default) is recorded by
        that default's name, so that ``xdomain.load`` rebuilds it without being given it."""
        model: Any = self._check_fitted()
        params = {k: json_param(v) for k, v in self.get_params(deep=False).items()}
        if self.backbone is None:
            params["backbone"] = DEFAULT_BACKBONES[self.route]
        model.save(path, estimator_meta(self, self._extra_state(), params), overwrite=overwrite)

    def _extra_state(self) -> dict[str, Any]:
        state = super()._extra_state()
        if hasattr(self, "schema_"):
            state["schema"] = self.schema_.to_dict()
        if hasattr(self, "decision_threshold_"):
            state["decision_threshold"] = self.decision_threshold_
        if isinstance(self.class_weight, dict):
            # a dict parameter is not a JSON value (its keys are labels, of any type); saved as pairs so
            # the loaded estimator refits with the weights it was given, not unweighted
            state["class_weight"] = [[_json_label(k), float(v)] for k, v in self.class_weight.items()]
        return state

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        super()._set_extra_state(state)
        if "schema" in state:
            self.schema_ = TransactionSchema.from_dict(state["schema"])
            self.n_features_in_ = len(self.schema_.columns)
            self.feature_names_in_ = np.asarray(self.schema_.columns, dtype=object)
        if "decision_threshold" in state:
            self.decision_threshold_ = float(state["decision_threshold"])
        if "class_weight" in state:
            self.class_weight = {label: weight for label, weight in state["class_weight"]}


def _json_label(label: Any) -> Any:
    """A class label as a JSON value (numpy scalars as Python ones); anything else is an error."""
    value = label.item() if isinstance(label, np.generic) else label
    if not isinstance(value, (str, int, float, bool)):
        raise TypeError(f"class_weight keys must be numbers or strings to be saved, got {label!r} "
                        f"({type(label).__name__})")
    return value


def _pass_through(size: int) -> PixelPassThroughBackbone:
    key = ("pixels", size)
    if key not in _ABLATIONS:
        _ABLATIONS[key] = PixelPassThroughBackbone(size)
    backbone: PixelPassThroughBackbone = _ABLATIONS[key]
    return backbone


def _identity(source: Any) -> IdentityBackbone:
    key = ("identity", id(source))
    if key not in _ABLATIONS:
        _ABLATIONS[key] = IdentityBackbone(source)
    backbone: IdentityBackbone = _ABLATIONS[key]
    return backbone


_ABLATIONS: dict[tuple[str, Any], Any] = {}


__all__ = [
    "DEFAULT_BACKBONES",
    "ROUTES",
    "VALIDATION_SPLITS",
    "PixelPassThroughBackbone",
    "TransactionClassifier",
]

"""Time series classification through a frozen speech or vision model (Voice2Series, Yang et al., ICML 2021).

    y_hat = O( f( Pad(x) + M * W ) )

The series (z-normalised) is placed into the backbone's input: a 16 kHz waveform for a speech model (each
sample repeated so the series spans the clip, optionally several copies), or an image for a vision model
(a Gramian angular field, shrunk, with the program on the border). A trainable additive program ``W``
is the only input parameter; the frozen model's source classes are mapped to the target classes by a
label mapping (random, frequency, iterative, Bayesian), or a linear head reads its output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from xdomain.estimators import ReprogrammingClassifier, cached_backbone

MAPPINGS = ("random", "flm", "ilm", "blm", "blm+", "linear")
PROGRAMS = ("outside", "full", "none")


def series_matrix(X: Any, length: int | None = None, missing: str = "error") -> np.ndarray:
    """Series as a float32 matrix ``(N, L)``: from an array ``(N, L)``, a DataFrame (a row per series),
    or a list of 1-D arrays. Unequal lengths are an error unless ``length`` is given, in which case every
    series is linearly resampled to ``length``. NaN values are an error unless ``missing="interpolate"``."""
    if missing not in ("error", "interpolate"):
        raise ValueError(f"missing must be 'error' or 'interpolate', got {missing!r}")
    if hasattr(X, "to_numpy") and getattr(X, "ndim", 1) == 2:
        X = X.to_numpy()
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim == 3 and X.shape[1] == 1:
            X = X[:, 0, :]
        if X.ndim != 2:
            raise ValueError(f"X must be (n_series, length) for univariate series, got shape {X.shape}")
        rows = list(np.asarray(X, dtype=np.float64))
    else:
        try:
            rows = [np.asarray(r, dtype=np.float64).reshape(-1) for r in X]
        except (TypeError, ValueError) as err:
            raise TypeError(f"X must be an array (n_series, length) or a list of 1-D series: {err}") from err
    if not rows:
        raise ValueError("X is empty: expected at least one series")
    lengths = sorted({len(r) for r in rows})
    if lengths[0] == 0:
        raise ValueError(f"series {next(i for i, r in enumerate(rows) if len(r) == 0)} is empty")
    out = []
    for i, r in enumerate(rows):
        bad = ~np.isfinite(r)
        if bad.any():
            if missing == "error" or bad.all():
                raise ValueError(
                    f"series {i} has {int(bad.sum())} NaN/inf values (first at position "
                    f"{int(np.argmax(bad))}); impute them or pass missing='interpolate'"
                )
            pos = np.arange(len(r))
            r = r.copy()
            r[bad] = np.interp(pos[bad], pos[~bad], r[~bad])
        if length is not None and len(r) != length:
            r = np.interp(np.linspace(0, len(r) - 1, length), np.arange(len(r)), r)
        out.append(r)
    if length is None and len(lengths) > 1:
        raise ValueError(
            f"series have unequal lengths {lengths[:5]}{'...' if len(lengths) > 5 else ''}; "
            "pass length=<int> to resample every series to one length"
        )
    return np.stack(out).astype(np.float32)


class TimeSeriesClassifier(ReprogrammingClassifier):
    """Classify univariate series with a frozen speech or vision model (scikit-learn estimator).

    Args:
        backbone: ``crepe-tiny`` (default; a 16 kHz pitch CNN with 360 source classes), ``crepe-full``,
            ``speaker-encoder`` / ``vggish`` (embeddings: use ``mapping="linear"``), ``efficientnet-lite0``
            (images), ``none`` (no backbone: the program read by a linear head), a ``transformers`` audio
            or image model name, or a loaded backbone.
        mapping: output alignment: ``random`` (many-to-one), ``flm``, ``ilm``, ``blm``, ``blm+``, or
            ``linear`` (a trained linear head on the backbone's output; the only choice for embeddings).
        sources_per_class: source classes per target class for ``random``/``flm``/``ilm``.
        program: where the additive program acts: ``full`` (default), ``outside`` the series
            (Voice2Series' mask), or ``none`` (no program: a frozen-feature probe when ``mapping="linear"``).
        copies: copies of the series placed in the waveform (Voice2Series' multi-segment input).
        upsample: times each sample is repeated (None: as many as fill the clip).
        clip_length: samples per waveform for a speech backbone given by name (None: its own default,
            16,000 for CREPE). The default, 4,096 samples with ``program="full"``, was chosen on TRAIN data
            only (``benchmarks/choose_defaults.py``; figures: ``benchmarks/results/choose_defaults.md``):
            3-fold stratified cross-validation on the TRAIN splits of UCR GunPoint, ItalyPowerDemand and
            Coffee with CREPE-tiny and ``mapping="ilm"``, each fit stopping early on its own validation cut.
            It scored 95.3% mean held-out accuracy (98/96/93% per set); on the first fold, where the others
            stopped (more than 10 points behind), 1,024 samples with a full program scored 85%, 1,024 with
            the program outside the series 78%, and Voice2Series' 4,096 with the program outside 65%.
            A 4,096-sample clip costs about 3.4 times as much per training step as 1,024. The mapping,
            epochs and lr were kept, not re-chosen. A backbone given as an instance keeps its own input
            length.
        image_size: side of the series image inside the border (vision backbones; None: half the input).
        length: resample every series to this length (None: all series must have one length).
        missing: ``"error"`` on NaN values, or ``"interpolate"`` them linearly.
        black_box: train as BAR does (Tsai et al., ICML 2020): the backbone is queried for output
            probabilities only and the program follows a zeroth-order gradient estimate over
            ``directions`` random directions a step (``queries_`` counts the examples sent).
        epochs, batch_size, lr, patience, max_steps: training (Adam on the program and head).
        validation_fraction: stratified part of the training data held back to pick the best epoch.
        random_state: seed for the split, the initial mapping, batches and weights.
        mixed_precision: ``"no"`` (float32), ``"bf16"`` or ``"fp16"`` autocast for training and
            prediction (bf16 runs on CPUs with AMX and on recent GPUs).

    Example::

        clf = TimeSeriesClassifier(backbone="crepe-tiny", mapping="ilm").fit(X_train, y_train)
        clf.predict_proba(X_test)
    """

    def __init__(
        self,
        backbone: Any = "crepe-tiny",
        mapping: str = "ilm",
        sources_per_class: int = 1,
        program: str = "full",
        copies: int = 1,
        upsample: int | None = None,
        clip_length: int | None = 4096,
        image_size: int | None = None,
        length: int | None = None,
        missing: str = "error",
        black_box: bool = False,
        directions: int = 5,
        epochs: int = 60,
        batch_size: int = 16,
        lr: float | None = 0.05,
        patience: int = 15,
        validation_fraction: float = 0.2,
        max_steps: int | None = None,
        random_state: int = 0,
        verbose: bool = False,
        mixed_precision: str = "no",
    ) -> None:
        self.backbone = backbone
        self.mapping = mapping
        self.sources_per_class = sources_per_class
        self.program = program
        self.copies = copies
        self.upsample = upsample
        self.clip_length = clip_length
        self.image_size = image_size
        self.length = length
        self.missing = missing
        self.black_box = black_box
        self.directions = directions
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.max_steps = max_steps
        self.random_state = random_state
        self.verbose = verbose
        self.mixed_precision = mixed_precision

    def _inputs(self, X: Any, fitting: bool) -> torch.Tensor:
        x = series_matrix(X, self.length, self.missing)
        if fitting:
            self.series_length_ = int(x.shape[1])
        else:
            expected = getattr(self, "series_length_", None)
            if expected is not None and x.shape[1] != expected:
                raise ValueError(
                    f"series have length {x.shape[1]}, but the classifier was fitted on length {expected}; "
                    "pass length=<int> to resample"
                )
        return torch.from_numpy(x)

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "series_length": getattr(self, "series_length_", None)}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        super()._set_extra_state(state)
        if state.get("series_length") is not None:
            self.series_length_ = int(state["series_length"])

    def _backbone(self) -> Any:
        backbone = cached_backbone(self.backbone, domain="audio-or-image")
        clip = self.clip_length
        if clip is not None and (not isinstance(clip, int) or isinstance(clip, bool) or clip < 1):
            raise ValueError(f"clip_length must be a positive integer or None, got {clip!r}")
        if (
            isinstance(self.backbone, str)
            and clip is not None
            and getattr(backbone, "input_kind", None) == "waveform"
            and backbone.input_length != clip
        ):
            backbone = cached_backbone(self.backbone, domain="audio-or-image", input_length=clip)
        return backbone

    def _head(self, n_classes: int) -> nn.Module:
        from xdomain.heads.label_mapping import LabelMappingHead
        from xdomain.heads.linear import LinearHead

        if self.mapping not in MAPPINGS:
            raise ValueError(f"mapping must be one of {MAPPINGS}, got {self.mapping!r}")
        if self.mapping == "linear":
            return LinearHead(n_classes, pooling="none", standardize=True)
        return LabelMappingHead(
            n_classes, method=self.mapping, sources_per_class=self.sources_per_class, seed=self.random_state
        )

    def _build_model(self, n_outputs: int) -> nn.Module:
        from xdomain.reprogrammer import Reprogrammer

        if self.program not in PROGRAMS:
            raise ValueError(f"program must be one of {PROGRAMS}, got {self.program!r}")
        for name, value in (("copies", self.copies), ("upsample", self.upsample)):
            if not (value is None and name == "upsample") and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                allowed = "a positive integer" + (" or None" if name == "upsample" else "")
                raise ValueError(f"{name} must be {allowed}, got {value!r}")
        backbone = self._backbone()
        length = int(self.series_length_)
        learnable = self.program != "none"
        adapter: nn.Module
        transform: nn.Module
        kind = getattr(backbone, "input_kind", None)
        if kind == "waveform":
            from xdomain.adapters.series_to_waveform import SeriesToWaveformAdapter
            from xdomain.transforms.additive import AdditiveProgramTransform

            total = int(backbone.input_length)
            upsample = self.upsample or max(1, total // (length * self.copies))
            adapter = SeriesToWaveformAdapter()
            transform = AdditiveProgramTransform(
                copies=self.copies, upsample=upsample, mask=self.program, learnable=learnable,
                seed=self.random_state,
            )
        elif kind == "image":
            from xdomain.adapters.series_to_image import SeriesToImageAdapter
            from xdomain.transforms.additive import VisualPromptTransform

            inner = self.image_size or int(backbone.image_size) // 2
            adapter = SeriesToImageAdapter(size=inner)
            transform = VisualPromptTransform(inner_size=inner, learnable=learnable, seed=self.random_state)
        else:
            raise ValueError(
                f"backbone {getattr(backbone, 'name', type(backbone).__name__)!r} takes {kind!r} input; "
                "a time series classifier needs a waveform (speech) or image (vision) backbone"
            )
        return Reprogrammer(backbone, transform, self._head(n_outputs), adapter=adapter)


__all__ = ["MAPPINGS", "PROGRAMS", "TimeSeriesClassifier", "series_matrix"]

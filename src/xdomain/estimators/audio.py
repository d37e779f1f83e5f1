"""Audio classification through a frozen speech model: clips read with soundfile, resampled to the model's
rate, cropped or padded to its input length; an optional additive program on the waveform (I); a label
mapping or a linear head (O) on the frozen model's output (f)."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from xdomain.adapters.audio import AudioAdapter, load_clips
from xdomain.backbones.loader import resolve_backbone
from xdomain.estimators.base import ReprogrammingClassifier
from xdomain.heads.label_mapping import MAPPINGS, LabelMappingHead
from xdomain.heads.linear import LinearHead
from xdomain.registry import ESTIMATORS
from xdomain.reprogrammer import Reprogrammer
from xdomain.transforms.additive import AdditiveProgramTransform


@ESTIMATORS.register("AudioClassifier")
class AudioClassifier(ReprogrammingClassifier):
    """Classify audio clips with a frozen speech model (scikit-learn estimator).

    Args:
        backbone: ``speaker-encoder`` (default; GE2E embeddings), ``crepe-tiny``/``crepe-full`` (360 pitch
            classes), ``vggish`` (give its weights), a ``transformers`` audio model name, or a loaded
            backbone.
        mapping: ``linear`` (a trained linear head; needed for embedding backbones), or a label mapping
            over source classes: ``random``, ``flm``, ``ilm``, ``blm``, ``blm+``.
        program: ``full`` (a trainable additive program over the whole clip) or ``none`` (frozen features:
            with ``mapping="linear"`` this is a linear probe).
        sample_rate: the rate of clips given as arrays (files carry their own).
        mix: ``"error"`` for multi-channel audio, or ``"mean"`` to average the channels.
        epochs, batch_size, lr, patience, max_steps, validation_fraction, random_state, verbose,
            mixed_precision: as :class:`~xdomain.estimators.series.TimeSeriesClassifier`. The defaults
            ``lr=0.003``, ``epochs=60`` were chosen on TRAIN data only
            (``benchmarks/choose_defaults_domains.py --task audio``; figures:
            ``benchmarks/results/choose_defaults_audio.md``): 3-fold stratified cross-validation on FSDD's
            official training recordings with the speaker encoder and the full program, over lr 0.003 /
            0.01 / 0.03 and 30 / 60 epochs. They scored 84.3% mean held-out accuracy; the earlier 0.01 /
            30 scored 66% on the first fold and was stopped there. The frozen-feature probe
            (``program="none"``) scored 84.7% on the same folds.

    Example::

        clf = AudioClassifier(backbone="speaker-encoder").fit(wav_paths, labels)
        clf.predict(test_paths)
    """

    def __init__(
        self,
        backbone: Any = "speaker-encoder",
        mapping: str = "linear",
        sources_per_class: int = 1,
        program: str = "full",
        sample_rate: int | None = None,
        mix: str = "error",
        epochs: int = 60,
        batch_size: int = 16,
        lr: float | None = 0.003,
        patience: int = 10,
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
        self.sample_rate = sample_rate
        self.mix = mix
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
        del fitting
        backbone = resolve_backbone(self.backbone, domain="audio")
        kind = getattr(backbone, "input_kind", None)
        if kind != "waveform":
            raise ValueError(
                f"backbone {getattr(backbone, 'name', type(backbone).__name__)!r} takes {kind!r} input; "
                "audio needs a waveform (speech) backbone"
            )
        if isinstance(X, (str, os.PathLike)):
            raise TypeError(f"X must be a list of clips (paths or arrays), got a single path {str(X)!r}")
        clips = list(X)
        if self.sample_rate is None and any(not isinstance(c, (str, os.PathLike)) for c in clips):
            raise ValueError(
                "clips given as arrays need their sampling rate: pass sample_rate=<Hz> to AudioClassifier"
            )
        return load_clips(
            clips, sample_rate=int(backbone.sample_rate), length=int(backbone.input_length),
            orig_rate=self.sample_rate, mix=self.mix,
        )

    def _build_model(self, n_outputs: int) -> nn.Module:
        if self.program not in ("full", "none"):
            raise ValueError(f"program must be 'full' or 'none', got {self.program!r}")
        if self.mapping not in MAPPINGS:
            raise ValueError(f"mapping must be one of {MAPPINGS}, got {self.mapping!r}")
        backbone = resolve_backbone(self.backbone, domain="audio")
        transform = AdditiveProgramTransform(
            copies=1, upsample=1, mask=self.program, learnable=self.program != "none", seed=self.random_state
        )
        head: nn.Module = (
            LinearHead(n_outputs, pooling="none", standardize=True)
            if self.mapping == "linear"
            else LabelMappingHead(
                n_outputs, method=self.mapping, sources_per_class=self.sources_per_class,
                seed=self.random_state,
            )
        )
        return Reprogrammer(backbone, transform, head, adapter=AudioAdapter(normalise="peak"))


__all__ = ["AudioClassifier"]

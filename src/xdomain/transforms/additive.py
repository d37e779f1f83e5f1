"""I: additive input programs for frozen waveform and image classifiers.

:class:`AdditiveProgramTransform` is Voice2Series' input (Yang et al., "Voice2Series: Reprogramming
acoustic models for time series classification", ICML 2021): the target series is zero-padded into
the source model's waveform, optionally in several copies, and a trainable program ``W`` of the
waveform's length is added under a mask ``M``: ``x' = pad(x) + M * W``.

:class:`VisualPromptTransform` is the padding visual prompt (Elsayed et al., "Adversarial
reprogramming of neural networks", ICLR 2019; Bahng et al., "Exploring visual prompts for adapting
large-scale models", 2022; ILM-VP, Chen et al., CVPR 2023): the image is shrunk into the centre of the
source model's canvas and a trainable program fills the border around it.

Departures from the official Voice2Series code: its mask is built but never applied (the program is
added everywhere, with dropout on ``W``), and its several copies start at multiples of
``(T // L // copies) * L``. Here the mask is applied as chosen (``"outside"``, ``"full"`` or
``"none"``), and the copies are centred in ``copies`` equal segments of the waveform (one copy: centred,
as in the paper's figure).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xdomain.registry import TRANSFORMS

MASKS = ("outside", "full", "none")
INITS = ("zeros", "random")
RANDOM_STD = 0.01  # init="random": W ~ N(0, 0.01^2)


def _positive_int(name: str, value: Any, owner: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return value


def _initial_program(shape: tuple[int, ...], init: str, seed: int, owner: str) -> torch.Tensor:
    if init not in INITS:
        raise ValueError(f"{owner}: init must be one of {list(INITS)}, got {init!r}")
    if init == "zeros":
        return torch.zeros(shape)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator) * RANDOM_STD


def _backbone_size(backbone: Any, attribute: str, owner: str) -> int:
    value = getattr(backbone, attribute, None)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"{owner} needs a backbone with a positive int {attribute!r} "
            f"(a {'waveform' if attribute == 'input_length' else 'image'} classifier); "
            f"{type(backbone).__name__} has {attribute}={value!r}"
        )
    return value


@TRANSFORMS.register("additive-program")
class AdditiveProgramTransform(nn.Module):
    """I: Voice2Series' additive program: ``x' = place(upsample(x)) + M * W`` in the backbone's waveform.

    Args:
        copies: copies of the series, centred in ``copies`` equal segments of the waveform.
        upsample: repeat each sample this many times (nearest), so that the series spans more frames of
            a model that reads its waveform in frames (a 150-sample series is a tenth of one 1024-sample
            frame of CREPE).
        mask: where the program is added: ``"outside"`` the series (Voice2Series' masked program),
            ``"full"`` (everywhere, on top of the series too) or ``"none"`` (no program: the baseline
            that shows what the program adds).
        learnable: ``W`` trains (an ``nn.Parameter``); ``False`` keeps it fixed (a buffer).
        init: ``"zeros"`` or ``"random"`` (``N(0, 0.01^2)``, drawn from ``seed``).
        seed: seed of the random initial program.

    ``W`` has the backbone's waveform length ``T = backbone.input_length`` and is made by :meth:`bind`.

    Shapes:
        - input: ``(B, L)`` series (z-normalised: :class:`~xdomain.adapters.SeriesToWaveformAdapter`)
        - output: ``(B, T)`` waveform, with ``L * upsample * copies <= T``
    """

    program: torch.Tensor  # (T,) W: a parameter or a buffer, made by bind()

    def __init__(
        self,
        copies: int = 1,
        upsample: int = 1,
        mask: str = "outside",
        learnable: bool = True,
        init: str = "zeros",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.copies = copies
        self.upsample = upsample
        self.mask = mask
        self.learnable = learnable
        self.init = init
        self.seed = seed
        self.length: int | None = None  # T, set by bind()

    def bind(self, backbone: Any, **_: Any) -> AdditiveProgramTransform:
        owner = type(self).__name__
        length = _backbone_size(backbone, "input_length", owner)
        if self.length is not None:
            if length != self.length:
                raise ValueError(f"{owner} is bound to waveforms of {self.length} samples; "
                                 f"this backbone takes {length}")
            return self
        _positive_int("copies", self.copies, owner)
        _positive_int("upsample", self.upsample, owner)
        if self.mask not in MASKS:
            raise ValueError(f"{owner}: mask must be one of {list(MASKS)}, got {self.mask!r}")
        w = _initial_program((length,), self.init, self.seed, owner)
        if self.mask == "none":
            # the no-program baseline: nothing is added, so nothing trains
            self.register_buffer("program", torch.zeros(length))
        elif self.learnable:
            self.program = nn.Parameter(w)
        else:
            self.register_buffer("program", w)
        self.length = length
        return self

    def offsets(self, series_length: int) -> list[int]:
        """Where each copy of an ``L``-sample series starts in the waveform (after upsampling)."""
        total = self._bound_length()
        n = series_length * self.upsample
        if n * self.copies > total:
            raise ValueError(
                f"{self.copies} copies of a {series_length}-sample series upsampled x{self.upsample} need "
                f"L*upsample*copies = {n * self.copies} samples, but the backbone's waveform has "
                f"T = {total}; lower upsample or copies"
            )
        segment = total // self.copies
        return [k * segment + (segment - n) // 2 for k in range(self.copies)]

    def program_mask(self, series_length: int) -> torch.Tensor:
        """``M``, ``(T,)``: 1 where the program is added for an ``L``-sample series, else 0."""
        total = self._bound_length()
        n = series_length * self.upsample
        starts = self.offsets(series_length)
        if self.mask == "full":
            return torch.ones(total)
        if self.mask == "none":
            return torch.zeros(total)
        m = torch.ones(total)
        for start in starts:
            m[start : start + n] = 0.0
        return m

    def num_program_parameters(self, series_length: int | None = None) -> int:
        """Trainable entries of ``W``; given the series length, only those the mask lets through."""
        self._bound_length()
        if not isinstance(self.program, nn.Parameter):
            return 0
        if series_length is None:
            return self.program.numel()
        return int(self.program_mask(series_length).sum().item())

    def _bound_length(self) -> int:
        if self.length is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a backbone; call bind(backbone)")
        return self.length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self._bound_length()
        if x.ndim != 2 or not x.is_floating_point():
            raise ValueError(
                f"{type(self).__name__} expects a float series batch (B, L), got {tuple(x.shape)} {x.dtype}"
            )
        b, length = x.shape
        starts = self.offsets(length)
        n = length * self.upsample
        x = x.repeat_interleave(self.upsample, dim=1) if self.upsample > 1 else x  # (B, L*upsample)
        index = torch.cat([torch.arange(s, s + n, device=x.device) for s in starts])  # (copies*n,)
        placed = x.new_zeros(b, total)
        placed = placed.index_copy(1, index, x.repeat(1, self.copies))  # (B, T)
        if self.mask == "none":
            return placed
        m = self.program_mask(length).to(device=x.device, dtype=x.dtype)  # (T,)
        return placed + m * self.program.to(x.dtype)  # (B, T)


@TRANSFORMS.register("visual-prompt")
class VisualPromptTransform(nn.Module):
    """I: the padding visual prompt: shrink the image into the centre, a learned program on the border.

    Args:
        inner_size: side of the shrunk image (default ``image_size // 2``; must be below ``image_size``).
        learnable: the program trains (an ``nn.Parameter``); ``False`` keeps it fixed (a buffer).
        init: ``"zeros"`` or ``"random"`` (``N(0, 0.01^2)``, drawn from ``seed``).
        seed: seed of the random initial program.

    The output is clamped to ``[0, 1]`` with a straight-through clamp: the forward pass clips, the
    backward pass lets the gradient through as if it had not, so a border pixel pushed past 0 or 1
    can still be pulled back (a hard clamp would give it zero gradient for good). Only the border can
    leave the range, since the image itself must already lie in ``[0, 1]``.

    Shapes:
        - input: ``(B, 3, h, w)`` pixels in ``[0, 1]``
        - output: ``(B, 3, S, S)``, ``S = backbone.image_size``
    """

    program: torch.Tensor  # (3, S, S): a parameter or a buffer, made by bind()
    border: torch.Tensor  # (1, S, S): M, 1 outside the inner square

    def __init__(
        self, inner_size: int | None = None, learnable: bool = True, init: str = "zeros", seed: int = 0
    ) -> None:
        super().__init__()
        self.inner_size = inner_size
        self.learnable = learnable
        self.init = init
        self.seed = seed
        self.size: int | None = None  # S, set by bind()
        self.inner: int | None = None

    def bind(self, backbone: Any, **_: Any) -> VisualPromptTransform:
        owner = type(self).__name__
        size = _backbone_size(backbone, "image_size", owner)
        if self.size is not None:
            if size != self.size:
                raise ValueError(f"{owner} is bound to {self.size} x {self.size} images; this backbone takes "
                                 f"{size} x {size}")
            return self
        inner = size // 2 if self.inner_size is None else self.inner_size
        if not isinstance(inner, int) or isinstance(inner, bool) or not 0 < inner < size:
            raise ValueError(
                f"{owner}: inner_size must be an int in [1, {size - 1}] for {size} x {size} images, "
                f"got {self.inner_size!r}"
            )
        w = _initial_program((3, size, size), self.init, self.seed, owner)
        if self.learnable:
            self.program = nn.Parameter(w)
        else:
            self.register_buffer("program", w)
        top = (size - inner) // 2
        m = torch.ones(1, size, size)
        m[:, top : top + inner, top : top + inner] = 0.0
        self.register_buffer("border", m)
        self.size, self.inner = size, inner
        return self

    def num_program_parameters(self) -> int:
        """Trainable program entries that reach the output: ``3 * (S^2 - inner^2)`` when learnable."""
        if self.size is None or self.inner is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a backbone; call bind(backbone)")
        if not isinstance(self.program, nn.Parameter):
            return 0
        return int(self.border.sum().item()) * 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.size is None or self.inner is None:
            raise RuntimeError(f"{type(self).__name__} is not bound to a backbone; call bind(backbone)")
        if x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
            raise ValueError(
                f"{type(self).__name__} expects float images (B, 3, h, w), got {tuple(x.shape)} {x.dtype}"
            )
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{type(self).__name__} expects pixels in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
                "scale them first (e.g. divide 8-bit images by 255)"
            )
        inner, size = self.inner, self.size
        if x.shape[-2:] != (inner, inner):
            # bilinear weights are convex: the shrunk image stays in [0, 1]
            x = F.interpolate(x, size=(inner, inner), mode="bilinear", align_corners=False, antialias=True)
        top = (size - inner) // 2
        x = F.pad(x, (top, size - inner - top, top, size - inner - top))  # (B, 3, S, S)
        out = x + self.border.to(x.dtype) * self.program.to(x.dtype)
        return out + (out.clamp(0.0, 1.0) - out).detach()  # straight-through clamp


__all__ = ["INITS", "MASKS", "RANDOM_STD", "AdditiveProgramTransform", "VisualPromptTransform"]

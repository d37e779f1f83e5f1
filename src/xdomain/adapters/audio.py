"""Domain adapter for audio: files or arrays -> fixed-length waveforms at a backbone's sample rate.

:func:`read_audio` reads one file through ``soundfile`` (``torchaudio.load`` needs FFmpeg, which is not
always there); :func:`load_clips` resamples clips to a backbone's rate and centres them in a fixed
length; :class:`AudioAdapter` is the adapter a :class:`~xdomain.reprogrammer.Reprogrammer` runs on the
batch (peak normalisation, or nothing).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile  # type: ignore[import-untyped]
import torch
from torch import nn

from xdomain.registry import ADAPTERS

Clip = str | os.PathLike[str] | np.ndarray | torch.Tensor
_MIX = ("error", "mean")


def read_audio(path: str | os.PathLike[str], mix: str = "error") -> tuple[np.ndarray, int]:
    """One audio file as mono float32 samples in ``[-1, 1]`` and its sample rate.

    Args:
        path: a file ``soundfile`` reads (WAV, FLAC, OGG, ...).
        mix: ``"error"``: a file with several channels is an error; ``"mean"``: average the channels.

    Shapes:
        - output: ``(T,)`` float32, and the rate in Hz
    """
    if mix not in _MIX:
        raise ValueError(f"mix must be one of {list(_MIX)}, got {mix!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file {str(path)!r} not found (or not a file)")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"cannot read {str(path)!r} as audio ({err}); "
            "expected a file soundfile decodes (WAV, FLAC, OGG, ...)"
        ) from err
    channels = data.shape[1]
    if channels > 1:
        if mix == "error":
            raise ValueError(
                f"{str(path)!r} has {channels} channels; expected mono, or pass mix='mean' to average them"
            )
        return data.mean(axis=1, dtype=np.float32), int(rate)
    return np.ascontiguousarray(data[:, 0]), int(rate)


def fit_length(wave: torch.Tensor, length: int) -> torch.Tensor:
    """Centre-crop or zero-pad a ``(T,)`` clip to ``(length,)``; the clip stays centred either way.

    Centring keeps a short spoken word in the middle of a keyword-spotting model's window, where its
    training clips put it."""
    n = wave.shape[0]
    if n >= length:
        start = (n - length) // 2
        return wave[start : start + length]
    left = (length - n) // 2
    return torch.nn.functional.pad(wave, (left, length - n - left))


def _as_wave(clip: Clip, index: int, orig_rate: int | None, mix: str) -> tuple[torch.Tensor, int, str]:
    if isinstance(clip, str | os.PathLike):
        samples, rate = read_audio(clip, mix)
        if orig_rate is not None and rate != orig_rate:
            raise ValueError(f"clip {index} ({os.fspath(clip)!r}) is at {rate} Hz, but orig_rate={orig_rate}")
        return torch.from_numpy(samples), rate, repr(os.fspath(clip))
    if isinstance(clip, np.ndarray | torch.Tensor):
        if orig_rate is None:
            raise ValueError(f"clip {index} is an array: pass orig_rate= (its sample rate in Hz)")
        wave = torch.as_tensor(clip).detach().cpu()
        if wave.ndim != 1:
            raise ValueError(f"clip {index} must be a 1-D array of samples, got shape {tuple(wave.shape)}")
        if not wave.is_floating_point():
            raise TypeError(
                f"clip {index} has dtype {wave.dtype}; expected float samples in [-1, 1] "
                "(divide int16 PCM by 32768 first)"
            )
        return wave.to(torch.float32), orig_rate, f"array {index}"
    raise TypeError(f"clip {index} must be a path or a 1-D numpy array / tensor, got {type(clip).__name__}")


def load_clips(
    clips: Sequence[Clip],
    sample_rate: int,
    length: int,
    orig_rate: int | None = None,
    mix: str = "error",
) -> torch.Tensor:
    """Clips (file paths, or 1-D float arrays at ``orig_rate``) as one batch of waveforms.

    Each clip is resampled to ``sample_rate`` (``torchaudio.functional.resample``, windowed sinc), then
    centre-cropped or zero-padded to ``length`` samples. A path is read at its own rate (``orig_rate``,
    when given, must agree with it).

    Shapes:
        - output: ``(N, length)`` float32
    """
    if isinstance(clips, str | os.PathLike | np.ndarray | torch.Tensor):
        raise TypeError(f"clips must be a list of paths or 1-D arrays, got one {type(clips).__name__}")
    for name, value in (("sample_rate", sample_rate), ("length", length), ("orig_rate", orig_rate)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if mix not in _MIX:  # checked here too: clips given as arrays never reach read_audio
        raise ValueError(f"mix must be one of {list(_MIX)}, got {mix!r}")
    if len(clips) == 0:
        raise ValueError("no clips given: expected a non-empty list of paths or 1-D arrays")
    # imported here: only resampling needs torchaudio
    import torchaudio.functional as audio_f  # type: ignore[import-untyped]

    out = torch.empty(len(clips), length, dtype=torch.float32)
    for i, clip in enumerate(clips):
        wave, rate, name = _as_wave(clip, i, orig_rate, mix)
        if wave.numel() == 0:
            raise ValueError(f"clip {i} ({name}) is empty: expected at least one sample")
        if not torch.isfinite(wave).all():
            raise ValueError(f"clip {i} ({name}) holds NaN or infinite samples; expected finite samples")
        if rate != sample_rate:
            wave = audio_f.resample(wave, rate, sample_rate)
        out[i] = fit_length(wave, length)
    return out


@ADAPTERS.register("audio")
class AudioAdapter(nn.Module):
    """Domain adapter for waveforms: peak normalisation per clip (or none); the answer passes unchanged.

    Args:
        normalise: ``"peak"`` (divide each clip by its largest absolute sample, so quiet and loud
            recordings reach the backbone at the same level; a silent clip stays zero) or ``"none"``.

    Shapes:
        - encode: ``(B, T)`` -> ``(B, T)``, plus the peaks ``(B, 1)`` (None for ``"none"``)
        - decode: any -> unchanged
    """

    def __init__(self, normalise: str = "peak") -> None:
        super().__init__()
        self.normalise = normalise

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.normalise not in ("peak", "none"):
            raise ValueError(f"normalise must be 'peak' or 'none', got {self.normalise!r}")
        if not isinstance(x, torch.Tensor) or x.ndim != 2 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"audio batch must be a float tensor (B, T), got {shape}")
        if not torch.isfinite(x).all():
            raise ValueError("audio batch holds NaN or infinite samples; expected finite samples")
        if self.normalise == "none":
            return x, None
        peak = x.abs().amax(dim=1, keepdim=True).detach()  # (B, 1)
        return x / peak.clamp_min(torch.finfo(x.dtype).tiny), peak

    def decode(self, y: Any, state: Any = None) -> Any:
        return y


__all__ = ["AudioAdapter", "fit_length", "load_clips", "read_audio"]

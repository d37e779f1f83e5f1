"""Features for the audio baseline: mean and standard deviation over time of log-mel bands (no backbone)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from xdomain.adapters.audio import read_audio


def log_mel_statistics(
    clips: Sequence[str | os.PathLike[str]], sample_rate: int = 8000, n_mels: int = 40
) -> np.ndarray:
    """Mean and standard deviation over time of ``n_mels`` log-mel bands of each audio file, at
    ``sample_rate`` (each clip at its own length, no padding): ``(N, 2 * n_mels)``.

    A logistic regression on these is the honest no-backbone baseline beside a reprogrammed speech model.
    """
    import torchaudio  # type: ignore[import-untyped]

    if len(clips) == 0:
        raise ValueError("clips is empty: expected at least one audio file")
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=256 * max(1, sample_rate // 8000), hop_length=sample_rate // 100,
        n_mels=n_mels,
    )
    rows: list[Any] = []
    for clip in clips:
        wave, clip_rate = read_audio(clip)
        x = torch.from_numpy(wave)
        if clip_rate != sample_rate:
            x = torchaudio.functional.resample(x, clip_rate, sample_rate)
        logmel = torch.log(mel(x) + 1e-6)  # (n_mels, F)
        rows.append(torch.cat([logmel.mean(dim=1), logmel.std(dim=1, unbiased=False)]).numpy())
    return np.stack(rows)


__all__ = ["log_mel_statistics"]

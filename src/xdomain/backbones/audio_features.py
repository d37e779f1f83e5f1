"""Part of f: the fixed front ends of the speech backbones, written in differentiable tensor code.

An input program (Voice2Series) is trained *through* the frozen speech model, so the feature
extraction that each model expects must run inside ``forward`` on tensors: gradients reach the waveform.
Each front end here reproduces the preprocessing its model was trained with:

- :func:`frame_signal`: overlapping frames (CREPE);
- :func:`normalize_volume`: Resemblyzer's increase-only loudness normalisation;
- :class:`LibrosaMelSpectrogram`: ``librosa.feature.melspectrogram`` defaults (Resemblyzer's GE2E encoder),
  through ``torchaudio``;
- :class:`VGGishLogMel`: the log-mel examples of VGGish (Hershey et al., ICASSP 2017; the AudioSet
  ``mel_features.py``);
- :class:`KaldiFbank`: Kaldi filter banks as ``ASTFeatureExtractor`` computes them (AST, Gong et al. 2021);
- :class:`WhisperLogMel`: Whisper's log-mel spectrogram (Radford et al. 2022);
- :func:`zero_mean_unit_var`: the waveform normalisation of wav2vec 2.0 feature extractors.

Shapes are given per function; ``B`` is the batch, ``T`` the number of samples.
"""

from __future__ import annotations

import math

import torch
import torchaudio  # type: ignore[import-untyped]
import torchaudio.compliance.kaldi as kaldi  # type: ignore[import-untyped]
from torch import nn


def frame_signal(x: torch.Tensor, frame_length: int, hop: int, center: bool = True) -> torch.Tensor:
    """Cut ``(B, T)`` into overlapping frames ``(B, F, frame_length)``.

    ``center=True`` zero-pads ``frame_length // 2`` samples at both ends (as ``torchcrepe.preprocess``
    does), so frame ``i`` is centred on sample ``i * hop`` and ``F = 1 + T // hop`` frames cover the whole
    clip. ``center=False`` keeps only full frames inside the clip: ``F = 1 + (T - frame_length) // hop``.
    """
    if frame_length <= 0 or hop <= 0:
        raise ValueError(f"frame_length and hop must be positive, got {frame_length!r} and {hop!r}")
    if center:
        half = frame_length // 2
        x = nn.functional.pad(x, (half, frame_length - half))
    if x.shape[-1] < frame_length:
        raise ValueError(
            f"a clip of {x.shape[-1]} samples is shorter than one frame of {frame_length} samples"
        )
    return x.unfold(-1, frame_length, hop)  # (B, F, frame_length)


def normalize_volume(x: torch.Tensor, target_dbfs: float = -30.0, eps: float = 1e-8) -> torch.Tensor:
    """Raise quiet clips to ``target_dbfs`` RMS; leave louder clips unchanged (Resemblyzer's
    ``normalize_volume(..., increase_only=True)``). ``(B, T) -> (B, T)``.

    ``eps`` bounds the gain of an all-silent clip (Resemblyzer divides by zero there)."""
    target_rms = 10.0 ** (target_dbfs / 20.0)
    rms = x.pow(2).mean(dim=-1, keepdim=True).sqrt()  # (B, 1)
    gain = (target_rms / rms.clamp_min(eps)).clamp_min(1.0)
    return x * gain


def zero_mean_unit_var(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Per-clip ``(x - mean) / sqrt(var + eps)`` with the population variance, as
    ``Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm``. ``(B, T) -> (B, T)``."""
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps)


class LibrosaMelSpectrogram(nn.Module):
    """A power mel spectrogram with the defaults of ``librosa.feature.melspectrogram``.

    Slaney mel scale and Slaney area normalisation, periodic Hann window, centred frames with reflect
    padding (librosa's default before 0.10, when Resemblyzer was trained), power 2, no log.

    Shapes:
        - input: ``(B, T)`` waveform at ``sample_rate``
        - output: ``(B, F, n_mels)`` with ``F = 1 + T // hop_length``
    """

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int) -> None:
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            n_mels=n_mels,
            power=2.0,
            center=True,
            pad_mode="reflect",
            norm="slaney",
            mel_scale="slaney",
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mel(x).transpose(1, 2)  # (B, n_mels, F) -> (B, F, n_mels)


def htk_mel_matrix(
    num_mel_bins: int, num_spectrogram_bins: int, sample_rate: int, lower_hz: float, upper_hz: float
) -> torch.Tensor:
    """VGGish's mel weights ``(num_spectrogram_bins, num_mel_bins)``: HTK mel scale, triangles drawn
    in the mel domain, the DC bin zeroed (AudioSet ``mel_features.spectrogram_to_mel_matrix``).

    torchaudio's ``melscale_fbanks(mel_scale="htk")`` draws the triangles in Hz, which differs."""
    nyquist = sample_rate / 2.0
    if not 0.0 <= lower_hz < upper_hz <= nyquist:
        raise ValueError(
            f"mel band edges must satisfy 0 <= lower < upper <= {nyquist} Hz, got {lower_hz!r}, {upper_hz!r}"
        )

    def hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
        return 1127.0 * torch.log1p(hz / 700.0)

    bins_mel = hz_to_mel(torch.linspace(0.0, nyquist, num_spectrogram_bins, dtype=torch.float64))
    edges = torch.linspace(
        float(hz_to_mel(torch.tensor(lower_hz, dtype=torch.float64))),
        float(hz_to_mel(torch.tensor(upper_hz, dtype=torch.float64))),
        num_mel_bins + 2,
        dtype=torch.float64,
    )
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]  # (num_mel_bins,) each
    rising = (bins_mel[:, None] - lower) / (center - lower)  # (bins, mels)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    weights[0, :] = 0.0
    return weights.float()


class VGGishLogMel(nn.Module):
    """VGGish's input: log-mel patches of 0.96 s (``vggish_input.waveform_to_examples``).

    25 ms periodic-Hann frames every 10 ms without centring, STFT magnitude on 512 points, 64 HTK mel
    bands from 125 to 7500 Hz, ``log(mel + 0.01)``, then non-overlapping examples of 96 frames (a
    trailing partial example is dropped, as in VGGish).

    Shapes:
        - input: ``(B, T)`` waveform at 16 kHz, ``T >= 15600``
        - output: ``(B, N, 96, 64)`` with ``N = (1 + (T - 400) // 160) // 96``
    """

    sample_rate = 16000
    window = 400  # 25 ms
    hop = 160  # 10 ms
    n_fft = 512  # the next power of two above the window
    num_mel_bins = 64
    frames_per_example = 96  # 0.96 s
    log_offset = 0.01
    hann: torch.Tensor
    mel_matrix: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        n = torch.arange(self.window, dtype=torch.float64)
        hann = 0.5 - 0.5 * torch.cos(2 * math.pi * n / self.window)  # periodic
        self.register_buffer("hann", hann.float(), persistent=False)
        mel = htk_mel_matrix(self.num_mel_bins, self.n_fft // 2 + 1, self.sample_rate, 125.0, 7500.0)
        self.register_buffer("mel_matrix", mel, persistent=False)

    @classmethod
    def num_examples(cls, num_samples: int) -> int:
        if num_samples < cls.window:
            return 0
        return (1 + (num_samples - cls.window) // cls.hop) // cls.frames_per_example

    @classmethod
    def min_samples(cls) -> int:
        """The shortest clip that yields one example (15,600 samples, 0.975 s)."""
        return cls.window + (cls.frames_per_example - 1) * cls.hop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.num_examples(x.shape[-1])
        if n == 0:
            raise ValueError(
                f"VGGish needs clips of at least {self.min_samples()} samples (0.975 s at 16 kHz), "
                f"got {x.shape[-1]}"
            )
        frames = frame_signal(x, self.window, self.hop, center=False) * self.hann  # (B, F, 400)
        magnitude = torch.fft.rfft(frames, n=self.n_fft).abs()  # (B, F, 257)
        log_mel = torch.log(magnitude @ self.mel_matrix + self.log_offset)  # (B, F, 64)
        log_mel = log_mel[:, : n * self.frames_per_example]
        return log_mel.reshape(x.shape[0], n, self.frames_per_example, self.num_mel_bins)  # (B, N, 96, 64)


class KaldiFbank(nn.Module):
    """Kaldi log filter banks, as ``ASTFeatureExtractor`` computes them with torchaudio.

    25 ms Hanning frames every 10 ms, ``num_mel_bins`` bands, padded with zeros or truncated to
    ``max_length`` frames, then ``(fbank - mean) / (2 * std)`` when ``normalize``.

    Shapes:
        - input: ``(B, T)`` waveform at ``sample_rate``
        - output: ``(B, max_length, num_mel_bins)``
    """

    def __init__(
        self,
        sample_rate: int,
        num_mel_bins: int,
        max_length: int,
        mean: float,
        std: float,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.num_mel_bins = num_mel_bins
        self.max_length = max_length
        self.mean = mean
        self.std = std
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torchaudio's Kaldi front end takes one clip at a time
        banks = [
            kaldi.fbank(
                clip[None], sample_frequency=self.sample_rate, window_type="hanning",
                num_mel_bins=self.num_mel_bins,
            )
            for clip in x
        ]
        fbank = torch.stack(banks)  # (B, F, num_mel_bins)
        frames = fbank.shape[1]
        if frames < self.max_length:
            fbank = nn.functional.pad(fbank, (0, 0, 0, self.max_length - frames))
        fbank = fbank[:, : self.max_length]
        if self.normalize:
            fbank = (fbank - self.mean) / (self.std * 2)
        return fbank


class WhisperLogMel(nn.Module):
    """Whisper's log-mel spectrogram (``WhisperFeatureExtractor._torch_extract_fbank_features``).

    The clip is zero-padded (or cut) to ``n_samples`` (30 s for the released models); centred STFT with
    a periodic Hann window, power spectrum, the extractor's own mel filters, ``log10`` floored at 1e-10
    and at (clip maximum - 8), then ``(x + 4) / 4``.

    Shapes:
        - input: ``(B, T)`` waveform at 16 kHz
        - output: ``(B, n_mels, n_samples // hop_length)``
    """

    mel_filters: torch.Tensor
    window: torch.Tensor

    def __init__(self, mel_filters: torch.Tensor, n_fft: int, hop_length: int, n_samples: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_samples = n_samples
        self.register_buffer("mel_filters", mel_filters.float(), persistent=False)  # (n_fft//2+1, n_mels)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] < self.n_samples:
            x = nn.functional.pad(x, (0, self.n_samples - x.shape[-1]))
        x = x[:, : self.n_samples]
        stft = torch.stft(x, self.n_fft, self.hop_length, window=self.window, return_complex=True)
        power = (stft.real**2 + stft.imag**2)[..., :-1]  # (B, n_fft//2+1, frames)
        log_spec = torch.clamp(self.mel_filters.T @ power, min=1e-10).log10()  # (B, n_mels, frames)
        peak = log_spec.amax(dim=(1, 2), keepdim=True)
        log_spec = torch.maximum(log_spec, peak - 8.0)
        return (log_spec + 4.0) / 4.0


__all__ = [
    "KaldiFbank",
    "LibrosaMelSpectrogram",
    "VGGishLogMel",
    "WhisperLogMel",
    "frame_signal",
    "htk_mel_matrix",
    "normalize_volume",
    "zero_mean_unit_var",
]

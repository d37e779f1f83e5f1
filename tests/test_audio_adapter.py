"""Audio reading and clip loading (real FSDD wav, stereo, non-audio files), and the domain adapters
that turn series into waveforms or images."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from helpers import require_data
from xdomain.adapters.audio import AudioAdapter, fit_length, load_clips, read_audio
from xdomain.adapters.series_to_image import SeriesToImageAdapter
from xdomain.adapters.series_to_waveform import SeriesToWaveformAdapter
from xdomain.registry import ADAPTERS

FSDD_WAV = "audio/fsdd/recordings/0_george_0.wav"


@pytest.fixture
def stereo_wav(tmp_path: Path) -> Path:
    path = tmp_path / "stereo.wav"
    left = np.array([0.5, -0.5, 0.25, 0.0], dtype=np.float32)
    right = np.array([0.25, 0.5, -0.25, 1.0], dtype=np.float32)
    soundfile.write(path, np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    return path


# -- read_audio --------------------------------------------------------------------------------------------
def test_read_audio_real_fsdd_wav() -> None:
    path = require_data(FSDD_WAV)
    samples, rate = read_audio(path)
    info = soundfile.info(str(path))
    assert rate == 8000 and info.channels == 1
    assert samples.dtype == np.float32 and samples.shape == (info.frames,)
    assert 0.0 < np.abs(samples).max() <= 1.0


def test_stereo_is_an_error_unless_mixed(stereo_wav: Path) -> None:
    with pytest.raises(ValueError, match=re.escape(f"{str(stereo_wav)!r} has 2 channels; expected mono")):
        read_audio(stereo_wav)
    samples, rate = read_audio(stereo_wav, mix="mean")
    assert rate == 8000 and samples.tolist() == [0.375, 0.0, 0.0, 0.5]
    assert load_clips([stereo_wav], 8000, 4, mix="mean").tolist() == [[0.375, 0.0, 0.0, 0.5]]
    with pytest.raises(ValueError, match=re.escape("mix must be one of ['error', 'mean'], got 'left'")):
        read_audio(stereo_wav, mix="left")


def test_non_audio_and_missing_files_are_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n")
    with pytest.raises(ValueError, match=re.escape(f"cannot read {str(text)!r} as audio")):
        read_audio(text)
    missing = tmp_path / "missing.wav"
    with pytest.raises(FileNotFoundError, match=re.escape(f"audio file {str(missing)!r} not found")):
        read_audio(missing)
    with pytest.raises(FileNotFoundError, match=r"missing\.wav"):
        load_clips([missing], 16000, 100)


# -- load_clips --------------------------------------------------------------------------------------------
def test_resampling_8k_to_16k_doubles_the_length() -> None:
    path = require_data(FSDD_WAV)
    samples, _ = read_audio(path)
    n = samples.shape[0]
    exact = load_clips([path], 16000, 2 * n)
    assert exact.shape == (1, 2 * n) and exact.dtype == torch.float32
    # band-limited upsampling by 2 keeps the original samples at the even positions (nearly)
    assert np.allclose(exact[0, ::2].numpy(), samples, atol=0.01)
    # two more samples: one zero each side and the same 2n samples between, so the clip is exactly 2n long
    padded = load_clips([path], 16000, 2 * n + 2)
    assert padded[0, 0] == 0 and padded[0, -1] == 0 and torch.equal(padded[0, 1:-1], exact[0])


def test_centre_crop_and_zero_pad_hand_computed() -> None:
    clip = np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=np.float32)
    assert load_clips([clip], 8000, 3, orig_rate=8000).tolist() == [[2, 3, 4]]
    assert load_clips([torch.tensor(clip)], 8000, 8, orig_rate=8000).tolist() == [[0, 1, 2, 3, 4, 5, 0, 0]]
    assert fit_length(torch.arange(6.0), 4).tolist() == [1, 2, 3, 4]
    batch = load_clips([clip, clip[:2].astype(np.float64)], 8000, 4, orig_rate=8000)
    assert batch.dtype == torch.float32 and batch.tolist() == [[1, 2, 3, 4], [0, 1, 2, 0]]


def test_resampling_an_array_halves_a_sine() -> None:
    t = np.arange(1600) / 16000
    sine = np.sin(2 * math.pi * 200 * t).astype(np.float32)  # 200 Hz, far below both Nyquist rates
    out = load_clips([sine], 8000, 800, orig_rate=16000)[0].numpy()
    expected = np.sin(2 * math.pi * 200 * np.arange(800) / 8000)
    assert np.abs(out[50:-50] - expected[50:-50]).max() < 0.01  # edges: the sinc window sees zeros


@pytest.mark.parametrize(
    "clips,kwargs,error,message",
    [
        ([], {}, ValueError, "no clips given"),
        ([np.zeros(0, dtype=np.float32)], {"orig_rate": 8000}, ValueError, "clip 0 (array 0) is empty"),
        ([np.array([0.1, np.nan], dtype=np.float32)], {"orig_rate": 8000}, ValueError, "holds NaN"),
        ([np.zeros(4, dtype=np.float32)], {}, ValueError, "clip 0 is an array: pass orig_rate="),
        ([np.zeros((2, 4), dtype=np.float32)], {"orig_rate": 8000}, ValueError, "got shape (2, 4)"),
        ([np.zeros(4, dtype=np.int16)], {"orig_rate": 8000}, TypeError, "dtype torch.int16"),
        ([3], {}, TypeError, "clip 0 must be a path or a 1-D numpy array / tensor, got int"),
        ("a.wav", {}, TypeError, "clips must be a list"),
        ([np.zeros(4, dtype=np.float32)], {"orig_rate": 0}, ValueError, "orig_rate must be a positive int"),
    ],
)
def test_load_clips_errors(clips: object, kwargs: dict[str, object], error: type, message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        load_clips(clips, 16000, 10, **kwargs)  # type: ignore[arg-type]


def test_orig_rate_must_agree_with_the_file(stereo_wav: Path) -> None:
    with pytest.raises(ValueError, match="is at 8000 Hz, but orig_rate=16000"):
        load_clips([stereo_wav], 16000, 10, orig_rate=16000, mix="mean")


# -- AudioAdapter -----------------------------------------------------------------------------------------
def test_audio_adapter_peak_normalises_each_clip() -> None:
    z, peak = AudioAdapter().encode(torch.tensor([[0.5, -0.25], [0.0, 0.0], [-2.0, 1.0]]))
    assert z.tolist() == [[1.0, -0.5], [0.0, 0.0], [-1.0, 0.5]]
    assert peak is not None and peak.tolist() == [[0.5], [0.0], [2.0]]
    x = torch.randn(2, 5)
    same, state = AudioAdapter("none").encode(x)
    assert same is x and state is None
    y = torch.randn(2, 3)
    assert AudioAdapter().decode(y, peak) is y


def test_audio_adapter_errors() -> None:
    with pytest.raises(ValueError, match=re.escape("audio batch must be a float tensor (B, T), got (4,)")):
        AudioAdapter().encode(torch.zeros(4))
    with pytest.raises(ValueError, match="NaN or infinite"):
        AudioAdapter().encode(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="normalise must be 'peak' or 'none', got 'rms'"):
        AudioAdapter("rms").encode(torch.zeros(1, 4))


# -- SeriesToWaveformAdapter -----------------------------------------------------------------------------
def test_series_to_waveform_z_normalises_each_series() -> None:
    z, state = SeriesToWaveformAdapter().encode(torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    r = math.sqrt(1.5)  # (x - 2) / sqrt(2/3)
    assert torch.allclose(z, torch.tensor([[-r, 0.0, r], [0.0, 0.0, 0.0]]))
    assert state is not None and state[0].tolist() == [[2.0], [5.0]]
    x = torch.randn(2, 7)
    same, none = SeriesToWaveformAdapter(normalise=False).encode(x)
    assert same is x and none is None
    assert SeriesToWaveformAdapter().decode(x) is x


def test_series_to_waveform_refuses_missing_values() -> None:
    with pytest.raises(ValueError, match=r"NaN values .*impute them first"):
        SeriesToWaveformAdapter().encode(torch.tensor([[1.0, float("nan"), 3.0]]))
    with pytest.raises(ValueError, match=re.escape("(B, L), got (2, 3, 1)")):
        SeriesToWaveformAdapter().encode(torch.zeros(2, 3, 1))


# -- SeriesToImageAdapter --------------------------------------------------------------------------------
def test_gasf_hand_computed() -> None:
    image, state = SeriesToImageAdapter(size=2).encode(torch.tensor([[0.0, 1.0]]))
    assert state is None and image.shape == (1, 3, 2, 2)
    assert image[0].tolist() == [[[1.0, 0.0], [0.0, 1.0]]] * 3
    # scaled to [-1, 0, 1]: cos(phi_i + phi_j) = [[1, 0, -1], [0, -1, 0], [-1, 0, 1]], then (g + 1) / 2
    image, _ = SeriesToImageAdapter(size=3).encode(torch.tensor([[10.0, 15.0, 20.0]]))
    expected = torch.tensor([[1.0, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 1.0]])
    assert torch.allclose(image[0, 0], expected, atol=1e-6)


def test_gasf_resizes_is_scale_invariant_and_stays_in_range() -> None:
    x = torch.randn(3, 500)
    adapter = SeriesToImageAdapter(size=16)
    image, _ = adapter.encode(x)
    assert image.shape == (3, 3, 16, 16) and image.min() >= 0 and image.max() <= 1
    assert torch.allclose(adapter.encode(3.0 * x - 7.0)[0], image, atol=1e-5)
    assert torch.equal(adapter.encode(torch.full((1, 9), 4.0))[0], torch.zeros(1, 3, 16, 16))


def test_soft_line_hand_computed_and_differentiable() -> None:
    image, _ = SeriesToImageAdapter(size=2, method="line").encode(torch.tensor([[0.0, 1.0]]))
    # column 0 spans values [0, 0.5], column 1 [0.5, 1]; row centres 0.75 (top), 0.25: off-line pixels are
    # a quarter of the range = half a pixel away, darkness exp(-0.5 * 0.5^2)
    off = 1.0 - math.exp(-0.125)
    assert torch.allclose(image[0, 0], torch.tensor([[off, 0.0], [0.0, off]]), atol=1e-6)
    x = torch.linspace(0.0, 1.0, 40)[None].requires_grad_(True)
    image, _ = SeriesToImageAdapter(size=20, method="line").encode(x)
    darkest_row = image[0, 0].argmin(dim=0)  # per column: where the line is
    assert darkest_row.tolist() == sorted(darkest_row.tolist(), reverse=True)  # rising line, moving up
    assert darkest_row[0] == 19 and darkest_row[-1] == 0
    image[:, :, 5:15].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_soft_line_keeps_a_peak_between_column_edges() -> None:
    spike = torch.tensor([[0.0, 0, 0, 0, 1, 0, 0, 0, 0]])
    # 3 columns: edges at samples 0, 8/3, 16/3, 8 all read 0; the spike (sample 4) lies inside column 1
    image, _ = SeriesToImageAdapter(size=3, method="line").encode(spike)
    top = image[0, 0, 0]
    assert top[1] == 0.0 and top[0] > 0.9 and top[2] > 0.9
    assert image[0, 0, :, 1].max() == 0.0  # the column is dark from bottom to top: the line climbs and falls


def test_series_to_image_errors_and_registry() -> None:
    with pytest.raises(ValueError, match=re.escape("method must be one of ['gasf', 'line'], got 'mtf'")):
        SeriesToImageAdapter(method="mtf").encode(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="NaN or infinite"):
        SeriesToImageAdapter().encode(torch.tensor([[1.0, float("nan")]]))
    for name, cls in [("audio", AudioAdapter), ("series-to-waveform", SeriesToWaveformAdapter),
                      ("series-to-image", SeriesToImageAdapter)]:
        assert isinstance(ADAPTERS.build(name), cls)

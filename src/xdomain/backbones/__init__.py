"""f: frozen source models (language, masked language, speech, vision) and the stand-ins used by ablations."""

from xdomain.backbones.ablation import AttentionBackbone, IdentityBackbone, PassThroughBackbone
from xdomain.backbones.base import FrozenBackbone
from xdomain.backbones.black_box import BlackBoxBackbone
from xdomain.backbones.language import ALIASES, LanguageBackbone, load_backbone
from xdomain.backbones.loader import clear_cache, resolve_backbone
from xdomain.backbones.masked_lm import MaskedLanguageBackbone, load_masked_lm
from xdomain.backbones.speech import (
    CrepeBackbone,
    HFAudioBackbone,
    SpeakerEncoderBackbone,
    VGGishBackbone,
    load_audio_backbone,
)
from xdomain.backbones.vision import EfficientNetLite0Backbone, HFImageBackbone, load_vision_backbone

__all__ = [
    "ALIASES",
    "AttentionBackbone",
    "BlackBoxBackbone",
    "CrepeBackbone",
    "EfficientNetLite0Backbone",
    "FrozenBackbone",
    "HFAudioBackbone",
    "HFImageBackbone",
    "IdentityBackbone",
    "LanguageBackbone",
    "MaskedLanguageBackbone",
    "PassThroughBackbone",
    "SpeakerEncoderBackbone",
    "VGGishBackbone",
    "clear_cache",
    "load_audio_backbone",
    "load_backbone",
    "load_masked_lm",
    "load_vision_backbone",
    "resolve_backbone",
]

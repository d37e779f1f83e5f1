"""f: frozen source models and the stand-ins used by ablations."""

from xdomain.backbones.ablation import AttentionBackbone, IdentityBackbone
from xdomain.backbones.language import ALIASES, LanguageBackbone, load_backbone

__all__ = ["ALIASES", "AttentionBackbone", "IdentityBackbone", "LanguageBackbone", "load_backbone"]

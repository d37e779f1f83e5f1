"""The one way a name becomes a frozen backbone, for every estimator, the CLI and the benchmarks.

A name registered in :data:`~xdomain.registry.BACKBONES` (``minilm``, ``crepe-tiny``, ``speaker-encoder``,
``efficientnet-lite0``, ``antiberty``, ``none``, ... registered beside their classes) is built by its
factory; any other name or local path loads as a ``transformers`` model of the asked ``domain``. A backbone
is frozen, so every model in the process can share it: each is loaded once, cached by what was loaded (the
loader, the name and the options), and a loaded instance passes through unchanged.
"""

from __future__ import annotations

from typing import Any

from xdomain.backbones.ablation import PassThroughBackbone  # noqa: F401  (registers "none")
from xdomain.backbones.language import load_backbone
from xdomain.backbones.masked_lm import load_masked_lm
from xdomain.backbones.speech import load_audio_backbone
from xdomain.backbones.vision import load_vision_backbone
from xdomain.registry import BACKBONES

DOMAINS = ("language", "masked-lm", "audio", "image", "audio-or-image")
_CACHE: dict[tuple[str, str, tuple[tuple[str, Any], ...]], Any] = {}

# transformers model types that are image models (an unregistered name with domain="audio-or-image")
_VISION_TYPES = {"vit", "deit", "beit", "convnext", "convnextv2", "resnet", "swin", "swinv2", "efficientnet",
                 "mobilenet_v1", "mobilenet_v2", "mobilevit", "regnet", "dinov2", "levit", "poolformer"}


def _is_image_model(name: str) -> bool:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"unknown backbone {name!r}: not a registered alias {BACKBONES.names()} and not a transformers "
            f"model reachable from here ({err})"
        ) from err
    archs = " ".join(getattr(config, "architectures", None) or [])
    return "Image" in archs or getattr(config, "model_type", "") in _VISION_TYPES


def _build(name: str, domain: str, options: dict[str, Any]) -> tuple[str, Any]:
    """(what loads it, a thunk building it)."""
    if domain == "masked-lm":  # every name, aliases included, with its masked-LM head
        return "masked-lm", lambda: load_masked_lm(name, **options)
    if name in BACKBONES:
        return "registered", lambda: BACKBONES.build(name, **options)
    if domain == "language":
        return "language", lambda: load_backbone(name, **options)
    if domain == "image" or (domain == "audio-or-image" and _is_image_model(name)):
        return "image", lambda: load_vision_backbone(name, **options)
    return "audio", lambda: load_audio_backbone(name, **options)


def resolve_backbone(backbone: Any, domain: str = "language", **options: Any) -> Any:
    """A frozen backbone for ``backbone``: an instance unchanged, a name loaded once per process.

    Args:
        backbone: a registered alias, a ``transformers`` hub name or local path, or a loaded backbone.
        domain: what an unregistered name is: ``"language"`` (:func:`~xdomain.backbones.language.
            load_backbone`), ``"audio"``, ``"image"``, ``"audio-or-image"`` (chosen from the model's
            config), or ``"masked-lm"`` (every name, aliases included, with its masked-LM head:
            :func:`~xdomain.backbones.masked_lm.load_masked_lm`).
        **options: passed to the backbone's constructor or loader (``num_layers=2``,
            ``input_length=4096``); None means the loader's default.
    """
    if not isinstance(backbone, str):
        return backbone
    if not backbone:
        raise ValueError("backbone must be a non-empty name or a loaded backbone, got ''")
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    options = {k: v for k, v in options.items() if v is not None}  # None: the loader's own default
    loader, build = _build(backbone, domain, options)
    key = (loader, backbone.lower(), tuple(sorted((k, repr(v)) for k, v in options.items())))
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def clear_cache() -> None:
    """Forget every loaded backbone (tests; or to free memory)."""
    _CACHE.clear()


__all__ = ["DOMAINS", "clear_cache", "resolve_backbone"]

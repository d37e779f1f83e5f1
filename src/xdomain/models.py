"""Build a forecasting model from a :class:`~xdomain.config.ForecastConfig`.

``reprogram`` is Time-LLM on a frozen language model; ``no-backbone`` and ``attention-only`` are the
ablations of Tan et al. (NeurIPS 2024): the same adapter, patch reprogramming and head, with the
language model's layers removed or replaced by one trainable attention layer (no prompt: only the
language model reads it); ``dlinear`` is the linear baseline.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from xdomain.adapters.time_series import TimeSeriesAdapter
from xdomain.backbones.ablation import AttentionBackbone, IdentityBackbone
from xdomain.backbones.language import LanguageBackbone, load_backbone
from xdomain.baselines.dlinear import DLinear
from xdomain.config import ForecastConfig
from xdomain.heads.forecast import FlattenHead
from xdomain.registry import MODELS
from xdomain.reprogrammer import Reprogrammer
from xdomain.transforms.patch_reprogramming import PatchReprogrammingTransform
from xdomain.transforms.prompt import PromptAsPrefix


def _reprogrammer(config: ForecastConfig, backbone: Any, prompt: bool) -> Reprogrammer:
    transform = PatchReprogrammingTransform(
        patch_len=config.patch_len,
        stride=config.stride,
        d_model=config.d_model,
        n_heads=config.n_heads,
        d_keys=config.d_keys,
        num_prototypes=config.num_prototypes,
        dropout=config.dropout,
    )
    prefix = (
        PromptAsPrefix(config.description, config.lookback, config.horizon, config.top_k_lags)
        if prompt
        else None
    )
    head = FlattenHead(config.horizon, d_ff=config.d_ff, dropout=config.dropout)
    return Reprogrammer(
        backbone, transform, head, adapter=TimeSeriesAdapter(), prompt=prefix, lookback=config.lookback
    )


def _language(config: ForecastConfig, backbone: LanguageBackbone | None) -> LanguageBackbone:
    if backbone is None:
        return load_backbone(config.backbone, config.backbone_layers)
    if config.backbone_layers is not None and backbone.num_layers != config.backbone_layers:
        raise ValueError(
            f"config asks for {config.backbone_layers} backbone layers, the given backbone has "
            f"{backbone.num_layers}"
        )
    return backbone


@MODELS.register("reprogram")
def reprogram(config: ForecastConfig, backbone: LanguageBackbone | None = None) -> nn.Module:
    return _reprogrammer(config, _language(config, backbone), prompt=config.prompt)


@MODELS.register("no-backbone")
def no_backbone(config: ForecastConfig, backbone: LanguageBackbone | None = None) -> nn.Module:
    return _reprogrammer(config, IdentityBackbone(_language(config, backbone)), prompt=False)


@MODELS.register("attention-only")
def attention_only(config: ForecastConfig, backbone: LanguageBackbone | None = None) -> nn.Module:
    source = _language(config, backbone)
    return _reprogrammer(config, AttentionBackbone(source, config.n_heads, config.dropout), prompt=False)


@MODELS.register("dlinear")
def dlinear(config: ForecastConfig, backbone: LanguageBackbone | None = None) -> nn.Module:
    return DLinear(config.lookback, config.horizon, config.moving_avg)


def build_model(config: ForecastConfig, backbone: LanguageBackbone | None = None) -> nn.Module:
    """The forecasting model ``config.model`` names; ``backbone`` reuses an already loaded one."""
    return MODELS.get(config.model)(config, backbone)


def needs_backbone(config: ForecastConfig) -> bool:
    return config.model != "dlinear"


__all__ = ["build_model", "needs_backbone"]

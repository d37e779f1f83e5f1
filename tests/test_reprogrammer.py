"""The composition y_hat = O(f(I(x, c))): parts given as instances or by registered name."""

from __future__ import annotations

import pytest
import torch

import xdomain
from helpers import HORIZON, LOOKBACK
from xdomain.adapters import TimeSeriesAdapter
from xdomain.heads import FlattenHead
from xdomain.transforms import PatchReprogrammingTransform, PromptAsPrefix


def _transform() -> PatchReprogrammingTransform:
    return PatchReprogrammingTransform(
        patch_len=8, stride=4, d_model=16, n_heads=2, d_keys=8, num_prototypes=16
    )


def test_composition_from_instances(tiny_bert: xdomain.LanguageBackbone) -> None:
    torch.manual_seed(0)
    model = xdomain.Reprogrammer(
        tiny_bert,
        _transform(),
        FlattenHead(HORIZON, d_ff=16),
        adapter=TimeSeriesAdapter(),
        prompt=PromptAsPrefix(lookback=LOOKBACK, horizon=HORIZON, top_k_lags=2),
        lookback=LOOKBACK,
    ).eval()
    assert model(torch.randn(2, LOOKBACK, 3)).shape == (2, HORIZON, 3)
    # sizes read from the backbone when the parts are bound
    assert model.head.n_positions == 8 and model.transform.out.out_features == 32
    assert model.num_frozen() == sum(p.numel() for p in tiny_bert.parameters())
    assert model.num_trainable() == sum(p.numel() for p in model.parameters() if p.requires_grad) > 0
    assert set(model.trainable_state_dict()) == {n for n, p in model.named_parameters() if p.requires_grad}


def test_transform_and_adapter_by_name(tiny_bert: xdomain.LanguageBackbone) -> None:
    model = xdomain.Reprogrammer(
        tiny_bert, "patch-reprogramming", FlattenHead(HORIZON), adapter="time-series", lookback=LOOKBACK
    ).eval()
    assert isinstance(model.transform, PatchReprogrammingTransform)
    assert isinstance(model.adapter, TimeSeriesAdapter)
    with torch.no_grad():
        assert model(torch.randn(1, LOOKBACK, 2)).shape == (1, HORIZON, 2)


def test_head_binding_needs_the_lookback(tiny_bert: xdomain.LanguageBackbone) -> None:
    with pytest.raises(ValueError, match="FlattenHead needs n_positions, or lookback= and a transform"):
        xdomain.Reprogrammer(tiny_bert, _transform(), FlattenHead(HORIZON))


def test_head_by_name(tiny_bert: xdomain.LanguageBackbone) -> None:
    model = xdomain.Reprogrammer(
        tiny_bert, _transform(), "flatten", adapter="time-series", lookback=LOOKBACK, horizon=HORIZON
    )
    assert model.head.horizon == HORIZON
    assert isinstance(model.head, FlattenHead)


def test_prompt_by_name_quotes_the_models_lookback(tiny_bert: xdomain.LanguageBackbone) -> None:
    model = xdomain.Reprogrammer(
        tiny_bert,
        _transform(),
        FlattenHead(HORIZON),
        adapter="time-series",
        prompt="prompt-as-prefix",
        lookback=LOOKBACK,
    )
    assert model.prompt.lookback == LOOKBACK


def test_head_by_name_without_a_horizon_is_a_clear_error(tiny_bert: xdomain.LanguageBackbone) -> None:
    with pytest.raises(ValueError, match=r"needs lookback= and horizon=.*horizon=None"):
        xdomain.Reprogrammer(tiny_bert, _transform(), "flatten", adapter="time-series", lookback=LOOKBACK)

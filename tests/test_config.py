"""ForecastConfig / TrainConfig: typed, documented, dict/JSON round trip, every bad value named."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest

from xdomain.config import ForecastConfig, TrainConfig

NON_DEFAULT_FORECAST = dict(
    lookback=64,
    horizon=16,
    model="attention-only",
    backbone="some/model",
    backbone_layers=2,
    patch_len=8,
    stride=4,
    d_model=8,
    n_heads=2,
    d_keys=8,
    num_prototypes=16,
    d_ff=16,
    dropout=0.0,
    prompt=False,
    description="toy data",
    top_k_lags=3,
    moving_avg=7,
)
NON_DEFAULT_TRAIN = dict(
    epochs=2,
    batch_size=4,
    lr=0.01,
    weight_decay=0.1,
    patience=1,
    seed=3,
    train_fraction=0.25,
    max_steps=7,
    max_train_seconds=1.5,
    val_every=2,
    val_windows=9,
    eval_batch_size=5,
    mixed_precision="bf16",
    progress=False,
)


@pytest.mark.parametrize(
    "cls,values",
    [
        (ForecastConfig, {}),
        (ForecastConfig, NON_DEFAULT_FORECAST),
        (TrainConfig, {}),
        (TrainConfig, NON_DEFAULT_TRAIN),
    ],
)
def test_dict_and_json_round_trip(cls: Any, values: dict[str, Any]) -> None:
    config = cls(**values)
    assert cls.from_dict(config.to_dict()) == config
    assert cls.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    for key, value in values.items():
        assert config.to_dict()[key] == value


@pytest.mark.parametrize("cls", [ForecastConfig, TrainConfig])
def test_every_field_carries_help(cls: Any) -> None:
    for f in dataclasses.fields(cls):
        assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help text"


@pytest.mark.parametrize("cls", [ForecastConfig, TrainConfig])
def test_from_dict_rejects_unknown_keys_by_name(cls: Any) -> None:
    with pytest.raises(ValueError, match=rf"unknown {cls.__name__} fields \['bogus_key'\]"):
        cls.from_dict({**cls().to_dict(), "bogus_key": 1})


@pytest.mark.parametrize(
    "values,message",
    [
        ({"lookback": 0}, "lookback must be a positive integer, got 0"),
        ({"lookback": -5}, "lookback must be a positive integer, got -5"),
        ({"horizon": 0}, "horizon must be a positive integer, got 0"),
        ({"horizon": -1}, "horizon must be a positive integer, got -1"),
        ({"lookback": 12.5}, "lookback must be a positive integer, got 12.5"),
        ({"lookback": True}, "lookback must be a positive integer, got True"),
        ({"num_prototypes": 0}, "num_prototypes must be a positive integer, got 0"),
        (
            {"model": "gpt-9"},
            "model must be one of ('reprogram', 'time-llm', 'no-backbone', 'attention-only', 'linear', "
            "'dlinear'), got 'gpt-9'",
        ),
        ({"linear_path": "frozen"}, "linear_path must be one of ('fixed', 'trainable', 'off'), got 'frozen'"),
        ({"prototypes": "pca"}, "prototypes must be one of ('kmeans', 'kmeans-fixed', 'map'), got 'pca'"),
        ({"prompt_stats": "text"}, "prompt_stats must be one of ('digits', 'soft', 'off'), got 'text'"),
        ({"prefix_cache": "yes"}, "prefix_cache must be True or False, got 'yes'"),
        ({"dropout": 1.0}, "dropout must be in [0, 1), got 1.0"),
        ({"dropout": -0.1}, "dropout must be in [0, 1), got -0.1"),
        ({"backbone_layers": 0}, "backbone_layers must be a positive integer or None, got 0"),
        ({"lookback": 8, "patch_len": 16}, "patch_len (16) must not exceed lookback (8)"),
    ],
)
def test_forecast_config_rejects_bad_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ForecastConfig(**values)


@pytest.mark.parametrize(
    "values,message",
    [
        ({"train_fraction": 0.0}, "train_fraction must be in (0, 1], got 0.0"),
        ({"train_fraction": 1.5}, "train_fraction must be in (0, 1], got 1.5"),
        ({"train_fraction": -0.2}, "train_fraction must be in (0, 1], got -0.2"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"epochs": -1}, "epochs must be a positive integer, got -1"),
        ({"lr": 0.0}, "lr must be positive or None, got 0.0"),
        ({"max_steps": 0}, "max_steps must be a positive integer or None, got 0"),
        ({"val_windows": -3}, "val_windows must be a positive integer or None, got -3"),
        ({"mixed_precision": "fp8"}, "mixed_precision must be 'no', 'bf16' or 'fp16', got 'fp8'"),
    ],
)
def test_train_config_rejects_bad_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig(**values)


def test_from_dict_validates_values_too() -> None:
    with pytest.raises(ValueError, match=re.escape("horizon must be a positive integer, got 0")):
        ForecastConfig.from_dict({"horizon": 0})


@pytest.mark.parametrize(
    "lookback,patch_len,stride,expected",
    [(512, 16, 8, 64), (96, 16, 8, 12), (32, 8, 4, 8), (33, 8, 4, 8), (8, 8, 4, 2)],
)
def test_num_patches(lookback: int, patch_len: int, stride: int, expected: int) -> None:
    assert ForecastConfig(lookback=lookback, patch_len=patch_len, stride=stride).num_patches == expected


def test_defaults_are_the_time_llm_ones_but_the_patching() -> None:
    c = ForecastConfig()
    assert (c.patch_length, c.patch_stride, c.d_model, c.n_heads, c.d_keys, c.num_prototypes, c.d_ff) == (
        32, 32, 32, 8, 128, 1000, 128
    )
    # non-overlapping patches of 32 by default (chosen on validation): (512 - 32) // 32 + 2 tokens
    assert c.patch_len is None and c.stride is None and c.num_patches == 17
    # Time-LLM's patches of 16 with stride 8 for its own model: (512 - 16) // 8 + 2
    t = ForecastConfig(model="time-llm")
    assert (t.patch_length, t.patch_stride, t.num_patches) == (16, 8, 64)
    assert ForecastConfig(stride=8).patch_stride == 8 and ForecastConfig(patch_len=16).patch_stride == 16
    # the default is capped at a shorter lookback; a patch given explicitly is not
    assert ForecastConfig(lookback=24).patch_length == 24
    with pytest.raises(ValueError, match=re.escape("patch_len (32) must not exceed lookback (24)")):
        ForecastConfig(lookback=24, patch_len=32)
    with pytest.raises(ValueError, match="stride must be a positive integer or None, got 0"):
        ForecastConfig(stride=0)
    with pytest.raises(ValueError, match="patch_len must be a positive integer or None, got 0"):
        ForecastConfig(patch_len=0)


def test_learning_rate_defaults_per_model_unless_given() -> None:
    from xdomain.config import DEFAULT_LR, FALLBACK_LR

    cfg = TrainConfig()
    assert cfg.lr is None
    assert cfg.resolved_lr("time-llm") == 1e-2 == DEFAULT_LR["time-llm"]  # Time-LLM's ETTh1 script
    assert cfg.resolved_lr("reprogram") == 1e-3 == DEFAULT_LR["reprogram"]
    assert cfg.resolved_lr("dlinear") == 5e-3
    assert cfg.resolved_lr("no-backbone") == cfg.resolved_lr("attention-only") == 1e-3
    assert cfg.resolved_lr(None) == FALLBACK_LR
    assert TrainConfig(lr=0.3).resolved_lr("reprogram") == 0.3
    assert cfg.resolved_lr("linear") == FALLBACK_LR  # never used: the linear model is fitted in closed form


def test_trainer_takes_the_models_default_learning_rate() -> None:
    from torch import nn

    from xdomain.training import Trainer

    assert Trainer(nn.Linear(2, 2), TrainConfig(), model_name="dlinear").lr == 5e-3
    assert Trainer(nn.Linear(2, 2), TrainConfig(lr=0.02), model_name="dlinear").lr == 0.02

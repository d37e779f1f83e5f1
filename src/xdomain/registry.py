"""Names -> classes (or factories) for every part of the reprogramming equation.

A part is registered where it is defined (``@TRANSFORMS.register("patch-reprogramming")``), and any
place that asks for a part accepts either a registered name or a ready instance (:meth:`Registry.resolve`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories for one role (backbones, transforms, heads, adapters, datasets)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: register ``factory`` under ``name`` (case-insensitive)."""

        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            key = name.lower()
            if key in self._entries:
                raise ValueError(f"{self.role} {name!r} is already registered")
            self._entries[key] = factory
            return factory

        return decorator

    def get(self, name: str, /) -> Callable[..., T]:
        try:
            return self._entries[name.lower()]
        except KeyError:
            raise KeyError(f"unknown {self.role} {name!r}; expected one of {sorted(self._entries)}") from None

    def build(self, name: str, /, **kwargs: Any) -> T:
        """The entry ``name`` built with ``kwargs`` (which may hold a ``name`` of the factory's own)."""
        return self.get(name)(**kwargs)

    def resolve(self, part: str | T, /, **kwargs: Any) -> T:
        """Return ``part`` unchanged if it is an instance, else build it from its registered name."""
        if isinstance(part, str):
            return self.build(part, **kwargs)
        return part

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.role!r}, {self.names()})"


BACKBONES: Registry[Any] = Registry("backbone")
TRANSFORMS: Registry[Any] = Registry("transform")
HEADS: Registry[Any] = Registry("head")
ADAPTERS: Registry[Any] = Registry("adapter")
DATASETS: Registry[Any] = Registry("dataset")
MODELS: Registry[Any] = Registry("forecasting model")
# estimator classes by the ``kind`` their checkpoints record (``xdomain.load`` dispatches on it)
ESTIMATORS: Registry[Any] = Registry("estimator")

__all__ = ["ADAPTERS", "BACKBONES", "DATASETS", "ESTIMATORS", "HEADS", "MODELS", "TRANSFORMS", "Registry"]

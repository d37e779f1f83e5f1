"""The one metadata schema of every estimator's checkpoint, inside the container of :mod:`xdomain.checkpoint`.

An estimator's manifest holds, beside the container's own fields:

- ``kind``: the estimator's class name (``xdomain.load`` dispatches on it, through
  :data:`~xdomain.registry.ESTIMATORS`);
- ``params``: every constructor parameter, as JSON (a loaded backbone object is written by its name where
  it has a loadable one, else as ``null``: then ``load`` needs it passed back as ``backbone=``);
- ``extra``: the learned state that is not a tensor (a classifier's classes, a regressor's target scale,
  a forecaster's per-series scaler);
- ``history``: what training did (:class:`~xdomain.training.History` as a dict), or ``null``;
- ``backbone``: the frozen backbone's spec, with its weight fingerprint (written by the model's save).

The trained tensors (parameters and learned buffers) are the container's safetensors file.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import os
from typing import Any

from xdomain.checkpoint import CheckpointError, read_meta
from xdomain.training import History

KEYS = ("params", "extra", "backbone")


def json_param(value: Any) -> Any:
    """A constructor parameter as JSON: plain values and lists of them; anything else (an object) is None."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [json_param(v) for v in value]
    return None


def estimator_meta(
    estimator: Any, extra: dict[str, Any], params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The schema's fields for ``estimator`` (``params`` default: its ``get_params``, as JSON)."""
    if params is None:
        params = {k: json_param(v) for k, v in estimator.get_params(deep=False).items()}
    history = getattr(estimator, "history_", None)
    return {
        "kind": type(estimator).__name__,
        "params": params,
        "extra": extra,
        "history": dataclasses.asdict(history) if history is not None else None,
    }


def read_estimator_meta(
    path: str | os.PathLike[str], cls: type, upgrade: Any = None
) -> tuple[dict[str, Any], dict[str, Any], History | None, dict[str, Any]]:
    """``(params, extra, history, manifest)`` of a ``cls`` checkpoint, checked: its kind, the schema's keys
    and that every parameter is one of ``cls``'s; ``upgrade(manifest)`` converts an older schema first."""
    where = str(path)
    meta = read_meta(path)
    if meta.get("kind") != cls.__name__:
        raise CheckpointError(f"{where!r} holds a {meta.get('kind')!r}, expected a {cls.__name__}")
    if upgrade is not None and "params" not in meta:
        meta = upgrade(meta, where)
    missing = [k for k in KEYS if k not in meta]
    if missing:
        raise CheckpointError(
            f"checkpoint {where!r} lacks the key(s) {missing}; expected a {cls.__name__} checkpoint to hold "
            f"{', '.join(KEYS)}"
        )
    params, extra = meta["params"], meta["extra"]
    if not isinstance(params, dict) or not isinstance(extra, dict):
        raise CheckpointError(
            f"checkpoint {where!r} has params of type {type(params).__name__} and extra of type "
            f"{type(extra).__name__}; expected two JSON objects"
        )
    names = cls._get_param_names()  # type: ignore[attr-defined]  # scikit-learn's BaseEstimator
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise CheckpointError(
            f"checkpoint {where!r} has unknown {cls.__name__} parameter(s) {unknown}; expected a subset of "
            f"{names}"
        )
    history = None
    if meta.get("history"):
        hist = dict(meta["history"])
        if hist.get("best_val_loss") is None:  # JSON has no infinity: null means nothing validated
            hist["best_val_loss"] = math.inf
        history = History(**hist)
    return dict(params), dict(extra), history, meta


@functools.cache
def config_class(cls: type) -> type:
    """``<Estimator>Config``: a frozen dataclass with one typed field per constructor parameter of ``cls``
    (its defaults the constructor's), the settings of an estimator as one value (``estimator.config``)."""
    fields = []
    for name, param in inspect.signature(cls.__init__).parameters.items():  # type: ignore[misc]
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = param.annotation if param.annotation is not inspect.Parameter.empty else Any
        fields.append((name, annotation, dataclasses.field(default=param.default)))
    made = dataclasses.make_dataclass(f"{cls.__name__}Config", fields, frozen=True)
    made.__doc__ = f"The settings of a :class:`{cls.__module__}.{cls.__name__}` (its constructor parameters)."
    made.__module__ = cls.__module__
    return made


def estimator_config(estimator: Any) -> Any:
    """The estimator's settings as its :func:`config_class` instance (``to_dict()`` via dataclasses)."""
    made: Any = config_class(type(estimator))  # type: ignore[arg-type]  # a class is hashable
    return made(**estimator.get_params(deep=False))


__all__ = [
    "KEYS",
    "config_class",
    "estimator_config",
    "estimator_meta",
    "json_param",
    "read_estimator_meta",
]

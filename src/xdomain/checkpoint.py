"""Checkpoints: a JSON file plus a safetensors file in one folder, written atomically.

Nothing is unpickled on load: JSON and safetensors cannot carry code.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "xdomain-checkpoint"
VERSION = 1
CONFIG_FILE = "config.json"
TENSORS_FILE = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or was made for something else."""


def _json_safe(value: Any) -> Any:
    """JSON has no Infinity/NaN: non-finite floats (a validation loss never measured) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def save_checkpoint(
    path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> Path:
    """Write ``meta`` (JSON) and ``tensors`` (safetensors) into folder ``path``, replacing it atomically."""
    from safetensors.torch import save_file

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        save_file(flat, str(tmp / TENSORS_FILE))
        doc = {
            "format": FORMAT,
            "version": VERSION,
            **meta,
            "tensors": {k: list(v.shape) for k, v in flat.items()},
        }
        (tmp / CONFIG_FILE).write_text(json.dumps(_json_safe(doc), indent=2, sort_keys=True, allow_nan=False))
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    folder = Path(path)
    cfg = folder / CONFIG_FILE
    if not cfg.is_file():
        raise CheckpointError(
            f"no checkpoint at {str(folder)!r}: expected a folder holding {CONFIG_FILE} and {TENSORS_FILE}"
        )
    try:
        meta = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"corrupt checkpoint config {str(cfg)!r}: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(cfg)!r} is not an xdomain checkpoint (format "
            f"{meta.get('format') if isinstance(meta, dict) else None!r}, expected {FORMAT!r})"
        )
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint version {meta.get('version')!r} is not supported (expected {VERSION})"
        )
    return meta


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint folder; a corrupt or incomplete one raises :class:`CheckpointError`."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_meta(path)
    file = Path(path) / TENSORS_FILE
    if not file.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} lacks {TENSORS_FILE}")
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"corrupt checkpoint tensors {str(file)!r}: {err}") from err
    expected = meta.get("tensors", {})
    got = {k: list(v.shape) for k, v in tensors.items()}
    if got != expected:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is inconsistent: config lists tensors {expected}, file holds {got}"
        )
    return tensors, meta


__all__ = ["CheckpointError", "load_checkpoint", "read_meta", "save_checkpoint"]

"""Checkpoints: a folder holding a JSON manifest and a safetensors file, committed by one atomic rename.

Schema version 2 (what save_checkpoint writes)
----------------------------------------------
A checkpoint is a folder. Its manifest ``xdomain.json`` is the only file whose presence makes the folder a
checkpoint; it names the tensors file beside it::

    {"format": "xdomain-checkpoint", "version": 2,
     "tensors_file": "model-<32 hex digits>.safetensors",
     "tensors": {"<name>": [<shape>], ...},     # exactly the tensors of that file
     "sha256": "<hex digest of that file's bytes>",
     ...}                                        # the saver's settings: kind, params, backbone, history

The manifest is JSON without NaN or Infinity (a non-finite float is written as null); the tensors are
safetensors. Nothing is unpickled on load: JSON and safetensors cannot carry code. On load the sha256 and the
name/shape table are checked; any mismatch is a :class:`CheckpointError`.

Write order (:func:`save_checkpoint`), every step through a small module-level function (``_mkdir``,
``_write_bytes``, ``_fsync``, ``_replace``, ``_remove``) so that tests can inject faults:

1. the tensors go to a new, uniquely named ``model-<random>.safetensors``, flushed and fsynced;
2. the manifest goes to a temporary ``.xdomain-tmp-<random>.json`` in the same folder, fsynced;
3. ``os.replace(temporary, "xdomain.json")``, the commit point; then the folder is fsynced;
4. only then are removed: the previous tensors file, stale ``.xdomain-tmp-*`` files, any
   ``model-<hex>.safetensors`` the manifest does not name, and a version-1 ``config.json`` and
   ``model.safetensors``.

Recovery guarantee: a process killed at any instant leaves the old checkpoint (killed before step 3) or the
new one (from step 3 on), loadable, plus at most some of xdomain's own leftover files, which no later save
trips on and which the next save removes. With a file system that honours fsync the same holds after a
power cut. Concurrent saves into one folder are serialised by an advisory lock (``flock``) on the folder.

What xdomain owns in a folder, and may replace or remove: ``xdomain.json``, ``.xdomain-tmp-*`` and
``model-<hex>.safetensors``; and, where ``config.json`` is a version-1 xdomain config, ``config.json`` and
``model.safetensors``. Every other file is the user's and is never touched.

Saving into ``path``: missing, it is created (parents too); an empty folder (or one holding only xdomain's
leftovers) is used; a checkpoint (version 2, or version 1) is replaced only with ``overwrite=True``; a file,
or a non-empty folder that holds no checkpoint, is a :class:`FileExistsError` (even with ``overwrite``).

Version 1 (xdomain 0.1.0), still read, never written: ``config.json`` (``{"format": "xdomain-checkpoint",
"version": 1, "tensors": {...}, ...meta}``) and ``model.safetensors`` in the folder, no checksum. Any other
version is a :class:`CheckpointError` that names it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

FORMAT = "xdomain-checkpoint"
VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
MANIFEST_FILE = "xdomain.json"
TMP_PREFIX = ".xdomain-tmp-"
# version 1 (xdomain 0.1.0): read, never written
CONFIG_FILE = "config.json"
TENSORS_FILE = "model.safetensors"
# keys the manifest itself sets: a saver's meta may not use them
RESERVED_KEYS = ("format", "version", "tensors_file", "tensors", "sha256")
_TENSORS_NAME = re.compile(r"model-[0-9a-f]{32}\.safetensors")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHOWN = 5  # names listed when a folder is refused


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


# -- every file-system mutation goes through one of these (tests replace them to inject faults) ----------
def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _write_bytes(path: Path, data: bytes) -> None:
    """Create ``path`` (never over an existing file) holding ``data``, flushed to the operating system."""
    with open(path, "xb") as f:
        f.write(data)
        f.flush()


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to the device."""
    folder = path.is_dir()
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    except OSError:
        if folder:  # folders cannot be opened on some platforms (Windows)
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not folder:  # some file systems cannot fsync a folder
            raise
    finally:
        os.close(fd)


def _replace(src: Path, dst: Path) -> None:
    os.replace(src, dst)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An advisory exclusive lock on ``folder`` (POSIX ``flock``; nothing where the platform has none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # a file system without locks: unserialised, still atomic
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# -- what a folder holds ---------------------------------------------------------------------------------
def _is_v1_config(folder: Path) -> bool:
    """``config.json`` is a version-1 xdomain checkpoint config (so it and ``model.safetensors`` are ours)."""
    cfg = folder / CONFIG_FILE
    if not cfg.is_file():
        return False
    try:
        doc = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT and _version(doc) == 1


def _version(doc: dict[str, Any]) -> Any:
    v = doc.get("version")
    return v if type(v) is int else repr(v) if v is not None else None


def _kind(folder: Path) -> int | None:
    """2 for a folder with a manifest, 1 for a version-1 checkpoint folder, else None."""
    if (folder / MANIFEST_FILE).is_file():
        return 2
    if _is_v1_config(folder) and (folder / TENSORS_FILE).is_file():
        return 1
    return None


def _is_ours(name: str, v1_config: bool) -> bool:
    return (
        name == MANIFEST_FILE
        or name.startswith(TMP_PREFIX)
        or _TENSORS_NAME.fullmatch(name) is not None
        or (v1_config and name in (CONFIG_FILE, TENSORS_FILE))
    )


def _foreign(folder: Path) -> list[str]:
    """Sorted names in ``folder`` that xdomain did not write."""
    v1 = _is_v1_config(folder)
    return sorted(n for n in os.listdir(folder) if not _is_ours(n, v1))


def _shown(names: list[str]) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def is_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an xdomain checkpoint folder: it holds a manifest ``xdomain.json`` (version 2),
    or it is a version-1 folder (``config.json`` of format xdomain-checkpoint and version 1, with
    ``model.safetensors``). Says nothing about whether it loads (a damaged one raises on load)."""
    folder = Path(path)
    return folder.is_dir() and _kind(folder) is not None


def check_target(path: str | os.PathLike[str], overwrite: bool = False) -> None:
    """Raise :class:`FileExistsError` where :func:`save_checkpoint` into ``path`` would refuse: ``path`` is a
    file; it is a checkpoint and ``overwrite`` is false; it is a non-empty folder holding no checkpoint
    (files xdomain did not write are never replaced, ``overwrite`` or not). Changes nothing."""
    target = Path(path)
    if not target.exists() and not target.is_symlink():
        return
    if not target.is_dir():
        raise FileExistsError(
            f"{str(target)!r} is a file, not a folder; a checkpoint is a folder: choose another path"
        )
    if _kind(target) is not None:
        if not overwrite:
            raise FileExistsError(
                f"{str(target)!r} already holds an xdomain checkpoint; pass overwrite=True to replace it "
                "(files in it that xdomain did not write are kept)"
            )
        return
    foreign = _foreign(target)
    if foreign:
        raise FileExistsError(
            f"{str(target)!r} is a non-empty folder that holds no xdomain checkpoint (it contains "
            f"{_shown(foreign)}); save into a new or empty folder (overwrite=True only replaces checkpoints)"
        )


def _clean(folder: Path, keep: str) -> None:
    """Remove xdomain's files that the manifest no longer needs (best effort: the next save retries)."""
    names = sorted(os.listdir(folder))
    doomed = [n for n in names if n.startswith(TMP_PREFIX) or (_TENSORS_NAME.fullmatch(n) and n != keep)]
    if _is_v1_config(folder):
        doomed += [TENSORS_FILE, CONFIG_FILE]  # the config last: while it is there, model.safetensors is ours
    for name in doomed:
        file = folder / name
        if file.is_file() or file.is_symlink():
            with contextlib.suppress(OSError):
                _remove(file)


def save_checkpoint(
    path: str | os.PathLike[str],
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write ``tensors`` (safetensors) and ``meta`` (JSON manifest) into the folder ``path``; returns it.

    An existing checkpoint there is replaced only with ``overwrite=True``, atomically (see the module
    docstring); files in the folder that xdomain did not write are kept. A file at ``path``, or a non-empty
    folder that is not a checkpoint, is a :class:`FileExistsError`.
    """
    from safetensors.torch import save as serialise

    target = Path(path)
    clash = sorted(set(meta) & set(RESERVED_KEYS))
    if clash:
        raise ValueError(f"checkpoint meta may not set {clash}: the manifest sets {list(RESERVED_KEYS)}")
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    data = serialise(flat)
    tensors_file = f"model-{secrets.token_hex(16)}.safetensors"
    doc = {
        **meta,
        "format": FORMAT,
        "version": VERSION,
        "tensors_file": tensors_file,
        "tensors": {k: list(v.shape) for k, v in flat.items()},
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    # before any file is touched: meta that JSON cannot hold fails here, leaving everything as it was
    manifest = json.dumps(_json_safe(doc), indent=2, sort_keys=True, allow_nan=False).encode("utf-8")
    check_target(target, overwrite)
    if not target.is_dir():
        _mkdir(target)
        _fsync(target.parent)
    with _locked(target):
        check_target(target, overwrite)  # again: another save may have finished meanwhile
        new = target / tensors_file
        tmp = target / f"{TMP_PREFIX}{secrets.token_hex(8)}.json"
        try:
            _write_bytes(new, data)
            _fsync(new)
            _write_bytes(tmp, manifest)
            _fsync(tmp)
            _replace(tmp, target / MANIFEST_FILE)
        except BaseException:
            for file in (tmp, new):
                with contextlib.suppress(OSError):
                    _remove(file)
            raise
        _fsync(target)
        _clean(target, keep=tensors_file)
    return target


# -- reading ---------------------------------------------------------------------------------------------
def _read_json(file: Path, what: str) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"corrupt checkpoint {what} {str(file)!r}: {err}") from err


def _validated(doc: Any, file: Path, version: int) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(file)!r} is not an xdomain checkpoint (format "
            f"{doc.get('format') if isinstance(doc, dict) else None!r}, expected {FORMAT!r})"
        )
    seen = _version(doc)
    if seen != version:
        raise CheckpointError(
            f"checkpoint version {seen} in {str(file)!r} is not supported: this xdomain reads versions "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))} (version 2 in {MANIFEST_FILE}; version 1, of "
            f"xdomain 0.1, in {CONFIG_FILE} with {TENSORS_FILE})"
        )
    if not isinstance(doc.get("tensors"), dict):
        raise CheckpointError(f"malformed checkpoint {str(file)!r}: no table of tensors")
    if version == 2:
        name, digest = doc.get("tensors_file"), doc.get("sha256")
        if not isinstance(name, str) or _TENSORS_NAME.fullmatch(name) is None:
            raise CheckpointError(
                f"malformed checkpoint manifest {str(file)!r}: tensors_file {name!r} is not "
                "model-<hex>.safetensors"
            )
        if not isinstance(digest, str) or _SHA256.fullmatch(digest) is None:
            raise CheckpointError(f"malformed checkpoint manifest {str(file)!r}: sha256 {digest!r}")
    return doc


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest (version 2) or config (version 1) of the checkpoint at ``path``, checked."""
    folder = Path(path)
    manifest = folder / MANIFEST_FILE
    if manifest.is_file():
        return _validated(_read_json(manifest, "manifest"), manifest, 2)
    cfg = folder / CONFIG_FILE
    if cfg.is_file():
        return _validated(_read_json(cfg, "config"), cfg, 1)
    raise CheckpointError(
        f"no checkpoint at {str(folder)!r}: expected a folder holding {MANIFEST_FILE} (or, written by "
        f"xdomain 0.1, {CONFIG_FILE} and {TENSORS_FILE})"
    )


def tensors_path(path: str | os.PathLike[str]) -> Path:
    """The tensors file of the checkpoint at ``path`` (the one its manifest names)."""
    meta = read_meta(path)
    return Path(path) / (meta["tensors_file"] if meta["version"] == 2 else TENSORS_FILE)


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint folder (version 2, or 1); a corrupt or incomplete one raises
    :class:`CheckpointError`. Returns ``(tensors, meta)``."""
    from safetensors import SafetensorError
    from safetensors.torch import load as deserialise
    from safetensors.torch import load_file

    meta = read_meta(path)
    file = tensors_path(path)
    if not file.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} lacks {file.name}")
    try:
        if meta["version"] == 2:
            data = file.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest != meta["sha256"]:
                raise CheckpointError(
                    f"corrupt checkpoint tensors {str(file)!r}: sha256 {digest} does not match the "
                    f"manifest's {meta['sha256']}"
                )
            tensors = deserialise(data)
        else:  # version 1: no checksum
            tensors = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"corrupt checkpoint tensors {str(file)!r}: {err}") from err
    expected = meta["tensors"]
    got = {k: list(v.shape) for k, v in tensors.items()}
    if got != expected:
        listed = MANIFEST_FILE if meta["version"] == 2 else CONFIG_FILE
        raise CheckpointError(
            f"checkpoint {str(path)!r} is inconsistent: {listed} lists tensors {expected}, file holds {got}"
        )
    return tensors, meta


__all__ = [
    "CheckpointError",
    "check_target",
    "is_checkpoint",
    "load_checkpoint",
    "read_meta",
    "save_checkpoint",
    "tensors_path",
]

"""The ``--out`` folder of an ``xdomain`` command: checked before any data is read or any model trained,
the run marker ``xdomain-run.json`` that says xdomain wrote it, and the metrics files."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from xdomain.checkpoint import TMP_PREFIX, check_target

# --out: what the commands write there, and the marker that says a folder was written by xdomain
RUN_MARKER = "xdomain-run.json"
RUN_FORMAT = "xdomain-run"
REPORT_FILES = ("metrics.json", "metrics.md")  # beside the checkpoint folder model/


def out_folder(
    out: str | None,
    overwrite: bool = False,
    files: Sequence[str] = REPORT_FILES,
    checkpoints: Sequence[str] = ("model",),
) -> Path | None:
    """The output folder, checked and made before any data is read or any model trained, so that a bad
    path fails in seconds, not after a run.

    A folder counts as written by xdomain when it holds the marker ``xdomain-run.json`` (written last by
    every run, listing the files and checkpoint folders xdomain runs put there), or when everything in it
    bears the name of an output of this command (a run of xdomain 0.1, or one stopped before its marker).
    Outputs of an earlier run are replaced only with ``--overwrite``; a non-empty folder not written by
    xdomain is refused, ``--overwrite`` or not; other files in an xdomain folder are never touched.
    """
    if out is None:
        return None
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {out!r} is a file; expected a folder (it is created when missing)")
    if folder.is_dir():
        _check_out(folder, out, overwrite, files, checkpoints)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(
            f"--out {out!r} cannot be created ({err.strerror}); expected a writable folder"
        ) from err
    return folder


def _shown(names: Sequence[str], most: int = 5) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def _run_marker_files(folder: Path) -> list[str] | None:
    """The outputs the marker of an earlier xdomain run lists, or None where there is no valid marker."""
    try:
        doc = json.loads((folder / RUN_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = doc.get("files") if isinstance(doc, dict) and doc.get("format") == RUN_FORMAT else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return files


def _check_out(
    folder: Path, out: str, overwrite: bool, files: Sequence[str], checkpoints: Sequence[str]
) -> None:
    """Refuse an existing --out folder that the run must not write into (see :func:`out_folder`)."""
    outputs = {*files, *checkpoints}
    earlier = _run_marker_files(folder)
    hidden = {RUN_MARKER} if earlier is not None else set()
    entries = sorted(n for n in os.listdir(folder) if n not in hidden and not n.startswith(TMP_PREFIX))
    if earlier is None:
        foreign = [n for n in entries if n not in outputs]
        if foreign:
            raise ValueError(
                f"--out {out!r} is not empty and was not written by xdomain (it holds {_shown(foreign)}); "
                "choose a new or empty folder (--overwrite only replaces what an xdomain run wrote)"
            )
        previous = entries
    else:
        previous = [n for n in entries if n in outputs or n in earlier]
    if previous and not overwrite:
        raise ValueError(
            f"--out {out!r} holds results of an earlier run ({_shown(previous)}); pass --overwrite to "
            "replace them, or choose another folder"
        )
    for name in checkpoints:
        try:
            check_target(folder / name, overwrite)
        except FileExistsError as err:
            raise ValueError(f"--out {out!r}: {err}") from err
    for name in files:
        if (folder / name).is_dir():
            raise ValueError(f"--out {out!r}: {name} is a folder; expected to write a file there")


def write_run_marker(folder: Path, command: str, written: Sequence[str]) -> None:
    """Write ``xdomain-run.json`` (last, atomically): the outputs xdomain runs put in ``folder``."""
    earlier = [f for f in _run_marker_files(folder) or [] if (folder / f).exists()]
    doc = {"format": RUN_FORMAT, "version": 1, "command": command, "files": sorted({*earlier, *written})}
    for stale in folder.glob(f"{TMP_PREFIX}*"):
        if stale.is_file():
            stale.unlink(missing_ok=True)
    tmp = folder / f"{TMP_PREFIX}run-{secrets.token_hex(8)}.json"
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(tmp, folder / RUN_MARKER)


"""Where data sets live, and how official files are fetched (with a checksum) into that place."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import warnings
from pathlib import Path


class DataNotFoundError(FileNotFoundError):
    """A data file is not in the data home and could not be downloaded."""


def cache_home() -> Path:
    """The user cache folder of xdomain (``$XDG_CACHE_HOME/xdomain`` or ``~/.cache/xdomain``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xdomain"


def data_home(path: str | os.PathLike[str] | None = None) -> Path:
    """The data home: ``path`` if given, else ``$XDOMAIN_DATA_HOME``, else ``<cache_home>/data``."""
    if path is not None:
        return Path(path)
    env = os.environ.get("XDOMAIN_DATA_HOME")
    return Path(env) if env else cache_home() / "data"


def offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in ("XDOMAIN_OFFLINE", "HF_HUB_OFFLINE"))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(
    relpath: str,
    url: str,
    sha256: str | None,
    home: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Path:
    """Return the path of ``relpath`` inside the data home, downloading it from ``url`` if it is missing.

    A file already present is checked against ``sha256`` (when known); a download is checked before it
    is moved into place, so a partial or wrong file never lands in the data home.
    """
    root = data_home(home)
    target = root / relpath
    if target.is_file():
        if sha256 is not None and sha256_of(target) != sha256:
            raise ValueError(
                f"{target} does not match the official file: sha256 {sha256_of(target)}, "
                f"expected {sha256}; delete it to download it again"
            )
        return target
    if not download or offline():
        why = "downloads are off" if not download else "offline (XDOMAIN_OFFLINE / HF_HUB_OFFLINE set)"
        raise DataNotFoundError(
            f"data file {target.name!r} not found: expected it at {target} "
            f"(data home {root}; set XDOMAIN_DATA_HOME to change it). {why}; "
            f"get it from {url}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        if sha256 is None:
            warnings.warn(f"no checksum is recorded for {target.name}; the download from {url} is not "
                          f"verified (sha256 {sha256_of(tmp)})", stacklevel=2)
        elif sha256_of(tmp) != sha256:
            raise ValueError(f"download of {url} has sha256 {sha256_of(tmp)}, expected {sha256}")
        os.replace(tmp, target)
    except OSError as err:
        raise DataNotFoundError(
            f"data file {target.name!r} not found at {target} and the download from "
            f"{url} failed ({err}); place the file there by hand"
        ) from err
    finally:
        tmp.unlink(missing_ok=True)
    return target


__all__ = ["DataNotFoundError", "cache_home", "data_home", "fetch", "offline", "sha256_of"]

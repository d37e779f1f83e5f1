"""Shared run-and-report helpers for the CLI and the benchmarks: the peak memory of a block, JSON-ready
values, and a result written as ``<stem>.md`` (for people) beside ``<stem>.json`` (for programs)."""

from __future__ import annotations

import json
import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch


class PeakMemory:
    """Peak memory of the block (MB): the CUDA allocator's peak on a GPU; on a CPU, the peak of the sampled
    process RSS (``peak_mb``) and its rise over the RSS at the start (``added_mb``), which leaves out what
    was loaded before (the backbone) but also misses memory the allocator reuses from earlier runs."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self.start_mb = 0.0
        self._stop = threading.Event()

    @property
    def added_mb(self) -> float:
        return max(0.0, self.peak_mb - self.start_mb)

    def _rss(self) -> float:
        import psutil  # type: ignore[import-untyped]

        return float(psutil.Process(os.getpid()).memory_info().rss) / 2**20

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        else:
            self.start_mb = self.peak_mb = self._rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if torch.cuda.is_available():
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, self._rss())


def json_ready(value: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays as Python numbers and lists, NaN and infinities as null,
    paths and other objects as their text."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_results(stem: str | os.PathLike[str], markdown: str, record: dict[str, Any]) -> tuple[Path, Path]:
    """``<stem>.md`` (the markdown, newline-terminated) and ``<stem>.json`` (``record``, JSON-ready,
    indented), the folder made if missing; returns both paths."""
    base = Path(stem)
    base.parent.mkdir(parents=True, exist_ok=True)
    md, js = Path(f"{base}.md"), Path(f"{base}.json")
    md.write_text(markdown if markdown.endswith("\n") else markdown + "\n", encoding="utf-8")
    js.write_text(json.dumps(json_ready(record), indent=2) + "\n", encoding="utf-8")
    return md, js


__all__ = ["PeakMemory", "json_ready", "write_results"]

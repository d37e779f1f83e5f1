"""Shared run-and-report helpers for the CLI and the benchmarks: the peak memory of a block."""

from __future__ import annotations

import os
import threading

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


__all__ = ["PeakMemory"]

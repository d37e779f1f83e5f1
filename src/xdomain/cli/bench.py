"""``xdomain bench``: run a benchmark script of a source checkout (``benchmarks/``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from xdomain.cli.common import Subparsers

BENCHMARKS = {
    "forecast": "forecast_etth1.py",
    "classify-ucr": "classify_ucr.py",
    "classify-audio": "classify_audio.py",
    "proteins": "proteins.py",
}


def register(sub: Subparsers) -> None:
    b = sub.add_parser("bench", help="run a benchmark script (from a source checkout)")
    b.add_argument("what", choices=tuple(BENCHMARKS))
    b.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    b.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # src/xdomain/cli/bench.py: the checkout is three folders up
    root = Path(__file__).resolve().parents[3] / "benchmarks"
    script = root / BENCHMARKS[args.what]
    if not script.is_file():
        print(
            f"benchmark {args.what!r} not found (expected {script}); run it from a source checkout",
            file=sys.stderr,
        )
        return 2
    os.execv(sys.executable, [sys.executable, str(script), *args.rest])
    return 0  # pragma: no cover

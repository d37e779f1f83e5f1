"""The ``xdomain`` command line: one module a command (or a domain's group of commands), each with a
``register(subparsers)`` that adds its parser and sets ``handler`` to the function that runs it.

A new command is one more module here and its name in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from xdomain import __version__
from xdomain.cli import antibodies, bench, forecast, graphs, proteins, series, transactions
from xdomain.cli.forecast import MODELS  # still xdomain.cli.MODELS (tests/test_registry.py reads it)

# in the order --help lists them
COMMANDS = (forecast, series, proteins, antibodies, graphs, transactions, bench)

__all__ = ["COMMANDS", "MODELS", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xdomain",
        description="Cross-domain model reprogramming: frozen pretrained models reused for new domains.",
    )
    parser.add_argument("--version", action="version", version=f"xdomain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError) as err:
        print(f"xdomain: error: {err}", file=sys.stderr)
        return 2


"""What every ``trilemma`` command shares: its rows, their table and strict-JSON printing, and
the argument helpers."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TypeAlias, TypeVar

import numpy as np

__all__ = [
    "Commands",
    "Handler",
    "Rows",
    "add_json",
    "methods",
    "node_list",
    "print_rows",
    "strict",
]

Rows: TypeAlias = list[dict[str, object]]
Handler: TypeAlias = Callable[[argparse.Namespace], Rows | tuple[Rows, int]]
"""What a command runs: its rows, or its rows and its exit status."""
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

M = TypeVar("M", bound=str)


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def strict(value: object) -> object:
    """``value`` with every non-finite float (NaN, ±inf, numpy scalars included) as ``None``."""
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict(item) for item in value]
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if np.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def print_rows(rows: Rows, as_json: bool) -> None:
    """Print ``rows`` as strict JSON (RFC 8259) or as an aligned table."""
    if as_json:
        print(json.dumps(strict(rows), indent=2, default=float, allow_nan=False))
        return
    if not rows:
        return
    headers = list(rows[0])
    cells = [[_format(row[key]) for key in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))


def methods(choice: str, all_methods: tuple[M, ...]) -> tuple[M, ...]:
    """``all_methods`` for ``"all"``, else ``choice`` alone (one of them: argparse's
    ``choices`` checked it)."""
    if choice == "all":
        return all_methods
    return tuple(method for method in all_methods if method == choice)


def node_list(text: str) -> list[int | str]:
    """'0,3' -> [0, 3]; non-numeric labels stay strings."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    return [int(item) if item.lstrip("-").isdigit() else item for item in items]


def add_json(parser: argparse.ArgumentParser) -> None:
    """The ``--json`` switch of every command."""
    parser.add_argument(
        "--json",
        action="store_true",
        help="machine-readable output: strict JSON, non-finite numbers as null",
    )

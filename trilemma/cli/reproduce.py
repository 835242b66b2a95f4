"""``trilemma reproduce [NAME ...]``: the theorem figures as PNG + CSV + meta.json
(:mod:`trilemma.reproduce`)."""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from collections.abc import Sequence

from trilemma.cli._common import Commands, Rows, add_json

__all__ = ["add_parser"]


def _figure_names(patterns: Sequence[str]) -> list[str]:
    """Figure names matching ``patterns`` ('all', exact names or shell-style globs), in order."""
    from trilemma import reproduce

    names = reproduce.available()
    chosen: list[str] = []
    for pattern in patterns:
        matched = names if pattern == "all" else fnmatch.filter(names, pattern)
        if not matched:
            raise ValueError(f"no figure matches {pattern!r}; see `trilemma reproduce --list`")
        chosen.extend(name for name in matched if name not in chosen)
    return chosen


def _reproduce(args: argparse.Namespace) -> Rows:
    from trilemma import reproduce

    if args.list or not args.names:
        return [
            {"figure": name, "theorem": reproduce.FIGURES[name].theorem}
            for name in reproduce.available()
        ]
    rows: Rows = []
    for name in _figure_names(args.names):
        paths = reproduce.reproduce(
            name,
            out=args.out,
            size="quick" if args.quick else args.size,
            device=args.device,
            seed=args.seed,
            progress=not args.no_progress,
        )
        meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
        checks = meta["checks"]
        index = paths["index"]
        rows.append(
            {
                "figure": name,
                "png": str(paths["png"]),
                "wall_s": meta["wall_time_s"],
                "checks_passed": f"{sum(checks.values())}/{len(checks)}",
            }
        )
    if not args.json:
        print(f"figures, data and the index are in {index.parent}/ (see {index})", file=sys.stderr)
    return rows


def add_parser(commands: Commands) -> None:
    """``trilemma reproduce``."""
    figures = commands.add_parser(
        "reproduce", help="reproduce theorem figures as PNG + CSV + meta.json"
    )
    figures.add_argument("names", nargs="*", help="figure names, globs (trilemma-*) or 'all'")
    figures.add_argument("--list", action="store_true", help="list the figures and exit")
    figures.add_argument("--quick", action="store_true", help="same as --size quick")
    figures.add_argument(
        "--size",
        choices=("tiny", "quick", "full"),
        default="full",
        help="problem sizes: quick runs in under a minute per figure, tiny in seconds",
    )
    figures.add_argument("--out", default="results", help="output folder (default: results)")
    figures.add_argument("--device", default="cpu", help="cpu or cuda[:k]")
    figures.add_argument("--seed", type=int, default=0)
    figures.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    figures.set_defaults(handler=_reproduce)
    add_json(figures)

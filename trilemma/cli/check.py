"""``trilemma check [GROUP]``: try to falsify the theorems and audit the accountants
(:mod:`trilemma.proofs_checks`); exit status 1 on a counterexample."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from trilemma.cli._common import Commands, Rows, add_json

if TYPE_CHECKING:
    from trilemma.proofs_checks import CheckReport

__all__ = ["add_parser"]


def _check(args: argparse.Namespace) -> tuple[Rows, int]:
    """The reports as rows, and the exit status: 1 if a check found a counterexample."""
    from trilemma.proofs_checks import run_checks

    def show(report: CheckReport) -> None:
        if not args.json:
            status = "ok  " if report.passed else "FAIL"
            print(f"{status} {report.name}  worst ratio {report.worst_ratio:.4g}", file=sys.stderr)

    reports = run_checks(args.group, budget=args.budget, seed=args.seed, progress=show)
    status = 1 if any(not report.passed for report in reports) else 0
    if args.json:
        return [report.as_row() for report in reports], status
    rows: Rows = [
        {
            "check": report.name,
            "result": "passed" if report.passed else "COUNTEREXAMPLE",
            "worst_ratio": report.worst_ratio,
            "examples": report.examples,
            "statement": report.statement,
        }
        for report in reports
    ]
    return rows, status


def add_parser(commands: Commands) -> None:
    """``trilemma check``."""
    check = commands.add_parser(
        "check", help="try to falsify the theorems and audit the accountants (hypothesis)"
    )
    check.add_argument(
        "group",
        nargs="?",
        default="all",
        choices=("robustness", "gb", "trilemma", "accountants", "audit", "all"),
    )
    check.add_argument(
        "--budget", default="small", help="small, medium, large or examples per check"
    )
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(handler=_check)
    add_json(check)

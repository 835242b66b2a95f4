"""Command line: ``trilemma account ...``, ``check ...``, ``reproduce ...``, ``run ...`` and
``demo``.

Tables for people by default, ``--json`` for scripts: strict JSON (RFC 8259), in which a number
that is not finite (a bound that does not apply, an infinite ε) is ``null``. Invalid input prints
one line
``trilemma: error: ...`` on stderr and exits with status 2, like argparse's own usage errors;
``trilemma check`` exits with status 1 when it finds a counterexample to a claimed bound.

One module per command builds its parser and runs it: :mod:`~trilemma.cli.account` (with
``demo``), :mod:`~trilemma.cli.reproduce`, :mod:`~trilemma.cli.run` and
:mod:`~trilemma.cli.check`; :mod:`~trilemma.cli._common` prints the rows.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from trilemma import __version__
from trilemma.cli import account, check, reproduce, run
from trilemma.cli._common import Handler, print_rows

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``trilemma`` command."""
    parser = argparse.ArgumentParser(
        prog="trilemma",
        description="Privacy accounting, falsification checks, theorem figures and training "
        "runs of private and Byzantine-robust distributed learning: ``account``, ``check``, "
        "``reproduce``, ``run`` and ``demo``. --json output is strict JSON (non-finite numbers "
        "are null).",
    )
    parser.add_argument("--version", action="version", version=f"trilemma {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    account.add_demo_parser(commands)
    account.add_parser(commands)
    reproduce.add_parser(commands)
    run.add_parser(commands)
    check.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trilemma`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "kind", None) == "calibrate":
        usage = account.calibrate_error(args)
        if usage is not None:
            parser.error(usage)
    handler: Handler = args.handler
    try:
        output = handler(args)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError) as error:
        print(f"trilemma: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    rows, status = output if isinstance(output, tuple) else (output, 0)
    print_rows(rows, args.json)
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Time a quick reproduction alone and as 2 and 3 concurrent copies; print the ratios to solo.

Each copy is a fresh process, ``python -m trilemma reproduce FIGURE --quick --out DIR
--no-progress`` (default figure ``gb-breakdown``), into its own temporary folder. For k = 1,
2, 3, ... (``--copies``) the k copies start together; a copy's wall time runs from the start of
all to its own end, and its CPU time (user + system, from ``os.wait4``) is what the kernel
charged it. The table gives, per k, the slowest copy's wall time over the solo wall time (the
targets: within 2.5× for two copies, 4× for three) and the mean CPU time of a copy over the solo
CPU time. That second ratio tells the causes apart: k copies sharing c cores fairly each take
about max(1, k·u/c) times as long (u: the cores a solo run keeps busy, CPU time / wall time)
while their CPU time stays put; CPU time that grows with k is work added by the contention
(threads spinning while they wait, or waiting on each other).

The copies inherit this process's environment plus ``--env KEY=VALUE`` (repeatable), so the
effect of a setting can be measured, e.g. ``--env OMP_WAIT_POLICY=ACTIVE`` against the package's
default PASSIVE (set on import of trilemma), or ``--env OMP_NUM_THREADS=1``. Every k is run
``--repeats`` times and the best (smallest) slowest-copy wall time is kept, with the CPU time of
that run. The machine's 1-min load average before each run is printed: on a machine that other
jobs also use, the ratios are not the contention of the copies alone.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import _harness as harness

from trilemma._threads import usable_cores

TARGETS = {2: 2.5, 3: 4.0}
"""Slowest copy's wall time over the solo wall time, at most (issue targets)."""


@dataclass(frozen=True)
class Outcome:
    """One copy: wall seconds from the common start, CPU seconds charged, exit status."""

    wall_s: float
    cpu_s: float
    status: int


@dataclass(frozen=True)
class Level:
    """The best run of k concurrent copies."""

    copies: int
    outcomes: tuple[Outcome, ...]
    load: float  # 1-min load average just before the run

    @property
    def wall_s(self) -> float:
        """The slowest copy's wall time."""
        return max(o.wall_s for o in self.outcomes)

    @property
    def cpu_s(self) -> float:
        """Mean CPU time of a copy."""
        return sum(o.cpu_s for o in self.outcomes) / len(self.outcomes)


def command(figure: str, out: str) -> list[str]:
    """The reproduction one copy runs."""
    return [
        sys.executable,
        *("-m", "trilemma", "reproduce", figure, "--quick"),
        *("--out", out, "--no-progress"),
    ]


def run_copies(figure: str, copies: int, environment: Mapping[str, str]) -> Level:
    """Start ``copies`` reproductions at once and wait for all; wall and CPU time of each."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="contention-") as folder:
        start = time.perf_counter()
        pids = {}
        for i in range(copies):
            process = subprocess.Popen(
                command(figure, os.path.join(folder, str(i))),
                env=dict(environment),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            pids[process.pid] = i
        outcomes: list[Outcome | None] = [None] * copies
        while pids:  # reap in order of finishing, so each copy's own end is measured
            pid, status, usage = os.wait4(-1, 0)
            if pid not in pids:
                continue
            wall = time.perf_counter() - start
            cpu = usage.ru_utime + usage.ru_stime
            outcomes[pids.pop(pid)] = Outcome(wall, cpu, os.waitstatus_to_exitcode(status))
    done = tuple(o for o in outcomes if o is not None)
    failed = [o.status for o in done if o.status != 0]
    if failed:
        raise RuntimeError(f"{len(failed)} of {copies} copies of {figure} failed: {failed}")
    return Level(copies, done, load)


def measure(
    figure: str, counts: Sequence[int], repeats: int, environment: Mapping[str, str]
) -> list[Level]:
    """The best of ``repeats`` runs for every k in ``counts`` (interleaved: k = 1, 2, ..., then
    again), smallest slowest-copy wall time first."""
    best: dict[int, Level] = {}
    for repeat in range(repeats):
        for k in counts:
            level = run_copies(figure, k, environment)
            print(
                f"  run {repeat + 1}/{repeats}, {k} cop{'y' if k == 1 else 'ies'} (load "
                f"{level.load:.2f}): wall "
                + ", ".join(f"{o.wall_s:.1f}" for o in level.outcomes)
                + " s; CPU "
                + ", ".join(f"{o.cpu_s:.1f}" for o in level.outcomes)
                + " s",
                flush=True,
            )
            if k not in best or level.wall_s < best[k].wall_s:
                best[k] = level
    return [best[k] for k in counts]


def table(levels: Sequence[Level]) -> str:
    """Per k: slowest wall, ratio to solo, target, fair-share expectation, CPU ratio, load."""
    solo = levels[0]
    cores = usable_cores()
    busy = solo.cpu_s / solo.wall_s  # cores a solo run keeps busy
    rows = []
    for level in levels:
        k = level.copies
        ratio = level.wall_s / solo.wall_s
        target = TARGETS.get(k, math.nan)
        verdict = "—" if math.isnan(target) else "met" if ratio <= target else "missed"
        rows.append(
            [
                str(k),
                f"{level.wall_s:.1f}",
                harness.times(ratio),
                "—" if math.isnan(target) else f"≤ {target:g}× ({verdict})",
                harness.times(max(1.0, k * busy / cores)),
                f"{level.cpu_s:.1f}",
                harness.times(level.cpu_s / solo.cpu_s),
                f"{level.load:.2f}",
            ]
        )
    header = [
        "copies",
        "slowest wall (s)",
        "wall / solo",
        "target",
        "fair share",
        "CPU per copy (s)",
        "CPU / solo",
        "load before",
    ]
    return harness.markdown_table(header, rows, align="rrrlrrrr")


def _environment(pairs: Sequence[str]) -> dict[str, str]:
    """This process's environment with the ``KEY=VALUE`` pairs of ``--env`` set."""
    environment = dict(os.environ)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--env takes KEY=VALUE, got {pair!r}")
        environment[key] = value
    return environment


def main(argv: Sequence[str] | None = None) -> int:
    """Run solo and concurrent copies, print progress and the table; ``argv`` defaults to
    ``sys.argv[1:]``. Returns the exit status: 0, or 1 when a target is missed.
    """
    parser = harness.make_parser(
        __doc__,
        repeats=2,
        quick_repeats=1,
        quick="one run of each k (about 6× a solo run's wall time on an idle machine)",
    )
    parser.add_argument("--figure", default="gb-breakdown", help="figure (gb-breakdown)")
    parser.add_argument("--copies", default="1,2,3", help="comma-separated k, from 1 (1,2,3)")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="set in every copy"
    )
    args = harness.parse(parser, argv)
    if args.device.type != "cpu":
        parser.error("--device: the contention benchmark runs on the CPU only")
    try:
        counts = [int(v) for v in args.copies.split(",")]
        environment = _environment(args.env)
    except ValueError as error:
        parser.error(f"--copies / --env: {error}")
    if counts[0] != 1 or min(counts) < 1 or len(set(counts)) != len(counts):
        parser.error(f"--copies must start with 1 and list distinct counts, got {args.copies!r}")
    start = harness.print_header(f"Concurrent quick reproductions of {args.figure}")
    print("copies' environment: " + (", ".join(args.env) or "as this process's"))
    print()
    levels = measure(args.figure, counts, args.repeats, environment)
    print()
    print(table(levels))
    print(
        "\nwall / solo: the slowest copy's wall time (all copies start together) over the solo "
        "run's, best of the repeats. fair share: the ratio if the copies shared the usable "
        "cores perfectly (max(1, k × solo CPU time / solo wall time / cores)). CPU / solo: a "
        "copy's mean CPU time (user + system) over the solo run's; above 1, contention adds "
        "work (spinning or oversubscribed threads). load before: the 1-min load average when "
        "the run started, other jobs included."
    )
    solo = levels[0].wall_s
    missed = [lv for lv in levels if lv.wall_s / solo > TARGETS.get(lv.copies, math.inf)]
    harness.print_footer(start)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

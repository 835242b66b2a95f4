"""What every benchmark script shares: options, device, best-of timer, floors, tables, header.

A script keeps only its own cases; this module gives it

- the common options ``--repeats``, ``--quick`` and ``--device cpu|cuda[:i]``
  (:func:`make_parser`, :func:`parse`): ``--device cuda`` fails with a clear message where torch
  sees no CUDA device, and the device's name is printed in the header;
- the timer (:class:`Timer`, :func:`best_of`): ``time.perf_counter`` wall time of one call, the
  device synchronised before and after it; each side is called once untimed (the warm-up:
  imports, JIT compiles, caches, allocator), then every side is timed in turn, ``repeats``
  rounds, so that a drift of the machine's load hits all sides alike, and the best time is
  kept; a side whose warm-up took more than :data:`SLOW_S` gets a single timed call;
- the floors as sides to time next to the rows they bound, on the same input and device
  (:func:`read_side`, :func:`read_write_side`, :func:`gram_side`), and the read floor alone
  (:func:`read_floor`, best of seven calls);
- Markdown tables (:func:`markdown_table`) and number formats (:func:`ms`, :func:`times`,
  :func:`rate`);
- the header (:func:`print_header`: machine, usable cores, thread pools, device name, versions,
  git state, thread-related environment, load average) and the footer (:func:`print_footer`:
  total wall time, load average at the end), so that every printed table says where and under
  what load it was measured.

Scripts import it as ``_harness`` (their folder is ``sys.path[0]`` when they run as
``python benchmarks/NAME.py``) and load siblings with :func:`sibling`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

import torch

from trilemma._threads import usable_cores

__all__ = [
    "SLOW_S",
    "Side",
    "Timer",
    "Timing",
    "best_of",
    "choices",
    "cpu_model",
    "device_name",
    "git_state",
    "gram_side",
    "make_parser",
    "markdown_table",
    "ms",
    "parse",
    "print_footer",
    "print_header",
    "rate",
    "read_floor",
    "read_side",
    "read_write_side",
    "sibling",
    "times",
]

SLOW_S = 5.0
"""A side whose warm-up call took longer than this (seconds) gets one timed call, not K."""
FLOOR_REPEATS = 7
"""Floors are the best of at least this many calls."""
_THREAD_VARIABLES = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def make_parser(
    description: str | None, *, repeats: int | None, quick: str, quick_repeats: int | None = None
) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with ``--repeats`` (unless ``repeats`` is None: a script that
    times nothing), ``--quick`` and ``--device``.

    Parameters
    ----------
    description : str or None
        The script's docstring (its first line describes the script in ``--help``).
    repeats : int or None
        Default K of ``--repeats``; None: no such option.
    quick : str
        What ``--quick`` does (help text).
    quick_repeats : int, optional
        K under ``--quick`` when ``--repeats`` is not given (default: ``repeats``).
    """
    first_line = description.strip().splitlines()[0] if description else None
    parser = argparse.ArgumentParser(description=first_line)
    quick_k = repeats if quick_repeats is None else quick_repeats
    if repeats is not None:
        parser.add_argument(
            "--repeats",
            type=int,
            help=f"best of K interleaved timed calls (default {repeats}; with --quick {quick_k})",
        )
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument(
        "--device",
        default="cpu",
        help="where our side runs: cpu (default) or cuda[:i]; cuda fails when torch sees none",
    )
    parser.set_defaults(_repeats=(repeats, quick_k))
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; ``args.device`` becomes a checked :class:`torch.device` and
    ``args.repeats`` (where the parser has it) an int ≥ 1, the parser's default for the chosen
    mode when not given."""
    args = parser.parse_args(argv)
    full, quick = args._repeats
    if full is not None:
        if args.repeats is None:
            args.repeats = quick if args.quick else full
        if args.repeats < 1:
            parser.error(f"--repeats must be at least 1, got {args.repeats}")
    args.device = _device(args.device, parser)
    return args


def _device(text: str, parser: argparse.ArgumentParser) -> torch.device:
    """``text`` as a device that exists here, or a parser error naming ``--device``."""
    try:
        device = torch.device(text)
    except RuntimeError:
        parser.error(f"--device must be cpu or cuda[:i], got {text!r}")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device must be cpu or cuda[:i], got {text!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = torch.version.cuda or "none (a CPU-only build)"
            parser.error(
                f"--device {text}: torch {torch.__version__} sees no CUDA device "
                f"(torch.cuda.is_available() is False; CUDA of this build: {built})"
            )
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            parser.error(f"--device {text}: only {torch.cuda.device_count()} CUDA device(s)")
        device = torch.device("cuda", index)
    return device


def choices(
    text: str | None, known: Sequence[str], flag: str, parser: argparse.ArgumentParser
) -> tuple[str, ...]:
    """The comma-separated keys of ``text`` (all of ``known`` when None), checked."""
    if text is None:
        return tuple(known)
    chosen = tuple(k.strip().lower() for k in text.split(",") if k.strip())
    unknown = sorted(set(chosen) - set(known))
    if unknown or not chosen:
        parser.error(f"{flag}: unknown {unknown}; known: {', '.join(known)}")
    return chosen


def sibling(name: str) -> ModuleType:
    """A module of the benchmarks folder (``_byzfl``, ...), however the script was started."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module(name)


class Timer:
    """Wall-clock seconds of single calls, synchronising ``device`` around each."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    def sync(self) -> None:
        """Wait for the device's queued work (a no-op on the CPU)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def call(self, function: Callable[[Any], object], argument: Any) -> tuple[float, object]:
        """Seconds of ``function(argument)`` and its output."""
        self.sync()
        start = time.perf_counter()
        out = function(argument)
        self.sync()
        return time.perf_counter() - start, out


def _index(run: int) -> int:
    return run


@dataclass(frozen=True)
class Side:
    """One timed side of a comparison.

    ``run(argument)`` is what is timed; ``prepare(index)`` builds its argument, untimed, for
    run ``index`` (−1: the warm-up, then 0, 1, ...): a fresh copy of an input the side
    overwrites, a seed, a reset of state. By default the argument is the index itself.
    """

    run: Callable[[Any], object]
    prepare: Callable[[int], Any] = _index


@dataclass
class Timing:
    """What :func:`best_of` measured for one side."""

    seconds: float
    """Best timed call."""
    runs: int
    """Timed calls (``repeats``, or 1 for a slow side)."""
    warm_up_s: float
    """The untimed first call's seconds (NaN without a warm-up)."""
    outputs: list[object] = field(default_factory=list)
    """Kept outputs (see ``keep`` of :func:`best_of`)."""


def best_of(
    sides: Sequence[Side],
    repeats: int,
    *,
    timer: Timer | None = None,
    keep: Literal["none", "warm-up", "timed"] = "none",
    warm_up: bool = True,
) -> list[Timing]:
    """Warm up every side once, then time them interleaved and keep each one's best call.

    Parameters
    ----------
    sides : sequence of Side
        What to time.
    repeats : int
        Timed rounds; a side whose warm-up took more than :data:`SLOW_S` is timed once.
    timer : Timer, optional
        Device synchronisation (default: CPU).
    keep : {"none", "warm-up", "timed"}
        Outputs kept in :attr:`Timing.outputs`: none (each dropped at once, freeing memory
        before the next call), the warm-up call's (for value checks), or every timed call's.
    warm_up : bool
        Make the untimed first call (default). Without it every call is timed, the first one
        cold: for a side whose first call fills a cache that the next calls would hit.

    Returns
    -------
    list of Timing
        One per side, in order.
    """
    timer = timer or Timer()
    timings = []
    for side in sides:
        if not warm_up:
            timings.append(Timing(math.inf, max(1, repeats), math.nan))
            continue
        seconds, out = timer.call(side.run, side.prepare(-1))
        runs = 1 if seconds > SLOW_S else max(1, repeats)
        timings.append(Timing(math.inf, runs, seconds, [out] if keep == "warm-up" else []))
        del out
    for index in range(max(t.runs for t in timings)):
        for side, timing in zip(sides, timings, strict=True):
            if index < timing.runs:
                seconds, out = timer.call(side.run, side.prepare(index))
                timing.seconds = min(timing.seconds, seconds)
                if keep == "timed":
                    timing.outputs.append(out)
                del out
    return timings


def read_side(x: torch.Tensor) -> Side:
    """``x.sum()``: one read of ``x`` at the bandwidth the device attains."""
    return Side(torch.sum, lambda _: x)


def read_write_side(x: torch.Tensor) -> Side:
    """``buffer.copy_(x)`` into a preallocated buffer: one read plus one write of ``x``'s size
    (what an in-place rule must do at least, and a rule that returns a new ``(..., n, d)``
    result)."""
    buffer = torch.empty_like(x)
    return Side(buffer.copy_, lambda _: x)


def gram_side(x: torch.Tensor) -> Side:
    """The (batched) Gram product ``x @ x.mT`` of ``(..., n, d)`` rows: the one matrix product
    that every rule comparing all pairs of rows needs."""
    return Side(lambda v: v @ v.mT, lambda _: x)


def read_floor(x: torch.Tensor, timer: Timer) -> float:
    """Best seconds of :func:`read_side` over :data:`FLOOR_REPEATS` calls."""
    return best_of([read_side(x)], FLOOR_REPEATS, timer=timer)[0].seconds


def ms(seconds: float) -> str:
    """Milliseconds with three significant digits at most (— for NaN)."""
    if math.isnan(seconds):
        return "—"
    value = seconds * 1e3
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def times(ratio: float) -> str:
    """A ratio such as ``2.35`` or ``14.2`` (— for NaN)."""
    if math.isnan(ratio):
        return "—"
    return f"{ratio:.1f}" if abs(ratio) >= 10 else f"{ratio:.2f}"


def rate(value: float) -> str:
    """A rate (per second) with thousands separators, one decimal below 100."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def markdown_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], *, align: str | None = None
) -> str:
    """A Markdown table; ``align`` has one letter per column, ``l`` or ``r`` (default: the
    first column left, the others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align must be {len(header)} letters l or r, got {align!r}")
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {row!r} has {len(row)} cells for {len(header)} columns")
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def cpu_model() -> str:
    """The first ``model name`` line of /proc/cpuinfo (or the platform's processor string)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def device_name(device: torch.device) -> str:
    """``cuda:0 (NVIDIA H200)`` for a GPU (``torch.cuda.get_device_name``), else the CPU's
    model with the cores this process may use."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({cpu_model()}, {usable_cores()} of {os.cpu_count()} CPUs usable)"


def git_state() -> str:
    """Short HEAD of the repository and whether trilemma/ differs from it (or "unknown")."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    def git(*arguments: str) -> str:
        done = subprocess.run(
            ["git", "-C", root, *arguments], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "trilemma")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" + uncommitted changes under trilemma/" if dirty else " (trilemma/ clean)")


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def print_header(
    title: str, *, device: torch.device | None = None, packages: Sequence[str] = ("torch",)
) -> float:
    """Print the title and where the numbers come from; return the start time
    (``time.perf_counter``) for :func:`print_footer`."""
    import numba

    print(f"# {title}")
    print(f"machine: {device_name(torch.device('cpu'))}", end="")
    if device is not None and device.type == "cuda":
        print(f"; device {device_name(device)}", end="")
    print(f"; threads: torch {torch.get_num_threads()}, numba {numba.get_num_threads()}")
    print("versions: " + ", ".join(f"{name} {_version(name)}" for name in packages))
    print(f"trilemma at git {git_state()}")
    variables = ", ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in _THREAD_VARIABLES)
    print(f"environment: {variables}")
    print(f"1-min load average at start: {os.getloadavg()[0]:.2f}")
    return time.perf_counter()


def print_footer(start: float) -> None:
    """Total wall time since ``start`` and the load average at the end."""
    print(f"\nTotal wall time: {time.perf_counter() - start:.1f} s", end="; ")
    print(f"1-min load average at end: {os.getloadavg()[0]:.2f}")

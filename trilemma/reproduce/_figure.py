"""The figure registry and the runner that turns a figure into PNG + CSV + meta.json.

A :class:`Figure` pairs a ``compute`` function (settings → tidy rows, the parameters used and the
checks of measurement against theory) with a ``plot`` function that only draws that
:class:`FigureData`: plotting never computes, computing never plots.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure as MatplotlibFigure

from trilemma._device import check_device
from trilemma._files import save_png, write_csv, write_text
from trilemma._provenance import write_meta
from trilemma._threads import limited
from trilemma._validation import check_choice, check_int

__all__ = [
    "FIGURES",
    "SIZES",
    "Figure",
    "FigureData",
    "Settings",
    "available",
    "non_decreasing",
    "register",
    "reproduce",
    "single_threaded",
    "write_index",
]

Rows = list[dict[str, Any]]


SIZES: tuple[str, ...] = ("tiny", "quick", "full")


@dataclass(frozen=True)
class Settings:
    """How a figure is computed: ``size`` (``"full"``; ``"quick"``: under a minute each on a
    laptop CPU; ``"tiny"``: seconds, for tests), device, seed, progress bar."""

    size: str = "full"
    device: str = "cpu"
    seed: int = 0
    progress: bool = False

    def pick(self, *, tiny: Any, quick: Any, full: Any) -> Any:
        """The value for this size."""
        return {"tiny": tiny, "quick": quick, "full": full}[self.size]


@dataclass(frozen=True)
class FigureData:
    """What ``compute`` returns: tidy ``rows`` (the CSV), the ``parameters`` used and
    ``checks`` (statement → whether the measurement agrees with the theory)."""

    rows: Rows
    parameters: Mapping[str, Any] = field(default_factory=dict)
    checks: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Figure:
    """A reproducible figure: name, the theorem it illustrates, what it plots, and how."""

    name: str
    theorem: str
    description: str
    compute: Callable[[Settings], FigureData]
    plot: Callable[[FigureData, MatplotlibFigure], None]
    """Draws ``data`` (its rows and parameters) on the canvas; never computes."""
    size: tuple[float, float] = (6.4, 4.4)
    single_thread: bool = False
    """Compute in :func:`single_threaded`: small tensors (a few thousand entries per call)
    pay more for waking a thread pool than they gain, most of all on a busy CPU."""


def non_decreasing(values: Sequence[float], *, tolerance: float = 0.05) -> bool:
    """Whether every value is at least (1 − ``tolerance``) × the one before it."""
    return all(b >= a * (1 - tolerance) for a, b in itertools.pairwise(values))


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with one BLAS/OpenMP thread and one numba thread
    (:func:`trilemma._threads.limited` with one thread).

    Small tensors pay more for waking a thread pool than they gain; on a busy CPU a pool even
    waits on a descheduled thread (the coordinate-wise rules' numba kernel at n = 50, d = 64:
    95 ms per trial against 3.4 ms on one thread, measured 2026-11-29).
    """
    with limited(1):
        yield


FIGURES: dict[str, Figure] = {}


def register(figure: Figure) -> Figure:
    """Add ``figure`` to :data:`FIGURES` (names are unique)."""
    if figure.name in FIGURES:
        raise ValueError(f"figure {figure.name!r} is already registered")
    FIGURES[figure.name] = figure
    return figure


def available() -> tuple[str, ...]:
    """Registered figure names, sorted."""
    return tuple(sorted(FIGURES))


def reproduce(
    name: str,
    *,
    out: str | Path = "results",
    size: str = "full",
    device: str = "cpu",
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Path]:
    """Compute figure ``name`` and write ``<out>/<name>.csv``, ``.png`` and ``.meta.json``.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    out : str or Path
        Output folder (created if needed).
    size : {"full", "quick", "tiny"}
        Problem sizes: ``"quick"`` runs in under a minute per figure on a laptop CPU,
        ``"tiny"`` in seconds (tests).
    device : str
        ``"cpu"`` or ``"cuda"`` (Monte Carlo figures run there).
    seed : int
        Base seed; the same seed gives the same CSV on CPU.
    progress : bool
        Show a progress bar on long sweeps.

    Returns
    -------
    dict
        ``{"csv": path, "png": path, "meta": path, "index": path}`` (the index lists every
        figure of ``out``, see :func:`write_index`).
    """
    figure = FIGURES[check_choice("name", name, available())]
    seed = check_int("seed", seed)
    device = check_device(device)
    size = check_choice("size", size, SIZES)
    settings = Settings(size=size, device=device, seed=seed, progress=progress)
    start = time.perf_counter()
    if figure.single_thread:
        with single_threaded():
            data = figure.compute(settings)
    else:
        data = figure.compute(settings)
    wall = time.perf_counter() - start
    canvas = MatplotlibFigure(figsize=figure.size, layout="constrained")
    figure.plot(data, canvas)
    folder = Path(out)
    paths = {
        "csv": write_csv(folder / f"{name}.csv", data.rows),
        "png": save_png(folder / f"{name}.png", canvas),
    }
    meta = {
        "figure": name,
        "theorem": figure.theorem,
        "description": figure.description,
        "settings": asdict(settings),
        "parameters": dict(data.parameters),
        "checks": dict(data.checks),
    }
    paths["meta"] = write_meta(folder / f"{name}.meta.json", meta, device=device, wall_time_s=wall)
    paths["index"] = write_index(folder)
    return paths


def write_index(out: str | Path) -> Path:
    """Write ``<out>/index.md``: one row per figure found in ``out`` (from its meta.json) with
    the theorem, what is plotted, and whether each measurement agrees with the theory.

    Returns
    -------
    Path
        The index file.
    """
    folder = Path(out)
    lines = [
        "# Reproduced figures",
        "",
        "| figure | theorem | what is plotted | agrees with theory | size | wall time (s) |",
        "|---|---|---|---|---|---:|",
    ]
    for meta_path in sorted(folder.glob("*.meta.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        checks = "; ".join(
            f"{'yes' if ok else 'NO'}: {statement}" for statement, ok in meta["checks"].items()
        )
        name = meta["figure"]
        lines.append(
            f"| [{name}]({name}.png) ([csv]({name}.csv)) | {meta['theorem']} | "
            f"{meta['description']} | {checks or '—'} | {meta['settings']['size']} | "
            f"{meta['wall_time_s']} |"
        )
    return write_text(folder / "index.md", "\n".join(lines) + "\n")

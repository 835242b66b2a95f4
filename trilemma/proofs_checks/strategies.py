"""Public hypothesis strategies for the objects the theorems speak about.

Robustness inputs live on the grid k/1024 of [−10, 10] (collinear layouts on k/512): every
squared distance a rule computes through a Gram matrix is then exact in float64, so a failed
check is a property of the rule, not of rounding.

Examples
--------
>>> from hypothesis import given, settings
>>> @settings(max_examples=5, database=None)
... @given(worker_counts(max_n=9))
... def holds(pair):
...     n, f = pair
...     assert 2 * f < n
>>> holds()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

__all__ = [
    "GRID",
    "QuadraticProblem",
    "RobustnessInput",
    "connected_graphs",
    "dpsgd_parameters",
    "gaussian_parameters",
    "graphs_with_colluders",
    "grid_points",
    "quadratic_problems",
    "robustness_inputs",
    "two_point_instance",
    "worker_counts",
    "worker_vectors",
]

GRID = 1024
_COORDINATE = st.integers(-10 * GRID, 10 * GRID).map(lambda k: k / GRID)


def worker_counts(
    *, min_n: int = 1, max_n: int = 12, min_f: int = 0, max_f: int | None = None, gap: int = 1
) -> SearchStrategy[tuple[int, int]]:
    """(n, f) with min_f ≤ f ≤ max_f and 2f + gap ≤ n (gap = 1: the usual 2f < n)."""
    if max_f is not None and 2 * max_f + gap > max_n:
        raise ValueError(f"max_f={max_f!r} needs n ≥ 2·max_f + gap = {2 * max_f + gap} > {max_n}")
    low_n = max(min_n, 2 * min_f + gap)
    if low_n > max_n:
        raise ValueError(f"min_n={min_n!r}, min_f={min_f!r} leave no n ≤ max_n={max_n!r}")
    top = (lambda n: (n - gap) // 2) if max_f is None else (lambda n: min(max_f, (n - gap) // 2))
    return st.integers(low_n, max_n).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(min_f, top(n)))
    )


@st.composite
def grid_points(
    draw: st.DrawFn,
    count: int,
    d: int,
    layout: str,
    anchor: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """``count`` points of [−10, 10]^d on the grid: ``"free"``, ``"clustered"`` around a centre
    (spreads 0 to 1) or ``"collinear"`` on the line ``anchor = (start, direction)``."""
    if count == 0:
        return np.zeros((0, d))
    if layout == "free":
        rows = st.lists(_COORDINATE, min_size=d, max_size=d)
        return np.array(draw(st.lists(rows, min_size=count, max_size=count)))
    if layout == "clustered":
        centre = np.array(draw(st.lists(_COORDINATE, min_size=d, max_size=d)))
        spread = draw(st.sampled_from([0.0, 1 / GRID, 1 / 64, 1 / 8, 1.0]))
        steps = st.lists(st.integers(-4, 4), min_size=d, max_size=d)
        offsets = np.array(draw(st.lists(steps, min_size=count, max_size=count)))
        return np.clip(centre + spread * offsets, -10.0, 10.0)
    if anchor is None:
        raise ValueError(f"layout={layout!r} needs anchor=(start, direction)")
    start, direction = anchor
    t = np.array(draw(st.lists(st.integers(-40, 40), min_size=count, max_size=count))) / 8
    return start + t[:, None] * direction


@dataclass(frozen=True)
class RobustnessInput:
    """n vectors ``x`` (n, d) of which ``honest`` (bool mask, n − f entries) are honest."""

    x: torch.Tensor
    honest: torch.Tensor
    n: int
    f: int

    def describe(self) -> dict:
        """A JSON-able description (for counterexamples)."""
        return {"n": self.n, "f": self.f, "x": self.x.tolist(), "honest": self.honest.tolist()}

    def moved(self, rows: np.ndarray) -> RobustnessInput:
        """The same workers and honest set at new positions ``rows`` (any shape of n·d)."""
        x = torch.from_numpy(np.asarray(rows, dtype=np.float64).reshape(self.x.shape).copy())
        return RobustnessInput(x, self.honest, self.n, self.f)

    def on_grid(self) -> RobustnessInput:
        """Moved onto the grid of :func:`robustness_inputs`: centred (per coordinate, at the
        mid-range), scaled by one factor so the largest coordinate is about 10, and rounded to
        k/GRID, where every squared distance is exact. Translation, one common scale and
        rounding: the ratio of a translation- and scale-equivariant rule moves by the rounding
        only."""
        x = self.x.numpy()
        centred = x - (x.max(axis=0) + x.min(axis=0)) / 2
        extent = float(np.abs(centred).max())
        scaled = centred * ((10 - 1 / GRID) / extent) if extent > 0 else centred
        return self.moved(np.round(scaled * GRID) / GRID)


@st.composite
def robustness_inputs(
    draw: st.DrawFn,
    *,
    min_n: int = 3,
    max_n: int = 9,
    min_f: int = 0,
    max_f: int | None = None,
    gap: int = 1,
    max_d: int = 3,
) -> RobustnessInput:
    """Adversarial inputs of the (f, κ) definition: honest rows free, clustered or collinear;
    Byzantine rows free, clustered, copies of honest rows, one repeated point, or on the honest
    line; rows shuffled. f may be 0; min_n = max_n, min_f = max_f pins (n, f)."""
    counts = worker_counts(min_n=min_n, max_n=max_n, min_f=min_f, max_f=max_f, gap=gap)
    n, f = draw(counts, label="(n, f)")
    d = draw(st.integers(1, max_d), label="d")
    layout = draw(st.sampled_from(["free", "clustered", "collinear"]), label="layout")
    line = None
    if layout == "collinear":
        half = st.integers(-5 * 64, 5 * 64).map(lambda k: k / 64)
        unit = st.integers(-64, 64).map(lambda k: k / 64)
        line = (
            np.array(draw(st.lists(half, min_size=d, max_size=d))),
            np.array(draw(st.lists(unit, min_size=d, max_size=d))),
        )
    honest_rows = draw(grid_points(n - f, d, layout, line), label="honest")
    kinds = ["collinear"] if layout == "collinear" else ["free", "clustered", "copies", "same"]
    kind = draw(st.sampled_from(kinds), label="byzantine")
    if kind == "copies":
        picks = draw(st.lists(st.integers(0, n - f - 1), min_size=f, max_size=f), label="picks")
        byzantine_rows = honest_rows[picks].reshape(f, d)
    elif kind == "same":
        byzantine_rows = np.repeat(draw(grid_points(1, d, "free"), label="point"), f, axis=0)
    else:
        byzantine_rows = draw(grid_points(f, d, kind, line), label="byzantine rows")
    order = np.array(draw(st.permutations(range(n)), label="order"))
    rows = np.concatenate([honest_rows, byzantine_rows])
    x = np.empty_like(rows)
    x[order] = rows
    honest = np.zeros(n, dtype=bool)
    honest[order[: n - f]] = True
    return RobustnessInput(torch.from_numpy(x), torch.from_numpy(honest), n, f)


def two_point_instance(
    n: int,
    f: int,
    *,
    shift: Sequence[float] | None = None,
    direction: Sequence[float] | None = None,
    scale: float = 1.0,
    order: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The instance of the lower bound κ ≥ f/(n − 2f): n − f copies of ``shift`` and f of
    ``shift + scale·direction``. Returns x and the honest masks S₁ (the n − f first rows) and
    S₂ (n − 2f of them and the f others), permuted by ``order``."""
    d = 1 if direction is None else len(direction)
    f64 = torch.float64
    start = torch.zeros(d, dtype=f64) if shift is None else torch.tensor(shift, dtype=f64)
    step = torch.ones(d, dtype=f64) if direction is None else torch.tensor(direction, dtype=f64)
    rows = torch.cat([start.expand(n - f, d), (start + scale * step).expand(f, d)])
    s1 = torch.arange(n) < n - f
    s2 = torch.arange(n) >= f
    if order is not None:
        rows, s1, s2 = rows[order], s1[order], s2[order]
    return rows, s1, s2


@st.composite
def worker_vectors(draw: st.DrawFn, n: int, d: int, *, garbage: int = 0) -> torch.Tensor:
    """(n, d) float64 grid vectors whose first ``garbage`` rows are NaN, ±inf or 1e38 rows (or
    mixes of them): the Byzantine data that must never make an aggregate non-finite."""
    x = torch.from_numpy(draw(grid_points(n, d, draw(st.sampled_from(["free", "clustered"])))))
    values = st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e38, -1e38])
    for row in range(garbage):
        x[row] = torch.tensor(draw(st.lists(values, min_size=d, max_size=d)), dtype=x.dtype)
    return x


@st.composite
def connected_graphs(draw: st.DrawFn, *, min_nodes: int = 2, max_nodes: int = 12) -> nx.Graph:
    """Connected graphs: rings, paths, stars, complete graphs, 2-D tori and random trees plus
    random extra edges."""
    n = draw(st.integers(min_nodes, max_nodes), label="nodes")
    kind = draw(st.sampled_from(["ring", "path", "star", "complete", "torus", "tree+edges"]))
    if kind == "ring" and n >= 3:
        return nx.cycle_graph(n)
    if kind == "star":
        return nx.star_graph(n - 1)
    if kind == "complete":
        return nx.complete_graph(n)
    if kind == "torus" and n >= 4:
        rows = draw(st.integers(2, max(2, n // 2)))
        return nx.convert_node_labels_to_integers(nx.grid_2d_graph(rows, 2, periodic=True))
    if kind == "tree+edges" and n >= 2:
        seed = draw(st.integers(0, 2**31 - 1))
        graph = nx.random_labeled_tree(n, seed=seed)
        pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
        for u, v in draw(st.lists(pairs, max_size=n)):
            if u != v:
                graph.add_edge(u, v)
        return graph
    return nx.path_graph(n)


@st.composite
def graphs_with_colluders(
    draw: st.DrawFn, *, min_nodes: int = 3, max_nodes: int = 12
) -> tuple[nx.Graph, list[Any]]:
    """(graph, colluders): a connected graph and a set of curious nodes leaving ≥ 1 honest."""
    graph = draw(connected_graphs(min_nodes=min_nodes, max_nodes=max_nodes))
    nodes = sorted(graph.nodes)
    colluders = draw(st.lists(st.sampled_from(nodes), unique=True, max_size=len(nodes) - 1))
    return graph, sorted(colluders)


def gaussian_parameters() -> SearchStrategy[tuple[float, float, int]]:
    """(noise multiplier σ ∈ [0.3, 30], δ ∈ [1e-10, 1e-2], compositions ∈ [1, 64])."""
    return st.tuples(
        st.floats(0.3, 30.0),
        st.floats(-10.0, -2.0).map(lambda e: 10.0**e),
        st.integers(1, 64),
    )


def dpsgd_parameters() -> SearchStrategy[tuple[float, float, int, float]]:
    """(σ ∈ [0.5, 10], sampling rate q ∈ [1e-3, 0.1], steps ∈ [1, 2000], δ ∈ [1e-8, 1e-3])."""
    return st.tuples(
        st.floats(0.5, 10.0),
        st.floats(-3.0, -1.0).map(lambda e: 10.0**e),
        st.integers(1, 2000),
        st.floats(-8.0, -3.0).map(lambda e: 10.0**e),
    )


@dataclass(frozen=True)
class QuadraticProblem:
    """Worker losses L_i(θ) = ½(θ − θ_i*)ᵀA(θ − θ_i*) with one Hessian A (d × d, SPD).

    Then ∇L_i − ∇L_H = A(θ̄* − θ_i*) does not depend on θ, so (G, B) = (G₀, 0) with
    G₀² = (1/h) Σ_i ‖A(θ_i* − θ̄*)‖² holds exactly (and G² < G₀² with B = 0 fails) [D].
    """

    hessian: np.ndarray
    optima: np.ndarray

    @property
    def g2(self) -> float:
        """G₀², the exact heterogeneity constant at B = 0."""
        spread = (self.optima - self.optima.mean(axis=0)) @ self.hessian.T
        return float((spread**2).sum(axis=1).mean())


@st.composite
def quadratic_problems(
    draw: st.DrawFn, *, max_workers: int = 8, max_d: int = 4
) -> QuadraticProblem:
    """Heterogeneous quadratic problems with known (G, B) = (G₀, 0)."""
    h = draw(st.integers(2, max_workers))
    d = draw(st.integers(1, max_d))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    spectrum = draw(st.lists(st.floats(0.1, 10.0), min_size=d, max_size=d))
    hessian = basis @ np.diag(spectrum) @ basis.T
    optima = rng.normal(size=(h, d)) * draw(st.floats(0.0, 5.0))
    return QuadraticProblem(hessian=(hessian + hessian.T) / 2, optima=optima)

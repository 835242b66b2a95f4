"""Robust D-GD bounds of Allouah et al. (NeurIPS 2023, arXiv:2309.13591) evaluated at the exact
(G, B) frontier of a least-squares problem, shared by the ridge figures (gb-ridge,
gb-trajectories).

Every admissible pair (B², G²(B²)) of the frontier (:func:`trilemma.dgd.exact_gb`) gives a valid
bound, so a figure reports the smallest one over a grid of B² from the threshold
λ_max(M) (:func:`trilemma.dgd.exact_gb_threshold`) up to 10³ × it [D, THEORY §3].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from trilemma import dgd

Bound = Callable[..., np.ndarray]


def exact_frontier(
    problem: dgd.LeastSquares, *, points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """(B², G²) on a grid of ``points`` + 1 values of B² ≥ the threshold (the threshold itself,
    then geometrically spaced up to 10³ × it); only the pairs with a finite G² are kept."""
    threshold = dgd.exact_gb_threshold(problem)
    above = np.geomspace(1.0 + 1e-6, 1e3, points)
    grid = np.concatenate([[threshold], threshold * above if threshold > 0 else 1e-9 * above])
    g2 = dgd.exact_gb(problem, B2=grid)
    finite = np.isfinite(g2)
    return grid[finite], g2[finite]


def best_bound(
    frontier: tuple[np.ndarray, np.ndarray], bound: Bound, **arguments: Any
) -> tuple[float, float, float]:
    """(value, B², G²): the smallest ``bound(B2=…, G2=…, **arguments)`` over the pairs of
    ``frontier``; value is inf (B², G² those of the first pair) when it is inf at every pair."""
    b2, g2 = frontier
    values = np.asarray(bound(B2=b2, G2=g2, **arguments), dtype=np.float64)
    best = int(np.argmin(values))
    return float(values[best]), float(b2[best]), float(g2[best])

"""The continuous stage of a search: scipy.optimize moves the best inputs hypothesis found.

Hypothesis draws the discrete structure of an input (which rows are honest, clusters, copies,
collinear layouts) on an exact grid; the worst cases sit at continuous positions no grid draw
hits. Krum's, for instance, is where several scores tie (an honest outlier chosen just before a
Byzantine row would be), a corner that Nelder–Mead or Powell started from a hypothesis
candidate does not reach (at n = 7, f = 2, seed 0: 0.29 and 0.27 of κ against the 0.78 of a
global optimiser): the ratio is discontinuous across every tie.

:func:`refine` therefore starts :func:`scipy.optimize.differential_evolution` from a population
holding the candidates that share the best one's structure (:attr:`Refinement.key`), filled up
with uniform draws of the box, polishes its best point with Nelder–Mead
(:func:`scipy.optimize.minimize`), maps the end point back to an exactly evaluable input
(``exact``, e.g. snapped to the grid) and evaluates the objective once more there, for it and
the best few members of the final population: only these exact values are ever reported.
Without ``bounds`` (no box to draw from) the stage is Nelder–Mead from the best candidate alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import differential_evolution, minimize

__all__ = ["Refinement", "refine"]

Objective = Callable[[Any], tuple[float, Mapping[str, Any]]]

#: differential evolution's population per continuous parameter (scipy's default is 15; fewer
#: members and more generations reached the tie-shaped worst cases more often).
POPULATION_PER_PARAMETER = 5

#: members of the final population re-evaluated exactly besides the polished point: a worst
#: case sits on a tie (of Krum's scores, of MDA's diameters), which rounding to the grid may
#: break on one side; nearby members often survive it.
FINALISTS = 8


def _same(case: Any) -> Any:
    return case


@dataclass(frozen=True)
class Refinement:
    """How a case moves continuously.

    Attributes
    ----------
    vector : callable
        ``vector(case)`` → 1-D float array of the continuous parameters.
    build : callable
        ``build(case, vector)`` → a case with the discrete structure of ``case`` and these
        parameters (a ``ValueError`` there counts as ratio −∞).
    exact : callable
        ``exact(case)`` → the case that is re-evaluated and reported (default: itself).
    bounds : callable, optional
        ``bounds(case)`` → (low, high) arrays of the box searched by differential evolution.
    key : callable, optional
        ``key(case)`` → the structure; candidates of equal key share the parameter space.
    batch : callable, optional
        ``batch(case, vectors)`` → ratios of the (S, p) ``vectors`` at once (what the objective
        would return, without descriptions): the population is then evaluated in one call.
    share : float
        Part of the budget when several refinements share one search (> 0).
    cost : float or callable
        Price of one evaluation in units of the budget (≥ 1), or ``cost(case)``: an objective
        that runs an optimiser, or enumerates many subsets, gets ``evaluations / cost`` of them.
    """

    vector: Callable[[Any], np.ndarray]
    build: Callable[[Any, np.ndarray], Any]
    exact: Callable[[Any], Any] = _same
    bounds: Callable[[Any], tuple[np.ndarray, np.ndarray]] | None = None
    key: Callable[[Any], Hashable] | None = None
    batch: Callable[[Any, np.ndarray], np.ndarray] | None = None
    share: float = 1.0
    cost: float | Callable[[Any], float] = 1.0


def _loss(ratio: float) -> float:
    """What scipy minimises: −ratio, with +∞ (a counterexample already) kept finite."""
    if math.isnan(ratio):
        return -1e300
    if math.isinf(ratio):
        return -1e300 if ratio > 0 else 1e300
    return -ratio


class _Losses:
    """What scipy minimises for one refinement (:func:`_loss` of the objective's ratio at the
    case ``build(first, vector)``), counting the objective evaluations."""

    def __init__(self, objective: Objective, first: Any, refinement: Refinement) -> None:
        self.objective, self.first, self.refinement = objective, first, refinement
        self.calls = 0

    def many(self, vectors: np.ndarray) -> np.ndarray:
        """Losses of the (p, S) ``vectors`` (scipy's vectorized layout) in one batch call."""
        assert self.refinement.batch is not None  # many() is used only when a batch is given
        self.calls += vectors.shape[1]
        ratios = self.refinement.batch(self.first, np.ascontiguousarray(vectors.T))
        return np.array([_loss(float(r)) for r in ratios])

    def one(self, vector: np.ndarray) -> float:
        """Loss of one vector (+∞ in effect where ``build`` raises ``ValueError``)."""
        if self.refinement.batch is not None:
            return float(self.many(vector[:, None])[0])
        self.calls += 1
        try:
            return _loss(self.objective(self.refinement.build(self.first, vector))[0])
        except ValueError:
            return 1e300


def _evolve(
    losses: _Losses,
    candidates: Sequence[Any],
    point: np.ndarray,
    *,
    evaluations: int,
    seed: int,
) -> tuple[np.ndarray, list[np.ndarray], int]:
    """Differential evolution in the box ``bounds(first)`` from the candidates sharing the
    first one's key, filled up with uniform draws; returns its best point, the best
    :data:`FINALISTS` members of its final population and the budget left for polishing."""
    refinement, first = losses.refinement, losses.first
    assert refinement.bounds is not None  # _evolve is used only when bounds are given
    key = refinement.key or (lambda case: None)
    group = [refinement.vector(c) for c in candidates if key(c) == key(first)]
    low, high = (np.asarray(b, dtype=np.float64) for b in refinement.bounds(first))
    # at least 10 generations: a small budget shrinks the population, not the generations
    size = max(len(group), min(POPULATION_PER_PARAMETER * point.size, evaluations // 10), 5)
    rng = np.random.default_rng(seed)
    fill = rng.uniform(low, high, size=(size - len(group), point.size))
    population = np.clip(np.vstack([*group, fill]), low, high)
    polish = max(2, evaluations // 10)
    result = differential_evolution(
        losses.one if refinement.batch is None else losses.many,
        bounds=list(zip(low, high, strict=True)),
        init=population,
        maxiter=max(1, (evaluations - polish) // size - 1),
        tol=0.0,
        seed=seed,
        polish=False,
        vectorized=refinement.batch is not None,
        updating="immediate" if refinement.batch is None else "deferred",
    )
    # the final population is part of the result from scipy 1.12 on (1.11 is allowed)
    energies = getattr(result, "population_energies", np.zeros(0))
    order = np.argsort(energies, kind="stable")[:FINALISTS]
    return result.x, [result.population[i] for i in order], polish


def _polish(losses: _Losses, point: np.ndarray, *, evaluations: int) -> np.ndarray:
    """Nelder–Mead from ``point`` (initial simplex 5 % of its spread) with ``evaluations``."""
    spread = float(np.ptp(point)) if point.size else 0.0
    edge = 0.05 * spread if spread > 0 else 1.0
    result = minimize(
        losses.one,
        point,
        method="Nelder-Mead",
        options={
            "maxfev": evaluations,
            "initial_simplex": np.vstack([point, point + edge * np.eye(point.size)]),
            "xatol": 1e-10,
            "fatol": 1e-12,
            "adaptive": point.size > 4,
        },
    )
    return np.asarray(result.x)


def _best_exact(
    losses: _Losses, ends: Sequence[np.ndarray]
) -> tuple[float, Mapping[str, Any] | None]:
    """The largest objective ratio (nan wins) and its description over the exact forms of the
    ``ends`` (−∞ and None when none can be built)."""
    refinement = losses.refinement
    best: tuple[float, Mapping[str, Any] | None] = (-math.inf, None)
    for end in ends:
        try:
            exact = refinement.exact(refinement.build(losses.first, end))
        except ValueError:
            continue
        ratio, description = losses.objective(exact)
        losses.calls += 1
        if ratio > best[0] or math.isnan(ratio):
            best = (ratio, description)
    return best


def refine(
    objective: Objective,
    candidates: Sequence[Any],
    refinement: Refinement,
    *,
    evaluations: int,
    seed: int = 0,
) -> tuple[float, Mapping[str, Any] | None, int]:
    """Maximise ``objective``'s ratio from the best ``candidates`` (best first) with about
    ``evaluations`` evaluations, then re-evaluate the exact form of the end point.

    Returns
    -------
    tuple
        (exact ratio at the end point, its description, objective evaluations spent); −∞ and
        None without candidates.
    """
    if not candidates:
        return -math.inf, None, 0
    first = candidates[0]
    losses = _Losses(objective, first, refinement)
    cost = refinement.cost(first) if callable(refinement.cost) else refinement.cost
    evaluations = max(2, int(evaluations / max(1.0, cost)))
    point = np.asarray(refinement.vector(first), dtype=np.float64)
    polish = evaluations
    finalists: list[np.ndarray] = []
    if refinement.bounds is not None:
        point, finalists, polish = _evolve(
            losses, candidates, point, evaluations=evaluations, seed=seed
        )
    polished = _polish(losses, point, evaluations=polish)
    ratio, description = _best_exact(losses, [polished, point, *finalists])
    return ratio, description, losses.calls

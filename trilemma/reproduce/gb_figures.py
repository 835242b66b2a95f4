"""(G, B) figures (Allouah et al., NeurIPS 2023, arXiv:2309.13591): robust D-GD on ridge
regression, where (G, B) is exact, against the upper bound computed from the robustness ratio
each run actually paid and against the lower bound."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma import dgd
from trilemma.bounds import gb_breakdown_point, gb_lower_bound, gb_upper_bound_pl, kappa_lower_bound
from trilemma.reproduce._figure import Figure, FigureData, Settings, register

__all__ = ["best_gb_bound"]

_ATTACKS = ("sign_flipping", "foe", "alie", "mimic")
_RULE = "nnm>>cwtm"


def best_gb_bound(
    problem: dgd.LeastSquares, *, kappa: float, steps: int, initial_gap: float
) -> tuple[float, float, float]:
    """(bound, B², G²): the smallest :func:`~trilemma.bounds.gb_upper_bound_pl` over admissible
    exact (G, B) pairs (B² from the threshold up, κB² < 1); inf when none is admissible."""
    _, _, mu, lipschitz = problem.optimum()
    threshold = dgd.exact_gb_threshold(problem)
    grid = (
        threshold * np.geomspace(1.0 + 1e-6, 1e3, 200)
        if threshold > 0
        else np.geomspace(1e-9, 1e3, 200)
    )
    grid = np.concatenate([[threshold], grid])
    g2 = dgd.exact_gb(problem, B2=grid)
    values = gb_upper_bound_pl(
        kappa=kappa,
        G2=np.where(np.isfinite(g2), g2, 0.0),
        B2=grid,
        mu=mu,
        L=lipschitz,
        steps=steps,
        initial_gap=initial_gap,
    )
    values = np.where(np.isfinite(g2), values, np.inf)
    best = int(np.argmin(values))
    return float(values[best]), float(grid[best]), float(g2[best])


def _ridge(settings: Settings) -> FigureData:
    problem = dgd.diabetes_ridge()
    _, l_star, mu, lipschitz = problem.optimum()
    steps = settings.pick(tiny=100, quick=500, full=2000)
    fs = settings.pick(tiny=(1, 2), quick=(1, 2, 3, 4), full=(1, 2, 3, 4, 5, 6))
    theta0 = torch.zeros(problem.dimension, dtype=torch.float64)
    gap0 = float(problem.objective(theta0)) - l_star
    rows: list[dict[str, Any]] = []
    for f in fs:
        n = problem.workers + f
        k_min = float(kappa_lower_bound(n=n, f=f))
        floor, b2_star, g2_star = best_gb_bound(problem, kappa=k_min, steps=10**12, initial_gap=0.0)
        lower = float(gb_lower_bound(n=n, f=f, G2=g2_star, B2=b2_star, mu=mu))
        for attack in _ATTACKS:
            run = dgd.robust_dgd(
                problem,
                rule=_RULE,
                f=f,
                attack=attack,
                steps=steps,
                lr=1.0 / lipschitz,
                theta0=theta0,
            )
            kappa_hat = float(run.kappa_hat.max())
            bound, b2, g2 = best_gb_bound(problem, kappa=kappa_hat, steps=steps, initial_gap=gap0)
            rows.append(
                {
                    "f": f,
                    "n": n,
                    "fraction": f / n,
                    "attack": attack,
                    "gap": float(run.objective[-1]) - l_star,
                    "kappa_hat": kappa_hat,
                    "upper_bound": bound,
                    "B2": b2,
                    "G2": g2,
                    "lower_bound": lower,
                    "lower_B2": b2_star,
                    "floor_at_min_kappa": floor,
                }
            )
    finite = [r for r in rows if np.isfinite(r["upper_bound"])]
    threshold = dgd.exact_gb_threshold(problem)
    return FigureData(
        rows=rows,
        parameters={
            "honest": problem.workers,
            "ridge": problem.ridge,
            "rule": _RULE,
            "steps": steps,
            "mu": mu,
            "L": lipschitz,
            "B2_threshold": threshold,
            "breakdown_at_threshold": float(gb_breakdown_point(B2=threshold)),
            "finite_bounds": f"{len(finite)}/{len(rows)}",
        },
        checks={
            "measured gap ≤ upper bound (empirical κ̂, exact (G, B)) wherever finite": all(
                r["gap"] <= r["upper_bound"] + 1e-12 for r in finite
            )
        },
    )


def _plot_ridge(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows = data.rows
    axes = canvas.subplots()
    for index, attack in enumerate(_ATTACKS):
        mine = sorted((r for r in rows if r["attack"] == attack), key=lambda r: r["fraction"])
        xs = [r["fraction"] for r in mine]
        axes.plot(
            xs,
            [r["gap"] for r in mine],
            marker="o",
            ms=4,
            color=f"C{index}",
            label=f"{attack} (measured)",
        )
        axes.plot(xs, [r["upper_bound"] for r in mine], ls=":", color=f"C{index}")
    first = sorted((r for r in rows if r["attack"] == _ATTACKS[0]), key=lambda r: r["fraction"])
    axes.plot(
        [r["fraction"] for r in first],
        [r["lower_bound"] for r in first],
        ls="--",
        color="k",
        label="worst-case lower bound over the (G, B) class",
    )
    axes.set_yscale("log")
    axes.set_xlabel("fraction of Byzantine workers f/n")
    axes.set_ylabel("L_H(θ_T) − L*")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7)
    axes.set_title(
        "Ridge, 7 honest workers × 20 diabetes rows, NNM∘CWTM; dotted: upper bound "
        "from κ̂ and exact (G, B)",
        fontsize=8,
    )


register(
    Figure(
        name="gb-ridge",
        theorem="Allouah et al., NeurIPS 2023 (arXiv:2309.13591): robust D-GD upper bound and "
        "lower bound under (G, B)-gradient dissimilarity",
        description="ridge regression: measured L_H(θ_T) − L* per attack vs f/n, the upper bound "
        "from each run's empirical κ̂ and the exact (G, B) frontier, and the lower bound",
        compute=_ridge,
        plot=_plot_ridge,
    )
)

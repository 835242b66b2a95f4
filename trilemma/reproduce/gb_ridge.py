"""Ridge regression under (G, B)-gradient dissimilarity (Allouah et al., NeurIPS 2023,
arXiv:2309.13591): final values of robust D-GD against the upper bounds at three robustness
constants and against the class-wide lower bound, on a problem whose (G, B) frontier is exact.

Protocol, declared in advance: 7 honest workers × 20 standardised diabetes rows
(:func:`trilemma.dgd.diabetes_ridge`, λ = 1/√7), n = 7 + f, NNM∘CWTM against sign flipping,
FOE, ALIE and mimic (the paper's rule and attacks), θ₀ = 0, T steps at γ = 1/L (the step size of
the bounds). Measured: the final gap L_H(θ_T) − L* and the mean of ‖∇L_H(θ_t)‖² over t < T.

Bounds, each minimised over the exact (G, B) frontier (:mod:`trilemma.reproduce._gb_exact`):

- at the κ̂ the run paid (max over steps of ‖F − ∇L_H‖² / H(θ_t)): a bound on *this run*, since
  the proofs use (f, κ)-robustness only at the vectors the run aggregated [D, THEORY §3];
- a priori at κ = f/(n − 2f) (:func:`~trilemma.bounds.kappa_lower_bound`): the theorem's
  prediction with the smallest κ any rule can have (no rule attains it, so it is not a bound on
  these runs);
- at the rule's table κ (:func:`~trilemma.bounds.kappa` of ``"nnm>>cwtm"``): the guarantee for
  NNM∘CWTM whatever the attack;
- the lower bound c·fG²/(μ(n − (2 + B²)f)) (:func:`~trilemma.bounds.gb_lower_bound`, c = 1/8
  recalled), smallest over the frontier.

A bound is ``inf`` when κB² ≥ 1 at every admissible pair (beyond the breakdown for that κ); such
rows stay in the CSV with ``inf`` and are drawn as markers at the top of the axis.

What the lower bound quantifies over: for every algorithm there is *some* problem in the
(G, B) class (and some Byzantine behaviour) on which the error is at least the bound. One
instance under four fixed attacks may sit below it, and so may its κ̂ bound: κ̂ is what these
attacks made the rule pay, below f/(n − 2f) when they are weak. Near the breakdown point
f/n = 1/(2 + B²) the lower bound grows without limit while κ̂ stays small, so the class-wide
lower bound can lie above every per-run upper bound — no contradiction. It never lies above the
a-priori bound at κ = f/(n − 2f), which is 4 × the lower bound at the same pair [D].

Checks: each run's final gap is at most its PL bound at κ̂, and its mean ‖∇L_H‖² at most the
non-convex bound at κ̂, wherever finite. The PL bound is loose here by the conditioning: it
converts ‖∇L_H‖² into a gap with 1/(2μ), and L/μ ≈ 13 (measured: gap ≤ 0.18 × bound), so a
bound halved by a bug would still hold; the non-convex bound carries no such factor (measured up
to 0.76 × bound), and halving it breaks its check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma import dgd
from trilemma.bounds import (
    gb_lower_bound,
    gb_upper_bound_nonconvex,
    gb_upper_bound_pl,
    kappa,
    kappa_lower_bound,
)
from trilemma.reproduce._figure import Figure, FigureData, Settings, register
from trilemma.reproduce._gb_exact import best_bound, exact_frontier

__all__ = ["agreement"]

_ATTACKS = ("sign_flipping", "foe", "alie", "mimic")
_RULE = "nnm>>cwtm"
_GAP_CHECK = "final gap ≤ PL bound at the run's κ̂ (exact (G, B)) wherever finite"
_GRADIENT_CHECK = "mean ‖∇L_H(θ_t)‖² ≤ non-convex bound at the run's κ̂ wherever finite"


def agreement(rows: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
    """The figure's checks on its rows: each measured value at most its bound at κ̂ wherever
    that bound is finite, and at least one finite bound (else the check says nothing)."""

    def holds(measured: str, bound: str) -> bool:
        finite = [r for r in rows if math.isfinite(r[bound])]
        return bool(finite) and all(r[measured] <= r[bound] * (1 + 1e-12) for r in finite)

    return {
        _GAP_CHECK: holds("final_gap", "bound_kappa_hat"),
        _GRADIENT_CHECK: holds("mean_gradient_norm2", "gradient_bound_kappa_hat"),
    }


def _shared_columns(
    frontier: tuple[np.ndarray, np.ndarray],
    *,
    n: int,
    f: int,
    mu: float,
    pl: dict[str, float],
    nonconvex: dict[str, float],
) -> dict[str, Any]:
    """The columns shared by the runs of one f: the a-priori and table-κ bounds and the
    lower bound, each the smallest over the exact (G, B) frontier."""
    a_priori = float(kappa_lower_bound(n=n, f=f))
    table = float(kappa(_RULE, n=n, f=f))
    lower, lower_b2, lower_g2 = best_bound(frontier, gb_lower_bound, n=n, f=f, mu=mu)
    return {
        "f": f,
        "n": n,
        "fraction": f / n,
        "kappa_a_priori": a_priori,
        "bound_a_priori": best_bound(frontier, gb_upper_bound_pl, kappa=a_priori, **pl)[0],
        "gradient_bound_a_priori": best_bound(
            frontier, gb_upper_bound_nonconvex, kappa=a_priori, **nonconvex
        )[0],
        "kappa_table": table,
        "bound_table": best_bound(frontier, gb_upper_bound_pl, kappa=table, **pl)[0],
        "lower_bound": lower,
        "lower_B2": lower_b2,
        "lower_G2": lower_g2,
    }


def _run_columns(
    run: dgd.Trajectory,
    frontier: tuple[np.ndarray, np.ndarray],
    *,
    l_star: float,
    pl: dict[str, float],
    nonconvex: dict[str, float],
) -> dict[str, Any]:
    """One run's final gap and mean ‖∇L_H‖², each with its bound at the κ̂ the run paid."""
    kappa_hat = float(run.kappa_hat.max())
    gap = float(run.objective[-1]) - l_star
    gradient = float(run.gradient_norm2[:-1].mean())
    bound, b2, g2 = best_bound(frontier, gb_upper_bound_pl, kappa=kappa_hat, **pl)
    gradient_bound = best_bound(frontier, gb_upper_bound_nonconvex, kappa=kappa_hat, **nonconvex)[0]
    return {
        "final_gap": gap,
        "kappa_hat": kappa_hat,
        "bound_kappa_hat": bound,
        "gap_over_bound": gap / bound,
        "B2": b2,
        "G2": g2,
        "mean_gradient_norm2": gradient,
        "gradient_bound_kappa_hat": gradient_bound,
        "gradient_over_bound": gradient / gradient_bound,
    }


def _ridge(settings: Settings) -> FigureData:
    problem = dgd.diabetes_ridge()
    _, l_star, mu, lipschitz = problem.optimum()
    steps = settings.pick(tiny=100, quick=500, full=2000)
    fs = settings.pick(tiny=(1, 2), quick=(1, 2, 3, 4), full=(1, 2, 3, 4, 5, 6))
    theta0 = torch.zeros(problem.dimension, dtype=torch.float64)
    gap0 = float(problem.objective(theta0)) - l_star
    frontier = exact_frontier(problem)
    pl = {"mu": mu, "L": lipschitz, "steps": steps, "initial_gap": gap0}
    nonconvex = {"L": lipschitz, "steps": steps, "initial_gap": gap0}
    rows: list[dict[str, Any]] = []
    for f in fs:
        n = problem.workers + f
        shared = _shared_columns(frontier, n=n, f=f, mu=mu, pl=pl, nonconvex=nonconvex)
        for attack in _ATTACKS:
            run = dgd.robust_dgd(
                problem, rule=_RULE, f=f, attack=attack, steps=steps, lr=1.0 / lipschitz
            )
            columns = _run_columns(run, frontier, l_star=l_star, pl=pl, nonconvex=nonconvex)
            rows.append({**shared, "attack": attack, **columns})
    return FigureData(
        rows=rows,
        parameters={
            "honest": problem.workers,
            "per_worker": problem.features.shape[1],
            "ridge": problem.ridge,
            "rule": _RULE,
            "steps": steps,
            "mu": mu,
            "L": lipschitz,
            "initial_gap": gap0,
            "B2_threshold": float(frontier[0][0]),
            "finite_kappa_hat_bounds": sum(math.isfinite(r["bound_kappa_hat"]) for r in rows),
            "runs": len(rows),
        },
        checks=agreement(rows),
    )


def _series(
    axes: Axes, xs: list[float], ys: list[float], top: float, at_top: str = "^", **style: Any
) -> None:
    """Draw ys against xs; infinite values as the marker ``at_top`` (``"v"``: open) at ``top``,
    the upper axis limit, labelled only when no value is finite."""
    finite = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
    if finite:
        axes.plot(*zip(*finite, strict=True), **style)
    infinite = [x for x, y in zip(xs, ys, strict=True) if not math.isfinite(y)]
    if infinite:
        axes.plot(
            infinite,
            [top] * len(infinite),
            ls="none",
            marker=at_top,
            ms=7,
            mfc="none" if at_top == "v" else style.get("color", "k"),
            clip_on=False,
            color=style.get("color", "k"),
            alpha=0.8,
            label=None if finite else f"{style.get('label', '')} (= ∞)",
        )


def _panel(
    axes: Axes,
    rows: Sequence[Mapping[str, Any]],
    measured: str,
    kappa_hat: str,
    lines: Sequence[tuple[str, dict[str, Any]]],
) -> None:
    """One panel: the measured column per attack with its κ̂ bound (dotted), then the per-f
    ``lines`` (column, style); infinite values at the top of the axis."""
    keys = [measured, kappa_hat, *(column for column, _ in lines)]
    values = [r[k] for r in rows for k in keys if math.isfinite(r[k]) and r[k] > 0]
    top = 4.0 * max(values)
    axes.set_yscale("log")
    axes.set_ylim(min(values) / 3.0, top)
    for index, attack in enumerate(_ATTACKS):
        mine = sorted((r for r in rows if r["attack"] == attack), key=lambda r: r["fraction"])
        xs = [r["fraction"] for r in mine]
        color = f"C{index}"
        _series(axes, xs, [r[measured] for r in mine], top, marker="o", ms=4, color=color,
                label=f"{attack}: measured")  # fmt: skip
        _series(axes, xs, [r[kappa_hat] for r in mine], top, ls=":", color=color,
                label=f"{attack}: bound at κ̂")  # fmt: skip
    first = sorted((r for r in rows if r["attack"] == _ATTACKS[0]), key=lambda r: r["fraction"])
    for column, style in lines:
        _series(axes, [r["fraction"] for r in first], [r[column] for r in first], top, **style)
    axes.set_xlabel("fraction of Byzantine workers f/n")
    axes.grid(True, which="both", alpha=0.3)


def _plot_ridge(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows, p = data.rows, data.parameters
    gap_axes, gradient_axes = canvas.subplots(1, 2)
    _panel(gap_axes, rows, "final_gap", "bound_kappa_hat", [
        ("bound_a_priori", {"color": "k", "lw": 1.5, "label": "a priori, κ = f/(n − 2f)"}),
        ("bound_table", {"color": "0.5", "lw": 1.5, "label": "table κ of the rule"}),
        ("lower_bound", {"color": "k", "ls": "--", "at_top": "v",
                         "label": "lower bound (worst case of class)"}),
    ])  # fmt: skip
    gap_axes.axhline(p["initial_gap"], color="0.6", lw=0.8, ls="-.", label="initial gap (θ₀ = 0)")
    gap_axes.set_ylabel("final gap L_H(θ_T) − L*")
    gap_axes.set_title("final gap vs PL bounds", fontsize=9)
    _panel(gradient_axes, rows, "mean_gradient_norm2", "gradient_bound_kappa_hat", [
        ("gradient_bound_a_priori", {"color": "k", "lw": 1.5, "label": "a priori, κ = f/(n − 2f)"}),
    ])  # fmt: skip
    gradient_axes.set_ylabel("mean over t < T of ‖∇L_H(θ_t)‖²")
    gradient_axes.set_title("gradient norm vs non-convex bounds", fontsize=9)
    handles, labels = gap_axes.get_legend_handles_labels()
    canvas.legend(handles, labels, loc="outside right center", fontsize=7)
    canvas.suptitle(
        f"Ridge, {p['honest']} honest workers × {p['per_worker']} diabetes rows, {p['rule']}, "
        f"T = {p['steps']} steps of γ = 1/L; ▲ (▽ lower bound) at the top: bound = ∞ (κB² ≥ 1 "
        "for every admissible (G, B))",
        fontsize=8,
    )


register(
    Figure(
        name="gb-ridge",
        theorem="Allouah et al., NeurIPS 2023 (arXiv:2309.13591): robust D-GD upper bounds (PL "
        "and non-convex) and the lower bound under (G, B)-gradient dissimilarity",
        description="ridge regression, NNM∘CWTM, 4 attacks: final gap and mean ‖∇L_H‖² vs f/n "
        "against the bounds at the κ̂ each run paid, a priori at κ = f/(n − 2f) and at the rule's "
        "table κ (exact (G, B); ∞ marked at the top), and the lower bound — a worst case over "
        "all problems of the (G, B) class, which one instance may sit below",
        compute=_ridge,
        plot=_plot_ridge,
        size=(11.0, 4.6),
        single_thread=True,
    )
)

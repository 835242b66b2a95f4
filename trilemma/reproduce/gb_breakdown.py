"""Breakdown under heterogeneity (Allouah et al., NeurIPS 2023, arXiv:2309.13591, Fig. 2):
robust D-GD on digits split with extreme heterogeneity (worker i holds digit i), final, tail and
best training loss and final accuracy against f/n under sign flipping, next to the breakdown
points 1/(2 + B²) predicted by the (G, B) estimates of two samplings.

Protocol, declared before any result is looked at: 10 honest workers × 150 examples of one digit
(:func:`trilemma.dgd.extreme_digits`; scikit-learn's digits stand in for MNIST, which is not
available offline), multinomial logistic regression with ridge 1e-4, θ₀ = 0, n = 10 + f,
f = 0..7 (Krum with n − f − 2 neighbours needs n ≥ 2f + 3), NNM∘{CWTM, CWMed, Krum, GM}, sign
flipping, T steps of D-GD at γ = 1/L (L from :meth:`trilemma.dgd.SoftmaxRegression.smoothness`:
the step size of the theory, at which f = 0 converges — a check). The official script
(``main/fig2.py``) runs 500 steps of γ = 0.05 with a step decay on MNIST and plots the **best**
training loss; that hides runs that diverge after a few steps, so the figure draws the final loss
L_H(θ_T), the mean over the last 10 % of the steps and the best loss together, and marks a run
whose final loss exceeds the initial loss ln 10 as diverged.

Collapse, declared in advance: a run fails when its tail-average loss is at least 90 % of the
initial loss (by the best loss, the official criterion, it fails when its best loss is). The
observed collapse of a rule is the smallest f/n at which it fails.

Predicted breakdown: one line per (G, B) estimate, 1/(2 + B²) of the pair the official criterion
picks at f = 1, for the authors' sampling (the segment from θ* to 10⁴·1 of their figure script)
and for the runs' sampling (:mod:`trilemma.reproduce._gb_digits` states both). Where each line
falls relative to the observed collapse is reported (CSV columns, both ways); no check asserts
an agreement that a wrong breakdown formula would also pass. The checks assert what the figure
computes: f = 0 converges, the final loss column is L_H at the final parameters, and each
estimated pair holds at every θ of its own sampling.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma import dgd
from trilemma.reproduce import _gb_digits
from trilemma.reproduce._figure import Figure, FigureData, Settings, register

__all__: list[str] = []

_RULES = ("nnm>>cwtm", "nnm>>cwmed", "nnm>>krum", "nnm>>gm")
_LABELS = {"nnm>>cwtm": "NNM∘CWTM", "nnm>>cwmed": "NNM∘CWMed", "nnm>>krum": "NNM∘Krum"}
_LABELS["nnm>>gm"] = "NNM∘GM"
_HONEST = dgd.EXTREME_DIGITS["honest"]
_FAIL = 0.9
"""A run fails when its (tail or best) loss is at least this fraction of the initial loss."""
_CONVERGED = 0.25
"""f = 0 trains when its tail loss is at most this fraction of the initial loss."""
_TAIL = 0.1


def _summary(run: dgd.Trajectory) -> dict[str, Any]:
    """Final, tail-average and best loss of one run (non-finite losses count as +inf)."""
    losses = torch.nan_to_num(run.objective.double(), nan=math.inf)
    tail = losses[-max(1, math.ceil(_TAIL * (len(losses) - 1))) :]
    return {
        "final_loss": float(losses[-1]),
        "tail_loss": float(tail.mean()),
        "best_loss": float(losses.min()),
        "best_step": int(losses.argmin()),
    }


def _first(rows: list[dict[str, Any]], rule: str, column: str, initial: float) -> float:
    """The smallest f/n at which ``rule`` fails by ``column`` (nan when it never does)."""
    failing = [r["fraction"] for r in rows if r["rule"] == rule and r[column] >= _FAIL * initial]
    return min(failing, default=math.nan)


def _run_row(
    problem: dgd.SoftmaxRegression,
    run: dgd.Trajectory,
    *,
    rule: str,
    f: int,
    steps: int,
    lr: float,
    initial: float,
    digits: tuple[torch.Tensor, torch.Tensor],
) -> dict[str, Any]:
    """The columns of one run: its losses (:func:`_summary`), its final accuracy on all the
    digits, and whether it diverged or failed by its tail or its best loss."""
    finite = bool(torch.isfinite(run.theta).all())
    summary = _summary(run)
    return {
        "rule": rule,
        "f": f,
        "n": _HONEST + f,
        "fraction": f / (_HONEST + f),
        "steps": steps,
        "lr": lr,
        "initial_loss": initial,
        **summary,
        "final_accuracy": (float(problem.accuracy(run.theta, *digits)) if finite else 0.0),
        "diverged": summary["final_loss"] > initial,
        "failed_tail": summary["tail_loss"] >= _FAIL * initial,
        "failed_best": summary["best_loss"] >= _FAIL * initial,
    }


def _rule_runs(
    problem: dgd.SoftmaxRegression, *, fs: tuple[int, ...], steps: int, lr: float, initial: float
) -> tuple[list[dict[str, Any]], list[torch.Tensor], list[float]]:
    """One run per rule and f (sign flipping when f > 0): the rows, the kept iterates and
    L_H recomputed at each run's final parameters (+inf when they are not finite)."""
    data = dgd.load_classification("digits")
    digits = (torch.tensor(data.features), torch.tensor(data.labels))
    rows: list[dict[str, Any]] = []
    iterates: list[torch.Tensor] = []
    recomputed: list[float] = []
    for rule in _RULES:
        for f in fs:
            run = dgd.robust_dgd(
                problem,
                rule=rule,
                f=f,
                attack="sign_flipping" if f else None,
                steps=steps,
                lr=lr,
                keep_iterates=True,
            )
            assert run.iterates is not None  # keep_iterates=True
            iterates.append(run.iterates)
            finite = bool(torch.isfinite(run.theta).all())
            recomputed.append(float(problem.objective(run.theta)) if finite else math.inf)
            rows.append(
                _run_row(
                    problem, run, rule=rule, f=f, steps=steps, lr=lr, initial=initial, digits=digits
                )
            )
    return rows, iterates, recomputed


def _run_samples(
    problem: dgd.SoftmaxRegression, theta_star: torch.Tensor, iterates: list[torch.Tensor]
) -> torch.Tensor:
    """The runs' sampling: the start, the segment 0 → θ* and every kept iterate."""
    return torch.cat(
        [
            torch.zeros(1, problem.dimension, dtype=torch.float64),
            torch.linspace(0, 1, 11, dtype=torch.float64)[:, None] * theta_star,
            *(i.reshape(-1, problem.dimension) for i in iterates),
        ]
    )


def _collapse(rows: list[dict[str, Any]], initial: float) -> dict[str, dict[str, float]]:
    """The smallest failing f/n of each rule, by tail and by best loss."""
    return {
        rule: {
            "tail": _first(rows, rule, "tail_loss", initial),
            "best": _first(rows, rule, "best_loss", initial),
        }
        for rule in _RULES
    }


def _add_predictions(
    rows: list[dict[str, Any]],
    frontiers: dict[str, _gb_digits.Frontier],
    estimates: dict[str, tuple[float, float, float]],
    collapse: dict[str, dict[str, float]],
) -> None:
    """Append to each row the pair and floor of each sampling at its f, the predicted
    breakdown 1/(2 + B²) and its pair, the observed collapse and their difference."""
    for row in rows:
        for name, frontier in frontiers.items():
            b2, g2, floor = frontier.pair(n=row["n"], f=row["f"]) if row["f"] else (math.nan,) * 3
            row[f"{name}_B2_at_f"], row[f"{name}_G2_at_f"], row[f"{name}_floor_at_f"] = (
                b2,
                g2,
                floor,
            )
            point, b2_star, g2_star = estimates[name]
            row[f"breakdown_{name}"] = point
            row[f"breakdown_{name}_B2"], row[f"breakdown_{name}_G2"] = b2_star, g2_star
        row["collapse_tail"] = collapse[row["rule"]]["tail"]
        row["collapse_best"] = collapse[row["rule"]]["best"]
        for name in frontiers:
            row[f"breakdown_{name}_minus_collapse_tail"] = (
                row[f"breakdown_{name}"] - row["collapse_tail"]
            )


def _checks(
    rows: list[dict[str, Any]], recomputed: list[float], holds: dict[str, float], initial: float
) -> dict[str, bool]:
    """The figure's checks: f = 0 trains, the final loss is recomputed, the pairs hold."""
    clean = [r for r in rows if r["f"] == 0]
    return {
        f"f = 0 trains at γ = 1/L: tail loss ≤ {_CONVERGED:.0%} of the initial loss, "
        "every rule": all(r["tail_loss"] <= _CONVERGED * initial for r in clean),
        "the final-loss column is L_H recomputed at the final parameters": all(
            math.isclose(r["final_loss"], value, rel_tol=1e-9)
            or (math.isinf(value) and not math.isfinite(r["final_loss"]))
            for r, value in zip(rows, recomputed, strict=True)
        ),
        "each estimated (G, B) pair holds at every θ of its sampling": all(
            ratio <= 1 + 1e-9 for ratio in holds.values()
        ),
    }


def _breakdown(settings: Settings) -> FigureData:
    problem = dgd.extreme_digits(settings.seed)
    steps = settings.pick(tiny=20, quick=150, full=600)
    fs = settings.pick(tiny=(0, 1, 3), quick=tuple(range(8)), full=tuple(range(8)))
    lipschitz = problem.smoothness()
    lr = 1.0 / lipschitz
    reference = _gb_digits.honest_reference(problem, steps=4 * steps, lr=lr)
    initial = float(reference.objective[0])
    assert reference.iterates is not None  # honest_reference keeps the iterates
    rows, iterates, recomputed = _rule_runs(problem, fs=fs, steps=steps, lr=lr, initial=initial)
    grid = _gb_digits.b2_grid(fs, _HONEST)
    samplings = {
        "authors": _gb_digits.authors_segment(reference.theta),
        "runs": _run_samples(problem, reference.theta, [reference.iterates, *iterates]),
    }
    frontiers = {
        name: _gb_digits.Frontier.sample(problem, s, grid) for name, s in samplings.items()
    }
    estimates = {name: fr.breakdown(honest=_HONEST) for name, fr in frontiers.items()}
    holds = {
        name: _gb_digits.worst_ratio(problem, samplings[name], B2=b2, G2=g2)
        for name, (_, b2, g2) in estimates.items()
    }
    collapse = _collapse(rows, initial)
    _add_predictions(rows, frontiers, estimates, collapse)
    return FigureData(
        rows=rows,
        parameters={
            **dgd.EXTREME_DIGITS,
            "attack": "sign_flipping",
            "steps": steps,
            "lr": lr,
            "L": lipschitz,
            "reference_steps": 4 * steps,
            "initial_loss": initial,
            "fail_fraction": _FAIL,
            "tail_fraction": _TAIL,
            "samples": {name: fr.samples for name, fr in frontiers.items()},
            "frontier_B2": grid.tolist(),
            "frontier_G2": {name: fr.G2.tolist() for name, fr in frontiers.items()},
            "breakdown": {
                name: {"point": p, "B2": b2, "G2": g2} for name, (p, b2, g2) in estimates.items()
            },
            "authors_pair_worst_ratio_on_runs": _gb_digits.worst_ratio(
                problem, samplings["runs"], B2=estimates["authors"][1], G2=estimates["authors"][2]
            ),
            "collapse": collapse,
        },
        checks=_checks(rows, recomputed, holds, initial),
    )


_MARKERS = ("o", "s", "^", "D")


def _plot_estimates(data: FigureData, panels: tuple[Axes, Axes]) -> None:
    """The predicted breakdown 1/(2 + B²) of each sampling, as a vertical line on both panels."""
    lines = {"authors": ("0.35", "--"), "runs": ("tab:red", "-.")}
    for name, (color, style) in lines.items():
        estimate = data.parameters["breakdown"][name]
        for axes in panels:
            axes.axvline(
                estimate["point"],
                color=color,
                ls=style,
                lw=1.5,
                label=f"1/(2 + B²), {name}' sampling: B² = {estimate['B2']:.3g}",
            )


def _plot_rule(data: FigureData, panels: tuple[Axes, Axes], index: int, rule: str) -> None:
    """One rule's final (solid, diverged runs circled) and best (dotted) loss, and its final
    accuracy."""
    loss_axes, accuracy_axes = panels
    mine = sorted((r for r in data.rows if r["rule"] == rule), key=lambda r: r["fraction"])
    offset = (index - 1.5) * 0.003  # keeps coinciding curves visible
    xs = np.array([r["fraction"] for r in mine]) + offset
    color, marker, label = f"C{index}", _MARKERS[index], _LABELS[rule]
    final = np.array([r["final_loss"] for r in mine])
    shown = np.where(np.isfinite(final), final, np.nan)
    loss_axes.plot(xs, shown, color=color, marker=marker, ms=4, label=label)
    loss_axes.plot(xs, [r["best_loss"] for r in mine], color=color, ls=":", marker=marker, ms=2)
    diverged = np.array([r["diverged"] for r in mine])
    loss_axes.scatter(
        xs[diverged],
        shown[diverged],
        s=60,
        facecolors="none",
        edgecolors="k",
        linewidths=0.8,
        zorder=3,
    )
    accuracy_axes.plot(
        xs,
        [r["final_accuracy"] for r in mine],
        color=color,
        marker=marker,
        ms=4,
        ls=("-", "--", "-.", ":")[index],
        label=label,
    )


def _plot_breakdown(data: FigureData, canvas: MatplotlibFigure) -> None:
    parameters = data.parameters
    loss_axes, accuracy_axes = panels = tuple(canvas.subplots(1, 2))
    initial = parameters["initial_loss"]
    _plot_estimates(data, panels)
    for index, rule in enumerate(_RULES):
        _plot_rule(data, panels, index, rule)
    loss_axes.scatter(
        [], [], s=60, facecolors="none", edgecolors="k", label="diverged: final > ln 10"
    )
    loss_axes.plot([], [], color="0.3", ls=":", label="best loss (official criterion)")
    loss_axes.axhline(initial, color="k", lw=0.8, label=f"initial loss ln 10 = {initial:.2f}")
    loss_axes.axhline(parameters["fail_fraction"] * initial, color="k", lw=0.8, ls=":")
    loss_axes.set_yscale("log")
    loss_axes.set_ylabel(
        f"training loss: final L_H(θ_T) (solid), best (dotted); T = {parameters['steps']}"
    )
    accuracy_axes.set_ylabel("final accuracy on all 1 797 digits")
    for axes in panels:
        axes.set_xlabel("fraction of Byzantine workers f/n")
        axes.set_xlim(-0.02, 0.52)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=6)
    canvas.suptitle(
        f"Digits, worker i holds digit i ({parameters['honest']} honest), sign flipping, "
        f"D-GD γ = 1/L = {parameters['lr']:.3f}",
        fontsize=10,
    )


register(
    Figure(
        name="gb-breakdown",
        theorem="Allouah et al., NeurIPS 2023 (arXiv:2309.13591): breakdown point 1/(2 + B²) "
        "under (G, B)-gradient dissimilarity",
        description="final and best training loss and final accuracy vs f/n for "
        "NNM∘{CWTM, CWMed, Krum, GM} under sign flipping on extremely heterogeneous digits "
        "(γ = 1/L, diverged runs marked), with the predicted breakdown 1/(2 + B²) of the (G, B) "
        "estimate of the authors' sampling and of the runs' sampling",
        compute=_breakdown,
        plot=_plot_breakdown,
        size=(11.0, 4.8),
        single_thread=True,
    )
)

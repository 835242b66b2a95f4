"""The paper's Fig. 1 (Allouah et al., NeurIPS 2023, arXiv:2309.13591): L_H(θ_t) − L* of robust
D-GD on a ridge problem without and with Byzantine workers, against the (G, B) error floors.

Protocol of the official script ``main/fig1.py`` [V, read]: LIBSVM ``mg`` (scaled), rows
permuted with numpy seed 1, 80 % for training, the first 7 training rows, features = (1, first
feature) (d = 2), one row per honest worker, L_H(θ) = (1/2·7)‖Xθ − y‖² + (λ/2)‖θ‖², λ = 1/√7,
θ₀ = 0, NNM∘CWTM, f ∈ {0, 3}, attacks sign flipping (−x̄_H), FOE (x̄_H − 3x̄_H = −2x̄_H), ALIE
(x̄_H + 3σ_H, unbiased σ) and mimic (copy of honest worker 0), γ = 0.001 for T = 40 000 steps;
its notebook ``plot_fig1.ipynb`` plots the training loss L_H(θ_t) and reads files of f = 1
(n = 8) while labelling them f = 3 — so both f = 1 and f = 3 are drawn here.

What differs, and why:

- data: ``mg`` is not available offline; :func:`trilemma.dgd.mackey_glass_ridge` builds the same
  7-row, d = 2 problem from a Mackey–Glass series (τ = 17, the source of ``mg``) integrated
  here, with a lag embedding chosen here (:data:`trilemma.dgd.MACKEY_GLASS`);
- step size: γ = 0.2/L for T = 2000 steps (the authors' γ = 0.001 is 0.0014/L, for 40 000
  steps). A deterministic attack makes robust D-GD a fixed-point iteration θ ← θ − γF(θ),
  whose fixed points (F(θ) = 0) do not depend on γ, so the plateau is the one the authors' γ
  reaches; the check that every curve has flattened shows it is reached. Not γ = 1/L: there
  the NNM-based rules chatter around their plateau with a relative amplitude up to 60 % (NNM's
  choice of neighbours is discontinuous in θ; measured: 16 % at γ = 1/L, 3 % at 0.2/L and
  0.02 % at the authors' γ for NNM∘CWTM under FOE, f = 3), shrinking in proportion to γ.
  The PL bound holds for any γ ≤ 1/L with L replaced by 1/γ [D: smoothness and γL ≤ 1 give
  L_H(θ − γF) ≤ L_H(θ) − (γ/2)‖∇L_H‖² + (γ/2)‖F − ∇L_H‖², then as in
  :func:`~trilemma.bounds.gb_upper_bound_pl`: contraction 1 − γμ(1 − κB²), same floor];
- quantity: the gap L_H(θ_t) − L* on a log axis (the authors plot L_H(θ_t)), so the f = 0 run is
  seen to reach L*;
- rules: NNM∘CWTM as in the paper, and CWTM alone and NNM∘CWMed.

Floors drawn (horizontal lines, bounds of :mod:`trilemma.bounds`, each the smallest over the
exact (G, B) frontier, :mod:`trilemma.reproduce._gb_exact`): the PL bound at the κ̂ each run
paid (a bound on that run), a priori at κ = f/(n − 2f), and the class-wide lower bound. The
rule's table κ (:func:`trilemma.bounds.kappa`) is recorded; beyond κB² ≥ 1 its bound is ∞.
A run whose κ̂ bound is ∞ is outside the theorem; it is drawn as it went (diverging if it does).

Checks: f = 0 reaches L* and no iterate goes below L* (L* is right, up to round-off
10⁻¹² × the initial gap); each f > 0 run with a finite κ̂ bound ends at or below it and has
reached its plateau (the mean gap over the last 10 % of the steps within 1 % of the mean over
the 10 % before: chatter averages out, a drift or a divergence does not); the plotted last
value of every run is L_H(θ_T) − L* recomputed at θ_T (no divergence hidden by plotting a best
iterate).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MatplotlibFigure
from matplotlib.lines import Line2D

from trilemma import attacks, dgd
from trilemma.bounds import gb_lower_bound, gb_upper_bound_pl, kappa, kappa_lower_bound
from trilemma.reproduce._figure import Figure, FigureData, Settings, register
from trilemma.reproduce._gb_exact import best_bound, exact_frontier

__all__ = ["agreement"]

_ATTACKS: Mapping[str, attacks.Attack] = {
    "SF": attacks.SignFlipping(),
    "FOE (τ = 2)": attacks.FOE(tau=2.0),
    "ALIE (z = 3)": attacks.ALIE(z=3.0),
    "mimic": attacks.Mimic(target=0),
}
"""The official script's attacks (ByzLibrary's defaults: FOE factor 3, ALIE factor 3)."""


class _Run(NamedTuple):
    rule: str
    f: int
    lr: float
    steps: int


_AUTHORS = _Run(rule="nnm>>cwtm", f=3, lr=0.001, steps=40_000)
"""The official script's runs, repeated at full size to compare their end with the plateau."""
_STEP = 0.2
"""γL: the step size as a fraction of 1/L (module docstring)."""
_CONVERGED = "f = 0 reaches L* (gap ≤ 1e-10 × initial) and no iterate goes below L*"
_BOUNDED = "each f > 0 run with a finite κ̂ bound ends at or below its PL bound at κ̂"
_PLATEAU = "each f > 0 run with a finite κ̂ bound has flattened (last-10 % mean within 1 %)"
_SHOWN = "the plotted last value of each run is L_H(θ_T) − L* recomputed at θ_T"


def _gaps(objective: torch.Tensor, minimum: float) -> np.ndarray:
    """L_H(θ_t) − L* for t = 0..T."""
    return objective.double().numpy() - minimum


def agreement(rows: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
    """The figure's checks on its rows (one row per run and plotted step; the run columns are
    repeated on each of its rows)."""
    runs = {(r["rule"], r["f"], r["attack"]): r for r in rows}.values()
    clean = [r for r in runs if r["f"] == 0]
    bounded = [r for r in runs if r["f"] > 0 and math.isfinite(r["bound_kappa_hat"])]
    last: dict[tuple[str, int, str], tuple[int, float]] = {}
    for r in rows:
        key = (r["rule"], r["f"], r["attack"])
        if r["step"] >= last.get(key, (-1, 0.0))[0]:
            last[key] = (r["step"], r["gap"])
    return {
        _CONVERGED: bool(clean)
        and all(r["final_gap"] <= 1e-10 * r["initial_gap"] for r in clean)
        and all(r["min_gap"] >= -1e-12 * r["initial_gap"] for r in runs),
        _BOUNDED: bool(bounded)
        and all(r["final_gap"] <= r["bound_kappa_hat"] + 1e-12 * r["initial_gap"] for r in bounded),
        _PLATEAU: bool(bounded) and all(r["tail_drift"] <= 1e-2 for r in bounded),
        _SHOWN: all(
            math.isclose(last[k][1], r["gap_at_theta_T"], rel_tol=1e-9, abs_tol=1e-15)
            and last[k][0] == r["steps"]
            for k, r in zip(last, runs, strict=True)
        ),
    }


class _Task(NamedTuple):
    """What every run of the figure shares: the problem, its optimum and the step size."""

    problem: dgd.LeastSquares
    l_star: float
    mu: float
    lr: float
    steps: int
    authors_steps: int
    initial_gap: float
    frontier: tuple[np.ndarray, np.ndarray]

    @property
    def pl(self) -> dict[str, float]:
        """The keywords of :func:`gb_upper_bound_pl` other than κ (γ ≤ 1/L: L → 1/γ)."""
        return {
            "mu": self.mu,
            "L": 1.0 / self.lr,
            "steps": self.steps,
            "initial_gap": self.initial_gap,
        }


def _shared_columns(task: _Task, rule: str, f: int) -> dict[str, Any]:
    """The columns shared by the runs of one rule and f: the a-priori, table-κ and lower
    bounds, each the smallest over the exact (G, B) frontier."""
    n = task.problem.workers + f
    a_priori = float(kappa_lower_bound(n=n, f=f))
    table = float(kappa(rule, n=n, f=f))
    frontier, pl = task.frontier, task.pl
    return {
        "rule": rule,
        "f": f,
        "n": n,
        "fraction": f / n,
        "steps": task.steps,
        "initial_gap": task.initial_gap,
        "kappa_a_priori": a_priori,
        "bound_a_priori": best_bound(frontier, gb_upper_bound_pl, kappa=a_priori, **pl)[0],
        "kappa_table": table,
        "bound_table": best_bound(frontier, gb_upper_bound_pl, kappa=table, **pl)[0],
        "lower_bound": best_bound(frontier, gb_lower_bound, n=n, f=f, mu=task.mu)[0],
    }


def _gap_columns(task: _Task, run: dgd.Trajectory, gaps: np.ndarray) -> dict[str, float]:
    """The run's final, recomputed, smallest and tail gaps, the drift of its last tenth of
    steps against the tenth before, and the κ̂ it paid."""
    tenth = max(1, task.steps // 10)
    tail = gaps[-tenth:].mean()
    return {
        "final_gap": float(gaps[-1]),
        "gap_at_theta_T": float(task.problem.objective(run.theta)) - task.l_star,
        "min_gap": float(gaps.min()),
        "tail_mean": float(tail),
        "tail_drift": float(
            abs(tail - gaps[-2 * tenth : -tenth].mean()) / max(abs(tail), 1e-12 * task.initial_gap)
        ),
        "kappa_hat": float(run.kappa_hat.max()),
    }


def _authors_final_gap(task: _Task, rule: str, f: int, attack: attacks.Attack | None) -> float:
    """L_H(θ_T) − L* of the authors' run (γ, T of the official script) for their rule and f
    when the size repeats it, else nan."""
    if not task.authors_steps or (rule, f) != (_AUTHORS.rule, _AUTHORS.f):
        return math.nan
    other = dgd.robust_dgd(
        task.problem, rule=rule, f=f, attack=attack, steps=task.authors_steps, lr=_AUTHORS.lr
    )
    return float(other.objective[-1]) - task.l_star


def _rule_rows(task: _Task, rule: str, f: int, plotted: np.ndarray) -> list[dict[str, Any]]:
    """The rows of one rule and f: per attack (none when f = 0), the run's columns repeated on
    each plotted step."""
    shared = _shared_columns(task, rule, f)
    rows: list[dict[str, Any]] = []
    for name, attack in _ATTACKS.items() if f > 0 else [("none", None)]:
        run = dgd.robust_dgd(
            task.problem, rule=rule, f=f, attack=attack, steps=task.steps, lr=task.lr
        )
        gaps = _gaps(run.objective, task.l_star)
        summary = {**shared, "attack": name, **_gap_columns(task, run, gaps)}
        final = summary["final_gap"]
        bound = best_bound(task.frontier, gb_upper_bound_pl, kappa=summary["kappa_hat"], **task.pl)[
            0
        ]
        summary["bound_kappa_hat"] = bound
        summary["gap_over_bound"] = final / bound if math.isfinite(bound) else 0.0
        summary["final_gap_authors_step"] = _authors_final_gap(task, rule, f, attack)
        rows.extend({**summary, "step": int(t), "gap": float(gaps[t])} for t in plotted)
    return rows


def _trajectories(settings: Settings) -> FigureData:
    problem = dgd.mackey_glass_ridge()
    theta_star, l_star, mu, lipschitz = problem.optimum()
    steps = settings.pick(tiny=300, quick=800, full=2000)
    lr = _STEP / lipschitz
    rules = settings.pick(
        tiny=("nnm>>cwtm", "cwtm", "nnm>>cwmed"),
        quick=("nnm>>cwtm", "cwtm", "nnm>>cwmed"),
        full=("nnm>>cwtm", "cwtm", "nnm>>cwmed"),
    )
    fs = settings.pick(tiny=(3,), quick=(1, 3), full=(1, 3))
    gap0 = float(problem.objective(torch.zeros(problem.dimension, dtype=torch.float64))) - l_star
    task = _Task(
        problem=problem,
        l_star=l_star,
        mu=mu,
        lr=lr,
        steps=steps,
        authors_steps=settings.pick(tiny=0, quick=0, full=_AUTHORS.steps),
        initial_gap=gap0,
        frontier=exact_frontier(problem),
    )
    plotted = np.unique(np.concatenate([np.arange(min(50, steps)), np.linspace(0, steps, 151)]))
    plotted = plotted.astype(int)
    rows = [row for rule in rules for f in (0, *fs) for row in _rule_rows(task, rule, f, plotted)]
    return FigureData(
        rows=rows,
        parameters={
            "task": "mackey_glass_ridge (Mackey–Glass τ = 17 stands in for LIBSVM mg)",
            "honest": problem.workers,
            "ridge": problem.ridge,
            "theta_star": [float(v) for v in theta_star],
            "L_star": l_star,
            "mu": mu,
            "L": lipschitz,
            "lr": lr,
            "lr_times_L": _STEP,
            "steps": steps,
            "rules": list(rules),
            "fs": [0, *fs],
            "attacks": list(_ATTACKS),
            "initial_gap": gap0,
            "B2_threshold": float(task.frontier[0][0]),
            "authors_lr": _AUTHORS.lr,
            "authors_steps": task.authors_steps,
        },
        checks=agreement(rows),
    )


def _plot_attacks(axes: Axes, mine: list[dict[str, Any]], p: Mapping[str, Any]) -> list[str]:
    """Each attack's curve and its PL bound at κ̂ (dotted, its colour); returns the notes on
    infinite bounds and runs that have not flattened."""
    notes = []
    for index, attack in enumerate(p["attacks"]):
        run = [r for r in mine if r["attack"] == attack]
        color = f"C{index}"
        axes.plot([r["step"] for r in run], [r["gap"] for r in run], color=color,
                  lw=1.5, label=attack)  # fmt: skip
        first = run[0]
        if math.isfinite(first["bound_kappa_hat"]):
            axes.axhline(first["bound_kappa_hat"], color=color, ls=":", lw=1.2)
        else:
            notes.append(f"{attack}: κ̂ = {first['kappa_hat']:.2f}, bound ∞")
        if first["tail_drift"] > 1e-2:
            notes.append(f"{attack}: not flat (final gap {first['final_gap']:.3g})")
    return notes


_FLOORS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("bound_a_priori", {"color": "k", "ls": "-", "lw": 0.8}, "a priori κ = f/(n−2f)"),
    ("lower_bound", {"color": "k", "ls": "--", "lw": 0.8}, "lower bound (class)"),
)
"""The per-panel horizontal lines of :func:`_plot_floors`: column, style, label."""


def _plot_floors(axes: Axes, first: Mapping[str, Any]) -> list[str]:
    """The a-priori bound and the class-wide lower bound; returns the notes on infinite ones
    and on the table κ's bound."""
    notes = []
    for column, style, label in _FLOORS:
        if math.isfinite(first[column]):
            axes.axhline(first[column], label=label, **style)
        else:
            notes.append(f"{label}: ∞")
    notes.append(f"table κ = {first['kappa_table']:.3g}: bound {first['bound_table']:.3g}")
    return notes


def _plot_authors_ends(axes: Axes, mine: list[dict[str, Any]], p: Mapping[str, Any]) -> bool:
    """A star at the end of each repeated authors' run; whether any was drawn."""
    star = False
    for index, attack in enumerate(p["attacks"]):
        summary = next(r for r in mine if r["attack"] == attack)
        if math.isfinite(summary["final_gap_authors_step"]):
            axes.plot(
                1.3 * p["steps"],
                summary["final_gap_authors_step"],
                marker="*",
                ms=9,
                color=f"C{index}",
                mec="k",
                mew=0.5,
                ls="none",
            )
            star = True
    return star


def _plot_panel(
    axes: Axes, rows: list[dict[str, Any]], p: Mapping[str, Any], rule: str, f: int
) -> bool:
    """The panel of one rule and f > 0 (the f = 0 run in black); whether it drew a star."""
    clean = [r for r in rows if r["rule"] == rule and r["f"] == 0]
    axes.plot([r["step"] for r in clean], [r["gap"] for r in clean], color="k",
              lw=1.5, label="f = 0 (plain D-GD)")  # fmt: skip
    mine = [r for r in rows if r["rule"] == rule and r["f"] == f]
    notes = _plot_attacks(axes, mine, p) + _plot_floors(axes, mine[0])
    notes.append("curves leaving the axis reach L* (gap < 10⁻¹⁰)")
    axes.text(0.98, 0.03, "\n".join(notes), transform=axes.transAxes, ha="right",
              va="bottom", fontsize=6.5)  # fmt: skip
    star = _plot_authors_ends(axes, mine, p)
    axes.set_title(f"{rule}, f = {f} (n = {mine[0]['n']})", fontsize=9)
    return star


def _plot_trajectories(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows, p = data.rows, data.parameters
    fs = [f for f in p["fs"] if f > 0]
    star = False
    grid = canvas.subplots(len(fs), len(p["rules"]), sharex=True, sharey=True, squeeze=False)
    plateaus = [r["final_gap"] for r in rows if r["f"] > 0 and r["final_gap"] > 1e-12]
    finite = [r["gap"] for r in rows if math.isfinite(r["gap"])]
    bottom, top = min(plateaus) / 30.0, 3.0 * max(finite)
    for i, f in enumerate(fs):
        for j, rule in enumerate(p["rules"]):
            axes = grid[i][j]
            star = _plot_panel(axes, rows, p, rule, f) or star
            axes.set_yscale("log")
            axes.set_xscale("symlog", linthresh=10)
            axes.set_xlim(0, p["steps"] * 1.7)
            axes.set_ylim(bottom, top)
            axes.grid(True, which="major", alpha=0.3)
            if i == len(fs) - 1:
                axes.set_xlabel(f"step t (γ = {p['lr_times_L']:g}/L)")
            if j == 0:
                axes.set_ylabel("L_H(θ_t) − L*")
    handles, labels = grid[-1][0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="0.3", ls=":", lw=1.2))
    labels.append("PL bound at the run's κ̂ (its colour)")
    if star:
        handles.append(Line2D([], [], marker="*", ms=9, color="0.5", mec="k", ls="none"))
        labels.append(f"end of the authors' γ = {p['authors_lr']:g}, T = {p['authors_steps']}")
    canvas.legend(handles, labels, loc="outside right center", fontsize=7)
    canvas.suptitle(
        f"Robust D-GD on ridge (Fig. 1 protocol): {p['honest']} honest workers × 1 Mackey–Glass "
        f"row (stand-in for LIBSVM mg), d = 2, λ = 1/√7, "
        f"γ = {p['lr_times_L']:g}/L = {p['lr']:.3g}, "
        f"T = {p['steps']}",
        fontsize=8,
    )


register(
    Figure(
        name="gb-trajectories",
        theorem="Allouah et al., NeurIPS 2023 (arXiv:2309.13591), Fig. 1 and the robust D-GD "
        "PL upper bound and lower bound under (G, B)-gradient dissimilarity",
        description="L_H(θ_t) − L* of robust D-GD on 7 one-row ridge workers (Mackey–Glass "
        "stand-in for LIBSVM mg) with f = 0 and f = 1, 3 under SF, FOE, ALIE, mimic, for "
        "NNM∘CWTM, CWTM and NNM∘CWMed, with the PL bound at each run's κ̂, the a-priori bound at "
        "κ = f/(n − 2f) and the class-wide lower bound as horizontal lines",
        compute=_trajectories,
        plot=_plot_trajectories,
        size=(12.0, 6.4),
        single_thread=True,
    )
)

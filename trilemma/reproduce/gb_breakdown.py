"""Breakdown under heterogeneity (Allouah et al., NeurIPS 2023, arXiv:2309.13591): robust D-GD
on digits split with extreme heterogeneity (worker i holds digit i), best training loss and
accuracy against f/n under sign flipping, next to the breakdown points 1/(2 + B²) that the
(G, B) frontier estimated along the runs supports.

The metric of collapse is declared in advance: the best training loss of a run back within 10 %
of the initial loss ln 10. The frontier G²(B²) = max_θ (H(θ) − B²N(θ))₊ is sampled at θ*
(honest D-GD without attack), at every iterate of every run and on the segments from the start
to θ* (:func:`trilemma.dgd.sampled_gb`); the band drawn spans the breakdown points 1/(2 + B²) of the
pairs that minimise the error floor κG²/(1 − κB²) at κ = f/(n − 2f), one per f. For logistic
regression H(θ) is bounded, so the frontier is nearly flat and B² = 0 (breakdown 1/2) minimises.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma import dgd
from trilemma.bounds import gb_breakdown_point, kappa_lower_bound
from trilemma.reproduce._figure import Figure, FigureData, Settings, non_decreasing, register

__all__: list[str] = []

_RULES = ("nnm>>cwtm", "nnm>>cwmed", "nnm>>krum", "nnm>>gm")
_HONEST = dgd.EXTREME_DIGITS["honest"]


def _breakdown(settings: Settings) -> FigureData:
    data = dgd.load_classification("digits")
    problem = dgd.extreme_digits(settings.seed)
    steps = settings.pick(tiny=20, quick=150, full=600)
    # Krum (n − f − 2 neighbours) needs n = 10 + f ≥ 2f + 3, i.e. f ≤ 7 (f/n ≤ 0.41)
    fs = settings.pick(tiny=(0, 3, 6), quick=(0, 1, 2, 3, 4, 5, 6, 7), full=tuple(range(8)))
    lr = 1.0
    samples = [torch.zeros(problem.dimension, dtype=torch.float64)]
    reference = dgd.robust_dgd(problem, rule="mean", steps=4 * steps, lr=lr)
    theta_star = reference.theta
    samples += [t * theta_star for t in torch.linspace(0, 1, 11, dtype=torch.float64)]
    initial = float(reference.objective[0])
    all_x = torch.tensor(data.features)
    all_y = torch.tensor(data.labels)
    rows: list[dict[str, Any]] = []
    for rule in _RULES:
        for f in fs:
            run = dgd.robust_dgd(
                problem, rule=rule, f=f, attack="sign_flipping" if f else None, steps=steps, lr=lr
            )
            finite = torch.isfinite(run.objective)
            best = float(run.objective[finite].min()) if bool(finite.any()) else math.inf
            if bool(torch.isfinite(run.theta).all()):
                samples.append(run.theta)
                accuracy = float(problem.accuracy(run.theta, all_x, all_y))
            else:
                accuracy = 0.0
            rows.append(
                {
                    "rule": rule,
                    "f": f,
                    "n": _HONEST + f,
                    "fraction": f / (_HONEST + f),
                    "best_loss": best,
                    "final_accuracy": accuracy,
                    "collapsed": best >= 0.9 * initial,
                }
            )
    grid = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 61)])
    g2 = dgd.sampled_gb(problem, torch.stack(samples), B2=grid)
    # for each f, the pair minimising the error floor κG²/(1 − κB²) at κ = f/(n − 2f)
    chosen = [
        dgd.error_floor_pair(grid, g2, kappa=float(kappa_lower_bound(n=_HONEST + f, f=f)))[0]
        for f in fs
        if f > 0
    ]
    points = gb_breakdown_point(B2=np.array(chosen or [0.0]))
    band = (float(points.min()), float(points.max()))
    for row in rows:
        row["band_low"], row["band_high"] = band
    collapse = {
        rule: min(
            (r["fraction"] for r in rows if r["rule"] == rule and r["collapsed"]), default=None
        )
        for rule in _RULES
    }
    clean = [r for r in rows if r["f"] == 0]
    return FigureData(
        rows=rows,
        parameters={
            **dgd.EXTREME_DIGITS,
            "steps": steps,
            "lr": lr,
            "initial_loss": initial,
            "samples": len(samples),
            "frontier_B2": grid.tolist(),
            "frontier_G2": g2.tolist(),
            "breakdown_band": list(band),
            "first_collapse": collapse,
        },
        checks={
            "without attack every rule trains (best loss below 90 % of the initial one)": all(
                not r["collapsed"] for r in clean
            ),
            "the loss does not improve as f/n grows (within 5 %)": all(
                non_decreasing([r["best_loss"] for r in rows if r["rule"] == rule])
                for rule in _RULES
            ),
        },
    )


def _plot_breakdown(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows = data.rows
    loss_axes, accuracy_axes = canvas.subplots(1, 2)
    low, high = rows[0]["band_low"], rows[0]["band_high"]
    for axes in (loss_axes, accuracy_axes):
        axes.axvspan(
            low - 0.004,
            high + 0.004,
            color="0.7",
            label="predicted breakdown 1/(2 + B²), bound-minimising (G, B)",
        )
    for index, rule in enumerate(_RULES):
        mine = sorted((r for r in rows if r["rule"] == rule), key=lambda r: r["fraction"])
        xs = [r["fraction"] for r in mine]
        loss_axes.plot(
            xs, [r["best_loss"] for r in mine], marker="o", ms=3, color=f"C{index}", label=rule
        )
        accuracy_axes.plot(
            xs, [r["final_accuracy"] for r in mine], marker="o", ms=3, color=f"C{index}", label=rule
        )
    loss_axes.axhline(0.9 * math.log(10), color="k", ls=":", lw=1, label="collapse: 90 % of ln 10")
    loss_axes.set_ylabel("best training loss (cross-entropy)")
    accuracy_axes.set_ylabel("final accuracy on all of digits")
    for axes in (loss_axes, accuracy_axes):
        axes.set_xlabel("fraction of Byzantine workers f/n")
        axes.grid(True, alpha=0.3)
    loss_axes.legend(fontsize=7)
    canvas.suptitle(
        "Digits, worker i holds digit i (10 honest), sign flipping, D-GD γ = 1", fontsize=10
    )


register(
    Figure(
        name="gb-breakdown",
        theorem="Allouah et al., NeurIPS 2023 (arXiv:2309.13591): breakdown point 1/(2 + B²) "
        "under (G, B)-gradient dissimilarity",
        description="best training loss and accuracy vs f/n for NNM∘{CWTM, CWMed, Krum, GM} "
        "under sign flipping on extremely heterogeneous digits, with the breakdown band from "
        "the (G, B) frontier sampled along the runs",
        compute=_breakdown,
        plot=_plot_breakdown,
        size=(10.0, 4.4),
    )
)

"""Empirical witness of the lower bound: the tracing attack's ROC against estimators of
decreasing noise, on one-way-marginal data (:func:`trilemma.estimators.tracing_attack`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma.bounds import central_marginal_lower_bound
from trilemma.estimators import DistributedMeanEstimation, tracing_attack
from trilemma.reproduce._figure import Figure, FigureData, Settings, register

__all__: list[str] = []

_GRID = np.linspace(0.0, 1.0, 101)


def _series(settings: Settings) -> list[tuple[str, str, float]]:
    """(label, privacy model, ε) of the attacked estimators."""
    epsilons = settings.pick(
        tiny=(1.0,), quick=(1.0, 8.0, 64.0), full=(1.0, 4.0, 16.0, 64.0, 256.0)
    )
    return [
        ("non-private mean", "none", 1.0),
        *[(f"central ε = {eps:g}", "central", eps) for eps in epsilons],
        *[(f"distributed ε = {eps:g}", "distributed", eps) for eps in epsilons],
    ]


def _tracing(settings: Settings) -> FigureData:
    n, m, delta = 4, 5, 1e-5
    d = settings.pick(tiny=1000, quick=1000, full=2000)
    trials = settings.pick(tiny=20, quick=40, full=200)
    rows: list[dict[str, Any]] = []
    summary: dict[str, float] = {}
    for index, (label, privacy, eps) in enumerate(_series(settings)):
        protocol = DistributedMeanEstimation(
            n=n, epsilon=eps, delta=delta, rule="mean", privacy=privacy
        )
        generator = torch.Generator().manual_seed(settings.seed + index)
        result = tracing_attack(protocol, d=d, m=m, trials=trials, generator=generator)
        tpr = np.interp(_GRID, result.fpr, result.tpr)
        bound = (
            0.0
            if privacy == "none"
            else float(central_marginal_lower_bound(d=d, n_records=n * m, epsilon=eps, delta=delta))
        )
        summary[label] = result.advantage
        rows.extend(
            {
                "series": label,
                "privacy": privacy,
                "epsilon": eps if privacy != "none" else float("inf"),
                "fpr": float(x),
                "tpr": float(y),
                "auc": result.auc,
                "advantage": result.advantage,
                "error": result.error,
                "lower_bound": bound,
            }
            for x, y in zip(_GRID, tpr, strict=True)
        )
    private = [
        summary[label]
        for label, privacy, eps in _series(settings)
        if privacy != "none" and eps == 1
    ]
    return FigureData(
        rows=rows,
        parameters={
            "n": n,
            "m": m,
            "records": n * m,
            "d": d,
            "delta": delta,
            "trials": trials,
            "advantage": summary,
        },
        checks={
            "non-private mean is traced (advantage > 0.9)": summary["non-private mean"] > 0.9,
            "ε = 1 estimators resist tracing (advantage < 0.15)": max(private) < 0.15,
        },
    )


def _plot_tracing(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows = data.rows
    axes = canvas.subplots()
    for label in dict.fromkeys(r["series"] for r in rows):
        mine = [r for r in rows if r["series"] == label]
        style = "-" if mine[0]["privacy"] != "distributed" else "--"
        axes.plot(
            [r["fpr"] for r in mine],
            [r["tpr"] for r in mine],
            ls=style,
            label=f"{label}: adv {mine[0]['advantage']:.2f}, "
            f"error {mine[0]['error']:.2g} (LB {mine[0]['lower_bound']:.2g})",
        )
    axes.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":")
    axes.set_xlabel("false-positive rate (fresh records flagged)")
    axes.set_ylabel("true-positive rate (members flagged)")
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.legend(fontsize=6.5, loc="lower right")
    axes.set_title(
        "Tracing attack ⟨F − p, x − p⟩ on one-way marginals (N = 20 records)", fontsize=9
    )


register(
    Figure(
        name="trilemma-tracing",
        theorem="Fingerprinting/tracing (Bun, Ullman, Vadhan 2014; Dwork et al. 2015): the "
        "witness of the one-way-marginal lower bound (Steinke & Ullman 2016)",
        description="ROC of the tracing statistic against the non-private mean and against "
        "central and distributed Gaussian estimators of increasing ε, with advantage, measured "
        "error and the central lower-bound shape",
        compute=_tracing,
        plot=_plot_tracing,
    )
)

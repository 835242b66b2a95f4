"""The trilemma of distributed mean estimation (Allouah et al., ICML 2023, arXiv:2302.04787):
measured error of DP + robust estimators against the bounds of :mod:`trilemma.bounds.trilemma`,
as d, f/n and ε vary.

Every measured point is the mean over the trials of ‖F − x̄_H‖² with its 95 % confidence
interval; the upper bound drawn for a rule is the mean of its per-trial bound
(:func:`trilemma.estimators.upper_bound`, explicit constants) and the lower bound is the shape
:func:`trilemma.bounds.trilemma_lower_bound` with constant 1 (its constant is not known).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma.estimators import (
    DistributedMeanEstimation,
    SweepPoint,
    bound_holds,
    run_sweep,
    summarize,
)
from trilemma.reproduce._figure import Figure, FigureData, Settings, register

__all__ = ["COMMON", "RULE_LABELS"]

#: Shared setting: per-worker (ε, δ)-DP, m records per worker on one-way-marginal data.
COMMON: Mapping[str, Any] = {"n": 10, "m": 100, "delta": 1e-5, "clip": 1.0, "data": "marginals"}
RULE_LABELS: Mapping[str, str] = {
    "mean": "mean",
    "smea": "SMEA",
    "cwtm": "CWTM",
    "cwmed": "CWMed",
    "krum": "Krum",
}
_COLORS = {"mean": "0.35", "smea": "C0", "cwtm": "C1", "cwmed": "C2", "krum": "C3"}
_ERROR = "squared error ‖F − x̄_H‖² (unit-norm records)"


def _point(
    rule: str, *, n: int, f: int, d: int, m: int, epsilon: float, attack: str | None, **labels: Any
) -> SweepPoint:
    protocol = DistributedMeanEstimation(
        n=n,
        f=f,
        epsilon=epsilon,
        delta=COMMON["delta"],
        clip=COMMON["clip"],
        rule=rule,
        attack=attack if f > 0 else None,
    )
    return SweepPoint(protocol=protocol, d=d, m=m, data=COMMON["data"], labels=labels)


def _rows(points: list[SweepPoint], settings: Settings, trials: int) -> list[dict[str, Any]]:
    records = run_sweep(
        points,
        trials=trials,
        seed=settings.seed,
        device=settings.device,
        progress=settings.progress,
    )
    return summarize(records)


def _upper_bound_holds(rows: Sequence[Mapping[str, Any]]) -> bool:
    return all(bound_holds(r) for r in rows)


def _band(rows: Sequence[Mapping[str, Any]], rule: str) -> float:
    """max/min over the rule's points of error / lower-bound shape, where the shape is not
    capped at C² (there the trivial estimator 0 beats every private one)."""
    ratios = [
        r["error_mean"] / r["lower_bound"]
        for r in rows
        if r["rule"] == rule and r["lower_bound"] < r["clip"] ** 2
    ]
    return max(ratios) / min(ratios)


def _draw(
    axes: Axes,
    rows: Sequence[Mapping[str, Any]],
    x: str,
    *,
    upper: bool = True,
    lower: bool = True,
    metric: str = "error",
) -> None:
    rules = list(dict.fromkeys(r["rule"] for r in rows))
    for rule in rules:
        mine = sorted((r for r in rows if r["rule"] == rule), key=lambda r: r[x])
        xs = np.array([r[x] for r in mine], dtype=float)
        mean = np.array([r[f"{metric}_mean"] for r in mine])
        ci = np.array([r[f"{metric}_ci"] for r in mine])
        color = _COLORS.get(rule)
        axes.errorbar(
            xs,
            mean,
            yerr=ci,
            marker="o",
            ms=4,
            capsize=2,
            color=color,
            label=RULE_LABELS.get(rule, rule),
        )
        bound = np.array([r["upper_bound"] for r in mine])
        if upper and np.isfinite(bound).any():
            axes.plot(xs, bound, ls=":", color=color, lw=1.2)
    if lower:
        first = sorted((r for r in rows if r["rule"] == rules[0]), key=lambda r: r[x])
        axes.plot(
            [r[x] for r in first],
            [r["lower_bound"] for r in first],
            ls="--",
            color="k",
            lw=1.2,
            label="lower bound shape (d+f)ln(1/δ)/(ε²nm²)",
        )
    axes.grid(True, which="both", alpha=0.3)


# --- error vs d -------------------------------------------------------------------------------

_DIMENSION_RULES = ("mean", "smea", "cwtm", "cwmed", "krum")


def _dimension(settings: Settings) -> FigureData:
    dims = settings.pick(
        tiny=(4, 16), quick=(4, 16, 64, 256), full=(4, 8, 16, 32, 64, 128, 256, 512, 1024)
    )
    trials = settings.pick(tiny=60, quick=200, full=500)
    f, epsilon = 2, 1.0
    points = []
    for attack in (None, "strongest"):
        for rule in _DIMENSION_RULES:
            if rule == "mean" and attack is not None:
                continue
            for d in dims:
                points.append(
                    _point(
                        rule,
                        n=COMMON["n"],
                        f=f,
                        d=d,
                        m=COMMON["m"],
                        epsilon=epsilon,
                        attack=attack,
                        panel="attack" if attack else "no attack",
                    )
                )
    rows = _rows(points, settings, trials)
    attacked = [r for r in rows if r["panel"] == "attack"]
    return FigureData(
        rows=rows,
        parameters={
            **COMMON,
            "f": f,
            "epsilon": epsilon,
            "d": list(dims),
            "trials": trials,
            "attack": "strongest (line-search ALIE or shift along the top direction)",
            "smea_band_over_d": _band(attacked, "smea"),
        },
        checks={
            "measured error ≤ upper bound at every point": _upper_bound_holds(rows),
            "SMEA under attack: max/min of error / lower-bound shape over d ≤ 3": (
                _band(attacked, "smea") <= 3.0
            ),
        },
    )


def _plot_dimension(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows = data.rows
    left, right = canvas.subplots(1, 2, sharey=True)
    for axes, panel, title in (
        (left, "no attack", "all workers honest (rule set for f = 2)"),
        (right, "attack", "f = 2 Byzantine, strongest attack"),
    ):
        _draw(axes, [r for r in rows if r["panel"] == panel], "d")
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xlabel("dimension d")
        axes.set_title(title, fontsize=9)
    left.set_ylabel(_ERROR)
    left.legend(fontsize=7, loc="upper left")
    canvas.suptitle(
        "Error vs dimension (n = 10, m = 100, ε = 1, δ = 1e-5); dotted: upper bounds", fontsize=10
    )


register(
    Figure(
        name="trilemma-dimension",
        theorem="Allouah et al., ICML 2023 (arXiv:2302.04787): trilemma lower bound and SMEA "
        "upper bound; naive DP + (f, κ)-robust rule",
        description="Mean squared error vs d (log-log) for mean, SMEA, CWTM, CWMed, Krum, "
        "without and with the strongest attack, with per-rule upper bounds and the lower-bound "
        "shape",
        compute=_dimension,
        plot=_plot_dimension,
        size=(10.0, 4.4),
    )
)


# --- error vs f/n -----------------------------------------------------------------------------

_ROBUST_RULES = ("smea", "cwtm", "cwmed", "krum")


def _byzantine(settings: Settings) -> FigureData:
    n, d, epsilon = 11, 64, 1.0
    fs = settings.pick(tiny=(0, 2), quick=(0, 1, 2, 4), full=(0, 1, 2, 3, 4))
    trials = settings.pick(tiny=60, quick=200, full=500)
    points = [
        _point(
            rule, n=n, f=f, d=d, m=COMMON["m"], epsilon=epsilon, attack="strongest", fraction=f / n
        )
        for rule in _ROBUST_RULES
        for f in fs
    ]
    rows = _rows(points, settings, trials)
    return FigureData(
        rows=rows,
        parameters={
            **COMMON,
            "n": n,
            "d": d,
            "epsilon": epsilon,
            "f": list(fs),
            "trials": trials,
            "attack": "strongest",
            "smea_band_over_f": _band(rows, "smea"),
        },
        checks={"measured error ≤ upper bound at every point": _upper_bound_holds(rows)},
    )


def _plot_byzantine(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows = data.rows
    axes = canvas.subplots()
    _draw(axes, rows, "fraction")
    axes.set_yscale("log")
    axes.set_xlabel("fraction of Byzantine workers f/n")
    axes.set_ylabel(_ERROR)
    axes.legend(fontsize=7)
    axes.set_title(
        "Error vs f/n, strongest attack (n = 11, d = 64, m = 100, ε = 1); dotted: upper bounds",
        fontsize=9,
    )


register(
    Figure(
        name="trilemma-byzantine",
        theorem="Allouah et al., ICML 2023 (arXiv:2302.04787): robustness term of the trilemma",
        description="Mean squared error vs f/n under the strongest attack for SMEA, CWTM, CWMed, "
        "Krum, with per-rule upper bounds and the lower-bound shape",
        compute=_byzantine,
        plot=_plot_byzantine,
    )
)


# --- error vs ε -------------------------------------------------------------------------------


def _epsilon(settings: Settings) -> FigureData:
    n, f, d = 10, 2, 64
    epsilons = settings.pick(
        tiny=(0.5, 1.0, 4.0),
        quick=(0.25, 1.0, 4.0, 16.0),
        full=(0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
    )
    trials = settings.pick(tiny=60, quick=200, full=500)
    points = [
        _point(rule, n=n, f=f, d=d, m=COMMON["m"], epsilon=float(eps), attack="strongest")
        for rule in _ROBUST_RULES
        for eps in epsilons
    ]
    rows = _rows(points, settings, trials)
    small = [r for r in rows if r["epsilon"] <= 1.0]
    return FigureData(
        rows=rows,
        parameters={
            **COMMON,
            "f": f,
            "d": d,
            "epsilon": [float(e) for e in epsilons],
            "trials": trials,
            "attack": "strongest",
            "smea_band_all_epsilon": _band(rows, "smea"),
            "smea_band_epsilon_le_1": _band(small, "smea"),
        },
        checks={
            "measured error ≤ upper bound at every point": _upper_bound_holds(rows),
            "SMEA: max/min of error / lower-bound shape over ε ≤ 1 is ≤ 3": (
                _band(small, "smea") <= 3.0
            ),
        },
    )


def _plot_epsilon(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows = data.rows
    axes = canvas.subplots()
    _draw(axes, rows, "epsilon")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("per-worker privacy budget ε (δ = 1e-5)")
    axes.set_ylabel(_ERROR)
    axes.legend(fontsize=7)
    axes.set_title(
        "Error vs ε, strongest attack (n = 10, f = 2, d = 64, m = 100); dotted: upper bounds",
        fontsize=9,
    )


register(
    Figure(
        name="trilemma-epsilon",
        theorem="Allouah et al., ICML 2023 (arXiv:2302.04787): 1/ε² privacy term of the trilemma",
        description="Mean squared error vs ε (log-log) under the strongest attack for SMEA, CWTM, "
        "CWMed, Krum, with per-rule upper bounds and the lower-bound shape",
        compute=_epsilon,
        plot=_plot_epsilon,
    )
)

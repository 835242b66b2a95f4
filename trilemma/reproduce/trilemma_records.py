"""Figure ``trilemma-records``: error vs the number m of records per worker.

Records term of the trilemma (Allouah et al., ICML 2023, arXiv:2302.04787; THEORY §4): a worker
averaging m records of norm ≤ C has sensitivity 2C/m, so its noise std is s = 2C·z(ε, δ)/m and
every noise-driven error scales as 1/m², like the lower-bound shape
(d + f) ln(1/δ)/(ε² n m²) (:func:`trilemma.bounds.trilemma_lower_bound`, conjectured, constant 1;
capped at C², the error of answering 0, which is drawn). The data's own spread (tr Σ ∝ C²/m
for one-way marginals) only matters once d s² falls near it. Absolute errors are plotted (divided
by d s²/h every noise-driven curve would be flat in m); the honest average d s²/h is drawn.

Left: all rules at n = 12, f = 3 (the largest n where exact SMEA under the strongest attack fits
the time budget). Right: the naive rules at n = 50, f = 10.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma.reproduce._figure import Figure, FigureData, Settings, register
from trilemma.reproduce._mean_estimation import (
    COMMON,
    calibration_holds,
    draw_panels,
    measure,
    panels,
    point,
    upper_bounds_hold,
)

__all__: list[str] = []

#: Dimension and per-worker ε.
D, EPSILON = 64, 1.0
#: Admissible range of the fitted log-log slope of every rule's error in m (theory: −2).
SLOPE_RANGE = (-2.25, -1.75)


def slopes(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Least-squares slope of log(error) against log(m), per (rule, n, f)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_key(row), []).append(row)
    return {
        key: float(
            np.polyfit(np.log([r["m"] for r in mine]), np.log([r["error_mean"] for r in mine]), 1)[
                0
            ]
        )
        for key, mine in groups.items()
    }


def _key(row: Mapping[str, Any]) -> str:
    return f"{row['rule']} (n = {row['n']}, f = {row['f']})"


def _compute(settings: Settings) -> FigureData:
    ms = settings.pick(tiny=(10, 100), quick=(3, 30, 300), full=(2, 5, 10, 20, 50, 100, 500))
    trials = settings.pick(tiny=20, quick=50, full=200)
    points = [
        point(rule, n=n, f=f, d=D, m=m, epsilon=EPSILON)
        for n, f, rules in panels(settings)
        for rule in rules
        for m in ms
    ]
    rows = measure(points, settings, trials)
    fitted = slopes(rows)
    for row in rows:
        row["slope"] = fitted[_key(row)]
    low, high = SLOPE_RANGE
    return FigureData(
        rows=rows,
        parameters={
            **COMMON,
            "d": D,
            "epsilon": EPSILON,
            "m": list(ms),
            "panels": [{"n": n, "f": f, "rules": list(rules)} for n, f, rules in panels(settings)],
            "trials": trials,
            "attack": "strongest (line search over ALIE and a shift along the top direction)",
            "slopes": fitted,
        },
        checks={
            "measured error ≤ upper bound at every point": upper_bounds_hold(rows),
            "honest average's error = d s²/h (analytic Gaussian s) within 2 CI at every point": (
                calibration_holds(rows)
            ),
            f"every rule's error falls as m^slope with slope in [{low:g}, {high:g}] "
            "(noise std ∝ 1/m)": all(low <= s <= high for s in fitted.values()),
        },
    )


def _plot(data: FigureData, canvas: MatplotlibFigure) -> None:
    p = data.parameters
    draw_panels(
        canvas,
        data,
        "m",
        xlabel="records per worker m",
        ylabel="squared error ‖F − x̄_H‖² (records of norm C = 1)",
        title=f"Error vs records per worker (d = {p['d']}, ε = {p['epsilon']:g}, "
        f"δ = {p['delta']:g}, {p['trials']} trials, 95 % CI); dotted: upper bounds",
        relative=False,
    )


register(
    Figure(
        name="trilemma-records",
        theorem="Allouah et al., ICML 2023 (arXiv:2302.04787): 1/m² records term of the trilemma",
        description="Squared error vs records per worker m under the strongest attack: SMEA and "
        "naive rules at n = 12, naive rules at n = 50; fitted slopes, upper bounds, conjectured "
        "lower-bound shape (constant 1), C² and the honest average",
        compute=_compute,
        plot=_plot,
        size=(11.0, 5.2),
        single_thread=True,
    )
)

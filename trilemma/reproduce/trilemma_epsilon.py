"""Figure ``trilemma-epsilon``: error vs the per-worker privacy budget ε.

Privacy term of the trilemma (Allouah et al., ICML 2023, arXiv:2302.04787; THEORY §4): the
lower-bound shape (d + f) ln(1/δ)/(ε² n m²) (:func:`trilemma.bounds.trilemma_lower_bound`,
conjectured, constant 1) is stated for ε = O(1); it is drawn dashed up to ε = 1 and faint beyond,
where the region is shaded. Every private error scales with s² ∝ z(ε, δ)², so divided by
d s²/h (see :mod:`trilemma.reproduce._mean_estimation`) the curves are flat where the noise
dominates the spread of the data. C², the error of answering 0, is drawn too: at small ε the
naive rules do worse than answering 0.

Left: all rules at n = 12, f = 3 (the largest n where exact SMEA under the strongest attack fits
the time budget). Right: the naive rules at n = 50, f = 10.
"""

from __future__ import annotations

from matplotlib.figure import Figure as MatplotlibFigure

from trilemma.reproduce._figure import Figure, FigureData, Settings, register
from trilemma.reproduce._mean_estimation import (
    COMMON,
    band,
    calibration_holds,
    draw_panels,
    measure,
    panels,
    point,
    upper_bounds_hold,
)

__all__: list[str] = []

#: Dimension and records per worker.
D, M = 64, 100
#: Largest ε of the lower bound's range ε = O(1).
EPSILON_RANGE = 1.0
#: Largest admissible max/min over ε ≤ 1 of SMEA's error / lower-bound shape: both scale as
#: 1/ε² up to z(ε, δ)²ε²/ln(1/δ) of the analytic Gaussian; SMEA's upper bound over the shape
#: moves by 1.4× over ε ∈ [1/8, 1] at (15, 3), d = 64 [D: computed from bounds.smea_upper_bound
#: and bounds.trilemma_lower_bound]. Noise ∝ 1/ε instead of 1/ε² would give ≈ 8.
SMEA_BAND = 3.0


def _compute(settings: Settings) -> FigureData:
    epsilons = settings.pick(
        tiny=(0.25, 1.0, 4.0),
        quick=(0.125, 0.5, 1.0, 4.0, 16.0),
        full=(0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
    )
    trials = settings.pick(tiny=20, quick=50, full=200)
    points = [
        point(rule, n=n, f=f, d=D, m=M, epsilon=float(eps))
        for n, f, rules in panels(settings)
        for rule in rules
        for eps in epsilons
    ]
    rows = measure(points, settings, trials)
    smea = [r for r in rows if r["rule"] == "smea" and r["epsilon"] <= EPSILON_RANGE]
    return FigureData(
        rows=rows,
        parameters={
            **COMMON,
            "d": D,
            "m": M,
            "epsilon": [float(e) for e in epsilons],
            "epsilon_range": EPSILON_RANGE,
            "panels": [{"n": n, "f": f, "rules": list(rules)} for n, f, rules in panels(settings)],
            "trials": trials,
            "attack": "strongest (line search over ALIE and a shift along the top direction)",
            "smea_band_epsilon_le_1": band(smea, "smea"),
        },
        checks={
            "measured error ≤ upper bound at every point": upper_bounds_hold(rows),
            "honest average's error = d s²/h (analytic Gaussian s) within 2 CI at every point": (
                calibration_holds(rows)
            ),
            f"SMEA: max/min over ε ≤ 1 of error / lower-bound shape ≤ {SMEA_BAND:g}": (
                band(smea, "smea") <= SMEA_BAND
            ),
        },
    )


def _plot(data: FigureData, canvas: MatplotlibFigure) -> None:
    p = data.parameters
    axes_list = draw_panels(
        canvas,
        data,
        "epsilon",
        xlabel=f"per-worker ε (δ = {p['delta']:g}); shaded: ε > 1",
        ylabel="error ‖F − x̄_H‖² / (d s²/h)",
        title=f"Error relative to the honest average vs ε (d = {p['d']}, m = {p['m']}, "
        f"{p['trials']} trials, 95 % CI); dotted: upper bounds",
        log_base=2,
        lower_until=p["epsilon_range"],
    )
    for axes in axes_list:
        axes.axvspan(p["epsilon_range"], max(p["epsilon"]) * 1.2, color="0.85", alpha=0.5, lw=0)


register(
    Figure(
        name="trilemma-epsilon",
        theorem="Allouah et al., ICML 2023 (arXiv:2302.04787): 1/ε² privacy term of the trilemma",
        description="Error / (d s²/h) vs ε under the strongest attack: SMEA and naive rules at "
        "n = 12, naive rules at n = 50; upper bounds, conjectured lower-bound shape (constant 1, "
        "faint where ε > 1, shaded) and C²",
        compute=_compute,
        plot=_plot,
        size=(11.0, 5.2),
        single_thread=True,
    )
)

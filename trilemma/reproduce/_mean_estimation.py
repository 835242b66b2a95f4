"""Shared machinery of the trilemma mean-estimation figures (error vs d, f/n, ε and m).

Setting (Allouah, Guerraoui, Gupta, Pinot, Stephan, ICML 2023, arXiv:2302.04787): n workers, f
Byzantine under the strongest attack of :mod:`trilemma.estimators` (line search over ALIE and a
shift along the top direction), h = n − f honest workers, each holding m one-way-marginal
records of norm C (:func:`trilemma.estimators.marginal_averages`) and sending its average plus
Gaussian noise of std s = 2C·z(ε, δ)/m per coordinate, z from the analytic Gaussian mechanism
(:func:`trilemma.accountants.calibrate_gaussian`, Balle & Wang 2018).

Every error is reported divided by d s²/h, the exact expected error of averaging the h noisy
honest messages (:func:`trilemma.bounds.honest_average_error`, [D]): 1 is what an oracle that
knows the honest workers pays, the excess above 1 is the price of robustness. The naive rules
pay κ·tr Σ ≈ κ d s², i.e. a ratio ≈ κh that grows with n at fixed f/n; SMEA pays
κ_sp·λ_max ≈ κ_sp s²(1 + √(d/h))², a ratio that stays O(κ_sp) for d ≳ h (THEORY §4, [D]).

Two worker counts are used. SMEA enumerates the C(n, f) subsets of size n − f exactly, and the
strongest attack calls the rule once per candidate of its line search (22 calls per trial): on
2 CPU cores that costs ≈ 8 ms per trial at (n, f) = (10, 2), 50–120 ms at n = 12 (f = 3–5),
80 ms at (15, 3), 0.36 s at (15, 4) and 1.9 s at (20, 4) (measured 2026-11-29, float64, d = 16–64,
under load); at n = 50, f = 10 there are C(50, 10) ≈ 1.0·10¹⁰ subsets, out of reach. So the rules
are compared with SMEA at (n, f) = (15, 3), and the naive rules alone at (50, 10), the same
f/n = 0.2, where their κh growth is plain; the f/n sweep, whose SMEA cost grows as C(n, f), uses
n = 12 for SMEA (f ≤ 4).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma.accountants import calibrate_gaussian
from trilemma.bounds import honest_average_error
from trilemma.estimators import (
    DistributedMeanEstimation,
    SweepPoint,
    bound_holds,
    run_sweep,
    summarize,
)
from trilemma.reproduce._figure import FigureData, Settings, single_threaded

__all__ = [
    "COMMON",
    "LARGE_F",
    "LARGE_N",
    "NAIVE_RULES",
    "RULE_LABELS",
    "SMEA_F",
    "SMEA_N",
    "band",
    "calibration_holds",
    "draw_errors",
    "draw_panels",
    "measure",
    "panels",
    "point",
    "upper_bounds_hold",
]

#: Shared setting: per-worker (ε, δ)-DP with δ = 1e-5, records of norm C = 1 (one-way marginals).
COMMON: Mapping[str, Any] = {"delta": 1e-5, "clip": 1.0, "data": "marginals"}
NAIVE_RULES: tuple[str, ...] = ("cwtm", "cwmed", "krum", "nnm>>cwtm")
#: (n, f) of the panels that include SMEA: f/n = 0.2, the largest n where exact SMEA under the
#: strongest attack fits the time budget at that fraction.
SMEA_N, SMEA_F = 15, 3
#: (n, f) of the panels of the naive rules alone, same f/n.
LARGE_N, LARGE_F = 50, 10


def panels(settings: Settings) -> list[tuple[int, int, tuple[str, ...]]]:
    """(n, f, rules) of the two panels: SMEA with the naive rules, the naive rules alone
    (at size ``"tiny"``, for tests: n = 10 and 20, same f/n)."""
    (small_n, small_f), (large_n, large_f) = settings.pick(
        tiny=((10, 2), (20, 4)),
        quick=((SMEA_N, SMEA_F), (LARGE_N, LARGE_F)),
        full=((SMEA_N, SMEA_F), (LARGE_N, LARGE_F)),
    )
    return [(small_n, small_f, ("smea", *NAIVE_RULES)), (large_n, large_f, NAIVE_RULES)]


RULE_LABELS: Mapping[str, str] = {
    "smea": "SMEA",
    "cwtm": "CWTM",
    "cwmed": "CWMed",
    "krum": "Krum",
    "nnm>>cwtm": "NNM∘CWTM",
    "mean": "mean",
}
_STYLE: Mapping[str, tuple[str, str]] = {
    "smea": ("C0", "o"),
    "cwtm": ("C1", "s"),
    "cwmed": ("C2", "^"),
    "krum": ("C3", "v"),
    "nnm>>cwtm": ("C4", "D"),
    "mean": ("0.3", "x"),
}
#: Label of the lower-bound curve: a shape whose constant is unknown (trilemma_lower_bound).
LOWER_LABEL = "lower bound, conjectured shape (d+f)ln(1/δ)/(ε²nm²), constant 1"


def point(
    rule: str,
    *,
    n: int,
    f: int,
    d: int,
    m: int,
    epsilon: float,
    **labels: Any,
) -> SweepPoint:
    """A sweep point of the common setting; f ≥ 1 runs the strongest attack, f = 0 none."""
    protocol = DistributedMeanEstimation(
        n=n,
        f=f,
        epsilon=epsilon,
        delta=COMMON["delta"],
        clip=COMMON["clip"],
        rule=rule,
        attack="strongest" if f > 0 else None,
    )
    return SweepPoint(protocol=protocol, d=d, m=m, data=COMMON["data"], labels=labels)


def honest_floor(*, d: int, h: int, m: int, epsilon: float, delta: float, clip: float) -> float:
    """d s²/h with s = 2C·z(ε, δ)/m from the analytic Gaussian calibration, computed here
    independently of the protocol's own noise (so a protocol adding the wrong noise is caught)."""
    s = 2.0 * clip * calibrate_gaussian(target_epsilon=epsilon, delta=delta) / m
    return float(honest_average_error(d=d, n_honest=h, noise_std=s))


def measure(points: Sequence[SweepPoint], settings: Settings, trials: int) -> list[dict[str, Any]]:
    """Run and summarise ``points``; add h, the floor d s²/h and every error as a ratio of it.

    Added columns: ``h``; ``floor`` (d s²/h, :func:`honest_floor`); ``error_ratio`` and
    ``error_ratio_ci`` (mean error and its 95 % half-width over the floor); ``excess_ratio``
    (‖F − ȳ_H‖² over the floor); ``honest_ratio`` and ``honest_ratio_ci`` (‖ȳ_H − x̄_H‖², whose
    expectation is the floor exactly); ``upper_ratio``; ``lower_ratio`` (the conjectured
    lower-bound shape, constant 1); ``trivial_ratio`` (C², the error of answering 0, over the
    floor).
    """
    with single_threaded():  # small inputs: thread pools cost more than they give
        records = run_sweep(
            points,
            trials=trials,
            seed=settings.seed,
            device=settings.device,
            progress=settings.progress,
        )
    rows = summarize(records)
    for row in rows:
        h = row["n"] - row["byzantine"]
        floor = honest_floor(
            d=row["d"],
            h=h,
            m=row["m"],
            epsilon=row["epsilon"],
            delta=row["delta"],
            clip=row["clip"],
        )
        row.update(
            h=h,
            floor=floor,
            error_ratio=row["error_mean"] / floor,
            error_ratio_ci=row["error_ci"] / floor,
            excess_ratio=row["excess_mean"] / floor,
            honest_ratio=row["honest_error_mean"] / floor,
            honest_ratio_ci=row["honest_error_ci"] / floor,
            upper_ratio=row["upper_bound"] / floor,
            lower_ratio=row["lower_bound"] / floor,
            trivial_ratio=row["clip"] ** 2 / floor,
        )
    return rows


def calibration_holds(rows: Iterable[Mapping[str, Any]], *, tolerance: float = 2.0) -> bool:
    """Whether every row's honest-average error is d s²/h within ``tolerance`` 95 % half-widths
    (the exact expectation, [D] :func:`trilemma.bounds.honest_average_error`)."""
    return all(
        abs(r["honest_error_mean"] - r["floor"]) <= tolerance * r["honest_error_ci"] for r in rows
    )


def upper_bounds_hold(rows: Iterable[Mapping[str, Any]]) -> bool:
    """Whether every row's mean error is below its rule's upper bound
    (:func:`trilemma.estimators.bound_holds`)."""
    return all(bound_holds(r) for r in rows)


def band(rows: Iterable[Mapping[str, Any]], rule: str) -> float:
    """max/min over the rule's rows of error / lower-bound shape, on rows where the shape is
    below C² (beyond, answering 0 beats every private estimator and the shape is capped)."""
    ratios = [
        r["error_mean"] / r["lower_bound"]
        for r in rows
        if r["rule"] == rule and 0 < r["lower_bound"] < r["clip"] ** 2
    ]
    if not ratios:
        raise ValueError(f"no row of rule={rule!r} has a lower bound below C²")
    return max(ratios) / min(ratios)


def draw_errors(
    axes: Axes,
    rows: Sequence[Mapping[str, Any]],
    x: str,
    *,
    relative: bool = True,
    lower_until: float | None = None,
) -> None:
    """Measured error per rule with 95 % intervals, dotted upper bounds, the lower-bound shape
    (dashed; faint beyond ``lower_until`` on the x axis), C² and the honest average d s²/h.

    ``relative``: every curve divided by d s²/h (the honest average is then the line 1);
    otherwise absolute squared errors.
    """
    rules = list(dict.fromkeys(r["rule"] for r in rows))

    def values(mine: Sequence[Mapping[str, Any]], column: str) -> np.ndarray:
        divisor = np.array([r["floor"] if relative else 1.0 for r in mine])
        return np.array([r[column] for r in mine], dtype=float) / divisor

    for rule in rules:
        mine = sorted((r for r in rows if r["rule"] == rule), key=lambda r: r[x])
        xs = np.array([r[x] for r in mine], dtype=float)
        color, marker = _STYLE.get(rule, ("k", "o"))
        axes.errorbar(
            xs,
            values(mine, "error_mean"),
            yerr=values(mine, "error_ci"),
            marker=marker,
            ms=4,
            capsize=2,
            color=color,
            label=RULE_LABELS.get(rule, rule),
        )
        upper = values(mine, "upper_bound")
        if np.isfinite(upper).any():
            axes.plot(xs, upper, ls=":", color=color, lw=1.1)
    first = sorted((r for r in rows if r["rule"] == rules[0]), key=lambda r: r[x])
    xs = np.array([r[x] for r in first], dtype=float)
    lower = values(first, "lower_bound")
    inside = np.ones_like(xs, dtype=bool) if lower_until is None else xs <= lower_until
    axes.plot(xs[inside], lower[inside], ls="--", color="k", lw=1.2, label=LOWER_LABEL)
    if not inside.all():
        start = max(int(inside.sum()) - 1, 0)
        axes.plot(
            xs[start:],
            lower[start:],
            ls="--",
            color="k",
            lw=0.8,
            alpha=0.3,
            label="same shape where ε > 1 (outside its ε = O(1) range)",
        )
    scale = np.array([r["floor"] for r in first]) if relative else np.ones_like(xs)
    trivial = np.array([r["clip"] ** 2 for r in first]) / scale
    axes.plot(xs, trivial, color="0.5", lw=2.0, alpha=0.6, label="C²: error of answering 0")
    honest = np.array([r["floor"] for r in first]) / scale
    axes.plot(xs, honest, color="0.3", lw=0.9, ls="-.", label="honest average d s²/h (exact)")
    axes.grid(True, which="both", alpha=0.3)


def draw_panels(
    canvas: MatplotlibFigure,
    data: FigureData,
    x: str,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    log_base: float | None = 10,
    relative: bool = True,
    lower_until: float | None = None,
) -> list[Axes]:
    """One panel per entry of ``data.parameters["panels"]`` (its rows: those with that n), each
    drawn by :func:`draw_errors` against column ``x`` on log–log axes (x linear when
    ``log_base`` is None), with a shared y axis, one legend below them all and ``title``."""
    axes_list = list(canvas.subplots(1, 2, sharey=True))
    for axes, panel in zip(axes_list, data.parameters["panels"], strict=True):
        mine = [r for r in data.rows if r["n"] == panel["n"]]
        draw_errors(axes, mine, x, relative=relative, lower_until=lower_until)
        if log_base is not None:
            axes.set_xscale("log", base=log_base)
        axes.set_yscale("log")
        axes.set_xlabel(xlabel)
        f = panel["f"]
        byzantine = ", ".join(map(str, f)) if isinstance(f, list | tuple) else f
        detail = "" if isinstance(f, list | tuple) else " Byzantine (strongest attack)"
        axes.set_title(f"n = {panel['n']}, f = {byzantine}{detail}", fontsize=9)
    axes_list[0].set_ylabel(ylabel)
    handles, labels = axes_list[0].get_legend_handles_labels()
    canvas.legend(handles, labels, loc="outside lower center", ncol=5, fontsize=7, frameon=False)
    canvas.suptitle(title, fontsize=10)
    return axes_list

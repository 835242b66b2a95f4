"""DP-SGD's ε against the number of steps (RDP and PLD accountants), with the empirical lower
bounds of privacy audits at a few settings small enough to audit.

Curves: ε at δ = 1e-5 of T Poisson-subsampled Gaussian steps (Abadi et al., CCS 2016,
arXiv:1607.00133, Alg. 1) from :func:`trilemma.accountants.dpsgd_epsilon` with the RDP
(Mironov, CSF 2017, arXiv:1702.07476) and PLD (Koskela et al., AISTATS 2020,
arXiv:1906.03049) accountants of dp-accounting, for three (σ, q): the reference σ = 1.1,
q = 0.01 of Abadi et al., σ = 1, q = 0.1, and full batches σ = 2, q = 1 (composed Gaussian).

Audits: :func:`trilemma.proofs_checks.audit_dpsgd_step` runs the mechanism with a canary
gradient on neighbouring inputs and turns Clopper–Pearson bounds on the error rates of the
likelihood-ratio test into ε_lower, valid with confidence 0.95 (Jagielski, Ullman, Oprea,
NeurIPS 2020, arXiv:2006.07709; Nasr et al., IEEE S&P 2021, arXiv:2101.04535). Soundness
[V, definition of (ε, δ)-DP]: ε_lower ≤ ε_PLD ≤ ε_RDP at every audited point; the CSV gives the
tightness ε_lower/ε of both accountants.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import numpy as np
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma.accountants import dpsgd_epsilon
from trilemma.proofs_checks import audit_dpsgd_step
from trilemma.proofs_checks.audit import SOUNDNESS_TOLERANCE
from trilemma.reproduce._figure import Figure, FigureData, Settings, register

__all__ = ["AUDIT_SOUND", "PLD_TIGHTER", "STEPS_GROW", "checks"]

DELTA = 1e-5
CONFIDENCE = 0.95
# (σ, q) → log10 of the first and last step counts of its curve
_CURVES: dict[tuple[float, float], tuple[float, float]] = {
    (1.1, 0.01): (1.0, 4.0),
    (1.0, 0.1): (0.0, 2.0),
    (2.0, 1.0): (0.0, 2.0),
}
_METHODS: tuple[Literal["rdp", "pld"], ...] = ("rdp", "pld")

PLD_TIGHTER = "PLD is never looser than RDP"
STEPS_GROW = "ε grows with the number of steps"
AUDIT_SOUND = "audit lower bound ≤ ε_PLD ≤ ε_RDP at every audited point"


def _audit_points(settings: Settings) -> tuple[tuple[float, float, int], ...]:
    """Audited (σ, q, T): cost grows like T × trials, so the longest runs are full-size only."""
    small = ((1.0, 0.1, 5), (2.0, 1.0, 10))
    quick = ((1.1, 0.01, 100), (1.0, 0.1, 5), (1.0, 0.1, 50), (2.0, 1.0, 1), (2.0, 1.0, 10))
    return settings.pick(tiny=small, quick=quick, full=((1.1, 0.01, 1000), *quick))


def _pld(*, noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """The claim under audit: ε of the PLD accountant."""
    return dpsgd_epsilon(
        noise_multiplier=noise_multiplier,
        sample_rate=sample_rate,
        steps=steps,
        delta=delta,
        method="pld",
    )


def checks(rows: list[dict[str, Any]]) -> dict[str, bool]:
    """The figure's checks, from its rows (curve rows and audit rows)."""
    curves = [r for r in rows if r["kind"] == "curve"]
    audits = [r for r in rows if r["kind"] == "audit"]
    at = {(r["noise_multiplier"], r["sample_rate"], r["steps"], r["method"]): r for r in curves}
    tighter = all(
        r["epsilon"] <= at[(*key[:3], "rdp")]["epsilon"] * (1 + 1e-9)
        for key, r in at.items()
        if key[3] == "pld"
    )
    grow = True
    for (sigma, q), method in itertools.product(_CURVES, _METHODS):
        series = sorted(
            (r["steps"], r["epsilon"])
            for r in curves
            if (r["noise_multiplier"], r["sample_rate"], r["method"]) == (sigma, q, method)
        )
        grow &= bool(np.all(np.diff([e for _, e in series]) >= 0))
    sound = bool(audits) and all(
        r["epsilon_lower"] <= r["epsilon_pld"] + SOUNDNESS_TOLERANCE
        and r["epsilon_pld"] <= r["epsilon_rdp"] * (1 + 1e-9)
        for r in audits
    )
    return {PLD_TIGHTER: tighter, STEPS_GROW: grow, AUDIT_SOUND: sound}


def _curve_rows(count: int) -> list[dict[str, Any]]:
    """ε of each curve (σ, q) of :data:`_CURVES` by each accountant at ``count`` log-spaced
    step counts."""
    rows: list[dict[str, Any]] = []
    for (sigma, q), (first, last) in _CURVES.items():
        steps = np.unique(np.logspace(first, last, count).round().astype(int))
        for method, t in itertools.product(_METHODS, steps):
            epsilon = dpsgd_epsilon(
                noise_multiplier=sigma, sample_rate=q, steps=int(t), delta=DELTA, method=method
            )
            rows.append(
                {
                    "kind": "curve",
                    "noise_multiplier": sigma,
                    "sample_rate": q,
                    "steps": int(t),
                    "method": method,
                    "epsilon": epsilon,
                }
            )
    return rows


def _audit_rows(settings: Settings, trials: int) -> list[dict[str, Any]]:
    """The audit of the PLD claim at each audited (σ, q, T), with the RDP ε next to it."""
    rows: list[dict[str, Any]] = []
    for index, (sigma, q, t) in enumerate(_audit_points(settings)):
        result = audit_dpsgd_step(
            noise_multiplier=sigma,
            sample_rate=q,
            steps=t,
            delta=DELTA,
            trials=trials,
            seed=settings.seed + index,
            confidence=CONFIDENCE,
            accountant=_pld,
        )
        rdp = dpsgd_epsilon(
            noise_multiplier=sigma, sample_rate=q, steps=t, delta=DELTA, method="rdp"
        )
        lower = result.bound.epsilon_lower
        rows.append(
            {
                "kind": "audit",
                "noise_multiplier": sigma,
                "sample_rate": q,
                "steps": t,
                "epsilon_pld": result.epsilon_claimed,
                "epsilon_rdp": rdp,
                "epsilon_lower": lower,
                "tightness_pld": result.tightness,
                "tightness_rdp": lower / rdp,
                "fpr": result.bound.fpr,
                "fnr": result.bound.fnr,
                "trials": trials,
                "confidence": CONFIDENCE,
            }
        )
    return rows


def _compute(settings: Settings) -> FigureData:
    count = settings.pick(tiny=4, quick=9, full=21)
    trials = settings.pick(tiny=20_000, quick=100_000, full=300_000)
    rows = _curve_rows(count) + _audit_rows(settings, trials)
    return FigureData(
        rows=rows,
        parameters={
            "delta": DELTA,
            "curves": [{"noise_multiplier": s, "sample_rate": q} for s, q in _CURVES],
            "audit_trials_per_input": trials,
            "audit_confidence": CONFIDENCE,
        },
        checks=checks(rows),
    )


def _label(sigma: float, q: float) -> str:
    return f"σ = {sigma:g}, q = {q:g}"


def _plot(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows = data.rows
    curves_axes, ratio_axes = canvas.subplots(1, 2, width_ratios=(1.6, 1))
    audits = [r for r in rows if r["kind"] == "audit"]
    for index, setting in enumerate(data.parameters["curves"]):
        sigma, q = setting["noise_multiplier"], setting["sample_rate"]
        color = f"C{index}"
        for method, style in (("rdp", "-"), ("pld", "--")):
            mine = [
                r
                for r in rows
                if r["kind"] == "curve"
                and (r["noise_multiplier"], r["sample_rate"], r["method"]) == (sigma, q, method)
            ]
            curves_axes.plot(
                [r["steps"] for r in mine],
                [r["epsilon"] for r in mine],
                ls=style,
                color=color,
                label=f"{_label(sigma, q)}, {method.upper()}",
            )
        mine = [r for r in audits if (r["noise_multiplier"], r["sample_rate"]) == (sigma, q)]
        shown = [r for r in mine if r["epsilon_lower"] > 0]
        curves_axes.scatter(
            [r["steps"] for r in shown],
            [r["epsilon_lower"] for r in shown],
            marker="v",
            s=36,
            color=color,
            edgecolors="k",
            zorder=3,
            label=f"{_label(sigma, q)}, audit ε_lower" if shown else None,
        )
    curves_axes.set_xscale("log")
    curves_axes.set_yscale("log")
    curves_axes.set_xlabel("steps T")
    curves_axes.set_ylabel(f"ε at δ = {data.parameters['delta']:g}")
    curves_axes.grid(True, which="both", alpha=0.3)
    curves_axes.legend(fontsize=6, ncol=1)
    curves_axes.set_title("DP-SGD: accountants and audit lower bounds", fontsize=9)

    labels = [
        f"σ={r['noise_multiplier']:g}\nq={r['sample_rate']:g}\nT={r['steps']}" for r in audits
    ]
    positions = np.arange(len(audits))
    ratio_axes.bar(
        positions - 0.2, [r["tightness_pld"] for r in audits], 0.4, label="ε_lower/ε_PLD"
    )
    ratio_axes.bar(
        positions + 0.2, [r["tightness_rdp"] for r in audits], 0.4, label="ε_lower/ε_RDP"
    )
    ratio_axes.axhline(1.0, color="k", lw=1, label="violation above 1")
    ratio_axes.set_xticks(positions, labels, fontsize=6)
    ratio_axes.set_ylim(0, 1.15)
    ratio_axes.set_ylabel("audit tightness")
    ratio_axes.legend(fontsize=6, loc="upper left")
    trials, level = data.parameters["audit_trials_per_input"], data.parameters["audit_confidence"]
    ratio_axes.set_title(f"{trials:,} runs per input, confidence {level:g}", fontsize=8)


register(
    Figure(
        name="accountants-dpsgd",
        theorem="Abadi et al., CCS 2016 (DP-SGD); RDP (Mironov 2017) and PLD (Koskela et al. "
        "2020) accounting via dp-accounting; audits after Jagielski et al., NeurIPS 2020",
        description="ε of DP-SGD vs steps (RDP, PLD) for three (σ, q), with empirical ε lower "
        "bounds from likelihood-ratio audits and their tightness ε_lower/ε",
        compute=_compute,
        plot=_plot,
        size=(9.6, 4.6),
        single_thread=True,
    )
)

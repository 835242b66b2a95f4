"""Checks of the accountants' properties: ε is monotone in the noise, the number of steps and
the sampling rate; no accountant reports less than the exact ε of composed Gaussians; SecLDP
colluders never improve privacy; calibration never overshoots its target.

Each property is stated as a ratio that must stay ≤ 1 (up to 1e-9 relative); an
``epsilon`` callable can replace the accountant under test (e.g. a deliberately wrong one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from hypothesis import strategies as st

from trilemma import accountants
from trilemma.proofs_checks.report import CheckReport, maximise, report
from trilemma.proofs_checks.strategies import (
    dpsgd_parameters,
    gaussian_parameters,
    graphs_with_colluders,
)

__all__ = [
    "check_calibration",
    "check_dpsgd_monotone",
    "check_gaussian_composition",
    "check_secldp_colluders",
]

DpsgdEpsilon = Callable[..., float]


def _dpsgd(method: Literal["rdp", "pld"]) -> DpsgdEpsilon:
    def epsilon(*, noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
        return accountants.dpsgd_epsilon(
            noise_multiplier=noise_multiplier,
            sample_rate=sample_rate,
            steps=steps,
            delta=delta,
            method=method,
        )

    return epsilon


def check_dpsgd_monotone(
    *,
    examples: int,
    seed: int = 0,
    method: Literal["rdp", "pld"] = "rdp",
    epsilon: DpsgdEpsilon | None = None,
) -> CheckReport:
    """DP-SGD's ε does not decrease with more steps or a larger sampling rate, and does not
    increase with more noise (ratio = ε(less private)⁻¹ · ε(more private) ≤ 1)."""
    account = epsilon or _dpsgd(method)
    cases = st.tuples(
        dpsgd_parameters(),
        st.sampled_from(["steps", "sample_rate", "noise"]),
        st.floats(1.01, 4.0),
    )

    def objective(case: tuple) -> tuple[float, dict[str, Any]]:
        (sigma, q, steps, delta), knob, factor = case
        base = {"noise_multiplier": sigma, "sample_rate": q, "steps": steps, "delta": delta}
        moved = dict(base)
        if knob == "steps":
            moved["steps"] = int(steps * factor) + 1
        elif knob == "sample_rate":
            moved["sample_rate"] = min(1.0, q * factor)
        else:
            moved["noise_multiplier"] = sigma / factor  # less noise: less private
        low, high = account(**base), account(**moved)
        ratio = low / high if high > 0 else (0.0 if low == 0 else float("inf"))
        return ratio, {"base": base, "less_private": moved, "epsilon": low, "epsilon_moved": high}

    outcome = maximise(cases, objective, examples=examples, seed=seed)
    return report(
        name=f"accountant:dpsgd-monotone:{method}",
        statement="DP-SGD ε is non-decreasing in steps and sampling rate, non-increasing in noise",
        source="post-processing and composition (Dwork & Roth 2014, Thm. 3.14); accounted with "
        "dp-accounting",
        outcome=outcome,
    )


def check_gaussian_composition(
    *,
    examples: int,
    seed: int = 0,
    method: Literal["analytic", "rdp", "pld"] = "rdp",
    epsilon: Callable[..., float] | None = None,
) -> CheckReport:
    """k Gaussian mechanisms of noise multiplier σ are exactly one of σ/√k (Dong, Roth, Su 2022,
    Cor. 3.3): an accountant may be pessimistic, never below that exact ε
    (ratio = exact / accounted ≤ 1)."""
    account = epsilon or (
        lambda *, noise_multiplier, delta, compositions: accountants.gaussian_epsilon(
            noise_multiplier=noise_multiplier, delta=delta, compositions=compositions, method=method
        )
    )

    def objective(case: tuple) -> tuple[float, dict[str, Any]]:
        sigma, delta, k = case
        exact = accountants.gaussian_epsilon(
            noise_multiplier=sigma / k**0.5, delta=delta, method="analytic"
        )
        accounted = account(noise_multiplier=sigma, delta=delta, compositions=k)
        ratio = exact / accounted if accounted > 0 else float("inf")
        return ratio, {
            "sigma": sigma,
            "delta": delta,
            "compositions": k,
            "exact": exact,
            "accounted": accounted,
        }

    outcome = maximise(gaussian_parameters(), objective, examples=examples, seed=seed)
    return report(
        name=f"accountant:gaussian-composition:{method}",
        statement="the ε of k composed Gaussians is never below the exact ε of one Gaussian "
        "with noise σ/√k",
        source="Dong, Roth, Su, JRSS-B 2022 (arXiv:1905.02383), Cor. 3.3; Balle & Wang 2018",
        outcome=outcome,
    )


def check_secldp_colluders(
    *, examples: int, seed: int = 0, epsilon: Callable[..., float] | None = None
) -> CheckReport:
    """Colluding curious nodes never make the worst honest node more private: ε without
    colluders ≤ ε with them (ratio = ε(∅)/ε(A) ≤ 1)."""
    account = epsilon or accountants.secldp_epsilon
    cases = st.tuples(
        graphs_with_colluders(max_nodes=10),
        st.floats(0.5, 20.0),
        st.floats(0.0, 50.0),
        st.integers(1, 500),
    )

    def objective(case: tuple) -> tuple[float, dict[str, Any]]:
        (graph, colluders), sigma, sigma_cor, steps = case
        kwargs = {
            "sigma": sigma,
            "sigma_cor": sigma_cor,
            "clip": 1.0,
            "steps": steps,
            "delta": 1e-5,
        }
        alone = account(graph, **kwargs)
        attacked = account(graph, colluders=colluders, **kwargs)
        ratio = alone / attacked if attacked > 0 else float("inf")
        return ratio, {
            "edges": sorted(map(list, graph.edges)),
            "colluders": colluders,
            **kwargs,
            "epsilon": alone,
            "epsilon_colluders": attacked,
        }

    outcome = maximise(cases, objective, examples=examples, seed=seed)
    return report(
        name="accountant:secldp-colluders",
        statement="SecLDP: colluders never decrease the worst honest node's ε",
        source="Allouah et al., ICML 2024 (arXiv:2405.01031); Σ_H = σ²I + σ_cor²L_H (THEORY §6)",
        outcome=outcome,
    )


def check_calibration(
    *, examples: int, seed: int = 0, calibrate: Callable[..., float] | None = None
) -> CheckReport:
    """Calibrated DP-SGD noise meets its budget: ε(σ*) ≤ ε_target (ratio = ε(σ*)/ε_target)."""
    solve = calibrate or accountants.calibrate_dpsgd
    cases = st.tuples(
        st.floats(0.2, 10.0),
        st.floats(-3.0, -1.0).map(lambda e: 10.0**e),
        st.integers(1, 1000),
        st.floats(-8.0, -3.0).map(lambda e: 10.0**e),
    )

    def objective(case: tuple) -> tuple[float, dict[str, Any]]:
        target_epsilon, q, steps, delta = case
        sigma = solve(target_epsilon=target_epsilon, sample_rate=q, steps=steps, delta=delta)
        achieved = accountants.dpsgd_epsilon(
            noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta
        )
        return achieved / target_epsilon, {
            "target_epsilon": target_epsilon,
            "sample_rate": q,
            "steps": steps,
            "delta": delta,
            "sigma": sigma,
            "epsilon": achieved,
        }

    outcome = maximise(cases, objective, examples=examples, seed=seed)
    return report(
        name="accountant:calibration",
        statement="calibrate_dpsgd never overshoots: ε(σ*) ≤ target",
        source="trilemma.accountants.calibrate_dpsgd (dp-accounting calibrate_dp_mechanism)",
        outcome=outcome,
    )

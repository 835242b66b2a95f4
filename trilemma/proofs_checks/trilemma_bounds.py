"""Checks of the trilemma bounds' limits and monotonicity.

Bounds of :mod:`trilemma.bounds.trilemma_upper` and :mod:`trilemma.bounds.trilemma_lower`:

- f = 0 recovers the distributed-DP bound; no noise (ε → ∞) reduces the naive and SMEA upper
  bounds to the robustness-only bound (√(κ·spread) + √offset)²;
- the lower bound grows with d and f and shrinks with ε, m and n; the upper bounds grow with the
  noise std, the data spread and f.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from trilemma import bounds
from trilemma.proofs_checks.report import CheckReport, maximise, report
from trilemma.proofs_checks.strategies import worker_counts

__all__ = ["check_trilemma_limits", "check_trilemma_monotone"]

_SOURCE = "Allouah et al., ICML 2023 (arXiv:2302.04787); closed forms in trilemma.bounds"


def _settings():
    return st.tuples(
        worker_counts(min_n=3, max_n=60),
        st.integers(1, 4096),
        st.integers(1, 1000),
        st.floats(0.05, 20.0),
        st.floats(-10.0, -2.0).map(lambda e: 10.0**e),
        st.floats(0.0, 2.0),
    )


def _mismatch(a: float, b: float) -> float:
    """1 when a = b, larger the further apart (the limit checks' ratio)."""
    if a == b:
        return 1.0
    if min(a, b) <= 0:
        return float("inf")
    return max(a / b, b / a)


def check_trilemma_limits(*, examples: int, seed: int = 0) -> CheckReport:
    """f = 0 recovers the DP-only lower bound; zero noise leaves the robustness-only bound."""

    def objective(case: tuple) -> tuple[float, dict[str, Any]]:
        (n, f), d, m, epsilon, delta, spread = case
        dp_only = float(
            bounds.distributed_dp_lower_bound(d=d, n=n, m=m, epsilon=epsilon, delta=delta)
        )
        trilemma_f0 = float(
            bounds.trilemma_lower_bound(d=d, n=n, f=0, m=m, epsilon=epsilon, delta=delta)
        )
        kappa = float(bounds.kappa("cwtm", n=n, f=f))
        robust_only = float(bounds.robust_error_upper_bound(kappa=kappa, spread=spread, offset=0.0))
        naive = float(
            bounds.naive_upper_bound(kappa=kappa, d=d, n=n, f=f, noise_std=0.0, data_spread=spread)
        )
        kappa_sp = float(bounds.smea_spectral_kappa(n=n, f=f))
        smea = float(
            bounds.smea_upper_bound(d=d, n=n, f=f, noise_std=0.0, data_top_eigenvalue=spread)
        )
        ratio = max(
            _mismatch(trilemma_f0, dp_only),
            _mismatch(naive, robust_only),
            _mismatch(smea, kappa_sp * spread) if spread > 0 else _mismatch(smea + 1, 1),
        )
        return ratio, {
            "n": n,
            "f": f,
            "d": d,
            "m": m,
            "epsilon": epsilon,
            "delta": delta,
            "spread": spread,
        }

    outcome = maximise(_settings(), objective, examples=examples, seed=seed)
    return report(
        name="trilemma:limits",
        statement="f = 0 gives the DP-only bound; no noise gives the robustness-only bound",
        source=_SOURCE,
        outcome=outcome,
    )


def check_trilemma_monotone(*, examples: int, seed: int = 0) -> CheckReport:
    """More dimension or Byzantine workers never lower the lower bound; more privacy budget,
    records or workers never raise it; more noise or spread never lowers the upper bounds."""
    knobs = st.sampled_from(["d", "f", "epsilon", "m", "n", "noise", "spread"])

    def objective(case: tuple) -> tuple[float, dict[str, Any]]:
        ((n, f), d, m, epsilon, delta, spread), knob, factor = case
        lb = {"d": d, "n": n, "f": f, "m": m, "epsilon": epsilon, "delta": delta}
        up = {
            "d": d,
            "n": n,
            "f": f,
            "noise_std": 1.0 / (epsilon * m),
            "data_spread": spread,
            "kappa": float(bounds.kappa("cwtm", n=n, f=f)),
        }
        description = {"setting": lb, "knob": knob, "factor": factor}
        if knob in ("d", "f", "epsilon", "m", "n"):
            moved = dict(lb)
            if knob == "d":
                moved["d"] = int(np.ceil(d * factor))
            elif knob == "f":
                if 2 * (f + 1) >= n:
                    return 0.0, description
                moved["f"] = f + 1
            elif knob == "n":
                moved["n"] = n + int(np.ceil(factor))
            elif knob == "m":
                moved["m"] = int(np.ceil(m * factor))
            else:
                moved["epsilon"] = epsilon * factor
            base = float(bounds.trilemma_lower_bound(**lb))
            after = float(bounds.trilemma_lower_bound(**moved))
            grows = knob in ("d", "f")
            small, large = (base, after) if grows else (after, base)
        else:
            key = "noise_std" if knob == "noise" else "data_spread"
            moved = {**up, key: up[key] * factor + (0.0 if knob == "noise" else 1e-3)}
            small = float(bounds.naive_upper_bound(**up))
            large = float(bounds.naive_upper_bound(**moved))
        ratio = small / large if large > 0 else (0.0 if small == 0 else float("inf"))
        return ratio, {**description, "smaller_side": small, "larger_side": large}

    cases = st.tuples(_settings(), knobs, st.floats(1.0, 8.0))
    outcome = maximise(cases, objective, examples=examples, seed=seed)
    return report(
        name="trilemma:monotone",
        statement="the lower bound grows with d and f, falls with ε, m and n; the naive upper "
        "bound grows with the noise and the spread",
        source=_SOURCE,
        outcome=outcome,
    )

"""(G, B) closed forms: hand-worked values, the breakdown point as the edge of finiteness, the
upper bound against the recursion it is derived from, and clear errors."""

import numpy as np
import pytest

from trilemma.bounds import (
    gb_breakdown_point,
    gb_lower_bound,
    gb_upper_bound_nonconvex,
    gb_upper_bound_pl,
    kappa_lower_bound,
)


def test_hand_worked_values():
    assert float(gb_breakdown_point(B2=0.0)) == 0.5
    # n = 12, f = 2, G² = 3, B² = 1, μ = 2: (1/8)·2·3/(2·(12 − 3·2)) = 0.0625
    assert float(gb_lower_bound(n=12, f=2, G2=3.0, B2=1.0, mu=2.0)) == pytest.approx(0.0625)
    # κ = 0.25, B² = 2: 1 − κB² = 0.5; floor κG²/(2μ·0.5) = 0.25·4/(2·1·0.5) = 1
    value = gb_upper_bound_pl(kappa=0.25, G2=4.0, B2=2.0, mu=1.0, L=4.0, steps=8, initial_gap=3.0)
    assert float(value) == pytest.approx(np.exp(-(1 / 4) * 0.5 * 8) * 3.0 + 1.0)
    nonconvex = gb_upper_bound_nonconvex(
        kappa=0.25, G2=4.0, B2=2.0, L=4.0, steps=8, initial_gap=3.0
    )
    assert float(nonconvex) == pytest.approx((1.0 + 2 * 4.0 * 3.0 / 8) / 0.5)


def test_breakdown_is_where_the_bounds_become_infinite():
    n = 30
    for B2 in (0.0, 0.5, 7 / 3, 4.0):
        point = float(gb_breakdown_point(B2=B2))
        for f in range(1, 15):
            lower = float(gb_lower_bound(n=n, f=f, G2=1.0, B2=B2, mu=1.0))
            upper = float(
                gb_upper_bound_pl(
                    kappa=kappa_lower_bound(n=n, f=f),
                    G2=1.0,
                    B2=B2,
                    mu=1.0,
                    L=1.0,
                    steps=10,
                    initial_gap=1.0,
                )
            )
            assert np.isfinite(lower) == (f / n < point) == np.isfinite(upper)


def test_upper_bound_dominates_its_recursion():
    # the one-step inequality gap⁺ ≤ (1 − (μ/L)(1 − κB²)) gap + κG²/(2L), iterated exactly
    rng = np.random.default_rng(3)
    for _ in range(200):
        kappa, B2 = rng.uniform(0, 1), rng.uniform(0, 0.9)
        G2, mu = rng.uniform(0, 5), rng.uniform(0.1, 1)
        L = mu * rng.uniform(1, 20)
        steps, gap = int(rng.integers(0, 200)), rng.uniform(0, 10)
        if kappa * B2 >= 1:
            continue
        x = (mu / L) * (1 - kappa * B2)
        value = gap
        for _ in range(steps):
            value = (1 - x) * value + kappa * G2 / (2 * L)
        bound = gb_upper_bound_pl(
            kappa=kappa, G2=G2, B2=B2, mu=mu, L=L, steps=steps, initial_gap=gap
        )
        assert value <= float(bound) * (1 + 1e-12)


def test_vectorised_and_bad_input():
    values = gb_lower_bound(n=np.array([10, 20]), f=2, G2=1.0, B2=np.array([[0.0], [1.0]]), mu=1.0)
    assert values.shape == (2, 2)
    with pytest.raises(ValueError, match="f=5 must satisfy 2f < n=9"):
        gb_lower_bound(n=9, f=5, G2=1.0, B2=0.0, mu=1.0)
    with pytest.raises(ValueError, match="B2=-1 must be >= 0"):
        gb_breakdown_point(B2=-1.0)
    with pytest.raises(ValueError, match="mu=0 must be > 0"):
        gb_upper_bound_pl(kappa=0.1, G2=1.0, B2=0.0, mu=0.0, L=1.0, steps=1, initial_gap=1.0)
    with pytest.raises(ValueError, match="steps=0 must be an integer >= 1"):
        gb_upper_bound_nonconvex(kappa=0.1, G2=1.0, B2=0.0, L=1.0, steps=0, initial_gap=1.0)


def test_upper_and_lower_bounds_are_not_said_to_match():
    """At κ = f/(n − 2f) only the shapes coincide: no rule attains that κ."""
    doc = " ".join(gb_upper_bound_pl.__doc__.split())
    assert "*shapes* coincide" in doc and "The bounds do not match" in doc
    assert "the bounds match" not in doc

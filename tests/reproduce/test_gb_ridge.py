"""gb-ridge at tiny size: its columns recomputed from the bounds, infinite bounds kept, and each
check made to fail by a planted bug."""

import math

import pytest
import torch

from trilemma import dgd
from trilemma.bounds import (
    gb_lower_bound,
    gb_upper_bound_nonconvex,
    gb_upper_bound_pl,
    kappa,
    kappa_lower_bound,
)
from trilemma.reproduce import FIGURES, Settings, gb_ridge, read_csv, reproduce

TINY = Settings(size="tiny")
GAP, GRADIENT = gb_ridge.agreement([]).keys()


@pytest.fixture(scope="module")
def data():
    return FIGURES["gb-ridge"].compute(TINY)


def test_rows_recomputed_from_the_bounds(data):
    problem = dgd.diabetes_ridge()
    _, l_star, mu, lipschitz = problem.optimum()
    p = data.parameters
    assert (p["mu"], p["L"]) == pytest.approx((mu, lipschitz))
    gap0 = float(problem.objective(torch.zeros(10, dtype=torch.float64))) - l_star
    assert p["initial_gap"] == pytest.approx(gap0)
    threshold = dgd.exact_gb_threshold(problem)
    assert {r["attack"] for r in data.rows} == {"sign_flipping", "foe", "alie", "mimic"}
    assert len(data.rows) == 2 * 4  # every (f, attack), whether its bounds are finite or not
    for r in data.rows:
        n, f = r["n"], r["f"]
        assert r["kappa_a_priori"] == pytest.approx(f / (n - 2 * f))
        assert r["kappa_a_priori"] == pytest.approx(float(kappa_lower_bound(n=n, f=f)))
        assert r["kappa_table"] == pytest.approx(float(kappa("nnm>>cwtm", n=n, f=f)))
        assert r["B2"] >= threshold * (1 - 1e-12)
        assert r["G2"] == pytest.approx(float(dgd.exact_gb(problem, B2=r["B2"])[0]))
        expected = gb_upper_bound_pl(
            kappa=r["kappa_hat"], G2=r["G2"], B2=r["B2"], mu=mu, L=lipschitz,
            steps=p["steps"], initial_gap=gap0,
        )  # fmt: skip
        assert r["bound_kappa_hat"] == pytest.approx(float(expected))
        lower = gb_lower_bound(n=n, f=f, G2=r["lower_G2"], B2=r["lower_B2"], mu=mu)
        assert r["lower_bound"] == pytest.approx(float(lower))
        # at the same pair the a-priori floor is 4 × the lower bound, so the smallest
        # a-priori bound is at least 4 × the smallest lower bound
        assert r["bound_a_priori"] >= 4 * r["lower_bound"] * (1 - 1e-9)
        assert r["final_gap"] >= 0 and r["kappa_hat"] > 0
        assert r["gap_over_bound"] == pytest.approx(r["final_gap"] / r["bound_kappa_hat"])
        ratio = r["mean_gradient_norm2"] / r["gradient_bound_kappa_hat"]
        assert r["gradient_over_bound"] == pytest.approx(ratio)


def test_infinite_bounds_stay_in_the_csv(tmp_path, data):
    # NNM∘CWTM's table κ is 2.48 at n = 8: κB² ≥ 0.70 × 2.48 > 1, so its bound is ∞
    assert all(math.isinf(r["bound_table"]) for r in data.rows)
    paths = reproduce("gb-ridge", out=tmp_path, size="tiny")
    rows = read_csv(paths["csv"])
    assert len(rows) == len(data.rows)
    assert all(math.isinf(r["bound_table"]) for r in rows)
    for column in ("final_gap", "bound_kappa_hat", "bound_a_priori", "bound_table", "lower_bound"):
        assert column in rows[0]


def test_checks_hold_on_the_correct_code(data):
    assert data.checks == {GAP: True, GRADIENT: True}
    assert data.parameters["finite_kappa_hat_bounds"] >= 1


def test_halved_gradient_bound_fails_its_check(monkeypatch):
    real = gb_upper_bound_nonconvex
    monkeypatch.setattr(gb_ridge, "gb_upper_bound_nonconvex", lambda **k: 0.5 * real(**k))
    checks = FIGURES["gb-ridge"].compute(TINY).checks
    assert checks[GRADIENT] is False and checks[GAP] is True


def test_shrunk_gap_bound_fails_its_check(monkeypatch):
    # the PL bound is loose by the conditioning here (gap ≤ 0.18 × bound, module docstring),
    # so the planted bug must shrink it by more than that to be seen
    real = gb_upper_bound_pl
    monkeypatch.setattr(gb_ridge, "gb_upper_bound_pl", lambda **k: 0.1 * real(**k))
    checks = FIGURES["gb-ridge"].compute(TINY).checks
    assert checks[GAP] is False and checks[GRADIENT] is True


def test_a_check_without_any_finite_bound_says_nothing(data):
    rows = [{**r, "bound_kappa_hat": math.inf, "gradient_bound_kappa_hat": math.inf}
            for r in data.rows]  # fmt: skip
    assert gb_ridge.agreement(rows) == {GAP: False, GRADIENT: False}
    worse = [dict(r) for r in data.rows]
    worse[0]["final_gap"] = 1.01 * worse[0]["bound_kappa_hat"]
    assert gb_ridge.agreement(worse)[GAP] is False

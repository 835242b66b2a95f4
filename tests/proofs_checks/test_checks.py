"""The checks hold on trilemma as it is, and catch deliberately wrong claims: a κ too small by
2×, an accountant that forgets composition, colluders ignored, a calibration that overshoots."""

import json
import math

import pytest
from hypothesis import given, settings

from trilemma import accountants
from trilemma.bounds import kappa_lower_bound, smea_spectral_kappa
from trilemma.cli import main
from trilemma.proofs_checks import BUDGETS, CheckReport, examples_for, maximise, run_checks
from trilemma.proofs_checks import robustness as robustness_checks
from trilemma.proofs_checks.accountants import (
    check_calibration,
    check_gaussian_composition,
    check_secldp_colluders,
)
from trilemma.proofs_checks.robustness import (
    KAPPA_SEARCHES,
    check_kappa_lower_bound,
    check_smea_spectral,
)
from trilemma.proofs_checks.strategies import (
    connected_graphs,
    graphs_with_colluders,
    quadratic_problems,
    robustness_inputs,
    worker_vectors,
)


@pytest.fixture(scope="module")
def small_run():
    return run_checks("all", budget="small", seed=0)


def test_every_check_passes_on_the_package(small_run):
    failed = [r.name for r in small_run if not r.passed]
    assert failed == []
    names = {r.name for r in small_run}
    assert {f"kappa:{label}" for label in KAPPA_SEARCHES} <= names
    assert {"audit:gaussian", "audit:dpsgd", "audit:secldp", "trilemma:limits"} <= names
    assert {"gb:upper-bound-pl", "gb:floor-above-lower-bound"} <= names
    for r in small_run:
        assert r.worst_ratio <= 1 + 1e-9
        assert r.examples >= 1


def test_tight_claims_are_reached(small_run):
    by_name = {r.name: r for r in small_run}
    # the lower bound f/(n − 2f) is attained exactly by the two-point instance
    assert by_name["kappa:lower-bound"].worst_ratio == pytest.approx(1.0, rel=1e-9)
    # the audit of a Gaussian at ε = 1 recovers a sizeable part of ε
    assert by_name["audit:gaussian"].worst_ratio > 0.4


# ---------------------------------------------------------------- planted bugs


@pytest.mark.parametrize("seed", [0, 3])
def test_kappa_half_the_spectral_constant_is_caught(seed):
    # the constant is attained (n = 3, f = 1), so halving it doubles the worst ratio. Measured
    # with 25 examples and the continuous stage: 1.998, 2.000, 1.999, 1.999, 1.999 for seeds
    # 0-4; hypothesis alone needed 300 examples for 1.87, 1.06, 1.20, 1.95, 1.93.
    result = check_smea_spectral(
        examples=25, seed=seed, claimed=lambda n, f: 0.5 * float(smea_spectral_kappa(n=n, f=f))
    )
    assert not result.passed
    case = result.counterexample
    assert case["kappa_sp_hat"] > case["kappa_sp"]
    assert result.worst_ratio > 1.9


def test_a_lower_bound_twice_too_high_is_caught():
    result = check_kappa_lower_bound(examples=25, seed=0, claimed=lambda n, f: 2 * f / (n - 2 * f))
    assert not result.passed
    assert result.worst_ratio == pytest.approx(2.0, rel=1e-9)


def test_an_accountant_that_forgets_composition_is_caught():
    def forgetful(*, noise_multiplier, delta, compositions):
        return accountants.gaussian_epsilon(noise_multiplier=noise_multiplier, delta=delta)

    result = check_gaussian_composition(examples=25, seed=0, epsilon=forgetful)
    assert not result.passed
    assert result.counterexample["compositions"] > 1


def test_an_accountant_that_ignores_colluders_is_caught():
    def optimistic(graph, *, colluders=(), **kwargs):
        # claims the colluders' view is as private as the honest-subgraph one... of the
        # colluders removed from the graph *and* their edges kept: i.e. it ignores them
        return accountants.secldp_epsilon(graph, **kwargs) * (0.5 if colluders else 1.0)

    result = check_secldp_colluders(examples=25, seed=0, epsilon=optimistic)
    assert not result.passed


def test_a_calibration_that_overshoots_is_caught():
    def overshooting(**kwargs):
        return 0.8 * accountants.calibrate_dpsgd(**kwargs)

    result = check_calibration(examples=5, seed=0, calibrate=overshooting)
    assert not result.passed
    assert result.counterexample["epsilon"] > result.counterexample["target_epsilon"]


# ---------------------------------------------------------------- machinery


def test_maximise_finds_the_maximum_and_counts():
    from hypothesis import strategies as st

    ratio, case, count = maximise(
        st.integers(0, 100), lambda k: (k / 100, {"k": k}), examples=60, seed=0
    )
    assert count == 60
    assert ratio == case["k"] / 100
    assert ratio >= 0.9  # targeting drives the search to the top of the range


def test_budgets():
    assert examples_for("small") == BUDGETS["small"] < BUDGETS["medium"] < BUDGETS["large"]
    assert examples_for("40") == 40
    with pytest.raises(ValueError, match="budget='tiny'"):
        examples_for("tiny")
    with pytest.raises(ValueError, match="budget=0"):
        examples_for(0)
    with pytest.raises(ValueError, match="group='nope'"):
        run_checks("nope")


def test_report_row_is_json_ready():
    report = CheckReport("x", "s", "src", 3, 0.5)
    row = report.as_row()
    assert row["passed"] is True and row["counterexample"] is None
    json.dumps(row)


def test_cli_check_exit_codes(capsys, monkeypatch):
    assert main(["check", "trilemma", "--budget", "5", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["check"] for row in rows] == ["trilemma:limits", "trilemma:monotone"]
    # a lower bound claimed twice too high makes the robustness group fail: exit status 1
    monkeypatch.setattr(
        robustness_checks, "kappa_lower_bound", lambda n, f: 2 * kappa_lower_bound(n=n, f=f)
    )
    assert main(["check", "robustness", "--budget", "5", "--json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    failed = [row for row in rows if not row["passed"]]
    assert [row["check"] for row in failed] == ["kappa:lower-bound"]
    case = failed[0]["counterexample"]
    assert case["lower_bound"] > case["kappa_hat"]


# ---------------------------------------------------------------- strategies


@settings(max_examples=30, database=None, deadline=None)
@given(robustness_inputs(max_n=9))
def test_robustness_inputs_respect_the_definition(case):
    assert 2 * case.f < case.n
    assert int(case.honest.sum()) == case.n - case.f
    assert case.x.shape[0] == case.n and bool(case.x.isfinite().all())
    assert float(case.x.abs().max()) <= 10.0


@settings(max_examples=20, database=None, deadline=None)
@given(worker_vectors(6, 3, garbage=2))
def test_worker_vectors_put_garbage_first(x):
    assert x.shape == (6, 3)
    assert bool(x[2:].isfinite().all())
    assert not bool((x[:2].abs() < 1e30).all())


@settings(max_examples=20, database=None, deadline=None)
@given(connected_graphs(max_nodes=10), graphs_with_colluders(max_nodes=8))
def test_graphs_are_connected_and_leave_honest_nodes(graph, pair):
    import networkx as nx

    assert nx.is_connected(graph)
    network, colluders = pair
    assert len(colluders) < network.number_of_nodes()
    assert set(colluders) <= set(network.nodes)


@settings(max_examples=20, database=None, deadline=None)
@given(quadratic_problems())
def test_quadratic_problems_have_the_stated_heterogeneity(problem):
    import numpy as np

    # ∇L_i(θ) − ∇L_H(θ) = A(θ̄* − θ_i*) at every θ: G₀² is its mean squared norm
    rng = np.random.default_rng(0)
    a, optima = problem.hessian, problem.optima
    for theta in rng.normal(size=(3, a.shape[0])):
        gradients = (theta - optima) @ a.T
        spread = ((gradients - gradients.mean(axis=0)) ** 2).sum(axis=1).mean()
        assert spread == pytest.approx(problem.g2, rel=1e-9, abs=1e-12)
    assert np.all(np.linalg.eigvalsh(a) > 0)
    assert math.isfinite(problem.g2)


def test_dgd_without_byzantine_workers_is_plain_gradient_descent():
    import numpy as np

    from trilemma.attacks import SignFlipping
    from trilemma.proofs_checks.heterogeneity import run_dgd
    from trilemma.proofs_checks.strategies import QuadraticProblem

    a = np.array([[2.0, 0.5], [0.5, 1.0]])
    optima = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    problem = QuadraticProblem(hessian=a, optima=optima)
    theta0 = np.array([5.0, -3.0])
    gap = run_dgd(problem, rule_name="cwtm", f=0, attack=SignFlipping(), steps=7, theta0=theta0)
    # closed form: e_T = (I − A/L)^T e_0 around the mean optimum, gap = ½ e_Tᵀ A e_T
    step = np.eye(2) - a / np.linalg.eigvalsh(a)[-1]
    error = np.linalg.matrix_power(step, 7) @ (theta0 - optima.mean(axis=0))
    assert gap == pytest.approx(0.5 * error @ a @ error, rel=1e-12)

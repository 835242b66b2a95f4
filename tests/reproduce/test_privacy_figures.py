"""The privacy figures (accountants-dpsgd, secldp-graphs, podc-batch-size) at tiny size: values
against independent computations, and every declared check made to fail by a planted bug."""

import dataclasses
import functools
import math

import networkx as nx
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from trilemma.accountants import gaussian_epsilon
from trilemma.reproduce import FIGURES, Settings, accountants_dpsgd, podc_batch_size, secldp_graphs

TINY = Settings(size="tiny", seed=3)


def _compute(name):
    return FIGURES[name].compute(TINY)


@pytest.fixture(scope="module")
def dpsgd():
    return _compute("accountants-dpsgd")


@pytest.fixture(scope="module")
def secldp():
    return _compute("secldp-graphs")


@pytest.fixture(scope="module")
def podc():
    return _compute("podc-batch-size")


def _classic(rho, delta=1e-5):
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


# ---------------------------------------------------------------- accountants-dpsgd


def test_dpsgd_correct_code_agrees(dpsgd):
    assert dpsgd.checks == {
        accountants_dpsgd.PLD_TIGHTER: True,
        accountants_dpsgd.STEPS_GROW: True,
        accountants_dpsgd.AUDIT_SOUND: True,
    }


def test_dpsgd_reference_values(dpsgd):
    at = {
        (r["noise_multiplier"], r["sample_rate"], r["steps"], r["method"]): r["epsilon"]
        for r in dpsgd.rows
        if r["kind"] == "curve"
    }
    # computed with dp-accounting 0.6.0 (THEORY.md §6)
    assert at[(1.1, 0.01, 10_000, "rdp")] == pytest.approx(5.632011, abs=1e-6)
    assert at[(1.1, 0.01, 10_000, "pld")] == pytest.approx(5.192620, abs=1e-6)


def test_dpsgd_full_batch_audit_is_a_composed_gaussian(dpsgd):
    # q = 1: T Gaussian steps of multiplier σ are one Gaussian of multiplier σ/√T, whose ε the
    # analytic Gaussian mechanism (Balle & Wang 2018) gives exactly
    row = next(r for r in dpsgd.rows if r["kind"] == "audit" and r["sample_rate"] == 1.0)
    exact = gaussian_epsilon(
        noise_multiplier=row["noise_multiplier"] / math.sqrt(row["steps"]), delta=1e-5
    )
    assert row["epsilon_pld"] == pytest.approx(exact, rel=2e-3)
    assert 0 < row["epsilon_lower"] < exact
    assert row["tightness_pld"] == pytest.approx(row["epsilon_lower"] / row["epsilon_pld"])
    assert row["tightness_rdp"] == pytest.approx(row["epsilon_lower"] / row["epsilon_rdp"])


def test_dpsgd_accountant_with_a_tenth_of_the_steps_fails_its_audit(monkeypatch):
    real = accountants_dpsgd.dpsgd_epsilon

    def tenth(**kwargs):
        return real(**{**kwargs, "steps": max(1, kwargs["steps"] // 10)})

    monkeypatch.setattr(accountants_dpsgd, "dpsgd_epsilon", tenth)
    assert not _compute("accountants-dpsgd").checks[accountants_dpsgd.AUDIT_SOUND]


def test_dpsgd_half_noise_in_the_mechanism_fails_its_audit(monkeypatch):
    half = functools.partial(accountants_dpsgd.audit_dpsgd_step, noise_scale=0.5)
    monkeypatch.setattr(accountants_dpsgd, "audit_dpsgd_step", half)
    assert not _compute("accountants-dpsgd").checks[accountants_dpsgd.AUDIT_SOUND]


def test_dpsgd_row_checks_fail_on_corrupted_rows(dpsgd):
    looser = [
        {**r, "epsilon": 1.2 * r["epsilon"]} if r.get("method") == "pld" else r for r in dpsgd.rows
    ]
    assert not accountants_dpsgd.checks(looser)[accountants_dpsgd.PLD_TIGHTER]
    # ε of the first curve read backwards: it falls with the number of steps
    first = [r for r in dpsgd.rows if r["kind"] == "curve" and r["sample_rate"] == 0.01]
    backwards = dict(
        zip((id(r) for r in first), reversed([r["epsilon"] for r in first]), strict=True)
    )
    flipped = [{**r, "epsilon": backwards[id(r)]} if id(r) in backwards else r for r in dpsgd.rows]
    assert not accountants_dpsgd.checks(flipped)[accountants_dpsgd.STEPS_GROW]


# ---------------------------------------------------------------- secldp-graphs


def _rows(data, kind, case):
    return [r for r in data.rows if r["kind"] == kind and r["case"] == case]


def test_secldp_correct_code_agrees(secldp):
    assert all(secldp.checks.values())
    assert len(secldp.checks) == 6


def test_secldp_complete_graph_against_a_dense_inverse(secldp):
    laplacian = nx.laplacian_matrix(nx.complete_graph(16)).toarray()
    for row in _rows(secldp, "accounting", "complete:16"):
        covariance = 17.827**2 * np.eye(16) + row["sigma_cor"] ** 2 * laplacian
        exact = np.linalg.inv(covariance).diagonal().max()
        assert row["inverse_variance"] == pytest.approx(exact, rel=1e-9)
        assert row["k_n_formula"] == pytest.approx(exact, rel=1e-9)
        # λ₂(K_n) = n: the spectral bound is attained
        assert row["spectral_bound"] == pytest.approx(exact, rel=1e-9)


def test_secldp_limits_by_hand(secldp):
    rho = 2 * 3500 / 17.827**2
    for row in (r for r in secldp.rows if r["kind"] == "accounting"):
        assert row["local_limit"] == pytest.approx(_classic(rho), rel=1e-12)
        if row["sigma_cor"] == 0.0:  # no edge secrets: every node is locally private
            assert row["epsilon"] == pytest.approx(row["local_limit"], rel=1e-9)
    # colluders {0, 8} leave two honest paths of 7 nodes; {0, 2} leave node 1 alone
    assert {
        r["smallest_component"] for r in _rows(secldp, "accounting", "ring:16, colluders {0, 8}")
    } == {7}
    isolated = _rows(secldp, "accounting", "ring:16, colluders {0, 2}")
    assert all(r["epsilon"] == pytest.approx(_classic(rho), rel=1e-9) for r in isolated)
    seven = _rows(secldp, "accounting", "ring:16, colluders {0, 8}")[0]
    assert seven["central_limit"] == pytest.approx(_classic(rho / 7), rel=1e-12)


def test_secldp_isolated_node_one_round_is_a_plain_gaussian(secldp):
    # node 1 between colluders 0 and 2: Σ_H restricted to it is σ² = 4, sensitivity 2C = 2, so
    # one round is the Gaussian mechanism of multiplier 1 (ε = 4.377178, THEORY §6)
    for row in _rows(secldp, "one_round", "ring:16, colluders {0, 2}"):
        assert row["epsilon_pld"] == pytest.approx(4.377178, rel=1e-3)
    assert gaussian_epsilon(noise_multiplier=1.0, delta=1e-5) == pytest.approx(4.377178, abs=1e-6)


def _ignoring_colluders(function):
    def planted(*args, **kwargs):
        return function(*args, **{**kwargs, "colluders": ()})

    return planted


def test_secldp_colluders_ignored_fails_the_audit_and_the_limits(monkeypatch):
    for name in ("secldp_epsilon", "secldp_report"):
        monkeypatch.setattr(secldp_graphs, name, _ignoring_colluders(getattr(secldp_graphs, name)))
    checks = _compute("secldp-graphs").checks
    assert not checks[secldp_graphs.AUDIT_SOUND]
    assert not checks[secldp_graphs.LIMITS]


def test_secldp_half_noise_in_the_mechanism_fails_the_audit(monkeypatch):
    half = functools.partial(secldp_graphs.audit_secldp_round, noise_scale=0.5)
    monkeypatch.setattr(secldp_graphs, "audit_secldp_round", half)
    assert not _compute("secldp-graphs").checks[secldp_graphs.AUDIT_SOUND]


def test_secldp_misscaled_k_n_formula_fails(monkeypatch):
    real = secldp_graphs.complete_graph_inverse_variance

    def misscaled(*, n, sigma, sigma_cor):  # n σ_cor² written as σ_cor²
        return real(n=n, sigma=sigma, sigma_cor=sigma_cor / math.sqrt(n))

    monkeypatch.setattr(secldp_graphs, "complete_graph_inverse_variance", misscaled)
    assert not _compute("secldp-graphs").checks[secldp_graphs.K_N]


def test_secldp_halved_spectral_bound_fails(monkeypatch):
    real = secldp_graphs.secldp_report

    def halved(*args, **kwargs):
        report = real(*args, **kwargs)
        parts = tuple(
            dataclasses.replace(c, spectral_bound=0.5 * c.spectral_bound) for c in report.components
        )
        return dataclasses.replace(report, components=parts)

    monkeypatch.setattr(secldp_graphs, "secldp_report", halved)
    assert not _compute("secldp-graphs").checks[secldp_graphs.BOUNDS_HOLD]


def test_secldp_row_checks_fail_on_corrupted_rows(secldp):
    rows = secldp.rows
    looser = [
        {**r, "epsilon_pld": 1.2 * r["epsilon_rdp"]} if "epsilon_rdp" in r else r for r in rows
    ]
    assert not secldp_graphs.checks(looser)[secldp_graphs.CONVERSIONS]
    # a bump: the ring's ε at the largest σ_cor raised above its value at σ_cor = 0
    ring = _rows(secldp, "accounting", "ring:16")
    last = max(ring, key=lambda r: r["sigma_cor"])
    bumped = [{**r, "epsilon": 2 * r["local_limit"]} if r is last else r for r in rows]
    checks = secldp_graphs.checks(bumped)
    assert not checks[secldp_graphs.DECREASING]
    assert not checks[secldp_graphs.LIMITS]


def test_secldp_reference_ring_setting(secldp):
    # the reference code's ring-16 example, σ_cor = 188 (THEORY §6): classic 10.2929, and the
    # tighter conversions of the same rounds, RDP ≈ 9.47 and PLD ≈ 8.82
    row = next(r for r in _rows(secldp, "accounting", "ring:16") if r["sigma_cor"] == 188.0)
    assert row["epsilon"] == pytest.approx(10.292886, abs=1e-6)
    assert row["epsilon_rdp"] == pytest.approx(9.47, abs=0.01)
    assert row["epsilon_pld"] == pytest.approx(8.82, abs=0.01)


# ---------------------------------------------------------------- podc-batch-size


def test_podc_correct_code_agrees(podc):
    assert podc.checks == {podc_batch_size.SQRT_D: True, podc_batch_size.CROSSING: True}


def test_podc_gradient_norm_at_zero_by_hand(podc):
    # two-class softmax at θ = 0: every class has probability 1/2, so column k of the gradient is
    # mean_j x_j (1/2 − [y_j = k]) on standardised features plus a bias column
    bunch = load_breast_cancer()
    x = (bunch.data - bunch.data.mean(0)) / bunch.data.std(0)
    x = np.hstack([x, np.ones((len(x), 1))])
    residual = 0.5 - np.eye(2)[bunch.target]
    norm = np.linalg.norm(x.T @ residual / len(x))
    start = [r for r in podc.rows if r["kind"] == "crossing" and r["gd_steps"] == 0]
    assert start and all(r["gradient_norm"] == pytest.approx(norm, rel=1e-9) for r in start)
    assert podc.parameters["d"] == 62


def test_podc_measured_ratio_matches_the_variance_by_hand(podc):
    # E‖G − EG‖² = V/b + d s², s = (2C/b)·√(2 ln(1.25/δ))/ε (Dwork & Roth, Thm. A.1), within the
    # Monte Carlo error of 400 draws
    for row in (r for r in podc.rows if r["kind"] == "measured" and r["batch_size"] in (1, 100)):
        b, eps = row["batch_size"], row["epsilon"]
        noise = 0.0 if math.isinf(eps) else (2 / b) * math.sqrt(2 * math.log(1.25e6)) / eps
        expected = math.sqrt(row["gradient_variance"] / b + 62 * noise**2) / row["gradient_norm"]
        assert row["vn_ratio"] == pytest.approx(expected, rel=0.1)


def test_podc_misscaled_noise_fails_the_crossing(monkeypatch):
    real = podc_batch_size.gaussian_noise_std
    monkeypatch.setattr(podc_batch_size, "gaussian_noise_std", lambda **k: 0.5 * real(**k))
    assert not _compute("podc-batch-size").checks[podc_batch_size.CROSSING]


def test_podc_linear_in_d_fails_the_sqrt_d_check(monkeypatch):
    real = podc_batch_size.vn_required_batch_size

    def linear(**kwargs):
        return real(**{**kwargs, "d": np.asarray(kwargs["d"]) ** 2})

    monkeypatch.setattr(podc_batch_size, "vn_required_batch_size", linear)
    assert not _compute("podc-batch-size").checks[podc_batch_size.SQRT_D]

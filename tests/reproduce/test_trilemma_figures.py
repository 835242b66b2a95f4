"""The trilemma figures at tiny size: values against independent computations, and one planted
bug per declared check that makes the check report disagreement."""

import dataclasses
import math

import numpy as np
import pytest
from dp_accounting import get_sigma_gaussian

import trilemma.estimators.montecarlo as montecarlo
import trilemma.estimators.protocols as protocols
from trilemma.estimators import TracingResult
from trilemma.reproduce import (
    FIGURES,
    Settings,
    trilemma_byzantine,
    trilemma_dimension,
    trilemma_tracing,
)
from trilemma.reproduce._mean_estimation import band, calibration_holds, upper_bounds_hold

TINY = Settings(size="tiny", seed=3)
MEAN_FIGURES = ("trilemma-dimension", "trilemma-byzantine", "trilemma-epsilon", "trilemma-records")
UPPER = "measured error ≤ upper bound at every point"
CALIBRATION = "honest average's error = d s²/h (analytic Gaussian s) within 2 CI at every point"


@pytest.fixture(scope="module")
def computed():
    """Each trilemma figure computed once at tiny size."""
    return {name: FIGURES[name].compute(TINY) for name in (*MEAN_FIGURES, "trilemma-tracing")}


def _check(data, start):
    (statement,) = [s for s in data.checks if s.startswith(start)]
    return data.checks[statement]


def _rows(data, **where):
    return [r for r in data.rows if all(r[k] == v for k, v in where.items())]


def _corrupt(rows, **scales):
    return [{**r, **{k: r[k] * v for k, v in scales.items()}} for r in rows]


@pytest.mark.parametrize("name", [*MEAN_FIGURES, "trilemma-tracing"])
def test_every_check_agrees_on_the_correct_code(computed, name):
    assert computed[name].checks and all(computed[name].checks.values())


@pytest.mark.parametrize("name", MEAN_FIGURES)
def test_floor_lower_bound_and_trivial_line_from_independent_formulas(computed, name):
    for row in computed[name].rows:
        # s = 2C σ(ε, δ)/m with σ from dp_accounting's analytic Gaussian, floor d s²/h
        s = 2 * row["clip"] * get_sigma_gaussian(row["epsilon"], row["delta"]) / row["m"]
        h = row["n"] - row["byzantine"]
        assert row["h"] == h and row["noise_std"] == pytest.approx(s, rel=1e-9)
        assert row["floor"] == pytest.approx(row["d"] * s**2 / h, rel=1e-9)
        rate = (row["d"] + row["f"]) * math.log(1 / row["delta"])
        rate /= row["epsilon"] ** 2 * row["n"] * row["m"] ** 2
        assert row["lower_bound"] == pytest.approx(min(1.0, rate), rel=1e-12)
        assert row["error_ratio"] == pytest.approx(row["error_mean"] / row["floor"], rel=1e-12)
        assert row["trivial_ratio"] == pytest.approx(1.0 / row["floor"], rel=1e-12)
        assert row["attack"] == ("strongest" if row["f"] > 0 else "none")


def test_naive_ratio_grows_with_h_and_smea_stays_below_its_bound(computed):
    data = computed["trilemma-dimension"]
    # κ·trace: CWTM's ratio ≈ κh grows from n = 10 to n = 20 at the same f/n
    d_max = max(data.parameters["d"])
    small, large = sorted(_rows(data, rule="cwtm", d=d_max), key=lambda r: r["n"])
    assert large["error_ratio"] > small["error_ratio"]
    assert data.parameters["cwtm_growth_small_to_large_n"] == pytest.approx(
        large["error_ratio"] / small["error_ratio"]
    )
    assert data.parameters["cwtm_growth_required"] == pytest.approx(math.sqrt(16 / 8))
    for row in _rows(data, rule="smea"):
        assert row["error_mean"] < row["upper_bound"] and row["bound_kind"] == "upper"


def test_byzantine_rules_returning_the_mean_at_f0_are_exact(computed):
    data = computed["trilemma-byzantine"]
    for rule in ("smea", "cwtm", "nnm>>cwtm"):
        for row in _rows(data, rule=rule, f=0):
            assert row["bound_kind"] == "exact"
            assert row["upper_bound"] == pytest.approx(row["floor"], rel=1e-9)


def test_records_slopes_are_minus_two(computed):
    data = computed["trilemma-records"]
    for key, slope in data.parameters["slopes"].items():
        assert slope == pytest.approx(-2.0, abs=0.25), key
    row = data.rows[0]
    mine = [r for r in data.rows if (r["rule"], r["n"]) == (row["rule"], row["n"])]
    expected = np.polyfit(
        np.log([r["m"] for r in mine]), np.log([r["error_mean"] for r in mine]), 1
    )
    assert row["slope"] == pytest.approx(expected[0], rel=1e-12)


# --- planted bugs: each declared check reports disagreement --------------------------------------


def test_upper_bound_check_fails_when_the_bound_is_fed_a_third_of_the_noise(monkeypatch):
    real = montecarlo.upper_bound

    def bound(protocol, *, d, noise_std, averages):
        return real(protocol, d=d, noise_std=noise_std / 3, averages=averages)

    monkeypatch.setattr(montecarlo, "upper_bound", bound)
    data = FIGURES["trilemma-dimension"].compute(TINY)
    assert data.checks[UPPER] is False


@pytest.mark.parametrize("name", MEAN_FIGURES)
def test_upper_bound_check_fails_on_bounds_below_the_measurement(computed, name):
    rows = computed[name].rows
    assert upper_bounds_hold(rows)
    # bounds scaled just below the tightest measured ratio (a bound too small by that factor)
    worst = max(r["error_mean"] / r["upper_bound"] for r in rows if r["bound_kind"] == "upper")
    assert not upper_bounds_hold(_corrupt(rows, upper_bound=0.9 * worst))


def test_calibration_check_fails_when_the_noise_is_mis_scaled(monkeypatch):
    real = protocols.DistributedMeanEstimation.noise_std
    monkeypatch.setattr(
        protocols.DistributedMeanEstimation, "noise_std", lambda self, m: 0.5 * real(self, m)
    )
    data = FIGURES["trilemma-byzantine"].compute(TINY)
    assert data.checks[CALIBRATION] is False


@pytest.mark.parametrize("name", MEAN_FIGURES)
def test_calibration_check_fails_on_a_shifted_honest_error(computed, name):
    rows = computed[name].rows
    assert calibration_holds(rows)
    assert not calibration_holds(_corrupt(rows, honest_error_mean=1.5))


def test_dimension_band_fails_when_the_error_grows_as_d_squared(computed):
    rows = computed["trilemma-dimension"].rows
    smea = [r for r in rows if r["rule"] == "smea"]
    assert band(smea, "smea") <= trilemma_dimension.SMEA_BAND
    # an estimator whose error grew as d² instead of d (e.g. noise std ∝ d)
    squared = [{**r, "error_mean": r["error_mean"] * r["d"]} for r in smea]
    assert band(squared, "smea") > trilemma_dimension.SMEA_BAND


def test_dimension_growth_fails_for_a_rule_that_pays_kappa_lambda_max(computed):
    data = computed["trilemma-dimension"]
    assert _check(data, "κ·trace")
    # a κ_sp·λ_max rule (SMEA's law) keeps its ratio when n grows: plant it in the large panel
    n_large = max(r["n"] for r in data.rows)
    small = {
        r["d"]: r["error_ratio"] for r in data.rows if r["rule"] == "cwtm" and r["n"] != n_large
    }
    flat = [
        {**r, "error_ratio": small[r["d"]]} if r["rule"] == "cwtm" and r["n"] == n_large else r
        for r in data.rows
    ]
    growth, required = trilemma_dimension.cwtm_growth(flat)
    assert growth == pytest.approx(1.0) and growth < required


def test_byzantine_growth_fails_when_colluders_are_ignored(monkeypatch):
    real = trilemma_byzantine.point

    def no_attack(rule, *, n, f, d, m, epsilon, **labels):
        honest = real(rule, n=n, f=f, d=d, m=m, epsilon=epsilon, **labels)
        protocol = dataclasses.replace(honest.protocol, attack=None)
        return dataclasses.replace(honest, protocol=protocol)

    monkeypatch.setattr(trilemma_byzantine, "point", no_attack)
    data = FIGURES["trilemma-byzantine"].compute(TINY)
    assert _check(data, "robustness term") is False


def test_epsilon_band_fails_when_the_noise_scales_as_one_over_root_epsilon(monkeypatch):
    real = protocols.DistributedMeanEstimation.noise_std
    monkeypatch.setattr(
        protocols.DistributedMeanEstimation,
        "noise_std",
        lambda self, m: real(self, m) * math.sqrt(self.epsilon),
    )
    data = FIGURES["trilemma-epsilon"].compute(TINY)
    assert _check(data, "SMEA: max/min over ε ≤ 1") is False


def test_records_slope_fails_when_the_noise_scales_as_one_over_root_m(monkeypatch):
    real = protocols.DistributedMeanEstimation.noise_std
    monkeypatch.setattr(
        protocols.DistributedMeanEstimation, "noise_std", lambda self, m: real(self, m) * m**0.5
    )
    data = FIGURES["trilemma-records"].compute(TINY)
    assert _check(data, "every rule's error falls as m^slope") is False


# --- tracing -------------------------------------------------------------------------------


def test_dp_roc_limit_is_the_kairouz_region():
    # δ = 0, ε = ln 2: min(2·FPR, 1 − (1 − FPR)/2)
    fpr = np.array([0.0, 0.2, 0.5, 0.8, 1.0])
    expected = np.minimum(2 * fpr, 1 - (1 - fpr) / 2)
    assert trilemma_tracing.dp_roc_limit(fpr, epsilon=math.log(2), delta=0.0) == pytest.approx(
        expected
    )
    # δ > 0 lifts the curve at FPR = 0 to δ
    assert trilemma_tracing.dp_roc_limit(0.0, epsilon=1.0, delta=0.01) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="epsilon"):
        trilemma_tracing.dp_roc_limit(0.1, epsilon=0.0, delta=0.0)


def _scores(members, outsiders):
    return TracingResult(
        member_scores=members,
        non_member_scores=outsiders,
        fpr=np.array([0.0, 1.0]),
        tpr=np.array([0.0, 1.0]),
        auc=0.5,
        advantage=0.0,
        error=0.0,
    )


def test_roc_violation_separates_identical_from_separated_scores():
    rng = np.random.default_rng(0)
    same = _scores(rng.normal(size=4000), rng.normal(size=4000))
    apart = _scores(rng.normal(3.0, 1.0, size=4000), rng.normal(size=4000))
    kw = dict(trials=200, epsilon=1.0, delta=1e-5, alpha=0.05)
    assert trilemma_tracing.roc_violation(same, **kw) < 0
    assert trilemma_tracing.roc_violation(apart, **kw) > 0
    # fewer trials widen the allowance: the same data then violate by less
    assert trilemma_tracing.roc_violation(apart, **{**kw, "trials": 20}) < (
        trilemma_tracing.roc_violation(apart, **kw)
    )


def test_tracing_rows(computed):
    data = computed["trilemma-tracing"]
    for series in dict.fromkeys(r["series"] for r in data.rows):
        mine = [r for r in data.rows if r["series"] == series]
        fpr = np.array([r["fpr"] for r in mine])
        tpr = np.array([r["tpr"] for r in mine])
        assert np.all(np.diff(fpr) > 0) and np.all(np.diff(tpr) >= -1e-12)
        if mine[0]["privacy"] == "none":
            assert mine[0]["error"] == pytest.approx(0.0, abs=1e-20)
            continue
        eps = mine[0]["epsilon"]
        limit = np.minimum(np.exp(eps) * fpr + 1e-5, 1 - np.exp(-eps) * (1 - 1e-5 - fpr))
        assert [r["dp_limit_tpr"] for r in mine] == pytest.approx(np.clip(limit, 0, 1))
        # d ≫ N²: the one-way-marginal lower bound is C² = 1, and private errors exceed it
        assert mine[0]["lower_bound"] == 1.0 and mine[0]["error"] > 1.0


def test_region_check_fails_when_the_noise_is_divided_by_30(monkeypatch):
    real = protocols.DistributedMeanEstimation.noise_std
    monkeypatch.setattr(
        protocols.DistributedMeanEstimation, "noise_std", lambda self, m: real(self, m) / 30
    )
    data = FIGURES["trilemma-tracing"].compute(TINY)
    assert _check(data, "every private estimator's ROC") is False


def test_traced_check_fails_when_the_baseline_is_privatised(monkeypatch):
    real = trilemma_tracing.tracing_attack

    def attack(protocol, **kwargs):
        if protocol.privacy == "none":
            protocol = dataclasses.replace(protocol, privacy="central")
        return real(protocol, **kwargs)

    monkeypatch.setattr(trilemma_tracing, "tracing_attack", attack)
    data = FIGURES["trilemma-tracing"].compute(TINY)
    assert _check(data, "non-private mean is traced") is False

"""Empirical privacy audits: confidence bounds, the ε lower bound, soundness of the accountants
on the mechanisms they describe, power at ε = 1 and detection of planted accounting bugs."""

import math

import numpy as np
import pytest
from scipy import stats

from trilemma.accountants import (
    calibrate_gaussian,
    dpsgd_epsilon,
    gaussian_epsilon,
    secldp_epsilon,
)
from trilemma.accountants.graphs import as_topology
from trilemma.accountants.secldp import honest_inverse_variances
from trilemma.proofs_checks.audit import (
    AuditResult,
    audit_dpsgd_step,
    audit_gaussian,
)
from trilemma.proofs_checks.audit_secldp import audit_secldp_round
from trilemma.proofs_checks.distinguishing import (
    AuditBound,
    clopper_pearson_upper,
    epsilon_lower_bound,
)

DELTA = 1e-5


# --- Clopper–Pearson ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 7, 100, 10_000])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_clopper_pearson_zero_successes_closed_form(n, confidence):
    # P[Binomial(n, p) = 0] = (1 − p)^n = 1 − c  ⇔  p = 1 − (1 − c)^(1/n)
    expected = 1.0 - (1.0 - confidence) ** (1.0 / n)
    got = float(clopper_pearson_upper(0, n, confidence=confidence))
    assert got == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(("k", "n"), [(1, 10), (3, 10), (9, 10), (50, 200), (17, 10_000)])
def test_clopper_pearson_matches_scipy_binomtest(k, n):
    confidence = 0.95
    reference = stats.binomtest(k, n, alternative="less").proportion_ci(
        confidence_level=confidence, method="exact"
    )
    got = float(clopper_pearson_upper(k, n, confidence=confidence))
    assert got == pytest.approx(reference.high, rel=1e-9)
    # defining property: the upper bound leaves probability 1 − c at or below k
    assert stats.binom.cdf(k, n, got) == pytest.approx(1.0 - confidence, rel=1e-7)


def test_clopper_pearson_all_successes_and_broadcasting():
    got = clopper_pearson_upper(np.array([0, 5, 10]), 10, confidence=0.95)
    assert got.shape == (3,)
    assert got[2] == 1.0
    assert np.all(np.diff(got) > 0)
    assert clopper_pearson_upper(4, 4, confidence=0.5) == 1.0


def test_clopper_pearson_coverage():
    rng = np.random.default_rng(0)
    n, p, confidence = 200, 0.03, 0.9
    counts = rng.binomial(n, p, size=20_000)
    covered = np.mean(clopper_pearson_upper(counts, n, confidence=confidence) >= p)
    assert covered >= confidence  # exact intervals are conservative


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"successes": 11, "trials": 10}, ValueError, "successes"),
        ({"successes": -1, "trials": 10}, ValueError, "successes"),
        ({"successes": 0, "trials": 0}, ValueError, "trials"),
        ({"successes": 1.0, "trials": 10}, TypeError, "successes"),
        ({"successes": 1, "trials": True}, TypeError, "trials"),
        ({"successes": 1, "trials": 10, "confidence": 1.0}, ValueError, "confidence"),
        ({"successes": 1, "trials": 10, "confidence": float("nan")}, ValueError, "confidence"),
    ],
)
def test_clopper_pearson_rejects_bad_input(kwargs, error, match):
    kwargs = {"confidence": 0.95, **kwargs}
    with pytest.raises(error, match=match):
        clopper_pearson_upper(kwargs.pop("successes"), kwargs.pop("trials"), **kwargs)


# --- ε lower bound from scores -----------------------------------------------------------------


def _randomized_response_scores(n, flips):
    """Bits that a randomized response flips: each half holds exactly ``flips`` flipped bits."""
    half = np.zeros(n // 2)
    half[:flips] = 1.0
    without = np.concatenate([half, half])  # "1" = says present: a false positive
    present = 1.0 - without  # "0" = says absent: a false negative
    return without, present


def test_epsilon_lower_bound_on_randomized_response_by_hand():
    # Randomized response with flip rate p is exactly ln((1 − p)/p)-DP with δ = 0.
    n, flips = 20_000, 1000
    without, present = _randomized_response_scores(n, flips)
    bound = epsilon_lower_bound(without, present, delta=0.0, confidence=0.95)
    assert bound.fpr == bound.fnr == flips / (n // 2)
    level = math.sqrt(0.95)
    upper = stats.beta.ppf(level, flips + 1, n // 2 - flips)
    assert bound.fpr_upper == pytest.approx(upper, rel=1e-12)
    assert bound.fnr_upper == pytest.approx(upper, rel=1e-12)
    assert bound.epsilon_lower == pytest.approx(math.log((1.0 - upper) / upper), rel=1e-12)
    assert 0.0 <= bound.threshold < 1.0
    true_epsilon = math.log((1.0 - 0.1) / 0.1)
    assert 0.95 * true_epsilon < bound.epsilon_lower < true_epsilon
    assert bound.trials == (n // 2, n // 2)
    assert (bound.confidence, bound.delta) == (0.95, 0.0)


def test_epsilon_lower_bound_delta_lowers_the_bound():
    without, present = _randomized_response_scores(20_000, 1000)
    plain = epsilon_lower_bound(without, present, delta=0.0).epsilon_lower
    with_delta = epsilon_lower_bound(without, present, delta=0.05).epsilon_lower
    upper = float(clopper_pearson_upper(1000, 10_000, confidence=math.sqrt(0.95)))
    assert with_delta == pytest.approx(math.log((1.0 - 0.05 - upper) / upper), rel=1e-12)
    assert with_delta < plain


@pytest.mark.parametrize("shift", [0.5, 1.0, 2.0])
def test_epsilon_lower_bound_below_exact_gaussian_tradeoff(shift):
    # N(0, 1) vs N(μ, 1) is exactly the Gaussian mechanism of noise multiplier 1/μ.
    rng = np.random.default_rng(1)
    n = 400_000
    bound = epsilon_lower_bound(rng.normal(0, 1, n), rng.normal(shift, 1, n), delta=DELTA)
    true_epsilon = gaussian_epsilon(noise_multiplier=1.0 / shift, delta=DELTA)
    assert 0.4 * true_epsilon < bound.epsilon_lower < true_epsilon
    assert bound.fpr <= bound.fpr_upper and bound.fnr <= bound.fnr_upper


def test_epsilon_lower_bound_rarely_positive_without_leakage():
    # Identical distributions are 0-DP: ε_lower > 0 must happen with probability ≤ 5 %.
    rng = np.random.default_rng(2)
    positives = sum(
        epsilon_lower_bound(rng.normal(size=1000), rng.normal(size=1000), delta=0.0).epsilon_lower
        > 0
        for _ in range(200)
    )
    assert positives <= 15


def test_epsilon_lower_bound_certifies_on_held_out_halves_only():
    # first halves perfectly separated, second halves identical: the chosen test looks
    # perfect on the selection data, but the certificate must not believe it
    rng = np.random.default_rng(3)
    n = 4000
    without = np.concatenate([np.zeros(n), rng.normal(size=n)])
    present = np.concatenate([np.ones(n), rng.normal(size=n)])
    bound = epsilon_lower_bound(without, present, delta=0.0)
    assert 0.0 <= bound.threshold < 1.0  # perfect on the selection halves
    assert bound.trials == (n, n)
    assert bound.epsilon_lower < 0.2  # a perfect split would certify ε ≈ 6


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"scores_without": np.zeros((4, 2))}, ValueError, "scores_without"),
        ({"scores_with": np.zeros(1)}, ValueError, "scores_with"),
        ({"scores_with": np.array([0.0, np.nan, 1.0])}, ValueError, "scores_with"),
        ({"scores_without": np.array([0.0, np.inf])}, ValueError, "scores_without"),
        ({"scores_without": np.array(["a", "b"])}, TypeError, "scores_without"),
        ({"scores_with": np.array([True, False])}, TypeError, "scores_with"),
        ({"delta": 1.0}, ValueError, "delta"),
        ({"delta": -0.1}, ValueError, "delta"),
        ({"confidence": 0.0}, ValueError, "confidence"),
        ({"candidates": 0}, ValueError, "candidates"),
    ],
)
def test_epsilon_lower_bound_rejects_bad_input(kwargs, error, match):
    arguments = {"scores_without": np.zeros(10), "scores_with": np.ones(10), "delta": DELTA}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        epsilon_lower_bound(
            arguments.pop("scores_without"), arguments.pop("scores_with"), **arguments
        )


def _result(lower, claimed):
    bound = AuditBound(lower, 0.0, 0.1, 0.1, 0.2, 0.2, (10, 10), 0.95, DELTA)
    return AuditResult(mechanism="test", epsilon_claimed=claimed, bound=bound)


def test_audit_result_tightness_and_soundness():
    assert _result(1.0, 2.0).tightness == 0.5
    assert _result(1.0, 2.0).sound
    assert _result(2.0, 2.0).sound
    assert not _result(2.0 + 1e-9, 2.0).sound
    assert _result(0.0, 0.0).tightness == 0.0


# --- soundness: the accountants' claims survive the audits -------------------------------------


def test_gaussian_composition_is_sound():
    result = audit_gaussian(
        noise_multiplier=1.0, compositions=4, delta=DELTA, trials=250_000, seed=11
    )
    assert result.epsilon_claimed == pytest.approx(
        gaussian_epsilon(noise_multiplier=0.5, delta=DELTA), rel=1e-9
    )
    assert result.sound
    assert result.tightness > 0.4  # the audit is not vacuous either


def test_dpsgd_is_sound():
    result = audit_dpsgd_step(
        noise_multiplier=1.0, sample_rate=0.1, steps=5, delta=DELTA, trials=200_000, seed=12
    )
    assert result.epsilon_claimed == pytest.approx(
        dpsgd_epsilon(noise_multiplier=1.0, sample_rate=0.1, steps=5, delta=DELTA, method="pld")
    )
    assert result.sound
    assert result.bound.epsilon_lower > 0.5


def test_dpsgd_full_batch_is_sound():
    # q = 1 (no subsampling) is the T-fold Gaussian mechanism: log(1 − q) = −inf is handled
    result = audit_dpsgd_step(
        noise_multiplier=2.0, sample_rate=1.0, steps=4, delta=DELTA, trials=100_000, seed=13
    )
    assert result.epsilon_claimed == pytest.approx(
        gaussian_epsilon(noise_multiplier=1.0, delta=DELTA), rel=1e-2
    )
    assert result.sound
    assert result.tightness > 0.4


@pytest.mark.parametrize("colluders", [(), (0,), (1, 7)])
def test_secldp_round_is_sound(colluders):
    result = audit_secldp_round(
        "ring:8",
        sigma=1.0,
        sigma_cor=1.0,
        delta=DELTA,
        trials=100_000,
        seed=14,
        colluders=colluders,
    )
    assert result.epsilon_claimed == pytest.approx(
        secldp_epsilon(
            "ring:8",
            sigma=1.0,
            sigma_cor=1.0,
            clip=1.0,
            steps=1,
            delta=DELTA,
            colluders=colluders,
            method="pld",
        )
    )
    assert result.parameters["node"] not in colluders
    assert result.sound
    assert result.tightness > 0.4


def test_secldp_round_at_a_given_node():
    topology = as_topology("ring:8")
    result = audit_secldp_round(
        topology, sigma=1.0, sigma_cor=1.0, delta=DELTA, trials=50_000, seed=15, colluders=[0]
    )
    assert result.parameters["node"] in (1, 7)  # the neighbours of the colluder are the worst
    far = audit_secldp_round(
        topology,
        sigma=1.0,
        sigma_cor=1.0,
        clip=0.5,
        node=4,
        delta=DELTA,
        trials=50_000,
        seed=15,
        colluders=[0],
    )
    honest = np.array([1, 2, 3, 4, 5, 6, 7])
    reference = honest_inverse_variances(topology, 1.0, 1.0, honest)
    assert far.parameters["inverse_variance"] == pytest.approx(reference[3], rel=1e-10)
    assert far.parameters["inverse_variance"] < result.parameters["inverse_variance"]
    # one round at node 4 is a Gaussian mechanism of noise multiplier 1 / (2C √v)
    sigma_node = 1.0 / (2 * 0.5 * math.sqrt(reference[3]))
    assert far.epsilon_claimed == pytest.approx(
        gaussian_epsilon(noise_multiplier=sigma_node, delta=DELTA), rel=1e-2
    )
    assert far.sound


# --- informativeness: the acceptance point -----------------------------------------------------


def test_gaussian_audit_is_informative_at_epsilon_one():
    sigma = calibrate_gaussian(target_epsilon=1.0, delta=DELTA)
    result = audit_gaussian(noise_multiplier=sigma, delta=DELTA, trials=2_000_000, seed=0)
    assert result.epsilon_claimed == pytest.approx(1.0, rel=1e-6)
    assert result.sound
    assert result.bound.epsilon_lower >= 0.5  # measured: 0.66


# --- planted bugs are caught -------------------------------------------------------------------


def test_catches_accountant_that_forgets_gaussian_composition():
    def forgets_composition(*, noise_multiplier, delta, compositions):
        return gaussian_epsilon(noise_multiplier=noise_multiplier, delta=delta)

    result = audit_gaussian(
        noise_multiplier=8.0,
        compositions=16,
        delta=DELTA,
        trials=200_000,
        seed=21,
        accountant=forgets_composition,
    )
    assert not result.sound
    assert result.tightness > 2.0  # measured: 2.8


def test_catches_noise_smaller_than_accounted():
    result = audit_gaussian(noise_multiplier=4.0, delta=DELTA, trials=200_000, seed=22)
    assert result.sound
    planted = audit_gaussian(
        noise_multiplier=4.0, delta=DELTA, trials=200_000, seed=22, noise_scale=0.5
    )
    assert planted.epsilon_claimed == result.epsilon_claimed
    assert not planted.sound


def test_catches_dpsgd_accountant_that_forgets_composition():
    def one_step(*, noise_multiplier, sample_rate, steps, delta):
        return dpsgd_epsilon(
            noise_multiplier=noise_multiplier,
            sample_rate=sample_rate,
            steps=1,
            delta=delta,
            method="pld",
        )

    arguments = {
        "noise_multiplier": 2.0,
        "sample_rate": 0.5,
        "steps": 20,
        "delta": DELTA,
        "trials": 200_000,
        "seed": 23,
    }
    assert audit_dpsgd_step(**arguments).sound
    planted = audit_dpsgd_step(**arguments, accountant=one_step)
    assert not planted.sound
    assert planted.tightness > 1.5  # measured: 2.3


def test_catches_secldp_accountant_that_ignores_colluders():
    # both neighbours of node 0 collude: node 0 is left with its own noise only
    def ignores_colluders(topology, *, sigma, sigma_cor, clip, delta, colluders, node):
        return secldp_epsilon(
            topology,
            sigma=sigma,
            sigma_cor=sigma_cor,
            clip=clip,
            steps=1,
            delta=delta,
            method="pld",
        )

    arguments = {
        "sigma": 2.0,
        "sigma_cor": 10.0,
        "delta": DELTA,
        "trials": 100_000,
        "seed": 24,
        "colluders": (1, 7),
    }
    assert audit_secldp_round("ring:8", **arguments).sound
    planted = audit_secldp_round("ring:8", **arguments, accountant=ignores_colluders)
    assert planted.parameters["node"] == 0
    assert not planted.sound


# --- determinism and input checks --------------------------------------------------------------


def test_audits_are_deterministic_in_the_seed():
    def fixed(*_, **__):  # the claim is not under test here; skip the accountants' cost
        return 1.0

    def run(seed):
        common = {"delta": DELTA, "trials": 5000, "seed": seed, "accountant": fixed}
        return (
            audit_gaussian(noise_multiplier=2.0, compositions=3, **common),
            audit_dpsgd_step(noise_multiplier=1.0, sample_rate=0.2, steps=3, **common),
            audit_secldp_round("ring:8", sigma=1.0, sigma_cor=1.0, **common),
        )

    first, again, other = run(5), run(5), run(6)
    assert first == again
    assert all(a.bound != b.bound for a, b in zip(first, other, strict=True))


_GAUSSIAN = {"noise_multiplier": 1.0, "delta": DELTA, "trials": 100, "seed": 0}
_DPSGD = {**_GAUSSIAN, "sample_rate": 0.1, "steps": 2}
_SECLDP = {"sigma": 1.0, "sigma_cor": 1.0, "delta": DELTA, "trials": 100, "seed": 0}


@pytest.mark.parametrize(
    ("function", "kwargs", "error", "match"),
    [
        (audit_gaussian, {"noise_multiplier": 0.0}, ValueError, "noise_multiplier"),
        (audit_gaussian, {"delta": 0.0}, ValueError, "delta"),
        (audit_gaussian, {"trials": 3}, ValueError, "trials"),
        (audit_gaussian, {"trials": 100.0}, TypeError, "trials"),
        (audit_gaussian, {"seed": -1}, ValueError, "seed"),
        (audit_gaussian, {"compositions": 0}, ValueError, "compositions"),
        (audit_gaussian, {"confidence": 1.5}, ValueError, "confidence"),
        (audit_gaussian, {"noise_scale": 0.0}, ValueError, "noise_scale"),
        (audit_gaussian, {"accountant": 3.0}, TypeError, "accountant"),
        (audit_dpsgd_step, {"sample_rate": 0.0}, ValueError, "sample_rate"),
        (audit_dpsgd_step, {"sample_rate": 1.5}, ValueError, "sample_rate"),
        (audit_dpsgd_step, {"steps": 0}, ValueError, "steps"),
        (audit_dpsgd_step, {"noise_multiplier": float("nan")}, ValueError, "noise_multiplier"),
    ],
)
def test_audits_reject_bad_input(function, kwargs, error, match):
    base = _DPSGD if function is audit_dpsgd_step else _GAUSSIAN
    with pytest.raises(error, match=match):
        function(**{**base, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sigma": 0.0}, ValueError, "sigma"),
        ({"sigma_cor": -1.0}, ValueError, "sigma_cor"),
        ({"clip": 0.0}, ValueError, "clip"),
        ({"node": 3, "colluders": [3]}, ValueError, "colluder"),
        ({"node": 99}, ValueError, "node"),
        ({"colluders": [99]}, ValueError, "colluders"),
        ({"colluders": range(8)}, ValueError, "honest set is empty"),
        ({"trials": 2}, ValueError, "trials"),
    ],
)
def test_secldp_audit_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        audit_secldp_round("ring:8", **{**_SECLDP, **kwargs})


def test_secldp_audit_rejects_unknown_graph():
    with pytest.raises(TypeError, match="graph"):
        audit_secldp_round(3.0, **_SECLDP)


def test_accountant_returning_nan_is_rejected():
    def broken(**_):
        return float("nan")

    with pytest.raises(ValueError, match="accountant"):
        audit_gaussian(**_GAUSSIAN, accountant=broken)

"""Distributed mean estimation: noise calibration, exact expectations, validation, and the
acceptance sweeps of the trilemma (upper bounds hold, lower-bound scaling, SMEA/CWTM separation)."""

import functools
import math

import dp_accounting
import numpy as np
import pytest
import torch
from scipy import stats

from trilemma.bounds import trilemma_lower_bound
from trilemma.estimators import (
    DistributedMeanEstimation,
    SweepPoint,
    marginal_records,
    product_biases,
    run_sweep,
    subset_statistics,
    summarize,
    upper_bound,
)

DELTA = 1e-5


def records_for(*, d, n, m, trials, seed, clip=1.0):
    g = torch.Generator().manual_seed(seed)
    biases = product_biases(d=d, batch_shape=trials, generator=g)
    return marginal_records(biases, n=n, m=m, clip=clip, generator=g), g


def mean_and_se(values):
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


# --------------------------------------------------------------------------------------------
# Noise calibration


def analytic_gaussian_delta(sigma, epsilon):
    """δ(ε) of the Gaussian mechanism with sensitivity 1 (Balle & Wang 2018, Thm. 8)."""
    a = 1.0 / (2.0 * sigma)
    return stats.norm.cdf(a - epsilon * sigma) - math.exp(epsilon) * stats.norm.cdf(
        -a - epsilon * sigma
    )


@pytest.mark.parametrize(("epsilon", "delta"), [(0.5, 1e-5), (1.0, 1e-6), (4.0, 1e-3)])
def test_noise_std_of_each_privacy_model(epsilon, delta):
    z = dp_accounting.get_sigma_gaussian(epsilon, delta)
    # z is the exact analytic-Gaussian multiplier: δ(ε) at σ = z equals the target δ
    assert analytic_gaussian_delta(z, epsilon) == pytest.approx(delta, rel=1e-3)
    n, m, clip = 10, 7, 1.5
    expected = {
        "distributed": 2 * clip * z / m,
        "local": 2 * clip * z / math.sqrt(m),
        "central": 2 * clip * z / (n * m),
        "none": 0.0,
    }
    for privacy, value in expected.items():
        protocol = DistributedMeanEstimation(
            n=n, f=2, epsilon=epsilon, delta=delta, clip=clip, privacy=privacy, rule="mean"
        )
        assert protocol.noise_std(m) == pytest.approx(value, rel=1e-12, abs=0)
    attacked = DistributedMeanEstimation(
        n=n, f=2, epsilon=epsilon, delta=delta, clip=clip, rule="cwtm", attack="alie"
    )
    assert attacked.noise_std(m) == pytest.approx(expected["distributed"], rel=1e-12)
    assert attacked.honest_workers() == 8 and attacked.byzantine == 2


def test_estimate_reports_noise_std_and_honest_count():
    protocol = DistributedMeanEstimation(n=6, f=1, epsilon=1.0, rule="cwtm", attack="alie")
    x, g = records_for(d=4, n=5, m=3, trials=2, seed=0)
    result = protocol.estimate(x, generator=g)
    assert result.noise_std == protocol.noise_std(3)
    assert result.n_honest == 5
    assert result.estimate.shape == (2, 4) and result.error.shape == (2,)


# --------------------------------------------------------------------------------------------
# Exact expectations of the honest mean


@pytest.mark.parametrize("privacy", ["distributed", "local", "central"])
def test_mean_error_matches_exact_expectation(privacy):
    n, m, d, trials = 8, 4, 6, 4000
    protocol = DistributedMeanEstimation(n=n, epsilon=1.0, rule="mean", privacy=privacy)
    x, g = records_for(d=d, n=n, m=m, trials=trials, seed=11)
    result = protocol.estimate(x, generator=g)
    s = protocol.noise_std(m)
    # the server's output is x̄_H + N(0, v I_d): v = s²/n (average of n messages) or s² (central)
    variance = s**2 if privacy == "central" else s**2 / n
    expected = d * variance
    for values in (result.error, result.honest_error):
        mean, se = mean_and_se(values.numpy())
        assert abs(mean - expected) <= 4 * se
    assert torch.equal(result.excess, torch.zeros(trials, dtype=torch.float64))
    # ‖N(0, v I_d)‖²/v is χ²_d
    ks = stats.kstest(result.error.numpy() / variance, stats.chi2(d).cdf)
    assert ks.pvalue > 1e-3


def test_no_privacy_mean_is_the_data_mean():
    x, g = records_for(d=5, n=4, m=3, trials=7, seed=12)
    protocol = DistributedMeanEstimation(n=4, epsilon=1.0, rule="mean", privacy="none")
    result = protocol.estimate(x, generator=g)
    flat = x.numpy().reshape(7, 12, 5).mean(axis=1)
    np.testing.assert_allclose(result.estimate.numpy(), flat, rtol=0, atol=1e-15)
    np.testing.assert_allclose(result.target.numpy(), flat, rtol=0, atol=1e-15)
    assert torch.equal(result.error, torch.zeros(7, dtype=torch.float64))
    assert result.noise_std == 0.0


@pytest.mark.parametrize("privacy", ["distributed", "central"])
def test_noise_scale_per_stacked_point(privacy):
    n, m, d, trials = 6, 3, 5, 3000
    scales = (0.5, 3.0)
    protocol = DistributedMeanEstimation(n=n, epsilon=2.0, rule="mean", privacy=privacy)
    g = torch.Generator().manual_seed(13)
    biases = product_biases(d=d, batch_shape=(2, trials), generator=g)
    x = marginal_records(biases, n=n, m=m, generator=g)
    result = protocol.estimate(x, generator=g, noise_scale=list(scales))
    s = protocol.noise_std(m)
    base = d * (s**2 if privacy == "central" else s**2 / n)
    for k, a in enumerate(scales):
        mean, se = mean_and_se(result.error[k].numpy())
        assert abs(mean - a**2 * base) <= 4 * se


def test_estimate_averages_matches_estimate_on_the_same_noise():
    protocol = DistributedMeanEstimation(n=6, f=1, epsilon=1.0, rule="smea", attack="alie")
    x, _ = records_for(d=4, n=5, m=3, trials=10, seed=19)
    a = protocol.estimate(x, generator=torch.Generator().manual_seed(1))
    b = protocol.estimate_averages(x.mean(dim=-2), m=3, generator=torch.Generator().manual_seed(1))
    for name in ("estimate", "target", "honest_average"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0)
    assert a.noise_std == b.noise_std
    outside = x.mean(dim=-2)
    outside[0, 0, 0] = 1.5
    with pytest.raises(ValueError, match="norm <= clip"):
        protocol.estimate_averages(outside, m=3, generator=torch.Generator())


# --------------------------------------------------------------------------------------------
# Byzantine workers


def test_attack_needs_n_minus_f_honest_workers():
    protocol = DistributedMeanEstimation(
        n=10, f=2, epsilon=1.0, rule="mean", attack="sign_flipping"
    )
    x, g = records_for(d=3, n=10, m=2, trials=4, seed=14)
    with pytest.raises(ValueError, match="expected 8 honest workers"):
        protocol.estimate(x, generator=g)
    x, g = records_for(d=3, n=8, m=2, trials=4, seed=14)
    result = protocol.estimate(x, generator=g)
    # the mean of 8 honest messages and 2 copies of −ȳ_H is (8 − 2) ȳ_H / 10
    torch.testing.assert_close(result.estimate, 0.6 * result.honest_average, rtol=1e-12, atol=0)


def test_without_attack_every_worker_is_honest():
    protocol = DistributedMeanEstimation(n=10, f=2, epsilon=1.0, rule="cwtm")
    assert protocol.honest_workers() == 10 and protocol.byzantine == 0
    x, g = records_for(d=3, n=8, m=2, trials=4, seed=15)
    with pytest.raises(ValueError, match="expected 10 honest workers"):
        protocol.estimate(x, generator=g)


@pytest.mark.parametrize("rule", ["cwtm", "smea", "krum"])
@pytest.mark.parametrize("attack", ["nan", "inf", "huge"])
def test_robust_rules_stay_finite_and_bounded_under_degenerate_attacks(rule, attack):
    d, m = 8, 5
    protocol = DistributedMeanEstimation(n=10, f=2, epsilon=1.0, rule=rule, attack=attack)
    x, g = records_for(d=d, n=8, m=m, trials=300, seed=16)
    result = protocol.estimate(x, generator=g)
    assert bool(torch.isfinite(result.estimate).all())
    bound = upper_bound(protocol, d=d, noise_std=result.noise_std, averages=x.mean(dim=-2))
    assert float(result.error.mean()) <= float(bound.mean())


def test_non_robust_mean_breaks_under_huge_attack():
    protocol = DistributedMeanEstimation(n=10, f=2, epsilon=1.0, rule="mean", attack="huge")
    x, g = records_for(d=8, n=8, m=5, trials=10, seed=17)
    result = protocol.estimate(x, generator=g)
    assert float(result.error.min()) > 1e6


# --------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(n=4, f=2), "2f < n"),
        (dict(n=5, f=3), "2f < n"),
        (dict(n=4, epsilon=0.0), "epsilon"),
        (dict(n=4, epsilon=-1.0), "epsilon"),
        (dict(n=4, delta=0.0), "delta"),
        (dict(n=4, delta=1.0), "delta"),
        (dict(n=4, clip=0.0), "clip"),
        (dict(n=4, clip=-2.0), "clip"),
        (dict(n=4, rule="median_of_means"), "median_of_means"),
        (dict(n=4, f=1, attack="teleport"), "teleport"),
        (dict(n=4, privacy="shuffle"), "privacy"),
        (dict(n=4, f=0, attack="alie"), "f >= 1"),
        (dict(n=4, f=1, attack="alie", privacy="central"), "central"),
    ],
)
def test_invalid_protocols_raise_value_error(kwargs, match):
    kwargs = {"epsilon": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        DistributedMeanEstimation(**kwargs)


def test_non_callable_rule_and_attack_raise_type_error():
    with pytest.raises(TypeError, match="rule"):
        DistributedMeanEstimation(n=4, epsilon=1.0, rule=3)
    with pytest.raises(TypeError, match="attack"):
        DistributedMeanEstimation(n=4, f=1, epsilon=1.0, attack=3)


def test_records_outside_the_ball_are_refused():
    protocol = DistributedMeanEstimation(n=2, epsilon=1.0, clip=1.0, rule="mean")
    x = torch.zeros(2, 3, 4, dtype=torch.float64)
    x[0, 0, 0] = 1.01
    with pytest.raises(ValueError, match="norm <= clip"):
        protocol.estimate(x, generator=torch.Generator())


def test_callable_rule_is_used():
    protocol = DistributedMeanEstimation(
        n=5, f=1, epsilon=1.0, rule=lambda x: x.median(dim=-2).values, attack="sign_flipping"
    )
    x, g = records_for(d=3, n=4, m=2, trials=6, seed=18)
    state = g.get_state()
    result = protocol.estimate(x, generator=g)
    # re-draw the same noise and recompute the coordinate-wise (lower) median of 5 vectors
    g.set_state(state)
    noise = torch.randn((6, 4, 3), generator=g, dtype=torch.float64)
    honest = x.mean(dim=-2) + protocol.noise_std(2) * noise
    messages = torch.cat([honest, -honest.mean(dim=-2, keepdim=True)], dim=-2).numpy()
    np.testing.assert_allclose(result.estimate.numpy(), np.sort(messages, axis=-2)[:, 2], atol=0)


# --------------------------------------------------------------------------------------------
# ACCEPTANCE 1: the upper bounds hold at every sweep point.
#
# n = 10, f = 2, m = 5, d ∈ {4, 16, 64}, ε ∈ {0.5, 2}, 200 trials, data "marginals" and "ball".
# Worst error_mean / upper_bound measured (seed 0):
#   smea 0.252 (ball; 0.249 on marginals, slow test), cwtm 0.087, cwmed 0.037, krum 0.129,
#   gm 0.025 under None/ALIE/sign flipping (the slow test adds "strongest": 0.029 marginals,
#   0.031 ball). On the shared strongest sweep below (f ∈ {1, 2, 4}, d up to 256, m up to 40,
#   ε up to 8): smea 0.359, cwtm 0.104.
#   Mean without attack: |error_mean − d s²/n| within 4 SE at every point.

UB_RULES = {
    "smea": (None, "alie", "sign_flipping"),
    "cwtm": (None, "alie", "sign_flipping", "strongest"),
    "cwmed": (None, "alie", "sign_flipping", "strongest"),
    "krum": (None, "alie", "sign_flipping", "strongest"),
    "gm": (None, "alie", "sign_flipping"),
}


def upper_bound_rows(rule, attacks, data_families=("marginals", "ball"), trials=200):
    points = [
        SweepPoint(
            protocol=DistributedMeanEstimation(
                n=10, f=2, epsilon=epsilon, delta=DELTA, rule=rule, attack=attack
            ),
            d=d,
            m=5,
            data=data,
        )
        for attack in attacks
        for data in data_families
        for d in (4, 16, 64)
        for epsilon in (0.5, 2.0)
    ]
    return summarize(run_sweep(points, trials=trials, seed=0))


def assert_upper_bounds_hold(rows):
    ratios = [row["error_mean"] / row["upper_bound"] for row in rows]
    worst = max(ratios)
    print(f"{rows[0]['rule']}: worst error_mean/upper_bound = {worst:.3f}")
    for row, ratio in zip(rows, ratios, strict=True):
        assert np.isfinite(row["upper_bound"])
        assert ratio <= 1.0, row
    return worst


@pytest.mark.parametrize("rule", list(UB_RULES))
def test_acceptance_upper_bounds_hold(rule):
    rows = upper_bound_rows(rule, UB_RULES[rule])
    assert len(rows) == 6 * 2 * len(UB_RULES[rule])
    assert {row["attack"] for row in rows} == {"none", *filter(None, UB_RULES[rule])}
    assert_upper_bounds_hold(rows)


def test_acceptance_upper_bounds_hold_smea_strongest_ball():
    # SMEA under "strongest" on marginals is covered by the shared sweep below
    assert_upper_bounds_hold(upper_bound_rows("smea", ("strongest",), ("ball",)))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rule", "data"), [("smea", "marginals"), ("gm", "marginals"), ("gm", "ball")]
)
def test_acceptance_upper_bounds_hold_strongest_slow(rule, data):
    assert_upper_bounds_hold(upper_bound_rows(rule, ("strongest",), (data,)))


def test_acceptance_mean_without_attack_meets_its_exact_expectation():
    rows = upper_bound_rows("mean", (None,))
    for row in rows:
        z = dp_accounting.get_sigma_gaussian(row["epsilon"], DELTA)
        assert row["upper_bound"] == pytest.approx(row["d"] * (2 * z / 5) ** 2 / 10, rel=1e-12)
        se = row["error_std"] / math.sqrt(row["trials"])
        assert abs(row["error_mean"] - row["upper_bound"]) <= 4 * se, row


# --------------------------------------------------------------------------------------------
# Shared sweep of the lower-bound and separation acceptance tests: n = 10, distributed DP,
# marginals, attack "strongest", 200 trials; keys (rule, f, d, m, ε).

SWEEP_TRIALS = 200
# The lower-bound sweeps stay where the bound is not capped at C² (its rate
# (d + f) ln(1/δ)/(ε² n m²) < 1): beyond it the trivial estimator 0 beats every private one and
# the shape min{1, ·} is flat by construction.
LB_D = (4, 16, 64, 256)  # m = 100, ε = 1
LB_EPSILON = (0.125, 0.25, 0.5, 1.0)  # d = 64, m = 400
LB_EPSILON_LARGE = (1.0, 4.0, 16.0, 64.0)  # d = 64, m = 400
LB_M = (20, 40, 80, 160)  # d = 64, ε = 1
SEP_F = (1, 2)
SEP_D = (16, 64, 256)


@functools.cache
def strongest_sweep():
    keys = {("smea", 2, d, 100, 1.0) for d in LB_D}
    keys |= {("smea", 2, 64, 400, eps) for eps in (*LB_EPSILON, *LB_EPSILON_LARGE)}
    keys |= {("smea", 2, 64, m, 1.0) for m in LB_M}
    keys |= {(rule, f, d, 100, 1.0) for rule in ("smea", "cwtm") for f in SEP_F for d in SEP_D}
    keys = sorted(keys)
    points = [
        SweepPoint(
            protocol=DistributedMeanEstimation(
                n=10, f=f, epsilon=eps, delta=DELTA, rule=rule, attack="strongest"
            ),
            d=d,
            m=m,
        )
        for rule, f, d, m, eps in keys
    ]
    rows = summarize(run_sweep(points, trials=SWEEP_TRIALS, seed=2023))
    return {(r["rule"], r["f"], r["d"], r["m"], r["epsilon"]): r for r in rows}


def test_acceptance_upper_bounds_hold_on_the_strongest_sweep():
    rows = list(strongest_sweep().values())
    assert len(rows) == len({(r["rule"], r["f"], r["d"], r["m"], r["epsilon"]) for r in rows})
    assert_upper_bounds_hold([r for r in rows if r["rule"] == "smea"])
    assert_upper_bounds_hold([r for r in rows if r["rule"] == "cwtm"])


# --------------------------------------------------------------------------------------------
# ACCEPTANCE 2: SMEA under the strongest attack (n = 10, f = 2) follows the shape of the
# trilemma lower bound: error_mean / trilemma_lower_bound(constant=1) within a factor 3.


def lower_bound_ratios(keys):
    rows = strongest_sweep()
    ratios = []
    for key in keys:
        row = rows[key]
        _, f, d, m, eps = key
        lower = float(trilemma_lower_bound(d=d, n=10, f=f, m=m, epsilon=eps, delta=DELTA))
        assert lower < 1.0  # not capped
        assert row["lower_bound"] == pytest.approx(lower, rel=1e-12)
        ratios.append(row["error_mean"] / lower)
    ratios = np.array(ratios)
    assert ratios.min() >= 1.0  # the conjectured bound with constant 1 is below the error
    return ratios


# Measured error_mean/LB (seed 2023, 200 trials): over d 14.3, 12.2, 9.6, 9.0 (max/min 1.59);
# over ε ≤ 1 6.8, 7.8, 8.5, 9.8 (1.45); over m 9.9, 9.5, 9.7, 9.6 (1.04); over ε = 1, 4, 16, 64
# 9.8, 16.9, 98, 1270 (130: the 1/ε² shape fails for ε ≫ 1).


def test_acceptance_lower_bound_band_over_d():
    ratios = lower_bound_ratios([("smea", 2, d, 100, 1.0) for d in LB_D])
    assert ratios.max() / ratios.min() <= 3.0, ratios


def test_acceptance_lower_bound_band_over_epsilon():
    ratios = lower_bound_ratios([("smea", 2, 64, 400, eps) for eps in LB_EPSILON])
    assert ratios.max() / ratios.min() <= 3.0, ratios


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="for ε ≫ 1 the exactly calibrated Gaussian needs σ² ∝ 1/ε, not 1/ε²: the ratio to "
    "the 1/ε² shape grows with ε (the one-way-marginal bound is stated for ε = O(1))",
)
def test_acceptance_lower_bound_band_over_large_epsilon():
    ratios = lower_bound_ratios([("smea", 2, 64, 400, eps) for eps in LB_EPSILON_LARGE])
    assert ratios.max() / ratios.min() <= 3.0, ratios


def test_acceptance_lower_bound_band_over_m():
    ratios = lower_bound_ratios([("smea", 2, 64, m, 1.0) for m in LB_M])
    assert ratios.max() / ratios.min() <= 3.0, ratios


# --------------------------------------------------------------------------------------------
# ACCEPTANCE 3: separation. R(f, d) = mean excess of CWTM / mean excess of SMEA under the
# strongest attack, DP noise dominating (ε = 1, m = 100, marginals), n = 10.


# Measured R (seed 2023, 200 trials):  d = 16  d = 64  d = 256
#                               f = 1    1.14    1.40    1.55
#                               f = 2    1.13    2.06    2.61
# At n = 10, f = 4 (f/n = 0.4, κ_sp = 8) R falls back below R(2, ·): SMEA's own excess is then
# several times d s²/h. The slow test below shows the growth with f at n = 15 (R(3, 256) ≈ 3.7).
# SMEA excess / (d s²/h) at f = 2: 1.21, 0.63, 0.49.


def separation_table():
    rows = strongest_sweep()
    return {
        (f, d): rows[("cwtm", f, d, 100, 1.0)]["excess_mean"]
        / rows[("smea", f, d, 100, 1.0)]["excess_mean"]
        for f in SEP_F
        for d in SEP_D
    }


def test_acceptance_separation_grows_with_dimension():
    table = separation_table()
    for f in SEP_F:
        assert table[(f, 256)] > table[(f, 16)], table


def test_acceptance_separation_grows_with_byzantine_count():
    table = separation_table()
    for d in (64, 256):
        assert table[(2, d)] > table[(1, d)], table


def test_acceptance_smea_excess_is_a_constant_times_the_honest_error():
    rows = strongest_sweep()
    ratios = []
    for d in SEP_D:
        row = rows[("smea", 2, d, 100, 1.0)]
        honest = d * row["noise_std"] ** 2 / 8  # d s²/h, h = 8
        ratios.append(row["excess_mean"] / honest)
    assert max(ratios) <= 2.0, ratios


@pytest.mark.slow
def test_acceptance_separation_at_fifteen_workers():
    """n = 15: R(f, d) grows with d for every f and with f at d = 256; R(3, 256) ≥ 3."""
    points = [
        SweepPoint(
            protocol=DistributedMeanEstimation(
                n=15, f=f, epsilon=1.0, rule=rule, attack="strongest"
            ),
            d=d,
            m=100,
        )
        for rule in ("smea", "cwtm")
        for f in (1, 2, 3)
        for d in (16, 256)
    ]
    rows = {
        (r["rule"], r["f"], r["d"]): r for r in summarize(run_sweep(points, trials=200, seed=5))
    }
    table = {
        (f, d): rows[("cwtm", f, d)]["excess_mean"] / rows[("smea", f, d)]["excess_mean"]
        for f in (1, 2, 3)
        for d in (16, 256)
    }
    for f in (1, 2, 3):
        assert table[(f, 256)] > table[(f, 16)], table
    assert table[(1, 256)] < table[(2, 256)] < table[(3, 256)], table
    assert table[(3, 256)] >= 3.0, table


def test_subset_statistics_against_numpy_and_without_the_eigenvalue():
    g = torch.Generator().manual_seed(11)
    x = torch.randn((3, 7, 5), generator=g, dtype=torch.float64)
    spread, top, offset = subset_statistics(x, 4)
    for b in range(3):
        subset = x[b, :4].numpy()
        covariance = np.cov(subset, rowvar=False, bias=True)  # Σ_S with divisor |S|
        assert spread[b] == pytest.approx(np.trace(covariance), rel=1e-12)
        assert top[b] == pytest.approx(np.linalg.eigvalsh(covariance)[-1], rel=1e-10)
        gap = subset.mean(axis=0) - x[b].numpy().mean(axis=0)
        assert offset[b] == pytest.approx(gap @ gap, rel=1e-12)
    same_spread, no_top, same_offset = subset_statistics(x, 4, top=False)
    assert torch.equal(same_spread, spread) and torch.equal(same_offset, offset)
    assert bool(no_top.isnan().all())

"""Monte Carlo harness: determinism, record layout, chunking, summaries against numpy/scipy, and
the conditional upper bound against the bounds recomputed from numpy data terms."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from trilemma import bounds
from trilemma.estimators import (
    DATA_FAMILIES,
    DistributedMeanEstimation,
    SweepPoint,
    bound_holds,
    bound_kind,
    mean_interval,
    montecarlo,
    run_sweep,
    summarize,
    upper_bound,
)

COLUMNS = {
    "privacy",
    "rule",
    "attack",
    "n",
    "f",
    "byzantine",
    "m",
    "d",
    "epsilon",
    "delta",
    "clip",
    "data",
    "trial",
    "noise_std",
    "error",
    "excess",
    "honest_error",
    "upper_bound",
    "bound_kind",
    "lower_bound",
}


def small_points():
    return [
        SweepPoint(
            protocol=DistributedMeanEstimation(n=5, f=1, epsilon=eps, rule="cwtm", attack="alie"),
            d=4,
            m=3,
            labels={"series": "cwtm"},
        )
        for eps in (0.5, 2.0)
    ] + [
        SweepPoint(
            protocol=DistributedMeanEstimation(n=5, epsilon=1.0, rule="mean", privacy="central"),
            d=6,
            m=2,
            data="ball",
            labels={"series": "central"},
        )
    ]


# --------------------------------------------------------------------------------------------
# run_sweep


def test_run_sweep_is_deterministic_per_seed():
    a = run_sweep(small_points(), trials=7, seed=3)
    b = run_sweep(small_points(), trials=7, seed=3)
    c = run_sweep(small_points(), trials=7, seed=4)
    assert a == b
    assert [r["error"] for r in a] != [r["error"] for r in c]
    assert all(r["error"] != s["error"] for r, s in zip(a, c, strict=True))


def test_run_sweep_record_layout():
    points = small_points()
    rows = run_sweep(points, trials=7, seed=0)
    assert len(rows) == 3 * 7
    for row in rows:
        assert set(row) == COLUMNS | {"series"}
    for k, point in enumerate(points):
        block = rows[7 * k : 7 * (k + 1)]
        assert [r["trial"] for r in block] == list(range(7))
        p = point.protocol
        for r in block:
            assert (r["epsilon"], r["d"], r["m"], r["data"]) == (
                p.epsilon,
                point.d,
                point.m,
                point.data,
            )
            assert r["noise_std"] == p.noise_std(point.m)
            lower = bounds.trilemma_lower_bound(
                d=point.d, n=p.n, f=p.f, m=point.m, epsilon=p.epsilon, delta=p.delta
            )
            assert r["lower_bound"] == pytest.approx(float(lower), rel=1e-12)
    assert {r["attack"] for r in rows[:14]} == {"alie"} and rows[0]["byzantine"] == 1
    assert {r["bound_kind"] for r in rows[:14]} == {"upper"}
    # central: the conditional bound is the exact expectation d s², and nothing is robust
    for r in rows[14:]:
        assert r["attack"] == "none" and r["byzantine"] == 0 and r["bound_kind"] == "exact"
        assert r["upper_bound"] == pytest.approx(6 * r["noise_std"] ** 2, rel=1e-12)
        assert r["excess"] == 0.0 and r["error"] == r["honest_error"]


def test_privacy_none_records_zero_lower_bound_and_error():
    point = SweepPoint(
        protocol=DistributedMeanEstimation(n=3, epsilon=1.0, rule="mean", privacy="none"),
        d=5,
        m=2,
    )
    rows = run_sweep([point], trials=4)
    assert all(r["lower_bound"] == 0.0 and r["error"] == 0.0 for r in rows)
    assert all(r["noise_std"] == 0.0 and r["upper_bound"] == 0.0 for r in rows)


def test_grouped_epsilons_get_their_own_noise():
    epsilons = (0.5, 1.0, 4.0)
    n, d, m, trials = 6, 5, 3, 2000
    points = [
        SweepPoint(protocol=DistributedMeanEstimation(n=n, epsilon=eps, rule="mean"), d=d, m=m)
        for eps in epsilons
    ]
    for row in summarize(run_sweep(points, trials=trials, seed=8)):
        expected = d * row["noise_std"] ** 2 / n
        assert row["upper_bound"] == pytest.approx(expected, rel=1e-12)
        se = row["error_std"] / math.sqrt(trials)
        assert abs(row["error_mean"] - expected) <= 4 * se, row


def test_progress_counts_and_chunking():
    counts = []
    rows = run_sweep(
        small_points()[:2], trials=10, seed=1, max_elements=100, progress=counts.append
    )
    # the two points differ only in ε: one group, so every chunk reports an even count
    assert len(counts) > 1 and sum(counts) == 2 * 10
    assert all(count % 2 == 0 for count in counts)
    assert [r["trial"] for r in rows] == list(range(10)) * 2
    counts = []
    run_sweep(small_points(), trials=5, progress=counts.append)
    assert sum(counts) == 3 * 5


def test_chunking_keeps_statistics():
    point = SweepPoint(protocol=DistributedMeanEstimation(n=4, epsilon=1.0, rule="mean"), d=3, m=2)
    whole = summarize(run_sweep([point], trials=3000, seed=2))[0]
    chunked = summarize(run_sweep([point], trials=3000, seed=2, max_elements=24 * 7))[0]
    assert chunked["trials"] == 3000
    gap = abs(whole["error_mean"] - chunked["error_mean"])
    assert gap <= 4 * math.hypot(whole["error_std"], chunked["error_std"]) / math.sqrt(3000)


def test_default_chunk_size_follows_the_device(monkeypatch):
    point = small_points()[0]
    monkeypatch.setattr(montecarlo, "_CPU_ELEMENTS", 60)  # a few trials per chunk on the CPU
    default = run_sweep([point], trials=40, seed=3)
    assert default == run_sweep([point], trials=40, seed=3, max_elements=60)
    assert default != run_sweep([point], trials=40, seed=3, max_elements=2**24)


def test_run_sweep_validation():
    with pytest.raises(TypeError, match="SweepPoint"):
        run_sweep([object()], trials=2)
    with pytest.raises(ValueError, match="trials"):
        run_sweep(small_points(), trials=0)
    with pytest.raises(TypeError, match="DistributedMeanEstimation"):
        SweepPoint(protocol="smea", d=2, m=2)
    with pytest.raises(ValueError, match="mnist"):
        SweepPoint(protocol=DistributedMeanEstimation(n=3, epsilon=1.0), d=2, m=2, data="mnist")
    with pytest.raises(TypeError, match="dtype"):
        run_sweep(small_points(), trials=2, dtype=torch.int64)
    assert set(DATA_FAMILIES) == {"marginals", "ball", "digits", "breast_cancer", "wine"}


def test_run_sweep_on_wine():
    protocol = DistributedMeanEstimation(n=4, epsilon=1.0, rule="mean", privacy="none")
    rows = run_sweep([SweepPoint(protocol=protocol, d=13, m=5, data="wine")], trials=3)
    assert len(rows) == 3 and all(r["error"] == 0.0 for r in rows)
    private = DistributedMeanEstimation(n=4, f=1, epsilon=1.0, rule="cwtm", attack="alie")
    rows = run_sweep([SweepPoint(protocol=private, d=13, m=5, data="wine")], trials=3)
    assert all(0 < r["error"] <= 1e3 and np.isfinite(r["upper_bound"]) for r in rows)


def test_run_sweep_on_wine_checks_the_dimension():
    protocol = DistributedMeanEstimation(n=4, epsilon=1.0, rule="mean", privacy="none")
    with pytest.raises(ValueError, match="has d=13, the point says d=12"):
        run_sweep([SweepPoint(protocol=protocol, d=12, m=5, data="wine")], trials=3)


# --------------------------------------------------------------------------------------------
# summarize


def test_summarize_matches_numpy_and_scipy():
    rows = run_sweep(small_points(), trials=9, seed=5)
    summary = summarize(rows, confidence=0.9)
    assert len(summary) == 3
    for k, row in enumerate(summary):
        block = rows[9 * k : 9 * (k + 1)]
        assert row["trials"] == 9
        assert row["epsilon"] == block[0]["epsilon"] and row["series"] == block[0]["series"]
        assert "trial" not in row and "error" not in row
        for metric in ("error", "excess", "honest_error"):
            values = np.array([r[metric] for r in block])
            std = values.std(ddof=1)
            assert row[f"{metric}_mean"] == pytest.approx(values.mean(), rel=1e-12, abs=1e-300)
            assert row[f"{metric}_std"] == pytest.approx(std, rel=1e-12, abs=1e-300)
            ci = stats.t.ppf(0.95, 8) * std / 3.0
            assert row[f"{metric}_ci"] == pytest.approx(ci, rel=1e-12, abs=1e-300)
        ub = np.mean([r["upper_bound"] for r in block])
        assert row["upper_bound"] == pytest.approx(ub, rel=1e-12)


def test_summarize_single_trial_and_bad_confidence():
    record = {"d": 2, "trial": 0, "error": 1.0, "excess": 0.5, "honest_error": 1.0}
    row = summarize([{**record, "upper_bound": 2.0}])[0]
    assert row["trials"] == 1 and row["error_mean"] == 1.0
    assert math.isnan(row["error_std"]) and row["error_ci"] == math.inf
    for confidence in (0.0, 1.0):
        with pytest.raises(ValueError, match="confidence"):
            summarize([{**record, "upper_bound": 2.0}], confidence=confidence)


# --------------------------------------------------------------------------------------------
# upper_bound


def averages_for(batch, h, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, h, d)) / math.sqrt(d)
    return torch.from_numpy(x)


def data_terms(averages, size):
    """tr Σ_S, λ_max(Σ_S) and ‖x̄_S − x̄_H‖² with S the first ``size`` rows, in numpy."""
    x = averages.numpy()
    subset = x[:, :size, :]
    centred = subset - subset.mean(axis=1, keepdims=True)
    covariance = np.einsum("bki,bkj->bij", centred, centred) / size
    spread = np.trace(covariance, axis1=1, axis2=2)
    top = np.linalg.eigvalsh(covariance)[:, -1]
    offset = ((subset.mean(axis=1) - x.mean(axis=1)) ** 2).sum(axis=-1)
    return spread, top, offset


def test_upper_bound_central_and_mean_are_exact_expectations():
    averages = averages_for(4, 6, 5, seed=0)
    central = DistributedMeanEstimation(n=6, epsilon=1.0, rule="smea", privacy="central")
    np.testing.assert_allclose(
        upper_bound(central, d=5, noise_std=0.3, averages=averages), 5 * 0.09, rtol=1e-12
    )
    mean = DistributedMeanEstimation(n=6, f=2, epsilon=1.0, rule="mean")
    value = upper_bound(mean, d=5, noise_std=0.3, averages=averages)
    assert value.shape == (4,)
    np.testing.assert_allclose(value, 5 * 0.09 / 6, rtol=1e-12)
    attacked = DistributedMeanEstimation(n=6, f=1, epsilon=1.0, rule="mean", attack="alie")
    assert np.all(np.isinf(upper_bound(attacked, d=5, noise_std=0.3, averages=averages[:, :5])))


@pytest.mark.parametrize("attack", [None, "alie"])
def test_upper_bound_smea_with_numpy_data_terms(attack):
    n, f, d, s = 7, 2, 9, 0.2
    protocol = DistributedMeanEstimation(n=n, f=f, epsilon=1.0, rule="smea", attack=attack)
    h = protocol.honest_workers()
    averages = averages_for(5, h, d, seed=1)
    _, top, offset = data_terms(averages, n - f)
    if attack is not None:
        np.testing.assert_allclose(offset, 0.0, atol=1e-30)
    expected = bounds.smea_upper_bound(
        d=d, n=n, f=f, noise_std=s, data_top_eigenvalue=top, data_offset=offset
    )
    value = upper_bound(protocol, d=d, noise_std=s, averages=averages)
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    # written out: (√(κ_sp Λ) + √(offset + d s²/(n − f)))², κ_sp = 4f/(n − 2f)
    k = n - f
    noise_top = s**2 * ((math.sqrt(k - 1) + math.sqrt(d)) ** 2 + 1) / k
    big_lambda = (np.sqrt(top) + math.sqrt(noise_top)) ** 2
    by_hand = (np.sqrt(4 * f / (n - 2 * f) * big_lambda) + np.sqrt(offset + d * s**2 / k)) ** 2
    np.testing.assert_allclose(value, by_hand, rtol=1e-10)


def test_upper_bound_naive_rule_with_numpy_data_terms():
    n, f, d, s = 7, 2, 9, 0.2
    protocol = DistributedMeanEstimation(n=n, f=f, epsilon=1.0, rule="cwtm")
    averages = averages_for(5, n, d, seed=2)
    spread, _, offset = data_terms(averages, n - f)
    k = n - f
    kappa = 6 * f / (n - 2 * f) * (1 + f / (n - 2 * f))
    by_hand = (
        np.sqrt(kappa * (spread + d * s**2 * (k - 1) / k)) + np.sqrt(offset + d * s**2 / k)
    ) ** 2
    value = upper_bound(protocol, d=d, noise_std=s, averages=averages)
    np.testing.assert_allclose(value, by_hand, rtol=1e-10)


def test_upper_bound_mda_uses_the_derived_kappa():
    """MDA's rows are "upper" with κ = (√(f/(n − 2f)) + f√(2/(n − f)))² (derived), never the
    refuted recalled row (4f/(n − f))(1 + f/(n − 2f))²."""
    n, f, d, s = 7, 2, 5, 0.3
    protocol = DistributedMeanEstimation(n=n, f=f, epsilon=1.0, rule="mda", attack="alie")
    assert bound_kind(protocol) == "upper"
    averages = averages_for(4, n - f, d, seed=5)
    spread, _, offset = data_terms(averages, n - f)
    k = n - f
    derived = (math.sqrt(f / (n - 2 * f)) + f * math.sqrt(2 / (n - f))) ** 2
    recalled = 4 * f / (n - f) * (1 + f / (n - 2 * f)) ** 2
    for kappa, match in ((derived, True), (recalled, False)):
        by_hand = (
            np.sqrt(kappa * (spread + d * s**2 * (k - 1) / k)) + np.sqrt(offset + d * s**2 / k)
        ) ** 2
        value = upper_bound(protocol, d=d, noise_std=s, averages=averages)
        assert np.allclose(value, by_hand, rtol=1e-10) is match


@pytest.mark.parametrize("attack", ["alie", "optimal_shift", "sign_flipping"])
def test_mda_rows_meet_their_upper_bound(attack):
    points = [
        SweepPoint(
            protocol=DistributedMeanEstimation(n=9, f=3, epsilon=eps, rule="mda", attack=attack),
            d=6,
            m=4,
        )
        for eps in (0.5, 4.0)
    ]
    rows = run_sweep(points, trials=40, seed=2)
    assert {r["bound_kind"] for r in rows} == {"upper"}
    assert all(bound_holds(row) for row in summarize(rows))


def test_upper_bound_is_nan_without_a_kappa():
    averages = averages_for(3, 5, 4, seed=3)
    custom = DistributedMeanEstimation(n=5, f=1, epsilon=1.0, rule=lambda x: x.mean(dim=-2))
    assert np.all(np.isnan(upper_bound(custom, d=4, noise_std=0.1, averages=averages)))
    meamed = DistributedMeanEstimation(n=5, f=1, epsilon=1.0, rule="meamed")
    assert np.all(np.isnan(upper_bound(meamed, d=4, noise_std=0.1, averages=averages)))


# --------------------------------------------------------------------------------------------
# bound_kind and bound_holds


@pytest.mark.parametrize(
    ("kwargs", "kind"),
    [
        (dict(rule="smea", privacy="central"), "exact"),
        (dict(rule="mean"), "exact"),
        (dict(rule="mean", f=1, attack="alie"), "upper"),
        (dict(rule="cwtm"), "exact"),  # f = 0: trims nothing
        (dict(rule="smea"), "exact"),
        (dict(rule="cwtm", f=1), "upper"),
        (dict(rule="krum"), "upper"),  # κ = 6 even at f = 0
        (dict(rule="mda", f=1), "upper"),  # derived κ
        (dict(rule="mda"), "exact"),  # f = 0: the mean
        (dict(rule="nnm>>mda", f=1), "upper"),
        (dict(rule="meamed", f=1), "none"),
        (dict(rule=lambda x: x.mean(dim=-2)), "none"),
    ],
)
def test_bound_kind(kwargs, kind):
    assert bound_kind(DistributedMeanEstimation(n=5, epsilon=1.0, **kwargs)) == kind


def test_rules_with_exact_kind_meet_their_expectation():
    points = [
        SweepPoint(protocol=DistributedMeanEstimation(n=6, epsilon=1.0, rule=rule), d=5, m=3)
        for rule in ("cwtm", "smea")
    ]
    for row in summarize(run_sweep(points, trials=2000, seed=6)):
        assert row["bound_kind"] == "exact"
        assert row["upper_bound"] == pytest.approx(5 * row["noise_std"] ** 2 / 6, rel=1e-12)
        assert abs(row["error_mean"] - row["upper_bound"]) <= 4 * row["error_ci"] / 1.96
        assert bound_holds(row, tolerance=4.0 / 1.96)


def test_bound_holds_hand_worked_rows():
    upper = {"bound_kind": "upper", "error_ci": 0.1}
    assert bound_holds({**upper, "error_mean": 1.0, "upper_bound": 2.0})
    assert bound_holds({**upper, "error_mean": 2.0, "upper_bound": 2.0})
    assert not bound_holds({**upper, "error_mean": 2.5, "upper_bound": 2.0})
    assert bound_holds({**upper, "error_mean": 1e9, "upper_bound": math.inf})
    exact = {"bound_kind": "exact", "error_ci": 0.06, "upper_bound": 1.0}
    assert bound_holds({**exact, "error_mean": 1.1})  # 0.1 ≤ 2 · 0.06
    assert not bound_holds({**exact, "error_mean": 1.2})  # 0.2 > 0.12
    assert bound_holds({**exact, "error_mean": 1.2}, tolerance=4.0)
    assert not bound_holds({**exact, "error_mean": 0.8})
    assert bound_holds({"bound_kind": "none", "error_mean": 5.0, "upper_bound": math.nan})


def test_mean_interval_is_the_student_t_half_width():
    values = np.array([0.5, 0.7, 0.9])
    expected = stats.t.ppf(0.975, 2) * values.std(ddof=1) / math.sqrt(3)
    assert mean_interval(values) == pytest.approx(expected, rel=1e-12)
    assert mean_interval(values, confidence=0.5) < mean_interval(values)
    assert mean_interval([0.5]) == math.inf
    with pytest.raises(ValueError, match="confidence"):
        mean_interval(values, confidence=1.0)

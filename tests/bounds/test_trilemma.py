"""Trilemma closed forms against hand-worked values, numpy Monte Carlo and their docstrings."""

import math
import warnings

import numpy as np
import pytest

from trilemma.accountants import calibrate_gaussian
from trilemma.bounds import (
    central_marginal_lower_bound,
    distributed_dp_lower_bound,
    gaussian_noise_std,
    honest_average_error,
    kappa,
    naive_error_rate,
    naive_upper_bound,
    noise_spread,
    noise_top_eigenvalue_bound,
    robust_error_upper_bound,
    smea_error_rate,
    smea_spectral_kappa,
    smea_upper_bound,
    trilemma_lower_bound,
)


def classic_std(sensitivity, epsilon, delta):
    """Dwork & Roth's Gaussian-mechanism std, written with the math module."""
    return sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon


def worker_std(m, epsilon, delta, clip=1.0):
    return classic_std(2 * clip / m, epsilon, delta)


def mean_and_standard_error(samples):
    return float(samples.mean()), float(samples.std(ddof=1) / math.sqrt(samples.size))


# --------------------------------------------------------------------------------------------
# Gaussian mechanism


def test_gaussian_noise_std_on_a_broadcast_grid():
    sensitivity = np.array([0.1, 1.0, 2.5]).reshape(3, 1, 1)
    epsilon = np.array([0.1, 0.5, 0.9, 0.999]).reshape(1, 4, 1)
    delta = np.array([1e-9, 0.3])
    values = gaussian_noise_std(sensitivity=sensitivity, epsilon=epsilon, delta=delta)
    assert values.shape == (3, 4, 2)
    for i, j, k in np.ndindex(values.shape):
        expected = classic_std(sensitivity[i, 0, 0], epsilon[0, j, 0], delta[k])
        assert values[i, j, k] == pytest.approx(expected, rel=1e-14)
    # ln(1.25/δ) = 2 → √(2 · 2) = 2: Δ = 3, ε = 0.5 gives 12
    assert float(gaussian_noise_std(sensitivity=3.0, epsilon=0.5, delta=1.25 * math.exp(-2))) == (
        pytest.approx(12.0, rel=1e-14)
    )


@pytest.mark.parametrize("epsilon", [1.0, 4.0, np.array([0.5, 1.0])])
def test_gaussian_noise_std_warns_outside_the_theorem(epsilon):
    """Dwork & Roth's Thm. A.1 needs ε < 1: at ε ≥ 1 the value is still the formula, with a
    warning that names the argument and the exact calibration to use instead."""
    with pytest.warns(UserWarning, match=r"epsilon=\S+ >= 1.*accountants\.calibrate_gaussian"):
        values = gaussian_noise_std(sensitivity=2.0, epsilon=epsilon, delta=1e-5)
    np.testing.assert_allclose(values, 2.0 * math.sqrt(2 * math.log(1.25e5)) / epsilon)
    with pytest.warns(UserWarning, match="epsilon"):  # the rates inherit it
        smea_error_rate(d=4, n=9, f=2, m=3, epsilon=epsilon, delta=1e-5)


def test_gaussian_noise_std_is_silent_below_one_and_never_below_the_exact_calibration():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        classic = gaussian_noise_std(
            sensitivity=1.0, epsilon=np.array([0.1, 0.5, 0.99]), delta=1e-5
        )
    for eps, value in zip([0.1, 0.5, 0.99], classic, strict=True):
        # the analytic Gaussian (Balle & Wang 2018) is exact: the classic std is ≥ it
        assert calibrate_gaussian(target_epsilon=eps, delta=1e-5) <= value


def test_noise_moments_broadcast_and_hand_values():
    d = np.array([1, 10, 100]).reshape(3, 1)
    h = np.array([1, 2, 5, 8])
    assert honest_average_error(d=d, n_honest=h, noise_std=0.5).shape == (3, 4)
    assert noise_spread(d=d, n_honest=h, noise_std=0.5).shape == (3, 4)
    assert noise_top_eigenvalue_bound(d=d, n_honest=h, noise_std=0.5).shape == (3, 4)
    # d s²/h = 10 · 4/5 = 8 ; d s²(h − 1)/h = 10 · 4 · 4/5 = 32 ; one worker has no spread
    assert float(honest_average_error(d=10, n_honest=5, noise_std=2.0)) == pytest.approx(8.0)
    assert float(noise_spread(d=10, n_honest=5, noise_std=2.0)) == pytest.approx(32.0)
    assert float(noise_spread(d=10, n_honest=1, noise_std=2.0)) == 0.0
    # h = 1: Σ_H = 0, and the bound is s²((0 + √d)² + 1) = s²(d + 1)
    assert float(noise_top_eigenvalue_bound(d=3, n_honest=1, noise_std=2.0)) == pytest.approx(16)
    # h = 10, d = 16, s = 3: 9 · ((3 + 4)² + 1)/10 = 45
    assert float(noise_top_eigenvalue_bound(d=16, n_honest=10, noise_std=3.0)) == pytest.approx(45)


# --------------------------------------------------------------------------------------------
# Monte Carlo of the exact noise moments


@pytest.mark.parametrize(("h", "d", "s"), [(1, 3, 1.0), (6, 7, 0.8), (15, 2, 2.5)])
def test_honest_average_error_and_noise_spread_by_monte_carlo(h, d, s):
    """Measured (20 000 draws): error 3.015 ± 0.018 vs 3; 0.7449 ± 0.0028 vs 0.7467; 0.8351 ±
    0.0060 vs 0.8333; spread 3.718 ± 0.006 vs 3.733; 11.653 ± 0.022 vs 11.667."""
    rng = np.random.default_rng(1000 * h + d)
    z = s * rng.standard_normal((20_000, h, d))
    centre = z.mean(axis=1)
    error = np.sum(centre**2, axis=1)  # ‖ȳ_H − x̄_H‖² for identical data
    spread = np.sum((z - centre[:, None, :]) ** 2, axis=(1, 2)) / h  # tr Σ_H
    error_mean, error_se = mean_and_standard_error(error)
    assert abs(error_mean - d * s**2 / h) <= 4 * error_se
    assert float(honest_average_error(d=d, n_honest=h, noise_std=s)) == pytest.approx(
        d * s**2 / h, rel=1e-14
    )
    if h == 1:
        assert np.all(spread == 0)
    else:
        spread_mean, spread_se = mean_and_standard_error(spread)
        assert abs(spread_mean - d * s**2 * (h - 1) / h) <= 4 * spread_se
    assert float(noise_spread(d=d, n_honest=h, noise_std=s)) == pytest.approx(
        d * s**2 * (h - 1) / h, rel=1e-14
    )


def test_noise_spread_adds_to_a_fixed_data_spread_by_monte_carlo():
    """The docstring's E tr Σ_H(x + z) = tr Σ_H(x) + d s²(h − 1)/h, on fixed data x.

    Measured (20 000 draws): 33.975 ± 0.018 vs 33.988."""
    rng = np.random.default_rng(11)
    h, d, s = 7, 5, 0.6
    x = rng.normal(size=(h, d)) * np.array([3.0, 1.0, 0.2, 0.0, 5.0])
    data_spread = np.sum((x - x.mean(0)) ** 2) / h
    y = x + s * rng.standard_normal((20_000, h, d))
    spread = np.sum((y - y.mean(axis=1, keepdims=True)) ** 2, axis=(1, 2)) / h
    mean, se = mean_and_standard_error(spread)
    expected = data_spread + float(noise_spread(d=d, n_honest=h, noise_std=s))
    assert abs(mean - expected) <= 4 * se


def top_eigenvalues(samples):
    """λ_max of (1/h) Σ_i (z_i − z̄)(z_i − z̄)ᵀ per (h, d) sample, via the smaller Gram matrix."""
    h = samples.shape[1]
    centred = samples - samples.mean(axis=1, keepdims=True)
    transposed = centred.swapaxes(1, 2)
    gram = centred @ transposed if h <= samples.shape[2] else transposed @ centred
    return np.linalg.eigvalsh(gram)[:, -1] / h


# Measured with 2000 draws and the seeds below, in units of s² (E λ_max ± one standard error):
#   (h, d) = (10, 3):   1.541 ± 0.011,  bound 2.339  (ratio 1.52)
#   (10, 50):           9.020 ± 0.021,  10.243        (1.14)
#   (5, 200):           47.92 ± 0.07,   52.31         (1.09)
#   (30, 30):           3.558 ± 0.007,  3.966         (1.11)
#   (50, 5):            1.462 ± 0.004,  1.726         (1.18)
#   (20, 400):          28.51 ± 0.02,   29.72         (1.04)
# The bound is looser for tiny d and h: (10, 1) gives 0.897 vs 1.7 (1.90), (4, 4) 2.07 vs 3.73
# (1.80); there Var ‖G‖_op ≤ 1 and Gordon's √(h − 1) + √d are far from tight.
@pytest.mark.parametrize(("h", "d"), [(10, 3), (10, 50), (5, 200), (30, 30), (50, 5), (20, 400)])
def test_noise_top_eigenvalue_bound_sits_above_monte_carlo_and_is_not_loose(h, d):
    rng = np.random.default_rng(h * 1000 + d)
    s = 0.7
    top = top_eigenvalues(s * rng.standard_normal((2000, h, d)))
    mean, se = mean_and_standard_error(top)
    bound = float(noise_top_eigenvalue_bound(d=d, n_honest=h, noise_std=s))
    assert bound == pytest.approx(s**2 * ((math.sqrt(h - 1) + math.sqrt(d)) ** 2 + 1) / h)
    assert mean + 4 * se <= bound
    assert bound <= 1.6 * mean
    # the point of the spectral bound: far below the trace d s² (h − 1)/h once d and h are large
    if d >= 30 and h >= 10:
        assert bound < 0.25 * float(noise_spread(d=d, n_honest=h, noise_std=s))


def test_smea_top_eigenvalue_with_data_sits_below_its_bound_by_monte_carlo():
    """Λ = (√λ_max(Σ_S(x)) + √noise bound)² of smea_upper_bound, against E λ_max(Σ_S(x + z)).

    Measured: λ_max(Σ(x)) = 1.749, E λ_max(Σ(x + z)) = 3.367 ± 0.012, Λ = 8.516 (the triangle
    inequality on ‖·‖_op is loose when data and noise are nearly orthogonal).
    """
    rng = np.random.default_rng(5)
    h, d, s = 8, 40, 0.5
    x = np.zeros((h, d))
    x[:, 0] = np.linspace(-2.0, 2.0, h)  # data spread along one axis
    x[:, 1] = rng.normal(size=h)
    data_top = np.linalg.eigvalsh(np.cov(x.T, bias=True))[-1]
    top = top_eigenvalues(x + s * rng.standard_normal((2000, h, d)))
    mean, se = mean_and_standard_error(top)
    noise_bound = float(noise_top_eigenvalue_bound(d=d, n_honest=h, noise_std=s))
    assert mean + 4 * se <= (math.sqrt(data_top) + math.sqrt(noise_bound)) ** 2
    assert mean > data_top  # noise only adds to the top eigenvalue on average


# --------------------------------------------------------------------------------------------
# Upper bounds


def test_robust_error_upper_bound_hand_values_and_limits():
    # (√(κ v) + √o)²: (√(4 · 1) + 1)² = 9 ; (√(2 · 8) + 3)² = 49 ; (√(0.5 · 2) + 0)² = 1
    assert float(robust_error_upper_bound(kappa=4.0, spread=1.0, offset=1.0)) == 9.0
    assert float(robust_error_upper_bound(kappa=2.0, spread=8.0, offset=9.0)) == 49.0
    assert float(robust_error_upper_bound(kappa=0.5, spread=2.0, offset=0.0)) == 1.0
    assert float(robust_error_upper_bound(kappa=np.inf, spread=1e-300, offset=1.0)) == np.inf
    # no spread with κ = inf, or κ = 0: the offset alone
    assert robust_error_upper_bound(kappa=np.inf, spread=0.0, offset=2.5) == pytest.approx(2.5)
    assert robust_error_upper_bound(kappa=0.0, spread=7.0, offset=2.5) == pytest.approx(2.5)
    values = robust_error_upper_bound(
        kappa=np.array([0.0, 0.1, 1.0, 3.0, 10.0, np.inf])[:, None],
        spread=np.array([0.5, 2.0]),
        offset=0.3,
    )
    assert values.shape == (6, 2)
    assert np.all(np.diff(values, axis=0) > 0)
    assert np.all(values >= 0.3 * (1 - 1e-15))  # (√o)² may round one ulp below o


def test_naive_and_smea_bounds_are_the_composition_of_their_pieces():
    d, n, f, s = 50, 12, 3, 0.4
    h = n - f
    data_spread, data_top, data_offset = 2.0, 0.7, 0.05
    kap = 1.7
    spread = data_spread + d * s**2 * (h - 1) / h
    offset = data_offset + d * s**2 / h
    naive = (math.sqrt(kap * spread) + math.sqrt(offset)) ** 2
    assert float(
        naive_upper_bound(
            kappa=kap,
            d=d,
            n=n,
            f=f,
            noise_std=s,
            data_spread=data_spread,
            data_offset=data_offset,
        )
    ) == pytest.approx(naive, rel=1e-13)
    kappa_sp = 4 * f / (n - 2 * f)
    noise_top = s**2 * ((math.sqrt(h - 1) + math.sqrt(d)) ** 2 + 1) / h
    top = (math.sqrt(data_top) + math.sqrt(noise_top)) ** 2
    smea = (math.sqrt(kappa_sp * top) + math.sqrt(offset)) ** 2
    assert float(
        smea_upper_bound(
            d=d, n=n, f=f, noise_std=s, data_top_eigenvalue=data_top, data_offset=data_offset
        )
    ) == pytest.approx(smea, rel=1e-13)


def test_upper_bounds_vectorise_and_reduce_to_averaging_without_byzantines():
    d = np.array([4, 64, 1024])[:, None]
    n = np.array([5, 11, 21])
    assert naive_upper_bound(kappa=2.0, d=d, n=n, f=2, noise_std=1.0).shape == (3, 3)
    assert smea_upper_bound(d=d, n=n, f=2, noise_std=1.0).shape == (3, 3)
    # f = 0: κ of the mean is 0, κ_sp = 0, both bounds are the exact averaging error d s²/n
    for dim, workers in [(4, 5), (64, 11), (1024, 21)]:
        exact = dim * 0.3**2 / workers
        mean_kappa = kappa("mean", n=workers, f=0)
        got = naive_upper_bound(kappa=mean_kappa, d=dim, n=workers, f=0, noise_std=0.3)
        assert float(got) == pytest.approx(exact, rel=1e-14)
        assert float(smea_upper_bound(d=dim, n=workers, f=0, noise_std=0.3)) == pytest.approx(
            exact, rel=1e-14
        )
    assert float(naive_upper_bound(kappa=np.inf, d=4, n=5, f=1, noise_std=1.0)) == np.inf


@pytest.mark.parametrize(("n", "f"), [(10, 1), (20, 4), (50, 10)])
def test_smea_beats_the_trace_bound_in_high_dimension_only(n, f):
    """Same κ = κ_sp on both sides: spectral beats trace for d ≫ n, but for d = 1 (λ_max = trace)
    the Gordon + Poincaré estimate of λ_max is looser than the exact trace."""
    kap = smea_spectral_kappa(n=n, f=f)
    high = {"d": 100 * n, "n": n, "f": f, "noise_std": 1.0}
    assert smea_upper_bound(**high) < naive_upper_bound(kappa=kap, **high)
    assert smea_upper_bound(**high) < 0.5 * naive_upper_bound(kappa=kap, **high)
    low = {"d": 1, "n": n, "f": f, "noise_std": 1.0}
    assert smea_upper_bound(**low) > naive_upper_bound(kappa=kap, **low)


def test_smea_rate_beats_naive_cwtm_rate_in_high_dimension():
    common = {"n": 20, "f": 4, "m": 10, "epsilon": 0.5, "delta": 1e-5}
    cwtm = kappa("cwtm", n=20, f=4)
    d = np.array([256, 1024, 16384])
    ratio = smea_error_rate(d=d, **common) / naive_error_rate(kappa=cwtm, d=d, **common)
    assert np.all(ratio < 1)
    assert np.all(np.diff(ratio) < 0)  # the advantage grows with d


@pytest.mark.parametrize("shift", [0.0, 0.5, 1.0, 2.0, 5.0, 1e3])
def test_trimmed_mean_error_stays_below_the_naive_bound(shift):
    """CWTM written here in numpy, f Byzantine rows at ȳ_H + shift · e_0, identical honest data μ.

    Measured (4000 draws, n = 10, f = 2, d = 4, s = 1), for the shifts above: E‖F − μ‖² ≈ 0.534,
    0.576, 0.628, 0.672, 0.687, 0.682 (± 0.008), naive bound 14.15; max over draws of
    ‖F − ȳ_H‖² / tr Σ_H = κ̂ ≈ 0.06, 0.10, 0.14, 0.19, 0.18, 0.17 against κ_cwtm = 8/3; the bound
    with κ̂ in place of κ is 1.37–2.28.
    """
    rng = np.random.default_rng(int(shift * 10) + 3)
    n, f, d, s, draws = 10, 2, 4, 1.0, 4000
    h = n - f
    kap = float(kappa("cwtm", n=n, f=f))
    assert kap == pytest.approx(8 / 3)  # 6 · (2/6) · (1 + 2/6)
    mu = np.array([3.0, -1.0, 0.5, 2.0])
    honest = mu + s * rng.standard_normal((draws, h, d))
    honest_mean = honest.mean(axis=1)
    byzantine = np.repeat((honest_mean + shift * np.eye(d)[0])[:, None, :], f, axis=1)
    rows = np.sort(np.concatenate([honest, byzantine], axis=1), axis=1)
    output = rows[:, f : n - f].mean(axis=1)
    error = np.sum((output - mu) ** 2, axis=1)
    deviation = np.sum((output - honest_mean) ** 2, axis=1)
    spread = np.sum((honest - honest_mean[:, None, :]) ** 2, axis=(1, 2)) / h
    offset = np.sum((honest_mean - mu) ** 2, axis=1)
    # (f, κ)-robustness with S = H, draw by draw
    assert np.all(deviation <= kap * spread)
    # the Minkowski step on the empirical measure, with the largest measured ratio as κ
    kappa_hat = float(np.max(deviation / spread))
    assert error.mean() <= float(
        robust_error_upper_bound(kappa=kappa_hat, spread=spread.mean(), offset=offset.mean())
    ) * (1 + 1e-12)
    bound = float(naive_upper_bound(kappa=kap, d=d, n=n, f=f, noise_std=s))
    assert error.mean() <= bound


# --------------------------------------------------------------------------------------------
# Rates


def test_naive_rate_is_the_bound_at_the_classic_worker_std():
    kap, d, n, f, m, eps, delta, clip = 2.0, 64, 10, 2, 25, 0.7, 1e-6, 3.0
    h = n - f
    s = worker_std(m, eps, delta, clip)
    expected = (math.sqrt(kap * d * s**2 * (h - 1) / h) + math.sqrt(d * s**2 / h)) ** 2
    got = naive_error_rate(kappa=kap, d=d, n=n, f=f, m=m, epsilon=eps, delta=delta, clip=clip)
    assert float(got) == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("rate", ["naive", "smea"])
def test_rates_scale_as_inverse_epsilon_squared_m_squared(rate):
    def value(m, epsilon, clip=1.0):
        common = {"d": 300, "n": 15, "f": 3, "m": m, "epsilon": epsilon, "delta": 1e-5}
        if rate == "naive":
            return float(naive_error_rate(kappa=1.3, clip=clip, **common))
        return float(smea_error_rate(clip=clip, **common))

    base = value(10, 0.25)
    assert base / value(20, 0.5) == pytest.approx(16.0, rel=1e-12)
    assert base / value(30, 0.25) == pytest.approx(9.0, rel=1e-12)
    assert base / value(10, 0.125) == pytest.approx(0.25, rel=1e-12)
    assert value(10, 0.25, clip=3.0) / base == pytest.approx(9.0, rel=1e-12)


def test_smea_rate_is_linear_in_d_for_large_d():
    n, f, m, eps, delta = 16, 3, 10, 0.5, 1e-5
    h = n - f
    s = worker_std(m, eps, delta)
    kappa_sp = 4 * f / (n - 2 * f)
    # (√(κ_sp Λ) + √(d s²/h))² / d → s² (√κ_sp + 1)²/h as d → ∞, from above
    slope = s**2 * (math.sqrt(kappa_sp) + 1) ** 2 / h
    d = np.array([10, 100, 10**4, 10**6, 10**8])
    per_d = smea_error_rate(d=d, n=n, f=f, m=m, epsilon=eps, delta=delta) / d
    assert np.all(np.diff(per_d) < 0)
    assert np.all(per_d > slope)
    assert per_d[-1] == pytest.approx(slope, rel=1e-3)
    assert per_d[0] > 1.5 * slope  # not linear for d ≲ n
    big = smea_error_rate(d=np.array([10**6, 4 * 10**6]), n=n, f=f, m=m, epsilon=eps, delta=delta)
    assert big[1] / big[0] == pytest.approx(4.0, rel=1e-2)


# --------------------------------------------------------------------------------------------
# Lower bounds


def test_central_marginal_lower_bound_shape_and_cap():
    # d ln(1/δ)/(ε² N²) = 10 · ln(1e5)/10⁶ below the cap
    value = float(central_marginal_lower_bound(d=10, n_records=1000, epsilon=1.0, delta=1e-5))
    assert value == pytest.approx(10 * math.log(1e5) / 1e6, rel=1e-14)
    kw = {"epsilon": 1.0, "delta": 1e-5}
    base = central_marginal_lower_bound(d=10, n_records=1000, **kw)
    assert central_marginal_lower_bound(d=30, n_records=1000, **kw) / base == pytest.approx(3)
    assert base / central_marginal_lower_bound(d=10, n_records=2000, **kw) == pytest.approx(4)
    twice = central_marginal_lower_bound(d=10, n_records=1000, epsilon=2.0, delta=1e-5)
    assert base / twice == pytest.approx(4)
    # a tiny data set caps the error at c · C²
    assert float(central_marginal_lower_bound(d=1000, n_records=1, clip=3.0, **kw)) == 9.0
    capped = central_marginal_lower_bound(d=1000, n_records=1, clip=3.0, constant=0.5, **kw)
    assert float(capped) == 4.5
    records = np.array([1, 10, 100, 1000, 10**4])
    curve = central_marginal_lower_bound(d=100, n_records=records, **kw)
    assert curve.shape == (5,)
    assert np.all(curve <= 1.0)
    assert np.all(np.diff(curve) <= 0)


def test_distributed_is_n_times_central_at_n_times_m_records():
    d = np.array([1, 10, 100])[:, None]
    n = np.array([5, 20, 100])
    m = 50
    kw = {"epsilon": 1.0, "delta": 1e-5}
    distributed = distributed_dp_lower_bound(d=d, n=n, m=m, **kw)
    central = central_marginal_lower_bound(d=d, n_records=n * m, **kw)
    assert distributed.shape == (3, 3)
    assert np.all(distributed < 1)  # below the cap on this grid
    np.testing.assert_allclose(distributed, n * central, rtol=1e-13)
    hand = 10 * math.log(1e5) / (20 * 50**2)
    assert float(distributed_dp_lower_bound(d=10, n=20, m=50, **kw)) == pytest.approx(hand)


def test_trilemma_lower_bound_structure():
    kw = {"n": 20, "m": 10, "epsilon": 1.0, "delta": 1e-5}
    d = np.array([1, 8, 64])
    np.testing.assert_array_equal(
        trilemma_lower_bound(d=d, f=0, **kw), distributed_dp_lower_bound(d=d, **kw)
    )
    f = np.arange(10)
    curve = trilemma_lower_bound(d=8, f=f, **kw)
    assert np.all(np.diff(curve) > 0)
    # (d + f) ln(1/δ)/(ε² n m²), hand-evaluated at d = 8, f = 4
    assert curve[4] == pytest.approx(12 * math.log(1e5) / (20 * 100), rel=1e-14)
    # adding f Byzantine workers costs exactly what f more dimensions would
    np.testing.assert_allclose(
        trilemma_lower_bound(d=8, f=f, **kw), trilemma_lower_bound(d=8 + f, f=0, **kw)
    )
    assert trilemma_lower_bound(d=8, f=3, constant=2.5, **kw) == pytest.approx(
        2.5 * trilemma_lower_bound(d=8, f=3, **kw), rel=1e-14
    )
    assert float(trilemma_lower_bound(d=8, f=3, constant=0.0, **kw)) == 0.0
    assert float(trilemma_lower_bound(d=10**9, f=3, clip=2.0, **kw)) == 4.0


def test_upper_bounds_sit_above_the_lower_bound_shape_at_constant_one():
    """At c = 1 the averaging term alone, d s²/h ≥ 8 d ln(1/δ)/(ε² n m²), exceeds the shape
    (d + f) ln(1/δ)/(ε² n m²) whenever 7d ≥ f; an upper bound below it would be a wrong formula."""
    d = np.array([1, 16, 256, 4096])
    kw = {"n": 20, "m": 100, "epsilon": 0.5, "delta": 1e-5}
    lower = trilemma_lower_bound(d=d, f=4, **kw)
    assert np.all(lower < 1)
    assert np.all(smea_error_rate(d=d, f=4, **kw) > lower)
    assert np.all(naive_error_rate(kappa=kappa("cwtm", n=20, f=4), d=d, f=4, **kw) > lower)


# --------------------------------------------------------------------------------------------
# Bad input


VALID = {
    gaussian_noise_std: {"sensitivity": 1.0, "epsilon": 0.5, "delta": 0.1},
    honest_average_error: {"d": 4, "n_honest": 3, "noise_std": 1.0},
    noise_spread: {"d": 4, "n_honest": 3, "noise_std": 1.0},
    noise_top_eigenvalue_bound: {"d": 4, "n_honest": 3, "noise_std": 1.0},
    robust_error_upper_bound: {"kappa": 1.0, "spread": 1.0, "offset": 0.0},
    naive_upper_bound: {"kappa": 1.0, "d": 4, "n": 9, "f": 2, "noise_std": 1.0},
    smea_upper_bound: {"d": 4, "n": 10, "f": 2, "noise_std": 1.0},
    naive_error_rate: {"kappa": 1.0, "d": 4, "n": 9, "f": 2, "m": 3, "epsilon": 0.5, "delta": 0.1},
    smea_error_rate: {"d": 4, "n": 9, "f": 2, "m": 3, "epsilon": 0.5, "delta": 0.1},
    central_marginal_lower_bound: {"d": 2, "n_records": 10, "epsilon": 1.0, "delta": 0.1},
    distributed_dp_lower_bound: {"d": 2, "n": 10, "m": 3, "epsilon": 1.0, "delta": 0.1},
    trilemma_lower_bound: {"d": 2, "n": 9, "f": 2, "m": 3, "epsilon": 1.0, "delta": 0.1},
}


@pytest.mark.parametrize(
    ("function", "change", "message"),
    [
        (honest_average_error, {"d": 0}, "d=0 must be an integer >= 1"),
        (noise_spread, {"d": 1.5}, r"d=1\.5 must be an integer >= 1"),
        (noise_top_eigenvalue_bound, {"n_honest": 0}, "n_honest=0 must be an integer >= 1"),
        (honest_average_error, {"noise_std": -1.0}, "noise_std=-1 must be >= 0"),
        (noise_spread, {"noise_std": np.nan}, "noise_std=nan must be >= 0"),
        (gaussian_noise_std, {"epsilon": 0.0}, "epsilon=0 must be > 0"),
        (gaussian_noise_std, {"epsilon": -2.0}, "epsilon=-2 must be > 0"),
        (gaussian_noise_std, {"sensitivity": 0.0}, "sensitivity=0 must be > 0"),
        (gaussian_noise_std, {"delta": 1}, r"delta=1 must lie in \(0, 1\)"),
        (gaussian_noise_std, {"delta": 0.0}, r"delta=0 must lie in \(0, 1\)"),
        (robust_error_upper_bound, {"spread": -1.0}, "spread=-1 must be >= 0"),
        (robust_error_upper_bound, {"kappa": -0.5}, r"kappa=-0\.5 must be >= 0"),
        (robust_error_upper_bound, {"offset": -2.0}, "offset=-2 must be >= 0"),
        (naive_upper_bound, {"f": 5}, r"f=5 must satisfy 2f < n=9"),
        (naive_upper_bound, {"data_spread": -1.0}, "data_spread=-1 must be >= 0"),
        (naive_upper_bound, {"data_offset": -1.0}, "data_offset=-1 must be >= 0"),
        (smea_upper_bound, {"f": 5}, r"f=5 must satisfy 2f < n=10"),
        (smea_upper_bound, {"data_top_eigenvalue": -1.0}, "data_top_eigenvalue=-1 must be >= 0"),
        (naive_error_rate, {"m": 0}, "m=0 must be an integer >= 1"),
        (naive_error_rate, {"f": -1}, "f=-1 must be"),
        (smea_error_rate, {"delta": 1.5}, r"delta=1\.5 must lie in \(0, 1\)"),
        (smea_error_rate, {"clip": 0.0}, "clip=0 must be > 0"),
        (central_marginal_lower_bound, {"d": 0}, "d=0 must be an integer >= 1"),
        (central_marginal_lower_bound, {"n_records": 0}, "n_records=0 must be an integer >= 1"),
        (central_marginal_lower_bound, {"constant": -1.0}, "constant=-1 must be >= 0"),
        (distributed_dp_lower_bound, {"m": 2.5}, r"m=2\.5 must be an integer >= 1"),
        (trilemma_lower_bound, {"f": 5}, r"f=5 must satisfy 2f < n=9 \(2f=10\)"),
        (trilemma_lower_bound, {"epsilon": -1.0}, "epsilon=-1 must be > 0"),
    ],
)
def test_bad_values_are_named(function, change, message):
    function(**VALID[function])  # the valid call goes through
    with pytest.raises(ValueError, match=message):
        function(**{**VALID[function], **change})


def test_bad_values_inside_arrays_are_named():
    with pytest.raises(ValueError, match="d=0 must be an integer >= 1"):
        honest_average_error(d=np.array([3, 0, 5]), n_honest=3, noise_std=1.0)
    with pytest.raises(ValueError, match=r"delta=1\.2 must lie in \(0, 1\)"):
        gaussian_noise_std(sensitivity=1.0, epsilon=0.5, delta=np.array([0.1, 1.2]))
    with pytest.raises(ValueError, match=r"f=3 must satisfy 2f < n=6"):
        smea_upper_bound(d=4, n=np.array([10, 6]), f=3, noise_std=1.0)


@pytest.mark.parametrize("d", ["16", None, True, [1.0, "2"]])
def test_non_numeric_dimension_is_a_type_error(d):
    with pytest.raises(TypeError, match="d must be an integer or an array of integers"):
        honest_average_error(d=d, n_honest=3, noise_std=1.0)
    with pytest.raises(TypeError, match="d must be an integer or an array of integers"):
        trilemma_lower_bound(d=d, n=9, f=2, m=3, epsilon=1.0, delta=0.1)


def test_the_lower_bound_is_labelled_a_conjectured_shape():
    """Its f term is not a lower bound over protocols (κ ≥ f/(n − 2f) bounds rules only): the
    docstring must say so, and the constant must stay a parameter."""
    doc = " ".join(trilemma_lower_bound.__doc__.split())
    assert "conjectured shape" in doc and "not** a lower bound over protocols" in doc
    assert "provable" not in doc
    kw = {"d": 8, "n": 20, "f": 4, "m": 10, "epsilon": 0.5, "delta": 1e-5}
    assert float(trilemma_lower_bound(constant=3.0, **kw)) == pytest.approx(
        3 * float(trilemma_lower_bound(**kw)), rel=1e-15
    )

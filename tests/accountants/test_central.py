"""Central accountants against dp-accounting, Opacus and closed forms."""

import math

import dp_accounting
import numpy as np
import opacus.accountants
import pytest
from dp_accounting import dp_event, rdp

from trilemma.accountants import (
    dpsgd_delta,
    dpsgd_epsilon,
    gaussian_epsilon,
    get_epsilon,
    laplace_epsilon,
    sgd_event,
)


def test_dpsgd_reference_values():
    # reference values computed with dp-accounting 0.6.0 (RdpAccountant / PLDAccountant defaults)
    kwargs = dict(noise_multiplier=1.1, sample_rate=0.01, steps=10_000, delta=1e-5)
    assert abs(dpsgd_epsilon(**kwargs) - 5.632011) < 1e-6
    assert abs(dpsgd_epsilon(method="pld", **kwargs) - 5.192620) < 1e-6


def test_dpsgd_equals_raw_dp_accounting():
    event = dp_event.SelfComposedDpEvent(
        dp_event.PoissonSampledDpEvent(0.02, dp_event.GaussianDpEvent(0.9)), 700
    )
    raw = rdp.RdpAccountant().compose(event).get_epsilon(1e-6)
    ours = dpsgd_epsilon(noise_multiplier=0.9, sample_rate=0.02, steps=700, delta=1e-6)
    assert ours == raw


def test_dpsgd_close_to_opacus_rdp():
    accountant = opacus.accountants.RDPAccountant()
    accountant.history = [(1.1, 0.01, 10_000)]
    theirs = accountant.get_epsilon(1e-5)
    ours = dpsgd_epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=10_000, delta=1e-5)
    # both are RDP upper bounds; they differ by their grids of orders and conversions
    assert abs(ours - theirs) / theirs < 0.05


def test_single_gaussian_analytic_value():
    assert abs(gaussian_epsilon(noise_multiplier=1.0, delta=1e-5) - 4.377178) < 1e-6


@pytest.mark.parametrize(("sigma", "k"), [(1.0, 1), (2.0, 4), (5.0, 30)])
def test_gaussian_methods_sandwich_the_exact_value(sigma, k):
    exact = gaussian_epsilon(noise_multiplier=sigma, compositions=k, delta=1e-5)
    pld = gaussian_epsilon(noise_multiplier=sigma, compositions=k, delta=1e-5, method="pld")
    rdp_value = gaussian_epsilon(noise_multiplier=sigma, compositions=k, delta=1e-5, method="rdp")
    assert exact <= pld + 1e-9 and pld < exact * 1.01 + 1e-3
    assert rdp_value >= exact


def test_gaussian_exact_is_the_classic_bound_or_better():
    # classic Gaussian mechanism (Dwork & Roth 2014, Thm. A.1): σ = √(2 ln(1.25/δ)) / ε, ε < 1
    eps, delta = 0.5, 1e-5
    sigma = math.sqrt(2 * math.log(1.25 / delta)) / eps
    assert gaussian_epsilon(noise_multiplier=sigma, delta=delta) <= eps


def test_laplace():
    assert laplace_epsilon(noise_multiplier=4.0, compositions=2, method="pure") == 0.5
    pld = laplace_epsilon(noise_multiplier=2.0, delta=1e-9, method="pld")
    # one Laplace mechanism of scale b is exactly 1/b-DP; δ > 0 can only help
    assert 0.45 < pld <= 0.5 + 1e-4
    many = laplace_epsilon(noise_multiplier=10.0, compositions=100, delta=1e-5, method="rdp")
    assert many < 100 / 10.0  # advanced composition beats basic composition


def test_sampling_without_replacement():
    kwargs = dict(noise_multiplier=1.2, steps=100, dataset_size=1000, delta=1e-5)
    full = dpsgd_epsilon(
        batch_size=1000, sampling="without_replacement", neighboring="replace_one", **kwargs
    )
    # full batch under replace-one is a Gaussian mechanism with half the noise multiplier
    gaussian = gaussian_epsilon(noise_multiplier=0.6, compositions=100, delta=1e-5, method="rdp")
    assert math.isclose(full, gaussian, rel_tol=1e-12)
    sampled = dpsgd_epsilon(
        batch_size=10, sampling="without_replacement", neighboring="replace_one", **kwargs
    )
    assert sampled < full
    with pytest.raises(ValueError, match="method='pld' cannot account"):
        dpsgd_epsilon(
            batch_size=10,
            sampling="without_replacement",
            neighboring="replace_one",
            method="pld",
            **kwargs,
        )
    with pytest.raises(ValueError, match="only under neighboring='replace_one'"):
        dpsgd_epsilon(batch_size=10, sampling="without_replacement", **kwargs)


def test_poisson_replace_one_only_at_full_batch():
    full = dpsgd_epsilon(
        noise_multiplier=2.0, sample_rate=1.0, steps=10, delta=1e-5, neighboring="replace_one"
    )
    half_noise = dpsgd_epsilon(noise_multiplier=1.0, sample_rate=1.0, steps=10, delta=1e-5)
    assert full == half_noise
    with pytest.raises(ValueError, match="add_remove' only"):
        sgd_event(noise_multiplier=1.0, sample_rate=0.5, steps=1, neighboring="replace_one")


def test_delta_and_epsilon_are_inverse():
    kwargs = dict(noise_multiplier=1.0, sample_rate=0.05, steps=300)
    eps = dpsgd_epsilon(delta=1e-6, **kwargs)
    assert math.isclose(dpsgd_delta(epsilon=eps, **kwargs), 1e-6, rel_tol=1e-3)


def test_accepts_any_event():
    event = dp_accounting.ComposedDpEvent(
        [dp_accounting.GaussianDpEvent(3.0), dp_accounting.LaplaceDpEvent(5.0)]
    )
    assert get_epsilon(event, delta=1e-5, method="pld") > get_epsilon(
        dp_accounting.GaussianDpEvent(3.0), delta=1e-5, method="pld"
    )
    assert get_epsilon(dp_accounting.NoOpDpEvent(), delta=1e-5) == 0.0
    with pytest.raises(TypeError, match="DpEvent"):
        get_epsilon("gaussian", delta=1e-5)


def test_monotone_in_noise_steps_and_rate():
    base = dict(noise_multiplier=1.0, sample_rate=0.01, steps=1000, delta=1e-5)
    eps = dpsgd_epsilon(**base)
    assert dpsgd_epsilon(**base | dict(noise_multiplier=1.2)) < eps
    assert dpsgd_epsilon(**base | dict(steps=2000)) > eps
    assert dpsgd_epsilon(**base | dict(sample_rate=0.02)) > eps


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        (dict(noise_multiplier=0.0), "noise_multiplier=0.0 must lie in"),
        (dict(noise_multiplier=-1.0), "noise_multiplier=-1.0 must lie in"),
        (dict(noise_multiplier=float("nan")), "noise_multiplier=nan"),
        (dict(sample_rate=0.0), r"sample_rate=0.0 must lie in \(0, 1\]"),
        (dict(sample_rate=1.5), r"sample_rate=1.5 must lie in \(0, 1\]"),
        (dict(sample_rate=float("nan")), "sample_rate=nan"),
        (dict(steps=0), r"steps=0 must be an integer in \[1, inf\)"),
        (dict(delta=0.0), r"delta=0.0 must lie in \(0, 1\)"),
        (dict(delta=1.0), r"delta=1.0 must lie in \(0, 1\)"),
        (dict(delta=float("nan")), "delta=nan"),
        (dict(method="moments"), "method='moments' is not valid"),
    ],
)
def test_bad_input(override, pattern):
    kwargs = dict(noise_multiplier=1.0, sample_rate=0.01, steps=10, delta=1e-5) | override
    with pytest.raises(ValueError, match=pattern):
        dpsgd_epsilon(**kwargs)


def test_bad_types():
    with pytest.raises(TypeError, match="steps must be an integer"):
        dpsgd_epsilon(noise_multiplier=1.0, sample_rate=0.01, steps=10.5, delta=1e-5)
    with pytest.raises(TypeError, match="delta must be a real number"):
        dpsgd_epsilon(noise_multiplier=1.0, sample_rate=0.01, steps=10, delta="1e-5")
    with pytest.raises(ValueError, match=r"epsilon=0\.0 must lie in"):
        dpsgd_delta(noise_multiplier=1.0, sample_rate=0.01, steps=10, epsilon=0.0)
    assert np.isfinite(
        dpsgd_epsilon(
            noise_multiplier=np.float32(1.0), sample_rate=0.01, steps=np.int64(10), delta=1e-5
        )
    )

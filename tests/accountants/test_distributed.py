"""Per-worker noise for distributed DP."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trilemma.accountants import (
    calibrate_dpsgd,
    calibrate_gaussian,
    worker_epsilon,
    worker_noise_std,
)


def test_full_batch_is_a_gaussian_mechanism_with_sensitivity_2c_over_m():
    clip, m, steps = 2.0, 50, 30
    s = worker_noise_std(epsilon=3.0, delta=1e-6, steps=steps, local_size=m, clip=clip)
    sigma = calibrate_gaussian(target_epsilon=3.0, delta=1e-6, compositions=steps, method="rdp")
    assert math.isclose(s, sigma * 2 * clip / m, rel_tol=1e-6)


def test_poisson_add_remove_matches_dpsgd():
    s = worker_noise_std(
        epsilon=2.0,
        delta=1e-5,
        steps=100,
        local_size=400,
        batch_size=20,
        clip=1.0,
        sampling="poisson",
        neighboring="add_remove",
    )
    z = calibrate_dpsgd(target_epsilon=2.0, sample_rate=20 / 400, steps=100, delta=1e-5)
    assert math.isclose(s, z / 20, rel_tol=1e-12)


@settings(max_examples=3, deadline=None)
@given(
    epsilon=st.floats(0.5, 10.0),
    m=st.integers(20, 500),
    batch_fraction=st.floats(0.05, 1.0),
    steps=st.integers(1, 20),
)
def test_round_trip(epsilon, m, batch_fraction, steps):
    b = max(1, int(batch_fraction * m))
    kwargs = dict(delta=1e-5, steps=steps, local_size=m, batch_size=b, clip=1.0)
    s = worker_noise_std(epsilon=epsilon, **kwargs)
    achieved = worker_epsilon(noise_std=s, **kwargs)
    assert achieved <= epsilon
    # dp-accounting's RDP for sampling without replacement is jagged in σ at the 1% level
    # (measured: m=20, b=19, T=2, σ≈24.86 gives ε between 0.498 and 0.506 within ±0.05% of σ),
    # so the tight 1e-3 round trip is asserted for Poisson DP-SGD (test_calibration) only.
    assert achieved >= epsilon * (1 - 1e-2)


def test_more_local_data_needs_less_noise():
    values = [
        worker_noise_std(epsilon=1.0, delta=1e-5, steps=10, local_size=m, clip=1.0)
        for m in (10, 100, 1000)
    ]
    assert values[0] > values[1] > values[2]
    assert math.isclose(values[0] / values[2], 100.0, rel_tol=1e-6)  # full batch: s ∝ 1/m


def test_bad_input():
    with pytest.raises(ValueError, match="batch_size=20 must be an integer in"):
        worker_noise_std(epsilon=1.0, delta=1e-5, steps=1, local_size=10, batch_size=20, clip=1.0)
    with pytest.raises(ValueError, match=r"clip=0\.0 must lie in"):
        worker_epsilon(noise_std=1.0, delta=1e-5, steps=1, local_size=10, clip=0.0)
    with pytest.raises(ValueError, match="local_size=0 must be an integer"):
        worker_epsilon(noise_std=1.0, delta=1e-5, steps=1, local_size=0, clip=1.0)
    with pytest.raises(ValueError, match=r"noise_std=-1\.0 must lie in"):
        worker_epsilon(noise_std=-1.0, delta=1e-5, steps=1, local_size=10, clip=1.0)

"""Calibration never overshoots the budget and lands within 1e-3 of it."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trilemma.accountants import (
    calibrate_dpsgd,
    calibrate_dpsgd_steps,
    calibrate_gaussian,
    dpsgd_epsilon,
    gaussian_epsilon,
)


def check_rdp_round_trip(q, steps, delta, target):
    sigma = calibrate_dpsgd(target_epsilon=target, sample_rate=q, steps=steps, delta=delta)
    achieved = dpsgd_epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta)
    assert achieved <= target
    assert target - achieved <= 1e-3


rdp_settings = dict(
    q=st.floats(1e-3, 0.3),
    steps=st.integers(1, 5000),
    delta=st.floats(1e-9, 1e-3),
    target=st.floats(0.3, 20.0),
)


@settings(max_examples=12, deadline=None)
@given(**rdp_settings)
def test_rdp_calibration_round_trip(q, steps, delta, target):
    check_rdp_round_trip(q, steps, delta, target)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(**rdp_settings)
def test_rdp_calibration_round_trip_full_search(q, steps, delta, target):
    check_rdp_round_trip(q, steps, delta, target)


@settings(max_examples=2, deadline=None)
@given(
    q=st.floats(0.01, 0.2),
    steps=st.integers(1, 10),
    target=st.floats(1.0, 8.0),
)
def test_pld_calibration_round_trip(q, steps, target):
    kwargs = dict(sample_rate=q, steps=steps, delta=1e-5, method="pld")
    sigma = calibrate_dpsgd(target_epsilon=target, **kwargs)
    achieved = dpsgd_epsilon(noise_multiplier=sigma, **kwargs)
    assert target - 1e-3 <= achieved <= target


@settings(max_examples=20, deadline=None)
@given(target=st.floats(0.05, 30.0), delta=st.floats(1e-10, 1e-2), k=st.integers(1, 1000))
def test_gaussian_analytic_calibration(target, delta, k):
    sigma = calibrate_gaussian(target_epsilon=target, delta=delta, compositions=k)
    achieved = gaussian_epsilon(noise_multiplier=sigma, delta=delta, compositions=k)
    assert math.isclose(achieved, target, rel_tol=1e-6)


def test_without_replacement_calibration():
    kwargs = dict(
        steps=200,
        delta=1e-5,
        dataset_size=600,
        batch_size=30,
        sampling="without_replacement",
        neighboring="replace_one",
    )
    sigma = calibrate_dpsgd(target_epsilon=2.0, **kwargs)
    achieved = dpsgd_epsilon(noise_multiplier=sigma, **kwargs)
    assert 2.0 - 1e-3 <= achieved <= 2.0


@settings(max_examples=10, deadline=None)
@given(q=st.floats(0.001, 0.1), sigma=st.floats(0.8, 3.0), target=st.floats(1.0, 10.0))
def test_steps_calibration_is_the_largest_feasible(q, sigma, target):
    kwargs = dict(noise_multiplier=sigma, sample_rate=q, delta=1e-5)
    try:
        steps = calibrate_dpsgd_steps(target_epsilon=target, max_steps=10**6, **kwargs)
    except ValueError:  # one step already over budget: check that claim
        assert dpsgd_epsilon(steps=1, **kwargs) > target
        return
    assert dpsgd_epsilon(steps=steps, **kwargs) <= target
    if steps < 10**6:
        assert dpsgd_epsilon(steps=steps + 1, **kwargs) > target


def test_steps_calibration_rejects_impossible_budget():
    with pytest.raises(ValueError, match="one step already spends more"):
        calibrate_dpsgd_steps(
            target_epsilon=0.01, noise_multiplier=0.5, sample_rate=1.0, delta=1e-5
        )


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        (dict(target_epsilon=0.0), "target_epsilon=0.0 must lie in"),
        (dict(target_epsilon=-2.0), "target_epsilon=-2.0 must lie in"),
        (dict(delta=2.0), "delta=2.0 must lie in"),
        (dict(sample_rate=0.0), "sample_rate=0.0 must lie in"),
        (dict(steps=0), "steps=0 must be an integer"),
    ],
)
def test_bad_input(override, pattern):
    kwargs = dict(target_epsilon=1.0, sample_rate=0.01, steps=10, delta=1e-5) | override
    with pytest.raises(ValueError, match=pattern):
        calibrate_dpsgd(**kwargs)

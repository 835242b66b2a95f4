"""Noise and step-count calibration for a privacy budget.

The search is dp-accounting's ``calibrate_dp_mechanism`` (Brent's method with a bisection
fallback that guarantees a non-positive ε gap). We supply an explicit bracket found by doubling
and a tolerance relative to the bracket, then re-check the answer: the returned noise never
gives more than the target ε, and the returned step count is the largest that fits.
"""

from __future__ import annotations

from collections.abc import Callable

import dp_accounting
from dp_accounting import dp_event

from trilemma._validation import check_choice, check_int, check_real
from trilemma.accountants.central import (
    METHODS,
    Method,
    Neighboring,
    Sampling,
    default_neighboring,
    get_epsilon,
    make_accountant,
    sgd_event,
)

__all__ = ["calibrate_dpsgd", "calibrate_dpsgd_steps", "calibrate_gaussian", "calibrate_noise"]

_MAX_DOUBLINGS = 60


def _bracket_decreasing(epsilon_of: Callable[[float], float], target: float) -> tuple[float, float]:
    """Find 0 < low < high with ε(low) > target ≥ ε(high) for ε decreasing in its argument."""
    low, high = 0.5, 1.0
    if epsilon_of(high) <= target:  # walk down: halve until infeasible
        for _ in range(_MAX_DOUBLINGS):
            if epsilon_of(low) > target:
                return low, high
            low, high = low / 2.0, low
        raise ValueError(f"target_epsilon={target} is reached even with noise {low:g}")
    for _ in range(_MAX_DOUBLINGS):  # walk up: double until feasible
        low, high = high, 2.0 * high
        if epsilon_of(high) <= target:
            return low, high
    raise ValueError(f"no noise level up to {high:g} reaches target_epsilon={target}")


def calibrate_noise(
    make_event: Callable[[float], dp_event.DpEvent],
    *,
    target_epsilon: float,
    delta: float,
    method: Method = "rdp",
    neighboring: Neighboring | None = None,
    rtol: float = 1e-6,
) -> float:
    """Smallest noise parameter x (up to ``rtol``) with ε(make_event(x)) ≤ target_epsilon.

    Parameters
    ----------
    make_event : callable
        Maps a noise parameter x > 0 to a dp-accounting event whose ε decreases in x.
    target_epsilon : float
        Budget ε* > 0.
    delta : float
        δ ∈ (0, 1).
    method, neighboring
        As in :func:`trilemma.accountants.get_epsilon`.
    rtol : float
        Relative tolerance on x.

    Returns
    -------
    float
        x with ε(x) ≤ ε*, within ``rtol`` (relative to the bracket) of the exact solution.
    """
    target = check_real("target_epsilon", target_epsilon, low=0, low_open=True)
    check_real("delta", delta, low=0, high=1, low_open=True, high_open=True)
    check_choice("method", method, METHODS)
    check_real("rtol", rtol, low=0, high=1, low_open=True, high_open=True)

    def epsilon_of(x: float) -> float:
        return get_epsilon(make_event(x), delta=delta, method=method, neighboring=neighboring)

    low, high = _bracket_decreasing(epsilon_of, target)
    relation = neighboring if neighboring is not None else default_neighboring(make_event(high))
    x = dp_accounting.calibrate_dp_mechanism(
        lambda: make_accountant(method, neighboring=relation),
        make_event,
        target,
        delta,
        bracket_interval=dp_accounting.ExplicitBracketInterval(low, high),
        tol=rtol * low,
    )
    # calibrate_dp_mechanism re-evaluates its root and returns a point with ε ≤ target.
    return float(x)


def calibrate_gaussian(
    *,
    target_epsilon: float,
    delta: float,
    compositions: int = 1,
    method: str = "analytic",
) -> float:
    """Noise multiplier of ``compositions`` Gaussian mechanisms meeting (ε*, δ).

    ``"analytic"`` inverts the exact curve of Balle & Wang 2018 (arXiv:1805.06530) with
    ``dp_accounting.get_sigma_gaussian`` and scales by √k (k-fold composition of Gaussians is a
    Gaussian, Dong, Roth, Su 2022, Cor. 3.3).

    Examples
    --------
    >>> round(calibrate_gaussian(target_epsilon=4.377178, delta=1e-5), 4)
    1.0
    """
    target = check_real("target_epsilon", target_epsilon, low=0, low_open=True)
    check_real("delta", delta, low=0, high=1, low_open=True, high_open=True)
    count = check_int("compositions", compositions, low=1)
    check_choice("method", method, ("analytic", *METHODS))
    if method == "analytic":
        return float(dp_accounting.get_sigma_gaussian(target, delta)) * count**0.5
    return calibrate_noise(
        lambda s: dp_event.SelfComposedDpEvent(dp_event.GaussianDpEvent(s), count),
        target_epsilon=target,
        delta=delta,
        method=method,  # type: ignore[arg-type]
    )


def calibrate_dpsgd(
    *,
    target_epsilon: float,
    steps: int,
    delta: float,
    sample_rate: float | None = None,
    method: Method = "rdp",
    dataset_size: int | None = None,
    batch_size: int | None = None,
    sampling: Sampling = "poisson",
    neighboring: Neighboring = "add_remove",
) -> float:
    """Smallest DP-SGD noise multiplier with ε ≤ target_epsilon (parameters of ``sgd_event``).

    Examples
    --------
    >>> from trilemma.accountants import dpsgd_epsilon
    >>> sigma = calibrate_dpsgd(target_epsilon=3.0, sample_rate=0.01, steps=1000, delta=1e-5)
    >>> eps = dpsgd_epsilon(noise_multiplier=sigma, sample_rate=0.01, steps=1000, delta=1e-5)
    >>> round(sigma, 3), eps <= 3.0, round(eps, 4)
    (0.865, True, 3.0)
    """

    def make_event(sigma: float) -> dp_event.DpEvent:
        return sgd_event(
            noise_multiplier=sigma,
            steps=steps,
            sample_rate=sample_rate,
            dataset_size=dataset_size,
            batch_size=batch_size,
            sampling=sampling,
            neighboring=neighboring,
        )

    make_event(1.0)  # validates every argument before the search starts
    return calibrate_noise(make_event, target_epsilon=target_epsilon, delta=delta, method=method)


def calibrate_dpsgd_steps(
    *,
    target_epsilon: float,
    noise_multiplier: float,
    delta: float,
    sample_rate: float | None = None,
    method: Method = "rdp",
    dataset_size: int | None = None,
    batch_size: int | None = None,
    sampling: Sampling = "poisson",
    neighboring: Neighboring = "add_remove",
    max_steps: int = 10**8,
) -> int:
    """Largest number of DP-SGD steps whose ε stays ≤ target_epsilon.

    Raises
    ------
    ValueError
        If even one step exceeds the budget.

    Examples
    --------
    >>> from trilemma.accountants import dpsgd_epsilon
    >>> steps = calibrate_dpsgd_steps(target_epsilon=2.0, noise_multiplier=1.0, sample_rate=0.01,
    ...                               delta=1e-5)
    >>> [dpsgd_epsilon(noise_multiplier=1.0, sample_rate=0.01, steps=t, delta=1e-5) <= 2.0
    ...  for t in (steps, steps + 1)]
    [True, False]
    """
    target = check_real("target_epsilon", target_epsilon, low=0, low_open=True)
    limit = check_int("max_steps", max_steps, low=1)

    def make_event(steps: float) -> dp_event.DpEvent:
        return sgd_event(
            noise_multiplier=noise_multiplier,
            steps=int(steps),
            sample_rate=sample_rate,
            dataset_size=dataset_size,
            batch_size=batch_size,
            sampling=sampling,
            neighboring=neighboring,
        )

    def epsilon_of(steps: int) -> float:
        return get_epsilon(make_event(steps), delta=delta, method=method)

    if epsilon_of(1) > target:
        raise ValueError(
            f"one step already spends more than target_epsilon={target}: "
            f"ε(1 step)={epsilon_of(1):.6g}; increase noise_multiplier"
        )
    low, high = 1, 2  # invariant: ε(low) ≤ target
    while high <= limit and epsilon_of(high) <= target:
        low, high = high, 2 * high
    if high > limit:
        if epsilon_of(limit) <= target:
            return limit
        high = limit
    if high - low == 1:
        return low

    relation = default_neighboring(make_event(low))
    steps = dp_accounting.calibrate_dp_mechanism(
        lambda: make_accountant(method, neighboring=relation),
        make_event,
        target,
        delta,
        bracket_interval=dp_accounting.ExplicitBracketInterval(low, high),
        discrete=True,
    )
    # dp-accounting returns a feasible count within 1 of the largest one.
    return steps + 1 if steps + 1 < high and epsilon_of(steps + 1) <= target else steps

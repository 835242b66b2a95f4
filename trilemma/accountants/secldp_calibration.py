"""σ_cor calibration of SecLDP: the smallest edge-secret noise that meets a privacy budget.

ε of the worst honest node decreases in σ_cor (more correlated noise only adds variance to
Σ_H = σ² I + σ_cor² L_H, :mod:`trilemma.accountants.secldp`), from the local-noise value at
σ_cor = 0 to the central rate of the smallest honest component as σ_cor → ∞. A doubling from
σ brackets the smallest feasible σ_cor; dp-accounting's ``calibrate_dp_mechanism`` (Brent's
method with a bisection fallback) then finds it on :class:`SecLDPAccountant` and returns the
feasible end, as :mod:`trilemma.accountants.calibration` does for DP-SGD.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import attr
import dp_accounting
from dp_accounting import dp_event

from trilemma._validation import check_int, check_real
from trilemma.accountants.secldp import (
    SecLDPAccountant,
    SecLDPDpEvent,
    SecLDPMethod,
    SecLDPSampling,
    event_epsilon,
    honest_positions,
    node_epsilon,
)

__all__ = ["calibrate_event_sigma_cor", "calibrate_sigma_cor"]


def calibrate_event_sigma_cor(
    event: SecLDPDpEvent,
    *,
    target_epsilon: float,
    steps: int,
    delta: float,
    colluders: Iterable[Hashable] = (),
    method: SecLDPMethod = "rdp",
    rtol: float = 1e-6,
) -> float:
    """Smallest σ_cor whose worst-node ε after ``steps`` rounds of ``event`` (with its
    ``sigma_cor`` replaced) is ≤ target_epsilon.

    Parameters
    ----------
    event : SecLDPDpEvent
        The round; its graph, σ, C, m, b and sampling are kept, its σ_cor is ignored.
    target_epsilon, delta : float
        The budget (ε*, δ).
    steps : int
        Rounds T.
    colluders, method
        As in :class:`trilemma.accountants.SecLDPAccountant`.
    rtol : float
        Relative tolerance: the result x satisfies ε(x) ≤ ε* and x − x* ≤ rtol·max(x*, σ)
        for the exact smallest feasible x*.

    Returns
    -------
    float
        σ_cor ≥ 0; 0 when local noise σ alone meets the target.

    Raises
    ------
    ValueError
        If even σ_cor → ∞ (the central rate of each honest component, (Σ_H⁻¹)_ii → 1/(n_c σ²))
        exceeds the target: increase σ instead.

    Examples
    --------
    >>> event = SecLDPDpEvent("ring:16", sigma=17.827, sigma_cor=0.0, clip=1.0)
    >>> s = calibrate_event_sigma_cor(event, target_epsilon=10.292886, steps=3500,
    ...                               delta=1e-5, method="classic")
    >>> round(s, 2)
    188.0
    """
    target = check_real("target_epsilon", target_epsilon, low=0, low_open=True)
    check_real("rtol", rtol, low=0, high=1, low_open=True, high_open=True)
    count = check_int("steps", steps, low=1)
    colluders = tuple(colluders)

    def with_sigma_cor(sigma_cor: float) -> SecLDPDpEvent:
        return attr.evolve(event, sigma_cor=sigma_cor)

    def epsilon_of(sigma_cor: float) -> float:
        return event_epsilon(
            with_sigma_cor(sigma_cor), steps=count, delta=delta, colluders=colluders, method=method
        )

    if epsilon_of(0.0) <= target:
        return 0.0
    # σ_cor → ∞: (Σ_H⁻¹)_ii → 1/(n_c σ²) on a component of n_c nodes (the central rate);
    # the smallest honest component is the worst.
    topology = event.topology
    honest = honest_positions(topology, colluders)
    smallest = min(len(nodes) for nodes in topology.induced(honest).components())
    limit = node_epsilon(event, 1.0 / (smallest * event.sigma**2), count, delta, method)
    if limit > target:
        raise ValueError(
            f"target_epsilon={target} is out of reach with sigma={event.sigma}: even "
            f"sigma_cor → inf gives ε ≈ {limit:.6g} (the central rate); increase sigma"
        )
    low, high = 0.0, event.sigma
    while epsilon_of(high) > target:
        low, high = high, 2.0 * high
    sigma_cor = dp_accounting.calibrate_dp_mechanism(
        lambda: SecLDPAccountant(colluders=colluders, method=method),
        lambda value: dp_event.SelfComposedDpEvent(with_sigma_cor(value), count),
        target,
        delta,
        bracket_interval=dp_accounting.ExplicitBracketInterval(low, high),
        tol=rtol * max(low, event.sigma),
    )
    # calibrate_dp_mechanism re-evaluates its root and returns a point with ε ≤ target.
    return float(sigma_cor)


def calibrate_sigma_cor(
    graph: object,
    *,
    target_epsilon: float,
    sigma: float,
    clip: float,
    steps: int,
    delta: float,
    colluders: Iterable[Hashable] = (),
    method: SecLDPMethod = "rdp",
    local_size: int = 1,
    batch_size: int = 1,
    sampling: SecLDPSampling = "without_replacement",
    rtol: float = 1e-6,
) -> float:
    """:func:`calibrate_event_sigma_cor` of the :class:`SecLDPDpEvent` built from the keywords.

    Examples
    --------
    >>> s = calibrate_sigma_cor("ring:16", target_epsilon=10.292886, sigma=17.827, clip=1.0,
    ...                         steps=3500, delta=1e-5, method="classic")
    >>> round(s, 2)
    188.0
    """
    event = SecLDPDpEvent(graph, sigma, 0.0, clip, local_size, batch_size, sampling)
    return calibrate_event_sigma_cor(
        event,
        target_epsilon=target_epsilon,
        steps=steps,
        delta=delta,
        colluders=colluders,
        method=method,
        rtol=rtol,
    )

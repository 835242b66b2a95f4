"""Noise of decentralized runs calibrated to a target (ε, δ): local DP, central DP and DECOR.

All three protect one node's contribution (user level: its clipped update, sensitivity 2C; or
example level with batches of b of its m records) over T rounds, accounted by
:func:`trilemma.accountants.secldp_epsilon` (any graph, colluders, RDP/PLD/classic):

- **local DP** — σ_cor = 0: the smallest σ_ldp with ε(σ, 0) ≤ ε*;
- **central DP** — a trusted averaging of the n updates, noise σ/√n on the mean: its privacy
  loss equals that of one node with noise σ√n, so σ_cdp = σ_ldp/√n [D: sensitivity 2C/n of
  the mean against noise σ_cdp/√n gives the multiplier σ_cdp√n/(2C) = σ_ldp/(2C)];
- **DECOR** — for σ in (σ_ldp/√n_c, σ_ldp] (n_c: the smallest honest component; below it even
  σ_cor → ∞ misses ε*), :func:`trilemma.accountants.calibrate_sigma_cor` gives the smallest
  σ_cor meeting ε*; among these pairs we pick the one that minimises the network-average noise
  variance per coordinate after one gossip round,

      V(σ, σ_cor) = (1/n) tr(W Σ Wᵀ) = (σ² ‖W‖_F² + σ_cor² tr(W L Wᵀ)) / n,   Σ = σ² I + σ_cor² L,

  [D: the noise entering round t + 1 is W z with z ~ N(0, Σ) per coordinate] — the variance
  the models actually carry, not the paper's bound — by a bounded 1-D search on log σ
  (``scipy.optimize.minimize_scalar``, about 25 accountant calibrations). Every returned pair
  is re-accounted: ε never exceeds ε*.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from scipy.optimize import minimize_scalar

from trilemma._validation import check_int, check_real
from trilemma.accountants import as_topology, calibrate_sigma_cor, secldp_epsilon
from trilemma.accountants.secldp import SecLDPMethod, SecLDPSampling
from trilemma.decentralized.mixing import mixing_matrix

__all__ = ["DecorNoise", "calibrate_decor", "central_sigma", "gossip_variance", "local_sigma"]

# Below σ_ldp/√n_c · (1 + _MARGIN) the σ_cor that meets ε* grows like 1/√(σ − σ_ldp/√n_c).
_MARGIN = 1e-3


class _Accounting(TypedDict):
    """The accounting keywords :func:`calibrate_decor` passes on unchanged."""

    clip: float
    steps: int
    delta: float
    method: SecLDPMethod
    local_size: int
    batch_size: int
    sampling: SecLDPSampling


@dataclass(frozen=True)
class DecorNoise:
    """A calibrated pair and what it costs.

    Attributes
    ----------
    sigma, sigma_cor : float
        Local and edge noise std.
    epsilon : float
        ε of the worst honest node, re-accounted (≤ the target).
    variance : float
        V(σ, σ_cor), the network-average noise variance per coordinate after one gossip round.
    """

    sigma: float
    sigma_cor: float
    epsilon: float
    variance: float


def gossip_variance(graph: object, *, sigma: float, sigma_cor: float, mixing: object) -> float:
    """V(σ, σ_cor) = (σ² ‖W‖_F² + σ_cor² tr(W L Wᵀ)) / n (module docstring) [D].

    Examples
    --------
    Exact averaging cancels the secrets (W L = 0): V = σ²/n.

    >>> gossip_variance("complete:4", sigma=2.0, sigma_cor=9.0, mixing="average")
    1.0
    """
    topology = as_topology(graph)
    w = mixing_matrix(mixing, topology)
    laplacian = topology.laplacian().toarray()
    n = topology.n_nodes
    return float((sigma**2 * np.sum(w * w) + sigma_cor**2 * np.trace(w @ laplacian @ w.T)) / n)


def _smallest_feasible(
    epsilon_of: Callable[[float], float], target: float, start: float, rtol: float
) -> float:
    """Smallest x > 0 (up to ``rtol``, from above) with ``epsilon_of(x) ≤ target`` for ε
    decreasing in x: a doubling bracket, then bisection keeping the feasible end."""
    low, high = start, start
    while epsilon_of(high) > target:
        low, high = high, 2.0 * high
    while epsilon_of(low) <= target:
        low, high = low / 2.0, low
    while high - low > rtol * high:
        middle = 0.5 * (low + high)
        if epsilon_of(middle) > target:
            low = middle
        else:
            high = middle
    return high


def local_sigma(
    graph: object,
    *,
    target_epsilon: float,
    clip: float,
    steps: int,
    delta: float,
    method: SecLDPMethod = "rdp",
    local_size: int = 1,
    batch_size: int = 1,
    sampling: SecLDPSampling = "without_replacement",
    rtol: float = 1e-6,
) -> float:
    """σ_ldp: the smallest local noise (σ_cor = 0) whose ε is ≤ ``target_epsilon``.

    Examples
    --------
    One user-level round at C = 1 is a Gaussian mechanism of sensitivity 2: σ = 2 × the
    multiplier 1 that gives ε = 4.377178 at δ = 1e-5 (THEORY.md §6, dp-accounting 0.6.0).

    >>> round(local_sigma("ring:4", target_epsilon=4.377178, clip=1.0, steps=1, delta=1e-5,
    ...                   method="pld"), 3)
    2.0
    """
    target = check_real("target_epsilon", target_epsilon, low=0, low_open=True)
    check_real("rtol", rtol, low=0, high=1, low_open=True, high_open=True)
    topology = as_topology(graph)

    def epsilon_of(sigma: float) -> float:
        return secldp_epsilon(
            topology,
            sigma=sigma,
            sigma_cor=0.0,
            clip=clip,
            steps=steps,
            delta=delta,
            method=method,
            local_size=local_size,
            batch_size=batch_size,
            sampling=sampling,
        )

    return _smallest_feasible(epsilon_of, target, start=float(clip), rtol=rtol)


def central_sigma(sigma_ldp: float, *, nodes: int) -> float:
    """σ_cdp = σ_ldp/√n: per-node noise whose exact average meets local noise σ_ldp's ε
    (module docstring)."""
    check_real("sigma_ldp", sigma_ldp, low=0, low_open=True)
    return sigma_ldp / math.sqrt(check_int("nodes", nodes, low=1))


def calibrate_decor(
    graph: object,
    *,
    target_epsilon: float,
    clip: float,
    steps: int,
    delta: float,
    colluders: Iterable[Hashable] = (),
    mixing: object = "metropolis",
    method: SecLDPMethod = "rdp",
    local_size: int = 1,
    batch_size: int = 1,
    sampling: SecLDPSampling = "without_replacement",
    rtol: float = 1e-5,
) -> DecorNoise:
    """(σ, σ_cor) meeting ``target_epsilon`` for the worst honest node with the least
    V(σ, σ_cor) (module docstring).

    Parameters
    ----------
    graph : object
        Communication graph (as :func:`trilemma.accountants.as_topology`).
    target_epsilon, delta : float
        The budget (ε*, δ).
    clip : float
        C, of the node's update (user level) or of each example.
    steps : int
        Rounds T.
    colluders : iterable of node labels
        Curious nodes pooling their secrets (privacy of the honest induced subgraph).
    mixing : str or array
        W of the run (enters V only).
    method, local_size, batch_size, sampling
        As in :func:`trilemma.accountants.secldp_epsilon`.
    rtol : float
        Relative tolerance of each σ_cor calibration.

    Returns
    -------
    DecorNoise

    Examples
    --------
    >>> noise = calibrate_decor("ring:16", target_epsilon=5.0, clip=1.0, steps=100,
    ...                         delta=1e-5)
    >>> noise.epsilon <= 5.0, noise.sigma_cor > noise.sigma
    (True, True)
    """
    target = check_real("target_epsilon", target_epsilon, low=0, low_open=True)
    topology = as_topology(graph)
    colluders = tuple(colluders)
    honest = np.setdiff1d(
        np.arange(topology.n_nodes), topology.indices(colluders, name="colluders")
    )
    if honest.size == 0:
        raise ValueError(f"colluders cover all {topology.n_nodes} nodes: the honest set is empty")
    smallest = min(len(part) for part in topology.induced(honest).components())
    accounting: _Accounting = {
        "clip": clip,
        "steps": steps,
        "delta": delta,
        "method": method,
        "local_size": local_size,
        "batch_size": batch_size,
        "sampling": sampling,
    }
    sigma_ldp = local_sigma(topology, target_epsilon=target, **accounting)
    sigma_low = sigma_ldp / math.sqrt(smallest) * (1.0 + _MARGIN)

    def pair(sigma: float) -> tuple[float, float]:
        sigma_cor = calibrate_sigma_cor(
            topology,
            target_epsilon=target,
            sigma=sigma,
            colluders=colluders,
            rtol=rtol,
            **accounting,
        )
        return sigma_cor, gossip_variance(topology, sigma=sigma, sigma_cor=sigma_cor, mixing=mixing)

    if smallest == 1 or sigma_low >= sigma_ldp:
        best = sigma_ldp  # an isolated honest node: correlated noise cannot help it
    else:
        search = minimize_scalar(
            lambda log_sigma: pair(math.exp(log_sigma))[1],
            bounds=(math.log(sigma_low), math.log(sigma_ldp)),
            method="bounded",
            options={"xatol": 1e-3},
        )
        best = math.exp(search.x)
        if pair(sigma_ldp)[1] < pair(best)[1]:  # the bounded search never evaluates the ends
            best = sigma_ldp
    sigma_cor, variance = pair(best)
    epsilon = secldp_epsilon(
        topology, sigma=best, sigma_cor=sigma_cor, colluders=colluders, **accounting
    )
    if epsilon > target:  # calibrate_sigma_cor returns the feasible end: never reached
        raise RuntimeError(f"calibration overshot: ε = {epsilon} > target {target}")
    return DecorNoise(best, sigma_cor, epsilon, variance)

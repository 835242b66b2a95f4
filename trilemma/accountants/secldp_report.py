"""SecLDP per-node report: exact (Σ_H⁻¹)_ii, ε per node and the closed-form bounds of each
honest component side by side (the mechanism and threat model are in
:mod:`trilemma.accountants.secldp`).

Bounds per connected component of the honest graph, of n_c nodes and algebraic connectivity
λ₂ (:mod:`trilemma.bounds.privacy`): the spectral bound from λ₂ and, for components up to
``_PINV_MAX_NODES`` nodes, the effective-resistance bound from max diag(L⁺).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np

from trilemma._validation import check_int, check_real
from trilemma.accountants.graphs import Topology
from trilemma.accountants.secldp import (
    SecLDPAccountant,
    SecLDPDpEvent,
    SecLDPMethod,
    SecLDPSampling,
)
from trilemma.bounds.privacy import (
    inverse_variance_resistance_bound,
    inverse_variance_spectral_bound,
)

__all__ = ["ComponentBounds", "SecLDPReport", "event_report", "secldp_report"]

# Components up to this size also get the pseudo-inverse (effective resistance) bound.
_PINV_MAX_NODES = 4000


@dataclass(frozen=True, slots=True)
class ComponentBounds:
    """Closed-form bounds on (Σ_H⁻¹)_ii for one connected component of the honest graph."""

    nodes: tuple[Hashable, ...]
    algebraic_connectivity: float
    exact_max: float
    spectral_bound: float
    resistance_bound_max: float


@dataclass(frozen=True, slots=True)
class SecLDPReport:
    """Per-node SecLDP accounting with its closed-form bounds side by side.

    ``epsilon`` uses ``method``; ``classic_epsilon`` the reference's conversion (NaN at
    example level). Arrays are indexed like ``labels``; colluders hold NaN.
    """

    labels: tuple[Hashable, ...]
    method: SecLDPMethod
    delta: float
    steps: int
    inverse_variance: np.ndarray
    epsilon: np.ndarray
    classic_epsilon: np.ndarray
    components: tuple[ComponentBounds, ...]

    @property
    def worst_node(self) -> Hashable:
        """Label of the honest node with the largest ε."""
        return self.labels[int(np.nanargmax(self.epsilon))]

    @property
    def worst_epsilon(self) -> float:
        """ε of the worst honest node."""
        return float(np.nanmax(self.epsilon))


def _component_bounds(
    topology: Topology, honest: np.ndarray, values: np.ndarray, sigma: float, sigma_cor: float
) -> tuple[ComponentBounds, ...]:
    sub = topology.induced(honest)
    bounds = []
    for nodes in sub.components():
        part = sub.induced(nodes)
        size = len(nodes)
        laplacian = part.laplacian()
        pinv_max = np.nan
        if size == 1:
            gap = 0.0
            pinv_max = 0.0
        elif size <= _PINV_MAX_NODES:
            spectrum, vectors = np.linalg.eigh(laplacian.toarray())
            gap = float(spectrum[1])
            pinv_diag = (vectors[:, 1:] ** 2) @ (1.0 / spectrum[1:])
            pinv_max = float(pinv_diag.max())
        else:
            graph = nx.from_scipy_sparse_array(part.adjacency)
            gap = float(nx.algebraic_connectivity(graph, method="tracemin_lu", seed=0))
        bounds.append(
            ComponentBounds(
                nodes=part.labels,
                algebraic_connectivity=gap,
                exact_max=float(values[nodes].max()),
                spectral_bound=float(
                    inverse_variance_spectral_bound(
                        n=size, sigma=sigma, sigma_cor=sigma_cor, algebraic_connectivity=gap
                    )
                ),
                resistance_bound_max=float(
                    inverse_variance_resistance_bound(
                        n=size, sigma=sigma, sigma_cor=sigma_cor, pinv_diagonal=pinv_max
                    )
                )
                if not np.isnan(pinv_max)
                else np.nan,
            )
        )
    return tuple(bounds)


def event_report(
    event: SecLDPDpEvent,
    *,
    steps: int,
    delta: float,
    colluders: Iterable[Hashable] = (),
    method: SecLDPMethod = "rdp",
) -> SecLDPReport:
    """Per-node ε, exact (Σ_H⁻¹)_ii and closed-form bounds per honest component after
    ``steps`` rounds of ``event``.

    Examples
    --------
    >>> event = SecLDPDpEvent("complete:8", sigma=1.0, sigma_cor=2.0, clip=1.0)
    >>> report = event_report(event, steps=10, delta=1e-5, colluders=[0])
    >>> import math
    >>> part = report.components[0]  # the honest K_7, where the spectral bound is tight
    >>> len(part.nodes), math.isclose(part.exact_max, part.spectral_bound, rel_tol=1e-12)
    (7, True)
    """
    count = check_int("steps", steps, low=1)
    check_real("delta", delta, low=0, high=1, low_open=True, high_open=True)
    colluders = tuple(colluders)
    accountant = SecLDPAccountant(colluders=colluders, method=method).compose(event, count)
    epsilon = accountant.node_epsilons(delta)
    values = accountant.inverse_variances()[0]
    if event.user_level:
        classic = SecLDPAccountant(colluders=colluders, method="classic").compose(event, count)
        classic_epsilon = classic.node_epsilons(delta)
    else:
        classic_epsilon = np.full_like(epsilon, np.nan)
    honest = np.flatnonzero(~np.isnan(values))
    components = _component_bounds(
        event.topology, honest, values[honest], event.sigma, event.sigma_cor
    )
    return SecLDPReport(
        labels=event.topology.labels,
        method=method,
        delta=float(delta),
        steps=count,
        inverse_variance=values,
        epsilon=epsilon,
        classic_epsilon=classic_epsilon,
        components=components,
    )


def secldp_report(
    graph: object,
    *,
    sigma: float,
    sigma_cor: float,
    clip: float,
    steps: int,
    delta: float,
    colluders: Iterable[Hashable] = (),
    method: SecLDPMethod = "rdp",
    local_size: int = 1,
    batch_size: int = 1,
    sampling: SecLDPSampling = "without_replacement",
) -> SecLDPReport:
    """:func:`event_report` of the :class:`SecLDPDpEvent` built from the keywords.

    Examples
    --------
    >>> report = secldp_report("ring:16", sigma=17.827, sigma_cor=188.0, clip=1.0, steps=3500,
    ...                        delta=1e-5, colluders=[0, 8])
    >>> [len(part.nodes) for part in report.components], report.worst_node
    ([7, 7], 1)
    """
    event = SecLDPDpEvent(graph, sigma, sigma_cor, clip, local_size, batch_size, sampling)
    return event_report(event, steps=steps, delta=delta, colluders=colluders, method=method)

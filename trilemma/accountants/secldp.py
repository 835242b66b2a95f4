"""SecLDP accounting of decentralized learning with correlated noise on a graph.

Mechanism (Allouah, Koloskova, El Firdoussi, Jaggi, Guerraoui, "The Privacy Power of
Correlated Noise in Decentralized Learning", ICML 2024, arXiv:2405.01031, Alg. 1 "DECOR"): at
every round node i sends its clipped update plus N(0, σ² I_d) plus, for each incident edge, a
pairwise secret N(0, σ_cor² I_d) that the other end subtracts. Per coordinate the noise across
nodes is N(0, Σ) with Σ = σ² I + σ_cor² L. An observer of every message sees node i's data
through a Gaussian mechanism of Mahalanobis sensitivity Δ √((Σ⁻¹)_ii) [D: the privacy loss of
N(μ, Σ) vs N(μ + Δ e_i, Σ) is that of a scalar Gaussian with Δ² = Δ_i² (Σ⁻¹)_ii].

Threat model with colluders: curious nodes A share what they know. They know their own noise
and the secrets of every edge touching A, so the honest nodes' residual noise is
Σ_H = σ² I + σ_cor² L_H with L_H the Laplacian of the subgraph induced by H = V \\ A [D].
Conditioning on more can only shrink the residual covariance, so colluders never decrease ε.
With A = ∅ this is the accounting of the reference code (``utils/dp_account.py`` of
elfirdoussilab1/DECOR), whose numbers :func:`secldp_epsilon` with ``method="classic"``
reproduces.

Per node, one round is a DP-SGD step with noise multiplier z_i = b / (C √((Σ_H⁻¹)_ii)):

* user-level (``local_size = batch_size = 1``): the node's clipped update is replaced,
  sensitivity 2C, i.e. ``GaussianDpEvent(z_i / 2)``;
* example-level: a batch of b of the node's m records, per-example clipping to C, averaged;
  sampled without replacement (replace-one, dp-accounting's RDP, Wang et al. 2019) or Poisson
  (add/remove-one, RDP or PLD).

The reference's example-level path applies subsampled RDP to a single round and never
composes over T nor converts to (ε, δ); we compose with dp-accounting instead, so example-level
numbers are not comparable with it.

This module holds the event, the accountant and the one-call ε helper;
:mod:`trilemma.accountants.secldp_report` the per-node report with its closed-form bounds and
:mod:`trilemma.accountants.secldp_calibration` the σ_cor calibration.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from typing import Literal

import attr
import dp_accounting
import numpy as np
import scipy.sparse as sp
from dp_accounting import NeighboringRelation, dp_event

from trilemma._validation import check_choice, check_int, check_real
from trilemma.accountants._inverse_diagonal import spd_inverse_diagonal
from trilemma.accountants.central import get_delta, get_epsilon, sgd_event
from trilemma.accountants.graphs import Topology, as_topology
from trilemma.bounds.privacy import zcdp_to_dp_epsilon

__all__ = [
    "SecLDPAccountant",
    "SecLDPDpEvent",
    "event_epsilon",
    "honest_inverse_variances",
    "honest_positions",
    "node_epsilon",
    "secldp_epsilon",
]

SecLDPMethod = Literal["rdp", "pld", "classic"]
"""How a node's privacy loss is converted: dp-accounting's RDP or PLD, or the reference's zCDP."""
SecLDPSampling = Literal["without_replacement", "poisson"]
"""How an example-level batch is drawn."""
SECLDP_METHODS: tuple[SecLDPMethod, ...] = ("rdp", "pld", "classic")
_SAMPLINGS: tuple[SecLDPSampling, ...] = ("without_replacement", "poisson")


def _check_event_fields(event: SecLDPDpEvent) -> None:
    check_real("sigma", event.sigma, low=0, low_open=True)
    check_real("sigma_cor", event.sigma_cor, low=0)
    check_real("clip", event.clip, low=0, low_open=True)
    check_int("local_size", event.local_size, low=1)
    check_int("batch_size", event.batch_size, low=1, high=event.local_size)
    check_choice("sampling", event.sampling, _SAMPLINGS)


def canonical_graph(topology: Topology) -> tuple[tuple[Hashable, ...], bytes, bytes, bytes]:
    """A hashable value that identifies ``topology``: labels and the sorted upper-triangle edges.

    Two topologies with the same node labels in the same order and the same weighted edges
    give equal values, whatever form they were given in (spec string, networkx graph, matrix).
    The edges are the CSR arrays (row pointers, column indices, weights) of the strict upper
    triangle with sorted indices, stored as bytes so that hashing a 10⁴-node graph is cheap.
    """
    upper = sp.triu(topology.adjacency, k=1, format="csr")
    upper.sort_indices()
    return (
        topology.labels,
        upper.indptr.astype(np.int64).tobytes(),
        upper.indices.astype(np.int64).tobytes(),
        upper.data.astype(np.float64).tobytes(),
    )


@attr.s(frozen=True, slots=True, auto_attribs=True, cache_hash=True)
class SecLDPDpEvent(dp_event.DpEvent):
    """One round of correlated-noise gossip (DECOR, Allouah et al., ICML 2024, Alg. 1).

    Like dp-accounting's events it is a value: two events on the same graph (same labels and
    weighted edges, :func:`canonical_graph`) with the same parameters compare equal and hash
    alike, so accountants can key their caches by the event.

    Attributes
    ----------
    topology : Topology
        Communication graph (anything :func:`trilemma.accountants.as_topology` accepts).
    sigma : float
        Standard deviation σ > 0 of each node's independent noise.
    sigma_cor : float
        Standard deviation σ_cor ≥ 0 of each edge secret (scaled by √weight on weighted edges).
    clip : float
        Clipping norm C > 0 (of the node's update, or of each example at example level).
    local_size, batch_size : int
        Records per node m and batch b ≤ m; ``1, 1`` is user-level DP.
    sampling : {"without_replacement", "poisson"}
        How an example-level batch is drawn (ignored at user level).
    graph : tuple
        The canonical, hashable form of ``topology`` (derived; what equality compares).

    Examples
    --------
    >>> import networkx as nx
    >>> a = SecLDPDpEvent("ring:8", sigma=1.0, sigma_cor=2.0)
    >>> b = SecLDPDpEvent(nx.cycle_graph(8), sigma=1.0, sigma_cor=2.0)
    >>> a == b, hash(a) == hash(b), a == SecLDPDpEvent("path:8", sigma=1.0, sigma_cor=2.0)
    (True, True, False)
    """

    topology: Topology = attr.ib(converter=as_topology, eq=False, repr=False)
    sigma: float
    sigma_cor: float
    clip: float = 1.0
    local_size: int = 1
    batch_size: int = 1
    sampling: SecLDPSampling = "without_replacement"
    graph: tuple[tuple[Hashable, ...], bytes, bytes, bytes] = attr.ib(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        _check_event_fields(self)
        object.__setattr__(self, "graph", canonical_graph(self.topology))

    @property
    def user_level(self) -> bool:
        """Whether the protected unit is the node's whole update (m = b = 1)."""
        return self.local_size == 1 and self.batch_size == 1


def honest_inverse_variances(
    topology: Topology, sigma: float, sigma_cor: float, honest: np.ndarray
) -> np.ndarray:
    """(Σ_H⁻¹)_ii for the honest node positions ``honest`` (exact; see the module docstring)."""
    sub = topology.induced(honest)
    covariance = sigma**2 * sp.identity(sub.n_nodes, format="csr") + sigma_cor**2 * sub.laplacian()
    return spd_inverse_diagonal(covariance)


def honest_positions(topology: Topology, colluders: Iterable[Hashable]) -> np.ndarray:
    """Positions of the nodes that are not colluders; ``ValueError`` if none is left."""
    collusion = topology.indices(colluders, name="colluders")
    honest = np.setdiff1d(np.arange(topology.n_nodes), collusion)
    if honest.size == 0:
        raise ValueError(f"colluders cover all {topology.n_nodes} nodes: the honest set is empty")
    return honest


def node_dpsgd_event(event: SecLDPDpEvent, inverse_variance: float, count: int) -> dp_event.DpEvent:
    """The DP-SGD event equivalent to ``count`` rounds for a node of the given (Σ_H⁻¹)_ii."""
    z = event.batch_size / (event.clip * math.sqrt(inverse_variance))
    if event.sampling == "poisson" and not event.user_level:
        return sgd_event(
            noise_multiplier=z,
            steps=count,
            sample_rate=event.batch_size / event.local_size,
            neighboring="add_remove",
        )
    return sgd_event(
        noise_multiplier=z,
        steps=count,
        dataset_size=event.local_size,
        batch_size=event.batch_size,
        sampling="without_replacement",
        neighboring="replace_one",
    )


def node_epsilon(
    event: SecLDPDpEvent, inverse_variance: float, count: int, delta: float, method: SecLDPMethod
) -> float:
    """ε after ``count`` rounds of ``event`` for a node of the given (Σ_H⁻¹)_ii."""
    if method == "classic":
        rho = 2.0 * event.clip**2 * count * inverse_variance
        return float(zcdp_to_dp_epsilon(rho=rho, delta=delta))
    return get_epsilon(node_dpsgd_event(event, inverse_variance, count), delta=delta, method=method)


class SecLDPAccountant(dp_accounting.PrivacyAccountant):
    """Privacy accountant for SecLDP rounds, a drop-in ``dp_accounting.PrivacyAccountant``.

    Compose :class:`SecLDPDpEvent` (possibly inside ``SelfComposedDpEvent`` or
    ``ComposedDpEvent``; rounds may use different graphs on the same nodes), then ask for ε of
    the worst honest node with :meth:`get_epsilon` or of every node with :meth:`node_epsilons`.

    Parameters
    ----------
    colluders : iterable of node labels
        Curious nodes that pool their knowledge (see the module docstring). Default none.
    method : {"rdp", "pld", "classic"}
        ``"rdp"``/``"pld"``: per node, the equivalent DP-SGD event is accounted by
        dp-accounting. ``"classic"``: the reference's conversion ε = ρ + 2√(ρ ln(1/δ)) with
        ρ = Σ_rounds 2 C² (Σ_H⁻¹)_ii (user-level rounds only).

    Examples
    --------
    >>> import networkx as nx
    >>> event = SecLDPDpEvent(nx.cycle_graph(16), sigma=17.827, sigma_cor=188.0, clip=1.0)
    >>> acc = SecLDPAccountant(method="classic").compose(event, 3500)
    >>> round(acc.get_epsilon(1e-5), 4)
    10.2929
    """

    def __init__(self, *, colluders: Iterable[Hashable] = (), method: SecLDPMethod = "rdp") -> None:
        super().__init__(NeighboringRelation.REPLACE_ONE)
        check_choice("method", method, SECLDP_METHODS)
        self._method = method
        self._colluders = tuple(colluders)
        self._rounds: list[tuple[SecLDPDpEvent, int]] = []
        self._cache: dict[SecLDPDpEvent, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def method(self) -> SecLDPMethod:
        """The conversion method."""
        return self._method

    def _honest(self, event: SecLDPDpEvent) -> np.ndarray:
        return honest_positions(event.topology, self._colluders)

    def _maybe_compose(
        self, event: dp_event.DpEvent, count: int, do_compose: bool
    ) -> dp_accounting.PrivacyAccountant.CompositionErrorDetails | None:
        if isinstance(event, dp_event.NoOpDpEvent):
            return None
        if isinstance(event, dp_event.SelfComposedDpEvent):
            return self._maybe_compose(event.event, event.count * count, do_compose)
        if isinstance(event, dp_event.ComposedDpEvent):
            for inner in event.events:
                error = self._maybe_compose(inner, count, do_compose)
                if error is not None:
                    return error
            return None
        if isinstance(event, SecLDPDpEvent):
            if self._rounds and event.topology.n_nodes != self._rounds[0][0].topology.n_nodes:
                return self.CompositionErrorDetails(
                    event, "all rounds must run on the same number of nodes"
                )
            if self._method == "classic" and not event.user_level:
                return self.CompositionErrorDetails(
                    event, "method='classic' converts user-level rounds only"
                )
            self._honest(event)  # raises a ValueError naming bad colluders
            if do_compose and count > 0:
                self._rounds.append((event, count))
            return None
        return self.CompositionErrorDetails(
            event, "SecLDPAccountant composes SecLDPDpEvent rounds only"
        )

    def _profile(self, event: SecLDPDpEvent) -> tuple[np.ndarray, np.ndarray]:
        if event not in self._cache:
            honest = self._honest(event)
            values = honest_inverse_variances(event.topology, event.sigma, event.sigma_cor, honest)
            self._cache[event] = (honest, values)
        return self._cache[event]

    def inverse_variances(self) -> np.ndarray:
        """(Σ_H⁻¹)_ii per round (rows) and node (columns); NaN for colluders."""
        if not self._rounds:
            return np.empty((0, 0))
        table = np.full((len(self._rounds), self._rounds[0][0].topology.n_nodes), np.nan)
        for row, (event, _) in enumerate(self._rounds):
            honest, values = self._profile(event)
            table[row, honest] = values
        return table

    def _per_node(
        self, function: Callable[[dp_event.DpEvent], float], nodes: np.ndarray | None
    ) -> np.ndarray:
        """Apply ``function(composed_event_of_node)`` once per distinct node profile."""
        table = self.inverse_variances()
        size = table.shape[1]
        result = np.full(size, np.nan)
        honest = np.flatnonzero(~np.isnan(table).any(axis=0)) if nodes is None else nodes
        if honest.size == 0:
            return result
        keys = np.round(np.log(table[:, honest].T), 11)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        values = np.empty(len(unique))
        for k in range(len(unique)):
            node = honest[np.flatnonzero(inverse.ravel() == k)[0]]
            events = [
                node_dpsgd_event(event, table[r, node], count)
                for r, (event, count) in enumerate(self._rounds)
            ]
            single = events[0] if len(events) == 1 else dp_event.ComposedDpEvent(events)
            values[k] = function(single)
        result[honest] = values[inverse.ravel()]
        return result

    def _rho(self) -> np.ndarray:
        table = self.inverse_variances()
        weights = np.array([2.0 * event.clip**2 * count for event, count in self._rounds])
        return weights @ table

    def _worst_nodes(self) -> np.ndarray | None:
        """Honest nodes that can be the worst: with one round profile, the max-variance ones."""
        table = self.inverse_variances()
        if table.shape[0] != 1:
            return None
        row = table[0]
        return np.flatnonzero(row == np.nanmax(row))[:1]

    def node_epsilons(self, target_delta: float) -> np.ndarray:
        """ε of every node at δ (NaN for colluders); zeros before any round."""
        check_real("target_delta", target_delta, low=0, high=1, low_open=True, high_open=True)
        if not self._rounds:
            return np.zeros(0)
        if self._method == "classic":
            rho = self._rho()
            honest = ~np.isnan(rho)
            result = np.full(rho.shape, np.nan)
            result[honest] = zcdp_to_dp_epsilon(rho=rho[honest], delta=target_delta)
            return result
        method = self._method
        return self._per_node(lambda e: get_epsilon(e, delta=target_delta, method=method), None)

    def get_epsilon(self, target_delta: float) -> float:
        """ε of the worst honest node at δ."""
        check_real("target_delta", target_delta, low=0, high=1, low_open=True, high_open=True)
        if not self._rounds:
            return 0.0
        if self._method == "classic":
            return float(np.nanmax(self.node_epsilons(target_delta)))
        method = self._method
        values = self._per_node(
            lambda e: get_epsilon(e, delta=target_delta, method=method), self._worst_nodes()
        )
        return float(np.nanmax(values))

    def get_delta(self, target_epsilon: float) -> float:
        """δ of the worst honest node at ε."""
        eps = check_real("target_epsilon", target_epsilon, low=0, low_open=True)
        if not self._rounds:
            return 0.0
        if self._method == "classic":
            rho = float(np.nanmax(self._rho()))
            # inverse of ε = ρ + 2√(ρ ln(1/δ)) [D]
            return 1.0 if eps <= rho else math.exp(-((eps - rho) ** 2) / (4.0 * rho))
        method = self._method
        values = self._per_node(
            lambda e: get_delta(e, epsilon=eps, method=method), self._worst_nodes()
        )
        return float(np.nanmax(values))


def event_epsilon(
    event: SecLDPDpEvent,
    *,
    steps: int,
    delta: float,
    colluders: Iterable[Hashable] = (),
    method: SecLDPMethod = "rdp",
) -> float:
    """ε at δ of the worst honest node after ``steps`` rounds of ``event``.

    Examples
    --------
    >>> event = SecLDPDpEvent("ring:16", sigma=17.827, sigma_cor=188.0, clip=1.0)
    >>> round(event_epsilon(event, steps=3500, delta=1e-5, method="classic"), 6)
    10.292886
    """
    count = check_int("steps", steps, low=1)
    check_real("delta", delta, low=0, high=1, low_open=True, high_open=True)
    accountant = SecLDPAccountant(colluders=colluders, method=method).compose(event, count)
    return accountant.get_epsilon(delta)


def secldp_epsilon(
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
) -> float:
    """ε of the worst honest node after ``steps`` SecLDP rounds: :func:`event_epsilon` of the
    :class:`SecLDPDpEvent` built from the keywords.

    Examples
    --------
    >>> round(secldp_epsilon("ring:16", sigma=17.827, sigma_cor=188.0, clip=1.0, steps=3500,
    ...                      delta=1e-5, method="classic"), 6)
    10.292886
    """
    event = SecLDPDpEvent(graph, sigma, sigma_cor, clip, local_size, batch_size, sampling)
    return event_epsilon(event, steps=steps, delta=delta, colluders=colluders, method=method)

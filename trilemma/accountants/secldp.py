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
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import attr
import dp_accounting
import networkx as nx
import numpy as np
import scipy.sparse as sp
from dp_accounting import NeighboringRelation, dp_event

from trilemma._validation import check_choice, check_int, check_real
from trilemma.accountants._inverse_diagonal import spd_inverse_diagonal
from trilemma.accountants.central import get_delta, get_epsilon, sgd_event
from trilemma.accountants.graphs import Topology, as_topology
from trilemma.bounds.privacy import (
    inverse_variance_resistance_bound,
    inverse_variance_spectral_bound,
    zcdp_to_dp_epsilon,
)

__all__ = [
    "SecLDPAccountant",
    "SecLDPDpEvent",
    "SecLDPReport",
    "calibrate_sigma_cor",
    "honest_inverse_variances",
    "secldp_epsilon",
    "secldp_report",
]

SECLDP_METHODS = ("rdp", "pld", "classic")
_SAMPLINGS = ("without_replacement", "poisson")
# Components up to this size also get the pseudo-inverse (effective resistance) bound.
_PINV_MAX_NODES = 4000


def _check_event_fields(event: SecLDPDpEvent) -> None:
    check_real("sigma", event.sigma, low=0, low_open=True)
    check_real("sigma_cor", event.sigma_cor, low=0)
    check_real("clip", event.clip, low=0, low_open=True)
    check_int("local_size", event.local_size, low=1)
    check_int("batch_size", event.batch_size, low=1, high=event.local_size)
    check_choice("sampling", event.sampling, _SAMPLINGS)


@attr.s(frozen=True, slots=True, auto_attribs=True, eq=False)
class SecLDPDpEvent(dp_event.DpEvent):
    """One round of correlated-noise gossip (DECOR, Allouah et al., ICML 2024, Alg. 1).

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
    """

    topology: Topology = attr.ib(converter=as_topology)
    sigma: float
    sigma_cor: float
    clip: float = 1.0
    local_size: int = 1
    batch_size: int = 1
    sampling: str = "without_replacement"

    def __attrs_post_init__(self) -> None:
        _check_event_fields(self)

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


def _node_event(event: SecLDPDpEvent, inverse_variance: float, count: int) -> dp_event.DpEvent:
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


def _node_epsilon(
    event: SecLDPDpEvent, inverse_variance: float, count: int, delta: float, method: str
) -> float:
    """ε after ``count`` rounds of ``event`` for a node of the given (Σ_H⁻¹)_ii."""
    if method == "classic":
        rho = 2.0 * event.clip**2 * count * inverse_variance
        return float(zcdp_to_dp_epsilon(rho=rho, delta=delta))
    return get_epsilon(_node_event(event, inverse_variance, count), delta=delta, method=method)


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

    def __init__(self, *, colluders: Iterable[Hashable] = (), method: str = "rdp") -> None:
        super().__init__(NeighboringRelation.REPLACE_ONE)
        self._method = check_choice("method", method, SECLDP_METHODS)
        self._colluders = tuple(colluders)
        self._rounds: list[tuple[SecLDPDpEvent, int]] = []
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    @property
    def method(self) -> str:
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
        key = id(event)
        if key not in self._cache:
            honest = self._honest(event)
            values = honest_inverse_variances(event.topology, event.sigma, event.sigma_cor, honest)
            self._cache[key] = (honest, values)
        return self._cache[key]

    def inverse_variances(self) -> np.ndarray:
        """(Σ_H⁻¹)_ii per round (rows) and node (columns); NaN for colluders."""
        if not self._rounds:
            return np.empty((0, 0))
        table = np.full((len(self._rounds), self._rounds[0][0].topology.n_nodes), np.nan)
        for row, (event, _) in enumerate(self._rounds):
            honest, values = self._profile(event)
            table[row, honest] = values
        return table

    def _per_node(self, function, nodes: np.ndarray | None) -> np.ndarray:
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
                _node_event(event, table[r, node], count)
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
        return self._per_node(
            lambda e: get_epsilon(e, delta=target_delta, method=self._method), None
        )

    def get_epsilon(self, target_delta: float) -> float:
        """ε of the worst honest node at δ."""
        check_real("target_delta", target_delta, low=0, high=1, low_open=True, high_open=True)
        if not self._rounds:
            return 0.0
        if self._method == "classic":
            return float(np.nanmax(self.node_epsilons(target_delta)))
        values = self._per_node(
            lambda e: get_epsilon(e, delta=target_delta, method=self._method),
            self._worst_nodes(),
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
        values = self._per_node(
            lambda e: get_delta(e, epsilon=eps, method=self._method), self._worst_nodes()
        )
        return float(np.nanmax(values))


def _rounds(
    graph: object,
    sigma: float,
    sigma_cor: float,
    clip: float,
    steps: int,
    delta: float,
    local_size: int,
    batch_size: int,
    sampling: str,
) -> tuple[SecLDPDpEvent, int]:
    """The validated round event and round count shared by the one-call helpers."""
    event = SecLDPDpEvent(
        graph,
        sigma,
        sigma_cor,
        clip,
        local_size=local_size,
        batch_size=batch_size,
        sampling=sampling,
    )
    count = check_int("steps", steps, low=1)
    check_real("delta", delta, low=0, high=1, low_open=True, high_open=True)
    return event, count


def secldp_epsilon(
    graph: object,
    *,
    sigma: float,
    sigma_cor: float,
    clip: float,
    steps: int,
    delta: float,
    colluders: Iterable[Hashable] = (),
    method: str = "rdp",
    local_size: int = 1,
    batch_size: int = 1,
    sampling: str = "without_replacement",
) -> float:
    """ε of the worst honest node after ``steps`` SecLDP rounds (see :class:`SecLDPDpEvent`).

    Examples
    --------
    >>> round(secldp_epsilon("ring:16", sigma=17.827, sigma_cor=188.0, clip=1.0, steps=3500,
    ...                      delta=1e-5, method="classic"), 6)
    10.292886
    """
    event, count = _rounds(
        graph, sigma, sigma_cor, clip, steps, delta, local_size, batch_size, sampling
    )
    accountant = SecLDPAccountant(colluders=colluders, method=method).compose(event, count)
    return accountant.get_epsilon(delta)


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
    method: str
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


def secldp_report(
    graph: object,
    *,
    sigma: float,
    sigma_cor: float,
    clip: float,
    steps: int,
    delta: float,
    colluders: Iterable[Hashable] = (),
    method: str = "rdp",
    local_size: int = 1,
    batch_size: int = 1,
    sampling: str = "without_replacement",
) -> SecLDPReport:
    """Per-node ε, exact (Σ_H⁻¹)_ii and closed-form bounds per honest component.

    Examples
    --------
    >>> report = secldp_report("complete:8", sigma=1.0, sigma_cor=2.0, clip=1.0, steps=10,
    ...                        delta=1e-5, colluders=[0])
    >>> import math
    >>> part = report.components[0]  # the honest K_7, where the spectral bound is tight
    >>> len(part.nodes), math.isclose(part.exact_max, part.spectral_bound, rel_tol=1e-12)
    (7, True)
    """
    event, count = _rounds(
        graph, sigma, sigma_cor, clip, steps, delta, local_size, batch_size, sampling
    )
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
    components = _component_bounds(event.topology, honest, values[honest], sigma, sigma_cor)
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


def calibrate_sigma_cor(
    graph: object,
    *,
    target_epsilon: float,
    sigma: float,
    clip: float,
    steps: int,
    delta: float,
    colluders: Iterable[Hashable] = (),
    method: str = "rdp",
    local_size: int = 1,
    batch_size: int = 1,
    sampling: str = "without_replacement",
    rtol: float = 1e-6,
) -> float:
    """Smallest σ_cor whose worst-node ε is ≤ target_epsilon (ε decreases in σ_cor).

    Returns 0 when local noise σ alone meets the target.

    Raises
    ------
    ValueError
        If even σ_cor → ∞ (the central rate of each honest component, (Σ_H⁻¹)_ii → 1/(n_c σ²))
        exceeds the target: increase σ instead.

    Examples
    --------
    >>> s = calibrate_sigma_cor("ring:16", target_epsilon=10.292886, sigma=17.827, clip=1.0,
    ...                         steps=3500, delta=1e-5, method="classic")
    >>> round(s, 2)
    188.0
    """
    target = check_real("target_epsilon", target_epsilon, low=0, low_open=True)
    check_real("rtol", rtol, low=0, high=1, low_open=True, high_open=True)
    colluders = tuple(colluders)
    topology = as_topology(graph)

    def epsilon_of(sigma_cor: float) -> float:
        return secldp_epsilon(
            topology,
            sigma=sigma,
            sigma_cor=sigma_cor,
            clip=clip,
            steps=steps,
            delta=delta,
            colluders=colluders,
            method=method,
            local_size=local_size,
            batch_size=batch_size,
            sampling=sampling,
        )

    if epsilon_of(0.0) <= target:
        return 0.0
    # σ_cor → ∞: (Σ_H⁻¹)_ii → 1/(n_c σ²) on a component of n_c nodes (the central rate);
    # the smallest honest component is the worst.
    probe = SecLDPDpEvent(topology, sigma, 0.0, clip, local_size, batch_size, sampling)
    honest = honest_positions(topology, colluders)
    smallest = min(len(nodes) for nodes in topology.induced(honest).components())
    limit = _node_epsilon(
        probe, 1.0 / (smallest * sigma**2), check_int("steps", steps, low=1), delta, method
    )
    if limit > target:
        raise ValueError(
            f"target_epsilon={target} is out of reach with sigma={sigma}: even sigma_cor → inf "
            f"gives ε ≈ {limit:.6g} (the central rate); increase sigma"
        )
    low, high = 0.0, sigma
    while epsilon_of(high) > target:
        low, high = high, 2.0 * high
    while high - low > rtol * high:
        middle = 0.5 * (low + high)
        if epsilon_of(middle) > target:
            low = middle
        else:
            high = middle
    return high

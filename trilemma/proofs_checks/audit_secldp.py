"""Empirical privacy audit of one SecLDP round: correlated-noise gossip, the mechanism of
:mod:`trilemma.accountants.secldp`, with the likelihood-ratio statistic of its two output
distributions (the most powerful test, Neyman–Pearson), so the audit is as strong as its sample
size allows. Results and argument checks are those of :mod:`trilemma.proofs_checks.audit`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

import numpy as np

from trilemma._validation import check_real
from trilemma.accountants.graphs import as_topology
from trilemma.accountants.secldp import SecLDPAccountant, SecLDPDpEvent, honest_positions
from trilemma.proofs_checks.audit import AuditResult, _check_accountant, _check_audit, _claimed
from trilemma.proofs_checks.distinguishing import epsilon_lower_bound

__all__ = ["audit_secldp_round"]

# Rows of Gaussian draws generated at once (bounds memory to chunk × n).
_CHUNK_ROWS = 1 << 16


def _secldp_default(
    topology: object,
    *,
    sigma: float,
    sigma_cor: float,
    clip: float,
    delta: float,
    colluders: tuple[Hashable, ...],
    node: Hashable,
) -> float:
    """ε of ``node`` after one user-level SecLDP round (PLD accounting)."""
    event = SecLDPDpEvent(topology, sigma, sigma_cor, clip)
    accountant = SecLDPAccountant(colluders=colluders, method="pld").compose(event)
    position = int(event.topology.indices([node], name="node")[0])
    inverse_variances = accountant.inverse_variances()[0]
    if inverse_variances[position] >= np.nanmax(inverse_variances) * (1.0 - 1e-9):
        return accountant.get_epsilon(delta)  # a worst node: one PLD instead of one per profile
    return float(accountant.node_epsilons(delta)[position])


def audit_secldp_round(
    graph: object,
    *,
    sigma: float,
    sigma_cor: float,
    delta: float,
    trials: int,
    seed: int,
    clip: float = 1.0,
    node: Hashable | None = None,
    confidence: float = 0.95,
    colluders: Iterable[Hashable] = (),
    accountant: Callable[..., float] | None = None,
    noise_scale: float = 1.0,
) -> AuditResult:
    """Audit one user-level round of SecLDP gossip (DECOR) for one node.

    Per coordinate (d = 1), the honest nodes H release y = x + z with z ~ N(0, Σ_H),
    Σ_H = σ² I + σ_cor² L_H, L_H the Laplacian of the subgraph induced by H: the colluders know
    their own noise and every secret on their edges, and subtract them (as in
    :mod:`trilemma.accountants.secldp`). The canary replaces node i's clipped update: x_i = −C
    on D and +C on D' (replace-one, sensitivity 2C), all other values known. The score
    e_iᵀ Σ_H⁻¹ y is a sufficient statistic, N(∓C v, v) with v = (Σ_H⁻¹)_ii, so the audit
    tests the accountant's Mahalanobis-sensitivity reduction on draws of the full correlated
    noise (via a Cholesky factor of Σ_H, dense: keep the graph small).

    Parameters
    ----------
    graph : object
        Anything :func:`trilemma.accountants.as_topology` accepts, e.g. ``"ring:8"``.
    sigma, sigma_cor : float
        Independent noise σ > 0 and pairwise secret σ_cor ≥ 0.
    delta, trials, seed, confidence
        As in :func:`audit_gaussian`.
    clip : float
        Clipping norm C > 0.
    node : node label, optional
        The audited honest node; ``None`` picks the worst one (largest (Σ_H⁻¹)_ii).
    colluders : iterable of node labels
        Nodes that pool their knowledge.
    accountant : callable, optional
        Called as ``accountant(topology, sigma=σ, sigma_cor=σ_cor, clip=C, delta=δ,
        colluders=A, node=i)`` for the ε of node i; defaults to
        :class:`trilemma.accountants.SecLDPAccountant` with ``method="pld"``.
    noise_scale : float
        Scales the noise actually drawn (planted bugs, as in :func:`audit_gaussian`).

    Returns
    -------
    AuditResult

    Raises
    ------
    ValueError
        If ``node`` is a colluder or not a node of the graph, or a parameter is out of range.

    References
    ----------
    Allouah et al., ICML 2024 (arXiv:2405.01031), Alg. 1; Jagielski, Ullman, Oprea,
    NeurIPS 2020 (arXiv:2006.07709).

    Examples
    --------
    >>> result = audit_secldp_round("ring:8", sigma=1.0, sigma_cor=1.0, delta=1e-5,
    ...                             trials=20_000, seed=0)
    >>> result.sound, result.parameters["node"]
    (True, 0)
    """
    topology = as_topology(graph)
    s = check_real("sigma", sigma, low=0, low_open=True)
    s_cor = check_real("sigma_cor", sigma_cor, low=0)
    c = check_real("clip", clip, low=0, low_open=True)
    delta, count, level, scale = _check_audit(delta, trials, seed, confidence, noise_scale)
    _check_accountant(accountant)
    colluders = tuple(colluders)
    honest = honest_positions(topology, colluders)
    laplacian = topology.induced(honest).laplacian().toarray()
    covariance = s**2 * np.eye(honest.size) + s_cor**2 * laplacian
    precision_diagonal = np.diag(np.linalg.inv(covariance))
    if node is None:
        # first of the worst nodes; the tolerance absorbs rounding on symmetric graphs
        worst = precision_diagonal.max()
        where = int(np.flatnonzero(precision_diagonal >= worst * (1.0 - 1e-9))[0])
    else:
        position = int(topology.indices([node], name="node")[0])
        matches = np.flatnonzero(honest == position)
        if matches.size == 0:
            raise ValueError(f"node={node!r} is a colluder; audit an honest node")
        where = int(matches[0])
    label = topology.labels[honest[where]]

    factor = np.linalg.cholesky(covariance)
    weights = np.linalg.solve(covariance, np.eye(honest.size)[where])  # Σ_H⁻¹ e_i
    rng = np.random.default_rng(seed)
    scores = []
    for value in (-c, c):
        out = np.empty(count)
        for start in range(0, count, _CHUNK_ROWS):
            rows = min(_CHUNK_ROWS, count - start)
            y = scale * rng.standard_normal((rows, honest.size)) @ factor.T
            y[:, where] += value
            out[start : start + rows] = y @ weights
        scores.append(out)
    claim = accountant or _secldp_default
    claimed = _claimed(
        claim(
            topology,
            sigma=s,
            sigma_cor=s_cor,
            clip=c,
            delta=delta,
            colluders=colluders,
            node=label,
        )
    )
    return AuditResult(
        mechanism="secldp",
        epsilon_claimed=claimed,
        bound=epsilon_lower_bound(scores[0], scores[1], delta=delta, confidence=level),
        parameters={
            "sigma": s,
            "sigma_cor": s_cor,
            "clip": c,
            "node": label,
            "inverse_variance": float(precision_diagonal[where]),
            "colluders": colluders,
            "n_nodes": topology.n_nodes,
            "noise_scale": scale,
            "trials": count,
            "seed": seed,
        },
    )

"""Empirical privacy audit of T rounds of the decentralized runner (DECOR), not of a
re-implemented mechanism.

:func:`audit_decentralized_rounds` runs :class:`trilemma.decentralized.DecentralizedSGD` itself —
its clipping, its local noise and its pairwise secrets, its gossip — for T rounds on two
neighbouring datasets, with the audit's trials as a batch dimension of θ, and bounds ε from
below with :func:`trilemma.proofs_checks.epsilon_lower_bound` (Jagielski, Ullman, Oprea,
NeurIPS 2020, arXiv:2006.07709). The claim under audit is the SecLDP accountant's ε of the
canary node over T rounds (Allouah et al., ICML 2024, arXiv:2405.01031).

Threat model (SecLDP with no colluder): an eavesdropper sees every message g_i + noise_i of
every round. The canary node i holds one record whose clipped update is −C (on D) or +C (on D')
every round — the worst case of user-level replace-one: a least-squares node with target ∓10⁶
and unit feature, whose gradient θ − y is clipped to ∓C while |θ| ≪ 10⁶. The other nodes'
messages depend on the data only through the models θ_t, which the eavesdropper recomputes from
the messages (θ_{t+1} = W(θ_t − γ m_t), θ_0 = 0), so it subtracts their gradients and keeps the
residual r_t = noise_t + (∓C) e_i. The score Σ_t e_iᵀ Σ⁻¹ r_t (Σ = σ² I + σ_cor² L) is the
likelihood-ratio statistic of N(∓C T v, T v), v = (Σ⁻¹)_ii [D], so the audit is as strong as its
sample size allows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np
import torch

from trilemma._validation import check_int, check_real
from trilemma.accountants import SecLDPAccountant, SecLDPDpEvent, as_topology
from trilemma.decentralized import DecentralizedSGD
from trilemma.dgd import LeastSquares
from trilemma.proofs_checks.audit import AuditResult, _check_accountant, _check_audit, _claimed
from trilemma.proofs_checks.distinguishing import epsilon_lower_bound

__all__ = ["audit_decentralized_rounds"]

_CANARY_TARGET = 1e6
"""|y| of the canary node: its gradient θ − y is clipped to ∓C while |θ| ≪ 10⁶."""


def _default_claim(
    topology: object,
    *,
    sigma: float,
    sigma_cor: float,
    clip: float,
    steps: int,
    delta: float,
    node: Hashable,
) -> float:
    """PLD ε of ``node`` after ``steps`` user-level SecLDP rounds."""
    event = SecLDPDpEvent(topology, sigma, sigma_cor, clip)
    accountant = SecLDPAccountant(method="pld").compose(event, steps)
    position = int(event.topology.indices([node], name="node")[0])
    return float(accountant.node_epsilons(delta)[position])


def audit_decentralized_rounds(
    graph: object,
    *,
    sigma: float,
    sigma_cor: float,
    steps: int,
    delta: float,
    trials: int,
    seed: int,
    clip: float = 1.0,
    lr: float = 0.1,
    node: Hashable | None = None,
    confidence: float = 0.95,
    accountant: Callable[..., float] | None = None,
    noise_scale: float = 1.0,
) -> AuditResult:
    """Audit T user-level rounds of :class:`~trilemma.decentralized.DecentralizedSGD` for one
    node (module docstring).

    Parameters
    ----------
    graph : object
        Anything :func:`trilemma.accountants.as_topology` accepts (dense inverse: keep it small).
    sigma, sigma_cor : float
        Local noise σ > 0 and edge secret σ_cor ≥ 0 told to the accountant.
    steps : int
        Rounds T ≥ 1.
    delta, trials, seed, confidence
        As in :func:`trilemma.proofs_checks.audit_gaussian`; ``seed`` seeds the runner's
        ``torch.Generator``.
    clip : float
        Clipping norm C > 0 of each node's update.
    lr : float
        Step size γ of the runner (the privacy does not depend on it).
    node : node label, optional
        The canary node; None picks the first worst node (largest (Σ⁻¹)_ii).
    accountant : callable, optional
        The claim under audit, called as ``accountant(topology, sigma=σ, sigma_cor=σ_cor,
        clip=C, steps=T, delta=δ, node=i)``; defaults to the SecLDP accountant with PLD.
    noise_scale : float
        The runner is built with σ and σ_cor times this (a planted bug when < 1).

    Returns
    -------
    AuditResult

    Examples
    --------
    >>> result = audit_decentralized_rounds("ring:6", sigma=2.0, sigma_cor=2.0, steps=4,
    ...                                     delta=1e-5, trials=4_000, seed=0)
    >>> result.sound, result.parameters["steps"]
    (True, 4)
    """
    topology = as_topology(graph)
    s = check_real("sigma", sigma, low=0, low_open=True)
    s_cor = check_real("sigma_cor", sigma_cor, low=0)
    c = check_real("clip", clip, low=0, low_open=True)
    rounds = check_int("steps", steps, low=1)
    delta, count, level, scale = _check_audit(delta, trials, seed, confidence, noise_scale)
    _check_accountant(accountant)
    n = topology.n_nodes
    covariance = s**2 * np.eye(n) + s_cor**2 * topology.laplacian().toarray()
    precision = np.linalg.inv(covariance)
    if node is None:
        diagonal = np.diag(precision)
        where = int(np.flatnonzero(diagonal >= diagonal.max() * (1.0 - 1e-9))[0])
    else:
        where = int(topology.indices([node], name="node")[0])
    weights = torch.from_numpy(precision[:, where])  # Σ⁻¹ e_i: the likelihood-ratio direction
    scores = []
    for sign in (-1.0, 1.0):
        targets = torch.zeros(n, 1, dtype=torch.float64)
        targets[where] = -sign * _CANARY_TARGET  # gradient θ − y clipped to sign · C
        problem = LeastSquares(torch.ones(n, 1, 1, dtype=torch.float64), targets)
        runner = DecentralizedSGD(
            problem,
            topology,
            lr=lr,
            clip=c,
            clipping="node",
            sigma=scale * s,
            sigma_cor=scale * s_cor,
        )
        generator = torch.Generator().manual_seed(seed)
        theta = runner.start(torch.zeros(count, 1, dtype=torch.float64)).theta
        score = torch.zeros(count, dtype=torch.float64)
        for _ in range(rounds):
            gradients = runner.gradients(theta, generator)
            noise = runner.noise(theta.shape, generator)
            assert noise is not None  # None only when σ = σ_cor = 0, and σ > 0 was checked
            messages = gradients + noise
            known = gradients.clone()
            known[..., where, :] = 0.0  # the other nodes' gradients follow from the messages
            score = score + (messages - known)[..., 0] @ weights
            theta = runner.mixing @ (theta - lr * messages)
        scores.append(score.numpy())
    label = topology.labels[where]
    claim = accountant or _default_claim
    claimed = _claimed(
        claim(topology, sigma=s, sigma_cor=s_cor, clip=c, steps=rounds, delta=delta, node=label)
    )
    return AuditResult(
        mechanism="decentralized",
        epsilon_claimed=claimed,
        bound=epsilon_lower_bound(scores[0], scores[1], delta=delta, confidence=level),
        parameters={
            "sigma": s,
            "sigma_cor": s_cor,
            "clip": c,
            "steps": rounds,
            "node": label,
            "inverse_variance": float(precision[where, where]),
            "noise_scale": scale,
            "trials": count,
            "seed": seed,
        },
    )

"""Empirical privacy audits of the accountants' mechanisms (the lower bound on ε comes from
:mod:`trilemma.proofs_checks.distinguishing`).

Mechanisms audited
------------------
:func:`audit_gaussian` (k-fold Gaussian mechanism), :func:`audit_dpsgd_step` (Poisson-subsampled
Gaussian, DP-SGD with a canary gradient); :mod:`trilemma.proofs_checks.audit_secldp` audits one
round of correlated-noise gossip and :mod:`trilemma.proofs_checks.audit_decentralized` T rounds
of the decentralized runner, on the shared :class:`AuditResult`. Each uses the
likelihood-ratio statistic of its two output distributions, the most powerful test by the
Neyman–Pearson lemma, so the audits are as strong as the sample size allows. Each takes an
``accountant`` (the claim under audit) and a ``noise_scale`` (the noise actually drawn, relative
to what the accountant is told) so that a faulty accountant or a mis-scaled implementation can
be planted and shown to be caught.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trilemma._validation import check_int, check_real
from trilemma.accountants.central import dpsgd_epsilon, gaussian_epsilon
from trilemma.proofs_checks.distinguishing import AuditBound, epsilon_lower_bound

__all__ = [
    "SOUNDNESS_TOLERANCE",
    "AuditResult",
    "audit_dpsgd_step",
    "audit_gaussian",
]

# A lower bound above the claim by less than this is attributed to floating-point rounding.
SOUNDNESS_TOLERANCE = 1e-12


@dataclass(frozen=True, slots=True)
class AuditResult:
    """An audit of one mechanism: the accountant's claim against the empirical bound.

    Attributes
    ----------
    mechanism : str
        Name of the audited mechanism.
    epsilon_claimed : float
        ε reported by the accountant under audit at ``bound.delta``.
    bound : AuditBound
        The empirical lower bound.
    parameters : dict
        Mechanism parameters of the run (noise multiplier, steps, node, ...).
    """

    mechanism: str
    epsilon_claimed: float
    bound: AuditBound
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def tightness(self) -> float:
        """ε_lower / ε_claimed: near 1 for a tight claim, above 1 for a violated one."""
        if self.epsilon_claimed == 0.0:
            return math.inf if self.bound.epsilon_lower > 0.0 else 0.0
        return self.bound.epsilon_lower / self.epsilon_claimed

    @property
    def sound(self) -> bool:
        """Whether the claim survives the audit (ε_lower ≤ ε_claimed up to rounding)."""
        return self.bound.epsilon_lower <= self.epsilon_claimed + SOUNDNESS_TOLERANCE


def _check_audit(
    delta: float, trials: int, seed: int, confidence: float, noise_scale: float
) -> tuple[float, int, float, float]:
    delta = check_real("delta", delta, low=0, high=1, low_open=True, high_open=True)
    count = check_int("trials", trials, low=4)
    check_int("seed", seed, low=0)
    level = check_real("confidence", confidence, low=0, high=1, low_open=True, high_open=True)
    scale = check_real("noise_scale", noise_scale, low=0, low_open=True)
    return delta, count, level, scale


def _check_accountant(accountant: object) -> None:
    if accountant is not None and not callable(accountant):
        raise TypeError(f"accountant must be callable or None, got {type(accountant).__name__}")


def _claimed(value: object) -> float:
    return check_real("the accountant's epsilon", value, low=0, allow_inf=True)


def audit_gaussian(
    *,
    noise_multiplier: float,
    delta: float,
    trials: int,
    seed: int,
    compositions: int = 1,
    confidence: float = 0.95,
    accountant: Callable[..., float] | None = None,
    noise_scale: float = 1.0,
) -> AuditResult:
    """Audit k compositions of the Gaussian mechanism of sensitivity 1.

    Each composition releases N(0, σ²) on D and N(1, σ²) on D' (a canary of sensitivity 1 under
    add/remove-one, σ = ``noise_multiplier``). The score is the sum of the k outputs, a
    sufficient statistic: N(0, kσ²) versus N(k, kσ²), so thresholding it is the most powerful
    test.

    Parameters
    ----------
    noise_multiplier : float
        σ > 0 told to the accountant.
    delta : float
        δ ∈ (0, 1).
    trials : int
        Runs of the mechanism on each input (≥ 4; half select the test, half certify it).
    seed : int
        Seed of ``numpy.random.default_rng`` (≥ 0).
    compositions : int
        Number k ≥ 1 of composed Gaussian mechanisms.
    confidence : float
        Confidence of the lower bound, in (0, 1).
    accountant : callable, optional
        The claim under audit, called as
        ``accountant(noise_multiplier=σ, delta=δ, compositions=k)``; defaults to
        :func:`trilemma.accountants.gaussian_epsilon` (exact).
    noise_scale : float
        The noise actually drawn has standard deviation ``noise_scale · σ``. It exists to test
        the audit: a value < 1 plants an implementation that adds less noise than accounted.

    Returns
    -------
    AuditResult

    Examples
    --------
    >>> result = audit_gaussian(noise_multiplier=1.0, delta=1e-5, trials=20_000, seed=0)
    >>> result.sound, round(result.epsilon_claimed, 3)
    (True, 4.377)
    """
    sigma = check_real("noise_multiplier", noise_multiplier, low=0, low_open=True)
    delta, count, level, scale = _check_audit(delta, trials, seed, confidence, noise_scale)
    k = check_int("compositions", compositions, low=1)
    _check_accountant(accountant)
    rng = np.random.default_rng(seed)
    without = np.zeros(count)
    present = np.zeros(count)
    for _ in range(k):  # one composition at a time keeps memory at O(trials)
        without += rng.normal(0.0, scale * sigma, count)
        present += rng.normal(1.0, scale * sigma, count)
    claim = accountant or gaussian_epsilon
    claimed = _claimed(claim(noise_multiplier=sigma, delta=delta, compositions=k))
    return AuditResult(
        mechanism="gaussian",
        epsilon_claimed=claimed,
        bound=epsilon_lower_bound(without, present, delta=delta, confidence=level),
        parameters={
            "noise_multiplier": sigma,
            "compositions": k,
            "noise_scale": scale,
            "trials": count,
            "seed": seed,
        },
    )


def _dpsgd_default(
    *, noise_multiplier: float, sample_rate: float, steps: int, delta: float
) -> float:
    return dpsgd_epsilon(
        noise_multiplier=noise_multiplier,
        sample_rate=sample_rate,
        steps=steps,
        delta=delta,
        method="pld",
    )


def audit_dpsgd_step(
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    trials: int,
    seed: int,
    confidence: float = 0.95,
    accountant: Callable[..., float] | None = None,
    noise_scale: float = 1.0,
) -> AuditResult:
    """Audit T steps of Poisson-subsampled Gaussian noise with a canary gradient (DP-SGD).

    The canary's clipped gradient has norm C = 1 and every other contribution is known, so
    along the canary's direction step t releases y_t ~ N(0, σ²) on D (canary absent) and
    y_t ~ N(b_t, σ²) with b_t ~ Bernoulli(q) on D' (canary present and sampled). The score is
    the log-likelihood ratio of the two product distributions,

        Σ_t ln((1 − q) + q · exp((2 y_t − 1) / (2σ²))),

    the most powerful statistic (Neyman–Pearson), evaluated in log space with ``logaddexp`` so
    that large y_t cannot overflow.

    Parameters
    ----------
    noise_multiplier : float
        σ > 0 told to the accountant (noise std / clipping norm).
    sample_rate : float
        Poisson sampling probability q ∈ (0, 1].
    steps : int
        Number of steps T ≥ 1.
    delta, trials, seed, confidence, noise_scale
        As in :func:`audit_gaussian`.
    accountant : callable, optional
        Called as ``accountant(noise_multiplier=σ, sample_rate=q, steps=T, delta=δ)``; defaults
        to :func:`trilemma.accountants.dpsgd_epsilon` with ``method="pld"``.

    Returns
    -------
    AuditResult

    References
    ----------
    Abadi et al., CCS 2016 (arXiv:1607.00133), Alg. 1; Jagielski, Ullman, Oprea, NeurIPS 2020
    (arXiv:2006.07709); Nasr et al., IEEE S&P 2021 (arXiv:2101.04535).

    Examples
    --------
    >>> result = audit_dpsgd_step(noise_multiplier=1.0, sample_rate=0.1, steps=2,
    ...                           delta=1e-5, trials=20_000, seed=0)
    >>> result.sound
    True
    """
    sigma = check_real("noise_multiplier", noise_multiplier, low=0, low_open=True)
    q = check_real("sample_rate", sample_rate, low=0, high=1, low_open=True)
    count_steps = check_int("steps", steps, low=1)
    delta, count, level, scale = _check_audit(delta, trials, seed, confidence, noise_scale)
    _check_accountant(accountant)
    rng = np.random.default_rng(seed)
    log_keep = math.log1p(-q) if q < 1.0 else -math.inf
    log_q = math.log(q)

    def log_ratio(y: np.ndarray) -> np.ndarray:
        return np.logaddexp(log_keep, log_q + (2.0 * y - 1.0) / (2.0 * sigma**2))

    without = np.zeros(count)
    present = np.zeros(count)
    for _ in range(count_steps):
        without += log_ratio(rng.normal(0.0, scale * sigma, count))
        sampled = rng.random(count) < q
        present += log_ratio(sampled + rng.normal(0.0, scale * sigma, count))
    claim = accountant or _dpsgd_default
    claimed = _claimed(claim(noise_multiplier=sigma, sample_rate=q, steps=count_steps, delta=delta))
    return AuditResult(
        mechanism="dpsgd",
        epsilon_claimed=claimed,
        bound=epsilon_lower_bound(without, present, delta=delta, confidence=level),
        parameters={
            "noise_multiplier": sigma,
            "sample_rate": q,
            "steps": count_steps,
            "noise_scale": scale,
            "trials": count,
            "seed": seed,
        },
    )

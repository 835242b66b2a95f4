"""The empirical privacy audits as checks: ratio = ε_lower / ε_claimed, which must stay ≤ 1.

The budget's example count sets the runs per side: 8 000 × examples (200 000 for ``small``).
Settings: one Gaussian mechanism calibrated to ε = 1 (δ = 1e-5), where the audit is informative
(ε_lower ≥ 0.5 with 2·10⁶ runs); a DP-SGD run (q = 0.1, σ = 1, 5 steps); one SecLDP round on
ring:8 with colluding node 0.
"""

from __future__ import annotations

from trilemma.accountants import calibrate_gaussian
from trilemma.proofs_checks.audit import (
    AuditResult,
    audit_dpsgd_step,
    audit_gaussian,
)
from trilemma.proofs_checks.audit_secldp import audit_secldp_round
from trilemma.proofs_checks.report import CheckReport

__all__ = ["check_dpsgd_audit", "check_gaussian_audit", "check_secldp_audit", "runs_for"]

_SOURCE = "Jagielski, Ullman, Oprea, NeurIPS 2020; Nasr et al., IEEE S&P 2021 (audit method)"


def runs_for(examples: int) -> int:
    """Runs per side of an audit for a check budget of ``examples``."""
    return 8_000 * examples


def _report(name: str, statement: str, result: AuditResult) -> CheckReport:
    return CheckReport(
        name=name,
        statement=statement,
        source=_SOURCE,
        examples=int(sum(result.bound.trials)),
        worst_ratio=result.tightness,
        counterexample=None
        if result.sound
        else {
            "epsilon_lower": result.bound.epsilon_lower,
            "epsilon_claimed": result.epsilon_claimed,
            **result.parameters,
        },
        details={
            "epsilon_lower": result.bound.epsilon_lower,
            "epsilon_claimed": result.epsilon_claimed,
            "confidence": result.bound.confidence,
        },
    )


def check_gaussian_audit(*, examples: int, seed: int = 0) -> CheckReport:
    """Audit of one Gaussian mechanism calibrated to ε = 1 at δ = 1e-5."""
    sigma = calibrate_gaussian(target_epsilon=1.0, delta=1e-5)
    result = audit_gaussian(
        noise_multiplier=sigma, delta=1e-5, trials=runs_for(examples), seed=seed
    )
    return _report("audit:gaussian", "the analytic Gaussian ε survives its audit", result)


def check_dpsgd_audit(*, examples: int, seed: int = 0) -> CheckReport:
    """Audit of 5 Poisson-subsampled Gaussian steps (q = 0.1, σ = 1) against the PLD ε."""
    result = audit_dpsgd_step(
        noise_multiplier=1.0,
        sample_rate=0.1,
        steps=5,
        delta=1e-5,
        trials=runs_for(examples),
        seed=seed,
    )
    return _report("audit:dpsgd", "the DP-SGD (PLD) ε survives its audit", result)


def check_secldp_audit(*, examples: int, seed: int = 0) -> CheckReport:
    """Audit of one SecLDP round on ring:8 (σ = σ_cor = 1) with node 0 colluding."""
    result = audit_secldp_round(
        "ring:8",
        sigma=1.0,
        sigma_cor=1.0,
        delta=1e-5,
        trials=runs_for(examples) // 2,
        seed=seed,
        colluders=(0,),
    )
    return _report("audit:secldp", "the SecLDP ε (with colluders) survives its audit", result)

"""Property-based falsification of the theorems trilemma encodes, and empirical privacy audits.

:mod:`~trilemma.proofs_checks.strategies` holds public hypothesis strategies; each check states
one claim as a ratio observed/claimed that must stay ≤ 1, searches for the worst input and
returns a :class:`CheckReport`; :func:`run_checks` runs a group (``trilemma check``).
"""

from trilemma.proofs_checks.audit import (
    AuditResult,
    audit_dpsgd_step,
    audit_gaussian,
)
from trilemma.proofs_checks.audit_secldp import audit_secldp_round
from trilemma.proofs_checks.distinguishing import (
    AuditBound,
    clopper_pearson_upper,
    epsilon_lower_bound,
)
from trilemma.proofs_checks.registry import GROUPS, run_checks
from trilemma.proofs_checks.report import BUDGETS, CheckReport, examples_for, maximise

__all__ = [
    "BUDGETS",
    "GROUPS",
    "AuditBound",
    "AuditResult",
    "CheckReport",
    "audit_dpsgd_step",
    "audit_gaussian",
    "audit_secldp_round",
    "clopper_pearson_upper",
    "epsilon_lower_bound",
    "examples_for",
    "maximise",
    "run_checks",
]

"""The checks by group, and :func:`run_checks`, behind ``trilemma check``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from types import MappingProxyType

from trilemma._validation import check_choice, check_int
from trilemma.proofs_checks import (
    accountants,
    audit_checks,
    heterogeneity,
    robustness,
    trilemma_bounds,
)
from trilemma.proofs_checks.report import CheckReport, examples_for

__all__ = ["GROUPS", "run_checks"]

Check = Callable[..., CheckReport]

#: group → checks; each check takes ``examples=`` and ``seed=``.
GROUPS: MappingProxyType[str, tuple[Check, ...]] = MappingProxyType(
    {
        "robustness": (
            *(partial(robustness.check_kappa, label) for label in robustness.KAPPA_SEARCHES),
            robustness.check_smea_spectral,
            robustness.check_kappa_lower_bound,
        ),
        "trilemma": (
            trilemma_bounds.check_trilemma_limits,
            trilemma_bounds.check_trilemma_monotone,
        ),
        "gb": (heterogeneity.check_gb_upper_bound, heterogeneity.check_gb_floor_above_lower_bound),
        "accountants": (
            accountants.check_dpsgd_monotone,
            accountants.check_gaussian_composition,
            accountants.check_secldp_colluders,
            accountants.check_calibration,
        ),
        "audit": (
            audit_checks.check_gaussian_audit,
            audit_checks.check_dpsgd_audit,
            audit_checks.check_secldp_audit,
        ),
    }
)


def run_checks(
    group: str = "all",
    *,
    budget: str | int = "small",
    seed: int = 0,
    progress: Callable[[CheckReport], None] | None = None,
) -> list[CheckReport]:
    """Run the checks of ``group`` (or ``"all"``) with ``budget`` examples each.

    Parameters
    ----------
    group : {"robustness", "trilemma", "gb", "accountants", "audit", "all"}
    budget : {"small", "medium", "large"} or int
        Examples per check (:data:`~trilemma.proofs_checks.report.BUDGETS`); audits scale their
        trials with it.
    seed : int
        Seed of every search.
    progress : callable, optional
        Called with each report as soon as it is ready.

    Returns
    -------
    list of CheckReport
    """
    group = check_choice("group", group, ("all", *GROUPS))
    examples = examples_for(budget)
    seed = check_int("seed", seed)
    chosen = [
        check for name, checks in GROUPS.items() if group in ("all", name) for check in checks
    ]
    reports = []
    for check in chosen:
        result = check(examples=examples, seed=seed)
        reports.append(result)
        if progress is not None:
            progress(result)
    return reports

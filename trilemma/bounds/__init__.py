"""Closed-form theory as pure, keyword-only, numpy-vectorised functions (no torch, no I/O)."""

from trilemma.bounds.privacy import (
    complete_graph_inverse_variance,
    inverse_variance_resistance_bound,
    inverse_variance_spectral_bound,
    zcdp_to_dp_epsilon,
)
from trilemma.bounds.robustness import (
    KAPPA_TABLE,
    KappaEntry,
    kappa,
    kappa_lower_bound,
    nnm_kappa,
    smea_spectral_kappa,
)

__all__ = [
    "KAPPA_TABLE",
    "KappaEntry",
    "complete_graph_inverse_variance",
    "inverse_variance_resistance_bound",
    "inverse_variance_spectral_bound",
    "kappa",
    "kappa_lower_bound",
    "nnm_kappa",
    "smea_spectral_kappa",
    "zcdp_to_dp_epsilon",
]

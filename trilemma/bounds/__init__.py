"""Closed-form theory as pure, keyword-only, numpy-vectorised functions (no torch, no I/O)."""

from trilemma.bounds.privacy import (
    complete_graph_inverse_variance,
    inverse_variance_resistance_bound,
    inverse_variance_spectral_bound,
    zcdp_to_dp_epsilon,
)

__all__ = [
    "complete_graph_inverse_variance",
    "inverse_variance_resistance_bound",
    "inverse_variance_spectral_bound",
    "zcdp_to_dp_epsilon",
]

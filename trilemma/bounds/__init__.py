"""Closed-form theory as pure, keyword-only, numpy-vectorised functions (no torch, no I/O)."""

from trilemma.bounds.heterogeneity import (
    gb_breakdown_point,
    gb_lower_bound,
    gb_upper_bound_nonconvex,
    gb_upper_bound_pl,
)
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
    mda_kappa,
    mda_kappa_lower_bound,
    nnm_kappa,
    smea_spectral_kappa,
)
from trilemma.bounds.trilemma_lower import (
    central_marginal_lower_bound,
    distributed_dp_lower_bound,
    trilemma_lower_bound,
)
from trilemma.bounds.trilemma_upper import (
    gaussian_noise_std,
    honest_average_error,
    naive_error_rate,
    naive_upper_bound,
    noise_spread,
    noise_top_eigenvalue_bound,
    robust_error_upper_bound,
    smea_error_rate,
    smea_upper_bound,
)
from trilemma.bounds.vn_ratio import VN_RULES, vn_ratio_constant, vn_required_batch_size

__all__ = [
    "KAPPA_TABLE",
    "VN_RULES",
    "KappaEntry",
    "central_marginal_lower_bound",
    "complete_graph_inverse_variance",
    "distributed_dp_lower_bound",
    "gaussian_noise_std",
    "gb_breakdown_point",
    "gb_lower_bound",
    "gb_upper_bound_nonconvex",
    "gb_upper_bound_pl",
    "honest_average_error",
    "inverse_variance_resistance_bound",
    "inverse_variance_spectral_bound",
    "kappa",
    "kappa_lower_bound",
    "mda_kappa",
    "mda_kappa_lower_bound",
    "naive_error_rate",
    "naive_upper_bound",
    "nnm_kappa",
    "noise_spread",
    "noise_top_eigenvalue_bound",
    "robust_error_upper_bound",
    "smea_error_rate",
    "smea_spectral_kappa",
    "smea_upper_bound",
    "trilemma_lower_bound",
    "vn_ratio_constant",
    "vn_required_batch_size",
    "zcdp_to_dp_epsilon",
]

"""Closed forms of privacy accounting for correlated-noise decentralized learning (SecLDP).

Setting (Allouah, Koloskova, El Firdoussi, Jaggi, Guerraoui, "The Privacy Power of Correlated
Noise in Decentralized Learning", ICML 2024, arXiv:2405.01031, Sec. 3–4): each node adds
N(0, σ²) and every edge (j, k) adds a secret N(0, σ_cor² w_jk) at j and subtracts it at k, so
per coordinate the noise across nodes has covariance Σ = σ² I + σ_cor² L (L the weighted
Laplacian). A node's release is a Gaussian mechanism whose privacy is set by (Σ⁻¹)_ii, the
"inverse variance" of node i (the mechanism as in the reference code elfirdoussilab1/DECOR,
THEORY §6 [V]). The closed forms below are derived here [D], each with its derivation; the
RDP → DP conversion is the standard one [V, cited]. All functions are pure, keyword-only and
vectorised over numpy arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from trilemma._arrays import nonnegative, positive, unit_open

__all__ = [
    "complete_graph_inverse_variance",
    "inverse_variance_resistance_bound",
    "inverse_variance_spectral_bound",
    "zcdp_to_dp_epsilon",
]


def zcdp_to_dp_epsilon(*, rho: ArrayLike, delta: ArrayLike) -> np.ndarray:
    """ε = ρ + 2√(ρ ln(1/δ)) for a mechanism with RDP curve ε(α) = ρ α (ρ-zCDP).

    Source: Bun & Steinke, TCC 2016 (arXiv:1605.02065), Prop. 1.3; it is the classic RDP→DP
    conversion ε(α) + ln(1/δ)/(α − 1) minimised over α > 1 [D: optimum at α = 1 + √(ln(1/δ)/ρ)].
    This is the conversion of the SecLDP reference code (``user_level_rdp``), where
    ρ = 2 T C² max_i (Σ⁻¹)_ii.

    Examples
    --------
    >>> float(zcdp_to_dp_epsilon(rho=0.5, delta=np.exp(-2.0)))
    2.5
    """
    rho_array = nonnegative("rho", rho)
    delta_array = unit_open("delta", delta)
    return rho_array + 2.0 * np.sqrt(rho_array * np.log(1.0 / delta_array))


def complete_graph_inverse_variance(
    *, n: ArrayLike, sigma: ArrayLike, sigma_cor: ArrayLike
) -> np.ndarray:
    """(Σ⁻¹)_ii on the complete graph K_n: 1/(nσ²) + ((n − 1)/n)/(σ² + n σ_cor²).

    Derivation [D]: L(K_n) = n I − 11ᵀ has eigenvalue 0 on 1/√n and n on its orthogonal
    complement, so Σ⁻¹ = P₁/σ² + (I − P₁)/(σ² + nσ_cor²) with P₁ = 11ᵀ/n, whose diagonal is
    the formula (Allouah et al., ICML 2024, Sec. 4). σ_cor = 0 gives local DP (1/σ²); σ_cor → ∞
    gives the central rate 1/(nσ²).

    Examples
    --------
    >>> float(complete_graph_inverse_variance(n=4, sigma=1.0, sigma_cor=0.0))
    1.0
    """
    n_array = positive("n", n)
    var = positive("sigma", sigma) ** 2
    cor = nonnegative("sigma_cor", sigma_cor) ** 2
    return 1.0 / (n_array * var) + ((n_array - 1.0) / n_array) / (var + n_array * cor)


def inverse_variance_spectral_bound(
    *, n: ArrayLike, sigma: ArrayLike, sigma_cor: ArrayLike, algebraic_connectivity: ArrayLike
) -> np.ndarray:
    """Upper bound on (Σ⁻¹)_ii for a connected graph of n nodes with algebraic connectivity λ₂:
    1/(nσ²) + (1 − 1/n)/(σ² + σ_cor² λ₂).

    Derivation [D]: with L = Σ_k λ_k v_k v_kᵀ, (Σ⁻¹)_ii = Σ_k v_k(i)²/(σ² + σ_cor² λ_k); the
    k = 1 term is 1/(nσ²) (v₁ = 1/√n, λ₁ = 0), every other denominator is ≥ σ² + σ_cor² λ₂ and
    Σ_{k≥2} v_k(i)² = 1 − 1/n. Equality on K_n (λ₂ = n). For n = 1 it returns 1/σ², exact.
    """
    n_array = positive("n", n)
    var = positive("sigma", sigma) ** 2
    cor = nonnegative("sigma_cor", sigma_cor) ** 2
    gap = nonnegative("algebraic_connectivity", algebraic_connectivity)
    return 1.0 / (n_array * var) + (1.0 - 1.0 / n_array) / (var + cor * gap)


def inverse_variance_resistance_bound(
    *, n: ArrayLike, sigma: ArrayLike, sigma_cor: ArrayLike, pinv_diagonal: ArrayLike
) -> np.ndarray:
    """Upper bound on (Σ⁻¹)_ii for a connected graph: 1/(nσ²) + (L⁺)_ii / σ_cor².

    Derivation [D]: as for :func:`inverse_variance_spectral_bound`, with
    1/(σ² + σ_cor² λ_k) ≤ 1/(σ_cor² λ_k) for k ≥ 2 and Σ_{k≥2} v_k(i)²/λ_k = (L⁺)_ii. It is
    tight as σ_cor → ∞ relative to σ; (L⁺)_ii is the mean effective resistance from i up to a
    constant. Returns inf when σ_cor = 0 and (L⁺)_ii > 0.
    """
    n_array = positive("n", n)
    var = positive("sigma", sigma) ** 2
    cor = nonnegative("sigma_cor", sigma_cor) ** 2
    pinv = nonnegative("pinv_diagonal", pinv_diagonal)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.where(pinv == 0, 0.0, pinv / cor)
    return 1.0 / (n_array * var) + spread

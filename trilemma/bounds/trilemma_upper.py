"""Upper bounds of the privacy–robustness–utility trilemma of distributed mean estimation.

Setting (Allouah, Guerraoui, Gupta, Pinot, Stephan, "On the Privacy-Robustness-Utility Trilemma
in Distributed Learning", ICML 2023, arXiv:2302.04787): n workers, f of them Byzantine, honest
set H with h = n − f; each honest worker holds m records of norm ≤ C and must be (ε, δ)-DP w.r.t.
one of its records against every other party (distributed DP, honest-but-curious server), so it
sends its average plus N(0, s² I_d). The error of an estimator F is ‖F − x̄_H‖², x̄_H the mean of
the honest records.

*Upper bounds with explicit constants* (:func:`naive_upper_bound`, :func:`smea_upper_bound`,
:func:`honest_average_error`), derived here [D] from (f, κ)-robustness and exact Gaussian
moments; they take the noise std s actually used and, optionally, measured data terms, and hold
for every input data set. Byzantine vectors may depend on everything the honest workers send.

The lower bounds they are compared with live in :mod:`trilemma.bounds.trilemma_lower`.

The closed-form *rates* (:func:`naive_error_rate`, :func:`smea_error_rate`) plug in the classic
Gaussian-mechanism std of :func:`gaussian_noise_std` and no data spread, to draw the theory
curves as functions of (d, n, f, m, ε, δ) alone. That std is proven for ε < 1 only
(Dwork & Roth 2014, Thm. A.1): for ε ≥ 1 they warn, and the figures' measured errors use the
exact calibration of :mod:`trilemma.accountants`.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike

from trilemma._arrays import (
    nonnegative,
    positive,
    positive_integers,
    unit_open,
    worker_counts,
)
from trilemma.bounds.robustness import smea_spectral_kappa

__all__ = [
    "gaussian_noise_std",
    "honest_average_error",
    "naive_error_rate",
    "naive_upper_bound",
    "noise_spread",
    "noise_top_eigenvalue_bound",
    "robust_error_upper_bound",
    "smea_error_rate",
    "smea_upper_bound",
]


def gaussian_noise_std(
    *, sensitivity: ArrayLike, epsilon: ArrayLike, delta: ArrayLike
) -> np.ndarray:
    """Classic Gaussian-mechanism std Δ·√(2 ln(1.25/δ))/ε per coordinate.

    Source: Dwork & Roth, "The Algorithmic Foundations of Differential Privacy", 2014,
    Thm. A.1 [V]: for ε ∈ (0, 1) and c² > 2 ln(1.25/δ), noise of std cΔ/ε gives (ε, δ)-DP
    (the value returned is the infimum of such stds). The theorem says nothing for ε ≥ 1, where
    this scaling is a heuristic (the exact std then grows like 1/√ε, not 1/ε): such ε raise a
    ``UserWarning`` pointing to :func:`trilemma.accountants.calibrate_gaussian`, the exact
    analytic calibration (Balle & Wang 2018, arXiv:1805.06530), which the estimators use and
    which never needs more noise for ε < 1. It warns instead of refusing because callers
    outside :mod:`trilemma.bounds` (the README's example of :func:`smea_error_rate`) pass
    ε = 1. A worker averaging m records of norm ≤ C has replace-one sensitivity Δ = 2C/m, the
    std of Guerraoui et al., PODC 2021 (arXiv:2102.08166, code).

    Parameters
    ----------
    sensitivity : float or array
        ℓ₂ sensitivity Δ > 0.
    epsilon : float or array
        ε > 0; the guarantee holds for ε < 1.
    delta : float or array
        δ ∈ (0, 1).

    Warns
    -----
    UserWarning
        If any ε ≥ 1 (the theorem's condition ε < 1 fails).

    Examples
    --------
    >>> float(gaussian_noise_std(sensitivity=1.0, epsilon=0.5, delta=1.25 * np.exp(-2)))
    4.0
    """
    sens = positive("sensitivity", sensitivity)
    eps = positive("epsilon", epsilon)
    dlt = unit_open("delta", delta)
    if np.any(eps >= 1.0):
        warnings.warn(
            f"epsilon={float(np.max(eps)):g} >= 1: the classic Gaussian calibration "
            "Δ√(2 ln(1.25/δ))/ε is proven for epsilon < 1 only (Dwork & Roth 2014, Thm. A.1); "
            "use trilemma.accountants.calibrate_gaussian (exact analytic Gaussian) for "
            "epsilon >= 1",
            UserWarning,
            stacklevel=2,
        )
    return sens * np.sqrt(2.0 * np.log(1.25 / dlt)) / eps


def _noise_arguments(
    d: ArrayLike, n_honest: ArrayLike, noise_std: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """d, h and s validated (d, h integers ≥ 1, s ≥ 0)."""
    return (
        positive_integers("d", d),
        positive_integers("n_honest", n_honest),
        nonnegative("noise_std", noise_std),
    )


def honest_average_error(*, d: ArrayLike, n_honest: ArrayLike, noise_std: ArrayLike) -> np.ndarray:
    """E‖ȳ_H − x̄_H‖² = d s²/h: exact error of averaging h noisy honest messages.

    Derivation [D]: ȳ_H − x̄_H is the mean of h independent N(0, s² I_d) vectors, i.e.
    N(0, (s²/h) I_d), whose squared norm has mean d s²/h. This is the distributed-DP term of
    Allouah et al. (ICML 2023, arXiv:2302.04787, Sec. 3): with s = 2C√(2 ln(1.25/δ))/(εm) it is
    8 C² d ln(1.25/δ)/(ε² h m²).

    Examples
    --------
    >>> float(honest_average_error(d=100, n_honest=4, noise_std=0.5))
    6.25
    """
    dim, h, s = _noise_arguments(d, n_honest, noise_std)
    return dim * s**2 / h


def noise_spread(*, d: ArrayLike, n_honest: ArrayLike, noise_std: ArrayLike) -> np.ndarray:
    """E tr Σ_H of the noise alone: d s² (h − 1)/h.

    Derivation [D]: with Σ_H(z) = (1/h) Σ_i (z_i − z̄)(z_i − z̄)ᵀ and z_i iid N(0, s² I_d),
    E tr Σ_H = (1/h) Σ_i E‖z_i − z̄‖² = d s² (1 − 1/h). For data x plus independent noise,
    E tr Σ_H(x + z) = tr Σ_H(x) + d s² (h − 1)/h exactly (cross terms have mean 0).

    Examples
    --------
    >>> float(noise_spread(d=10, n_honest=5, noise_std=1.0))
    8.0
    """
    dim, h, s = _noise_arguments(d, n_honest, noise_std)
    return dim * s**2 * (h - 1.0) / h


def noise_top_eigenvalue_bound(
    *, d: ArrayLike, n_honest: ArrayLike, noise_std: ArrayLike
) -> np.ndarray:
    """Bound on E λ_max(Σ_H) of the noise alone: s² ((√(h − 1) + √d)² + 1)/h.

    Derivation [D]: hΣ_H(z) = Z_cᵀZ_c with Z_c = PZ, P the centring projector of rank h − 1, so
    λ_max(Σ_H) = ‖UᵀZ‖²_op/h with U an orthonormal basis of range(P) and UᵀZ an (h − 1) × d
    matrix of iid N(0, s²). For a standard Gaussian matrix G of that shape, E‖G‖_op ≤ √(h − 1) +
    √d (Gordon's inequality; Vershynin, "High-Dimensional Probability", 2018, Thm. 7.3.1) and
    Var ‖G‖_op ≤ 1 (‖·‖_op is 1-Lipschitz in the Frobenius norm; Gaussian Poincaré inequality),
    so E‖G‖²_op ≤ (√(h − 1) + √d)² + 1. It is of order s²(1 + √(d/h))², the λ_max of THEORY
    §4, instead of the trace d s².

    Examples
    --------
    >>> float(noise_top_eigenvalue_bound(d=16, n_honest=10, noise_std=1.0))
    5.0
    """
    dim, h, s = _noise_arguments(d, n_honest, noise_std)
    return s**2 * ((np.sqrt(h - 1.0) + np.sqrt(dim)) ** 2 + 1.0) / h


def robust_error_upper_bound(
    *, kappa: ArrayLike, spread: ArrayLike, offset: ArrayLike
) -> np.ndarray:
    """(√(κ · spread) + √offset)²: the error budget of an (f, κ)-robust rule.

    Derivation [D]: for an (f, κ)-robust F (Allouah et al., AISTATS 2023, arXiv:2302.01772,
    Def. 2) and the honest messages y_S of a set S with |S| = n − f,
    ‖F − x̄‖ ≤ ‖F − ȳ_S‖ + ‖ȳ_S − x̄‖ and ‖F − ȳ_S‖² ≤ κ · spread(y_S) pointwise. Minkowski's
    inequality in L² gives E‖F − x̄‖² ≤ (√(κ E spread) + √(E‖ȳ_S − x̄‖²))². ``spread`` is
    E tr Σ_S for (f, κ)-robustness or E λ_max(Σ_S) for the spectral κ of SMEA. κ = inf gives inf
    (0 · inf is taken as 0: with no spread the honest vectors coincide and F returns them;
    κ = 0 means F returns the honest mean).

    Examples
    --------
    >>> float(robust_error_upper_bound(kappa=4.0, spread=1.0, offset=1.0))
    9.0
    """
    k = nonnegative("kappa", kappa)
    v = nonnegative("spread", spread)
    o = nonnegative("offset", offset)
    with np.errstate(invalid="ignore"):
        product = np.where((v == 0) | (k == 0), 0.0, k * v)
    return (np.sqrt(product) + np.sqrt(o)) ** 2


def naive_upper_bound(
    *,
    kappa: ArrayLike,
    d: ArrayLike,
    n: ArrayLike,
    f: ArrayLike,
    noise_std: ArrayLike,
    data_spread: ArrayLike = 0.0,
    data_offset: ArrayLike = 0.0,
) -> np.ndarray:
    """E‖F − x̄‖² bound for an (f, κ)-robust rule on noisy worker averages ("naive" DP + robust).

    The rule pays κ times the *trace* of the honest spread, which the noise makes ≈ κ d s²:
    (√(κ (tr Σ_S(x) + d s²(h − 1)/h)) + √(‖x̄_S − x̄‖² + d s²/h))², h = n − f, from
    :func:`robust_error_upper_bound`, :func:`noise_spread` and :func:`honest_average_error` [D].
    With κ = Θ(f/n) (CWTM) this is ≈ (1 + f) d s²/n; with κ = Θ(1) (Krum, CWMed, GM) ≈ d s²:
    the benefit of n workers is lost (THEORY §4; Guerraoui et al., PODC 2021, arXiv:2102.08166).

    Parameters
    ----------
    kappa : float or array
        The rule's κ, e.g. :func:`trilemma.bounds.kappa` (``inf`` gives ``inf``).
    d, n, f : int or array
        Dimension, workers, Byzantine workers (2f < n).
    noise_std : float or array
        Std s of each honest worker's Gaussian noise, per coordinate.
    data_spread : float or array
        tr Σ_S of the noise-free honest averages x_i, i ∈ S (0 for identical workers).
    data_offset : float or array
        ‖x̄_S − x̄‖² between the noise-free mean over S and the target mean (0 when S is the
        whole honest set; positive when no worker is Byzantine and S drops f honest ones).

    Examples
    --------
    Identical workers, s = 1, d = 9, n = 10, f = 1: (√(κ · 8) + √1)² with κ = 2 is 25.

    >>> float(naive_upper_bound(kappa=2.0, d=9, n=10, f=1, noise_std=1.0))
    25.0
    """
    n_array, f_array = worker_counts(n, f)
    h = n_array - f_array
    spread = nonnegative("data_spread", data_spread) + noise_spread(
        d=d, n_honest=h, noise_std=noise_std
    )
    offset = nonnegative("data_offset", data_offset) + honest_average_error(
        d=d, n_honest=h, noise_std=noise_std
    )
    return robust_error_upper_bound(kappa=kappa, spread=spread, offset=offset)


def smea_upper_bound(
    *,
    d: ArrayLike,
    n: ArrayLike,
    f: ArrayLike,
    noise_std: ArrayLike,
    data_top_eigenvalue: ArrayLike = 0.0,
    data_offset: ArrayLike = 0.0,
) -> np.ndarray:
    """E‖SMEA − x̄‖² bound: SMEA pays κ_sp · λ_max, not κ · trace.

    With κ_sp = 4f/(n − 2f) (:func:`trilemma.bounds.smea_spectral_kappa`) and h = n − f, the
    bound is (√(κ_sp Λ) + √(‖x̄_S − x̄‖² + d s²/h))² where
    Λ = (√λ_max(Σ_S(x)) + √(s²((√(h − 1) + √d)² + 1)/h))² bounds E λ_max(Σ_S(x + z))
    [D: ‖X_c + Z_c‖_op ≤ ‖X_c‖_op + ‖Z_c‖_op, then Minkowski and
    :func:`noise_top_eigenvalue_bound`]. For d ≫ h the robustness term is ≈ κ_sp (d/h) s², a
    factor κ_sp = 4f/(n − 2f) of the honest-average error d s²/h, where the naive rules pay
    κ d s²: the dimension no longer multiplies f
    (Allouah et al., ICML 2023, arXiv:2302.04787, SMEA, Alg. 2).

    Parameters
    ----------
    d, n, f, noise_std, data_offset
        As in :func:`naive_upper_bound`.
    data_top_eigenvalue : float or array
        λ_max(Σ_S) of the noise-free honest averages (0 for identical workers).

    Examples
    --------
    d = 16, h = 10, s = 1: Λ = ((3 + 4)² + 1)/10 = 5, κ_sp = 4/9, offset 1.6:

    >>> bound = smea_upper_bound(d=16, n=11, f=1, noise_std=1.0)
    >>> bool(np.isclose(bound, (np.sqrt(4 / 9 * 5) + np.sqrt(1.6)) ** 2))
    True
    """
    n_array, f_array = worker_counts(n, f)
    h = n_array - f_array
    noise_top = noise_top_eigenvalue_bound(d=d, n_honest=h, noise_std=noise_std)
    top = np.sqrt(nonnegative("data_top_eigenvalue", data_top_eigenvalue)) + np.sqrt(noise_top)
    offset = nonnegative("data_offset", data_offset) + honest_average_error(
        d=d, n_honest=h, noise_std=noise_std
    )
    return robust_error_upper_bound(
        kappa=smea_spectral_kappa(n=n_array, f=f_array),
        spread=top**2,
        offset=offset,
    )


def _worker_std(m: ArrayLike, epsilon: ArrayLike, delta: ArrayLike, clip: ArrayLike) -> np.ndarray:
    return gaussian_noise_std(
        sensitivity=2.0 * positive("clip", clip) / positive_integers("m", m),
        epsilon=epsilon,
        delta=delta,
    )


def naive_error_rate(
    *,
    kappa: ArrayLike,
    d: ArrayLike,
    n: ArrayLike,
    f: ArrayLike,
    m: ArrayLike,
    epsilon: ArrayLike,
    delta: ArrayLike,
    clip: ArrayLike = 1.0,
) -> np.ndarray:
    """:func:`naive_upper_bound` for identical workers with the classic worker std
    s = 2C√(2 ln(1.25/δ))/(εm) (:func:`gaussian_noise_std`): the theory curve of DP + an
    (f, κ)-robust rule as a function of (d, n, f, m, ε, δ).

    Examples
    --------
    The error scales as 1/(ε² m²):

    >>> a = naive_error_rate(kappa=1.0, d=64, n=10, f=2, m=10, epsilon=0.25, delta=1e-5)
    >>> b = naive_error_rate(kappa=1.0, d=64, n=10, f=2, m=20, epsilon=0.5, delta=1e-5)
    >>> round(float(a / b), 12)
    16.0
    """
    s = _worker_std(m, epsilon, delta, clip)
    return naive_upper_bound(kappa=kappa, d=d, n=n, f=f, noise_std=s)


def smea_error_rate(
    *,
    d: ArrayLike,
    n: ArrayLike,
    f: ArrayLike,
    m: ArrayLike,
    epsilon: ArrayLike,
    delta: ArrayLike,
    clip: ArrayLike = 1.0,
) -> np.ndarray:
    """:func:`smea_upper_bound` for identical workers with the classic worker std (see
    :func:`naive_error_rate`): ≈ (d + f) ln(1/δ)/(ε² n m²) up to constants (THEORY §4).

    Examples
    --------
    >>> smea = smea_error_rate(d=1024, n=20, f=4, m=10, epsilon=0.5, delta=1e-5)
    >>> from trilemma.bounds import kappa
    >>> cwtm = naive_error_rate(
    ...     kappa=kappa("cwtm", n=20, f=4), d=1024, n=20, f=4, m=10, epsilon=0.5, delta=1e-5
    ... )
    >>> bool(smea < cwtm)
    True
    """
    s = _worker_std(m, epsilon, delta, clip)
    return smea_upper_bound(d=d, n=n, f=f, noise_std=s)

"""(G, B)-gradient dissimilarity: breakdown point, lower bound and robust D-GD upper bounds.

Paper: Allouah, Guerraoui, Gupta, Pinot, Rizk, "Robust Distributed Learning: Tight Error Bounds
and Breakdown Point under Data Heterogeneity", NeurIPS 2023 (arXiv:2309.13591). The honest
losses L_i satisfy (G, B)-gradient dissimilarity when, for every θ,

    (1/|H|) Σ_{i∈H} ‖∇L_i(θ) − ∇L_H(θ)‖² ≤ G² + B² ‖∇L_H(θ)‖².

All functions are pure, keyword-only and vectorised over numpy arrays; beyond the breakdown
point the bounds are ``inf``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from trilemma._arrays import nonnegative, positive, positive_integers, worker_counts

__all__ = [
    "gb_breakdown_point",
    "gb_lower_bound",
    "gb_upper_bound_nonconvex",
    "gb_upper_bound_pl",
]


def gb_breakdown_point(*, B2: ArrayLike) -> np.ndarray:
    """1/(2 + B²): no algorithm is resilient when f/n ≥ 1/(2 + B²).

    Source: Allouah et al., NeurIPS 2023 (arXiv:2309.13591), breakdown point [R, recalled;
    THEORY §3]. It equals 1/2 (the classical breakdown) for B = 0 and decreases with B².
    Consistency [D]: with κ = f/(n − 2f), the condition κB² < 1 of
    :func:`gb_upper_bound_pl` is f(2 + B²) < n, i.e. f/n < 1/(2 + B²): the shapes coincide.
    No aggregation rule attains κ = f/(n − 2f) (it is only a lower bound on κ,
    :func:`trilemma.bounds.kappa_lower_bound`), so for a real rule the upper bound's condition
    fails earlier than this point.

    Examples
    --------
    >>> float(gb_breakdown_point(B2=7 / 3))  # the line of the paper's Fig. 2
    0.23076923076923073
    """
    return 1.0 / (2.0 + nonnegative("B2", B2))


def gb_lower_bound(
    *,
    n: ArrayLike,
    f: ArrayLike,
    G2: ArrayLike,
    B2: ArrayLike,
    mu: ArrayLike,
    constant: ArrayLike = 0.125,
) -> np.ndarray:
    """c · f G² / (μ (n − (2 + B²) f)): error floor of any robust algorithm, μ-strongly convex L_H.

    Source: Allouah et al., NeurIPS 2023 (arXiv:2309.13591), lower bound [R: the shape is
    certain, the constant 1/8 is recalled and exposed as ``constant``]. ``inf`` at and beyond the
    breakdown point f/n ≥ 1/(2 + B²).

    Examples
    --------
    >>> float(gb_lower_bound(n=10, f=2, G2=1.0, B2=0.5, mu=1.0))  # 2/(8 · 5)
    0.05
    >>> float(gb_lower_bound(n=10, f=4, G2=1.0, B2=0.5, mu=1.0))
    inf
    """
    n_array, f_array = worker_counts(n, f)
    margin = n_array - (2.0 + nonnegative("B2", B2)) * f_array
    scale = nonnegative("constant", constant) * f_array * nonnegative("G2", G2)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = scale / (positive("mu", mu) * margin)
    return np.where(margin > 0, np.where(scale == 0, 0.0, value), np.inf)


def _contraction(kappa: ArrayLike, B2: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    k = nonnegative("kappa", kappa)
    return k, 1.0 - k * nonnegative("B2", B2)


def gb_upper_bound_pl(
    *,
    kappa: ArrayLike,
    G2: ArrayLike,
    B2: ArrayLike,
    mu: ArrayLike,
    L: ArrayLike,
    steps: ArrayLike,
    initial_gap: ArrayLike,
) -> np.ndarray:
    """Robust D-GD with γ = 1/L on a μ-PL L_H, F (f, κ)-robust, κB² < 1:
    L_H(θ_T) − L* ≤ e^{−(μ/L)(1 − κB²)T} (L_H(θ₀) − L*) + κG²/(2μ(1 − κB²)).

    Derivation [D, THEORY §3]: with R_t = F(g) − ∇L_H(θ_t), L-smoothness gives
    L_H(θ_{t+1}) ≤ L_H(θ_t) − (1/2L)‖∇L_H‖² + (1/2L)‖R_t‖², and (f, κ)-robustness with
    (G, B)-dissimilarity gives ‖R_t‖² ≤ κ(G² + B²‖∇L_H‖²); so the gap contracts by
    1 − (μ/L)(1 − κB²) per step (PL: ‖∇L_H‖² ≥ 2μ(L_H − L*)) up to κG²/(2L), whose fixed point is
    κG²/(2μ(1 − κB²)); (1 − x)^T ≤ e^{−xT}. With κ = f/(n − 2f) the floor would be
    f G²/(2μ(n − (2 + B²) f)), 4 × :func:`gb_lower_bound` with its recalled constant 1/8: the
    *shapes* coincide. The bounds do not match: no rule attains κ = f/(n − 2f), which is only
    the lower bound :func:`trilemma.bounds.kappa_lower_bound` on κ; the rules' κ
    (:func:`trilemma.bounds.kappa`, e.g. SMEA's 4f/(n − 2f) or NNM ∘ F's
    (8f/(n − f))(κ_F + 1)) give a floor at least a constant factor higher and a breakdown
    (κB² = 1) earlier. ``inf`` when κB² ≥ 1.

    Examples
    --------
    >>> float(gb_upper_bound_pl(kappa=0.5, G2=1.0, B2=0.0, mu=1.0, L=1.0, steps=10**6,
    ...                         initial_gap=1.0))
    0.25
    """
    k, margin = _contraction(kappa, B2)
    rate = positive("mu", mu) / positive("L", L)
    t = np.asarray(steps, dtype=np.float64)
    if np.any(~(t >= 0)):
        raise ValueError(f"steps must be >= 0 everywhere, got {steps!r}")
    gap = nonnegative("initial_gap", initial_gap)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        floor = k * nonnegative("G2", G2) / (2.0 * positive("mu", mu) * margin)
        floor = np.where(k == 0, 0.0, floor)
        value = np.exp(-rate * margin * t) * gap + floor
    return np.where(margin > 0, value, np.inf)


def gb_upper_bound_nonconvex(
    *,
    kappa: ArrayLike,
    G2: ArrayLike,
    B2: ArrayLike,
    L: ArrayLike,
    steps: ArrayLike,
    initial_gap: ArrayLike,
) -> np.ndarray:
    """Robust D-GD with γ = 1/L, L-smooth L_H, κB² < 1:
    (1/T) Σ_{t<T} ‖∇L_H(θ_t)‖² ≤ κG²/(1 − κB²) + 2L(L_H(θ₀) − L*)/((1 − κB²)T).

    Derivation [D, THEORY §3]: sum the one-step inequality of :func:`gb_upper_bound_pl`
    ((1 − κB²)‖∇L_H‖² ≤ 2L(L_H(θ_t) − L_H(θ_{t+1})) + κG²) over t < T and telescope.
    ``inf`` when κB² ≥ 1.

    Examples
    --------
    >>> float(gb_upper_bound_nonconvex(kappa=0.5, G2=2.0, B2=1.0, L=1.0, steps=4,
    ...                                initial_gap=1.0))
    3.0
    """
    k, margin = _contraction(kappa, B2)
    t = positive_integers("steps", steps)
    gap = nonnegative("initial_gap", initial_gap)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (k * nonnegative("G2", G2) + 2.0 * positive("L", L) * gap / t) / margin
        value = np.where(k == 0, 2.0 * positive("L", L) * gap / t, value)
    return np.where(margin > 0, value, np.inf)

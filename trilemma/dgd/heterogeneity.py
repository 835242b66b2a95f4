"""(G, B)-gradient dissimilarity measured on a problem: exact for least squares, sampled
otherwise (Allouah et al., NeurIPS 2023, arXiv:2309.13591; THEORY §3).

The honest workers satisfy (G, B)-dissimilarity when H(θ) ≤ G² + B² N(θ) for every θ, with
H(θ) = (1/h) Σ_i ‖∇L_i(θ) − ∇L_H(θ)‖² and N(θ) = ‖∇L_H(θ)‖².
"""

from __future__ import annotations

import numpy as np
import torch

from trilemma._arrays import nonnegative
from trilemma._validation import check_int
from trilemma.dgd.problems import LeastSquares, Problem

__all__ = ["dissimilarity", "error_floor_pair", "exact_gb", "exact_gb_threshold", "sampled_gb"]


def dissimilarity(problem: Problem, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(H(θ), N(θ)) for every θ of a batch ``(..., P)``."""
    grads = problem.gradients(theta)
    mean = grads.mean(dim=-2)
    spread = (grads - mean.unsqueeze(-2)).square().sum(dim=-1).mean(dim=-1)
    return spread, mean.square().sum(dim=-1)


def _quadratic_form(problem: LeastSquares) -> tuple[np.ndarray, np.ndarray, float]:
    """M, v, w with H = uᵀMu + 2vᵀu + w in u = ∇L_H(θ) = Āθ − b̄ [D, module docstring of
    :func:`exact_gb`]."""
    a_bar = problem.mean_hessian().double().numpy()  # raises if L_H is not strongly convex
    a = problem.hessians().double().numpy()
    b = problem.offsets().double().numpy()
    b_bar = b.mean(axis=0)
    inverse = np.linalg.inv(a_bar)
    spread = a - a_bar  # (h, p, p)
    linear = spread @ inverse  # (A_i − Ā)Ā⁻¹
    constant = linear @ b_bar - (b - b_bar)  # c_i
    m = np.einsum("hji,hjk->ik", linear, linear) / a.shape[0]
    v = np.einsum("hji,hj->i", linear, constant) / a.shape[0]
    w = float((constant**2).sum(axis=1).mean())
    return (m + m.T) / 2, v, w


def exact_gb_threshold(problem: LeastSquares) -> float:
    """λ_max(M): the smallest B² for which a finite G exists on a least-squares problem.

    Raises
    ------
    ValueError
        If L_H is not strongly convex (:meth:`LeastSquares.mean_hessian`).
    """
    m, _, _ = _quadratic_form(problem)
    return float(np.linalg.eigvalsh(m)[-1])


def exact_gb(problem: LeastSquares, *, B2: np.ndarray | float) -> np.ndarray:
    """G²(B²), the smallest G² making (G, B) hold on a least-squares problem, for each B².

    Derivation [D]: ∇L_i(θ) = A_iθ − b_i, so with u = Āθ − b̄ (θ = Ā⁻¹(u + b̄)) each deviation is
    ∇L_i − ∇L_H = (A_i − Ā)Ā⁻¹u + c_i, c_i = (A_i − Ā)Ā⁻¹b̄ − (b_i − b̄), and
    H = uᵀMu + 2vᵀu + w with M = (1/h)Σ Ā⁻¹(A_i − Ā)ᵀ(A_i − Ā)Ā⁻¹, v = (1/h)Σ Ā⁻¹(A_i − Ā)ᵀc_i,
    w = (1/h)Σ‖c_i‖². The condition H ≤ G² + B²‖u‖² for all u needs B² ≥ λ_max(M); for
    B² > λ_max(M) the concave quadratic H − B²‖u‖² is maximised at u = (B²I − M)⁻¹v, so
    G²(B²) = w + vᵀ(B²I − M)⁻¹v. At B² = λ_max(M) it is finite only if v ⊥ the top
    eigenspace (returned as inf otherwise, conservatively); below it, inf.

    Examples
    --------
    Workers with the same A and different b: B² = 0 suffices and G² = (1/h)Σ‖b_i − b̄‖².

    >>> X = torch.eye(2, dtype=torch.float64).expand(2, 2, 2) * 2**0.5
    >>> y = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64) * 2**0.5
    >>> problem = LeastSquares(X, y)
    >>> exact_gb_threshold(problem), round(float(exact_gb(problem, B2=0.0)[0]), 12)
    (0.0, 1.0)
    """
    grid = np.atleast_1d(nonnegative("B2", B2)).astype(np.float64)
    m, v, w = _quadratic_form(problem)
    values, vectors = np.linalg.eigh(m)
    top = values[-1]
    projections = vectors.T @ v
    out = np.empty_like(grid)
    for k, b2 in enumerate(grid):
        gaps = b2 - values
        if b2 < top - 1e-12 * max(1.0, abs(top)):
            out[k] = np.inf
            continue
        live = np.abs(projections) > 1e-14 * max(1.0, float(np.abs(v).max(initial=0.0)))
        if np.any(live & (gaps <= 1e-12 * max(1.0, abs(top)))):
            out[k] = np.inf
            continue
        out[k] = w + float(np.sum(np.where(live, projections**2 / np.where(live, gaps, 1), 0)))
    return out


def sampled_gb(
    problem: Problem, thetas: torch.Tensor, *, B2: np.ndarray | float, chunk: int = 256
) -> np.ndarray:
    """G²(B²) = max over the sampled θ of (H(θ) − B² N(θ))₊, for each B² of the grid.

    A lower estimate of the true frontier (the maximum runs over samples only): sample where
    the algorithm goes (start, trajectories, θ*, segments between them; THEORY §3 pitfalls).

    Parameters
    ----------
    problem : Problem
    thetas : torch.Tensor
        Sampled parameters ``(k, P)``; rows with a non-finite entry (a diverged iterate) are
        skipped.
    B2 : float or array
        Grid of B² ≥ 0.
    chunk : int
        θ per gradient call: bounds the per-worker gradients held in memory at once (the
        maximum over a union is the maximum of the per-chunk maxima).
    """
    grid = np.atleast_1d(nonnegative("B2", B2)).astype(np.float64)
    chunk = check_int("chunk", chunk, low=1)
    finite = thetas[torch.isfinite(thetas).all(dim=-1)]
    best = np.zeros_like(grid)
    for part in finite.split(chunk):
        spread, norm = dissimilarity(problem, part)
        spread_np, norm_np = spread.double().cpu().numpy(), norm.double().cpu().numpy()
        values = np.maximum(spread_np[None, :] - grid[:, None] * norm_np[None, :], 0.0)
        best = np.maximum(best, values.max(axis=1))
    return best


def error_floor_pair(B2: np.ndarray, G2: np.ndarray, *, kappa: float) -> tuple[float, float, float]:
    """The pair of a (G, B) frontier that minimises the error floor κG²/(1 − κB²) of robust
    D-GD (Allouah et al., NeurIPS 2023, arXiv:2309.13591, Theorem 2; THEORY §3: every admissible
    pair gives a valid bound, so the best one is taken).

    Parameters
    ----------
    B2, G2 : array
        The frontier: G2[k] admissible with B2[k] (e.g. from :func:`sampled_gb` or
        :func:`exact_gb`), same shape.
    kappa : float
        κ ≥ 0 of the rule.

    Returns
    -------
    tuple of float
        (B², G², floor) of the minimising pair; floor is inf when κB² ≥ 1 for every pair.

    Examples
    --------
    >>> error_floor_pair(np.array([0.0, 1.0]), np.array([4.0, 1.0]), kappa=0.5)
    (1.0, 1.0, 1.0)
    """
    b2 = np.atleast_1d(nonnegative("B2", B2)).astype(np.float64)
    g2 = np.atleast_1d(nonnegative("G2", G2)).astype(np.float64)
    if b2.shape != g2.shape or b2.ndim != 1:
        raise ValueError(f"B2 {b2.shape} and G2 {g2.shape} must be 1-d of the same length")
    k = float(nonnegative("kappa", kappa))
    margin = 1.0 - k * b2
    with np.errstate(divide="ignore", invalid="ignore"):
        floors = np.where(margin > 0, k * g2 / np.where(margin > 0, margin, 1.0), np.inf)
    best = int(np.argmin(floors))
    return float(b2[best]), float(g2[best]), float(floors[best])

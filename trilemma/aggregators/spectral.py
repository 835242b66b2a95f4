"""Spectral rules: SMEA and CAF, which filter along the direction of largest variance.

Both work on n × n matrices only: the scatter of a set S of vectors has the same non-zero
spectrum as its centred Gram matrix, and the centred Gram matrix is −½ J D_S J with D_S the
squared distances within S and J the centring projector (classical multidimensional scaling,
Torgerson 1952) [D]. So no d × d covariance is ever formed.
"""

from __future__ import annotations

import math

import torch

from trilemma.aggregators._base import Aggregator
from trilemma.aggregators._garbage import (
    anchored_gram,
    garbage_rows,
    zero_garbage,
)
from trilemma.aggregators._smea_search import (
    FLAG_ELEMENTS,
    next_copies,
    smallest_top_eigenvalue_sets,
)

__all__ = ["CAF", "SMEA", "top_scatter_eigenvalue"]


def top_scatter_eigenvalue(block: torch.Tensor) -> torch.Tensor:
    """λ_max of Σ_{i∈S}(x_i − x̄_S)(x_i − x̄_S)ᵀ from squared distances ``(..., k, k)`` within S.

    Blocks holding +inf (a garbage member) get +inf.
    """
    infinite = ~torch.isfinite(block).all(dim=-1).all(dim=-1)
    finite = block.masked_fill(~torch.isfinite(block), 0.0)
    centred = finite - finite.mean(dim=-1, keepdim=True)
    centred = centred - centred.mean(dim=-2, keepdim=True)
    top = torch.linalg.eigvalsh(-0.5 * centred)[..., -1]
    return top.masked_fill(infinite, torch.inf)


class SMEA(Aggregator):
    """Smallest maximum eigenvalue averaging: the mean of the n − f vectors whose empirical
    covariance has the smallest top eigenvalue (Allouah et al., ICML 2023, arXiv:2302.04787,
    Alg. 2). Spectrally robust with κ_sp = 4f/(n − 2f).

    Exact, by branch and bound over the sets R of removed points (|R| = f), in float64 on the
    Gram matrix of x (d is read once). For a kept set T write λ_1(T) ≥ λ_2(T) ≥ … for the
    eigenvalues of its centred Gram matrix J G_T J, which are those of its scatter
    Σ_T = Σ_{i∈T}(x_i − x̄_T)(x_i − x̄_T)ᵀ padded with zeros.

    *Bound* [D]. If S ⊂ T and |T ∖ S| = r, then λ_1(S) ≥ λ_{r+1}(T). Indeed
    Σ_T = Σ_S + B with B = Σ_{i∈T∖S}(x_i − x̄_T)(x_i − x̄_T)ᵀ + |S|(x̄_S − x̄_T)(x̄_S − x̄_T)ᵀ ⪰ 0,
    and as |S|(x̄_S − x̄_T) = −Σ_{i∈T∖S}(x_i − x̄_T), B has rank ≤ r; Weyl's inequality
    λ_{r+1}(Σ_S + B) ≤ λ_1(Σ_S) + λ_{r+1}(B) = λ_1(Σ_S) (Horn & Johnson, Matrix Analysis,
    Thm 4.3.1) gives the claim. With r = 0 the same decomposition gives λ_1(S) ≤ λ_1(T).

    *Search*. An incumbent τ ≥ λ* = min_{|S|=n−f} λ_1(S) comes from a descent polished by
    1-swap local search. A leaf (removal set R, |R| = f) is *possible* while it removes every
    garbage row, keeps no pair with ½‖x_i − x_j‖² > τ + margin (the r = 0 case with
    T = {i, j}), is canonical (from each class of identical rows it removes the last ones:
    identical rows are interchangeable, so every leaf has a canonical twin with the same set of
    vectors) and has all its canonical subsets of size < j alive. For j = 1, …, f the
    candidates are the canonical j-subsets of possible leaves, and a candidate A is alive iff
    λ_{f−j+1}(T_A) ≤ τ + margin, T_A the points A keeps (tested by the inertia of a bordered
    LDLᵀ factorisation, ``_smea_search.count_above``; a node needs no test when a parent has at
    most f − j eigenvalues above τ + margin, since λ_i(T_A) ≤ λ_i(T_P) by the r = 0 case); the
    alive leaves get eigvalsh, and the answer is the smallest of them and the incumbent. With few
    sets (batch × C(n, f) ≤ 2048) every set is evaluated instead.

    *Proof that the optimum is never discarded*. Let R* be the canonical twin of an optimal
    removal set. It is possible: it removes the garbage, and every pair it keeps has
    ½‖x_i − x_j‖² ≤ λ* ≤ τ. By induction on j, every canonical A ⊂ R* with |A| = j is alive:
    its canonical (j − 1)-subsets are alive, so R* stays possible and A is a candidate, and
    T_A ⊃ S* with |T_A ∖ S*| = f − j, so the bound gives λ_{f−j+1}(T_A) ≤ λ_1(S*) = λ* ≤ τ.
    (Subsets that are not canonical are never candidates and are skipped in these checks.)
    Hence R* is evaluated. The margin (1e-9 λ_1 of all n points, which dominates every
    eigenvalue met, by the r = 0 case) covers rounding. A set keeping a garbage row is +inf; a
    node that keeps garbage rows it can still remove is alive without a test.

    On isotropic Gaussian inputs at n = 20, f = 4, d = 64 about 800 of the 6 195 nodes are
    tested (inertia of ≤ 20 × 20 bordered blocks, batched over nodes and batch elements) and a
    handful get an eigensolver, instead of 4 845 eigensolvers for brute force; a far Byzantine
    cluster (n = 25, f = 6, d = 10⁴) needs about 120 tests of the 245 505 nodes. Inputs whose
    spectra are flat (d ≫ n) or that repeat an honest row (mimic) prune least.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [20.0, 20.0]])
    >>> SMEA(f=1)(x)
    tensor([0.5000, 0.5000])
    """

    name = "smea"

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        if self.f == 0:
            return x.mean(dim=-2)
        garbage = garbage_rows(x)
        gram = anchored_gram(x, garbage).to(torch.float64)
        # a row whose Gram entries overflow is as far from the others as a garbage row
        garbage = garbage | ~torch.isfinite(gram).all(dim=-1)
        gram = gram.masked_fill(garbage.unsqueeze(-1) | garbage.unsqueeze(-2), 0.0)
        batch = x.shape[:-2]
        flat_gram, flat_garbage = gram.reshape(-1, n, n), garbage.reshape(-1, n)
        next_copy = next_copies(x, flat_gram, flat_garbage)
        step = max(1, FLAG_ELEMENTS // (math.comb(n, self.f) * self.f))
        rows = torch.cat(
            [
                smallest_top_eigenvalue_sets(
                    flat_gram[start : start + step],
                    flat_garbage[start : start + step],
                    next_copy[start : start + step],
                    self.f,
                )
                for start in range(0, flat_gram.shape[0], step)
            ]
        ).reshape(*batch, n - self.f)
        index = rows.unsqueeze(-1).expand(*rows.shape, x.shape[-1])
        return torch.gather(x, -2, index).mean(dim=-2)


#: Inverse-iteration steps of :func:`_top_eigenpair`, and its shift above λ_max in units of
#: n ε λ_max (the rounding error of the computed λ_max is below that).
_INVERSE_STEPS = 3
_SHIFT = 8.0


def _top_eigenpair(
    matrix: torch.Tensor, start: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """λ_max and a unit eigenvector of symmetric PSD matrices ``(..., n, n)``, as ``eigh``
    gives them but several times faster on small matrices: λ = eigvalsh's largest value, then
    inverse iteration with the shift σ = λ + δ, δ = 8nελ, i.e. solves with the Cholesky factor
    of the positive definite (σI − A)/σ (Golub & Van Loan, Matrix Computations, 4th ed.,
    §8.2.2) [R]. Each step divides the error angle by (λ_1 − λ_2 + δ)/δ. The start is A w, w
    the previous eigenvector (``start``) or the coordinate of A's largest diagonal entry. A
    matrix whose factorisation fails or whose residual ‖Au − (uᵀAu)u‖ exceeds 64 n ε λ gets
    ``eigh`` instead, so u is as accurate as eigh's (Davis–Kahan: angle ≤ residual / gap).
    """
    n = matrix.shape[-1]
    eps = torch.finfo(matrix.dtype).eps
    lam = torch.linalg.eigvalsh(matrix)[..., -1]
    sigma = lam.abs().clamp_min(torch.finfo(matrix.dtype).tiny) * (1.0 + _SHIFT * n * eps)
    sigma = sigma + lam.clamp_max(0.0)  # a rounded, slightly negative λ keeps σ above it
    eye = torch.eye(n, dtype=matrix.dtype, device=matrix.device)
    factor, info = torch.linalg.cholesky_ex(eye - matrix / sigma[..., None, None])
    if start is None:
        diagonal = torch.diagonal(matrix, dim1=-2, dim2=-1)
        start = torch.nn.functional.one_hot(diagonal.argmax(dim=-1), n).to(matrix.dtype)
    vector = (matrix @ start.unsqueeze(-1)).squeeze(-1)
    for _ in range(_INVERSE_STEPS):
        vector = vector / torch.linalg.vector_norm(vector, dim=-1, keepdim=True).clamp_min(
            torch.finfo(matrix.dtype).tiny
        )
        half = torch.linalg.solve_triangular(factor, vector.unsqueeze(-1), upper=False)
        vector = torch.linalg.solve_triangular(factor.mT, half, upper=True).squeeze(-1)
    vector = vector / torch.linalg.vector_norm(vector, dim=-1, keepdim=True)
    image = (matrix @ vector.unsqueeze(-1)).squeeze(-1)
    rayleigh = (image * vector).sum(dim=-1, keepdim=True)
    residual = torch.linalg.vector_norm(image - rayleigh * vector, dim=-1)
    failed = (info != 0) | ~(residual <= 64 * n * eps * lam.abs())
    if bool(failed.any()):
        vector = vector.clone()
        vector[failed] = torch.linalg.eigh(matrix[failed])[1][..., -1]
    return lam, vector


class CAF(Aggregator):
    """Covariance-bound agnostic filter (Allouah, Guerraoui, Stephan, ICML 2025): weights c = 1;
    while Σc > n − 2f, take the weighted mean μ_c and the top eigenpair (λ, v) of the weighted
    covariance, remember μ_c if λ is the smallest seen, and shrink c_i ← c_i (1 − τ_i / max τ)
    with τ_i = ⟨x_i − μ_c, v⟩². Returns the remembered mean. The eigenpair is exact (from the
    n × n weighted centred Gram matrix), where byzfl uses one power-iteration step from a
    random start. For f = 0 it returns the mean.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [20.0, 20.0]])
    >>> torch.allclose(CAF(f=1)(x), torch.tensor([0.5, 0.5]), atol=0.2)
    True
    """

    name = "caf"

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        garbage = garbage_rows(x)
        clean = zero_garbage(x, garbage)
        if self.f == 0:
            return clean.mean(dim=-2).masked_fill(garbage.any(-1, keepdim=True), torch.nan)
        # any centring works below (it cancels in (I − 1pᵀ)G(I − p1ᵀ)); the anchored one keeps
        # the honest entries exact once a huge row has been filtered out
        gram = anchored_gram(x, garbage)
        weights = (~garbage).to(x.dtype)  # garbage rows start (and stay) at weight 0
        best_lambda = torch.full(weights.shape[:-1], torch.inf, dtype=x.dtype, device=x.device)
        best_weights = weights.clone()
        target = n - 2 * self.f
        u = None
        for _ in range(n):
            total = weights.sum(dim=-1, keepdim=True)
            running = total.squeeze(-1) > target
            if not bool(running.any()):
                break
            p = weights / total.clamp_min(torch.finfo(x.dtype).tiny)
            # centred Gram with the weighted mean: (I − 1pᵀ) G (I − p1ᵀ)
            gp = gram @ p.unsqueeze(-1)
            centred = gram - gp - gp.mT + (p.unsqueeze(-2) @ gp)
            root = p.sqrt()
            scatter = root.unsqueeze(-1) * centred * root.unsqueeze(-2)
            lam, u = _top_eigenpair(scatter, u)
            improve = running & (lam < best_lambda)
            best_lambda = torch.where(improve, lam, best_lambda)
            best_weights = torch.where(improve.unsqueeze(-1), weights, best_weights)
            # projections ⟨x_i − μ, v⟩ with v = Yᵀu/‖Yᵀu‖, Y = diag(√p)(X − 1μᵀ)
            projections = (centred @ (root * u).unsqueeze(-1)).squeeze(-1)
            projections = projections / lam.clamp_min(torch.finfo(x.dtype).tiny).sqrt().unsqueeze(
                -1
            )
            tau = projections**2 * (weights > 0)
            shrink = 1.0 - tau / tau.amax(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
            weights = torch.where(running.unsqueeze(-1), weights * shrink.clamp_min(0.0), weights)
        p = best_weights / best_weights.sum(dim=-1, keepdim=True)
        return (p.unsqueeze(-2) @ clean).squeeze(-2)

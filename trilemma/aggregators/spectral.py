"""Spectral rules: SMEA and CAF, which filter along the direction of largest variance.

Both work on n × n matrices only: the scatter of a set S of vectors has the same non-zero
spectrum as its centred Gram matrix, and the centred Gram matrix is −½ J D_S J with D_S the
squared distances within S and J the centring projector (classical multidimensional scaling,
Torgerson 1952) [D]. So no d × d covariance is ever formed.
"""

from __future__ import annotations

import torch

from trilemma.aggregators._base import Aggregator
from trilemma.aggregators._garbage import (
    anchored_gram,
    garbage_rows,
    pairwise_sq_distances,
    zero_garbage,
)
from trilemma.aggregators._subsets import (
    chunk_size,
    gather_blocks,
    subset_diameters,
    subsets,
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

    Exact and exponential in f: the C(n, f) subsets are visited in increasing order of the lower
    bound λ_max(scatter_S) ≥ ½ max_{i,j∈S} ‖x_i − x_j‖² (the scatter of S dominates that of
    any pair in S) [D], top eigenvalues come from batched ``eigvalsh`` of the k × k centred Gram
    matrices, and the search stops once the bound of the next subset reaches the best value.
    n = 25, f = 6 (177 100 subsets) is practical; the pruning makes clustered inputs fast.

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
        k = n - self.f
        garbage = garbage_rows(x)
        distances = pairwise_sq_distances(x, garbage)
        all_subsets = subsets(n, k, x.device)
        batch = distances.shape[:-2]
        flat = distances.reshape(-1, n, n)
        size = flat.shape[0]
        bounds = 0.5 * subset_diameters(flat, all_subsets)
        order = torch.argsort(bounds, dim=-1, stable=True)
        sorted_bounds = torch.gather(bounds, -1, order)
        best_value = torch.full((size,), torch.inf, dtype=x.dtype, device=x.device)
        best_index = torch.zeros(size, dtype=torch.long, device=x.device)
        step = chunk_size(size, k)
        for start in range(0, all_subsets.shape[0], step):
            if start > 0 and bool((sorted_bounds[:, start] >= best_value).all()):
                break  # no remaining subset can beat the best found
            positions = order[:, start : start + step]
            members = all_subsets[positions]
            values = top_scatter_eigenvalue(gather_blocks(flat, members))
            chunk_best, where = values.min(dim=-1)
            better = chunk_best < best_value
            best_value = torch.where(better, chunk_best, best_value)
            best_index = torch.where(
                better, torch.gather(positions, -1, where[:, None])[:, 0], best_index
            )
        rows = all_subsets[best_index].reshape(*batch, k)
        index = rows.unsqueeze(-1).expand(*rows.shape, x.shape[-1])
        return torch.gather(x, -2, index).mean(dim=-2)


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
        for _ in range(n):
            total = weights.sum(dim=-1, keepdim=True)
            running = total.squeeze(-1) > target
            p = weights / total.clamp_min(torch.finfo(x.dtype).tiny)
            # centred Gram with the weighted mean: (I − 1pᵀ) G (I − p1ᵀ)
            gp = gram @ p.unsqueeze(-1)
            centred = gram - gp - gp.mT + (p.unsqueeze(-2) @ gp)
            root = p.sqrt()
            scatter = root.unsqueeze(-1) * centred * root.unsqueeze(-2)
            eigenvalues, eigenvectors = torch.linalg.eigh(scatter)
            lam, u = eigenvalues[..., -1], eigenvectors[..., -1]
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
            if not bool(running.any()):
                break
        p = best_weights / best_weights.sum(dim=-1, keepdim=True)
        return (p.unsqueeze(-2) @ clean).squeeze(-2)

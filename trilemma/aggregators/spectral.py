"""Spectral rules: SMEA and CAF, which filter along the direction of largest variance.

Both work on n × n matrices only: the scatter of a set S of vectors has the same non-zero
spectrum as its centred Gram matrix, and the centred Gram matrix is −½ J D_S J with D_S the
squared distances within S and J the centring projector (classical multidimensional scaling,
Torgerson 1952) [D]. So no d × d covariance is ever formed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from trilemma.aggregators._base import Aggregator
from trilemma.aggregators._garbage import (
    anchored_gram,
    garbage_rows,
    zero_garbage,
)
from trilemma.aggregators._subsets import colex_rank, delete_one, removal_level, sub_ranks

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


#: Pruning margin, relative to λ_max of the whole set (which dominates every eigenvalue the
#: search meets): eigvalsh and the LDLᵀ inertia in float64 on m × m blocks err by about
#: m ε ‖C‖ ≈ 1e-14 ‖C‖, so a margin of 1e-9 never lets rounding discard the optimum.
_MARGIN = 1e-9
#: Rounds of 1-swap local search that polish the greedy incumbent (each: k·f inertia tests).
_SWAP_ROUNDS = 3
#: Gram entries gathered per batched factorisation, and removal-set flags per batch chunk.
_BLOCK_ELEMENTS = 1 << 21
_FLAG_ELEMENTS = 1 << 24
#: Largest n for the bitmask filters (pairs, copies) of the search.
_BITS = 62
#: Below this many (batch element, removal set) pairs every set is evaluated.
_BRUTE_FORCE = 2048


def _blocks(gram: torch.Tensor, trial: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """``gram[trial[i]][kept[i]][:, kept[i]]`` for every row i: ``(N, m, m)``."""
    n = gram.shape[-1]
    index = (trial * (n * n))[:, None, None] + kept[:, :, None] * n + kept[:, None, :]
    return torch.take(gram, index)


def _chunked(
    compute: Callable[[torch.Tensor, slice], torch.Tensor],
    gram: torch.Tensor,
    trial: torch.Tensor,
    kept: torch.Tensor,
) -> torch.Tensor:
    """``compute(blocks, rows)`` over chunks ``rows`` of the sets, concatenated."""
    m = kept.shape[-1]
    step = max(1, _BLOCK_ELEMENTS // max(1, m * m))
    parts = []
    for start in range(0, max(1, kept.shape[0]), step):
        rows = slice(start, start + step)
        parts.append(compute(_blocks(gram, trial[rows], kept[rows]), rows))
    return torch.cat(parts)


def _spectra(gram: torch.Tensor, trial: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Ascending eigenvalues ``(N, m)`` of the centred Gram matrices J G_S J of the sets S =
    ``kept`` ``(N, m)`` in batch elements ``trial`` ``(N,)`` of ``gram`` ``(B, n, n)``."""

    def compute(block: torch.Tensor, _: slice) -> torch.Tensor:
        block = block - block.mean(dim=-1, keepdim=True)
        return torch.linalg.eigvalsh(block - block.mean(dim=-2, keepdim=True))

    return _chunked(compute, gram, trial, kept)


def _count_above(
    gram: torch.Tensor, trial: torch.Tensor, kept: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """How many eigenvalues of J G_S J exceed ``sigma`` ``(N,)``, for each set S of
    :func:`_spectra`, without an eigensolver.

    The bordered matrix M = [[G_S − σI, s1], [s1ᵀ, 0]] (any s > 0) has one positive eigenvalue
    more than the compression of G_S − σI to 1^⊥ (inertia of a bordered matrix, Haynsworth;
    see Maddocks, SIAM J. Matrix Anal. Appl. 9, 1988, Thm 3.1) [R], and that compression has
    the eigenvalues λ_i − σ of J G_S J on 1^⊥ [D]. The inertia of M comes from its
    Bunch–Kaufman LDLᵀ factorisation (Sylvester's law of inertia): a 1 × 1 pivot counts by its
    sign and a 2 × 2 pivot has a negative determinant, so exactly one positive eigenvalue
    (Bunch & Kaufman, Math. Comp. 31, 1977) [R]. The factorisation is backward stable.
    """
    m = kept.shape[-1]

    def compute(block: torch.Tensor, rows: slice) -> torch.Tensor:
        level = sigma[rows].reshape(-1, 1)
        border = level.clamp_min(torch.finfo(block.dtype).tiny)
        bordered = block.new_empty((block.shape[0], m + 1, m + 1))
        bordered[:, :m, :m] = block
        torch.diagonal(bordered, dim1=-2, dim2=-1)[:, :m] -= level
        bordered[:, m, :m] = border
        bordered[:, :m, m] = border
        bordered[:, m, m] = 0.0
        factor, pivots, _ = torch.linalg.ldl_factor_ex(bordered)
        positive = (pivots > 0) & (torch.diagonal(factor, dim1=-2, dim2=-1) > 0)
        return positive.sum(dim=-1) + (pivots < 0).sum(dim=-1) // 2 - 1

    return _chunked(compute, gram, trial, kept)


def _complement(kept: torch.Tensor, n: int) -> torch.Tensor:
    """Sorted indices of ``range(n)`` not in ``kept`` ``(B, k)``: ``(B, n − k)``."""
    size = kept.shape[0]
    outside = torch.ones((size, n), dtype=torch.bool, device=kept.device).scatter(1, kept, False)
    return torch.arange(n, device=kept.device).expand(size, n)[outside].reshape(size, -1)


def _incumbent(
    gram: torch.Tensor, garbage: torch.Tensor, f: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A feasible (n − f)-set per batch element and its λ_max: a descent that drops, f times,
    the point with the largest coordinate on the top eigenvector of the centred Gram matrix
    (the largest share of λ_max; garbage rows first), polished by 1-swap local search.
    Returns kept indices ``(B, n − f)`` and their λ_max ``(B,)``."""
    size, n = garbage.shape
    device = gram.device
    trials = torch.arange(size, device=device)
    kept = torch.arange(n, device=device).expand(size, n)
    for m in range(n, n - f, -1):
        children = kept[:, delete_one(m, device)]  # (B, m, m − 1)
        dirty = torch.gather(garbage, 1, kept)
        block = _blocks(gram, trials, kept)
        block = block - block.mean(dim=-1, keepdim=True)
        top = torch.linalg.eigh(block - block.mean(dim=-2, keepdim=True))[1][..., -1]
        pick = torch.where(
            dirty.any(dim=-1), dirty.to(torch.uint8).argmax(dim=-1), top.abs().argmax(-1)
        )
        kept = children[trials, pick]
    value = _spectra(gram, trials, kept)[:, -1]
    k = n - f
    value = value.masked_fill(torch.gather(garbage, 1, kept).any(dim=-1), torch.inf)
    swap_in = torch.arange(k, device=device).repeat_interleave(f)
    swap_out = torch.arange(f, device=device).repeat(k)
    for _ in range(_SWAP_ROUNDS):
        neighbours = kept.unsqueeze(1).repeat(1, k * f, 1)
        neighbours[:, torch.arange(k * f, device=device), swap_in] = _complement(kept, n)[
            :, swap_out
        ]
        dirty = torch.gather(garbage, 1, neighbours.reshape(size, -1)).reshape(size, k * f, k)
        trial, which = (~dirty.any(dim=-1) & torch.isfinite(value).unsqueeze(-1)).nonzero(
            as_tuple=True
        )
        sets = neighbours[trial, which]
        # only neighbours with λ_max ≤ the incumbent's get an eigensolver
        below = _count_above(gram, trial, sets, value[trial]) == 0
        trial, which, sets = trial[below], which[below], sets[below]
        top = torch.full((size, k * f), torch.inf, dtype=gram.dtype, device=device)
        top[trial, which] = _spectra(gram, trial, sets)[:, -1]
        best, where = top.min(dim=-1)
        better = best < value
        if not bool(better.any()):
            break
        kept = torch.where(better.unsqueeze(-1), neighbours[trials, where], kept)
        value = torch.where(better, best, value)
    return kept.sort(dim=-1).values, value


def _next_copies(x: torch.Tensor, gram: torch.Tensor, garbage: torch.Tensor) -> torch.Tensor:
    """``(B, n)``: for each row, the next row (larger index) of the same batch element that is
    an exact copy of it, or n if none (garbage rows have none). Candidates come from the Gram
    matrix (squared distance ≈ 0), then rows are compared exactly."""
    size, n = garbage.shape
    squared = torch.diagonal(gram, dim1=-2, dim2=-1)
    distance = squared.unsqueeze(-1) + squared.unsqueeze(-2) - 2.0 * gram
    scale = squared.unsqueeze(-1) + squared.unsqueeze(-2)
    upper = torch.ones((n, n), dtype=torch.bool, device=gram.device).triu(diagonal=1)
    close = (distance.abs() <= 1e-6 * scale) & upper & ~garbage.unsqueeze(-1)
    owner, first, second = close.nonzero(as_tuple=True)
    rows = x.reshape(size, n, -1)
    step = max(1, _BLOCK_ELEMENTS // max(1, rows.shape[-1]))
    equal = torch.cat(
        [torch.zeros(0, dtype=torch.bool, device=gram.device)]
        + [
            (
                rows[owner[i : i + step], first[i : i + step]]
                == rows[owner[i : i + step], second[i : i + step]]
            ).all(dim=-1)
            for i in range(0, owner.shape[0], step)
        ]
    )
    index = torch.full((size, n, n), n, dtype=torch.long, device=gram.device)
    index[owner[equal], first[equal], second[equal]] = second[equal]
    return index.amin(dim=-1)


def _canonical(next_copy: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """``(B, C)``: whether each removal set removes, from every class of identical rows, its
    last members (each removed row's next copy is removed too)."""
    n = next_copy.shape[-1]
    bits = (torch.ones_like(removed) << removed).sum(dim=-1)  # the removal sets as bitmasks
    following = next_copy[:, removed]  # (B, C, j)
    inside = (bits.unsqueeze(-1) >> following.clamp_max(n - 1)) & 1
    return ((inside == 1) | (following == n)).all(dim=-1)


def _pair_feasible(
    gram: torch.Tensor, garbage: torch.Tensor, kept: torch.Tensor, limit: torch.Tensor
) -> torch.Tensor:
    """``(B, C)``: whether the set ``kept[c]`` holds no pair i, j with ½‖x_i − x_j‖² > limit
    (for such a pair λ_max(S) ≥ λ_max({i, j}) = ½‖x_i − x_j‖², the r = 0 case of the bound in
    :class:`SMEA`). Sets are bitmasks, so n ≤ 62."""
    squared = torch.diagonal(gram, dim1=-2, dim2=-1)
    distance = squared.unsqueeze(-1) + squared.unsqueeze(-2) - 2.0 * gram
    clean = ~(garbage.unsqueeze(-1) | garbage.unsqueeze(-2))
    bad = (0.5 * distance > limit[:, None, None]) & clean
    n = gram.shape[-1]
    powers = torch.ones(n, dtype=torch.long, device=gram.device) << torch.arange(
        n, device=gram.device
    )
    bad_bits = (bad.long() * powers).sum(dim=-1)  # (B, n): the rows too far from each row
    kept_bits = powers[kept].sum(dim=-1)  # (C,)
    clash = torch.zeros((gram.shape[0], kept.shape[0]), dtype=torch.bool, device=gram.device)
    if bool(bad.any()):
        for position in range(kept.shape[-1]):
            clash |= (bad_bits[:, kept[:, position]] & kept_bits) != 0
    return ~clash


def _leaf_values(
    gram: torch.Tensor, garbage: torch.Tensor, next_copy: torch.Tensor, f: int
) -> torch.Tensor:
    """``(B, C(n, f))``: λ_max of the scatter of the set each removal set keeps, or +inf for
    the sets the branch and bound of :class:`SMEA` discards (never all the best ones)."""
    size, n = garbage.shape
    device = gram.device
    trials = torch.arange(size, device=device)
    kept_best, value = _incumbent(gram, garbage, f)
    top_all = _spectra(gram, trials, torch.arange(n, device=device).expand(size, n))[:, -1]
    limit = value + _MARGIN * top_all.abs()
    dirt = garbage.sum(dim=-1, keepdim=True)
    leaves_removed, leaves_kept, _ = removal_level(n, f, device)
    # leaves still possible: finite (every garbage row removed), no far pair, canonical
    possible = dirt == garbage[:, leaves_removed].sum(dim=-1)
    copies = n <= _BITS and bool((next_copy < n).any())
    if n <= _BITS:
        possible &= _pair_feasible(gram, garbage, leaves_kept, limit)
    alive = canonical = torch.ones((size, 1), dtype=torch.bool, device=device)
    # eigenvalues above the limit, per tested node (n: not tested); the root is tested
    counts = _count_above(gram, trials, torch.arange(n, device=device).expand(size, n), limit)
    counts = counts.masked_fill(dirt.squeeze(-1) > 0, n).unsqueeze(-1)
    for j in range(1, f + 1):
        removed, kept, parents = removal_level(n, j, device)
        # a (j − 1)-subset that is not canonical stands for a canonical one the leaf also has
        possible &= (alive | ~canonical)[:, sub_ranks(n, f, j - 1, device)].all(dim=-1)
        canonical = (
            _canonical(next_copy, removed)
            if copies
            else torch.ones_like(alive[:, :1]).expand(size, removed.shape[0])
        )
        if j < f:  # the j-subsets of the possible leaves
            owner, leaf = possible.nonzero(as_tuple=True)
            candidate = torch.zeros((size, removed.shape[0]), dtype=torch.bool, device=device)
            candidate[owner.unsqueeze(-1), sub_ranks(n, f, j, device)[leaf]] = True
            candidate &= canonical
        else:
            candidate = possible & canonical
        inside = dirt - garbage[:, removed].sum(dim=-1)  # garbage rows the node still keeps
        # λ_i(T_A) ≤ λ_i(T_P) for a parent P (the r = 0 case), so a node has at most as many
        # eigenvalues above the limit as any of its parents: those with few need no test
        counts = torch.where(candidate, counts[:, parents].amin(dim=-1), n)
        trial, node = (candidate & (inside == 0) & (counts > f - j)).nonzero(as_tuple=True)
        counts[trial, node] = _count_above(gram, trial, kept[node], limit[trial])
        # alive iff λ_{f−j+1}(T) ≤ limit, i.e. at most f − j eigenvalues above it
        alive = candidate & ((counts <= f - j) | (inside > 0))
    trial, node = alive.nonzero(as_tuple=True)
    values = torch.full(alive.shape, torch.inf, dtype=gram.dtype, device=device)
    values[trial, node] = _spectra(gram, trial, leaves_kept[node])[:, -1]
    incumbent = colex_rank(_complement(kept_best, n), n).unsqueeze(-1)
    return values.scatter_reduce(1, incumbent, value.unsqueeze(-1), "amin")


def _smallest_top_eigenvalue_sets(
    gram: torch.Tensor, garbage: torch.Tensor, next_copy: torch.Tensor, f: int
) -> torch.Tensor:
    """Kept indices ``(B, n − f)`` of an (n − f)-set with the smallest λ_max of its scatter, for
    each batch element of ``gram`` ``(B, n, n)`` (garbage rows flagged in ``(B, n)``, copies
    linked by ``next_copy``); see :class:`SMEA` for the search and its proof."""
    size, n = garbage.shape
    removed, kept, _ = removal_level(n, f, gram.device)
    if size * removed.shape[0] > _BRUTE_FORCE:
        values = _leaf_values(gram, garbage, next_copy, f)
    else:  # few sets: evaluating them all costs less than the search's fixed overhead
        finite = ~garbage[:, removed].sum(dim=-1).lt(garbage.sum(dim=-1, keepdim=True))
        trial, node = finite.nonzero(as_tuple=True)
        values = torch.full(finite.shape, torch.inf, dtype=gram.dtype, device=gram.device)
        values[trial, node] = _spectra(gram, trial, kept[node])[:, -1]
    best = values.argmin(dim=-1)
    # no finite set (more than f garbage rows): the first n − f rows, as the subset order gives
    best = best.masked_fill(torch.isinf(values).all(dim=-1), values.shape[-1] - 1)
    return kept[best]


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
    LDLᵀ factorisation, :func:`_count_above`; a node needs no test when a parent has at most
    f − j eigenvalues above τ + margin, since λ_i(T_A) ≤ λ_i(T_P) by the r = 0 case); the alive
    leaves get eigvalsh, and the answer is the smallest of them and the incumbent. With few
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

    On isotropic Gaussian inputs at n = 20, f = 4, d = 64 about 900 of the 6 195 nodes are
    tested (inertia of ≤ 20 × 20 bordered blocks, batched over nodes and batch elements) and a
    handful get an eigensolver, instead of 4 845 eigensolvers for brute force; a far Byzantine
    cluster (n = 25, f = 6, d = 10⁴) needs under 200 tests of the 245 505 nodes.

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
        next_copy = _next_copies(x, flat_gram, flat_garbage)
        step = max(1, _FLAG_ELEMENTS // (math.comb(n, self.f) * self.f))
        rows = torch.cat(
            [
                _smallest_top_eigenvalue_sets(
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
        vector = torch.cholesky_solve(vector.unsqueeze(-1), factor).squeeze(-1)
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

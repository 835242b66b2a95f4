"""SMEA's exact branch and bound over the removal sets of :mod:`trilemma.aggregators._subsets`
(documented and proved in :class:`trilemma.aggregators.SMEA`)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from trilemma.aggregators._subsets import (
    colex_rank,
    delete_one,
    removal_level,
    sub_ranks,
)

__all__ = ["FLAG_ELEMENTS", "count_above", "next_copies", "smallest_top_eigenvalue_sets"]


#: Pruning margin, relative to λ_max of the whole set (which dominates every eigenvalue the
#: search meets): eigvalsh and the LDLᵀ inertia in float64 on m × m blocks err by about
#: m ε ‖C‖ ≈ 1e-14 ‖C‖, so a margin of 1e-9 never lets rounding discard the optimum.
_MARGIN = 1e-9
#: Rounds of 1-swap local search that polish the incumbent (each: k·f inertia tests).
_SWAP_ROUNDS = 1
#: Gram entries gathered per batched factorisation, and removal-set flags per batch chunk.
_BLOCK_ELEMENTS = 1 << 21
FLAG_ELEMENTS = 1 << 24
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


def count_above(
    gram: torch.Tensor, trial: torch.Tensor, kept: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """How many eigenvalues of J G_S J exceed ``sigma`` ``(N,)``, for each set S of
    :func:`_spectra`, without an eigensolver.

    Let A = G_S − σI, u = 1/√m, Z an orthonormal basis of 1^⊥ and M = [[A, s1], [s1ᵀ, 0]]
    (any s > 0). In the basis (Z, u, e) M reads [[ZᵀAZ, ZᵀAu, 0], [uᵀAZ, uᵀAu, c],
    [0, c, 0]] with c = s√m ≠ 0; the trailing 2 × 2 block has inertia (1, 1, 0) and its Schur
    complement is ZᵀAZ (the coupling [ZᵀAu, 0] meets a zero entry of the block's inverse), so
    Haynsworth's additivity (Haynsworth & Ostrowski, Linear Algebra Appl. 1, 1968, eq. 3) [R]
    gives In M = In ZᵀAZ + (1, 1, 0) [D], and ZᵀAZ has the eigenvalues λ_i − σ of J G_S J on
    1^⊥. The inertia of M comes from its Bunch–Kaufman LDLᵀ factorisation (Sylvester's law of
    inertia): a 1 × 1 pivot counts by its sign and a 2 × 2 pivot has a negative determinant,
    so exactly one positive eigenvalue (Bunch & Kaufman, Math. Comp. 31, 1977) [R]. The
    factorisation is backward stable.
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
        below = count_above(gram, trial, sets, value[trial]) == 0
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


def next_copies(x: torch.Tensor, gram: torch.Tensor, garbage: torch.Tensor) -> torch.Tensor:
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
    :class:`~trilemma.aggregators.SMEA`). Sets are bitmasks, so n ≤ 62."""
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
    the sets the branch and bound of :class:`~trilemma.aggregators.SMEA` discards (never all
    the best ones)."""
    size, n = garbage.shape
    device = gram.device
    trials = torch.arange(size, device=device)
    kept_best, value = _incumbent(gram, garbage, f)
    top_all = _spectra(gram, trials, torch.arange(n, device=device).expand(size, n))[:, -1]
    limit = value + _MARGIN * top_all.abs()
    dirt = garbage.sum(dim=-1, keepdim=True)
    dirty = bool(dirt.any())
    leaves_removed, leaves_kept, _ = removal_level(n, f, device)
    # leaves still possible: finite (every garbage row removed), no far pair, canonical
    possible = torch.ones((size, leaves_removed.shape[0]), dtype=torch.bool, device=device)
    if dirty:
        possible &= dirt == garbage[:, leaves_removed].sum(dim=-1)
    copies = n <= _BITS and bool((next_copy < n).any())
    if n <= _BITS:
        possible &= _pair_feasible(gram, garbage, leaves_kept, limit)
    # per node of the previous level: alive, or not canonical (then it stands for a canonical
    # twin that is also a subset of the same leaves, and is skipped)
    passed = torch.ones((size, 1), dtype=torch.bool, device=device)
    # eigenvalues above the limit per node (n: unknown); the root is tested
    counts = count_above(gram, trials, torch.arange(n, device=device).expand(size, n), limit)
    counts = counts.masked_fill(dirt.squeeze(-1) > 0, n).unsqueeze(-1)
    trial = node = torch.zeros(0, dtype=torch.long, device=device)
    for j in range(1, f + 1):
        removed, kept, parents = removal_level(n, j, device)
        if j > 1:
            owner, leaf = possible.nonzero(as_tuple=True)
            blocked = ~passed[owner.unsqueeze(-1), sub_ranks(n, f, j - 1, device)[leaf]].all(-1)
            possible[owner[blocked], leaf[blocked]] = False
        if j < f:  # the j-subsets of the possible leaves
            owner, leaf = possible.nonzero(as_tuple=True)
            candidate = torch.zeros((size, removed.shape[0]), dtype=torch.bool, device=device)
            candidate[owner.unsqueeze(-1), sub_ranks(n, f, j, device)[leaf]] = True
        else:
            candidate = possible
        canonical = _canonical(next_copy, removed) if copies else None
        if canonical is not None:
            candidate = candidate & canonical
        trial, node = candidate.nonzero(as_tuple=True)
        # λ_i(T_A) ≤ λ_i(T_P) for a parent P (the r = 0 case), so a node has at most as many
        # eigenvalues above the limit as any of its parents: those with few need no test
        count = counts[trial.unsqueeze(-1), parents[node]].amin(dim=-1)
        inside = torch.zeros_like(count)  # garbage rows the node still keeps
        if dirty:
            inside = dirt[trial, 0] - garbage[trial.unsqueeze(-1), removed[node]].sum(dim=-1)
        test = (inside == 0) & (count > f - j)
        count[test] = count_above(gram, trial[test], kept[node[test]], limit[trial[test]])
        count = count.masked_fill(inside > 0, n)
        # alive iff λ_{f−j+1}(T) ≤ limit (at most f − j eigenvalues above it), or untestable
        fits = (count <= f - j) | (inside > 0)
        trial, node = trial[fits], node[fits]
        counts = torch.full(candidate.shape, n, dtype=count.dtype, device=device)
        counts[trial, node] = count[fits]
        passed = ~canonical if canonical is not None else torch.zeros_like(candidate)
        passed[trial, node] = True
    values = torch.full(possible.shape, torch.inf, dtype=gram.dtype, device=device)
    values[trial, node] = _spectra(gram, trial, leaves_kept[node])[:, -1]
    incumbent = colex_rank(_complement(kept_best, n), n).unsqueeze(-1)
    return values.scatter_reduce(1, incumbent, value.unsqueeze(-1), "amin")


def smallest_top_eigenvalue_sets(
    gram: torch.Tensor, garbage: torch.Tensor, next_copy: torch.Tensor, f: int
) -> torch.Tensor:
    """Kept indices ``(B, n − f)`` of an (n − f)-set with the smallest λ_max of its scatter, for
    each batch element of ``gram`` ``(B, n, n)`` (garbage rows flagged in ``(B, n)``, copies
    linked by ``next_copy``); see :class:`~trilemma.aggregators.SMEA` for the search and its
    proof."""
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

"""Subsets of size n − f as index tensors, and the removal-set tables (levels, colex ranks,
sub-ranks), for the exact combinatorial rules (MDA, SMEA)."""

from __future__ import annotations

import itertools
import math
from functools import cache

import torch

__all__ = [
    "colex_rank",
    "delete_one",
    "removal_level",
    "sub_ranks",
    "subset_diameters",
    "subsets",
]

# Work per chunk: subsets × k² gathered distances × batch elements.
_CHUNK_ELEMENTS = 1 << 22


@cache
def _subsets_cpu(n: int, k: int) -> torch.Tensor:
    return torch.tensor(list(itertools.combinations(range(n), k)), dtype=torch.long).reshape(-1, k)


def subsets(n: int, k: int, device: torch.device) -> torch.Tensor:
    """All C(n, k) subsets of ``range(n)`` as a ``(C, k)`` long tensor, lexicographic order."""
    return _subsets_cpu(n, k).to(device)


def chunk_size(batch: int, k: int) -> int:
    """Subsets per chunk so that gathered ``(batch, chunk, k, k)`` blocks stay bounded."""
    return max(1, _CHUNK_ELEMENTS // max(1, batch * k * k))


def gather_blocks(distances: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
    """``distances[..., S, S]`` for the subsets ``members`` ``(..., c, k)``: ``(..., c, k, k)``."""
    rows = members.unsqueeze(-1)
    cols = members.unsqueeze(-2)
    batch = distances.shape[:-2]
    flat = distances.reshape(*batch, -1)
    n = distances.shape[-1]
    index = (rows * n + cols).reshape(*members.shape[:-2], -1)
    if index.ndim < flat.ndim:
        index = index.expand(*batch, index.shape[-1])
    return torch.gather(flat, -1, index).reshape(*members.shape, members.shape[-1])


def subset_diameters(distances: torch.Tensor, all_subsets: torch.Tensor) -> torch.Tensor:
    """max_{i, j ∈ S} distances[i, j] for every subset: ``(..., C)``."""
    batch = distances.shape[:-2]
    size = math.prod(batch) if batch else 1
    k = all_subsets.shape[-1]
    step = chunk_size(size, k)
    parts = []
    for start in range(0, all_subsets.shape[0], step):
        members = all_subsets[start : start + step]
        block = gather_blocks(distances, members.expand(*batch, *members.shape))
        parts.append(block.amax(dim=(-2, -1)))
    return torch.cat(parts, dim=-1)


@cache
def _delete_one_cpu(m: int) -> torch.Tensor:
    full = torch.arange(m).expand(m, m)
    return full[~torch.eye(m, dtype=torch.bool)].reshape(m, max(m - 1, 0))


def delete_one(m: int, device: torch.device) -> torch.Tensor:
    """``(m, m − 1)`` long table: row a lists 0, …, m − 1 without a."""
    return _delete_one_cpu(m).to(device)


@cache
def _removal_level_cpu(n: int, j: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    removed_sets = sorted(itertools.combinations(range(n), j), key=lambda r: r[::-1])
    count = len(removed_sets)
    removed = torch.tensor(removed_sets, dtype=torch.long).reshape(count, j)
    kept_mask = torch.ones((count, n), dtype=torch.bool)
    kept_mask.scatter_(1, removed, False)
    kept = torch.arange(n).expand(count, n)[kept_mask].reshape(count, n - j)
    parents = colex_rank(removed[:, _delete_one_cpu(j)], n).reshape(count, j)
    return removed, kept, parents


def colex_rank(sets: torch.Tensor, n: int) -> torch.Tensor:
    """Position of each sorted set ``(..., j)`` of ``range(n)`` among the j-sets in colex
    order: Σ_i C(r_i, i + 1) (combinatorial number system, Knuth, TAOCP 7.2.1.3) [R]."""
    j = sets.shape[-1]
    binomial = torch.tensor(
        [[math.comb(r, i) for i in range(1, j + 1)] for r in range(n)],
        dtype=torch.long,
        device=sets.device,
    ).reshape(n, j)
    return binomial[sets, torch.arange(j, device=sets.device)].sum(dim=-1)


def removal_level(
    n: int, j: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The C(n, j) ways to remove j of n points, in colexicographic order.

    Returns ``(removed, kept, parents)``: ``removed`` ``(C, j)`` and ``kept`` ``(C, n − j)``
    hold sorted indices; ``parents[c, a]`` is the position in level j − 1 of ``removed[c]``
    without its a-th element (its :func:`colex_rank`).
    """
    removed, kept, parents = _removal_level_cpu(n, j)
    return removed.to(device), kept.to(device), parents.to(device)


@cache
def _sub_ranks_cpu(n: int, f: int, j: int) -> torch.Tensor:
    removed = _removal_level_cpu(n, f)[0]
    combinations = list(itertools.combinations(range(f), j))
    positions = torch.tensor(combinations, dtype=torch.long).reshape(len(combinations), j)
    return colex_rank(removed[:, positions], n)


def sub_ranks(n: int, f: int, j: int, device: torch.device) -> torch.Tensor:
    """``(C(n, f), C(f, j))``: the positions in level j of the j-subsets of each removal set
    of level f (both levels as :func:`removal_level` orders them)."""
    return _sub_ranks_cpu(n, f, j).to(device)

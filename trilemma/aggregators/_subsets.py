"""Subsets of size n − f as index tensors, for the exact combinatorial rules (MDA, SMEA)."""

from __future__ import annotations

import itertools
import math
from functools import cache

import torch

__all__ = ["subset_diameters", "subsets"]

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

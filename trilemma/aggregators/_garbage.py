"""Byzantine garbage (NaN, ±inf, overflowing vectors) is data, never a reason to fail.

Rules treat a row with a non-finite entry, or whose squared norm overflows, as a point at
infinity: infinitely far from every other row, never averaged.
"""

from __future__ import annotations

import torch

__all__ = ["anchored_gram", "garbage_rows", "pairwise_sq_distances", "zero_garbage"]

_BLOCK_ELEMENTS = 1 << 21  # entries of one centred column block (8 MiB in float32)


def garbage_rows(x: torch.Tensor) -> torch.Tensor:
    """Boolean ``(..., n)``: rows with a non-finite entry or an overflowing squared norm."""
    squared = torch.linalg.vector_norm(x, dim=-1) ** 2
    return ~torch.isfinite(squared)


def zero_garbage(x: torch.Tensor, garbage: torch.Tensor) -> torch.Tensor:
    """``x`` with garbage rows replaced by zeros (a copy only when there is garbage)."""
    if not bool(garbage.any()):  # one host sync; saves a full copy of x in the common case
        return x
    return torch.where(garbage.unsqueeze(-1), torch.zeros((), dtype=x.dtype, device=x.device), x)


def anchored_gram(x: torch.Tensor, garbage: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``(..., n, n)`` of the rows centred on the finite row of smallest norm.

    The anchor keeps honest entries at their own scale even when a Byzantine row is huge (a
    centring on the mean would drown them), and it makes ‖a‖² + ‖b‖² − 2⟨a, b⟩ free of
    catastrophic cancellation when all rows share a large offset. Garbage rows are zero.
    """
    clean = zero_garbage(x, garbage)
    norms = torch.linalg.vector_norm(clean, dim=-1).masked_fill(garbage, torch.inf)
    nearest = norms.argmin(dim=-1, keepdim=True).unsqueeze(-1)
    anchor = torch.gather(clean, -2, nearest.expand(*clean.shape[:-2], 1, clean.shape[-1]))
    # Column blocks: the centred copy stays small and x is read once (2.4× faster at d = 1e6).
    rows = x.shape[-2] * max(1, clean[..., 0, 0].numel())
    step = max(1024, _BLOCK_ELEMENTS // rows)
    gram = torch.zeros((*x.shape[:-1], x.shape[-2]), dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[-1], step):
        block = clean[..., start : start + step] - anchor[..., start : start + step]
        gram = gram + block @ block.mT
    far = garbage.unsqueeze(-1) | garbage.unsqueeze(-2)
    return gram.masked_fill(far, 0.0) if bool(garbage.any()) else gram


def pairwise_sq_distances(x: torch.Tensor, garbage: torch.Tensor) -> torch.Tensor:
    """Squared distances ``(..., n, n)`` through one Gram matrix (blocked BLAS calls, see
    :func:`anchored_gram`). Garbage rows are at distance +inf from every other row and 0 from
    themselves."""
    gram = anchored_gram(x, garbage)
    squared = torch.diagonal(gram, dim1=-2, dim2=-1)
    distances = (squared.unsqueeze(-1) + squared.unsqueeze(-2) - 2.0 * gram).clamp_min(0.0)
    far = garbage.unsqueeze(-1) | garbage.unsqueeze(-2)
    distances = distances.masked_fill(far, torch.inf)
    eye = torch.eye(x.shape[-2], dtype=torch.bool, device=x.device)
    return distances.masked_fill(eye, 0.0)

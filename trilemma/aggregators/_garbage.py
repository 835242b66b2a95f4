"""Byzantine garbage (NaN, ±inf, overflowing vectors) is data, never a reason to fail.

Rules treat a row with a non-finite entry, or whose squared norm overflows, as a point at
infinity: infinitely far from every other row, never averaged.

Distances go through one anchored Gram matrix (blocked BLAS products) or, for the distances to
one point, through :func:`affine_pass`, which reads the input once.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from trilemma.aggregators._base import fresh_tensor
from trilemma.aggregators._sorted import numba_threads

__all__ = [
    "affine_pass",
    "anchored_gram",
    "garbage_rows",
    "norms_and_garbage",
    "pairwise_sq_distances",
    "zero_garbage",
]

_BLOCK_ELEMENTS = 1 << 21  # entries of one centred block (8 MiB in float32)
_COLUMNS = 512  # columns per affine_pass task: the n × 512 block stays in L2 for both sweeps


def norms_and_garbage(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row norms ``(..., n)`` and :func:`garbage_rows`, from one pass over ``x``."""
    norms = torch.linalg.vector_norm(x, dim=-1)
    return norms, ~torch.isfinite(norms * norms)


def garbage_rows(x: torch.Tensor) -> torch.Tensor:
    """Boolean ``(..., n)``: rows with a non-finite entry or an overflowing squared norm."""
    return norms_and_garbage(x)[1]


def zero_garbage(x: torch.Tensor, garbage: torch.Tensor) -> torch.Tensor:
    """``x`` with garbage rows replaced by zeros (a copy only when there is garbage)."""
    if not bool(garbage.any()):  # one host sync; saves a full copy of x in the common case
        return x
    return torch.where(garbage.unsqueeze(-1), torch.zeros((), dtype=x.dtype, device=x.device), x)


def anchored_gram(
    x: torch.Tensor, garbage: torch.Tensor, norms: torch.Tensor | None = None
) -> torch.Tensor:
    """Gram matrix ``(..., n, n)`` of the rows centred on the finite row of smallest norm.

    The anchor keeps honest entries at their own scale even when a Byzantine row is huge (a
    centring on the mean would drown them), and it makes ‖a‖² + ‖b‖² − 2⟨a, b⟩ free of
    catastrophic cancellation when all rows share a large offset. Garbage rows are zero.
    ``norms`` (the row norms, as from :func:`norms_and_garbage`) saves a pass over ``x``.
    """
    clean = zero_garbage(x, garbage)
    if norms is None:
        norms = torch.linalg.vector_norm(clean, dim=-1)
    nearest = norms.masked_fill(garbage, torch.inf).argmin(dim=-1, keepdim=True).unsqueeze(-1)
    anchor = torch.gather(clean, -2, nearest.expand(*clean.shape[:-2], 1, clean.shape[-1]))
    # Centred blocks of at most _BLOCK_ELEMENTS entries stay in cache and x is read once:
    # whole batch elements when they fit (the same sums batched or looped), else column blocks.
    n, d = x.shape[-2:]
    flat, anchors = clean.reshape(-1, n, d), anchor.reshape(-1, 1, d)
    per = max(1, _BLOCK_ELEMENTS // (n * d))
    step = d if n * d <= _BLOCK_ELEMENTS else max(1024, _BLOCK_ELEMENTS // n)
    gram = torch.zeros((flat.shape[0], n, n), dtype=x.dtype, device=x.device)
    # one buffer for every centred block: a fresh 8 MiB tensor per block costs page faults
    # (measured: the subtractions then take as long as the products)
    buffer = fresh_tensor((min(per, flat.shape[0]) * n * min(step, d),), like=x)
    for first in range(0, flat.shape[0], per):
        rows = slice(first, first + per)
        for start in range(0, d, step):
            columns = slice(start, start + step)
            source = flat[rows, :, columns]
            block = buffer[: source.numel()].view(source.shape)
            torch.sub(source, anchors[rows, :, columns], out=block)
            gram[rows].baddbmm_(block, block.mT)
    gram = gram.reshape(*x.shape[:-1], n)
    far = garbage.unsqueeze(-1) | garbage.unsqueeze(-2)
    return gram.masked_fill(far, 0.0) if bool(garbage.any()) else gram


def pairwise_sq_distances(
    x: torch.Tensor, garbage: torch.Tensor, norms: torch.Tensor | None = None
) -> torch.Tensor:
    """Squared distances ``(..., n, n)`` through one Gram matrix (blocked BLAS calls, see
    :func:`anchored_gram`). Garbage rows are at distance +inf from every other row and 0 from
    themselves."""
    gram = anchored_gram(x, garbage, norms)
    squared = torch.diagonal(gram, dim1=-2, dim2=-1)
    distances = (squared.unsqueeze(-1) + squared.unsqueeze(-2) - 2.0 * gram).clamp_min(0.0)
    far = garbage.unsqueeze(-1) | garbage.unsqueeze(-2)
    distances = distances.masked_fill(far, torch.inf)
    eye = torch.eye(x.shape[-2], dtype=torch.bool, device=x.device)
    return distances.masked_fill(eye, 0.0)


@numba.njit(parallel=True, fastmath={"reassoc", "contract"}, cache=True)
def _pass_kernel(x, coef, alpha, v, distances, zero, z, partial):  # pragma: no cover - compiled
    batch, n, d = x.shape
    blocks = (d + _COLUMNS - 1) // _COLUMNS
    for task in numba.prange(batch * blocks):
        b = task // blocks
        block = task % blocks
        start = block * _COLUMNS
        stop = min(start + _COLUMNS, d)
        # row slices, not x[b, i, j] indexing: only then does LLVM vectorise the inner loops
        acc = np.empty(stop - start, np.float64)  # CC's α v + Σ c_i x_i nearly cancels
        start_values = v[b, start:stop]
        for j in range(acc.size):
            acc[j] = alpha[b] * start_values[j]
        # rows of weight 0 (garbage among them) are never read; the others four at a time,
        # so that acc is loaded and stored once per four rows
        used = np.empty(n, np.int64)
        count = 0
        for i in range(n):
            if coef[b, i] != 0.0:
                used[count] = i
                count += 1
        quads = count - count % 4
        for q in range(0, quads, 4):
            i0, i1, i2, i3 = used[q], used[q + 1], used[q + 2], used[q + 3]
            c0, c1, c2, c3 = coef[b, i0], coef[b, i1], coef[b, i2], coef[b, i3]
            r0, r1 = x[b, i0, start:stop], x[b, i1, start:stop]
            r2, r3 = x[b, i2, start:stop], x[b, i3, start:stop]
            for j in range(acc.size):
                acc[j] += (c0 * r0[j] + c1 * r1[j]) + (c2 * r2[j] + c3 * r3[j])
        for q in range(quads, count):
            c, row = coef[b, used[q]], x[b, used[q], start:stop]
            for j in range(acc.size):
                acc[j] += c * row[j]
        out = z[b, start:stop]
        for j in range(acc.size):
            out[j] = acc[j]
        if distances:
            for i in range(n):
                row = x[b, i, start:stop]
                total = zero  # x's dtype: 16 float32 lanes, not 8 float64
                for j in range(acc.size):
                    u = row[j] - out[j]
                    total += u * u
                partial[b, block, i] = total


def affine_pass(
    x: torch.Tensor,
    coef: torch.Tensor,
    alpha: torch.Tensor,
    v: torch.Tensor,
    garbage: torch.Tensor,
    *,
    distances: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """z = α v + Σ_i c_i x_i ``(..., d)`` and, if ``distances``, ‖x_i − z‖² ``(..., n)``.

    ``coef`` ``(..., n)`` and ``alpha`` ``(...)`` are float64; rows with ``coef`` 0 do not enter
    z (garbage rows must have coefficient 0). Squared distances of garbage rows are
    unspecified. The CPU kernel accumulates z in float64 and the squared distances in
    float64 across column blocks (x's dtype within a block of 512 columns).
    """
    batch, (n, d) = x.shape[:-2], x.shape[-2:]
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or x.requires_grad:
        clean = zero_garbage(x, garbage)
        weights = coef.to(x.dtype).unsqueeze(-2)
        z = alpha.to(x.dtype).unsqueeze(-1) * v + (weights @ clean).squeeze(-2)
        if not distances:
            return z, None
        return z, (torch.linalg.vector_norm(clean - z.unsqueeze(-2), dim=-1) ** 2).double()
    flat = x.detach().reshape(-1, n, d).contiguous().numpy()
    size = flat.shape[0]
    blocks = -(-d // _COLUMNS)
    z = fresh_tensor((size, d), like=x)
    out = z.numpy()
    partial = np.zeros((size, blocks if distances else 0, n), dtype=np.float64)
    with numba_threads(flat.size):
        _pass_kernel(
            flat,
            coef.reshape(size, n).contiguous().numpy(),
            alpha.reshape(size).contiguous().numpy(),
            v.detach().to(x.dtype).reshape(size, d).contiguous().numpy(),
            distances,
            flat.dtype.type(0.0),
            out,
            partial,
        )
    z = z.reshape(*batch, d)
    if not distances:
        return z, None
    return z, torch.from_numpy(partial.sum(axis=1)).reshape(*batch, n)

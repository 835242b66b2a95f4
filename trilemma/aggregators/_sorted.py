"""Order statistics per coordinate, the core of the coordinate-wise rules.

Every coordinate-wise rule we offer reduces the sorted values of one coordinate:

* ``trimmed(lo, hi)``: mean of the sorted values of rank lo..hi−1 (CWTM, CWMed);
* ``window(k)``: mean of the k values closest to the coordinate-wise median (Meamed, the second
  phase of Bulyan). Those k values are consecutive in sorted order; among the windows of k
  consecutive values we take the one whose farthest value from the median is closest, the
  leftmost on ties.

NaN entries are sorted as +inf (a point at infinity); with at most f such entries per
coordinate and the window or trim excluding f values on each side, outputs stay finite.

On CPU (float32/float64) a numba kernel sorts each coordinate with Batcher's odd–even
merge-sort network, vectorised across coordinates in cache-sized column blocks: a full
``torch.sort`` of the short axis costs ~10× more on CPU. Elsewhere (CUDA, other dtypes)
``torch.sort`` is used; both paths compute the same reduction.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import cache

import numba
import numpy as np
import torch

from trilemma._threads import numba_limited

__all__ = ["numba_threads", "sorted_reduce"]

_TRIMMED, _WINDOW = 0, 1
_BLOCK = 256  # columns per block: n × 256 values stay in the L2 cache (measured best)


@cache
def _batcher_network(n: int) -> np.ndarray:
    """Comparators (i, j), i < j, of Batcher's odd–even merge sort restricted to n inputs.

    Knuth, TAOCP vol. 3, 5.3.4, Algorithm M, for the next power of two p ≥ n; comparators that
    touch a padding index ≥ n are dropped (padding holds +inf, so they would never swap).
    """
    p = 1
    while p < n:
        p *= 2
    pairs = []
    half = 1
    while half < p:
        k = half
        while k >= 1:
            for j in range(k % half, p - k, 2 * k):
                for i in range(min(k, p - j - k)):
                    if (i + j) // (2 * half) == (i + j + k) // (2 * half) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        half *= 2
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


#: inputs with fewer entries run the kernel on one thread (measured: a (9, 5) input takes
#: ~7 ms through a busy 2-thread pool and ~0.3 ms on one thread)
_SERIAL_BELOW = 1 << 15


def numba_threads(entries: int) -> AbstractContextManager[None]:
    """Run the numba kernels of the block on one thread when the input has fewer than
    ``_SERIAL_BELOW`` entries (waking the pool costs more than the work); the pool's thread
    count is restored on exit."""
    return numba_limited(1 if entries < _SERIAL_BELOW else numba.get_num_threads())


@numba.njit(parallel=True, cache=True)
def _sorted_reduce_kernel(x, rows, invalid, network, mode, a, b, out):  # pragma: no cover
    batch, n = rows.shape  # rows x[item, rows[item, i]], i < n, are reduced
    d = x.shape[2]
    blocks = (d + _BLOCK - 1) // _BLOCK
    for task in numba.prange(batch * blocks):
        item = task // blocks
        start = (task % blocks) * _BLOCK
        width = min(_BLOCK, d - start)
        buf = np.empty((n, _BLOCK), x.dtype)
        for i in range(n):
            if invalid[item, i]:
                buf[i, :width] = np.inf
                continue
            row = x[item, rows[item, i], start : start + width]
            for j in range(width):
                value = row[j]
                buf[i, j] = value if value == value else np.inf
        for c in range(network.shape[0]):
            low, high = network[c, 0], network[c, 1]
            for j in range(width):
                u, v = buf[low, j], buf[high, j]
                buf[low, j] = min(u, v)
                buf[high, j] = max(u, v)
        for j in range(width):
            lo, hi = a, b
            if mode == _WINDOW:  # a = window size k
                median = 0.5 * (buf[(n - 1) // 2, j] + buf[n // 2, j])
                best = np.inf
                lo = 0
                for s in range(n - a + 1):
                    spread = max(median - buf[s, j], buf[s + a - 1, j] - median)
                    if spread < best:
                        best, lo = spread, s
                hi = lo + a
            total = 0.0
            for i in range(lo, hi):
                total += buf[i, j]
            out[item, start + j] = total / (hi - lo)


def _torch_sorted_reduce(x: torch.Tensor, mode: int, a: int, b: int) -> torch.Tensor:
    values = torch.sort(torch.nan_to_num(x, nan=torch.inf, posinf=torch.inf), dim=-2).values
    n = x.shape[-2]
    if mode == _TRIMMED:
        return values[..., a:b, :].mean(dim=-2)
    median = 0.5 * (values[..., (n - 1) // 2, :] + values[..., n // 2, :])
    left = values[..., : n - a + 1, :]
    right = values[..., a - 1 :, :]
    spread = torch.maximum(median.unsqueeze(-2) - left, right - median.unsqueeze(-2))
    best = spread.argmin(dim=-2, keepdim=True)  # first minimum: leftmost window on ties
    index = best + torch.arange(a, device=x.device).view(-1, 1)
    return torch.gather(values, -2, index).mean(dim=-2)


def sorted_reduce(
    x: torch.Tensor,
    *,
    mode: str,
    lo: int = 0,
    hi: int = 0,
    k: int = 0,
    rows: torch.Tensor | None = None,
    invalid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reduce the per-coordinate sorted values of ``x`` ``(..., n, d)`` to ``(..., d)``.

    Parameters
    ----------
    mode : {"trimmed", "window"}
        ``"trimmed"``: mean of ranks ``lo .. hi−1``; ``"window"``: mean of the ``k`` values
        closest to the median.
    rows : long tensor ``(..., m)``, optional
        Reduce only the rows ``x[..., rows, :]`` (read in place, no gathered copy).
    invalid : bool tensor ``(..., m)``, optional
        Selected rows whose values count as +inf (points at infinity).
    """
    n, d = x.shape[-2], x.shape[-1]
    batch = x.shape[:-2]
    code, a, b = (_TRIMMED, lo, hi) if mode == "trimmed" else (_WINDOW, k, 0)
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or x.requires_grad:
        if rows is not None:
            x = torch.gather(x, -2, rows.unsqueeze(-1).expand(*rows.shape, d))
        if invalid is not None:
            x = x.masked_fill(invalid.unsqueeze(-1), torch.inf)
        return _torch_sorted_reduce(x, code, a, b)
    if rows is None:
        rows = torch.arange(n, device=x.device).expand(*batch, n)
    if invalid is None:
        invalid = torch.zeros(rows.shape, dtype=torch.bool, device=x.device)
    m = rows.shape[-1]
    flat = x.detach().reshape(-1, n, d).contiguous().numpy()
    out = np.empty((flat.shape[0], d), dtype=flat.dtype)
    with numba_threads(flat.shape[0] * m * d):
        _sorted_reduce_kernel(
            flat,
            rows.reshape(-1, m).contiguous().numpy(),
            invalid.reshape(-1, m).contiguous().numpy(),
            _batcher_network(m),
            code,
            a,
            b,
            out,
        )
    return torch.from_numpy(out).reshape(*batch, d)

"""Iterative rules: geometric median (smoothed Weiszfeld) and centered clipping.

Both iterate z ← α z + Σ_i c_i x_i with weights c that depend on the distances ‖x_i − z‖. One
pass over the input does an iteration (:func:`~trilemma.aggregators._garbage.affine_pass`: per
block of columns it forms z's block, then adds the block's share of every ‖x_i − z‖²), and
batches are solved in chunks that stay in cache across iterations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from trilemma._validation import check_int, check_real
from trilemma.aggregators._base import Aggregator
from trilemma.aggregators._garbage import affine_pass, garbage_rows
from trilemma.aggregators._sorted import sorted_reduce

__all__ = ["CenteredClipping", "GeometricMedian"]

# Convergence is checked (one host synchronisation) every this many iterations.
_CHECK_EVERY = 8
# Batch elements are solved in chunks of about this many entries (4 MiB of float32), small
# enough to stay in the last-level cache across all the iterations of the chunk.
_CHUNK_ENTRIES = 1 << 20


def _by_chunks(
    x: torch.Tensor,
    start: torch.Tensor,
    solve: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, int]],
) -> tuple[torch.Tensor, int]:
    """``solve(x, start)`` on chunks of the flattened batch of ``x`` ``(..., n, d)`` and of the
    starting points ``start`` ``(..., d)``, concatenated; the largest iteration count. Batch
    elements are independent, so chunks give what one call over the batch gives."""
    n, d = x.shape[-2:]
    flat, starts = x.reshape(-1, n, d), start.reshape(-1, d)
    per = max(1, _CHUNK_ENTRIES // (n * d))
    if flat.shape[0] <= per:
        return solve(x, start)
    parts = [
        solve(flat[first : first + per], starts[first : first + per])
        for first in range(0, flat.shape[0], per)
    ]
    z = torch.cat([part for part, _ in parts]).reshape(*x.shape[:-2], d)
    return z, max(iterations for _, iterations in parts)


class GeometricMedian(Aggregator):
    """Geometric median by smoothed Weiszfeld iterations (Pillutla, Kakade, Harchaoui, IEEE TSP
    2022, arXiv:1912.13445, Alg. 2): z ← Σ w_i x_i / Σ w_i with w_i = 1 / max(ν, ‖x_i − z‖),
    started at the coordinate-wise median and iterated until the step is below
    max(``tol``, 8 ε_dtype) · (1 + ‖z‖) or ``max_iter`` iterations. Garbage rows get weight 0.

    Each iteration is one pass over x (see the module docstring); after a call,
    ``last_iterations`` holds the number of iterations run (the largest over a batch).

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0], [1.0, 1.0]])
    >>> rule = GeometricMedian(f=1)
    >>> torch.allclose(rule(x), torch.tensor([1.0, 1.0]), atol=1e-5)
    True
    >>> rule.last_iterations
    8
    """

    name = "gm"

    def __init__(
        self, f: int = 0, *, nu: float = 1e-6, tol: float = 1e-7, max_iter: int = 1000
    ) -> None:
        super().__init__(f)
        self.nu = check_real("nu", nu, low=0, low_open=True)
        self.tol = check_real("tol", tol, low=0, low_open=True)
        self.max_iter = check_int("max_iter", max_iter, low=1)
        #: Weiszfeld iterations of the last call (0 before the first call).
        self.last_iterations = 0

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        median = sorted_reduce(x, mode="trimmed", lo=(n - 1) // 2, hi=n // 2 + 1)
        z, self.last_iterations = _by_chunks(x, median, self._solve)
        return z

    def _solve(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, int]:
        garbage = garbage_rows(x)
        none = torch.zeros(garbage.shape, dtype=torch.float64, device=x.device)
        one = torch.ones(z.shape[:-1], dtype=torch.float64, device=x.device)
        _, squared = affine_pass(x, none, one, z, garbage)
        # a relative step below a few ulps is rounding noise, not progress
        tol = max(self.tol, 8.0 * torch.finfo(x.dtype).eps)
        done = torch.zeros(z.shape[:-1], dtype=torch.bool, device=x.device)
        iteration = 0
        for iteration in range(1, self.max_iter + 1):
            assert squared is not None
            distance = squared.sqrt().clamp_min(self.nu)
            weights = torch.where(garbage, 0.0, 1.0 / distance)
            coef = weights / weights.sum(-1, keepdim=True)
            update, squared = affine_pass(x, coef, torch.zeros_like(one), z, garbage)
            # converged batch elements are frozen, so a batch gives what a loop over it gives
            step = torch.linalg.vector_norm(update - z, dim=-1)
            z = torch.where(done.unsqueeze(-1), z, update)
            if iteration % _CHECK_EVERY == 0:
                done = done | (step <= tol * (1.0 + torch.linalg.vector_norm(z, dim=-1)))
                if bool(done.all()):
                    break
        return z, iteration


class CenteredClipping(Aggregator):
    """Centered clipping (Karimireddy, He, Jaggi, ICML 2021, arXiv:2012.10333, Eq. 2):
    v ← v + (1/n) Σ_i (x_i − v) · min(1, τ / ‖x_i − v‖), ``iterations`` times from ``center``
    (zeros by default, as in byzfl; pass the previous aggregate or momentum to follow the paper).
    Stateless. Garbage rows contribute nothing.

    The update is computed as v ← (1 − S/n) v + Σ_i (s_i/n) x_i with s_i = min(1, τ/‖x_i − v‖)
    and S = Σ s_i (the same sum regrouped), one pass over x per iteration plus one for the
    first distances; ``last_iterations`` is ``iterations`` after a call.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0], [1.0], [1.0], [1000.0]])
    >>> CenteredClipping(f=1, tau=1.0, iterations=3, center=torch.tensor([1.0]))(x)  # 1.25, 1.3125
    tensor([1.3281])
    """

    name = "cc"

    def __init__(
        self,
        f: int = 0,
        *,
        tau: float = 100.0,
        iterations: int = 1,
        center: torch.Tensor | None = None,
    ) -> None:
        super().__init__(f)
        self.tau = check_real("tau", tau, low=0, low_open=True)
        self.iterations = check_int("iterations", iterations, low=1)
        self.center = center
        #: Iterations of the last call (always ``iterations``; 0 before the first call).
        self.last_iterations = 0

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        if self.center is None:
            start = torch.zeros(x.shape[:-2] + x.shape[-1:], dtype=x.dtype, device=x.device)
        else:
            start = torch.as_tensor(self.center, dtype=x.dtype, device=x.device).expand(
                *x.shape[:-2], x.shape[-1]
            )
        v, self.last_iterations = _by_chunks(x, start, self._solve)
        return v

    def _solve(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, int]:
        garbage = garbage_rows(x)
        n = x.shape[-2]
        none = torch.zeros(garbage.shape, dtype=torch.float64, device=x.device)
        one = torch.ones(v.shape[:-1], dtype=torch.float64, device=x.device)
        _, squared = affine_pass(x, none, one, v, garbage)
        tiny = torch.finfo(x.dtype).tiny
        for iteration in range(self.iterations):
            assert squared is not None
            norm = squared.sqrt().to(x.dtype).clamp_min(tiny)
            scale = torch.where(garbage, 0.0, torch.clamp(self.tau / norm, max=1.0)).double()
            last = iteration == self.iterations - 1
            v, squared = affine_pass(
                x, scale / n, 1.0 - scale.sum(-1) / n, v, garbage, distances=not last
            )
        return v, self.iterations

"""Iterative rules: geometric median (smoothed Weiszfeld) and centered clipping."""

from __future__ import annotations

import torch

from trilemma._validation import check_int, check_real
from trilemma.aggregators._base import Aggregator
from trilemma.aggregators._garbage import garbage_rows, zero_garbage
from trilemma.aggregators._sorted import sorted_reduce

__all__ = ["CenteredClipping", "GeometricMedian"]

# Convergence is checked (one host synchronisation) every this many iterations.
_CHECK_EVERY = 8


class GeometricMedian(Aggregator):
    """Geometric median by smoothed Weiszfeld iterations (Pillutla, Kakade, Harchaoui, IEEE TSP
    2022, arXiv:1912.13445, Alg. 2): z ← Σ w_i x_i / Σ w_i with w_i = 1 / max(ν, ‖x_i − z‖),
    started at the coordinate-wise median and iterated until the step is below
    max(``tol``, 8 ε_dtype) · (1 + ‖z‖) or ``max_iter`` iterations. Garbage rows get weight 0.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0], [1.0, 1.0]])
    >>> torch.allclose(GeometricMedian(f=1)(x), torch.tensor([1.0, 1.0]), atol=1e-5)
    True
    """

    name = "gm"

    def __init__(
        self, f: int = 0, *, nu: float = 1e-6, tol: float = 1e-7, max_iter: int = 1000
    ) -> None:
        super().__init__(f)
        self.nu = check_real("nu", nu, low=0, low_open=True)
        self.tol = check_real("tol", tol, low=0, low_open=True)
        self.max_iter = check_int("max_iter", max_iter, low=1)

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        garbage = garbage_rows(x)
        clean = zero_garbage(x, garbage)
        n = x.shape[-2]
        z = sorted_reduce(x, mode="trimmed", lo=(n - 1) // 2, hi=n // 2 + 1)
        keep = (~garbage).to(x.dtype)
        # a relative step below a few ulps is rounding noise, not progress
        tol = max(self.tol, 8.0 * torch.finfo(x.dtype).eps)
        done = torch.zeros(z.shape[:-1], dtype=torch.bool, device=x.device)
        for iteration in range(self.max_iter):
            distance = torch.linalg.vector_norm(clean - z.unsqueeze(-2), dim=-1)
            weights = keep / distance.clamp_min(self.nu)
            update = (weights.unsqueeze(-2) @ clean).squeeze(-2) / weights.sum(-1, keepdim=True)
            # converged batch elements are frozen, so a batch gives what a loop over it gives
            step = torch.linalg.vector_norm(update - z, dim=-1)
            z = torch.where(done.unsqueeze(-1), z, update)
            if (iteration + 1) % _CHECK_EVERY == 0:
                done = done | (step <= tol * (1.0 + torch.linalg.vector_norm(z, dim=-1)))
                if bool(done.all()):
                    break
        return z


class CenteredClipping(Aggregator):
    """Centered clipping (Karimireddy, He, Jaggi, ICML 2021, arXiv:2012.10333, Eq. 2):
    v ← v + (1/n) Σ_i (x_i − v) · min(1, τ / ‖x_i − v‖), ``iterations`` times from ``center``
    (zeros by default, as in byzfl; pass the previous aggregate or momentum to follow the paper).
    Stateless. Garbage rows contribute nothing.

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

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        garbage = garbage_rows(x)
        clean = zero_garbage(x, garbage)
        keep = (~garbage).to(x.dtype)
        if self.center is None:
            v = torch.zeros(x.shape[:-2] + x.shape[-1:], dtype=x.dtype, device=x.device)
        else:
            v = torch.as_tensor(self.center, dtype=x.dtype, device=x.device).expand(
                *x.shape[:-2], x.shape[-1]
            )
        n = x.shape[-2]
        for _ in range(self.iterations):
            delta = clean - v.unsqueeze(-2)
            norm = torch.linalg.vector_norm(delta, dim=-1)
            scale = keep * torch.clamp(
                self.tau / norm.clamp_min(torch.finfo(x.dtype).tiny), max=1.0
            )
            v = v + (scale.unsqueeze(-2) @ delta).squeeze(-2) / n
        return v

"""The (G, B) frontier of the extreme-digits task under the two samplings that the gb-breakdown
and gb-predicted figures compare (Allouah et al., NeurIPS 2023, arXiv:2309.13591; THEORY §3).

- **authors' sampling** — the θ range of the official figure script (``main/fig3.py`` of
  GeovaniRizk/Robust-Distributed-Learning-Tight-Error-Bounds-and-Breakdown-Point-under-Data-
  Heterogeneity): the 101 points θ_s = (1 − s)θ* + s·10⁴·1, s = k/100, on the segment from the
  honest optimum θ* to the far point 10⁴·1;
- **runs' sampling** — where the algorithm went: θ₀, every iterate of honest D-GD (its last is
  θ̂*), the segment t·θ̂* (t = 0, 0.1, …, 1) and every iterate of every robust run of the figure.

G²(B²) = max over the samples of (H(θ) − B²N(θ))₊ (:func:`trilemma.dgd.sampled_gb`) on a grid
of B² made of 0, 61 geometric points in [10⁻³, 10³] and, for each f, the official grid: 99
equispaced points of [0, 1/κ), κ = f/(n − 2f) (``np.linspace(0, (n − 2f)/f, 100)[:-1]``). The
official code chooses, for each f, the pair minimising the error floor κG²/(1 − κB²)
(``tools.compute_G_and_B_by_fixing_B``); :func:`trilemma.dgd.error_floor_pair` does the same.

One breakdown estimate per sampling: admissibility κB² < 1 is f/n < 1/(2 + B²), so the pair
chosen at f has its breakdown point above f/n by construction; only the pair chosen at the
smallest f (f = 1) can place a breakdown inside the range of the figure. The estimate of a
sampling is that pair and its line is 1/(2 + B²) (:func:`trilemma.bounds.gb_breakdown_point`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trilemma import dgd
from trilemma.bounds import gb_breakdown_point, kappa_lower_bound

__all__ = [
    "AUTHORS_FAR",
    "Frontier",
    "authors_segment",
    "b2_grid",
    "honest_reference",
    "worst_ratio",
]

AUTHORS_FAR = 1e4
"""Every coordinate of the far end of the official sampling segment (``theta_bis``)."""
_AUTHORS_POINTS = 101


def authors_segment(theta_star: torch.Tensor) -> torch.Tensor:
    """The official sampling: θ_s = (1 − s)θ* + s·10⁴·1 for s = k/100, k = 0..100."""
    s = torch.linspace(0, 1, _AUTHORS_POINTS, dtype=theta_star.dtype)[:, None]
    return (1 - s) * theta_star + s * torch.full_like(theta_star, AUTHORS_FAR)


def b2_grid(fs: tuple[int, ...], honest: int) -> np.ndarray:
    """0, 61 geometric points in [1e-3, 1e3] and the official grid of [0, 1/κ) for each f > 0."""
    kappas = [float(kappa_lower_bound(n=honest + f, f=f)) for f in fs if f > 0]
    parts = [np.array([0.0]), np.geomspace(1e-3, 1e3, 61)]
    parts += [np.linspace(0.0, 1.0 / k, 100)[:-1] for k in kappas]
    return np.unique(np.concatenate(parts))


def honest_reference(problem: dgd.Problem, *, steps: int, lr: float) -> dgd.Trajectory:
    """Honest D-GD (rule ``mean``, f = 0) from θ₀ = 0, iterates kept: its last is θ̂*."""
    theta0 = torch.zeros(problem.dimension, dtype=torch.float64)
    return dgd.robust_dgd(
        problem, rule="mean", steps=steps, lr=lr, theta0=theta0, keep_iterates=True
    )


@dataclass(frozen=True)
class Frontier:
    """A sampled frontier G²(B²) on ``B2`` from ``samples`` parameters."""

    B2: np.ndarray
    G2: np.ndarray
    samples: int

    @classmethod
    def sample(cls, problem: dgd.Problem, thetas: torch.Tensor, B2: np.ndarray) -> Frontier:
        """The frontier over every finite row of ``thetas`` ``(k, P)``."""
        thetas = thetas.reshape(-1, problem.dimension)
        finite = int(torch.isfinite(thetas).all(dim=-1).sum())
        return cls(B2=B2, G2=dgd.sampled_gb(problem, thetas, B2=B2), samples=finite)

    def pair(self, *, n: int, f: int) -> tuple[float, float, float]:
        """(B², G², floor κG²/(1 − κB²)) minimising the floor at κ = f/(n − 2f)."""
        return dgd.error_floor_pair(self.B2, self.G2, kappa=float(kappa_lower_bound(n=n, f=f)))

    def breakdown(self, *, honest: int) -> tuple[float, float, float]:
        """(breakdown 1/(2 + B²), B², G²) of the estimate: the pair chosen at f = 1."""
        b2, g2, _ = self.pair(n=honest + 1, f=1)
        return float(gb_breakdown_point(B2=b2)), b2, g2


def worst_ratio(problem: dgd.Problem, thetas: torch.Tensor, *, B2: float, G2: float) -> float:
    """max over the finite rows θ of ``thetas`` of H(θ)/(G² + B²N(θ)): at most 1 where the
    pair (G, B) holds — exactly so at the samples of the frontier it was read from."""
    thetas = thetas.reshape(-1, problem.dimension)
    thetas = thetas[torch.isfinite(thetas).all(dim=-1)]
    worst = 0.0
    for part in thetas.split(256):
        spread, norm = dgd.dissimilarity(problem, part)
        ratio = spread / (G2 + B2 * norm).clamp_min(torch.finfo(spread.dtype).tiny)
        worst = max(worst, float(ratio.max()))
    return worst

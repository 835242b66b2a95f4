"""A little is enough (ALIE): shift the honest mean by z standard deviations, coordinate-wise."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy.special import ndtri

from trilemma._validation import check_real, check_workers
from trilemma.attacks._base import Attack, replicate

__all__ = ["ALIE", "alie_z_max"]


def alie_z_max(*, n: int, f: int) -> float:
    """Baruch et al.'s z_max: the largest shift, in standard deviations, that still hides.

    With n workers of which f are Byzantine, the attacker needs

        s = ⌊n/2 + 1⌋ − f

    honest workers on its side for a majority, and picks the largest z such that, for
    Gaussian honest coordinates, the expected share of honest values further from the mean
    than the Byzantine value stays above s:

        z_max = max { z : Φ(z) < (n − s)/n } = Φ⁻¹((n − s)/n)

    (the maximum is a supremum; Φ is continuous so it is attained in the limit).

    Parameters
    ----------
    n : int
        Total number of workers, n ≥ 1.
    f : int
        Number of Byzantine workers, 0 ≤ f with 2f < n.

    Returns
    -------
    float
        z_max; finite when f ≥ 1. For f = 0 it is negative or −∞ (n ≤ 2), irrelevant since no
        Byzantine vector is sent.

    Raises
    ------
    ValueError
        If ``n < 1``, ``f < 0`` or ``2f ≥ n``.

    Examples
    --------
    (n, f) = (13, 3): s = ⌊7.5⌋ − 3 = 4 and z = Φ⁻¹(9/13):

    >>> round(alie_z_max(n=13, f=3), 4)
    0.5024
    >>> round(alie_z_max(n=20, f=4), 4)
    0.3853

    References
    ----------
    Baruch, Baruch, Goldberg, "A Little Is Enough: Circumventing Defenses For Distributed
    Learning", NeurIPS 2019, arXiv:1902.06156 (s and z_max as defined there).
    """
    n, f = check_workers(n=n, f=f)
    s = math.floor(n / 2 + 1) - f
    return float(ndtri((n - s) / n))


def _coordinate_std(honest: torch.Tensor, *, unbiased: bool) -> torch.Tensor:
    """Coordinate-wise standard deviation over dim −2 (divisor h − 1 if unbiased, else h)."""
    h = honest.shape[-2]
    if unbiased and h < 2:
        raise ValueError(f"unbiased=True needs h >= 2 honest vectors, got h={h}")
    # two passes (mean, then squared deviations): as accurate as torch.std and several times
    # faster on small (h, d) inputs, where torch.std's strided reduction dominates an attack
    deviations = honest - honest.mean(dim=-2, keepdim=True)
    return (deviations.square().sum(dim=-2) / (h - 1 if unbiased else h)).sqrt()


@dataclass(frozen=True, slots=True, kw_only=True)
class ALIE(Attack):
    """A little is enough: every Byzantine vector is x̄_H + z·σ_H, coordinate-wise.

    σ_H is the coordinate-wise standard deviation of the h honest vectors:
    √(Σ_i (x_ij − x̄_j)² / (h − 1)) when ``unbiased`` (the default, as ``torch.std`` and byzfl's
    ``ddof=1``), √(Σ_i (x_ij − x̄_j)² / h) (population) otherwise.

    Parameters
    ----------
    z : float or None
        Shift in standard deviations (finite, any sign). ``None`` (default) uses
        :func:`alie_z_max` with n = h + f, which requires 2f < n.
    unbiased : bool
        Divisor h − 1 (True, default) or h (False) in σ_H.

    Raises
    ------
    ValueError
        If ``z`` is NaN or infinite; when called, if ``z is None`` and 2f ≥ h + f, or if
        ``unbiased`` and h < 2.

    Examples
    --------
    Two honest vectors: x̄ = (2, 4), unbiased σ = (√2, 2√2), population σ = (1, 2):

    >>> import torch
    >>> honest = torch.tensor([[1.0, 2.0], [3.0, 6.0]], dtype=torch.float64)
    >>> ALIE(z=1.0, unbiased=False)(honest, f=1)
    tensor([[3., 6.]], dtype=torch.float64)
    >>> ALIE(z=-1.0)(honest, f=1)
    tensor([[0.5858, 1.1716]], dtype=torch.float64)

    References
    ----------
    Baruch, Baruch, Goldberg, "A Little Is Enough: Circumventing Defenses For Distributed
    Learning", NeurIPS 2019, arXiv:1902.06156.
    """

    z: float | None = None
    unbiased: bool = True

    def __post_init__(self) -> None:
        if self.z is not None:
            object.__setattr__(self, "z", check_real("z", self.z))
        if not isinstance(self.unbiased, bool):
            raise TypeError(f"unbiased must be a bool, got {type(self.unbiased).__name__}")

    def resolved_z(self, *, h: int, f: int) -> float:
        """The z used for h honest and f Byzantine vectors (``z``, or z_max(n=h+f, f))."""
        if self.z is not None:
            return self.z
        return alie_z_max(n=h + f, f=f)

    def _forward(self, honest: torch.Tensor, f: int) -> torch.Tensor:
        z = self.resolved_z(h=honest.shape[-2], f=f)
        sigma = _coordinate_std(honest, unbiased=self.unbiased)
        return replicate(honest.mean(dim=-2) + z * sigma, f)

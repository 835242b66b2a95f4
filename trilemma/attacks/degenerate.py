"""Degenerate vectors: NaN, ±Inf and huge finite entries.

They test the boundary promise of the aggregators (DESIGN.md): Byzantine inputs are data, and
NaN, ±Inf or 1e38 vectors must never make an aggregate non-finite. A huge *finite* entry is the
subtle case: 1e38 is representable in float32 (max ≈ 3.4e38) but a sum of four such entries
overflows to +inf, so any rule that sums Byzantine coordinates (a mean, a pairwise distance)
without first excluding them breaks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trilemma._validation import check_int, check_real
from trilemma.attacks._base import Attack

__all__ = ["HugeAttack", "InfAttack", "NaNAttack"]


def _filled(honest: torch.Tensor, f: int, value: float) -> torch.Tensor:
    return honest.new_full((*honest.shape[:-2], f, honest.shape[-1]), value)


@dataclass(frozen=True, slots=True, kw_only=True)
class NaNAttack(Attack):
    """Every coordinate of every Byzantine vector is NaN.

    Examples
    --------
    >>> import torch
    >>> NaNAttack()(torch.zeros(3, 2), f=1)
    tensor([[nan, nan]])
    """

    def _forward(self, honest: torch.Tensor, f: int) -> torch.Tensor:
        return _filled(honest, f, float("nan"))


@dataclass(frozen=True, slots=True, kw_only=True)
class InfAttack(Attack):
    """Every coordinate of every Byzantine vector is +∞ (``sign=1``) or −∞ (``sign=-1``).

    Parameters
    ----------
    sign : {1, -1}
        Sign of the infinite entries (default +1).

    Raises
    ------
    ValueError
        If ``sign`` is not 1 or −1.

    Examples
    --------
    >>> import torch
    >>> InfAttack(sign=-1)(torch.zeros(3, 2), f=2)
    tensor([[-inf, -inf],
            [-inf, -inf]])

    References
    ----------
    byzfl ``Inf`` attack (LPD-EPFL/byzfl).
    """

    sign: int = 1

    def __post_init__(self) -> None:
        sign = check_int("sign", self.sign, low=-1, high=1)
        if sign == 0:
            raise ValueError("sign=0 must be 1 or -1")
        object.__setattr__(self, "sign", sign)

    def _forward(self, honest: torch.Tensor, f: int) -> torch.Tensor:
        return _filled(honest, f, self.sign * float("inf"))


@dataclass(frozen=True, slots=True, kw_only=True)
class HugeAttack(Attack):
    """Every coordinate of every Byzantine vector equals ``value`` (norm |value|·√d).

    Parameters
    ----------
    value : float
        The entry, finite and non-zero (default 1e38: finite in float32 and bfloat16, but four
        of them already overflow a float32 sum). In float16 (max 65504) it rounds to ±inf.

    Raises
    ------
    ValueError
        If ``value`` is zero, NaN or infinite.

    Examples
    --------
    >>> import torch
    >>> v = HugeAttack()(torch.zeros(3, 2), f=4)
    >>> bool(torch.isfinite(v).all()), bool(torch.isinf(v.sum(dim=-2)).all())
    (True, True)
    """

    value: float = 1e38

    def __post_init__(self) -> None:
        value = check_real("value", self.value)
        if value == 0:
            raise ValueError("value=0 must be a non-zero finite number")
        object.__setattr__(self, "value", value)

    def _forward(self, honest: torch.Tensor, f: int) -> torch.Tensor:
        return _filled(honest, f, self.value)

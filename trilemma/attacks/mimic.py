"""Mimic: the Byzantine workers copy one honest worker, over-weighting it in the aggregate."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trilemma._validation import check_int
from trilemma.attacks._base import Attack, replicate

__all__ = ["Mimic"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Mimic(Attack):
    """Mimic: every Byzantine vector is a copy of the honest vector number ``target``.

    Under heterogeneity this biases the aggregate towards one worker's data while every sent
    vector is a genuine honest one, so distance-based filters cannot single it out.

    Parameters
    ----------
    target : int
        Index (along dim −2 of ``honest``) of the honest vector to copy, 0 ≤ target < h
        (default 0; the range against h is checked at call time).

    Raises
    ------
    ValueError
        If ``target < 0``, or ``target ≥ h`` when called.

    Examples
    --------
    >>> import torch
    >>> honest = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    >>> Mimic(target=1)(honest, f=2)
    tensor([[3., 6.],
            [3., 6.]])

    References
    ----------
    Karimireddy, He, Jaggi, "Byzantine-Robust Learning on Heterogeneous Datasets via
    Bucketing", ICLR 2022, arXiv:2006.09365.
    """

    target: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", check_int("target", self.target, low=0))

    def _forward(self, honest: torch.Tensor, f: int) -> torch.Tensor:
        h = honest.shape[-2]
        check_int("target", self.target, low=0, high=h - 1)
        return replicate(honest[..., self.target, :], f)

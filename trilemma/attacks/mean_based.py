"""Attacks that send a multiple of the honest mean: sign flipping and Fall of Empires (IPM)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trilemma._validation import check_real
from trilemma.attacks._base import Attack, replicate

__all__ = ["FOE", "SignFlipping"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SignFlipping(Attack):
    """Sign flipping: every Byzantine vector is the negated honest mean, −x̄_H.

    Examples
    --------
    >>> import torch
    >>> honest = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    >>> SignFlipping()(honest, f=2)
    tensor([[-2., -4.],
            [-2., -4.]])

    Notes
    -----
    The τ = 1 case of :class:`FOE`.

    References
    ----------
    Li, Xu, Chen, Giannakis, Ling, "RSA: Byzantine-Robust Stochastic Aggregation Methods for
    Distributed Learning from Heterogeneous Datasets", AAAI 2019, arXiv:1811.03761; evaluated
    as "SF" in Allouah et al., AISTATS 2023, arXiv:2302.01772.
    """

    def _forward(self, honest: torch.Tensor, f: int) -> torch.Tensor:
        return replicate(-honest.mean(dim=-2), f)


@dataclass(frozen=True, slots=True, kw_only=True)
class FOE(Attack):
    """Fall of Empires / inner product manipulation (IPM): every Byzantine vector is −τ·x̄_H.

    A small τ keeps the Byzantine vectors close to the honest ones (hard to filter) while making
    the inner product of the aggregate with the true gradient negative once the rule lets
    enough of them through.

    Parameters
    ----------
    tau : float
        Attack factor τ (finite; default 0.1, the small-ε setting of Xie et al. 2020, also the
        IPM setting of Karimireddy, He, Jaggi, ICML 2021, arXiv:2012.10333 — recalled, not
        checked against the papers' text; byzfl uses 2.0). Registry aliases: ``"foe"``,
        ``"ipm"``.

    Raises
    ------
    ValueError
        If ``tau`` is NaN or infinite.

    Examples
    --------
    >>> import torch
    >>> honest = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    >>> FOE(tau=0.5)(honest, f=1)
    tensor([[-1., -2.]])

    References
    ----------
    Xie, Koyejo, Gupta, "Fall of Empires: Breaking Byzantine-tolerant SGD by Inner Product
    Manipulation", UAI 2020 (PMLR 115:261–270), arXiv:1903.03936.
    """

    tau: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau", check_real("tau", self.tau))

    def _forward(self, honest: torch.Tensor, f: int) -> torch.Tensor:
        return replicate(honest.mean(dim=-2) * (-self.tau), f)

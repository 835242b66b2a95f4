"""Gaussian attack: Byzantine vectors drawn at random, independently of the honest ones."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from trilemma._validation import check_real
from trilemma.attacks._base import Attack

__all__ = ["GaussianAttack"]


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class GaussianAttack(Attack):
    """Gaussian attack: f independent vectors with i.i.d. N(μ, σ²) coordinates.

    Parameters
    ----------
    mean : float
        μ, finite (default 0).
    std : float
        σ ≥ 0, finite (default 1).
    generator : torch.Generator or None
        Source of randomness. Samples are drawn on the generator's device and then moved to the
        device of ``honest``, so a CPU generator gives the same numbers for CPU and CUDA
        inputs; ``None`` uses torch's global generator on the device of ``honest``.

    Raises
    ------
    ValueError
        If ``mean`` or ``std`` is not finite, or ``std < 0``.
    TypeError
        If ``generator`` is neither ``None`` nor a ``torch.Generator``.

    Examples
    --------
    >>> import torch
    >>> attack = GaussianAttack(mean=5.0, std=0.0)
    >>> attack(torch.zeros(3, 2), f=1)
    tensor([[5., 5.]])
    >>> g = torch.Generator().manual_seed(0)
    >>> GaussianAttack(std=2.0, generator=g)(torch.zeros(4, 3), f=2).shape
    torch.Size([2, 3])

    References
    ----------
    Li, Xu, Chen, Giannakis, Ling, "RSA: Byzantine-Robust Stochastic Aggregation Methods for
    Distributed Learning from Heterogeneous Datasets", AAAI 2019, arXiv:1811.03761 (Gaussian
    attack); byzfl ``Gaussian``.
    """

    mean: float = 0.0
    std: float = 1.0
    generator: torch.Generator | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", check_real("mean", self.mean))
        object.__setattr__(self, "std", check_real("std", self.std, low=0))
        if self.generator is not None and not isinstance(self.generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(self.generator).__name__}"
            )

    def _forward(self, honest: torch.Tensor, f: int) -> torch.Tensor:
        shape = (*honest.shape[:-2], f, honest.shape[-1])
        device = honest.device if self.generator is None else self.generator.device
        noise = torch.randn(shape, generator=self.generator, device=device, dtype=honest.dtype)
        return (noise * self.std + self.mean).to(honest.device)

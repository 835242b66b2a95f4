"""The attack contract shared by every attack: input conversion, checks and the f = 0 case.

An attack is a callable object ``attack(honest, f)``: ``honest`` has shape ``(..., h, d)`` (h
honest vectors of dimension d, any leading batch dimensions such as rounds × seeds) and the
result holds the ``f`` Byzantine vectors, shape ``(..., f, d)``, with the dtype and device of
``honest``. Subclasses implement :meth:`Attack._forward`, which only ever sees a validated
floating tensor and ``f ≥ 1``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import torch

from trilemma._validation import check_int

__all__ = ["Attack", "Rule"]

Rule = Callable[[torch.Tensor], torch.Tensor]
"""An aggregation rule: any callable mapping ``(..., n, d)`` to ``(..., d)``."""


def as_honest(honest: Any) -> torch.Tensor:
    """Return ``honest`` as a floating tensor of shape ``(..., h, d)`` with ``h ≥ 1``.

    numpy arrays and nested sequences are converted with :func:`torch.as_tensor` (no copy when
    possible).
    """
    x = honest if isinstance(honest, torch.Tensor) else torch.as_tensor(honest)
    if not x.is_floating_point():
        raise TypeError(f"honest must have a floating dtype, got {x.dtype}")
    if x.ndim < 2:
        raise ValueError(
            f"honest must have shape (..., h, d) with ndim >= 2, got shape {tuple(x.shape)}"
        )
    if x.shape[-2] < 1:
        raise ValueError(
            f"honest must hold h >= 1 vectors along dim -2, got shape {tuple(x.shape)}"
        )
    return x


def replicate(vector: torch.Tensor, f: int) -> torch.Tensor:
    """Stack ``f`` copies of ``vector`` (shape ``(..., d)``) into a new ``(..., f, d)`` tensor."""
    return vector.unsqueeze(-2).expand(*vector.shape[:-1], f, vector.shape[-1]).clone()


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype for linear algebra: half precisions are promoted to float32 (no eigh/svd kernels)."""
    return torch.promote_types(dtype, torch.float32)


class Attack(abc.ABC):
    """Base class of the attacks: ``attack(honest, f)`` returns the f Byzantine vectors.

    Parameters of an attack are set at construction; calling it checks the input (floating
    ``honest`` of shape ``(..., h, d)``, integer ``f ≥ 0``), returns an empty ``(..., 0, d)``
    tensor when ``f = 0`` and otherwise delegates to :meth:`_forward`.
    """

    __slots__ = ()

    def __call__(self, honest: Any, f: int) -> torch.Tensor:
        """Return the ``f`` Byzantine vectors, shape ``(..., f, d)``, given ``honest``.

        Parameters
        ----------
        honest : torch.Tensor or numpy.ndarray
            Honest vectors, shape ``(..., h, d)``, floating dtype.
        f : int
            Number of Byzantine vectors to produce (≥ 0).

        Returns
        -------
        torch.Tensor
            Shape ``(..., f, d)``, same dtype and device as ``honest``.

        Raises
        ------
        TypeError
            If ``honest`` is not floating or ``f`` is not an integer.
        ValueError
            If ``honest`` has fewer than 2 dimensions or no vector, or ``f < 0``.
        """
        x = as_honest(honest)
        f = check_int("f", f, low=0)
        if f == 0:
            return x.new_empty((*x.shape[:-2], 0, x.shape[-1]))
        return self._forward(x, f)

    @abc.abstractmethod
    def _forward(self, honest: torch.Tensor, f: int) -> torch.Tensor:
        """The f Byzantine vectors for validated honest vectors and f ≥ 1."""

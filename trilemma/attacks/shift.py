"""Shift along one direction: x̄_H + τ·u, u given or the top principal direction of the honest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from trilemma._validation import check_choice, check_real
from trilemma.attacks._base import Attack, as_honest, compute_dtype, replicate

__all__ = ["ShiftAttack", "top_principal_direction"]

DirectionMethod = Literal["auto", "eigh", "svd"]
_METHODS = ("auto", "eigh", "svd")


def top_principal_direction(honest: Any, *, method: DirectionMethod = "auto") -> torch.Tensor:
    """Unit top eigenvector of the empirical covariance of the honest vectors, batched.

    With X_c the centred honest vectors (rows x_i − x̄_H), the direction maximises ‖X_c u‖ over
    unit u. ``"eigh"`` takes the last eigenvector of the d × d matrix X_cᵀX_c
    (:func:`torch.linalg.eigh`, eigenvalues ascending), ``"svd"`` the first right singular
    vector of the h × d matrix X_c (:func:`torch.linalg.svd`, reduced); ``"auto"`` uses eigh when
    d ≤ h (the d × d matrix is no larger than the data) and svd otherwise. Half precisions are
    computed in float32.

    The sign of an eigenvector is arbitrary; it is fixed so that the coordinate of largest
    absolute value is positive (first such coordinate on ties), making the result independent of
    the method and the backend. When the top eigenvalue is repeated (e.g. all honest vectors
    equal) the direction is any unit vector of its eigenspace.

    Parameters
    ----------
    honest : torch.Tensor or numpy.ndarray
        Shape ``(..., h, d)``, floating.
    method : {"auto", "eigh", "svd"}
        Decomposition used.

    Returns
    -------
    torch.Tensor
        Shape ``(..., d)``, unit norm, dtype and device of ``honest``.

    Examples
    --------
    Points spread along the second axis:

    >>> import torch
    >>> honest = torch.tensor([[0.0, -2.0], [0.1, 0.0], [0.0, 2.0]], dtype=torch.float64)
    >>> top_principal_direction(honest).abs().round(decimals=6)
    tensor([0., 1.], dtype=torch.float64)
    """
    x = as_honest(honest)
    check_choice("method", method, _METHODS)
    h, d = x.shape[-2], x.shape[-1]
    if method == "auto":
        method = "eigh" if d <= h else "svd"
    centred = (x - x.mean(dim=-2, keepdim=True)).to(compute_dtype(x.dtype))
    if method == "eigh":
        u = torch.linalg.eigh(centred.mT @ centred).eigenvectors[..., -1]
    else:
        u = torch.linalg.svd(centred, full_matrices=False).Vh[..., 0, :]
    pivot = u.gather(-1, u.abs().argmax(dim=-1, keepdim=True))
    # pivot is the largest |coordinate| of a unit vector, hence never zero
    return (u * torch.sign(pivot)).to(x.dtype)


@dataclass(frozen=True, slots=True, eq=False, kw_only=True)
class ShiftAttack(Attack):
    """Shift along one direction: every Byzantine vector is x̄_H + τ·u.

    Parameters
    ----------
    tau : float
        Length of the shift τ (finite, any sign; default 1).
    direction : array-like or None
        Direction u, shape ``(d,)`` or broadcastable to ``(..., d)`` (one direction per batch
        element); it is normalised to unit Euclidean norm along its last dimension. ``None``
        (default) uses :func:`top_principal_direction` of the honest vectors, the direction of
        largest honest spread.
    method : {"auto", "eigh", "svd"}
        Decomposition used when ``direction`` is None.

    Raises
    ------
    ValueError
        If ``tau`` is not finite, ``direction`` has a zero or non-finite norm, or (when
        called) its last dimension is not d or its batch shape does not broadcast.
    TypeError
        If ``direction`` is not floating.

    Examples
    --------
    >>> import torch
    >>> honest = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    >>> ShiftAttack(tau=2.0, direction=[3.0, 4.0])(honest, f=1)
    tensor([[3.2000, 5.6000]])

    Notes
    -----
    The one-direction shift is the shape of the lower-bound constructions (e.g. the scalar
    construction of κ ≥ f/(n − 2f), THEORY.md §1); experiments sweep τ along u.
    """

    tau: float = 1.0
    direction: Any = None
    method: DirectionMethod = "auto"
    _unit: torch.Tensor | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau", check_real("tau", self.tau))
        check_choice("method", self.method, _METHODS)
        if self.direction is None:
            return
        u = torch.as_tensor(self.direction)
        if not u.is_floating_point():
            raise TypeError(f"direction must have a floating dtype, got {u.dtype}")
        if u.ndim < 1 or u.shape[-1] < 1:
            raise ValueError(f"direction must have shape (..., d), got {tuple(u.shape)}")
        u = u.to(torch.float64)
        norm = torch.linalg.vector_norm(u, dim=-1, keepdim=True)
        if not bool((torch.isfinite(norm) & (norm > 0)).all()):
            raise ValueError("direction must have a finite, non-zero norm along its last dim")
        object.__setattr__(self, "_unit", u / norm)

    def _forward(self, honest: torch.Tensor, f: int) -> torch.Tensor:
        mean = honest.mean(dim=-2)
        if self._unit is None:
            u = top_principal_direction(honest, method=self.method)
        else:
            u = self._unit.to(device=honest.device, dtype=honest.dtype)
            try:
                torch.broadcast_shapes(u.shape, mean.shape)
            except RuntimeError:
                raise ValueError(
                    f"direction of shape {tuple(u.shape)} does not broadcast with the honest "
                    f"mean of shape {tuple(mean.shape)} (need last dim d={mean.shape[-1]})"
                ) from None
            if u.shape[-1] != mean.shape[-1]:
                raise ValueError(
                    f"direction has last dim {u.shape[-1]}, honest vectors have d={mean.shape[-1]}"
                )
        shifted = mean + self.tau * u
        return replicate(shifted.expand(torch.broadcast_shapes(shifted.shape, mean.shape)), f)

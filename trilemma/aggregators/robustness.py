"""Empirical robustness constants κ̂ of a rule, measured on tensors of worker vectors.

For worker vectors x of shape ``(..., n, d)`` and an honest set H,

    κ̂ = ‖F(x) − x̄_H‖² / ((1/|H|) Σ_{i∈H} ‖x_i − x̄_H‖²)          (no square root)

and the spectral κ̂_sp divides by λ_max(Σ_H) instead, Σ_H = (1/|H|) Σ_H (x_i − x̄_H)(x_i − x̄_H)ᵀ.
An (f, κ)-robust rule has κ̂ ≤ κ on every input with |H| = n − f (Allouah et al., AISTATS 2023,
arXiv:2302.01772); the claimed constants are in :mod:`trilemma.bounds.robustness`, and the max of
κ̂ over rounds and attacks is the empirical κ of a run.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from trilemma.aggregators._base import as_vectors

__all__ = ["empirical_kappa", "empirical_spectral_kappa"]


def _honest_mask(honest: object, x: torch.Tensor) -> torch.Tensor:
    """Boolean ``(..., n)`` mask of the honest rows from an index tensor or a boolean mask."""
    n = x.shape[-2]
    batch = x.shape[:-2]
    index = torch.as_tensor(honest, device=x.device)
    if index.dtype == torch.bool:
        if index.ndim == 0 or index.shape[-1] != n:
            raise ValueError(
                f"honest mask must have shape (..., n) with n={n}, got {tuple(index.shape)}"
            )
        mask = index
    elif not index.is_floating_point() and not index.is_complex():
        if index.ndim == 0:
            index = index.reshape(1)
        if index.numel() and (bool((index < 0).any()) or bool((index >= n).any())):
            raise ValueError(f"honest indices must lie in [0, {n - 1}], got {index.tolist()}")
        mask = torch.zeros((*index.shape[:-1], n), dtype=torch.bool, device=x.device)
        mask = mask.scatter(-1, index.long(), True)
        if bool((mask.sum(-1) != index.shape[-1]).any()):
            raise ValueError(f"honest indices must be distinct, got {index.tolist()}")
    else:
        raise TypeError(
            f"honest must be an integer index tensor or a boolean mask, got {index.dtype}"
        )
    try:
        mask = torch.broadcast_to(mask, (*batch, n))
    except RuntimeError as error:
        raise ValueError(
            f"honest of shape {tuple(mask.shape)} does not broadcast to x's {(*batch, n)}"
        ) from error
    if bool((mask.sum(-1) == 0).any()):
        raise ValueError("honest must select at least one row of x")
    return mask


def _honest_stats(
    rule: Callable[[torch.Tensor], torch.Tensor], x: object, honest: object
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared error ‖F(x) − x̄_H‖² ``(...,)``, centred honest rows ``(..., n, d)`` (zero
    elsewhere), the honest count ``(..., 1)`` and the rule's output."""
    vectors = as_vectors(x)
    mask = _honest_mask(honest, vectors)
    zero = torch.zeros((), dtype=vectors.dtype, device=vectors.device)
    keep = mask.unsqueeze(-1)
    # torch.where, not a product: a NaN or ±inf Byzantine row times 0 would still be NaN
    clean = torch.where(keep, vectors, zero)
    count = mask.sum(-1, keepdim=True).to(vectors.dtype)
    mean = clean.sum(-2) / count
    centred = torch.where(keep, vectors - mean.unsqueeze(-2), zero)
    output = torch.as_tensor(rule(vectors))
    if output.shape != mean.shape:
        raise ValueError(
            f"rule must map x of shape {tuple(vectors.shape)} to {tuple(mean.shape)}, "
            f"got {tuple(output.shape)}"
        )
    error = ((output.to(mean.dtype) - mean) ** 2).sum(-1)
    # a non-finite aggregate is an unbounded error, whatever the honest spread
    error = torch.where(torch.isnan(error), torch.inf, error)
    return error, centred, count, output


def _ratio(error: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """error / scale with 0/0 = 0 and e/0 = inf for e > 0."""
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    ratio = error / safe
    degenerate = torch.where(error > 0, torch.inf, 0.0).to(ratio.dtype)
    return torch.where(scale > 0, ratio, degenerate)


def empirical_kappa(
    rule: Callable[[torch.Tensor], torch.Tensor], x: object, honest: object
) -> torch.Tensor:
    """κ̂ = ‖F(x) − x̄_H‖² / ((1/|H|) Σ_{i∈H} ‖x_i − x̄_H‖²) per batch element.

    The empirical counterpart of (f, κ)-robustness (THEORY §1; Allouah et al., AISTATS 2023,
    arXiv:2302.01772): for an (f, κ)-robust F and |H| = n − f, κ̂ ≤ κ on every input. Ratio of
    squared norms, no square root. Degenerate honest sets: 0/0 = 0 and e/0 = +inf for e > 0.
    A non-finite aggregate counts as an infinite error; Byzantine rows may hold NaN or ±inf.

    Parameters
    ----------
    rule : callable
        Maps ``(..., n, d)`` to ``(..., d)``, e.g. ``aggregators.get("cwtm", f=2)``.
    x : torch.Tensor or numpy array, shape ``(..., n, d)``
        All worker vectors, honest and Byzantine.
    honest : index tensor ``(h,)`` / ``(..., h)`` or boolean mask ``(n,)`` / ``(..., n)``
        The honest rows H (``|H| = n − f`` in the definition); broadcast over the batch.

    Returns
    -------
    torch.Tensor, shape ``(...)``
        κ̂ per batch element, dtype and device of ``x``.

    Raises
    ------
    ValueError
        If ``honest`` is empty, out of range, repeated or of the wrong shape, or the rule's
        output does not have shape ``(..., d)``.

    Examples
    --------
    The two-point instance of :func:`trilemma.bounds.kappa_lower_bound` (n = 5, f = 1): the
    median outputs 0, which on H = {0, 0, 0, 1} attains f/(n − 2f) = 1/3.

    >>> import torch
    >>> from trilemma.aggregators import CWMed
    >>> x = torch.tensor([[0.0], [0.0], [0.0], [0.0], [1.0]], dtype=torch.float64)
    >>> empirical_kappa(CWMed(f=1), x, torch.tensor([1, 2, 3, 4]))
    tensor(0.3333, dtype=torch.float64)
    >>> empirical_kappa(CWMed(f=1), x, torch.tensor([True, True, True, True, False]))
    tensor(0., dtype=torch.float64)
    """
    error, centred, count, _ = _honest_stats(rule, x, honest)
    variance = (centred**2).sum(dim=(-2, -1)) / count.squeeze(-1)
    return _ratio(error, variance)


def empirical_spectral_kappa(
    rule: Callable[[torch.Tensor], torch.Tensor], x: object, honest: object
) -> torch.Tensor:
    """κ̂_sp = ‖F(x) − x̄_H‖² / λ_max(Σ_H) per batch element, Σ_H the honest empirical
    covariance (normalised by |H|).

    The empirical counterpart of spectral robustness (THEORY §1; Allouah et al., ICML 2023,
    arXiv:2302.04787): SMEA has κ̂_sp ≤ 4f/(n − 2f) (:func:`trilemma.bounds.smea_spectral_kappa`).
    λ_max comes from the n × n Gram matrix of the centred honest rows (zeros elsewhere), whose
    non-zero spectrum is that of |H| · Σ_H [D], so no d × d matrix is formed. Always
    κ̂_sp ≥ κ̂ since λ_max ≤ tr Σ_H. Degenerate cases and arguments as in
    :func:`empirical_kappa`.

    Examples
    --------
    >>> import torch
    >>> from trilemma.aggregators import SMEA
    >>> x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0], [9.0, 9.0]],
    ...                  dtype=torch.float64)
    >>> empirical_spectral_kappa(SMEA(f=1), x, torch.tensor([0, 1, 2, 3]))
    tensor(0., dtype=torch.float64)
    """
    error, centred, count, _ = _honest_stats(rule, x, honest)
    gram = centred @ centred.mT
    top = torch.linalg.eigvalsh(gram)[..., -1].clamp_min(0.0) / count.squeeze(-1)
    return _ratio(error, top)

"""Label flipping: the Byzantine workers compute honest gradients on flipped labels.

The gradients themselves need the model and the data, so they belong to the training runner
(:mod:`trilemma.dgd`). This module provides the label map that runner applies to a Byzantine
worker's batch before its forward/backward pass: y ↦ K − 1 − y, and :class:`LabelFlipping`,
what :func:`trilemma.attacks.resolve` answers for ``"label_flipping"``, which builds the
Byzantine workers' poisoned data (:meth:`LabelFlipping.poison`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trilemma._validation import check_int

__all__ = ["LabelFlipping", "flip_labels"]


def flip_labels(y: Any, num_classes: int, *, validate: bool = True) -> torch.Tensor:
    """Map every class label y ∈ {0, …, K − 1} to K − 1 − y.

    This is the hook the D-GD/D-SGD runner calls on a Byzantine worker's labels: the worker
    then computes its gradient on ``(x, flip_labels(y, K))`` as an honest worker would.

    Parameters
    ----------
    y : torch.Tensor or numpy.ndarray
        Integer labels, any shape.
    num_classes : int
        Number of classes K ≥ 1.
    validate : bool
        Check that every label lies in [0, K − 1] (default True). The check reads one boolean
        back from the device; pass False inside a hot loop once the data are known to be valid.

    Returns
    -------
    torch.Tensor
        K − 1 − y, same shape, dtype and device as ``y``.

    Raises
    ------
    TypeError
        If ``y`` is not an integer tensor (floating or bool).
    ValueError
        If ``num_classes < 1``, or (with ``validate``) a label lies outside [0, K − 1].

    Examples
    --------
    >>> import torch
    >>> flip_labels(torch.tensor([0, 1, 9, 3]), 10)
    tensor([9, 8, 0, 6])

    References
    ----------
    Allouah, Farhadkhani, Guerraoui, Gupta, Pinot, Stephan, "Fixing by Mixing: A Recipe for
    Optimal Byzantine ML under Heterogeneity", AISTATS 2023, arXiv:2302.01772 (attack "LF").
    """
    labels = y if isinstance(y, torch.Tensor) else torch.as_tensor(y)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"y must hold integer labels, got dtype {labels.dtype}")
    k = check_int("num_classes", num_classes, low=1)
    if validate and labels.numel() > 0:
        bad = (labels < 0) | (labels >= k)
        if bool(bad.any()):
            first = int(labels[bad].flatten()[0])
            raise ValueError(f"y contains label {first}; labels must lie in [0, {k - 1}]")
    return (k - 1) - labels


@dataclass(frozen=True)
class LabelFlipping:
    """Data poisoning by label flipping: the Byzantine workers send honest gradients computed on
    data whose labels went through :func:`flip_labels` (Allouah et al., AISTATS 2023,
    arXiv:2302.01772, attack "LF").

    Not an :class:`~trilemma.attacks.Attack` (which maps honest vectors to Byzantine ones): the
    caller that holds the data builds the Byzantine workers' data with :meth:`poison`, e.g.
    :class:`trilemma.dgd.RobustDGD` from the data of its first f honest workers.

    Examples
    --------
    >>> import torch
    >>> LabelFlipping().flip(torch.tensor([0, 2]), 3)
    tensor([2, 0])
    >>> labels = torch.tensor([[0, 1], [2, 2], [1, 0]])
    >>> x, y = LabelFlipping().poison(torch.zeros(3, 2, 4), labels, 3, f=2)
    >>> x.shape, y
    (torch.Size([2, 2, 4]), tensor([[2, 1],
            [0, 0]]))
    """

    def flip(self, y: Any, num_classes: int) -> torch.Tensor:
        """Labels y ↦ K − 1 − y (:func:`flip_labels`)."""
        return flip_labels(y, num_classes)

    def poison(
        self, features: torch.Tensor, labels: torch.Tensor, num_classes: int, *, f: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The data of f Byzantine workers: that of honest workers 0, …, f − 1 (cyclically when
        f exceeds the h honest workers), labels y ↦ K − 1 − y.

        Parameters
        ----------
        features : torch.Tensor
            The honest workers' inputs, ``(h, m, ...)``.
        labels : torch.Tensor
            Their integer labels, ``(h, m)``.
        num_classes : int
            K ≥ 1.
        f : int
            Byzantine workers, ≥ 0.

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            Inputs ``(f, m, ...)`` and flipped labels ``(f, m)``.
        """
        f = check_int("f", f, low=0)
        rows = torch.arange(f) % features.shape[0]
        return features[rows], flip_labels(labels[rows], num_classes)

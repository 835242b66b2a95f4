"""Coordinate-wise rules: mean, median, trimmed mean, mean around the median.

Definitions follow Yin et al., ICML 2018 (arXiv:1803.01498; CWMed and CWTM) and Xie et al. 2018
(arXiv:1802.10116; Meamed). The (f, κ)-robustness constants are in
:mod:`trilemma.bounds.robustness`.
"""

from __future__ import annotations

import torch

from trilemma.aggregators._base import Aggregator
from trilemma.aggregators._sorted import sorted_reduce

__all__ = ["CWTM", "CWMed", "Meamed", "Mean"]


class Mean(Aggregator):
    """Plain average: not robust, and non-finite as soon as one input is.

    Examples
    --------
    >>> import torch
    >>> Mean()(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    tensor([2., 3.])
    """

    name = "mean"
    finite_under_garbage = False

    def min_workers(self) -> int:
        return 1 if self.f == 0 else 2 * self.f + 1

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=-2)


class CWMed(Aggregator):
    """Coordinate-wise median; for even n the mean of the two middle values.

    Examples
    --------
    >>> import torch
    >>> CWMed(f=1)(torch.tensor([[0.0], [1.0], [100.0], [2.0]]))
    tensor([1.5000])
    """

    name = "cwmed"

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        return sorted_reduce(x, mode="trimmed", lo=(n - 1) // 2, hi=n // 2 + 1)


class CWTM(Aggregator):
    """Coordinate-wise trimmed mean: per coordinate, drop the f largest and f smallest values
    and average the n − 2f others.

    Examples
    --------
    >>> import torch
    >>> CWTM(f=1)(torch.tensor([[-50.0], [1.0], [2.0], [3.0], [1e30]]))
    tensor([2.])
    """

    name = "cwtm"

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        return sorted_reduce(x, mode="trimmed", lo=self.f, hi=n - self.f)


class Meamed(Aggregator):
    """Mean around the median: per coordinate, the average of the n − f values closest to the
    coordinate-wise median (leftmost window on ties).

    Examples
    --------
    >>> import torch
    >>> Meamed(f=1)(torch.tensor([[0.0], [1.0], [2.0], [10.0]]))
    tensor([1.])
    """

    name = "meamed"

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        return sorted_reduce(x, mode="window", k=x.shape[-2] - self.f)

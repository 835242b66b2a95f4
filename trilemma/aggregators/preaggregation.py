"""Pre-aggregations: nearest-neighbour mixing (NNM), bucketing, adaptive (ARC) and static
clipping. Compose them with a rule: ``NNM(f=2) >> CWTM(f=2)``."""

from __future__ import annotations

import torch

from trilemma._validation import check_int, check_real
from trilemma.aggregators._base import PreAggregator
from trilemma.aggregators._garbage import garbage_rows, pairwise_sq_distances, zero_garbage

__all__ = ["ARC", "NNM", "Bucketing", "Clipping"]


class NNM(PreAggregator):
    """Nearest-neighbour mixing (Allouah et al., AISTATS 2023, arXiv:2302.01772, Alg. 1): every
    vector is replaced by the mean of its n − f nearest neighbours, itself included.
    NNM ∘ F is (f, κ')-robust with κ' ≤ (8f/(n − f))(κ_F + 1) [their Thm. 1]. Garbage rows stay
    garbage (NaN) so the rule that follows discards them.

    Examples
    --------
    >>> import torch
    >>> NNM(f=1)(torch.tensor([[0.0], [1.0], [2.0], [30.0]])).ravel()
    tensor([ 1.,  1.,  1., 11.])
    """

    name = "nnm"

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        garbage = garbage_rows(x)
        distances = pairwise_sq_distances(x, garbage)
        nearest = torch.topk(distances, n - self.f, dim=-1, largest=False).indices
        mixing = torch.zeros(distances.shape, dtype=x.dtype, device=x.device)
        mixing.scatter_(-1, nearest, 1.0 / (n - self.f))
        mixed = mixing @ zero_garbage(x, garbage)
        return mixed.masked_fill(garbage.unsqueeze(-1), torch.nan)


class Bucketing(PreAggregator):
    """Bucketing (Karimireddy, He, Jaggi, ICLR 2022, arXiv:2006.09365, Alg. 1): shuffle the n
    vectors and average them in ⌈n/s⌉ buckets of size s (the last one holds the remainder).
    The shuffle uses ``generator`` (one permutation per batch element).

    Examples
    --------
    >>> import torch
    >>> Bucketing(s=2, generator=torch.Generator().manual_seed(0))(torch.ones(5, 3)).shape
    torch.Size([3, 3])
    """

    name = "bucketing"

    def __init__(self, f: int = 0, *, s: int = 2, generator: torch.Generator | None = None):
        super().__init__(f)
        self.s = check_int("s", s, low=1)
        self.generator = generator

    def output_workers(self, n: int) -> int:
        return -(-n // self.s)

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        keys = torch.rand(x.shape[:-1], generator=self.generator, dtype=torch.float64)
        order = torch.argsort(keys.to(x.device), dim=-1)
        buckets = self.output_workers(n)
        # bucket of each worker: position j of the shuffle goes to bucket j // s; the
        # membership matrix then averages without a shuffled copy of x
        labels = (torch.arange(n, device=x.device) // self.s).expand_as(order)
        bucket_of = torch.empty_like(order).scatter_(-1, order, labels)
        ids = torch.arange(buckets, device=x.device).unsqueeze(-1)
        membership = (bucket_of.unsqueeze(-2) == ids).to(x.dtype)
        counts = membership.sum(dim=-1, keepdim=True)
        garbage = garbage_rows(x)
        sums = membership @ zero_garbage(x, garbage)
        spoiled = (membership @ garbage.to(x.dtype).unsqueeze(-1)) > 0
        return (sums / counts).masked_fill(spoiled, torch.nan)


def _row_norms(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row norms (garbage rows: +inf) and the garbage mask, from one pass over ``x``."""
    norm = torch.linalg.vector_norm(x, dim=-1)
    garbage = ~torch.isfinite(norm * norm)
    return norm.masked_fill(garbage, torch.inf), garbage


def _clip_rows(
    x: torch.Tensor, threshold: torch.Tensor, norm: torch.Tensor, garbage: torch.Tensor
) -> torch.Tensor:
    """Scale rows of norm above ``threshold`` (broadcast over rows) down to it; garbage → 0."""
    factor = torch.clamp(threshold / norm.clamp_min(torch.finfo(x.dtype).tiny), max=1.0)
    clipped = x * factor.unsqueeze(-1)
    if bool(garbage.any()):  # inf · 0 is NaN: zero those rows explicitly
        clipped = clipped.masked_fill(garbage.unsqueeze(-1), 0.0)
    return clipped


class Clipping(PreAggregator):
    """Static clipping: x ← x · min(1, c/‖x‖). Rows with non-finite entries become 0.

    Examples
    --------
    >>> import torch
    >>> Clipping(c=1.0)(torch.tensor([[3.0, 4.0], [0.3, 0.4]]))
    tensor([[0.6000, 0.8000],
            [0.3000, 0.4000]])
    """

    name = "clip"

    def __init__(self, f: int = 0, *, c: float = 2.0) -> None:
        super().__init__(f)
        self.c = check_real("c", c, low=0, low_open=True)

    def min_workers(self) -> int:
        return 1

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        norm, garbage = _row_norms(x)
        return _clip_rows(x, torch.tensor(self.c, dtype=x.dtype, device=x.device), norm, garbage)


class ARC(PreAggregator):
    """Adaptive robust clipping (Allouah et al., NeurIPS 2024, arXiv:2405.14432, Alg. 1):
    with k = ⌊2f(n − f)/n⌋, the k vectors of largest norm are clipped to the (k + 1)-th largest
    norm. Rows with non-finite entries count as the largest and become 0.

    Examples
    --------
    >>> import torch
    >>> ARC(f=1)(torch.tensor([[1.0], [2.0], [3.0], [40.0]])).ravel()  # k = ⌊2·1·3/4⌋ = 1
    tensor([1., 2., 3., 3.])
    """

    name = "arc"

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        k = (2 * self.f * (n - self.f)) // n
        if k == 0:
            return x
        norm, garbage = _row_norms(x)
        threshold = torch.topk(norm, k + 1, dim=-1).values[..., -1:]
        return _clip_rows(x, threshold, norm, garbage)

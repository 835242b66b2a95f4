"""Pre-aggregations: nearest-neighbour mixing (NNM), bucketing, adaptive (ARC) and static
clipping. Compose them with a rule: ``NNM(f=2) >> CWTM(f=2)``."""

from __future__ import annotations

import torch

from trilemma._validation import check_int, check_real
from trilemma.aggregators._base import PreAggregator, fresh_tensor
from trilemma.aggregators._garbage import (
    garbage_rows,
    norms_and_garbage,
    pairwise_sq_distances,
    zero_garbage,
)

__all__ = ["ARC", "NNM", "Bucketing", "Clipping"]


_GROUP_ENTRIES = 1 << 20  # rows clipped in place together: 4 MiB of float32, cache-resident
_MIXING_COLUMNS = 4096  # columns of one block of NNM's mixing product on CPU (measured best)

# In place, up to this many changed rows are scaled one by one and the others left unwritten;
# beyond it, one multiplication of the whole tensor costs less than the Python loop.
_ROW_BY_ROW = 256


def _check_inplace(inplace: object) -> bool:
    if not isinstance(inplace, bool):
        raise TypeError(f"inplace must be a bool, got {type(inplace).__name__}")
    return inplace


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
        n, d = x.shape[-2:]
        norms, garbage = norms_and_garbage(x)
        distances = pairwise_sq_distances(x, garbage, norms)
        nearest = torch.topk(distances, n - self.f, dim=-1, largest=False).indices
        mixing = torch.zeros(distances.shape, dtype=x.dtype, device=x.device)
        mixing.scatter_(-1, nearest, 1.0 / (n - self.f))
        clean = zero_garbage(x, garbage)
        # the (n, n) × (n, d) product in column blocks: 1.8× faster than one call at d = 1e6
        mixed = fresh_tensor(clean.shape, like=x)
        step = d if x.device.type != "cpu" else _MIXING_COLUMNS
        for start in range(0, d, step):
            columns = slice(start, start + step)
            torch.matmul(mixing, clean[..., columns], out=mixed[..., columns])
        if bool(garbage.any()):  # in place: the product is already a fresh tensor
            mixed.masked_fill_(garbage.unsqueeze(-1), torch.nan)
        return mixed


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
        n, d = x.shape[-2:]
        keys = torch.rand(x.shape[:-1], generator=self.generator, dtype=torch.float64)
        order = torch.argsort(keys.to(x.device), dim=-1)
        buckets = self.output_workers(n)
        # bucket of each worker: position j of the shuffle goes to bucket j // s; each row is
        # then added to its bucket (one read of x, no shuffled copy, no n × n/s product)
        labels = (torch.arange(n, device=x.device) // self.s).expand_as(order)
        bucket_of = torch.empty_like(order).scatter_(-1, order, labels)
        offsets = buckets * torch.arange(bucket_of[..., 0].numel(), device=x.device)
        target = (bucket_of.reshape(-1, n) + offsets.unsqueeze(-1)).reshape(-1)
        sums = fresh_tensor((offsets.numel() * buckets, d), like=x).zero_()
        sums.index_add_(0, target, x.reshape(-1, d))
        counts = torch.full((buckets,), float(self.s), dtype=x.dtype, device=x.device)
        counts[-1] = n - self.s * (buckets - 1)
        means = sums.reshape(*x.shape[:-2], buckets, d).div_(counts.unsqueeze(-1))
        garbage = garbage_rows(x)
        if bool(garbage.any()):  # a bucket with a garbage member is garbage (NaN)
            members = torch.zeros((*x.shape[:-2], buckets), dtype=x.dtype, device=x.device)
            spoiled = members.scatter_add_(-1, bucket_of, garbage.to(x.dtype)) > 0
            means.masked_fill_(spoiled.unsqueeze(-1), torch.nan)
        return means


def _row_norms(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row norms (garbage rows: +inf) and the garbage mask, from one pass over ``x``."""
    norm = torch.linalg.vector_norm(x, dim=-1)
    garbage = ~torch.isfinite(norm * norm)
    return norm.masked_fill(garbage, torch.inf), garbage


def _clip_rows(
    x: torch.Tensor,
    threshold: torch.Tensor,
    norm: torch.Tensor,
    garbage: torch.Tensor,
    *,
    inplace: bool,
    skip_unchanged: bool = True,
) -> torch.Tensor:
    """Scale rows of norm above ``threshold`` (broadcast over rows) down to it; garbage → 0.

    With ``inplace``, ``x`` is scaled in place (one read and one write, no allocation: on CPU
    that is ~10× cheaper than writing a fresh tensor, whose pages the OS must first provide)
    and returned; otherwise a new tensor. In place with ``skip_unchanged``, when at most
    ``_ROW_BY_ROW`` rows change only those are written (one call per row).
    """
    factor = torch.clamp(threshold / norm.clamp_min(torch.finfo(x.dtype).tiny), max=1.0)
    if inplace and skip_unchanged and x.is_contiguous():
        flat, scale = x.view(-1, x.shape[-1]), factor.reshape(-1)
        spoiled = garbage.reshape(-1)
        rows = torch.nonzero((scale < 1.0) | spoiled).squeeze(-1)
        if rows.numel() <= _ROW_BY_ROW:  # few rows change (ARC): write only those, as byzfl
            for row, bad in zip(rows.tolist(), spoiled[rows].tolist(), strict=True):
                if bad:  # inf · 0 is NaN: garbage rows are zeroed, not scaled
                    flat[row].zero_()
                else:
                    flat[row].mul_(scale[row])
            return x
    scale = factor.unsqueeze(-1)
    clipped = x.mul_(scale) if inplace else torch.mul(x, scale, out=fresh_tensor(x.shape, x))
    if bool(garbage.any()):  # inf · 0 is NaN: zero those rows explicitly
        clipped.masked_fill_(garbage.unsqueeze(-1), 0.0)
    return clipped


class Clipping(PreAggregator):
    """Static clipping: x ← x · min(1, c/‖x‖). Rows with non-finite entries become 0.

    ``inplace=True`` overwrites the caller's tensor (or numpy array) and returns it, as byzfl
    does (no new (n, d) tensor is allocated). By default the input is left untouched and a
    new tensor is returned.

    Examples
    --------
    >>> import torch
    >>> Clipping(c=1.0)(torch.tensor([[3.0, 4.0], [0.3, 0.4]]))
    tensor([[0.6000, 0.8000],
            [0.3000, 0.4000]])
    """

    name = "clip"

    def __init__(self, f: int = 0, *, c: float = 2.0, inplace: bool = False) -> None:
        super().__init__(f)
        self.c = check_real("c", c, low=0, low_open=True)
        self.inplace = _check_inplace(inplace)

    def min_workers(self) -> int:
        return 1

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        threshold = torch.tensor(self.c, dtype=x.dtype, device=x.device)
        if self.inplace and x.is_contiguous() and x.device.type == "cpu":
            # rows in cache-sized groups: each is still cached when it is scaled after its norm
            flat = x.view(-1, x.shape[-1])
            step = max(1, _GROUP_ENTRIES // max(1, x.shape[-1]))
            for start in range(0, flat.shape[0], step):
                rows = flat[start : start + step]
                norm, garbage = _row_norms(rows)
                _clip_rows(rows, threshold, norm, garbage, inplace=True, skip_unchanged=False)
            return x
        norm, garbage = _row_norms(x)
        return _clip_rows(x, threshold, norm, garbage, inplace=self.inplace)


class ARC(PreAggregator):
    """Adaptive robust clipping (Allouah et al., NeurIPS 2024, arXiv:2405.14432, Alg. 1):
    with k = ⌊2f(n − f)/n⌋, the k vectors of largest norm are clipped to the (k + 1)-th largest
    norm. Rows with non-finite entries count as the largest and become 0.

    ``inplace=True`` overwrites the caller's tensor (or numpy array) and returns it, as byzfl
    does (no new (n, d) tensor is allocated; rows below the threshold are multiplied by 1).
    By default the input is left untouched and a new tensor is returned.

    Examples
    --------
    >>> import torch
    >>> ARC(f=1)(torch.tensor([[1.0], [2.0], [3.0], [40.0]])).ravel()  # k = ⌊2·1·3/4⌋ = 1
    tensor([1., 2., 3., 3.])
    """

    name = "arc"

    def __init__(self, f: int = 0, *, inplace: bool = False) -> None:
        super().__init__(f)
        self.inplace = _check_inplace(inplace)

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        k = (2 * self.f * (n - self.f)) // n
        if k == 0:
            return x
        norm, garbage = _row_norms(x)
        threshold = torch.topk(norm, k + 1, dim=-1).values[..., -1:]
        return _clip_rows(x, threshold, norm, garbage, inplace=self.inplace)

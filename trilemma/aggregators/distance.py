"""Distance-based rules: Krum, Multi-Krum, MDA, Bulyan, MoNNA.

All go through one matrix of squared pairwise distances computed from a Gram matrix (one BLAS
call), with garbage rows infinitely far from everything.
"""

from __future__ import annotations

from typing import Literal, cast

import numba
import numpy as np
import torch

from trilemma._validation import check_choice, check_int
from trilemma.aggregators._base import Aggregator
from trilemma.aggregators._garbage import (
    affine_pass,
    garbage_rows,
    norms_and_garbage,
    pairwise_sq_distances,
    zero_garbage,
)
from trilemma.aggregators._sorted import sorted_reduce
from trilemma.aggregators._subsets import subset_diameters, subsets

__all__ = ["MDA", "Bulyan", "Krum", "MoNNA", "MultiKrum", "krum_scores"]

Neighbours = Literal["n-f-2", "n-f-1"]


def _mean_of_rows(x: torch.Tensor, rows: torch.Tensor, garbage: torch.Tensor) -> torch.Tensor:
    """Mean of ``x[..., rows, :]`` for index tensors ``rows`` of shape ``(..., m)``, as one
    weight-row product (no gathered copy). The chosen rows are never garbage, so garbage rows
    are zeroed first (0 · NaN would poison the product)."""
    weights = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    weights.scatter_(-1, rows, 1.0 / rows.shape[-1])
    return (weights.unsqueeze(-2) @ zero_garbage(x, garbage)).squeeze(-2)


def krum_scores(distances: torch.Tensor, f: int, neighbours: Neighbours = "n-f-2") -> torch.Tensor:
    """Krum scores ``(..., n)``: sum of squared distances to the closest n − f − 2 (or n − f − 1)
    other vectors (Blanchard et al., NeurIPS 2017, arXiv:1703.02757, Sec. 4)."""
    n = distances.shape[-1]
    count = n - f - (2 if neighbours == "n-f-2" else 1)
    others = distances.masked_fill(
        torch.eye(n, dtype=torch.bool, device=distances.device), torch.inf
    )
    return torch.topk(others, max(count, 1), dim=-1, largest=False).values.sum(dim=-1)


class Krum(Aggregator):
    """Krum: the vector whose ``n − f − 2`` nearest neighbours are closest (sum of squared
    distances); Blanchard et al., NeurIPS 2017 (arXiv:1703.02757), which needs n ≥ 2f + 3.
    ``neighbours="n-f-1"`` selects the convention of byzfl (2f < n). Ties go to the lowest
    index.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0], [0.1], [0.2], [0.3], [9.0]])
    >>> Krum(f=1)(x)
    tensor([0.1000])
    """

    name = "krum"

    def __init__(self, f: int = 0, *, neighbours: Neighbours = "n-f-2") -> None:
        super().__init__(f)
        self.neighbours = cast(
            Neighbours, check_choice("neighbours", neighbours, ("n-f-2", "n-f-1"))
        )

    def min_workers(self) -> int:
        # Blanchard et al. assume n > 2f + 2; below it, f equal Byzantine vectors can win
        # (counterexample n = 5, f = 2 in tests/aggregators/test_kappa_search.py).
        if self.neighbours == "n-f-2":
            return 2 * self.f + 3
        return max(2 * self.f + 1, self.f + 2)

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        norms, garbage = norms_and_garbage(x)
        scores = krum_scores(pairwise_sq_distances(x, garbage, norms), self.f, self.neighbours)
        # the winner is never a garbage row: a copy of that one row, nothing else is read
        best = scores.argmin(dim=-1, keepdim=True).unsqueeze(-1)
        return torch.gather(x, -2, best.expand(*x.shape[:-2], 1, x.shape[-1])).squeeze(-2)


class MultiKrum(Krum):
    """Multi-Krum: average of the ``m`` vectors of lowest Krum score (default m = n − f);
    El Mhamdi et al., ICML 2018 (arXiv:1802.07927), non-iterated scores.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0], [0.1], [0.2], [0.3], [9.0]])
    >>> MultiKrum(f=1)(x)
    tensor([0.1500])
    """

    name = "multikrum"

    def __init__(
        self, f: int = 0, *, m: int | None = None, neighbours: Neighbours = "n-f-2"
    ) -> None:
        super().__init__(f, neighbours=neighbours)
        self.m = None if m is None else check_int("m", m, low=1)

    def check_workers(self, n: int) -> None:
        super().check_workers(n)
        if self.m is not None and self.m > n:
            raise ValueError(f"multikrum m={self.m} must satisfy m ≤ n={n}")

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        m = n - self.f if self.m is None else self.m
        norms, garbage = norms_and_garbage(x)
        scores = krum_scores(pairwise_sq_distances(x, garbage, norms), self.f, self.neighbours)
        chosen = torch.topk(scores, m, dim=-1, largest=False).indices
        return _mean_of_rows(x, chosen, garbage)


class MDA(Aggregator):
    """Minimum-diameter averaging: the mean of the n − f vectors of smallest diameter
    (El Mhamdi et al., ICML 2018, arXiv:1802.07927; Rousseeuw 1985). Exact: enumerates the
    C(n, f) subsets as batched index tensors, so the cost is exponential in f; n = 25, f = 6
    (177 100 subsets) takes about a second on a CPU.

    Examples
    --------
    >>> import torch
    >>> MDA(f=1)(torch.tensor([[0.0], [1.0], [2.0], [10.0]]))
    tensor([1.])
    """

    name = "mda"

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        garbage = garbage_rows(x)
        distances = pairwise_sq_distances(x, garbage)
        all_subsets = subsets(n, n - self.f, x.device)
        best = subset_diameters(distances, all_subsets).argmin(dim=-1)
        return _mean_of_rows(x, all_subsets[best], garbage)


@numba.njit(cache=True)
def _iterated_krum_kernel(distances, f, theta, zero, chosen):  # pragma: no cover - compiled
    batch, n, _ = distances.shape
    order = np.empty((n, n), np.int64)
    active = np.empty(n, np.bool_)
    for b in range(batch):
        for i in range(n):  # each row sorted once; a step then walks it skipping removed rows
            order[i] = np.argsort(distances[b, i], kind="mergesort")
        active[:] = True
        for step in range(theta):
            count = max(n - step - f - 2, 1)
            best, best_score = -1, np.inf
            for i in range(n):
                if not active[i]:
                    continue
                total, taken = zero, 0
                for t in range(n):
                    j = order[i, t]
                    if j != i and active[j]:
                        total += distances[b, i, j]  # ascending order, as topk(...).sum()
                        taken += 1
                        if taken == count:
                            break
                # an active row always wins over a removed one, even with an infinite score
                score = total if taken == count and total < np.inf else np.finfo(zero).max
                if score < best_score:  # strict: the lowest index on ties, as argmin
                    best, best_score = i, score
            chosen[b, step] = best
            active[best] = False


def _iterated_krum(distances: torch.Tensor, f: int, theta: int) -> torch.Tensor:
    """Indices ``(..., θ)`` picked by θ rounds of Krum on the remaining rows (Bulyan's first
    phase; El Mhamdi et al., ICML 2018, Alg. 1), from squared distances ``(..., n, n)``.

    On CPU a numba kernel sorts each row once; elsewhere each round masks and takes ``topk``.
    """
    n = distances.shape[-1]
    if distances.device.type == "cpu" and distances.dtype in (torch.float32, torch.float64):
        flat = distances.detach().reshape(-1, n, n).contiguous().numpy()
        chosen = np.empty((flat.shape[0], theta), dtype=np.int64)
        _iterated_krum_kernel(flat, f, theta, flat.dtype.type(0.0), chosen)
        return torch.from_numpy(chosen).reshape(*distances.shape[:-2], theta)
    return _iterated_krum_torch(distances, f, theta)


def _iterated_krum_torch(distances: torch.Tensor, f: int, theta: int) -> torch.Tensor:
    """:func:`_iterated_krum` by torch operations (any device)."""
    n = distances.shape[-1]
    active = torch.ones(distances.shape[:-1], dtype=torch.bool, device=distances.device)
    picks = []
    eye = torch.eye(n, dtype=torch.bool, device=distances.device)
    for step in range(theta):
        count = max(n - step - f - 2, 1)
        mask = ~(active.unsqueeze(-1) & active.unsqueeze(-2)) | eye
        within = distances.masked_fill(mask, torch.inf)
        scores = torch.topk(within, count, dim=-1, largest=False).values.sum(dim=-1)
        # an active row always wins over a removed one, even with an infinite score
        big = torch.finfo(distances.dtype).max
        scores = torch.where(active, scores.nan_to_num(posinf=big), torch.inf)
        pick = scores.argmin(dim=-1)
        picks.append(pick)
        active = active.scatter(-1, pick.unsqueeze(-1), False)
    return torch.stack(picks, dim=-1)


class Bulyan(Aggregator):
    """Bulyan (El Mhamdi et al., ICML 2018, arXiv:1802.07927, Alg. 1): select θ = n − 2f
    vectors by iterated Krum, then average per coordinate the β = θ − 2f values closest to the
    median. Needs n ≥ 4f + 3. When fewer than f + 3 vectors remain, Krum's neighbour count
    n' − f − 2 is clamped to 1.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0], [0.1], [0.2], [0.3], [0.4], [0.5], [50.0]])
    >>> Bulyan(f=1)(x)
    tensor([0.2000])
    """

    name = "bulyan"

    def min_workers(self) -> int:
        return 4 * self.f + 3

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        n, f = x.shape[-2], self.f
        theta = n - 2 * f
        norms, garbage = norms_and_garbage(x)
        rows = _iterated_krum(pairwise_sq_distances(x, garbage, norms), f, theta)
        # the selected rows are reduced where they lie (no gathered copy); garbage as +inf
        invalid = torch.gather(garbage, -1, rows)
        return sorted_reduce(x, mode="window", k=theta - 2 * f, rows=rows, invalid=invalid)


class MoNNA(Aggregator):
    """MoNNA: the mean of the n − f nearest neighbours (itself included) of a trusted vector
    ``x[pivot]`` (Farhadkhani et al., ICML 2023, arXiv:2302.01772 companion; used for
    decentralized learning where each honest node trusts its own vector). The pivot is trusted
    by definition: garbage in other rows is handled, a garbage pivot is not.

    Examples
    --------
    >>> import torch
    >>> MoNNA(f=1)(torch.tensor([[0.0], [1.0], [2.0], [10.0]]))
    tensor([1.])
    """

    name = "monna"

    def __init__(self, f: int = 0, *, pivot: int = 0) -> None:
        super().__init__(f)
        self.pivot = check_int("pivot", pivot, low=0)

    def check_workers(self, n: int) -> None:
        super().check_workers(n)
        if self.pivot >= n:
            raise ValueError(f"monna pivot={self.pivot} must be a worker index < n={n}")

    def _aggregate(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        garbage = garbage_rows(x)
        # squared distances to the pivot in one pass over x (no (n, d) difference)
        coef = torch.zeros(garbage.shape, dtype=torch.float64, device=x.device)
        alpha = torch.ones(garbage.shape[:-1], dtype=torch.float64, device=x.device)
        _, squared = affine_pass(x, coef, alpha, x[..., self.pivot, :], garbage)
        assert squared is not None
        row = squared.masked_fill(garbage, torch.inf)
        nearest = torch.topk(row, n - self.f, dim=-1, largest=False).indices
        return _mean_of_rows(x, nearest, garbage)

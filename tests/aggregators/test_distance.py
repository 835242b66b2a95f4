"""Bulyan's selection (iterated Krum): compiled kernel against the torch path."""

import pytest
import torch

from trilemma.aggregators._garbage import norms_and_garbage, pairwise_sq_distances
from trilemma.aggregators.distance import _iterated_krum, _iterated_krum_torch


def sample(shape, dtype, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("n", "f"), [(11, 2), (15, 3), (7, 1)])
def test_kernel_picks_what_the_torch_path_picks(dtype, n, f):
    x = sample((6, n, 40), dtype, seed=n)
    x[1, 2] = x[1, 5]  # exact ties: the lowest index must win on both paths
    x[1, 6] = x[1, 5]
    x[2, :f] = float("nan")  # garbage: infinitely far
    x[3, 0] = 1e30  # huge but finite (its distances overflow in float32)
    x[4] = 0.0  # every score zero: picks in index order
    norms, garbage = norms_and_garbage(x)
    distances = pairwise_sq_distances(x, garbage, norms)
    theta = n - 2 * f
    picks = _iterated_krum(distances, f, theta)
    assert torch.equal(picks, _iterated_krum_torch(distances, f, theta))
    assert torch.equal(picks[4], torch.arange(theta))
    assert not torch.isin(picks[2], torch.arange(f)).any()
    for row in picks:  # θ distinct rows
        assert row.unique().numel() == theta

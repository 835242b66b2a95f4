"""Distances through the blocked anchored Gram matrix and through one pass, against direct
differences in float64."""

import pytest
import torch

from trilemma.aggregators import _garbage
from trilemma.aggregators._garbage import (
    affine_pass,
    norms_and_garbage,
    pairwise_sq_distances,
)


def sample(shape, dtype=torch.float32, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def direct(x):
    wide = x.double()
    return ((wide.unsqueeze(-2) - wide.unsqueeze(-3)) ** 2).sum(-1)


@pytest.mark.parametrize("block", [1 << 21, 9 * 1100 * 2, 5000])  # whole, 2 elements, columns
def test_blocked_distances_are_direct_differences_even_with_a_large_offset(block, monkeypatch):
    monkeypatch.setattr(_garbage, "_BLOCK_ELEMENTS", block)
    x = sample((5, 9, 1100)) + 1000.0  # ‖x‖² ≈ 1e9: without the anchor, float32 loses it all
    norms, garbage = norms_and_garbage(x)
    distances = pairwise_sq_distances(x, garbage, norms)
    torch.testing.assert_close(distances.double(), direct(x), rtol=1e-4, atol=1e-2)
    looped = torch.stack([pairwise_sq_distances(row, garbage[0]) for row in x])
    torch.testing.assert_close(distances, looped, rtol=0, atol=0)


def test_garbage_rows_are_infinitely_far():
    x = sample((7, 30), dtype=torch.float64)
    x[2, 3], x[5] = float("nan"), 1e200
    norms, garbage = norms_and_garbage(x)
    assert garbage.tolist() == [False, False, True, False, False, True, False]
    distances = pairwise_sq_distances(x, garbage, norms)
    assert torch.isinf(distances[2, [0, 1, 3, 4, 5, 6]]).all() and distances[2, 2] == 0
    keep = torch.tensor([0, 1, 3, 4, 6])
    torch.testing.assert_close(distances[keep][:, keep], direct(x[keep]))


def test_affine_pass_forms_the_combination_and_its_distances():
    x = sample((3, 6, 1500), dtype=torch.float64)
    v = sample((3, 1500), dtype=torch.float64, seed=1)
    coef = torch.rand((3, 6), generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    alpha = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    garbage = torch.zeros((3, 6), dtype=torch.bool)
    z, squared = affine_pass(x, coef, alpha, v, garbage)
    expected = alpha.unsqueeze(-1) * v + (coef.unsqueeze(-2) @ x).squeeze(-2)
    torch.testing.assert_close(z, expected)
    torch.testing.assert_close(squared, ((x - expected.unsqueeze(-2)) ** 2).sum(-1))
    z_only, none = affine_pass(x, coef, alpha, v, garbage, distances=False)
    assert none is None and torch.equal(z_only, z)

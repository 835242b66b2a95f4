"""Clipping and ARC in place (byzfl's behaviour) against the default copy, and bucketing
against the mean of each bucket's members."""

import numpy as np
import pytest
import torch

from trilemma.aggregators import ARC, Bucketing, Clipping


def sample(shape, dtype=torch.float64, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("make", [lambda **k: Clipping(c=2.5, **k), lambda **k: ARC(f=2, **k)])
@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_inplace_overwrites_the_input_with_the_copy_result(make, layout):
    x = sample((3, 7, 5)) * torch.linspace(0.2, 3.0, 7).unsqueeze(-1)
    x[1, 2] = float("nan")
    x[2, 4, 1] = float("inf")
    if layout == "transposed":  # a non-contiguous view of the same values
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    expected = make()(x)
    assert not torch.equal(expected, x.nan_to_num())  # something was clipped
    untouched = x.clone()
    torch.testing.assert_close(x, untouched, equal_nan=True)  # the default copies
    result = make(inplace=True)(x)
    assert result.data_ptr() == x.data_ptr()
    torch.testing.assert_close(x, expected, rtol=0, atol=0)
    assert torch.isfinite(x).all() and (x[1, 2] == 0).all() and (x[2, 4] == 0).all()


def test_inplace_writes_into_a_numpy_array_and_matches_byzfl(byzfl):
    _, pre = byzfl
    x = np.random.default_rng(3).normal(size=(9, 6)) * np.arange(1, 10)[:, None]
    theirs, ours = x.copy(), x.copy()
    pre.ARC(f=2)(theirs)
    ARC(f=2, inplace=True)(ours)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    theirs, ours = x.copy(), x.copy()
    pre.Clipping(c=3.0)(theirs)
    Clipping(c=3.0, inplace=True)(ours)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_inplace_must_be_a_bool():
    with pytest.raises(TypeError, match="inplace must be a bool"):
        Clipping(inplace=1)
    with pytest.raises(TypeError, match="inplace must be a bool"):
        ARC(f=1, inplace="yes")


@pytest.mark.parametrize(("n", "s"), [(11, 3), (12, 4), (5, 5)])
def test_buckets_are_the_means_of_their_members(n, s):
    x = sample((2, n, 4), seed=n)
    x[1, 0] = float("inf")
    generator = torch.Generator().manual_seed(5)
    buckets = Bucketing(s=s, generator=torch.Generator().manual_seed(5))(x)
    keys = torch.rand(x.shape[:-1], generator=generator, dtype=torch.float64)
    order = torch.argsort(keys, dim=-1)  # the shuffle Bucketing draws from the same generator
    for b in range(2):
        for k, start in enumerate(range(0, n, s)):
            members = x[b, order[b, start : start + s]]
            if torch.isfinite(members).all():
                torch.testing.assert_close(buckets[b, k], members.mean(0))
            else:
                assert torch.isnan(buckets[b, k]).all()

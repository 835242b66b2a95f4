"""The one-pass iterations of GM and CC: compiled kernel against the torch path, cache-sized
chunks against one call, and the reported iteration counts."""

import pytest
import torch

from trilemma.aggregators import CenteredClipping, GeometricMedian, iterative


def sample(shape, dtype=torch.float64, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


RULES = [
    lambda: GeometricMedian(f=2),
    lambda: CenteredClipping(f=2, tau=0.8, iterations=4, center=torch.full((700,), 0.3)),
]


@pytest.mark.parametrize("make", RULES, ids=["gm", "cc"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_equals_the_torch_path(make, dtype):
    """requires_grad sends the same input through the torch fallback (the CUDA path)."""
    x = sample((3, 9, 700), dtype)
    x[0, 4] = float("nan")  # garbage: weight 0 on both paths
    compiled = make()(x)
    reference = make()(x.clone().requires_grad_(True)).detach()
    tolerance = 1e-5 if dtype == torch.float32 else 1e-11
    torch.testing.assert_close(compiled, reference, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("make", RULES, ids=["gm", "cc"])
def test_chunks_give_one_call(make, monkeypatch):
    x = sample((2, 5, 9, 700))
    whole = make()(x)
    monkeypatch.setattr(iterative, "_CHUNK_ENTRIES", 9 * 700 * 3)  # chunks of 3 of 10 elements
    chunked = make()(x)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=0)


def test_iterations_are_reported():
    gm = GeometricMedian(f=1, max_iter=5)
    assert gm.last_iterations == 0
    gm(sample((7, 4)))
    assert gm.last_iterations == 5  # 5 < 8: no convergence check has run
    gm = GeometricMedian(f=1)
    x = sample((4, 7, 4), seed=1)
    x[2] = x[2, :1]  # all rows equal: converged at the first check
    gm(x)
    looped = []
    for row in x:
        gm(row)
        looped.append(gm.last_iterations)
    gm(x)
    assert gm.last_iterations == max(looped) and min(looped) == 8 and max(looped) % 8 == 0
    cc = CenteredClipping(f=1, iterations=3)
    cc(sample((5, 2)))
    assert cc.last_iterations == 3

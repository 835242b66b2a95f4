"""CAF's top eigenpair by eigvalsh and shifted inverse iteration, against a full ``eigh``."""

import numpy as np
import pytest
import torch

from trilemma.aggregators import CAF, spectral
from trilemma.aggregators.spectral import _top_eigenpair


def psd_batch(rng, count, n, gaps):
    """PSD matrices with a prescribed relative gap between the two largest eigenvalues."""
    matrices = []
    for i in range(count):
        basis, _ = np.linalg.qr(rng.normal(size=(n, n)))
        values = np.sort(rng.uniform(0.0, 0.9, size=n))
        values[-1] = 1.0
        values[-2] = 1.0 - gaps[i % len(gaps)]
        matrices.append((basis * values) @ basis.T * 10.0 ** rng.integers(-3, 4))
    return torch.tensor(np.array(matrices))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("n", [2, 7, 50])
def test_matches_eigh(dtype, n):
    rng = np.random.default_rng(n)
    matrices = psd_batch(rng, 40, n, gaps=[0.5, 1e-2, 1e-4]).to(dtype)
    values, vectors = torch.linalg.eigh(matrices.double())
    for start in (None, torch.tensor(rng.normal(size=(40, n)), dtype=dtype)):
        lam, u = _top_eigenpair(matrices, start)
        eps = torch.finfo(dtype).eps
        torch.testing.assert_close(lam.double(), values[:, -1], rtol=50 * n * eps, atol=0.0)
        # the angle to the true eigenvector is at most (rounding) / gap
        gap = (values[:, -1] - values[:, -2]) / values[:, -1]
        top = vectors[:, :, -1]
        cosine = (u.double() * top).sum(-1, keepdim=True)
        sine = torch.linalg.vector_norm(u.double() - cosine * top, dim=-1)
        assert (sine <= 200 * n * eps / gap).all(), (sine, gap)


def test_degenerate_matrices():
    zero = torch.zeros(1, 4, 4)
    repeated = torch.diag(torch.tensor([2.0, 2.0, 1.0, 0.0])).unsqueeze(0)
    rank_one = torch.outer(torch.arange(4.0), torch.arange(4.0)).unsqueeze(0)
    for matrix, top in ((zero, 0.0), (repeated, 2.0), (rank_one, 14.0)):
        lam, u = _top_eigenpair(matrix, None)
        assert lam.item() == pytest.approx(top, abs=1e-5)
        assert torch.linalg.vector_norm(u).item() == pytest.approx(1.0, abs=1e-6)
        image = matrix[0] @ u[0]
        assert torch.allclose(image, lam[0] * u[0], atol=1e-5)


def test_float32_as_close_to_float64_as_a_full_eigh(monkeypatch):
    # the CAF loop amplifies rounding; the inverse iteration must not add to it
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 50, 200, generator=generator)
    x[:, 40:] = 3.0 * torch.randn(16, 10, 200, generator=generator)
    truth = CAF(f=10)(x.double())
    ours = CAF(f=10)(x).double()

    def full_eigh(matrix, start):
        values, vectors = torch.linalg.eigh(matrix)
        return values[..., -1], vectors[..., -1]

    monkeypatch.setattr(spectral, "_top_eigenpair", full_eigh)
    reference = CAF(f=10)(x).double()
    error = ((ours - truth).norm(dim=-1) / truth.norm(dim=-1)).max()
    reference_error = ((reference - truth).norm(dim=-1) / truth.norm(dim=-1)).max()
    assert reference_error > 0 and error <= 2 * reference_error

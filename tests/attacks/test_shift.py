"""ShiftAttack and the top principal direction, against numpy's eigendecomposition."""

import numpy as np
import pytest
import torch

from trilemma import attacks
from trilemma.attacks import top_principal_direction


def _numpy_top_direction(x):
    centred = x - x.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    u = vectors[:, -1]
    return u * np.sign(u[np.argmax(np.abs(u))])


def _spread(shape, seed):
    # distinct scales per coordinate give a clear eigengap, so the top direction is well defined
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape) * np.linspace(3.0, 0.5, shape[-1])


@pytest.mark.parametrize(("h", "d"), [(8, 3), (3, 6), (5, 5)])
@pytest.mark.parametrize("method", ["auto", "eigh", "svd"])
def test_direction_matches_numpy(h, d, method):
    x = _spread((4, h, d), seed=h * 10 + d)
    u = top_principal_direction(torch.from_numpy(x), method=method)
    assert u.shape == (4, d)
    for b in range(4):
        np.testing.assert_allclose(u[b].numpy(), _numpy_top_direction(x[b]), atol=1e-10)
    torch.testing.assert_close(torch.linalg.vector_norm(u, dim=-1), torch.ones(4).double())
    assert (u.gather(-1, u.abs().argmax(-1, keepdim=True)) > 0).all()  # sign convention


def test_direction_of_a_line():
    t = torch.tensor([-2.0, -1.0, 0.5, 3.0], dtype=torch.float64)
    line = torch.stack([-3 * t, 4 * t], dim=-1) + torch.tensor([1.0, 1.0], dtype=torch.float64)
    u = top_principal_direction(line, method="svd")
    torch.testing.assert_close(u, torch.tensor([-0.6, 0.8], dtype=torch.float64))


def test_direction_in_half_precision_and_errors():
    x = torch.from_numpy(_spread((6, 3), seed=3))
    u = top_principal_direction(x.to(torch.bfloat16))
    assert u.dtype == torch.bfloat16
    torch.testing.assert_close(u.double(), top_principal_direction(x), atol=2e-2, rtol=0)
    with pytest.raises(ValueError, match="method='pca'"):
        top_principal_direction(x, method="pca")


def test_shift_with_given_direction_by_hand():
    honest = torch.tensor([[1.0, 2.0], [3.0, 6.0]], dtype=torch.float64)
    out = attacks.ShiftAttack(tau=-5.0, direction=[0.0, 2.0])(honest, 2)
    torch.testing.assert_close(out, torch.tensor([[2.0, -1.0]] * 2, dtype=torch.float64))


def test_shift_with_batched_directions():
    honest = torch.zeros(2, 3, 2, dtype=torch.float64)
    directions = torch.tensor([[1.0, 0.0], [0.0, -3.0]], dtype=torch.float64)
    out = attacks.ShiftAttack(tau=2.0, direction=directions)(honest, 1)
    expected = torch.tensor([[[2.0, 0.0]], [[0.0, -2.0]]], dtype=torch.float64)
    torch.testing.assert_close(out, expected)


def test_shift_along_the_principal_direction():
    x = _spread((7, 4), seed=11)
    out = attacks.ShiftAttack(tau=3.0)(torch.from_numpy(x), 2)
    expected = x.mean(axis=0) + 3.0 * _numpy_top_direction(x)
    np.testing.assert_allclose(out.numpy(), np.tile(expected, (2, 1)), atol=1e-10)


def test_shift_direction_errors():
    honest = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="direction must have a finite, non-zero norm"):
        attacks.ShiftAttack(direction=[0.0, 0.0])
    with pytest.raises(ValueError, match="direction must have a finite, non-zero norm"):
        attacks.ShiftAttack(direction=[float("inf"), 0.0])
    with pytest.raises(TypeError, match="direction must have a floating dtype"):
        attacks.ShiftAttack(direction=[1, 0])
    with pytest.raises(ValueError, match="d=2"):
        attacks.ShiftAttack(direction=[1.0, 0.0, 0.0])(honest, 1)
    with pytest.raises(ValueError, match="does not broadcast"):
        attacks.ShiftAttack(direction=torch.ones(4, 2))(torch.zeros(3, 3, 2), 1)
    with pytest.raises(ValueError, match="method='x'"):
        attacks.ShiftAttack(method="x")

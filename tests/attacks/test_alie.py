"""ALIE: Baruch et al.'s z_max and the coordinate-wise shift, checked by hand."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from trilemma import attacks


def _z_max_by_hand(n, f):
    s = math.floor(n / 2 + 1) - f
    return norm.ppf((n - s) / n)


def test_z_max_matches_theory_examples():
    # (13, 3): s = floor(7.5) - 3 = 4, Φ⁻¹(9/13); (20, 4): s = 11 - 4 = 7, Φ⁻¹(13/20)
    assert attacks.alie_z_max(n=13, f=3) == pytest.approx(norm.ppf(9 / 13), abs=1e-12)
    assert attacks.alie_z_max(n=20, f=4) == pytest.approx(norm.ppf(13 / 20), abs=1e-12)
    assert attacks.alie_z_max(n=13, f=3) == pytest.approx(0.502, abs=5e-4)  # THEORY.md §2
    assert attacks.alie_z_max(n=20, f=4) == pytest.approx(0.385, abs=5e-4)


@pytest.mark.parametrize("n", [3, 4, 7, 10, 25, 50, 101])
def test_z_max_formula_and_supremum_property(n):
    for f in range(1, (n - 1) // 2 + 1):
        z = attacks.alie_z_max(n=n, f=f)
        assert z == pytest.approx(_z_max_by_hand(n, f), abs=1e-12)
        p = (n - (math.floor(n / 2 + 1) - f)) / n
        assert norm.cdf(z - 1e-9) < p <= norm.cdf(z + 1e-9)  # z is the sup of {Φ(z) < p}
        assert math.isfinite(z)


def test_z_max_known_paper_setting():
    # n = 50, f = 24: s = 26 - 24 = 2, z = Φ⁻¹(48/50) ≈ 1.75
    assert attacks.alie_z_max(n=50, f=24) == pytest.approx(1.7507, abs=1e-4)


def test_z_max_rejects_byzantine_majority():
    with pytest.raises(ValueError, match="f=5 must satisfy 2f < n=9"):
        attacks.alie_z_max(n=9, f=5)
    with pytest.raises(ValueError, match="n=0"):
        attacks.alie_z_max(n=0, f=0)
    with pytest.raises(TypeError):
        attacks.alie_z_max(13, 3)


@pytest.mark.parametrize("unbiased", [True, False])
def test_alie_against_numpy(unbiased):
    rng = np.random.default_rng(0)
    honest = rng.normal(size=(6, 4))
    out = attacks.ALIE(z=1.3, unbiased=unbiased)(torch.from_numpy(honest), 2)
    ddof = 1 if unbiased else 0
    expected = honest.mean(axis=0) + 1.3 * honest.std(axis=0, ddof=ddof)
    np.testing.assert_allclose(out.numpy(), np.tile(expected, (2, 1)), rtol=1e-13)


def test_alie_by_hand_two_vectors():
    honest = torch.tensor([[1.0, 2.0], [3.0, 6.0]], dtype=torch.float64)
    # mean (2, 4); population std (1, 2); unbiased std (√2, 2√2)
    pop = attacks.ALIE(z=2.0, unbiased=False)(honest, 1)
    unb = attacks.ALIE(z=2.0)(honest, 1)
    torch.testing.assert_close(pop, torch.tensor([[4.0, 8.0]], dtype=torch.float64))
    r = math.sqrt(2)
    torch.testing.assert_close(unb, torch.tensor([[2 + 2 * r, 4 + 4 * r]], dtype=torch.float64))


def test_alie_default_uses_z_max_of_n_equals_h_plus_f():
    rng = np.random.default_rng(1)
    honest = rng.normal(size=(10, 3))
    out = attacks.ALIE()(torch.from_numpy(honest), 3)
    z = _z_max_by_hand(13, 3)
    expected = honest.mean(axis=0) + z * honest.std(axis=0, ddof=1)
    np.testing.assert_allclose(out.numpy(), np.tile(expected, (3, 1)), rtol=1e-13)
    assert attacks.ALIE().resolved_z(h=10, f=3) == pytest.approx(0.5024, abs=1e-4)
    assert attacks.ALIE(z=-0.7).resolved_z(h=10, f=3) == -0.7


def test_alie_errors():
    with pytest.raises(ValueError, match="f=3 must satisfy 2f < n=6"):
        attacks.ALIE()(torch.zeros(3, 2), 3)
    with pytest.raises(ValueError, match="unbiased=True needs h >= 2"):
        attacks.ALIE(z=1.0)(torch.zeros(1, 2), 1)
    one = attacks.ALIE(z=1.0, unbiased=False)(torch.ones(1, 2), 1)
    torch.testing.assert_close(one, torch.ones(1, 2))
    with pytest.raises(TypeError, match="unbiased must be a bool"):
        attacks.ALIE(unbiased=1)

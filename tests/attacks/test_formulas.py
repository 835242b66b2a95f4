"""Each closed-form attack against a hand-written reference on small float64 tensors."""

import math

import numpy as np
import pytest
import torch

from trilemma import attacks

HONEST = torch.tensor([[1.0, -2.0, 0.5], [3.0, 4.0, 0.5], [2.0, 7.0, -1.0]], dtype=torch.float64)
MEAN = [2.0, 3.0, 0.0]


def test_sign_flipping_is_minus_the_mean():
    out = attacks.SignFlipping()(HONEST, 2)
    expected = torch.tensor([[-2.0, -3.0, -0.0]] * 2, dtype=torch.float64)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("tau", [0.1, 2.0, -0.5])
def test_foe_is_minus_tau_times_the_mean(tau):
    out = attacks.FOE(tau=tau)(HONEST, 3)
    expected = torch.tensor([[-tau * m for m in MEAN]] * 3, dtype=torch.float64)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-15)


def test_foe_default_tau():
    assert attacks.FOE().tau == 0.1


def test_mimic_copies_the_target():
    torch.testing.assert_close(attacks.Mimic()(HONEST, 2), HONEST[[0, 0]])
    torch.testing.assert_close(attacks.Mimic(target=2)(HONEST, 1), HONEST[[2]])


def test_mimic_target_range():
    with pytest.raises(ValueError, match=r"target=3 must be an integer in \[0, 2\]"):
        attacks.Mimic(target=3)(HONEST, 1)
    with pytest.raises(ValueError, match=r"target=-1"):
        attacks.Mimic(target=-1)


def test_nan_and_inf_attacks():
    assert torch.isnan(attacks.NaNAttack()(HONEST, 2)).all()
    plus = attacks.InfAttack()(HONEST, 2)
    minus = attacks.InfAttack(sign=-1)(HONEST, 2)
    assert (plus == math.inf).all()
    assert (minus == -math.inf).all()
    with pytest.raises(ValueError, match="sign=0 must be 1 or -1"):
        attacks.InfAttack(sign=0)
    with pytest.raises(ValueError, match="sign=2"):
        attacks.InfAttack(sign=2)


def test_huge_attack_overflows_a_float32_sum():
    out = attacks.HugeAttack()(HONEST.float(), 4)
    assert (out == np.float32(1e38)).all()
    assert torch.isinf(out.sum(dim=-2)).all()  # four entries of 1e38 exceed float32's 3.4e38
    assert torch.isfinite(out[..., :3, :].sum(dim=-2)).all()
    torch.testing.assert_close(
        attacks.HugeAttack(value=-5.0)(HONEST, 1), torch.full((1, 3), -5.0, dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="value=0"):
        attacks.HugeAttack(value=0.0)


def test_gaussian_attack_is_seeded_and_has_the_right_moments():
    honest = torch.zeros(4, 3, dtype=torch.float64)

    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return attacks.GaussianAttack(mean=2.0, std=3.0, generator=g)(honest, 2)

    torch.testing.assert_close(draw(1), draw(1), rtol=0, atol=0)
    assert not torch.equal(draw(1), draw(2))
    g = torch.Generator().manual_seed(5)
    big = attacks.GaussianAttack(mean=2.0, std=3.0, generator=g)(torch.zeros(1, 100_000), 2)
    # standard errors: 3/sqrt(2e5) ≈ 0.007 for the mean, ≈ 0.005 for the std
    assert abs(big.mean().item() - 2.0) < 0.05
    assert abs(big.std().item() - 3.0) < 0.05
    fixed = attacks.GaussianAttack(mean=-1.5, std=0.0)(honest, 2)
    assert (fixed == -1.5).all()
    with pytest.raises(ValueError, match=r"std=-1.0 must lie in \[0, inf\)"):
        attacks.GaussianAttack(std=-1.0)
    with pytest.raises(TypeError, match=r"generator must be a torch\.Generator"):
        attacks.GaussianAttack(generator=0)


def test_gaussian_attack_does_not_depend_on_honest_values():
    a = attacks.GaussianAttack(generator=torch.Generator().manual_seed(3))(HONEST, 2)
    b = attacks.GaussianAttack(generator=torch.Generator().manual_seed(3))(HONEST * 100, 2)
    torch.testing.assert_close(a, b, rtol=0, atol=0)

"""Audit of T rounds of the decentralized runner: sound on the real runner, tight enough to
catch a runner that adds half the noise or an accountant that forgets rounds."""

import math

import numpy as np
import pytest
import torch

from trilemma.accountants import SecLDPAccountant, SecLDPDpEvent
from trilemma.proofs_checks.audit_decentralized import audit_decentralized_rounds

SETTING = {"sigma": 8.0, "sigma_cor": 12.0, "steps": 6, "delta": 1e-5, "trials": 100_000}


@pytest.fixture(scope="module")
def honest():
    return audit_decentralized_rounds("ring:6", seed=0, **SETTING)


def test_the_runner_is_sound_and_the_audit_tight(honest):
    assert honest.sound
    assert honest.tightness > 0.4  # seeds 0-3: 0.64-0.88 certified against 1.35 claimed
    event = SecLDPDpEvent("ring:6", 8.0, 12.0, 1.0)
    exact = SecLDPAccountant(method="pld").compose(event, 6).get_epsilon(1e-5)
    assert honest.epsilon_claimed == pytest.approx(exact, rel=1e-9)
    # (Σ⁻¹)_ii of the ring by a dense inverse, independently of the accountant
    laplacian = 2 * np.eye(6) - np.roll(np.eye(6), 1, 0) - np.roll(np.eye(6), -1, 0)
    v = np.linalg.inv(64 * np.eye(6) + 144 * laplacian)[0, 0]
    assert honest.parameters["inverse_variance"] == pytest.approx(v, rel=1e-12)


def test_a_runner_with_half_the_noise_is_caught():
    planted = audit_decentralized_rounds("ring:6", seed=1, noise_scale=0.5, **SETTING)
    assert not planted.sound


def test_an_accountant_that_counts_one_round_is_caught(honest):
    def one_round(topology, *, sigma, sigma_cor, clip, steps, delta, node):
        event = SecLDPDpEvent(topology, sigma, sigma_cor, clip)
        return SecLDPAccountant(method="pld").compose(event, 1).get_epsilon(delta)

    twelve = SETTING | {"steps": 12}  # the rounds the planted accountant forgets
    planted = audit_decentralized_rounds("ring:6", seed=2, accountant=one_round, **twelve)
    assert planted.epsilon_claimed < honest.epsilon_claimed / 2
    assert not planted.sound
    assert math.isfinite(planted.bound.epsilon_lower)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="steps"):
        audit_decentralized_rounds("ring:6", **(SETTING | {"steps": 0}), seed=0)
    with pytest.raises(ValueError, match="node"):
        audit_decentralized_rounds("ring:6", node=9, seed=0, **SETTING)


def test_the_audited_round_is_the_runners_step():
    """The audit's round (gradients, noise, gossip) reproduces DecentralizedSGD.step."""
    from trilemma.decentralized import DecentralizedSGD
    from trilemma.dgd import LeastSquares

    targets = torch.tensor([[1e6], [0.0], [0.0], [0.0]], dtype=torch.float64)
    problem = LeastSquares(torch.ones(4, 1, 1, dtype=torch.float64), targets)
    runner = DecentralizedSGD(
        problem, "ring:4", lr=0.1, clip=1.0, clipping="node", sigma=1.0, sigma_cor=2.0
    )
    state = runner.start(torch.zeros(3, 1, dtype=torch.float64))
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    theta = state.theta
    for _ in range(3):
        state, _ = runner.step(state, g1, measure=False)
        messages = runner.gradients(theta, g2) + runner.noise(theta.shape, g2)
        theta = runner.mixing @ (theta - 0.1 * messages)
    assert torch.equal(state.theta, theta)

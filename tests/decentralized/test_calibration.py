"""Noise calibrated at a target ε: never above it, tight, and DECOR's pair no noisier than
local DP's after a gossip round."""

import math

import dp_accounting
import numpy as np
import pytest

from trilemma.accountants import secldp_epsilon
from trilemma.decentralized import (
    calibrate_decor,
    central_sigma,
    gossip_variance,
    local_sigma,
    metropolis_hastings,
)

BUDGET = {"clip": 1.0, "steps": 50, "delta": 1e-5}


@pytest.mark.parametrize("graph", ["ring:16", "torus:4x4", "complete:16", "regular:4:16:3"])
@pytest.mark.parametrize("colluders", [(), (0, 5)])
def test_decor_meets_the_target_never_above_and_beats_local_noise(graph, colluders):
    target = 4.0
    noise = calibrate_decor(graph, target_epsilon=target, colluders=colluders, rtol=1e-5, **BUDGET)
    epsilon = secldp_epsilon(
        graph, sigma=noise.sigma, sigma_cor=noise.sigma_cor, colluders=colluders, **BUDGET
    )
    assert epsilon == pytest.approx(noise.epsilon, rel=1e-12)
    assert target * (1 - 1e-3) <= epsilon <= target
    sigma_ldp = local_sigma(graph, target_epsilon=target, **BUDGET)
    assert noise.sigma <= sigma_ldp * (1 + 1e-9)
    local = gossip_variance(graph, sigma=sigma_ldp, sigma_cor=0.0, mixing="metropolis")
    w = metropolis_hastings(graph)
    assert local == pytest.approx(sigma_ldp**2 * np.sum(w * w) / 16, rel=1e-12)
    assert noise.variance <= local * (1 + 1e-9)
    if graph != "complete:16" and not colluders:  # correlated noise strictly helps here
        # ε = 4, T = 50: ring 41.9, torus 45.6 against 53.6 for local noise
        assert noise.variance < 0.9 * local


def test_colluders_cost_noise():
    alone = calibrate_decor("ring:16", target_epsilon=4.0, **BUDGET)
    watched = calibrate_decor("ring:16", target_epsilon=4.0, colluders=(0, 8), **BUDGET)
    assert watched.variance > alone.variance


def test_local_and_central_sigma_against_dp_accounting():
    target = 3.0
    sigma_ldp = local_sigma("ring:16", target_epsilon=target, **BUDGET)

    def rdp_epsilon(multiplier: float) -> float:
        accountant = dp_accounting.rdp.RdpAccountant()
        accountant.compose(dp_accounting.GaussianDpEvent(multiplier), BUDGET["steps"])
        return accountant.get_epsilon(BUDGET["delta"])

    # user level: sensitivity 2C of the update against noise σ_ldp
    assert rdp_epsilon(sigma_ldp / 2.0) == pytest.approx(target, rel=1e-4)
    assert rdp_epsilon(sigma_ldp / 2.0) <= target
    # central: the mean has sensitivity 2C/n and noise σ_cdp/√n
    sigma_cdp = central_sigma(sigma_ldp, nodes=16)
    assert sigma_cdp == pytest.approx(sigma_ldp / 4.0)
    assert rdp_epsilon((sigma_cdp / 4.0) / (2.0 / 16)) == pytest.approx(target, rel=1e-4)


def test_exact_averaging_sends_the_search_to_the_central_rate():
    """On K_n with W = 11ᵀ/n the secrets cancel, V = σ²/n: the best σ approaches σ_ldp/√n."""
    noise = calibrate_decor("complete:16", target_epsilon=4.0, mixing="average", **BUDGET)
    sigma_ldp = local_sigma("complete:16", target_epsilon=4.0, **BUDGET)
    assert noise.sigma == pytest.approx(sigma_ldp / 4.0, rel=5e-3)
    assert noise.variance == pytest.approx(noise.sigma**2 / 16, rel=1e-12)
    assert math.isfinite(noise.sigma_cor)


def test_out_of_reach_and_bad_colluders():
    with pytest.raises(ValueError, match="colluders"):
        calibrate_decor("ring:4", target_epsilon=4.0, colluders=(0, 1, 2, 3), **BUDGET)
    with pytest.raises(ValueError, match="target_epsilon"):
        calibrate_decor("ring:4", target_epsilon=-1.0, **BUDGET)

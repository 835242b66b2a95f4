"""Decentralized SGD on a graph: gossip with a checked mixing matrix, DECOR's pairwise-cancelling
correlated noise (Allouah et al., ICML 2024, arXiv:2405.01031), the local-DP and central-DP
references, and their noise calibrated to a target ε with the SecLDP accountant."""

from trilemma.decentralized.calibration import (
    DecorNoise,
    calibrate_decor,
    central_sigma,
    gossip_variance,
    local_sigma,
)
from trilemma.decentralized.mixing import (
    MIXINGS,
    check_mixing,
    edge_list,
    metropolis_hastings,
    mixing_matrix,
)
from trilemma.decentralized.runner import (
    CLIPPINGS,
    DecentralizedSGD,
    GossipRecord,
    GossipState,
    GossipTrajectory,
    correlated_noise,
    decentralized_sgd,
)
from trilemma.decentralized.training import GossipTraining

__all__ = [
    "CLIPPINGS",
    "MIXINGS",
    "DecentralizedSGD",
    "DecorNoise",
    "GossipRecord",
    "GossipState",
    "GossipTraining",
    "GossipTrajectory",
    "calibrate_decor",
    "central_sigma",
    "check_mixing",
    "correlated_noise",
    "decentralized_sgd",
    "edge_list",
    "gossip_variance",
    "local_sigma",
    "metropolis_hastings",
    "mixing_matrix",
]

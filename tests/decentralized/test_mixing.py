"""Mixing matrices: Metropolis-Hastings weights and the checks of a user's W."""

import networkx as nx
import numpy as np
import pytest

from trilemma.decentralized import check_mixing, metropolis_hastings, mixing_matrix


@pytest.mark.parametrize("spec", ["ring:8", "torus:3x4", "complete:5", "star:6", "regular:3:10"])
def test_metropolis_hastings_is_symmetric_doubly_stochastic_on_the_graph(spec):
    w = metropolis_hastings(spec)
    assert np.allclose(w, w.T) and np.all(w >= 0)
    assert np.allclose(w.sum(axis=0), 1) and np.allclose(w.sum(axis=1), 1)
    assert check_mixing(w, spec) is not None
    assert np.linalg.eigvalsh(w)[-2] < 1 - 1e-9  # connected: the consensus is contracting


def test_metropolis_hastings_weights_by_hand_on_a_star():
    w = metropolis_hastings(nx.star_graph(3))  # centre of degree 3, leaves of degree 1
    assert np.allclose(w[0], [1 - 3 / 4, 1 / 4, 1 / 4, 1 / 4])
    assert np.allclose(w[1], [1 / 4, 3 / 4, 0, 0])


def test_check_mixing_refuses_what_is_not_a_gossip_matrix():
    ring = "ring:4"
    with pytest.raises(ValueError, match="shape"):
        check_mixing(np.eye(3), ring)
    with pytest.raises(ValueError, match="rows sum"):
        check_mixing(0.9 * np.eye(4), ring)
    row_stochastic = np.array(
        [[0.5, 0.5, 0, 0], [0.25, 0.5, 0.25, 0], [0, 0.5, 0.5, 0], [0.5, 0, 0, 0.5]]
    )
    with pytest.raises(ValueError, match="columns sum"):
        check_mixing(row_stochastic, ring)
    with pytest.raises(ValueError, match="not neighbours"):
        check_mixing(np.full((4, 4), 0.25), ring)
    with pytest.raises(ValueError, match="non-negative"):
        check_mixing(
            np.array([[1.5, -0.5, 0, 0], [-0.5, 1.5, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), ring
        )
    with pytest.raises(ValueError, match="mixing='gossip'"):
        mixing_matrix("gossip", ring)
    assert np.allclose(mixing_matrix("average", ring), 0.25)

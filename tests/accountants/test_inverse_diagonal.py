"""The sparse inverse-diagonal solver against dense numpy inversion, on both of its paths."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from trilemma.accountants._inverse_diagonal import (
    _block_tridiagonal_inverse_diagonal,
    spd_inverse_diagonal,
)


def covariance(graph, sigma=3.0, sigma_cor=20.0):
    laplacian = nx.laplacian_matrix(graph, weight="weight").astype(float)
    return sp.csr_array(sigma**2 * sp.identity(graph.number_of_nodes()) + sigma_cor**2 * laplacian)


@pytest.mark.parametrize(
    "graph",
    [
        nx.cycle_graph(1500),  # banded path
        nx.grid_2d_graph(30, 30, periodic=True),  # banded path, wider band
        nx.cycle_graph(300),  # small: dense path
        nx.random_regular_graph(4, 200, seed=1),  # dense path (expander: no narrow band)
        nx.disjoint_union(nx.cycle_graph(100), nx.complete_graph(30)),  # components
        nx.path_graph(1),
    ],
    ids=["ring", "torus", "small-ring", "regular", "components", "single"],
)
def test_matches_dense_inverse(graph):
    matrix = covariance(graph)
    expected = np.diag(np.linalg.inv(matrix.toarray()))
    np.testing.assert_allclose(spd_inverse_diagonal(matrix), expected, rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(st.integers(65, 160), st.floats(0.01, 0.2), st.integers(0, 10**6), st.floats(0.01, 100.0))
def test_random_weighted_graphs(n, p, seed, ratio):
    graph = nx.gnp_random_graph(n, p, seed=seed)
    rng = np.random.default_rng(seed)
    for u, v in graph.edges:
        graph[u][v]["weight"] = rng.uniform(0.1, 2.0)
    matrix = covariance(graph, sigma=1.0, sigma_cor=ratio)
    expected = np.diag(np.linalg.inv(matrix.toarray()))
    np.testing.assert_allclose(spd_inverse_diagonal(matrix), expected, rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(5, 120), st.integers(1, 12), st.integers(1, 40), st.integers(0, 10**6))
def test_block_recursion_on_random_banded_matrices(n, bandwidth, block, seed):
    bandwidth = min(bandwidth, n - 1)
    rng = np.random.default_rng(seed)
    dense = np.zeros((n, n))
    for offset in range(1, bandwidth + 1):
        values = rng.normal(size=n - offset)
        dense += np.diag(values, offset) + np.diag(values, -offset)
    dense += np.diag(np.abs(dense).sum(axis=1) + rng.uniform(0.1, 2.0, size=n))  # SPD
    expected = np.diag(np.linalg.inv(dense))
    result = _block_tridiagonal_inverse_diagonal(sp.csr_array(dense), max(block, bandwidth))
    np.testing.assert_allclose(result, expected, rtol=1e-9)

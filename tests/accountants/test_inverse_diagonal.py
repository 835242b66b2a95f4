"""The sparse inverse-diagonal solver against dense numpy inversion, on both of its paths."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from trilemma.accountants._inverse_diagonal import spd_inverse_diagonal


def covariance(graph, sigma=3.0, sigma_cor=20.0):
    laplacian = nx.laplacian_matrix(graph, weight="weight").astype(float)
    return sp.csr_array(sigma**2 * sp.identity(graph.number_of_nodes()) + sigma_cor**2 * laplacian)


@pytest.mark.parametrize(
    "graph",
    [
        nx.cycle_graph(300),  # banded path
        nx.grid_2d_graph(15, 15, periodic=True),  # banded path, wider band
        nx.random_regular_graph(4, 200, seed=1),  # dense path (expander: no narrow band)
        nx.disjoint_union(nx.cycle_graph(100), nx.complete_graph(30)),  # components
        nx.path_graph(1),
    ],
    ids=["ring", "torus", "regular", "components", "single"],
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

"""Graph inputs normalise to one Topology; bad graphs are rejected with clear errors."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from trilemma.accountants import as_topology, parse_graph_spec


def test_all_inputs_give_the_same_adjacency():
    graph = nx.cycle_graph(6)
    dense = nx.to_numpy_array(graph)
    forms = [graph, dense, sp.csr_array(dense), sp.coo_matrix(dense), "ring:6"]
    adjacencies = [as_topology(form).adjacency.toarray() for form in forms]
    for adjacency in adjacencies:
        np.testing.assert_array_equal(adjacency, dense)


def test_laplacian_and_self_loops():
    mixing = np.full((4, 4), 0.25)  # a gossip matrix with its diagonal: self-loops are dropped
    topology = as_topology(mixing)
    expected = 0.25 * (4 * np.eye(4) - np.ones((4, 4)))
    np.testing.assert_allclose(topology.laplacian().toarray(), expected)


def test_torus_spec_matches_periodic_grid():
    ours = parse_graph_spec("torus:4x4")
    reference = nx.grid_2d_graph(4, 4, periodic=True)
    assert nx.is_isomorphic(ours, reference)
    assert all(degree == 4 for _, degree in ours.degree)


def test_labels_are_kept(tmp_path):
    graph = nx.Graph([("a", "b"), ("b", "c")])
    topology = as_topology(graph)
    assert topology.labels == ("a", "b", "c")
    assert list(topology.indices(["c", "a"])) == [0, 2]
    path = tmp_path / "g.edgelist"
    path.write_text("0 1 2.0\n1 2 0.5\n")
    weighted = as_topology(str(path))
    assert weighted.adjacency.toarray()[0, 1] == 2.0


@pytest.mark.parametrize(
    ("graph", "error", "pattern"),
    [
        (np.array([[0.0, 1.0], [0.0, 0.0]]), ValueError, "symmetric"),
        (np.array([[0.0, -1.0], [-1.0, 0.0]]), ValueError, "non-negative"),
        (np.array([[0.0, np.nan], [np.nan, 0.0]]), ValueError, "NaN"),
        (np.zeros((2, 3)), ValueError, "square"),
        (np.zeros((0, 0)), ValueError, "at least one node"),
        (nx.DiGraph([(0, 1)]), ValueError, "undirected"),
        ("hexagon:6", ValueError, "unknown graph spec"),
        ("ring:x", ValueError, "cannot parse graph spec"),
        ("ring:2", ValueError, r"ring size=2 must be an integer in \[3, inf\)"),
        (3.5, TypeError, "networkx.Graph"),
    ],
)
def test_bad_graphs(graph, error, pattern):
    with pytest.raises(error, match=pattern):
        as_topology(graph)


def test_unknown_node():
    with pytest.raises(ValueError, match=r"colluders contains 7, which is not a node .*0\.\.3"):
        as_topology("ring:4").indices([7], name="colluders")

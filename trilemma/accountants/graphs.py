"""Communication graphs for decentralized accounting.

A graph arrives as a ``networkx.Graph``, a scipy sparse matrix or a dense array (symmetric,
non-negative adjacency or edge weights), or a short spec string used by the CLI:
``ring:16``, ``torus:8x8``, ``complete:16``, ``path:10``, ``star:10``, ``regular:4:1000[:seed]``
(random regular), ``er:100:0.05[:seed]`` (Erdős–Rényi), or the path of a ``.edgelist`` file.
Everything is normalised to a :class:`Topology`: a CSR adjacency plus the node labels.
Self-loops are dropped (they carry no pairwise noise and leave the Laplacian unchanged), so a
gossip mixing matrix can be passed as it is.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse as sp

from trilemma._validation import check_int, check_real

__all__ = ["Topology", "as_topology", "parse_graph_spec"]


@dataclass(frozen=True, eq=False, slots=True)
class Topology:
    """An undirected weighted graph on nodes ``0..n-1`` with their original labels.

    Attributes
    ----------
    adjacency : scipy.sparse.csr_array
        Symmetric, non-negative, zero diagonal, float64.
    labels : tuple
        ``labels[i]`` is the user's name of node ``i``.
    """

    adjacency: sp.csr_array
    labels: tuple[Hashable, ...]

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return self.adjacency.shape[0]

    def laplacian(self) -> sp.csr_array:
        """Weighted graph Laplacian L = D − A (CSR)."""
        degrees = np.asarray(self.adjacency.sum(axis=1)).ravel()
        return (sp.diags_array(degrees) - self.adjacency).tocsr()

    def indices(self, nodes: Iterable[Hashable], *, name: str = "nodes") -> np.ndarray:
        """Positions of the given node labels; ``ValueError`` naming any unknown label."""
        position = {label: i for i, label in enumerate(self.labels)}
        found = []
        for node in nodes:
            if node not in position:
                raise ValueError(
                    f"{name} contains {node!r}, which is not a node of the graph "
                    f"(nodes are {_describe_labels(self.labels)})"
                )
            found.append(position[node])
        return np.unique(np.asarray(found, dtype=np.int64))

    def induced(self, keep: np.ndarray) -> Topology:
        """Subgraph induced by the node positions ``keep`` (sorted)."""
        sub = self.adjacency[keep][:, keep]
        return Topology(sp.csr_array(sub), tuple(self.labels[i] for i in keep))

    def components(self) -> list[np.ndarray]:
        """Node positions of each connected component."""
        count, label = sp.csgraph.connected_components(self.adjacency, directed=False)
        order = np.argsort(label, kind="stable")
        return np.split(order, np.cumsum(np.bincount(label, minlength=count))[:-1])


def _describe_labels(labels: Sequence[Hashable]) -> str:
    if len(labels) > 0 and labels == tuple(range(len(labels))):
        return f"0..{len(labels) - 1}"
    shown = ", ".join(repr(label) for label in labels[:8])
    return f"{shown}{', ...' if len(labels) > 8 else ''}"


def _from_matrix(matrix: sp.sparray | sp.spmatrix | np.ndarray) -> Topology:
    adjacency = sp.csr_array(matrix, dtype=np.float64)
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"graph adjacency must be a square matrix, got shape {adjacency.shape}")
    if adjacency.shape[0] == 0:
        raise ValueError("graph must have at least one node")
    values = adjacency.data
    if not np.all(np.isfinite(values)):
        raise ValueError("graph adjacency contains NaN or infinite entries")
    if np.any(values < 0):
        raise ValueError("graph adjacency must be non-negative (edge weights), found negative")
    adjacency.setdiag(0.0)
    adjacency.eliminate_zeros()
    asymmetry = abs(adjacency - adjacency.T)
    if asymmetry.nnz and asymmetry.max() > 1e-12 * max(1.0, float(abs(adjacency).max())):
        raise ValueError("graph adjacency must be symmetric (the graph is undirected)")
    return Topology(adjacency, tuple(range(adjacency.shape[0])))


def _from_networkx(graph: nx.Graph) -> Topology:
    if graph.is_directed():
        raise ValueError("graph must be undirected; got a directed networkx graph")
    if graph.number_of_nodes() == 0:
        raise ValueError("graph must have at least one node")
    nodes = list(graph.nodes)
    matrix = nx.to_scipy_sparse_array(graph, nodelist=nodes, weight="weight", format="csr")
    topology = _from_matrix(matrix)
    return Topology(topology.adjacency, tuple(nodes))


def _seed(parts: list[str], position: int) -> int:
    return int(parts[position]) if len(parts) > position else 0


def parse_graph_spec(spec: str) -> nx.Graph:
    """Build the networkx graph named by a spec string (see the module docstring).

    Examples
    --------
    >>> parse_graph_spec("torus:4x4").number_of_edges()
    32
    >>> parse_graph_spec("ring:1")
    Traceback (most recent call last):
    ...
    ValueError: ring size=1 must be an integer in [3, inf)
    """
    if not isinstance(spec, str):
        raise TypeError(f"graph spec must be a string, got {type(spec).__name__}")
    if os.path.exists(spec):
        return nx.read_edgelist(spec, nodetype=int, data=(("weight", float),))
    kind, _, rest = spec.partition(":")
    parts = rest.split(":") if rest else []
    try:
        if kind == "ring":
            return nx.cycle_graph(check_int("ring size", int(parts[0]), low=3))
        if kind == "torus":
            rows, cols = (check_int("torus side", int(v), low=3) for v in parts[0].split("x"))
            return nx.convert_node_labels_to_integers(
                nx.grid_2d_graph(rows, cols, periodic=True), ordering="sorted"
            )
        if kind == "complete":
            return nx.complete_graph(check_int("complete size", int(parts[0]), low=1))
        if kind == "path":
            return nx.path_graph(check_int("path size", int(parts[0]), low=1))
        if kind == "star":
            return nx.star_graph(check_int("star size", int(parts[0]), low=2) - 1)
        if kind == "regular":
            degree = check_int("regular degree", int(parts[0]), low=1)
            size = check_int("regular size", int(parts[1]), low=degree + 1)
            return nx.random_regular_graph(degree, size, seed=_seed(parts, 2))
        if kind == "er":
            size = check_int("er size", int(parts[0]), low=1)
            p = check_real("er probability", float(parts[1]), low=0, high=1)
            return nx.gnp_random_graph(size, p, seed=_seed(parts, 2))
    except (IndexError, ValueError) as error:
        if isinstance(error, ValueError) and "must" in str(error):
            raise
        raise ValueError(f"cannot parse graph spec {spec!r}: {error}") from None
    raise ValueError(
        f"unknown graph spec {spec!r}; use ring:N, torus:RxC, complete:N, path:N, star:N, "
        "regular:D:N[:seed], er:N:P[:seed] or an existing .edgelist file"
    )


def as_topology(graph: object) -> Topology:
    """Normalise any supported graph description to a :class:`Topology`.

    Examples
    --------
    >>> as_topology("ring:5").laplacian().toarray()[0]
    array([ 2., -1.,  0.,  0., -1.])
    """
    if isinstance(graph, Topology):
        return graph
    if isinstance(graph, str):
        return _from_networkx(parse_graph_spec(graph))
    if isinstance(graph, nx.Graph):
        return _from_networkx(graph)
    if sp.issparse(graph) or isinstance(graph, np.ndarray):
        return _from_matrix(graph)
    raise TypeError(
        "graph must be a networkx.Graph, a scipy sparse matrix, a numpy adjacency array or a "
        f"spec string such as 'ring:16'; got {type(graph).__name__}"
    )

"""Gossip mixing matrices and the edge list that carries DECOR's pairwise secrets.

A gossip round replaces every node's model by a weighted average of its neighbours' models,
x ← W x, with W doubly stochastic (rows and columns sum to one), non-negative and supported on
the graph's edges plus the diagonal (Koloskova et al., ICML 2020, arXiv:2003.10422, Assumption
4; the mixing of Allouah et al., ICML 2024, arXiv:2405.01031, Alg. 1).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from trilemma.accountants import Topology, as_topology

__all__ = ["MIXINGS", "check_mixing", "edge_list", "metropolis_hastings", "mixing_matrix"]

MIXINGS: tuple[str, ...] = ("metropolis", "average")
"""Named mixings: ``"metropolis"`` (Metropolis–Hastings weights of the graph) and
``"average"`` (W = 11ᵀ/n, exact averaging: the central reference, whatever the graph)."""

_TOLERANCE = 1e-10


def metropolis_hastings(graph: object) -> np.ndarray:
    """Metropolis–Hastings weights W_ij = 1/(1 + max(d_i, d_j)) on edges, W_ii = 1 − Σ_j W_ij.

    Degrees count neighbours (edge weights are ignored). W is symmetric, hence doubly
    stochastic [R: Xiao & Boyd, Systems & Control Letters 53, 2004, eq. (6)].

    Examples
    --------
    On a ring every node has degree 2, so W_ij = 1/3 on the two edges and the diagonal:

    >>> metropolis_hastings("ring:4")[0]
    array([0.33333333, 0.33333333, 0.        , 0.33333333])
    """
    topology = as_topology(graph)
    pattern = topology.adjacency.copy()
    pattern.data[:] = 1.0
    degree = np.asarray(pattern.sum(axis=1)).ravel()
    rows, cols = pattern.nonzero()
    weights = 1.0 / (1.0 + np.maximum(degree[rows], degree[cols]))
    matrix = sp.coo_array((weights, (rows, cols)), shape=pattern.shape).toarray()
    matrix[np.diag_indices_from(matrix)] = 1.0 - matrix.sum(axis=1)
    return matrix


def check_mixing(matrix: object, graph: object) -> np.ndarray:
    """Return ``matrix`` as a float64 array after checking it is a gossip matrix of ``graph``.

    Raises
    ------
    ValueError
        If it is not (n, n), has negative or non-finite entries, rows or columns that do not
        sum to one (tolerance 1e-10), or a weight W_ij ≠ 0 between non-neighbours i ≠ j.
    """
    topology = as_topology(graph)
    n = topology.n_nodes
    if isinstance(matrix, sp.sparray | sp.spmatrix):  # sp.issparse, in a form mypy narrows
        matrix = matrix.toarray()
    array = np.asarray(matrix, dtype=np.float64)
    if array.shape != (n, n):
        raise ValueError(f"mixing must have shape ({n}, {n}) for this graph, got {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError("mixing must have finite, non-negative entries")
    for axis, what in ((1, "rows"), (0, "columns")):
        sums = array.sum(axis=axis)
        worst = float(np.abs(sums - 1.0).max())
        if worst > _TOLERANCE:
            raise ValueError(
                f"mixing must be doubly stochastic: its {what} sum to values up to {worst:.3g} "
                "away from 1"
            )
    allowed = topology.adjacency.toarray() != 0
    np.fill_diagonal(allowed, True)
    outside = (array != 0) & ~allowed
    if outside.any():
        i, j = np.argwhere(outside)[0]
        raise ValueError(
            f"mixing has weight {array[i, j]:.3g} between nodes {i} and {j}, which are not "
            "neighbours in the graph"
        )
    return array


def mixing_matrix(mixing: object, graph: object) -> np.ndarray:
    """The W of ``mixing``: a name of :data:`MIXINGS` or a matrix checked by
    :func:`check_mixing`."""
    topology = as_topology(graph)
    if isinstance(mixing, str):
        if mixing == "metropolis":
            return metropolis_hastings(topology)
        if mixing == "average":
            return np.full((topology.n_nodes,) * 2, 1.0 / topology.n_nodes)
        raise ValueError(f"mixing={mixing!r} must be one of {list(MIXINGS)} or a matrix")
    return check_mixing(mixing, topology)


def edge_list(topology: Topology) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(heads, tails, weights) of every undirected edge once (head < tail), in CSR order."""
    upper = sp.triu(topology.adjacency, k=1).tocoo()
    order = np.lexsort((upper.col, upper.row))
    return upper.row[order].astype(np.int64), upper.col[order].astype(np.int64), upper.data[order]

"""Robust aggregation rules and pre-aggregations, batched in torch on CPU and GPU.

Every rule maps ``(..., n, d)`` to ``(..., d)``; leading dimensions are batch dimensions.
Rows of NaN, ±inf or overflowing entries are Byzantine data: with at most f of them, every rule
but :class:`Mean` returns a finite aggregate (``rule.finite_under_garbage``).
"""

from trilemma.aggregators._base import Aggregator, Compose, PreAggregator, as_vectors
from trilemma.aggregators.coordinatewise import CWTM, CWMed, Meamed, Mean
from trilemma.aggregators.distance import MDA, Bulyan, Krum, MoNNA, MultiKrum, krum_scores
from trilemma.aggregators.iterative import CenteredClipping, GeometricMedian
from trilemma.aggregators.preaggregation import ARC, NNM, Bucketing, Clipping
from trilemma.aggregators.registry import available, get, register
from trilemma.aggregators.robustness import empirical_kappa, empirical_spectral_kappa
from trilemma.aggregators.spectral import CAF, SMEA, top_scatter_eigenvalue

__all__ = [
    "ARC",
    "CAF",
    "CWTM",
    "MDA",
    "NNM",
    "SMEA",
    "Aggregator",
    "Bucketing",
    "Bulyan",
    "CWMed",
    "CenteredClipping",
    "Clipping",
    "Compose",
    "GeometricMedian",
    "Krum",
    "Meamed",
    "Mean",
    "MoNNA",
    "MultiKrum",
    "PreAggregator",
    "as_vectors",
    "available",
    "empirical_kappa",
    "empirical_spectral_kappa",
    "get",
    "krum_scores",
    "register",
    "top_scatter_eigenvalue",
]

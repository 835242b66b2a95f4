"""Private and robust distributed mean estimation, one-way-marginal reductions, tracing attacks
and the Monte Carlo harness that measures their error against :mod:`trilemma.bounds`."""

from trilemma.estimators.data import (
    DATASETS,
    ball_records,
    check_records,
    dataset_records,
    load_dataset,
    marginal_averages,
    marginal_records,
    product_biases,
)
from trilemma.estimators.montecarlo import run_sweep
from trilemma.estimators.protocols import (
    PRIVACY_MODELS,
    STRONGEST_GRID,
    DistributedMeanEstimation,
    Estimate,
    subset_statistics,
)
from trilemma.estimators.summary import bound_holds, mean_interval, summarize
from trilemma.estimators.sweep import DATA_FAMILIES, SweepPoint, bound_kind, upper_bound
from trilemma.estimators.tracing import (
    TracingResult,
    one_way_marginals,
    roc,
    tracing_attack,
    tracing_scores,
)

__all__ = [
    "DATASETS",
    "DATA_FAMILIES",
    "PRIVACY_MODELS",
    "STRONGEST_GRID",
    "DistributedMeanEstimation",
    "Estimate",
    "SweepPoint",
    "TracingResult",
    "ball_records",
    "bound_holds",
    "bound_kind",
    "check_records",
    "dataset_records",
    "load_dataset",
    "marginal_averages",
    "marginal_records",
    "mean_interval",
    "one_way_marginals",
    "product_biases",
    "roc",
    "run_sweep",
    "subset_statistics",
    "summarize",
    "tracing_attack",
    "tracing_scores",
    "upper_bound",
]

"""Robust distributed gradient descent: problems with batched per-worker gradients, the
(G, B)-gradient dissimilarity they satisfy, the batched runner, run configs with checkpoints
and resume, and a torch.distributed backend."""

from trilemma.dgd.config import MODELS, RunConfig
from trilemma.dgd.data import SPLITS, ClassificationData, load_classification, split_workers
from trilemma.dgd.distributed import shard_bounds
from trilemma.dgd.experiment import Experiment, build_experiment, holdout
from trilemma.dgd.heterogeneity import (
    dissimilarity,
    error_floor_pair,
    exact_gb,
    exact_gb_threshold,
    sampled_gb,
)
from trilemma.dgd.mlp import ACTIVATIONS, MLPClassifier
from trilemma.dgd.problems import LeastSquares, Problem, SoftmaxRegression
from trilemma.dgd.runner import ATTACKS, RobustDGD, robust_dgd
from trilemma.dgd.state import RunState, Shard, StepRecord, Trajectory
from trilemma.dgd.tasks import (
    EXTREME_DIGITS,
    MACKEY_GLASS,
    diabetes_ridge,
    extreme_digits,
    mackey_glass,
    mackey_glass_ridge,
)
from trilemma.dgd.training import TrainingResult, train

__all__ = [
    "ACTIVATIONS",
    "ATTACKS",
    "EXTREME_DIGITS",
    "MACKEY_GLASS",
    "MODELS",
    "SPLITS",
    "ClassificationData",
    "Experiment",
    "LeastSquares",
    "MLPClassifier",
    "Problem",
    "RobustDGD",
    "RunConfig",
    "RunState",
    "Shard",
    "SoftmaxRegression",
    "StepRecord",
    "TrainingResult",
    "Trajectory",
    "build_experiment",
    "diabetes_ridge",
    "dissimilarity",
    "error_floor_pair",
    "exact_gb",
    "exact_gb_threshold",
    "extreme_digits",
    "holdout",
    "load_classification",
    "mackey_glass",
    "mackey_glass_ridge",
    "robust_dgd",
    "sampled_gb",
    "shard_bounds",
    "split_workers",
    "train",
]

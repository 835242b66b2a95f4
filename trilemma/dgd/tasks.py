"""The learning tasks of the (G, B) figures and tests, built once here from offline data.

- :func:`extreme_digits` — the "extreme heterogeneity" classification task of Allouah et al.
  (NeurIPS 2023, arXiv:2309.13591, Sec. 5): worker i holds only digit i; scikit-learn's digits
  stand in for MNIST, which is not available offline.
- :func:`diabetes_ridge` — ridge regression over honest workers holding standardised rows of
  scikit-learn's diabetes data, λ = 1/√h (the paper's ridge experiment uses λ = 1/√7).
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import torch

from trilemma._validation import check_int
from trilemma.dgd.data import load_classification, split_workers
from trilemma.dgd.problems import LeastSquares, SoftmaxRegression

__all__ = ["EXTREME_DIGITS", "diabetes_ridge", "extreme_digits"]

EXTREME_DIGITS = MappingProxyType({"honest": 10, "per_worker": 150, "ridge": 1e-4})
"""The extremely heterogeneous digits task: 10 honest workers, worker i holds 150 examples of
digit i, multinomial logistic regression with ridge 1e-4."""


def extreme_digits(seed: int = 0) -> SoftmaxRegression:
    """The :data:`EXTREME_DIGITS` problem, examples drawn with ``seed``."""
    data = load_classification("digits")
    features, labels = split_workers(
        data,
        workers=EXTREME_DIGITS["honest"],
        per_worker=EXTREME_DIGITS["per_worker"],
        kind="extreme",
        seed=check_int("seed", seed, low=0),
    )
    return SoftmaxRegression(features, labels, classes=data.classes, ridge=EXTREME_DIGITS["ridge"])


def diabetes_ridge(honest: int = 7, per_worker: int = 20) -> LeastSquares:
    """``honest`` workers holding ``per_worker`` standardised rows of scikit-learn's diabetes
    data each (d = 10, rows drawn once with seed 0), ridge λ = 1/√h.

    With one row per worker (the paper's choice on LIBSVM ``mg``) the exact B² threshold is 7.3
    here, so every f ≥ 1 of n = 7 + f lies beyond the breakdown point; 20 rows give B² ≥ 0.70
    (breakdown 0.37).
    """
    from sklearn.datasets import load_diabetes

    honest = check_int("honest", honest, low=1)
    per_worker = check_int("per_worker", per_worker, low=1)
    table, target = load_diabetes(return_X_y=True)
    if honest * per_worker > len(table):
        raise ValueError(
            f"honest * per_worker = {honest * per_worker} must be at most {len(table)} rows"
        )
    rows = np.random.default_rng(0).choice(len(table), honest * per_worker, replace=False)
    x = (table - table.mean(axis=0)) / table.std(axis=0)
    y = (target - target.mean()) / target.std()
    features = torch.from_numpy(x[rows].reshape(honest, per_worker, -1).copy())
    targets = torch.from_numpy(y[rows].reshape(honest, per_worker).copy())
    return LeastSquares(features, targets, ridge=honest**-0.5)

"""The learning tasks of the (G, B) figures and tests, built once here from offline data.

- :func:`extreme_digits` — the "extreme heterogeneity" classification task of Allouah et al.
  (NeurIPS 2023, arXiv:2309.13591, Sec. 5): worker i holds only digit i; scikit-learn's digits
  stand in for MNIST, which is not available offline.
- :func:`diabetes_ridge` — ridge regression over honest workers holding standardised rows of
  scikit-learn's diabetes data, λ = 1/√h (the paper's ridge experiment uses λ = 1/√7).
- :func:`mackey_glass_ridge` — the ridge problem of the paper's Fig. 1 (official script
  ``main/fig1.py``) built on a Mackey–Glass series integrated here (:func:`mackey_glass`), the
  source of LIBSVM's ``mg`` data, which is not available offline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypedDict

import numpy as np
import torch

from trilemma._validation import check_int, check_real
from trilemma.dgd.data import load_classification, split_workers
from trilemma.dgd.problems import LeastSquares, SoftmaxRegression

if TYPE_CHECKING:  # PEP 705 (Python 3.13 typing); only the type checker reads it
    from typing_extensions import ReadOnly

__all__ = [
    "EXTREME_DIGITS",
    "MACKEY_GLASS",
    "diabetes_ridge",
    "extreme_digits",
    "mackey_glass",
    "mackey_glass_ridge",
]


class _ExtremeDigits(TypedDict):
    honest: ReadOnly[int]
    per_worker: ReadOnly[int]
    ridge: ReadOnly[float]


EXTREME_DIGITS: Final[_ExtremeDigits] = {"honest": 10, "per_worker": 150, "ridge": 1e-4}
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


class _MackeyGlass(TypedDict):
    rows: ReadOnly[int]
    lags: ReadOnly[tuple[int, ...]]
    horizon: ReadOnly[int]
    train: ReadOnly[float]
    seed: ReadOnly[int]


MACKEY_GLASS: Final[_MackeyGlass] = {
    "rows": 1385,
    "lags": (30, 24, 18, 12, 6, 0),
    "horizon": 6,
    "train": 0.8,
    "seed": 1,
}
"""The regression table built from :func:`mackey_glass` in :func:`mackey_glass_ridge`: 1385 rows
(as LIBSVM's ``mg``), features x(t − 30), x(t − 24), …, x(t) (the four-lag embedding
x(t − 18), x(t − 12), x(t − 6), x(t) of the usual Mackey–Glass benchmark extended to six lags),
target x(t + 6); rows permuted with numpy's legacy generator seeded 1 and the first 80 % kept
for training, as the official script does."""


def mackey_glass(
    length: int,
    *,
    tau: float = 17.0,
    a: float = 0.2,
    b: float = 0.1,
    power: int = 10,
    history: float = 1.2,
    dt: float = 0.1,
    transient: int = 1000,
) -> np.ndarray:
    """The Mackey–Glass series x(t) at t = 1, …, ``length`` after a discarded ``transient``.

    dx/dt = a x(t − τ) / (1 + x(t − τ)^power) − b x(t), with x = ``history`` on [−τ, 0]
    (Mackey & Glass, Science 197:287–289, 1977; τ = 17, a = 0.2, b = 0.1, power 10 is the
    chaotic regime of the usual benchmark and of LIBSVM's ``mg``) [V: the equation and
    parameters as stated in the R package frbs's ``frbsData`` documentation].

    Integrated deterministically with Heun's method (explicit trapezoid) on a grid of step
    ``dt`` that divides τ, so both delayed values x(t_k − τ) and x(t_{k+1} − τ) are grid values
    and nothing is interpolated [D]: with g(x, y) = a y/(1 + yᵖ) − b x,
    k₁ = g(x_k, x_{k−r}), k₂ = g(x_k + dt k₁, x_{k+1−r}), x_{k+1} = x_k + dt (k₁ + k₂)/2,
    r = τ/dt. Second-order accurate; a chaotic series stays close to the exact solution only
    for a few multiples of τ, so this is *a* Mackey–Glass series, not LIBSVM's samples.

    Parameters
    ----------
    length : int
        Number of unit-time samples returned, ≥ 1.
    tau, a, b : float
        Delay τ > 0 (a multiple of ``dt``), production a ≥ 0, decay b ≥ 0.
    power : int
        Exponent of the Hill term, ≥ 1.
    history : float
        Constant initial history x(t), t ∈ [−τ, 0].
    dt : float
        Integration step in (0, 1], with 1/dt and τ/dt integers.
    transient : int
        Unit-time samples discarded before the returned ones, ≥ 0.

    Returns
    -------
    ndarray
        x(transient + 1), …, x(transient + length), float64.

    Raises
    ------
    ValueError
        If ``dt`` does not divide 1 and τ, or a parameter is out of range.

    Examples
    --------
    Without production the series decays at Heun's per-step factor 1 − b dt + (b dt)²/2:

    >>> x = mackey_glass(2, a=0.0, b=0.5, history=1.0, dt=0.5, transient=0)
    >>> bool(np.allclose(x, [(1 - 0.25 + 0.25**2 / 2) ** 2, (1 - 0.25 + 0.25**2 / 2) ** 4]))
    True
    """
    length = check_int("length", length, low=1)
    transient = check_int("transient", transient, low=0)
    power = check_int("power", power, low=1)
    tau = check_real("tau", tau, low=0, low_open=True)
    a = check_real("a", a, low=0)
    b = check_real("b", b, low=0)
    history = check_real("history", history)
    dt = check_real("dt", dt, low=0, high=1, low_open=True)
    per_unit, lag = round(1 / dt), round(tau / dt)
    if abs(per_unit * dt - 1) > 1e-9 or abs(lag * dt - tau) > 1e-9 * max(1.0, tau):
        raise ValueError(f"dt={dt} must divide 1 and tau={tau} into whole steps")

    def slope(x: float, delayed: float) -> float:
        return a * delayed / (1 + delayed**power) - b * x

    steps = (transient + length) * per_unit
    series = [history] * (lag + 1)  # x at t = −τ, …, 0
    for k in range(lag, lag + steps):
        first = slope(series[k], series[k - lag])
        second = slope(series[k] + dt * first, series[k + 1 - lag])
        series.append(series[k] + dt * (first + second) / 2)
    return np.asarray(series[lag + (transient + 1) * per_unit :: per_unit], dtype=np.float64)


def mackey_glass_ridge(honest: int = 7) -> LeastSquares:
    """The ridge problem of the paper's Fig. 1 on a Mackey–Glass table (:data:`MACKEY_GLASS`).

    Protocol of the official script ``main/fig1.py`` (Allouah et al., NeurIPS 2023,
    arXiv:2309.13591) [V, read]: permute the rows (numpy seed 1), keep the first 80 % for
    training, take the first ``honest`` training rows, features = (1, first feature) (d = 2), one
    row per honest worker, L_H(θ) = (1/2h)‖Xθ − y‖² + (λ/2)‖θ‖² with λ = 1/√7.

    What differs: the table is generated (:func:`mackey_glass`, τ = 17, lags and horizon of
    :data:`MACKEY_GLASS` chosen here) instead of LIBSVM's ``mg`` file, whose lag embedding is
    not documented offline; as with LIBSVM's scaled version, each feature is mapped to [−1, 1]
    by its minimum and maximum over the table and the target is left unscaled. λ stays 1/√7
    for any ``honest``, as in the script.

    Parameters
    ----------
    honest : int
        Number of honest workers h (one training row each), 1 ≤ h ≤ 1108.

    Returns
    -------
    LeastSquares
        Features ``(h, 1, 2)``, targets ``(h, 1)``, float64.
    """
    rows, lags, horizon = MACKEY_GLASS["rows"], MACKEY_GLASS["lags"], MACKEY_GLASS["horizon"]
    train = int(rows * MACKEY_GLASS["train"])
    honest = check_int("honest", honest, low=1, high=train)
    span = max(lags)
    series = mackey_glass(span + rows + horizon)
    times = np.arange(span, span + rows)
    table = np.stack([series[times - lag] for lag in lags], axis=1)
    low, high = table.min(axis=0), table.max(axis=0)
    table = 2 * (table - low) / (high - low) - 1
    target = series[times + horizon]
    order = np.random.RandomState(MACKEY_GLASS["seed"]).permutation(rows)  # the script's draw
    chosen = order[:train][:honest]
    features = np.stack([np.ones(honest), table[chosen, 0]], axis=1)
    return LeastSquares(
        torch.from_numpy(features[:, None, :].copy()),
        torch.from_numpy(target[chosen][:, None].copy()),
        ridge=7**-0.5,
    )

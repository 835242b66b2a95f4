"""Lower bounds of the privacy–robustness–utility trilemma of distributed mean estimation.

Setting as in :mod:`trilemma.bounds.trilemma_upper` (Allouah, Guerraoui, Gupta, Pinot, Stephan,
ICML 2023, arXiv:2302.04787). These are Ω(·) statements whose constants are left implicit: the
constant is a parameter (default 1), never fitted to data; experiments compare shapes. Their
status differs: :func:`central_marginal_lower_bound` is read in its source [V];
:func:`distributed_dp_lower_bound` is a recalled shape [R]; :func:`trilemma_lower_bound` is a
*conjectured* shape — its f term is not a lower bound over protocols (see its docstring).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from trilemma._arrays import nonnegative, positive, positive_integers, unit_open, worker_counts

__all__ = ["central_marginal_lower_bound", "distributed_dp_lower_bound", "trilemma_lower_bound"]


def central_marginal_lower_bound(
    *,
    d: ArrayLike,
    n_records: ArrayLike,
    epsilon: ArrayLike,
    delta: ArrayLike,
    clip: ArrayLike = 1.0,
    constant: ArrayLike = 1.0,
) -> np.ndarray:
    """c · C² · min{1, d ln(1/δ)/(ε² N²)}: central one-way-marginal lower bound.

    Source: Steinke & Ullman, "Between Pure and Approximate Differential Privacy", J. Privacy
    and Confidentiality 2016 (arXiv:1501.06095) [V, THEORY §4]: answering the d one-way
    marginals of D ∈ {±1}^{N×d} with mean absolute error α under (ε, δ)-DP needs
    N = Ω(√(d ln(1/δ))/(αε)) (for δ between 2^(−N) and 1/N^(1+Ω(1))). Rows scaled to
    {±C/√d}^d have norm C and the ℓ₂² error of the mean is C²α², hence the form above. The
    constant c is not given by the theorem: it is a parameter, never fitted.

    Examples
    --------
    >>> float(central_marginal_lower_bound(d=100, n_records=1000, epsilon=1.0, delta=np.exp(-1)))
    0.0001
    """
    rate = (
        positive_integers("d", d)
        * np.log(1.0 / unit_open("delta", delta))
        / (positive("epsilon", epsilon) ** 2 * positive_integers("n_records", n_records) ** 2)
    )
    return nonnegative("constant", constant) * positive("clip", clip) ** 2 * np.minimum(1.0, rate)


def distributed_dp_lower_bound(
    *,
    d: ArrayLike,
    n: ArrayLike,
    m: ArrayLike,
    epsilon: ArrayLike,
    delta: ArrayLike,
    clip: ArrayLike = 1.0,
    constant: ArrayLike = 1.0,
) -> np.ndarray:
    """c · C² · min{1, d ln(1/δ)/(ε² n m²)}: the distributed-DP term (no Byzantine worker).

    Each of n workers must make its own message (ε, δ)-DP w.r.t. one of its m records; the
    error is then of order d ln(1/δ)/(ε² n m²), a factor n above the central rate of
    :func:`central_marginal_lower_bound` with N = nm (Allouah et al., ICML 2023,
    arXiv:2302.04787, lower bound by reduction to one-way marginals). [R] The exact statement
    and its conditions could not be read here: the shape follows THEORY §4, the constant is a
    parameter. :func:`honest_average_error` attains this shape (Gaussian mechanism).

    Examples
    --------
    >>> a = distributed_dp_lower_bound(d=10, n=100, m=10, epsilon=1.0, delta=1e-5)
    >>> b = distributed_dp_lower_bound(d=10, n=100, m=20, epsilon=1.0, delta=1e-5)
    >>> round(float(a / b), 12)
    4.0
    """
    rate = (
        positive_integers("d", d)
        * np.log(1.0 / unit_open("delta", delta))
        / (
            positive("epsilon", epsilon) ** 2
            * positive_integers("n", n)
            * positive_integers("m", m) ** 2
        )
    )
    return nonnegative("constant", constant) * positive("clip", clip) ** 2 * np.minimum(1.0, rate)


def trilemma_lower_bound(
    *,
    d: ArrayLike,
    n: ArrayLike,
    f: ArrayLike,
    m: ArrayLike,
    epsilon: ArrayLike,
    delta: ArrayLike,
    clip: ArrayLike = 1.0,
    constant: ArrayLike = 1.0,
) -> np.ndarray:
    """c · C² · min{1, (d + f) ln(1/δ)/(ε² n m²)}: a *conjectured shape*, not a proven bound.

    Status: conjectured; the constant c is a parameter (default 1), never fitted. THEORY §4
    recalls the lower bound of Allouah et al. (ICML 2023, arXiv:2302.04787) as
    Ω̃((d + f)/(ε² n m²)) for f/n bounded away from ½, matched by SMEA up to logarithms — with
    low confidence in the exact form: the theorem could not be read here. What the package
    can say about the two terms:

    - the d term is :func:`distributed_dp_lower_bound` (a recalled shape [R], reduced to the
      one-way-marginal bound of :func:`central_marginal_lower_bound` [V]);
    - the f term is **not** a lower bound over protocols. κ ≥ f/(n − 2f)
      (:func:`trilemma.bounds.kappa_lower_bound` [D]) bounds what an (f, κ)-robust
      *aggregation rule* pays on the noisy messages (a shift of order one noise std
      s ∝ √ln(1/δ)/(εm) hidden along one direction), not what every protocol must pay: at
      d = 1 with f ≫ d and f² ≪ n, per-worker Gaussian noise followed by a trimmed mean has
      error of order s²(1 + f² ln(n/f)/n)/n, below the (d + f) s²/n of this shape
      (THEORY §4, Caution [D]).

    So the sum is labelled conjectured; the figures draw it as a shape to compare against,
    not as a bound that any estimator must respect. f = 0 recovers
    :func:`distributed_dp_lower_bound`.

    Examples
    --------
    >>> kw = dict(n=20, m=10, epsilon=1.0, delta=1e-5)
    >>> bool(trilemma_lower_bound(d=8, f=0, **kw) == distributed_dp_lower_bound(d=8, **kw))
    True
    """
    n_array, f_array = worker_counts(n, f)
    rate = (
        (positive_integers("d", d) + f_array)
        * np.log(1.0 / unit_open("delta", delta))
        / (positive("epsilon", epsilon) ** 2 * n_array * positive_integers("m", m) ** 2)
    )
    return nonnegative("constant", constant) * positive("clip", clip) ** 2 * np.minimum(1.0, rate)

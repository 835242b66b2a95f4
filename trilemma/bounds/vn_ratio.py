"""The variance-to-norm (VN) ratio condition of DP + Byzantine-resilient SGD, and the batch
size it forces.

Source: Guerraoui, Gupta, Pinot, Rouault, Stephan, "Differential Privacy and Byzantine
Resilience in SGD: Do They Add Up?", PODC 2021 (arXiv:2102.08166) [V, THEORY §5]. A rule F
tolerates f Byzantine workers when the honest gradients G satisfy √(E‖G − EG‖²) ≤ k_F ‖∇Q(θ)‖.
Each honest worker averages a batch of b clipped gradients and adds Gaussian noise of std
(2C/b)√(2 ln(1.25/δ))/ε per coordinate (sensitivity 2C/b; the paper's code clips the batch
gradient to C with the same std), so the noise alone contributes d times that variance.

Where each constant k_F comes from [V, read in the code, formula by formula]:

- MDA: the PODC 2021 authors' code, LPD-EPFL/DifferentialByzantine (commit 132d4fe),
  ``aggregators/brute.py``, ``upper_bound`` — the only rule of that repository besides the
  average.
- Median, Krum, Bulyan: *not* from the PODC 2021 code but from LPD-EPFL/ByzantineMomentum
  (commit 1ef2c84), the code of a different paper — El Mhamdi, Guerraoui, Rouault, "Distributed
  Momentum for Byzantine-resilient Stochastic Gradient Descent", ICLR 2021 — functions
  ``upper_bound`` of ``aggregators/median.py``, ``aggregators/krum.py`` and
  ``aggregators/bulyan.py``. PODC 2021 uses the same VN-ratio condition; whether its analysis
  uses these constants for these rules was not checked.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike

from trilemma._arrays import (
    nonnegative,
    positive,
    positive_integers,
    worker_counts,
)
from trilemma._validation import check_choice
from trilemma.bounds.trilemma_upper import gaussian_noise_std

__all__ = ["VN_RULES", "vn_ratio_constant", "vn_required_batch_size"]


def _mda(n: np.ndarray, f: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return (n - f) / (np.sqrt(8.0) * f)


def _median(n: np.ndarray, f: np.ndarray) -> np.ndarray:
    return 1.0 / np.sqrt(n - f)


def _krum(n: np.ndarray, f: np.ndarray) -> np.ndarray:
    margin = n - 2.0 * f - 2.0
    if np.any(margin <= 0):
        bad = np.broadcast_to(n, margin.shape)[margin <= 0].flat[0]
        raise ValueError(f"krum/bulyan VN constant needs n > 2f + 2, got n={bad:g}")
    return 1.0 / np.sqrt(2.0 * (n - f + f * (n + f * (n - f - 2.0) - 2.0) / margin))


def _bulyan(n: np.ndarray, f: np.ndarray) -> np.ndarray:
    short = n < 4.0 * f + 3.0
    if np.any(short):
        bad = np.broadcast_to(n, short.shape)[short].flat[0]
        raise ValueError(f"bulyan needs n >= 4f + 3, got n={bad:g}")
    return _krum(n, f)


#: rule → k_F(n, f): MDA from the PODC 2021 code (DifferentialByzantine), Median, Krum and
#: Bulyan from the ICLR 2021 code (ByzantineMomentum); see the module docstring.
VN_RULES = MappingProxyType({"mda": _mda, "median": _median, "krum": _krum, "bulyan": _bulyan})


def vn_ratio_constant(rule: str, *, n: ArrayLike, f: ArrayLike) -> np.ndarray:
    """k_F of the VN-ratio condition √(E‖G − EG‖²) ≤ k_F ‖∇Q(θ)‖.

    ============  =====================================================  ====================
    rule          k_F [V, THEORY §5]                                     read in
    ============  =====================================================  ====================
    mda           (n − f)/(√8 f)                                         DifferentialByzantine
                                                                         ``aggregators/brute.py``
    median        1/√(n − f)                                             ByzantineMomentum
                                                                         ``aggregators/median.py``
    krum, bulyan  1/√(2(n − f + f(n + f(n − f − 2) − 2)/(n − 2f − 2)))   ByzantineMomentum
                                                                         ``aggregators/krum.py``,
                                                                         ``bulyan.py``
    ============  =====================================================  ====================

    LPD-EPFL/DifferentialByzantine is the code of PODC 2021 (arXiv:2102.08166);
    LPD-EPFL/ByzantineMomentum that of El Mhamdi, Guerraoui, Rouault, ICLR 2021 (a different
    paper). The median constant depends on n − f only, so it grows with f at fixed n (as in
    the reference code).

    Parameters
    ----------
    rule : {"mda", "median", "krum", "bulyan"}
    n, f : int or array of int
        Workers and Byzantine workers, 2f < n (krum needs n > 2f + 2, bulyan n ≥ 4f + 3);
        f = 0 gives inf for MDA.

    Examples
    --------
    >>> float(vn_ratio_constant("median", n=11, f=2))
    0.3333333333333333
    >>> round(float(vn_ratio_constant("mda", n=11, f=5)), 6)
    0.424264
    """
    name = check_choice("rule", rule, VN_RULES)
    n_array, f_array = worker_counts(n, f)
    return VN_RULES[name](n_array, f_array)


def vn_required_batch_size(
    *,
    rule: str,
    n: ArrayLike,
    f: ArrayLike,
    d: ArrayLike,
    epsilon: ArrayLike,
    delta: ArrayLike,
    clip: ArrayLike,
    gradient_norm: ArrayLike,
    gradient_variance: ArrayLike = 0.0,
) -> np.ndarray:
    """Smallest batch size b for which DP noise + sampling noise meet the VN condition.

    Derivation [D]: with A = 2C√(2 ln(1.25/δ))/ε (so the per-coordinate noise std is A/b),
    K = k_F ‖∇Q‖ and V the per-example gradient variance E‖g − ∇Q‖², the condition reads
    V/b + d A²/b² ≤ K², i.e. K²b² − Vb − dA² ≥ 0, whose positive root gives
    b ≥ (V + √(V² + 4dA²K²))/(2K²) (this form has no cancellation). With V = 0 this is
    b ≥ √d · A/K = 2C√(2d ln(1.25/δ))/(ε k_F ‖∇Q‖), the √d growth of PODC 2021 (THEORY §5).
    Returned as a real number (round up for an actual batch); inf when k_F or ‖∇Q‖ is 0, and
    0 when k_F is inf (MDA with f = 0).

    Parameters
    ----------
    rule, n, f
        As in :func:`vn_ratio_constant`.
    d : int or array
        Model dimension.
    epsilon, delta : float or array
        Per-step worker budget of the Gaussian mechanism (ε > 0, δ ∈ (0, 1)).
    clip : float or array
        Per-example clipping norm C.
    gradient_norm : float or array
        ‖∇Q(θ)‖ at the point of interest (≥ 0).
    gradient_variance : float or array
        Per-example sampling variance V = E‖g − ∇Q‖² (default 0: DP noise only).

    Examples
    --------
    The required batch grows like √d:

    >>> kw = dict(rule="mda", n=11, f=5, epsilon=0.5, delta=1e-5, clip=1.0, gradient_norm=1.0)
    >>> b1, b4 = vn_required_batch_size(d=100, **kw), vn_required_batch_size(d=400, **kw)
    >>> round(float(b4 / b1), 12)
    2.0
    """
    k = vn_ratio_constant(rule, n=n, f=f) * nonnegative("gradient_norm", gradient_norm)
    a = gaussian_noise_std(sensitivity=2.0 * positive("clip", clip), epsilon=epsilon, delta=delta)
    dim = positive_integers("d", d)
    v = nonnegative("gradient_variance", gradient_variance)
    noise = dim * a**2
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (v + np.sqrt(v**2 + 4.0 * noise * k**2)) / (2.0 * k**2)
    return np.where(k == 0, np.inf, np.where(np.isinf(k), 0.0, b))

"""(f, κ)-robustness of aggregation rules: the universal lower bound and the table of κ.

Definition (Allouah, Farhadkhani, Guerraoui, Gupta, Pinot, Stephan, "Fixing by Mixing: A Recipe
for Optimal Byzantine ML under Heterogeneity", AISTATS 2023, arXiv:2302.01772) [R,
standard]: F is (f, κ)-robust if for all x_1..x_n ∈ ℝ^d and every S ⊆ [n] with |S| = n − f,

    ‖F(x) − x̄_S‖² ≤ κ · (1/|S|) Σ_{i∈S} ‖x_i − x̄_S‖².

Spectral variant (Allouah, Guerraoui, Gupta, Pinot, Stephan, "On the Privacy-Robustness-Utility
Trilemma in Distributed Learning", ICML 2023, arXiv:2302.04787): the right-hand side is
κ_sp · λ_max(Σ_S) with Σ_S = (1/|S|) Σ_{i∈S} (x_i − x̄_S)(x_i − x̄_S)ᵀ. Since λ_max(Σ_S) ≤ tr Σ_S,
κ_sp-spectral robustness implies (f, κ_sp)-robustness.

Tags, as in docs/THEORY.md: [V] read in the source named; [D] derived here, the derivation is in
the docstring; [R] recalled from the paper and not verified (the constant is what
:mod:`trilemma.proofs_checks.robustness` tries to falsify). A recalled constant that the
package's own instances refute is not served: MDA's Table 1 row was replaced by the derived
:func:`mda_kappa` for that reason.

The empirical counterparts (κ̂ measured on tensors) live beside the rules, in
:mod:`trilemma.aggregators.robustness`. All functions here are pure, keyword-only and vectorised
over numpy arrays of n and f.
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from trilemma._arrays import worker_counts
from trilemma._validation import check_choice

__all__ = [
    "KAPPA_TABLE",
    "KappaEntry",
    "kappa",
    "kappa_lower_bound",
    "mda_kappa",
    "mda_kappa_lower_bound",
    "nnm_kappa",
    "smea_spectral_kappa",
]

_TABLE_1 = "[R] recalled from the paper's Table 1, constant unverified"
_PAPER = "Allouah et al., AISTATS 2023, arXiv:2302.01772"


def kappa_lower_bound(*, n: ArrayLike, f: ArrayLike) -> np.ndarray:
    """f/(n − 2f): no aggregation rule is (f, κ)-robust with a smaller κ.

    Derivation [D] (the bound of Allouah et al., AISTATS 2023, arXiv:2302.01772): take scalars,
    n − f zeros and f ones. S₁ = the n − f zeros has variance 0, so (f, κ)-robustness with any
    finite κ forces F(x) = x̄_{S₁} = 0. S₂ = n − 2f zeros and the f ones (|S₂| = n − f) has mean
    p = f/(n − f) and variance p(1 − p) = f(n − 2f)/(n − f)². The error of F(x) = 0 on S₂ is
    p² = f²/(n − f)², so κ ≥ p²/(p(1 − p)) = p/(1 − p) = f/(n − 2f). The instance attains the
    bound: a rule that outputs 0 on it has ratio exactly f/(n − 2f) on S₂ and 0 on S₁.

    Parameters
    ----------
    n, f : int or array of int
        Number of workers and of Byzantine workers (broadcast together).

    Returns
    -------
    ndarray
        f/(n − 2f), float64, shape of the broadcast inputs.

    Raises
    ------
    ValueError
        If f < 0 or 2f ≥ n (the message names the offending values).

    Examples
    --------
    >>> float(kappa_lower_bound(n=10, f=3))
    0.75
    >>> kappa_lower_bound(n=np.array([5, 10, 20]), f=2).tolist()
    [2.0, 0.3333333333333333, 0.125]
    >>> kappa_lower_bound(n=9, f=5)
    Traceback (most recent call last):
    ...
    ValueError: f=5 must satisfy 2f < n=9 (2f=10)
    """
    n_array, f_array = worker_counts(n, f)
    return f_array / (n_array - 2.0 * f_array)


def smea_spectral_kappa(*, n: ArrayLike, f: ArrayLike) -> np.ndarray:
    """κ_sp = 4f/(n − 2f): SMEA is spectrally (f, κ_sp)-robust.

    SMEA (Allouah et al., ICML 2023, arXiv:2302.04787, Alg. 2) outputs x̄_{S*} with
    S* ∈ argmin_{|S| = n−f} λ_max(Σ_S). Derivation [D]:

    1. For T ⊆ A and a unit vector u, with t = |T|, a = |A|: x̄_T − x̄_A = ((a − t)/a)
       (x̄_T − x̄_{A∖T}), and the between-group part of the variance of ⟨x_i, u⟩ over A is
       (t(a − t)/a²) ⟨x̄_T − x̄_{A∖T}, u⟩² ≤ uᵀΣ_A u. Hence ⟨x̄_T − x̄_A, u⟩² ≤ ((a − t)/t) uᵀΣ_A u,
       and with u along x̄_T − x̄_A: ‖x̄_T − x̄_A‖² ≤ ((a − t)/t) λ_max(Σ_A).
    2. Let S be any set of size n − f and T = S ∩ S*, so |T| ≥ n − 2f and (a − t)/t ≤
       f/(n − 2f) for A ∈ {S, S*}. Minimality gives λ_max(Σ_{S*}) ≤ λ_max(Σ_S).
    3. ‖x̄_{S*} − x̄_S‖ ≤ ‖x̄_{S*} − x̄_T‖ + ‖x̄_T − x̄_S‖ ≤ 2 √(f/(n − 2f) · λ_max(Σ_S)), so
       ‖x̄_{S*} − x̄_S‖² ≤ (4f/(n − 2f)) λ_max(Σ_S).

    As λ_max(Σ_S) ≤ tr Σ_S, SMEA is also (f, 4f/(n − 2f))-robust: within a factor 4 of
    :func:`kappa_lower_bound`.

    Examples
    --------
    >>> float(smea_spectral_kappa(n=10, f=3))
    3.0
    """
    n_array, f_array = worker_counts(n, f)
    return 4.0 * f_array / (n_array - 2.0 * f_array)


def mda_kappa(*, n: ArrayLike, f: ArrayLike) -> np.ndarray:
    """κ_MDA = (√(f/(n − 2f)) + f·√(2/(n − f)))² ≤ 8f²/(n − f): MDA is (f, κ_MDA)-robust.

    MDA (El Mhamdi et al., ICML 2018, arXiv:1802.07927) outputs x̄_{S*} for a set S* of n − f
    vectors of minimum diameter (any minimiser). Derivation [D]; write a = n − f,
    Var_A = (1/|A|) Σ_{i∈A} ‖x_i − x̄_A‖² and diam(A) = max_{i,j∈A} ‖x_i − x_j‖. Let S be any set
    of size a and T = S ∩ S*, so t = |T| ≥ n − 2f ≥ 1 and |S∖T| = |S*∖T| = a − t ≤ f.

    1. For A ⊇ T: x̄_A − x̄_T = ((a − t)/a)(x̄_{A∖T} − x̄_T), and x̄_{A∖T} − x̄_T is the mean of
       the differences x_i − x_j (i ∈ A∖T, j ∈ T), so its norm is ≤ diam(A). With A = S* and
       diam(S*) ≤ diam(S) (S* is a minimiser): ‖x̄_{S*} − x̄_T‖ ≤ (f/(n − f))·diam(S).
    2. For i, j ∈ S: ‖x_i − x_j‖² ≤ 2‖x_i − x̄_S‖² + 2‖x_j − x̄_S‖² ≤ 2 Σ_{k∈S} ‖x_k − x̄_S‖², so
       diam(S)² ≤ 2(n − f)·Var_S, and step 1 gives ‖x̄_{S*} − x̄_T‖ ≤ f·√(2/(n − f))·√Var_S.
    3. The between-group part of Var_S is (t(a − t)/a²)‖x̄_T − x̄_{S∖T}‖² ≤ Var_S, and
       x̄_T − x̄_S = ((a − t)/a)(x̄_T − x̄_{S∖T}), so ‖x̄_T − x̄_S‖² ≤ ((a − t)/t)·Var_S ≤
       (f/(n − 2f))·Var_S (step 1 of :func:`smea_spectral_kappa`, with the trace).
    4. Triangle inequality: ‖x̄_{S*} − x̄_S‖ ≤ (f·√(2/(n − f)) + √(f/(n − 2f)))·√Var_S.

    Bounding ‖x̄_T − x̄_S‖ by step 1 as well (≤ (f/(n − f))·diam(S)) gives the simpler
    κ ≤ 8f²/(n − f); the form returned is never larger, since f/(n − 2f) ≤ 2f²/(n − f) whenever
    1 ≤ f < n/2 ((2f − 1)n ≥ (2f − 1)(2f + 1) ≥ 4f² − f). The order is f²/n + f/n, and
    :func:`mda_kappa_lower_bound` (of order f²/n) shows the f² is real: MDA is not within a
    constant of :func:`kappa_lower_bound` when f ≫ 1. It replaces the row
    (4f/(n − f))(1 + f/(n − 2f))² recalled from Allouah et al. (AISTATS 2023,
    arXiv:2302.01772, Table 1), which is of order f/n and which the instances of
    :func:`mda_kappa_lower_bound` exceed (n = 18, f = 4: 2.89 > 2.24).

    Parameters
    ----------
    n, f : int or array of int
        Number of workers and of Byzantine workers, 0 ≤ f, 2f < n (broadcast together).

    Returns
    -------
    ndarray
        κ_MDA, float64 (0 at f = 0, where MDA is the mean).

    The bound is attained at n = 3, f = 1: honest 0 and 1, Byzantine 2 − t; MDA averages 1
    and 2 − t, so κ̂ = (1 − t/2)²/(1/4) → 4 = κ_MDA (the search of ``trilemma check
    robustness`` finds 3.996 there).

    Examples
    --------
    >>> float(mda_kappa(n=3, f=1))  # (1 + 1)²: equal to 8f²/(n − f) at n = 3, f = 1
    4.0
    >>> round(float(mda_kappa(n=18, f=4)), 4), round(8 * 4**2 / 14, 4)
    (4.5981, 9.1429)
    """
    n_array, f_array = worker_counts(n, f)
    return (
        np.sqrt(f_array / (n_array - 2.0 * f_array)) + f_array * np.sqrt(2.0 / (n_array - f_array))
    ) ** 2


def mda_kappa_lower_bound(*, n: ArrayLike, f: ArrayLike) -> np.ndarray:
    """(2f + 1)²/(2(n − f)) for f ≥ 1 (0 for f = 0): MDA is not (f, κ)-robust with a smaller κ.

    Derivation [D], scalars, with ½ < b < 1 and 0 < η small (the value is the limit b → 1,
    η → 0 of the ratios below, so no smaller κ holds). Byzantine: f copies of b. Honest
    (|H| = n − f): −½, ½, f − 1 points at −η and n − 2f − 1 at 0.

    - S* = the f copies of b, ½ and the n − 2f − 1 zeros is the only set of n − f points of
      minimum diameter (b, or b − ½ when n = 2f + 1 and there is no zero). Any other set with
      k ≥ 1 copies of b holds n − f − k honest points other than S*'s (k = f) or more than the
      n − 2f points ½ and zeros (k < f), hence −½ or a point at −η: its diameter is ≥ b + η.
      With k = 0 it is H, of diameter 1.
    - x̄_{S*} = (f·b + ½)/(n − f), x̄_H = −(f − 1)η/(n − f) → 0 and
      Var_H = (½ + (f − 1)η²)/(n − f) − x̄_H² → 1/(2(n − f)).
    - κ̂ = ‖x̄_{S*} − x̄_H‖²/Var_H → 2(f + ½)²/(n − f) = (2f + 1)²/(2(n − f)).

    The two-dimensional instance that first refuted the recalled Table 1 row (honest (±½, 0)
    and n − f − 2 points near 0, f Byzantine copies of (0, y), y → 1) gives 2f²/(n − f), less
    than this one. The value exceeds :func:`kappa_lower_bound` by at least
    (2f² + 2f + 1)/(2(n − f)(n − 2f)) and lies below :func:`mda_kappa`; the two are within a
    factor (1 + 1/√2)² ≈ 2.91 of each other (since (n − f)/(n − 2f) ≤ f + 1), and their ratio
    tends to 1 as f → ∞ with f/n → 0: MDA's κ is 2f²/n to first order there.
    ``tests/aggregators/test_kappa_search.py`` reproduces it with the package's MDA.

    Parameters
    ----------
    n, f : int or array of int
        Number of workers and of Byzantine workers, 0 ≤ f, 2f < n (broadcast together).

    Examples
    --------
    >>> round(float(mda_kappa_lower_bound(n=18, f=4)), 4)  # 81/28
    2.8929
    >>> float(mda_kappa_lower_bound(n=5, f=0))
    0.0
    """
    n_array, f_array = worker_counts(n, f)
    return np.where(f_array == 0, 0.0, (2.0 * f_array + 1.0) ** 2 / (2.0 * (n_array - f_array)))


def _cwtm(n: np.ndarray, f: np.ndarray) -> np.ndarray:
    ratio = f / (n - 2.0 * f)
    return 6.0 * ratio * (1.0 + ratio)


def _median_like(n: np.ndarray, f: np.ndarray) -> np.ndarray:
    return 4.0 * (1.0 + f / (n - 2.0 * f)) ** 2


def _krum(n: np.ndarray, f: np.ndarray) -> np.ndarray:
    return 6.0 * (1.0 + f / (n - 2.0 * f))


def _mda(n: np.ndarray, f: np.ndarray) -> np.ndarray:
    return mda_kappa(n=n, f=f)


def _smea(n: np.ndarray, f: np.ndarray) -> np.ndarray:
    return 4.0 * f / (n - 2.0 * f)


def _mean(n: np.ndarray, f: np.ndarray) -> np.ndarray:
    return np.where(f == 0, 0.0, np.inf)


class KappaEntry(NamedTuple):
    """One row of :data:`KAPPA_TABLE`: ``formula(n, f)`` on validated float arrays, and where
    the formula comes from ([V] read, [D] derived, [R] recalled and unverified)."""

    formula: Callable[[np.ndarray, np.ndarray], np.ndarray]
    provenance: str


#: Upper bounds on the (f, κ)-robustness constant, name → (formula(n, f), provenance).
KAPPA_TABLE: MappingProxyType[str, KappaEntry] = MappingProxyType(
    {
        "cwtm": KappaEntry(_cwtm, f"(6f/(n−2f))(1 + f/(n−2f)); {_TABLE_1} ({_PAPER})"),
        "cwmed": KappaEntry(_median_like, f"4(1 + f/(n−2f))²; {_TABLE_1} ({_PAPER})"),
        "gm": KappaEntry(_median_like, f"4(1 + f/(n−2f))²; {_TABLE_1} ({_PAPER})"),
        "krum": KappaEntry(_krum, f"6(1 + f/(n−2f)); {_TABLE_1} ({_PAPER})"),
        "mda": KappaEntry(
            _mda,
            "(√(f/(n−2f)) + f√(2/(n−f)))² ≤ 8f²/(n−f); [D] see mda_kappa; replaces the "
            f"recalled Table 1 row (4f/(n−f))(1 + f/(n−2f))² ({_PAPER}), refuted by the "
            "instances of mda_kappa_lower_bound",
        ),
        "smea": KappaEntry(
            _smea,
            "4f/(n−2f); [D] spectral robustness of SMEA (Allouah et al., ICML 2023, "
            "arXiv:2302.04787), implies (f, κ)-robustness as λ_max ≤ trace; "
            "see smea_spectral_kappa",
        ),
        "mean": KappaEntry(
            _mean,
            "0 if f = 0 else inf; [D] one Byzantine vector sent to infinity moves the mean "
            "without bound",
        ),
    }
)


def nnm_kappa(*, n: ArrayLike, f: ArrayLike, kappa_rule: ArrayLike) -> np.ndarray:
    """κ of NNM ∘ F, (8f/(n − f))(κ_F + 1), for F (f, κ_F)-robust.

    Source: Allouah et al., AISTATS 2023 (arXiv:2302.01772), the nearest-neighbour-mixing
    theorem — [R] recalled from the paper, constant unverified. With κ_F = O(1) (Krum, CWMed, GM) it
    turns a constant κ into O(f/n), the order of :func:`kappa_lower_bound`.

    Parameters
    ----------
    n, f : int or array of int
        Number of workers and of Byzantine workers.
    kappa_rule : float or array
        κ_F of the rule applied after NNM (≥ 0; ``inf`` gives ``inf``).

    Examples
    --------
    >>> float(nnm_kappa(n=10, f=2, kappa_rule=3.0))
    8.0
    """
    n_array, f_array = worker_counts(n, f)
    kappa_array = np.asarray(kappa_rule, dtype=np.float64)
    if np.any(~(kappa_array >= 0)):
        raise ValueError(f"kappa_rule must be >= 0 everywhere, got {kappa_rule!r}")
    return (8.0 * f_array / (n_array - f_array)) * (kappa_array + 1.0)


def kappa(rule: str, *, n: ArrayLike, f: ArrayLike) -> np.ndarray:
    """Upper bound on the (f, κ)-robustness constant of ``rule`` from :data:`KAPPA_TABLE`.

    =========  =============================  ==============================================
    rule       κ                              provenance
    =========  =============================  ==============================================
    cwtm       (6f/(n−2f))(1 + f/(n−2f))      [R] recalled from the paper's Table 1,
                                              constant unverified
    cwmed, gm  4(1 + f/(n−2f))²               [R] recalled from the paper's Table 1,
                                              constant unverified
    krum       6(1 + f/(n−2f))                [R] recalled from the paper's Table 1,
                                              constant unverified
    mda        (√(f/(n−2f)) + f√(2/(n−f)))²   [D] :func:`mda_kappa` (≤ 8f²/(n−f)); the
                                              recalled row (4f/(n−f))(1 + f/(n−2f))² is
                                              refuted and no longer served
    smea       4f/(n−2f)                      [D] spectral κ, :func:`smea_spectral_kappa`
    mean       0 if f = 0, else inf           [D]
    =========  =============================  ==============================================

    Paper: Allouah et al., AISTATS 2023 (arXiv:2302.01772), Table 1 (the [R] rows).
    ``"nnm>>rule"`` gives :func:`nnm_kappa` ([R]) applied to the rule's κ. Every value returned
    is either derived or recalled and not refuted: ``trilemma check robustness``
    (:mod:`trilemma.proofs_checks.robustness`) searches for inputs that beat each κ, and
    ``tests/aggregators/test_kappa_search.py`` asserts that no κ returned here is below the
    ratio of any counterexample instance the package knows.

    Parameters
    ----------
    rule : str
        A key of :data:`KAPPA_TABLE`, optionally prefixed by ``"nnm>>"``.
    n, f : int or array of int
        Number of workers and of Byzantine workers, 0 ≤ f, 2f < n (broadcast together).

    Returns
    -------
    ndarray
        κ ≥ :func:`kappa_lower_bound`, float64 (``inf`` for the mean with f ≥ 1).

    Raises
    ------
    ValueError
        If ``rule`` is unknown, or f < 0, or 2f ≥ n.

    Notes
    -----
    Counterexamples found:

    - ``mda``, recalled row (4f/(n−f))(1 + f/(n−2f))², of order f/n: the instances of
      :func:`mda_kappa_lower_bound` reach (2f + 1)²/(2(n − f)), of order f²/n — e.g.
      (n, f) = (18, 4): 2.89 > 2.24 — with a unique minimum-diameter set. The row was replaced
      by the derived :func:`mda_kappa`.
    - ``krum`` with Blanchard et al.'s n − f − 2 neighbours (the default of
      :class:`trilemma.aggregators.Krum`) at n = 2f + 1, f ≥ 2: f equal Byzantine vectors
      score 0 and win, so no finite κ holds; the rule therefore enforces Blanchard et al.'s
      n ≥ 2f + 3. The searches (n ≤ 9) found no violation for n ≥ 2f + 2, nor with
      ``neighbours="n-f-1"``.

    Examples
    --------
    >>> float(kappa("cwtm", n=8, f=2))
    4.5
    >>> float(kappa("krum", n=10, f=2)), float(kappa("nnm>>krum", n=10, f=2))
    (8.0, 18.0)
    >>> float(kappa("mean", n=5, f=0)), float(kappa("mean", n=5, f=1))
    (0.0, inf)
    >>> kappa("smea", n=np.array([10, 20]), f=3).tolist()
    [3.0, 0.8571428571428571]
    """
    if not isinstance(rule, str):
        raise TypeError(f"rule must be a string, got {type(rule).__name__}")
    name = rule.strip().lower()
    if name.startswith("nnm>>"):
        inner = kappa(name.removeprefix("nnm>>"), n=n, f=f)
        return nnm_kappa(n=n, f=f, kappa_rule=inner)
    check_choice("rule", name, KAPPA_TABLE)
    n_array, f_array = worker_counts(n, f)
    return KAPPA_TABLE[name].formula(n_array, f_array)

"""Exact Binomial draws by inversion, the sampler behind
:func:`~trilemma.estimators.marginal_averages`.

For each coordinate (a success probability p shared by h workers) the support of Binomial(m, p)
is enumerated from the mode in decreasing order of the pmf and the h uniforms are inverted
along that fixed order, which gives the Binomial law exactly (Devroye, *Non-Uniform Random
Variate Generation*, 1986, §III.2; binomial case §X.4). One walk serves the h workers, so a
draw costs O(√m / h + h) operations after O(1) transcendental functions per coordinate.
"""

from __future__ import annotations

import math
from functools import cache

import numba
import numpy as np
from scipy import special

__all__ = ["binomial_averages"]

#: log k! is tabulated for k ≤ this (beyond it the kernel calls lgamma)
_TABLE_LIMIT = 1 << 16


@cache
def _log_factorials(m: int) -> np.ndarray:
    """log k! for k = 0, …, min(m, _TABLE_LIMIT), read-only."""
    table = np.asarray(special.gammaln(np.arange(min(m, _TABLE_LIMIT) + 1) + 1.0))
    table.setflags(write=False)
    return table


@numba.njit(cache=True)
def _log_factorial(k, table):  # pragma: no cover - compiled
    return table[k] if k < table.shape[0] else math.lgamma(k + 1.0)


def _walk_capacity(m: int) -> int:
    """First storage size of a Binomial(m, ·) walk: a walk rarely leaves mode ± √(19 m)
    (Hoeffding: the mass outside mp ± √(19 m) is below 2⁻⁵³); the kernel asks for more if so."""
    return min(m + 1, 2 * math.isqrt(19 * m) + 16)


@numba.njit(cache=True)
def _binomial_averages_kernel(
    prob, uniforms, m, table, unit, out, cumulative, value, start
):  # pragma: no cover - compiled
    """out[b, j, i] = (2K − m)/m · unit, K the Binomial(m, prob[b, j]) inverse CDF at
    uniforms[b, j, i] taken along a fixed enumeration of the support, for every coordinate
    (b, j) from the flat index ``start`` on; returns the flat index of the first coordinate whose
    walk needs more than ``len(cumulative)`` values (nothing written for it), or batch · d.

    The support is enumerated from the mode in decreasing order of the pmf (the larger of the
    next pmf above and below: an order fixed by (m, p), so inversion along it is exact). For one
    coordinate the walk runs once, until its cumulative mass reaches the largest of its h
    uniforms, and stores the cumulative masses; each uniform then takes the first enumerated
    value whose cumulative mass reaches it. p > 1/2 is drawn as m − Bin(m, 1 − p).
    pmf(mode) = exp(log m! − log k! − log (m − k)! + k log p + (m − k) log(1 − p)); its
    neighbours follow from pmf(k + 1)/pmf(k) = (m − k)/(k + 1) · p/(1 − p).
    """
    batch, d, h = uniforms.shape
    capacity = cumulative.shape[0]
    log_m = _log_factorial(m, table)
    for flat in range(start, batch * d):
        b, j = flat // d, flat % d
        p = prob[b, j]
        flip = p > 0.5
        if flip:
            p = 1.0 - p
        top = 0.0
        for i in range(h):
            top = max(top, uniforms[b, j, i])
        value[0] = 0
        size = 1
        if p > 0.0:
            up = p / (1.0 - p)
            down = (1.0 - p) / p
            mode = min(m, int((m + 1) * p))
            pmf = math.exp(
                log_m
                - _log_factorial(mode, table)
                - _log_factorial(m - mode, table)
                + mode * math.log(p)
                + (m - mode) * math.log1p(-p)
            )
            hi = mode
            lo = mode
            next_hi = pmf * (m - hi) / (hi + 1.0) * up
            next_lo = pmf * lo / (m - lo + 1.0) * down
            cdf = pmf
            cumulative[0] = cdf
            value[0] = mode
            while cdf < top:
                if next_hi >= next_lo:
                    if next_hi <= 0.0:  # support exhausted (rounding left cdf below top)
                        break
                    hi += 1
                    cdf += next_hi
                    k = hi
                    next_hi *= (m - hi) / (hi + 1.0) * up
                else:
                    lo -= 1
                    cdf += next_lo
                    k = lo
                    next_lo *= lo / (m - lo + 1.0) * down
                if size == capacity:
                    return flat
                cumulative[size] = cdf
                value[size] = k
                size += 1
        for i in range(h):
            u = uniforms[b, j, i]
            rank = 0  # first rank whose cumulative mass reaches u (the last if none does)
            if size <= 64:
                for s in range(size - 1):
                    rank += cumulative[s] < u
            else:
                high = size - 1
                while rank < high:
                    middle = (rank + high) // 2
                    if cumulative[middle] < u:
                        rank = middle + 1
                    else:
                        high = middle
            count = m - value[rank] if flip else value[rank]
            out[b, j, i] = (2.0 * count - m) / m * unit
    return batch * d


def binomial_averages(
    prob: np.ndarray, uniforms: np.ndarray, *, m: int, unit: float, out: np.ndarray
) -> None:
    """Write (2K − m)/m · unit into ``out`` for K ~ Binomial(m, p) drawn by inversion.

    Parameters
    ----------
    prob : numpy.ndarray
        Success probabilities ``(batch, d)`` in [0, 1], float64.
    uniforms : numpy.ndarray
        Uniforms on [0, 1) ``(batch, d, h)``, float64, C-contiguous: the h workers of a
        coordinate share its p.
    m : int
        Trials per draw (≥ 1).
    unit : float
        Scale of the averages (C/√d for one-way-marginal records).
    out : numpy.ndarray
        ``(batch, d, h)`` float64 (any strides), overwritten.
    """
    capacity = _walk_capacity(m)
    start, total = 0, prob.shape[0] * prob.shape[1]
    while start < total:
        cumulative, value = np.empty(capacity), np.empty(capacity, dtype=np.int64)
        start = _binomial_averages_kernel(
            prob, uniforms, m, _log_factorials(m), unit, out, cumulative, value, start
        )
        capacity = min(m + 1, 2 * capacity)

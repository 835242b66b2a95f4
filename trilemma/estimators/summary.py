"""Summaries of Monte Carlo records: one row per sweep point, mean ± Student-t interval.

:func:`summarize` groups the records of :func:`~trilemma.estimators.run_sweep` by point,
:func:`mean_interval` is the package's one confidence half-width of a mean (the figures use it
too) and :func:`bound_holds` compares a summary row with its bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["METRICS", "bound_holds", "mean_interval", "summarize"]

#: Per-trial columns of a record (every other column describes the point).
METRICS: tuple[str, ...] = ("error", "excess", "honest_error", "upper_bound")
_PER_TRIAL = frozenset({"trial", *METRICS})


def bound_holds(row: Mapping[str, Any], *, tolerance: float = 2.0) -> bool:
    """Whether a :func:`summarize` row agrees with its bound.

    ``"upper"``: the measured mean error is ≤ the bound (an infinite bound always holds);
    ``"exact"``: it lies within ``tolerance`` confidence half-widths of the expectation;
    ``"none"``: True (nothing to check).
    """
    kind = row["bound_kind"]
    if kind == "upper":
        return bool(row["error_mean"] <= row["upper_bound"])
    if kind == "exact":
        return bool(abs(row["error_mean"] - row["upper_bound"]) <= tolerance * row["error_ci"])
    return True


def summarize(
    records: Iterable[Mapping[str, Any]], *, confidence: float = 0.95
) -> list[dict[str, Any]]:
    """One row per point: mean, standard deviation and confidence half-width of each metric.

    Records are grouped by every column except ``trial`` and the per-trial metrics; for each of
    ``error``, ``excess``, ``honest_error`` the row holds ``<metric>_mean``, ``<metric>_std``
    and ``<metric>_ci`` (half-width of the Student-t interval of the mean at ``confidence``),
    plus ``upper_bound`` (mean of the per-trial conditional bounds, a bound on the expected
    error) and ``trials``.

    Examples
    --------
    >>> rows = [{"d": 4, "trial": t, "error": e, "excess": 0.0, "honest_error": e,
    ...          "upper_bound": 3.0} for t, e in enumerate([1.0, 2.0, 3.0])]
    >>> row = summarize(rows)[0]
    >>> row["d"], row["trials"], row["error_mean"], round(row["error_ci"], 4)
    (4, 3, 2.0, 2.4841)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must lie in (0, 1)")
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    keys: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in records:
        point = {k: v for k, v in record.items() if k not in _PER_TRIAL}
        key = tuple(sorted(point.items(), key=lambda item: item[0]))
        groups.setdefault(key, []).append(record)
        keys.setdefault(key, point)
    rows = []
    for key, members in groups.items():
        row = dict(keys[key])
        count = len(members)
        row["trials"] = count
        for metric in ("error", "excess", "honest_error"):
            values = np.array([r[metric] for r in members], dtype=np.float64)
            row[f"{metric}_mean"] = float(values.mean())
            row[f"{metric}_std"] = float(values.std(ddof=1)) if count > 1 else math.nan
            row[f"{metric}_ci"] = mean_interval(values, confidence=confidence)
        row["upper_bound"] = float(np.mean([r["upper_bound"] for r in members]))
        rows.append(row)
    return rows


def mean_interval(values: Sequence[float] | np.ndarray, *, confidence: float = 0.95) -> float:
    """Half-width of the Student-t confidence interval of the mean of ``values``:
    t_{(1 + c)/2, S − 1} · s/√S, s the sample standard deviation (divisor S − 1); ``inf`` for
    fewer than two values.

    Examples
    --------
    >>> round(mean_interval([0.5, 0.7, 0.9]), 6)  # t_{0.975, 2} = 4.302653
    0.496828
    """
    array = np.asarray(values, dtype=np.float64)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must lie in (0, 1)")
    count = array.size
    if count < 2:
        return math.inf
    quantile = float(stats.t.ppf(0.5 + confidence / 2, count - 1))
    return quantile * float(array.std(ddof=1)) / math.sqrt(count)

"""Checks shared by the closed forms: numpy array arguments, validated element-wise.

Each check returns a float64 array and raises a ``ValueError`` naming the argument and the first
offending value when an element is outside its range (NaN included).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from trilemma._validation import check_workers

__all__ = ["nonnegative", "positive", "positive_integers", "unit_open", "worker_counts"]


def _first_bad(array: np.ndarray, bad: np.ndarray) -> float:
    return float(np.broadcast_to(array, bad.shape)[bad].flat[0])


def positive(name: str, value: ArrayLike) -> np.ndarray:
    """``value`` as float64 after checking every element is > 0 (``inf`` allowed)."""
    array = np.asarray(value, dtype=np.float64)
    bad = ~(array > 0)
    if np.any(bad):
        raise ValueError(f"{name}={_first_bad(array, bad):g} must be > 0")
    return array


def nonnegative(name: str, value: ArrayLike) -> np.ndarray:
    """``value`` as float64 after checking every element is ≥ 0 (``inf`` allowed)."""
    array = np.asarray(value, dtype=np.float64)
    bad = ~(array >= 0)
    if np.any(bad):
        raise ValueError(f"{name}={_first_bad(array, bad):g} must be >= 0")
    return array


def unit_open(name: str, value: ArrayLike) -> np.ndarray:
    """``value`` as float64 after checking every element lies in (0, 1) (e.g. δ)."""
    array = np.asarray(value, dtype=np.float64)
    bad = ~((array > 0) & (array < 1))
    if np.any(bad):
        raise ValueError(f"{name}={_first_bad(array, bad):g} must lie in (0, 1)")
    return array


def positive_integers(name: str, value: ArrayLike) -> np.ndarray:
    """``value`` as float64 after checking it holds integers ≥ 1 (e.g. d, m)."""
    raw = np.asarray(value)
    if raw.dtype == np.bool_ or not np.issubdtype(raw.dtype, np.number):
        raise TypeError(f"{name} must be an integer or an array of integers, got {value!r}")
    array = raw.astype(np.float64)
    bad = ~np.isfinite(array) | (array != np.round(array)) | (array < 1)
    if np.any(bad):
        raise ValueError(f"{name}={_first_bad(array, bad):g} must be an integer >= 1")
    return array


def worker_counts(n: ArrayLike, f: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """n, f as broadcast float64 arrays after checking they are integers with 0 ≤ f and 2f < n."""
    n_array = np.asarray(n)
    f_array = np.asarray(f)
    for name, array, value in (("n", n_array, n), ("f", f_array, f)):
        if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
            raise TypeError(f"{name} must be an integer or an array of integers, got {value!r}")
        if np.any(~np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(f"{name} must hold integers, got {name}={value!r}")
    n_float, f_float = np.broadcast_arrays(n_array.astype(np.float64), f_array.astype(np.float64))
    negative = f_float < 0
    if np.any(negative):
        raise ValueError(f"f={f_float[negative].flat[0]:g} must be >= 0")
    broken = 2 * f_float >= n_float
    if np.any(broken):  # the first offending pair, with check_workers's message
        bad_f, bad_n = int(f_float[broken].flat[0]), int(n_float[broken].flat[0])
        check_workers(n=bad_n, f=bad_f, detail=f" (2f={2 * bad_f})")
    return n_float, f_float

"""Checks of user input at the public boundary.

Every check raises a ``TypeError`` (wrong kind of value) or a ``ValueError`` (right kind, wrong
value) whose message names the argument, the value received and the valid range, e.g.
``delta=1.5 must lie in (0, 1)``. NaN is rejected explicitly: it compares false with every
bound and would otherwise slip through.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

__all__ = ["check_choice", "check_int", "check_real", "check_workers"]


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    low_text = "-inf" if low is None else f"{low:g}"
    high_text = "inf" if high is None else f"{high:g}"
    return f"{left}{low_text}, {high_text}{right}"


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a float after checking it is a real number in an interval.

    Parameters
    ----------
    name : str
        Argument name used in the error message.
    value : object
        The value to check.
    low, high : float or None
        Interval end points; ``None`` means unbounded.
    low_open, high_open : bool
        Whether the corresponding end point is excluded.
    allow_inf : bool
        Accept ``+inf``/``-inf`` when the interval allows them.

    Returns
    -------
    float
        The validated value.

    Raises
    ------
    TypeError
        If ``value`` is not a real number (booleans are rejected).
    ValueError
        If ``value`` is NaN, infinite (unless allowed) or outside the interval.

    Examples
    --------
    >>> check_real("delta", 1e-5, low=0, high=1, low_open=True, high_open=True)
    1e-05
    >>> check_real("delta", 2.0, low=0, high=1, low_open=True, high_open=True)
    Traceback (most recent call last):
    ...
    ValueError: delta=2.0 must lie in (0, 1)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    number = float(value)
    interval = _interval(low, high, low_open, high_open)
    if math.isnan(number):
        raise ValueError(f"{name}=nan must lie in {interval}")
    if math.isinf(number) and not allow_inf:
        raise ValueError(f"{name}={number} must be finite and lie in {interval}")
    below = low is not None and (number < low or (low_open and number == low))
    above = high is not None and (number > high or (high_open and number == high))
    if below or above:
        raise ValueError(f"{name}={value!r} must lie in {interval}")
    return number


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an int after checking it is an integer in ``[low, high]``.

    Examples
    --------
    >>> check_int("steps", 10, low=1)
    10
    >>> check_int("steps", 0, low=1)
    Traceback (most recent call last):
    ...
    ValueError: steps=0 must be an integer in [1, inf)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    number = int(value)
    if (low is not None and number < low) or (high is not None and number > high):
        interval = _interval(low, high, False, False)
        raise ValueError(f"{name}={number} must be an integer in {interval}")
    return number


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Return ``value`` after checking it is one of ``choices``.

    Examples
    --------
    >>> check_choice("method", "pld", ("rdp", "pld"))
    'pld'
    >>> check_choice("method", "moments", ("rdp", "pld"))
    Traceback (most recent call last):
    ...
    ValueError: method='moments' is not valid; choose one of: 'rdp', 'pld'
    """
    options = tuple(choices)
    if value not in options:
        listed = ", ".join(repr(option) for option in options)
        raise ValueError(f"{name}={value!r} is not valid; choose one of: {listed}")
    return str(value)


def check_workers(
    *, n: object, f: object, n_text: str | None = None, detail: str = ""
) -> tuple[int, int]:
    """Return ``(n, f)`` after checking 1 ≤ n, 0 ≤ f and 2f < n (a Byzantine minority).

    The one place of the worker-count rule of robust aggregation: with f Byzantine workers out
    of n, no rule can tell the honest majority apart unless 2f < n (Allouah et al., AISTATS
    2023, arXiv:2302.01772, Section 2) [R].

    Parameters
    ----------
    n, f : int
        Workers in all and Byzantine workers among them.
    n_text : str, optional
        How the message writes n (default ``"n={n}"``), e.g. ``"n = workers + f = 20"``.
    detail : str
        Appended to the message, e.g. ``" (h=5 honest workers)"``.

    Raises
    ------
    TypeError
        If ``n`` or ``f`` is not an integer.
    ValueError
        If n < 1, f < 0 or 2f ≥ n.

    Examples
    --------
    >>> check_workers(n=10, f=4)
    (10, 4)
    >>> check_workers(n=9, f=5)
    Traceback (most recent call last):
    ...
    ValueError: f=5 must satisfy 2f < n=9
    """
    n_int = check_int("n", n, low=1)
    f_int = check_int("f", f, low=0)
    if 2 * f_int >= n_int:
        where = f"n={n_int}" if n_text is None else n_text
        raise ValueError(f"f={f_int} must satisfy 2f < {where}{detail}")
    return n_int, f_int

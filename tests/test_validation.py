"""Boundary checks name the argument, the value and the valid range."""

import math

import numpy as np
import pytest

from trilemma._validation import check_choice, check_int, check_real


def test_real_intervals():
    assert check_real("x", 0, low=0) == 0.0
    assert check_real("x", np.float32(0.5), low=0, high=1) == 0.5
    with pytest.raises(ValueError, match=r"x=0 must lie in \(0, inf\)"):
        check_real("x", 0, low=0, low_open=True)
    with pytest.raises(ValueError, match=r"x=1 must lie in \[0, 1\)"):
        check_real("x", 1, low=0, high=1, high_open=True)
    with pytest.raises(ValueError, match="x=nan"):
        check_real("x", math.nan)
    with pytest.raises(ValueError, match="must be finite"):
        check_real("x", math.inf, low=0)
    assert check_real("x", math.inf, low=0, allow_inf=True) == math.inf
    with pytest.raises(TypeError, match="x must be a real number, got bool"):
        check_real("x", True)
    with pytest.raises(TypeError, match="got str"):
        check_real("x", "1.0")


def test_int_and_choice():
    assert check_int("k", np.int64(3), low=1, high=3) == 3
    with pytest.raises(ValueError, match=r"k=4 must be an integer in \[1, 3\]"):
        check_int("k", 4, low=1, high=3)
    with pytest.raises(TypeError, match="k must be an integer, got float"):
        check_int("k", 2.0)
    with pytest.raises(ValueError, match="choose one of: 'a', 'b'"):
        check_choice("mode", "c", ("a", "b"))


def test_check_workers_is_the_one_worker_count_rule():
    from trilemma._validation import check_workers

    assert check_workers(n=10, f=4) == (10, 4)
    assert check_workers(n=1, f=0) == (1, 0)
    with pytest.raises(ValueError, match=r"^f=5 must satisfy 2f < n=10$"):
        check_workers(n=10, f=5)
    with pytest.raises(ValueError, match=r"^f=3 must satisfy 2f < n = 6 \(h=3\)$"):
        check_workers(n=6, f=3, n_text="n = 6", detail=" (h=3)")
    with pytest.raises(ValueError, match="f=-1 must be an integer"):
        check_workers(n=10, f=-1)
    with pytest.raises(TypeError, match="n must be an integer"):
        check_workers(n=10.0, f=1)

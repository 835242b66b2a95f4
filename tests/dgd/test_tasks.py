"""The task builders: the Mackey–Glass series against closed forms and a finer grid, the Fig. 1
ridge problem against the official script's formulas, the diabetes ridge task's stated (G, B)
thresholds."""

import numpy as np
import pytest
import torch

from trilemma.dgd import (
    MACKEY_GLASS,
    diabetes_ridge,
    exact_gb_threshold,
    mackey_glass,
    mackey_glass_ridge,
)


def test_mackey_glass_before_the_delay_is_the_linear_ode():
    # for t < τ the delayed value is the constant history h, so dx/dt = c − b x with
    # c = a h/(1 + h¹⁰): x(t) = c/b + (h − c/b) e^{−bt}
    h, a, b = 1.2, 0.2, 0.1
    c = a * h / (1 + h**10)
    t = np.arange(1, 17)
    exact = c / b + (h - c / b) * np.exp(-b * t)
    got = mackey_glass(16, dt=0.01, transient=0)
    np.testing.assert_allclose(got, exact, rtol=0, atol=1e-7)


def test_mackey_glass_heun_factor_without_production():
    # a = 0: each step multiplies by Heun's 1 − b dt + (b dt)²/2
    factor = 1 - 0.02 + 0.02**2 / 2
    got = mackey_glass(4, a=0.0, b=0.2, history=2.0, dt=0.1, transient=3)
    np.testing.assert_allclose(got, 2.0 * factor ** (10 * np.arange(4, 8)), rtol=1e-12)


def test_mackey_glass_converges_in_the_step_and_stays_on_the_attractor():
    coarse = mackey_glass(100, dt=0.1, transient=0)
    fine = mackey_glass(100, dt=0.05, transient=0)
    assert np.abs(coarse - fine).max() < 1e-4  # second order: 2.3e-5 measured
    series = mackey_glass(MACKEY_GLASS["rows"])
    # the τ = 17 attractor; LIBSVM's mg targets span 0.418–1.317
    assert 0.38 < series.min() < 0.46 and 1.28 < series.max() < 1.36


def test_mackey_glass_rejects_bad_input():
    with pytest.raises(ValueError, match=r"dt=0\.3"):
        mackey_glass(5, dt=0.3)
    with pytest.raises(ValueError, match="length"):
        mackey_glass(0)
    with pytest.raises(ValueError, match="tau"):
        mackey_glass(5, tau=-1.0)


def test_mackey_glass_ridge_follows_the_official_protocol():
    problem = mackey_glass_ridge()
    x = problem.features[:, 0, :].numpy()
    y = problem.targets[:, 0].numpy()
    assert x.shape == (7, 2) and problem.ridge == pytest.approx(7**-0.5)
    # rebuild from the documented construction: lags (30, …, 0), target x(t + 6), features
    # scaled to [−1, 1], rows of numpy's legacy permutation with seed 1, first 7 of 80 %
    rows, span = MACKEY_GLASS["rows"], max(MACKEY_GLASS["lags"])
    series = mackey_glass(span + rows + MACKEY_GLASS["horizon"])
    oldest = series[:rows]
    order = np.random.RandomState(1).permutation(rows)[:7]
    scaled = 2 * (oldest - oldest.min()) / (oldest.max() - oldest.min()) - 1
    np.testing.assert_array_equal(x[:, 0], np.ones(7))
    np.testing.assert_allclose(x[:, 1], scaled[order], rtol=1e-12)
    np.testing.assert_allclose(y, series[span + order + 6], rtol=1e-12)
    # main/fig1.py: loss ‖Xθ − y‖²/(2N) + λ‖θ‖²/2 and θ* = (XᵀX + Nλ I)⁻¹ Xᵀy
    lam = 7**-0.5
    theta = np.array([0.3, -0.7])
    loss = np.sum((x @ theta - y) ** 2) / 14 + lam * theta @ theta / 2
    assert float(problem.objective(torch.from_numpy(theta))) == pytest.approx(loss, rel=1e-12)
    star = np.linalg.solve(x.T @ x + 7 * lam * np.eye(2), x.T @ y)
    np.testing.assert_allclose(problem.optimum()[0].numpy(), star, rtol=1e-10)


def test_mackey_glass_ridge_is_deterministic_and_checks_honest():
    first, second = mackey_glass_ridge(5), mackey_glass_ridge(5)
    assert torch.equal(first.features, second.features)
    assert torch.equal(first.targets, second.targets)
    # more workers take more rows of the same permutation
    assert torch.equal(mackey_glass_ridge().features[:5], first.features)
    with pytest.raises(ValueError, match="honest"):
        mackey_glass_ridge(0)


def test_diabetes_ridge_thresholds_as_documented():
    # the docstring: B² threshold 7.3 with one row per worker, 0.70 with 20
    assert exact_gb_threshold(diabetes_ridge(per_worker=1)) == pytest.approx(7.3, abs=0.05)
    assert exact_gb_threshold(diabetes_ridge()) == pytest.approx(0.70, abs=0.005)
    problem = diabetes_ridge()
    assert tuple(problem.features.shape) == (7, 20, 10)
    assert problem.ridge == pytest.approx(7**-0.5)
    with pytest.raises(ValueError, match="per_worker"):
        diabetes_ridge(per_worker=100)

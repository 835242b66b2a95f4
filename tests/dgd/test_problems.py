"""Per-worker losses and gradients against independent recomputations: numpy closed forms for
least squares, torch.nn.functional.cross_entropy for softmax regression, torch.autograd for every
gradient, and a batch of θ against the same θ one at a time."""

import math

import numpy as np
import pytest
import torch

from trilemma.dgd import LeastSquares, SoftmaxRegression

F64 = torch.float64
H, M, P, K = 4, 3, 5, 3


def _data(seed, *, classes=None):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(H, M, P, generator=g, dtype=F64)
    if classes is None:
        return features, torch.randn(H, M, generator=g, dtype=F64)
    return features, torch.randint(0, classes, (H, M), generator=g)


def _least_squares_loss(features, targets, ridge, theta):
    """L_i(θ) = (1/(2m))‖X_iθ − y_i‖² + (λ/2)‖θ‖², written for one θ of shape (P,)."""
    residual = features @ theta - targets  # (h, m)
    return residual.square().mean(dim=1) / 2 + ridge / 2 * theta.square().sum()


def _softmax_loss(features, labels, classes, ridge, theta):
    """Mean cross-entropy of worker i's examples plus (λ/2)‖θ‖², for one θ of shape (pK,)."""
    weights = theta.reshape(features.shape[-1], classes)
    losses = [
        torch.nn.functional.cross_entropy(features[i] @ weights, labels[i])
        for i in range(features.shape[0])
    ]
    return torch.stack(losses) + ridge / 2 * theta.square().sum()


def _autograd_gradients(loss, theta):
    """(h, P) Jacobian of the per-worker losses at one θ."""
    return torch.autograd.functional.jacobian(loss, theta.clone())


def _thetas(dimension, seed):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.zeros(dimension, dtype=F64),
        torch.randn(dimension, generator=g, dtype=F64),
        10.0 * torch.randn(dimension, generator=g, dtype=F64),
        1e-3 * torch.randn(dimension, generator=g, dtype=F64),
    ]


def _cases():
    features, targets = _data(0)
    labels_features, labels = _data(1, classes=K)
    return [
        pytest.param(
            LeastSquares(features, targets, ridge=0.3),
            lambda th: _least_squares_loss(features, targets, 0.3, th),
            id="least_squares",
        ),
        pytest.param(
            LeastSquares(features, targets),
            lambda th: _least_squares_loss(features, targets, 0.0, th),
            id="least_squares_no_ridge",
        ),
        pytest.param(
            SoftmaxRegression(labels_features, labels, classes=K, ridge=0.2),
            lambda th: _softmax_loss(labels_features, labels, K, 0.2, th),
            id="softmax",
        ),
    ]


@pytest.mark.parametrize(("problem", "reference"), _cases())
def test_losses_and_gradients_match_autograd(problem, reference):
    for theta in _thetas(problem.dimension, seed=2):
        torch.testing.assert_close(problem.losses(theta), reference(theta), rtol=1e-12, atol=0)
        torch.testing.assert_close(
            problem.gradients(theta),
            _autograd_gradients(reference, theta),
            rtol=1e-10,
            atol=1e-12,
        )
        torch.testing.assert_close(problem.objective(theta), reference(theta).mean())


@pytest.mark.parametrize(("problem", "reference"), _cases())
def test_batch_of_thetas_equals_one_at_a_time(problem, reference):
    g = torch.Generator().manual_seed(3)
    batch = torch.randn(3, 4, problem.dimension, generator=g, dtype=F64)
    gradients = problem.gradients(batch)
    losses = problem.losses(batch)
    assert gradients.shape == (3, 4, problem.workers, problem.dimension)
    assert losses.shape == (3, 4, problem.workers)
    assert problem.objective(batch).shape == (3, 4)
    for a in range(3):
        for b in range(4):
            theta = batch[a, b]
            expected = _autograd_gradients(reference, theta)
            torch.testing.assert_close(gradients[a, b], expected, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(losses[a, b], reference(theta), rtol=1e-12, atol=0)


def test_problem_attributes():
    features, targets = _data(0)
    problem = LeastSquares(features, targets)
    assert (problem.workers, problem.dimension, problem.dtype) == (H, P, F64)
    labels_features, labels = _data(1, classes=K)
    softmax = SoftmaxRegression(labels_features.float(), labels, classes=K)
    assert (softmax.workers, softmax.dimension, softmax.dtype) == (H, P * K, torch.float32)


# ---------------------------------------------------------------------------------------------
# LeastSquares: affine gradients, optimum, spectrum


def test_hessians_and_offsets_are_the_numpy_closed_forms():
    features, targets = _data(4)
    ridge = 0.7
    problem = LeastSquares(features, targets, ridge=ridge)
    x, y = features.numpy(), targets.numpy()
    hessians = np.stack([x[i].T @ x[i] / M + ridge * np.eye(P) for i in range(H)])
    offsets = np.stack([x[i].T @ y[i] / M for i in range(H)])
    np.testing.assert_allclose(problem.hessians().numpy(), hessians, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(problem.offsets().numpy(), offsets, rtol=1e-13, atol=1e-15)
    # ∇L_i(θ) = A_iθ − b_i at random θ, and on a batch
    g = torch.Generator().manual_seed(5)
    thetas = torch.randn(6, P, generator=g, dtype=F64)
    affine = np.einsum("hpq,kq->khp", hessians, thetas.numpy()) - offsets[None]
    np.testing.assert_allclose(problem.gradients(thetas).numpy(), affine, rtol=1e-11, atol=1e-12)


def test_optimum_is_the_stationary_point_and_the_spectrum_of_the_mean_hessian():
    features, targets = _data(6)
    ridge = 0.05
    problem = LeastSquares(features, targets, ridge=ridge)
    theta, minimum, mu, smoothness = problem.optimum()
    x, y = features.numpy(), targets.numpy()
    mean_hessian = np.mean([x[i].T @ x[i] / M for i in range(H)], axis=0) + ridge * np.eye(P)
    mean_offset = np.mean([x[i].T @ y[i] / M for i in range(H)], axis=0)
    np.testing.assert_allclose(theta.numpy(), np.linalg.solve(mean_hessian, mean_offset), 1e-10)
    assert float(problem.gradients(theta).mean(dim=0).norm()) < 1e-12
    spectrum = np.linalg.eigvalsh(mean_hessian)
    assert mu == pytest.approx(spectrum[0], rel=1e-12)
    assert smoothness == pytest.approx(spectrum[-1], rel=1e-12)
    assert minimum == pytest.approx(float(problem.objective(theta)), rel=1e-15)
    # L* is the minimum: random points and a nudge of θ* do no better
    g = torch.Generator().manual_seed(7)
    others = theta + torch.randn(200, P, generator=g, dtype=F64) * torch.logspace(-4, 1, 200)[
        :, None
    ].to(F64)
    assert bool((problem.objective(others) >= minimum).all())


def test_optimum_of_a_hand_worked_problem():
    # one worker, X = diag(1, 2), y = (1, 1), m = 2: A = diag(1/2, 2), b = (1/2, 1)
    features = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]], dtype=F64)
    targets = torch.tensor([[1.0, 1.0]], dtype=F64)
    theta, minimum, mu, L = LeastSquares(features, targets).optimum()
    torch.testing.assert_close(theta, torch.tensor([1.0, 0.5], dtype=F64))
    assert (minimum, mu, L) == (pytest.approx(0.0, abs=1e-30), 0.5, 2.0)
    # ridge λ = 1: A = diag(3/2, 3), θ* = (1/3, 1/3); L* = (1/4)((2/3)² + (1/3)²) + (1/2)(2/9)
    theta, minimum, mu, L = LeastSquares(features, targets, ridge=1.0).optimum()
    torch.testing.assert_close(theta, torch.tensor([1 / 3, 1 / 3], dtype=F64))
    assert minimum == pytest.approx((4 / 9 + 1 / 9) / 4 + 1 / 9, rel=1e-14)
    assert (mu, L) == (pytest.approx(1.5), pytest.approx(3.0))


def test_singular_problem_without_ridge_is_refused():
    # the second coordinate is never observed: Ā = diag(5/2, 0)
    features = torch.tensor([[[1.0, 0.0]], [[2.0, 0.0]]], dtype=F64)
    targets = torch.tensor([[1.0], [1.0]], dtype=F64)
    with pytest.raises(ValueError, match="not strongly convex"):
        LeastSquares(features, targets).optimum()
    # any ridge makes it strongly convex, with μ = λ
    _, _, mu, L = LeastSquares(features, targets, ridge=0.25).optimum()
    assert (mu, L) == (pytest.approx(0.25), pytest.approx(2.75))


def test_rank_deficient_random_data_is_refused():
    # 2 workers × 1 point in dimension 4: Ā has rank ≤ 2 for every draw
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        features = torch.randn(2, 1, 4, generator=g, dtype=F64)
        targets = torch.randn(2, 1, generator=g, dtype=F64)
        with pytest.raises(ValueError, match="not strongly convex"):
            LeastSquares(features, targets).optimum()


# ---------------------------------------------------------------------------------------------
# SoftmaxRegression


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_softmax_loss_at_zero_is_log_k(classes):
    features, labels = _data(8, classes=classes)
    problem = SoftmaxRegression(features, labels, classes=classes, ridge=0.5)
    losses = problem.losses(torch.zeros(P * classes, dtype=F64))
    torch.testing.assert_close(losses, torch.full((H,), math.log(classes), dtype=F64))


def test_softmax_gradient_of_a_hand_worked_case():
    # one worker, one example x = (1, 2), label 0, K = 2, θ = 0: p = (1/2, 1/2),
    # ∇_W = xᵀ(p − e_0) = [[−1/2, 1/2], [−1, 1]], flattened row-major
    problem = SoftmaxRegression(
        torch.tensor([[[1.0, 2.0]]], dtype=F64), torch.tensor([[0]]), classes=2
    )
    torch.testing.assert_close(
        problem.gradients(torch.zeros(4, dtype=F64)),
        torch.tensor([[-0.5, 0.5, -1.0, 1.0]], dtype=F64),
    )


def _separable(seed, per_class=20):
    """Three well separated clusters in the plane, with a bias feature."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 4.0], [-4.0, -4.0]], dtype=F64)
    points = centres.repeat_interleave(per_class, 0)
    points = points + 0.5 * torch.randn(points.shape, generator=g, dtype=F64)
    labels = torch.arange(3).repeat_interleave(per_class)
    features = torch.cat([points, torch.ones(len(points), 1, dtype=F64)], dim=1)
    order = torch.randperm(len(points), generator=g)
    return features[order], labels[order]


def test_softmax_fits_a_separable_set():
    features, labels = _separable(9)
    problem = SoftmaxRegression(features.reshape(4, 15, 3), labels.reshape(4, 15), classes=3)
    theta = torch.zeros(problem.dimension, dtype=F64)
    # at θ = 0 every logit ties and argmax picks class 0
    assert float(problem.accuracy(theta, features, labels)) == pytest.approx(1 / 3)
    for _ in range(300):
        theta = theta - 0.5 * problem.gradients(theta).mean(dim=0)
    assert float(problem.accuracy(theta, features, labels)) == 1.0
    assert float(problem.objective(theta)) < 0.05
    # held-out points from the same clusters
    test_features, test_labels = _separable(10)
    assert float(problem.accuracy(theta, test_features, test_labels)) == 1.0
    # a batch of θ gives one accuracy each: (θ, −θ) → (1, something lower)
    batch = torch.stack([theta, -theta, torch.zeros_like(theta)])
    accuracy = problem.accuracy(batch, features, labels)
    assert accuracy.shape == (3,)
    assert float(accuracy[0]) == 1.0 and float(accuracy[1]) < 0.5


# ---------------------------------------------------------------------------------------------
# input checks


def test_least_squares_rejects_bad_inputs():
    features, targets = _data(0)
    with pytest.raises(ValueError, match=r"shape \(h, m, p\).*got \(3, 5\)"):
        LeastSquares(features[0], targets)
    with pytest.raises(ValueError, match=r"h, m, p >= 1, got \(4, 0, 5\)"):
        LeastSquares(features[:, :0], targets[:, :0])
    with pytest.raises(TypeError, match="floating"):
        LeastSquares(features.to(torch.int64), targets)
    with pytest.raises(TypeError, match="floating"):
        LeastSquares(features.numpy(), targets)
    with pytest.raises(ValueError, match=r"labels must have shape \(4, 3\)"):
        LeastSquares(features, targets[:, :2])
    with pytest.raises(TypeError, match="targets must be floating"):
        LeastSquares(features, targets.to(torch.int64))
    with pytest.raises(ValueError, match=r"ridge=-0.1 must lie in \[0, inf\)"):
        LeastSquares(features, targets, ridge=-0.1)
    with pytest.raises(ValueError, match="ridge=nan"):
        LeastSquares(features, targets, ridge=float("nan"))


def test_softmax_rejects_bad_inputs():
    features, labels = _data(1, classes=K)
    with pytest.raises(ValueError, match=r"shape \(h, m, p\)"):
        SoftmaxRegression(features.reshape(H * M, P), labels, classes=K)
    with pytest.raises(TypeError, match="floating"):
        SoftmaxRegression(features.to(torch.int32), labels, classes=K)
    with pytest.raises(ValueError, match="labels must have shape"):
        SoftmaxRegression(features, labels.reshape(-1), classes=K)
    with pytest.raises(TypeError, match="integer classes"):
        SoftmaxRegression(features, labels.to(F64), classes=K)
    with pytest.raises(TypeError, match="integer classes"):
        SoftmaxRegression(features, labels > 0, classes=K)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        SoftmaxRegression(features, torch.where(labels == 0, 3, labels), classes=K)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        SoftmaxRegression(features, torch.where(labels == 0, -1, labels), classes=K)
    with pytest.raises(ValueError, match=r"classes=1 must be an integer in \[2, inf\)"):
        SoftmaxRegression(features, torch.zeros_like(labels), classes=1)
    with pytest.raises(TypeError, match="classes must be an integer"):
        SoftmaxRegression(features, labels, classes=3.0)
    with pytest.raises(ValueError, match=r"ridge=-1.0 must lie in \[0, inf\)"):
        SoftmaxRegression(features, labels, classes=K, ridge=-1.0)


def test_softmax_smoothness_bounds_the_hessian():
    # the Hessian of L_H from autograd never exceeds L = ½ λ_max(Σ̂) + λ; at θ = 0 with two
    # classes (π = (½, ½): diag(π) − ππᵀ has eigenvalue ½ along (1, −1)) it attains it
    g = torch.Generator().manual_seed(11)
    features = torch.randn(3, 8, 4, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 2, (3, 8), generator=g)
    problem = SoftmaxRegression(features, labels, classes=2, ridge=0.05)
    bound = problem.smoothness()
    for scale in (0.0, 1.0, 5.0):
        theta = scale * torch.randn(problem.dimension, generator=g, dtype=torch.float64)
        hessian = torch.autograd.functional.hessian(problem.objective, theta)
        top = float(torch.linalg.eigvalsh(hessian)[-1])
        assert top <= bound * (1 + 1e-12)
        if scale == 0.0:
            assert top == pytest.approx(bound, rel=1e-10)


@pytest.mark.parametrize("make", ["least_squares", "softmax"])
def test_losses_and_gradients_in_one_pass_equal_the_two_calls(make):
    g = torch.Generator().manual_seed(12)
    features = torch.randn(3, 5, 4, generator=g, dtype=F64)
    if make == "softmax":
        labels = torch.randint(0, 3, (3, 5), generator=g)
        problem = SoftmaxRegression(features, labels, classes=3, ridge=0.1)
    else:
        problem = LeastSquares(features, torch.randn(3, 5, generator=g, dtype=F64), ridge=0.1)
    theta = torch.randn(2, problem.dimension, generator=g, dtype=F64)
    losses, gradients = problem.losses_and_gradients(theta)
    torch.testing.assert_close(losses, problem.losses(theta), rtol=0, atol=0)
    torch.testing.assert_close(gradients, problem.gradients(theta), rtol=0, atol=0)

"""(G, B)-dissimilarity on a problem: H and N against numpy, the exact least-squares frontier
against its definition (it holds on 10⁴ random θ and far along rays, a numerically found
maximiser attains it), its threshold against scipy's generalized eigenvalues, and the sampled
frontier as a lower estimate that becomes exact once it samples the maximiser."""

import numpy as np
import pytest
import scipy.linalg
import torch

from trilemma.dgd import (
    LeastSquares,
    SoftmaxRegression,
    dissimilarity,
    error_floor_pair,
    exact_gb,
    exact_gb_threshold,
    sampled_gb,
)

F64 = torch.float64


def _heterogeneous(seed=0, h=5, m=3, p=4, ridge=0.1):
    """Workers whose features and linear models differ: A_i and b_i both vary."""
    g = torch.Generator().manual_seed(seed)
    shift = torch.randn(h, 1, p, generator=g, dtype=F64)
    scale = torch.rand(h, 1, 1, generator=g, dtype=F64) + 0.5
    features = scale * torch.randn(h, m, p, generator=g, dtype=F64) + shift
    models = torch.randn(h, p, generator=g, dtype=F64)
    targets = torch.einsum("hmp,hp->hm", features, models)
    targets = targets + 0.1 * torch.randn(h, m, generator=g, dtype=F64)
    return LeastSquares(features, targets, ridge=ridge)


class _Quadratic:
    """H(θ) = (1/h)Σ‖D_iθ − e_i‖², N(θ) = ‖Āθ − b̄‖², built in numpy from the data."""

    def __init__(self, problem):
        x, y = problem.features.numpy(), problem.targets.numpy()
        h, m, p = x.shape
        self.a = np.stack([x[i].T @ x[i] / m for i in range(h)]) + problem.ridge * np.eye(p)
        self.b = np.stack([x[i].T @ y[i] / m for i in range(h)])
        self.a_bar, self.b_bar = self.a.mean(axis=0), self.b.mean(axis=0)
        self.d, self.e = self.a - self.a_bar, self.b - self.b_bar
        self.spread = np.einsum("hji,hjk->ik", self.d, self.d) / h  # (1/h)Σ D_iᵀD_i
        self.gram = self.a_bar.T @ self.a_bar  # ĀᵀĀ
        self.cross = np.einsum("hji,hj->i", self.d, self.e) / h  # (1/h)Σ D_iᵀe_i
        self.optimum = np.linalg.solve(self.a_bar, self.b_bar)

    def spread_and_norm(self, thetas):
        deviations = np.einsum("hpq,kq->khp", self.d, thetas) - self.e[None]
        mean = thetas @ self.a_bar.T - self.b_bar
        return (deviations**2).sum(axis=2).mean(axis=1), (mean**2).sum(axis=1)

    def threshold(self):
        return scipy.linalg.eigh(self.spread, self.gram, eigvals_only=True)[-1]

    def top_direction(self):
        _, vectors = scipy.linalg.eigh(self.spread, self.gram)
        return vectors[:, -1] / np.linalg.norm(vectors[:, -1])

    def maximiser(self, B2):
        """Stationary point of the concave quadratic H − B²N (∇ = 0, solved directly)."""
        return np.linalg.solve(
            self.spread - B2 * self.gram, self.cross - B2 * self.a_bar.T @ self.b_bar
        )


@pytest.fixture(scope="module")
def problem():
    return _heterogeneous()


@pytest.fixture(scope="module")
def quadratic(problem):
    return _Quadratic(problem)


def test_dissimilarity_matches_numpy(problem, quadratic):
    g = torch.Generator().manual_seed(1)
    thetas = torch.randn(2, 3, problem.dimension, generator=g, dtype=F64)
    spread, norm = dissimilarity(problem, thetas)
    assert spread.shape == norm.shape == (2, 3)
    H, N = quadratic.spread_and_norm(thetas.reshape(-1, problem.dimension).numpy())
    np.testing.assert_allclose(spread.reshape(-1).numpy(), H, rtol=1e-12)
    np.testing.assert_allclose(norm.reshape(-1).numpy(), N, rtol=1e-12)


def test_dissimilarity_of_softmax_matches_numpy():
    g = torch.Generator().manual_seed(2)
    features = torch.randn(4, 6, 3, generator=g, dtype=F64)
    labels = torch.randint(0, 3, (4, 6), generator=g)
    problem = SoftmaxRegression(features, labels, classes=3, ridge=0.1)
    thetas = torch.randn(5, 9, generator=g, dtype=F64)
    grads = problem.gradients(thetas).numpy()  # (5, h, P), checked against autograd elsewhere
    mean = grads.mean(axis=1)
    spread, norm = dissimilarity(problem, thetas)
    H = np.mean([[np.sum((grads[k, i] - mean[k]) ** 2) for i in range(4)] for k in range(5)], 1)
    np.testing.assert_allclose(spread.numpy(), H, rtol=1e-12)
    np.testing.assert_allclose(norm.numpy(), (mean**2).sum(axis=1), rtol=1e-12)


def test_threshold_is_the_largest_generalized_eigenvalue(problem, quadratic):
    threshold = exact_gb_threshold(problem)
    assert threshold == pytest.approx(quadratic.threshold(), rel=1e-9)
    assert threshold > 0.1  # the data are heterogeneous: a real test of the value
    for seed in (3, 4, 5):
        other = _heterogeneous(seed, h=7, m=2, p=3, ridge=0.01)
        assert exact_gb_threshold(other) == pytest.approx(_Quadratic(other).threshold(), 1e-9)


def test_the_frontier_holds_on_random_parameters(problem, quadratic):
    threshold = quadratic.threshold()
    rng = np.random.default_rng(6)
    directions = rng.standard_normal((10_000, problem.dimension))
    radii = 10.0 ** rng.uniform(-4, 4, size=(10_000, 1))
    thetas = quadratic.optimum + radii * directions / np.linalg.norm(directions, axis=1)[:, None]
    H, N = quadratic.spread_and_norm(thetas)
    grid = threshold * np.array([1 + 1e-6, 1.01, 1.5, 3.0]) + np.array([0, 0, 0, 10.0])
    for B2, G2 in zip(grid, exact_gb(problem, B2=grid), strict=True):
        assert np.isfinite(G2)
        allowed = G2 + B2 * N
        assert np.all(allowed * (1 + 1e-9) - H >= 0), float(np.max(H / allowed))


def test_the_frontier_holds_far_along_rays(problem, quadratic):
    threshold = quadratic.threshold()
    rng = np.random.default_rng(7)
    directions = np.vstack(
        [quadratic.top_direction(), rng.standard_normal((20, problem.dimension))]
    )
    steps = np.logspace(-2, 8, 61)
    grid = threshold * np.array([1 + 1e-6, 1.001, 2.0])
    for B2, G2 in zip(grid, exact_gb(problem, B2=grid), strict=True):
        for sign in (1.0, -1.0):
            thetas = quadratic.optimum + sign * steps[:, None] * directions[:, None, :]
            H, N = quadratic.spread_and_norm(thetas.reshape(-1, problem.dimension))
            assert np.all(H <= (G2 + B2 * N) * (1 + 1e-9))


def test_the_frontier_is_attained(problem, quadratic):
    threshold = quadratic.threshold()
    grid = threshold * np.array([1 + 1e-4, 1.01, 1.3, 2.0, 10.0])
    for B2, G2 in zip(grid, exact_gb(problem, B2=grid), strict=True):
        # H − B²N is concave in θ above the threshold, so its stationary point is the maximum
        assert np.linalg.eigvalsh(quadratic.spread - B2 * quadratic.gram)[-1] < 0
        best = quadratic.maximiser(B2)
        H, N = quadratic.spread_and_norm(best[None])
        assert float(H[0] - B2 * N[0]) == pytest.approx(G2, rel=1e-6)
        # the package's own H and N at that point agree
        spread, norm = dissimilarity(problem, torch.from_numpy(best))
        assert float(spread - B2 * norm) == pytest.approx(G2, rel=1e-6)


def test_frontier_shape(problem, quadratic):
    threshold = quadratic.threshold()
    grid = threshold * (1 + np.logspace(-6, 6, 60))
    values = exact_gb(problem, B2=grid)
    assert np.all(np.diff(values) <= 1e-12 * values[:-1])  # non-increasing in B²
    # B² → ∞ leaves only θ with ∇L_H = 0: G² → H(θ*) = (1/h)Σ‖∇L_i(θ*)‖²
    H_star, _ = quadratic.spread_and_norm(quadratic.optimum[None])
    assert float(exact_gb(problem, B2=1e12 * threshold)[0]) == pytest.approx(H_star[0], rel=1e-6)
    # and G² ≥ H(θ*) everywhere (θ* is one of the θ of the definition)
    assert np.all(values >= H_star[0] * (1 - 1e-12))


def test_below_the_threshold_there_is_no_finite_g(problem, quadratic):
    threshold = quadratic.threshold()
    below = threshold * np.array([0.0, 0.5, 0.99, 1 - 1e-6])
    assert np.all(np.isinf(exact_gb(problem, B2=below)))
    # generic data: v is not orthogonal to the top eigenspace, so B² = threshold is inf too
    assert np.isinf(exact_gb(problem, B2=exact_gb_threshold(problem))[0])
    # a witness: along the top generalized eigenvector H − B²N grows without bound
    direction = quadratic.top_direction()
    B2 = threshold * (1 - 1e-3)
    far = quadratic.optimum + np.array([1e2, 1e4, 1e6])[:, None] * direction
    H, N = quadratic.spread_and_norm(far)
    excess = H - B2 * N
    assert excess[0] < excess[1] < excess[2]
    assert excess[2] > 1e6 * float(exact_gb(problem, B2=2 * threshold)[0])


def test_identical_hessians():
    g = torch.Generator().manual_seed(8)
    h = 7
    features = torch.randn(1, 4, 3, generator=g, dtype=F64).expand(h, 4, 3).clone()
    targets = torch.randn(h, 4, generator=g, dtype=F64)
    problem = LeastSquares(features, targets, ridge=0.2)
    offsets = np.stack([features[i].numpy().T @ targets[i].numpy() / 4 for i in range(h)])
    expected = float(((offsets - offsets.mean(axis=0)) ** 2).sum(axis=1).mean())
    assert abs(exact_gb_threshold(problem)) <= 1e-12
    # ∇L_i − ∇L_H = −(b_i − b̄) for every θ: H is constant, so G² = H for every B² ≥ 0
    values = exact_gb(problem, B2=np.array([0.0, 0.1, 1.0, 100.0]))
    np.testing.assert_allclose(values, expected, rtol=1e-12)
    rng = np.random.default_rng(9)
    spread, _ = dissimilarity(problem, torch.from_numpy(rng.standard_normal((50, 3))))
    np.testing.assert_allclose(spread.numpy(), expected, rtol=1e-10)


def test_scaling_the_targets_scales_g2(problem):
    grid = exact_gb_threshold(problem) * np.array([1.1, 2.0, 5.0])
    scaled = LeastSquares(problem.features, 10.0 * problem.targets, ridge=problem.ridge)
    assert exact_gb_threshold(scaled) == pytest.approx(exact_gb_threshold(problem), rel=1e-12)
    np.testing.assert_allclose(
        exact_gb(scaled, B2=grid), 100.0 * exact_gb(problem, B2=grid), rtol=1e-10
    )


def test_rank_deficient_problem_is_refused_or_solved_on_the_range():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 1, 4, generator=g, dtype=F64)
    targets = torch.randn(2, 1, generator=g, dtype=F64)
    problem = LeastSquares(features, targets)
    quadratic = _Quadratic(problem)
    # gradients do not move along the kernel of Ā (A_i v = 0 there for every i): restrict to
    # the range, where Ā is invertible
    values, vectors = np.linalg.eigh(quadratic.a_bar)
    basis = vectors[:, values > 1e-10 * values[-1]]
    restricted = scipy.linalg.eigh(
        basis.T @ quadratic.spread @ basis, basis.T @ quadratic.gram @ basis, eigvals_only=True
    )[-1]
    try:
        threshold = exact_gb_threshold(problem)
    except ValueError:
        return
    assert threshold == pytest.approx(restricted, rel=1e-6)
    assert np.isfinite(exact_gb(problem, B2=2 * restricted)[0])


# ---------------------------------------------------------------------------------------------
# sampled frontier


def test_sampled_frontier_is_the_sample_maximum(problem, quadratic):
    rng = np.random.default_rng(10)
    thetas = rng.standard_normal((300, problem.dimension)) * 3
    grid = np.array([0.0, 0.5, 2.0, 50.0])
    H, N = quadratic.spread_and_norm(thetas)
    expected = [max(0.0, float(np.max(H - B2 * N))) for B2 in grid]
    np.testing.assert_allclose(
        sampled_gb(problem, torch.from_numpy(thetas), B2=grid), expected, 1e-12
    )


def test_sampled_frontier_is_a_lower_estimate_that_reaches_the_exact_one(problem, quadratic):
    threshold = quadratic.threshold()
    grid = threshold * np.array([1.001, 1.05, 1.5, 3.0, 20.0])
    exact = exact_gb(problem, B2=grid)
    rng = np.random.default_rng(11)
    samples = quadratic.optimum + 10.0 ** rng.uniform(-3, 3, (2000, 1)) * rng.standard_normal(
        (2000, problem.dimension)
    )
    sampled = sampled_gb(problem, torch.from_numpy(samples), B2=grid)
    assert np.all(sampled <= exact * (1 + 1e-9))
    assert np.all(sampled < exact * 0.999)  # random samples miss the maximiser
    # add each B²'s maximiser: the sample maximum is then the exact frontier
    maximisers = np.stack([quadratic.maximiser(B2) for B2 in grid])
    with_best = sampled_gb(problem, torch.from_numpy(np.vstack([samples, maximisers])), B2=grid)
    np.testing.assert_allclose(with_best, exact, rtol=1e-7)


def test_sampled_frontier_clips_at_zero():
    # identical workers: H = 0 everywhere, so (H − B²N)₊ = 0
    g = torch.Generator().manual_seed(12)
    features = torch.randn(1, 3, 2, generator=g, dtype=F64).expand(4, 3, 2)
    targets = torch.randn(1, 3, generator=g, dtype=F64).expand(4, 3)
    problem = LeastSquares(features, targets)
    thetas = torch.randn(20, 2, generator=g, dtype=F64)
    np.testing.assert_array_equal(sampled_gb(problem, thetas, B2=[0.0, 1.0]), [0.0, 0.0])


def test_negative_b2_is_refused(problem):
    with pytest.raises(ValueError, match="B2=-1 must be >= 0"):
        exact_gb(problem, B2=-1.0)
    with pytest.raises(ValueError, match="B2"):
        sampled_gb(problem, torch.zeros(1, problem.dimension, dtype=F64), B2=[1.0, -0.5])


def test_error_floor_pair_is_the_minimum_over_the_frontier():
    rng = np.random.default_rng(0)
    for _ in range(50):
        b2 = np.sort(rng.uniform(0, 5, size=12))
        g2 = np.sort(rng.uniform(0, 10, size=12))[::-1]
        kappa = float(rng.uniform(0, 1))
        got = error_floor_pair(b2, g2, kappa=kappa)
        floors = [
            kappa * g / (1 - kappa * b) if kappa * b < 1 else np.inf
            for b, g in zip(b2, g2, strict=True)
        ]
        assert got[2] == pytest.approx(min(floors), rel=1e-12)
        assert got[2] == pytest.approx(floors[int(np.argmin(floors))], rel=1e-12)
        assert (got[0], got[1]) == (b2[int(np.argmin(floors))], g2[int(np.argmin(floors))])
    assert error_floor_pair(np.array([2.0, 4.0]), np.array([1.0, 0.5]), kappa=0.5)[2] == np.inf
    with pytest.raises(ValueError, match="same length"):
        error_floor_pair(np.zeros(2), np.zeros(3), kappa=0.5)
    with pytest.raises(ValueError, match="kappa"):
        error_floor_pair(np.zeros(2), np.zeros(2), kappa=-1.0)

"""Each rule against an independent, deliberately naive numpy implementation of its definition."""

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from trilemma.aggregators import get

RNG = np.random.default_rng(20261123)


def cases(count=6, n_range=(5, 10), d=4):
    for _ in range(count):
        n = int(RNG.integers(*n_range))
        f = int(RNG.integers(1, (n - 1) // 2 + 1))
        x = RNG.normal(size=(n, d)) * RNG.uniform(0.5, 3.0)
        x[:f] += RNG.normal(size=d) * 5  # a displaced group
        yield n, f, x


def run(name, x, **params):
    return get(name, **params)(torch.from_numpy(x)).numpy()


def sq_dist(x):
    return np.array([[np.sum((a - b) ** 2) for b in x] for a in x])


@pytest.mark.parametrize(("n", "f", "x"), list(cases()))
def test_cwtm_cwmed_meamed(n, f, x):
    trimmed, median, around = [], [], []
    for column in x.T:
        values = sorted(column)
        trimmed.append(np.mean(values[f : n - f]))
        median.append(np.median(column))
        middle = np.median(column)
        closest = sorted(column, key=lambda v, m=middle: abs(v - m))[: n - f]
        around.append(np.mean(closest))
    np.testing.assert_allclose(run("cwtm", x, f=f), trimmed, rtol=1e-12)
    np.testing.assert_allclose(run("cwmed", x, f=f), median, rtol=1e-12)
    np.testing.assert_allclose(run("meamed", x, f=f), around, rtol=1e-12)


KRUM_CASES = [
    (n, f, x, neighbours)
    for n, f, x in cases(count=10)
    for neighbours in ("n-f-2", "n-f-1")
    if n >= get("krum", f=f, neighbours=neighbours).min_workers()
]


@pytest.mark.parametrize(("n", "f", "x", "neighbours"), KRUM_CASES)
def test_krum_and_multikrum(n, f, x, neighbours):
    count = n - f - (2 if neighbours == "n-f-2" else 1)
    distances = sq_dist(x)
    scores = [sum(sorted(np.delete(row, i))[:count]) for i, row in enumerate(distances)]
    order = np.argsort(scores, kind="stable")
    np.testing.assert_allclose(run("krum", x, f=f, neighbours=neighbours), x[order[0]])
    np.testing.assert_allclose(
        run("multikrum", x, f=f, neighbours=neighbours), x[order[: n - f]].mean(0), rtol=1e-12
    )


@pytest.mark.parametrize(("n", "f", "x"), list(cases(n_range=(5, 9))))
def test_mda_and_smea_brute_force(n, f, x):
    best_diameter, best_eigen = (np.inf, None), (np.inf, None)
    for subset in itertools.combinations(range(n), n - f):
        points = x[list(subset)]
        diameter = max(np.sum((a - b) ** 2) for a in points for b in points)
        top = np.linalg.eigvalsh(np.cov(points.T, bias=True))[-1]
        best_diameter = min(best_diameter, (diameter, subset), key=lambda t: t[0])
        best_eigen = min(best_eigen, (top, subset), key=lambda t: t[0])
    np.testing.assert_allclose(run("mda", x, f=f), x[list(best_diameter[1])].mean(0), rtol=1e-12)
    np.testing.assert_allclose(run("smea", x, f=f), x[list(best_eigen[1])].mean(0), rtol=1e-12)


def test_smea_at_the_practical_size():
    # n = 25, f = 6: 177 100 subsets; brute force on the top-eigenvalue of every subset
    n, f = 25, 6
    x = RNG.normal(size=(n, 3))
    x[:f] += 2.0
    subsets = np.array(list(itertools.combinations(range(n), n - f)))
    points = x[subsets]  # (C, k, d)
    centred = points - points.mean(axis=1, keepdims=True)
    scatter = np.einsum("cki,ckj->cij", centred, centred)
    best = subsets[np.argmin(np.linalg.eigvalsh(scatter)[:, -1])]
    np.testing.assert_allclose(run("smea", x, f=f), x[best].mean(0), rtol=1e-12)


@pytest.mark.parametrize(("n", "f", "x"), list(cases(n_range=(11, 16))))
def test_bulyan(n, f, x):
    f = min(f, (n - 3) // 4)
    theta, beta = n - 2 * f, n - 4 * f
    remaining, chosen = list(range(n)), []
    for _ in range(theta):
        count = max(len(remaining) - f - 2, 1)
        scores = []
        for i in remaining:
            others = [np.sum((x[i] - x[j]) ** 2) for j in remaining if j != i]
            scores.append(sum(sorted(others)[:count]))
        pick = remaining[int(np.argmin(scores))]
        chosen.append(pick)
        remaining.remove(pick)
    selected = x[chosen]
    expected = []
    for column in selected.T:
        median = np.median(column)
        expected.append(np.mean(sorted(column, key=lambda v, m=median: abs(v - m))[:beta]))
    np.testing.assert_allclose(run("bulyan", x, f=f), expected, rtol=1e-12)


@pytest.mark.parametrize(("n", "f", "x"), list(cases()))
def test_geometric_median_minimises_the_sum_of_distances(n, f, x):
    ours = run("gm", x, f=f, tol=1e-12, max_iter=10_000)
    objective = lambda z: np.sum(np.linalg.norm(x - z, axis=1))  # noqa: E731
    reference = minimize(
        objective,
        x.mean(0),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000},
    )
    assert objective(ours) <= reference.fun + 1e-8


@pytest.mark.parametrize(("n", "f", "x"), list(cases()))
def test_centered_clipping(n, f, x):
    v = np.zeros(x.shape[1])
    for _ in range(4):
        steps = [(xi - v) * min(1.0, 0.7 / np.linalg.norm(xi - v)) for xi in x]
        v = v + np.mean(steps, axis=0)
    np.testing.assert_allclose(run("cc", x, f=f, tau=0.7, iterations=4), v, rtol=1e-12)


@pytest.mark.parametrize(("n", "f", "x"), list(cases()))
def test_nnm_monna_arc_clip(n, f, x):
    distances = sq_dist(x)
    mixed = np.array([x[np.argsort(row, kind="stable")[: n - f]].mean(0) for row in distances])
    got = get("nnm", f=f)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, mixed, rtol=1e-12)
    nearest = np.argsort(distances[2], kind="stable")[: n - f]
    np.testing.assert_allclose(run("monna", x, f=f, pivot=2), x[nearest].mean(0), rtol=1e-12)
    norms = np.linalg.norm(x, axis=1)
    k = 2 * f * (n - f) // n
    threshold = np.sort(norms)[::-1][k]
    clipped = x * np.minimum(1.0, threshold / norms)[:, None]
    np.testing.assert_allclose(get("arc", f=f)(torch.from_numpy(x)).numpy(), clipped, rtol=1e-12)
    static = x * np.minimum(1.0, 1.5 / norms)[:, None]
    np.testing.assert_allclose(get("clip", c=1.5)(torch.from_numpy(x)).numpy(), static, rtol=1e-12)


def caf_reference(x, f):
    """CAF with an explicit d × d weighted covariance and numpy's eigh."""
    n = len(x)
    c = np.ones(n)
    best, best_mean = np.inf, None
    while c.sum() > n - 2 * f:
        mean = (c[:, None] * x).sum(0) / c.sum()
        centred = x - mean
        covariance = (c[:, None, None] * np.einsum("ni,nj->nij", centred, centred)).sum(0) / c.sum()
        values, vectors = np.linalg.eigh(covariance)
        if values[-1] < best:
            best, best_mean = values[-1], mean
        tau = (centred @ vectors[:, -1]) ** 2 * (c > 0)
        c = c * (1 - tau / tau.max())
    return best_mean


@pytest.mark.parametrize(("n", "f", "x"), list(cases()))
def test_caf(n, f, x):
    np.testing.assert_allclose(run("caf", x, f=f), caf_reference(x, f), rtol=1e-9)

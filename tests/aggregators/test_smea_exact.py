"""SMEA's branch and bound against brute force over all C(n, f) removal sets, and the pieces of
its proof (the Weyl bound, the inertia count, the removal-set tables) checked one by one."""

import itertools
import math

import numpy as np
import pytest
import torch

from trilemma import attacks
from trilemma.aggregators import SMEA, _smea_search
from trilemma.aggregators._smea_search import count_above, next_copies
from trilemma.aggregators._subsets import colex_rank, removal_level

CPU = torch.device("cpu")


def top_eigenvalues(x, k):
    """λ_max of the scatter of every k-subset of the rows of x, from a d × d matrix in numpy."""
    subsets = np.array(list(itertools.combinations(range(len(x)), k)))
    points = x[subsets]
    centred = points - points.mean(axis=1, keepdims=True)
    scatter = np.einsum("cki,ckj->cij", centred, centred)
    return np.linalg.eigvalsh(scatter)[:, -1], subsets


def assert_exact(x, f, out):
    """``out`` is the mean of an (n − f)-subset whose λ_max is the smallest (up to rounding)."""
    values, subsets = top_eigenvalues(x, len(x) - f)
    means = x[subsets].mean(axis=1)
    chosen = np.abs(means - out).max(axis=1) <= 1e-9 * (1 + np.abs(x).max())
    assert chosen.any(), "the output is the mean of no (n − f)-subset"
    best = values.min()
    assert values[chosen].min() <= best + 1e-9 * values.max(), (values[chosen].min(), best)


def inputs(kind, n, f, d, rng):
    honest = rng.normal(size=(n - f, d))
    if kind == "isotropic":
        return rng.normal(size=(n, d))
    if kind == "cluster":  # a tight Byzantine cluster far away
        return np.concatenate([honest, 6.0 + 0.05 * rng.normal(size=(f, d))])
    if kind == "near":  # Byzantine rows hidden inside the honest cloud, one direction inflated
        byzantine = rng.normal(size=(f, d))
        byzantine[:, 0] *= 3.0
        return np.concatenate([honest, byzantine])
    if kind == "duplicates":  # ties: repeated rows and a repeated honest row (mimic)
        return np.concatenate([honest, np.repeat(honest[:1], f, axis=0)])
    if kind == "collinear":  # degenerate: rank-one data, many equal spectra
        return np.outer(rng.normal(size=n), rng.normal(size=d))
    if kind == "lattice":  # exact ties between many subsets
        return rng.integers(-1, 2, size=(n, d)).astype(float)
    attack = attacks.get(kind)(torch.from_numpy(honest), f).numpy()
    return np.concatenate([honest, attack])


@pytest.fixture(params=["search", "every set"])
def path(request, monkeypatch):
    """Run SMEA through its branch and bound, or through the evaluation of every set."""
    monkeypatch.setattr(_smea_search, "_BRUTE_FORCE", 0 if request.param == "search" else 10**9)
    return request.param


KINDS = ["isotropic", "cluster", "near", "duplicates", "collinear", "lattice"]
KINDS += ["alie", "foe", "sign_flipping", "mimic", "gaussian"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("n", "f", "d"), [(5, 1, 2), (7, 2, 3), (9, 3, 8), (11, 4, 2), (12, 3, 30)]
)
def test_matches_brute_force(kind, n, f, d, path):
    rng = np.random.default_rng([n, f, d, KINDS.index(kind)])
    x = np.stack([inputs(kind, n, f, d, rng) for _ in range(6)])
    out = SMEA(f=f)(torch.from_numpy(x)).numpy()  # batched: all six at once
    for trial in range(len(x)):
        assert_exact(x[trial], f, out[trial])


@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force_at_n_20_f_4(seed):
    # the size the search was built for: isotropic noise, where the diameter bound prunes nothing
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, 20, 16))
    x[1, 16:] = x[1, :16].mean(0) + 0.8 * x[1, :16].std(0)  # ALIE-like copies
    out = SMEA(f=4)(torch.from_numpy(x)).numpy()
    for trial in range(len(x)):
        assert_exact(x[trial], 4, out[trial])


def test_float32_input_selects_the_float64_optimum(path):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 10, 6)).astype(np.float32)
    out = SMEA(f=2)(torch.from_numpy(x))
    assert out.dtype == torch.float32
    for trial in range(len(x)):
        values, subsets = top_eigenvalues(x[trial].astype(np.float64), 8)
        chosen = np.abs(x[trial][subsets].mean(1) - out[trial].numpy()).max(1) <= 1e-6
        assert values[chosen].min() <= values.min() * (1 + 1e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e200])
def test_garbage_rows_are_never_kept(bad, path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 4))
    x[[2, 7]] = bad
    out = SMEA(f=3)(torch.from_numpy(x)).numpy()
    clean = np.delete(x, [2, 7], axis=0)  # then one more of the 7 clean rows goes
    values, subsets = top_eigenvalues(clean, 6)
    np.testing.assert_allclose(out, clean[subsets[values.argmin()]].mean(0), rtol=1e-12)


def test_all_identical_rows(path):
    x = torch.ones(8, 3)
    torch.testing.assert_close(SMEA(f=3)(x), torch.ones(3))


@pytest.mark.parametrize(("n", "f"), [(6, 2), (9, 4), (12, 3)])
def test_removal_tables(n, f):
    for j in range(f + 1):
        removed, kept, parents = removal_level(n, j, CPU)
        assert removed.shape == (math.comb(n, j), j) and kept.shape == (math.comb(n, j), n - j)
        assert torch.equal(colex_rank(removed, n), torch.arange(math.comb(n, j)))
        together = torch.cat([removed, kept], dim=1).sort(dim=1).values
        assert torch.equal(together, torch.arange(n).expand_as(together))
        if j:
            previous = removal_level(n, j - 1, CPU)[0]
            for a in range(j):
                rest = torch.cat([removed[:, :a], removed[:, a + 1 :]], dim=1)
                assert torch.equal(previous[parents[:, a]], rest)


@pytest.mark.parametrize("r", [1, 2, 3])
def test_weyl_bound_of_the_proof(r):
    # λ_1(S) ≥ λ_{r+1}(T) for S ⊂ T with |T ∖ S| = r, and λ_1(S) ≤ λ_1(T)
    rng = np.random.default_rng(r)
    for _ in range(200):
        t = rng.normal(size=(int(rng.integers(r + 2, 10)), int(rng.integers(1, 6))))
        t[: int(rng.integers(0, 3))] *= 10.0
        s = t[rng.permutation(len(t))[: len(t) - r]]
        top_s = np.linalg.eigvalsh(scatter(s))[-1]
        descending = np.concatenate([np.linalg.eigvalsh(scatter(t))[::-1], np.zeros(r + 1)])
        assert top_s >= descending[r] - 1e-9 * descending[0]
        assert top_s <= descending[0] * (1 + 1e-9)


def scatter(points):
    centred = points - points.mean(axis=0)
    return centred.T @ centred


def test_count_above_equals_counting_eigenvalues():
    rng = np.random.default_rng(3)
    gram, trials, kept, expected, sigma = [], [], [], [], []
    for trial in range(300):
        m = int(rng.integers(2, 12))
        x = rng.normal(size=(12, int(rng.integers(1, 20))))
        if trial % 3 == 0:
            x[1] = x[0]  # a repeated row: a zero eigenvalue more
        gram.append(x @ x.T)
        rows = np.sort(rng.permutation(12)[:m])
        block = gram[-1][np.ix_(rows, rows)]
        centred = block - block.mean(0) - block.mean(1)[:, None] + block.mean()
        eigenvalues = np.linalg.eigvalsh(centred)
        level = rng.uniform(0.0, 1.2) * eigenvalues[-1] + 1e-9
        trials.append(trial)
        kept.append(np.pad(rows, (0, 12 - m), constant_values=-1))
        expected.append(int((eigenvalues > level).sum()))
        sigma.append(level)
    gram_t = torch.tensor(np.array(gram))
    for m in range(2, 12):
        pick = [i for i, row in enumerate(kept) if (row >= 0).sum() == m]
        counts = count_above(
            gram_t,
            torch.tensor([trials[i] for i in pick]),
            torch.tensor(np.array([kept[i][:m] for i in pick])),
            torch.tensor([sigma[i] for i in pick]),
        )
        assert counts.tolist() == [expected[i] for i in pick]


def test_next_copies_are_exact_copies():
    x = torch.tensor(
        [[[1.0, 2.0], [0.0, 0.0], [1.0, 2.0], [1.0, 2.0 + 1e-12], [1.0, 2.0], [np.nan, 0.0]]],
        dtype=torch.float64,
    )
    garbage = torch.tensor([[False] * 5 + [True]])
    clean = torch.nan_to_num(x, nan=0.0)[0]
    gram = (clean @ clean.T).unsqueeze(0)
    # 0 → 2 → 4 are copies; 3 differs by 1e-12 (a near copy is no copy); NaN rows have none
    assert next_copies(x, gram, garbage).tolist() == [[2, 6, 4, 6, 6, 6]]


def test_copies_change_nothing_but_the_work():
    # the same input with its copies perturbed by 1e-9 (no copies left) selects the same set
    rng = np.random.default_rng(11)
    honest = rng.normal(size=(4, 15, 5))
    x = np.concatenate([honest, np.repeat(honest[:, :1], 4, axis=1)], axis=1)
    perturbed = x + 1e-9 * rng.normal(size=x.shape)
    rule = SMEA(f=4)
    exact, nearby = rule(torch.from_numpy(x)).numpy(), rule(torch.from_numpy(perturbed)).numpy()
    np.testing.assert_allclose(exact, nearby, atol=1e-7)
    for trial in range(len(x)):
        assert_exact(x[trial], 4, exact[trial])


def test_more_rows_than_the_bitmasks_hold(path):
    # n > 62: the pair and copy filters are off, the search stays exact
    rng = np.random.default_rng(12)
    x = rng.normal(size=(2, 64, 3))
    x[:, 60:] = x[:, :1]  # copies, which the search then does not merge
    x[:, 1] += 8.0
    out = SMEA(f=2)(torch.from_numpy(x)).numpy()
    for trial in range(len(x)):
        assert_exact(x[trial], 2, out[trial])

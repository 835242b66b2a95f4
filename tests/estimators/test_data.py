"""Data families against closed forms, a torch re-draw of the same random stream, and sklearn."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn import datasets
from sklearn.preprocessing import StandardScaler, normalize

from trilemma.estimators import (
    DATASETS,
    _binomial,
    ball_records,
    check_records,
    dataset_records,
    load_dataset,
    marginal_averages,
    marginal_records,
    product_biases,
)

# --------------------------------------------------------------------------------------------
# One-way-marginal records


def test_marginal_records_shape_and_entries_are_plus_minus_c_over_sqrt_d():
    g = torch.Generator().manual_seed(0)
    biases = product_biases(d=9, batch_shape=(2, 3), generator=g)
    x = marginal_records(biases, n=4, m=5, clip=1.5, generator=g)
    assert x.shape == (2, 3, 4, 5, 9)
    assert x.dtype == torch.float64
    # C/√d = 1.5/3 = 0.5 exactly
    assert set(x.unique().tolist()) == {-0.5, 0.5}
    norms = torch.linalg.vector_norm(x, dim=-1)
    torch.testing.assert_close(norms, torch.full_like(norms, 1.5), rtol=1e-14, atol=0)


def test_marginal_records_frequency_of_plus_matches_one_plus_p_over_two():
    g = torch.Generator().manual_seed(1)
    biases = torch.tensor([-1.0, -0.8, -0.3, 0.0, 0.25, 0.6, 0.95, 1.0], dtype=torch.float64)
    x = marginal_records(biases.expand(10, 8), n=50, m=40, clip=1.0, generator=g)
    count = 10 * 50 * 40
    frequency = (x > 0).double().reshape(count, 8).mean(dim=0).numpy()
    expected = (1.0 + biases.numpy()) / 2.0
    standard_error = np.sqrt(expected * (1.0 - expected) / count)
    # deterministic coordinates (p = ±1) must be exact; the others within 4 binomial SE
    assert np.all(np.abs(frequency - expected) <= 4.0 * standard_error)
    assert frequency[0] == 0.0 and frequency[-1] == 1.0


def test_marginal_records_keep_dtype_and_are_independent_across_batch():
    g = torch.Generator().manual_seed(2)
    x = marginal_records(torch.zeros(2, 64, dtype=torch.float32), n=3, m=4, generator=g)
    assert x.dtype == torch.float32
    assert not torch.equal(x[0], x[1])


@pytest.mark.parametrize("bad", [1.0001, -1.5, float("nan")])
def test_marginal_records_reject_biases_outside_unit_interval(bad):
    biases = torch.tensor([0.0, bad], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"biases must lie in \[-1, 1\]"):
        marginal_records(biases, n=2, m=2, generator=torch.Generator())


def test_product_biases_are_uniform_on_minus_one_one():
    g = torch.Generator().manual_seed(3)
    p = product_biases(d=50, batch_shape=400, generator=g).numpy().ravel()
    assert p.min() >= -1.0 and p.max() <= 1.0
    # U[-1, 1]: mean 0, variance 1/3
    se_mean = math.sqrt(1.0 / 3.0 / p.size)
    assert abs(p.mean()) <= 4.0 * se_mean
    assert abs(p.var() - 1.0 / 3.0) <= 0.01


def test_marginal_averages_lie_on_the_binomial_lattice():
    g = torch.Generator().manual_seed(20)
    biases = product_biases(d=9, batch_shape=(4, 5), generator=g)
    y = marginal_averages(biases, n=6, m=7, clip=1.5, generator=g)
    assert y.shape == (4, 5, 6, 9) and y.dtype == torch.float64
    # y_j = (2K − m)/m · C/√d with K ∈ {0, …, m}: y_j · m · √d/C is an odd integer in [−7, 7]
    counts = y.numpy() * 7 * 3 / 1.5
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-12)
    assert set(np.round(counts).astype(int).ravel()) <= set(range(-7, 8, 2))
    assert float(torch.linalg.vector_norm(y, dim=-1).max()) <= 1.5 * (1 + 1e-12)


def test_marginal_averages_have_the_moments_of_record_averages():
    d, m, clip, count = 4, 10, 2.0, 40_000
    biases = torch.tensor([-0.9, -0.2, 0.5, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(21)
    y = marginal_averages(biases.expand(count // 8, 4), n=8, m=m, clip=clip, generator=g)
    y = y.reshape(count, d).numpy()
    scale = clip / math.sqrt(d)
    p = biases.numpy()
    mean = p * scale
    variance = (1 - p**2) * scale**2 / m  # average of m iid ±scale with mean p·scale
    assert np.all(np.abs(y.mean(axis=0) - mean) <= 4 * np.sqrt(variance / count) + 1e-15)
    np.testing.assert_allclose(y.var(axis=0)[:3], variance[:3], rtol=0.05)
    assert np.all(y[:, 3] == scale)  # bias 1: every record is +C/√d
    with pytest.raises(ValueError, match=r"biases must lie in \[-1, 1\]"):
        marginal_averages(torch.tensor([1.5]), n=1, m=1, generator=g)


# The Binomial sampler behind marginal_averages, against scipy.stats.binom

PROBS = (0.05, 0.35, 0.5, 0.7, 0.975)  # success probabilities (1 + p)/2 of the tests below


def binomial_draws(*, m, n, count, seed, probs=PROBS):
    """Counts K ``(count, n, len(probs))`` behind marginal_averages, y = (2K − m)/m · C/√d."""
    d, clip = len(probs), 2.0
    biases = 2.0 * torch.tensor(probs, dtype=torch.float64) - 1.0
    g = torch.Generator().manual_seed(seed)
    y = marginal_averages(biases.expand(count, d), n=n, m=m, clip=clip, generator=g).numpy()
    counts = (y * m * math.sqrt(d) / clip + m) / 2.0
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-6 * m)
    return np.round(counts).astype(np.int64)


def chi_square_pvalue(samples, pmf):
    """Pearson's test of integer ``samples`` against ``pmf`` (array over 0, …, len − 1); cells
    with expected count below 5 are pooled with their neighbour towards the mode."""
    observed = np.bincount(samples.ravel(), minlength=len(pmf)).astype(np.float64)
    assert observed.size == len(pmf)  # no draw outside the support
    expected = pmf * samples.size
    mode = int(np.argmax(expected))
    cells_o, cells_e, acc_o, acc_e = [], [], 0.0, 0.0
    for k in [*range(mode), *range(len(pmf) - 1, mode - 1, -1)]:  # tails inwards
        acc_o, acc_e = acc_o + observed[k], acc_e + expected[k]
        if acc_e >= 5.0 or k == mode:
            cells_o.append(acc_o)
            cells_e.append(acc_e)
            acc_o, acc_e = 0.0, 0.0
    cells_o, cells_e = np.array(cells_o), np.array(cells_e)
    statistic = float(np.sum((cells_o - cells_e) ** 2 / cells_e))
    return float(stats.chi2.sf(statistic, max(len(cells_o) - 1, 1)))


@pytest.mark.parametrize("m", [1, 7, 100, 70_000])  # 70 000: past the log-factorial table
def test_marginal_average_counts_follow_the_binomial_law(m):
    counts = binomial_draws(m=m, n=8, count=5_000, seed=m)
    for j, prob in enumerate(PROBS):
        pmf = stats.binom.pmf(np.arange(m + 1), m, prob)
        # 40 000 draws per cell: a sound sampler is rejected at 1e-4 with probability 1e-4
        assert chi_square_pvalue(counts[..., j], pmf) > 1e-4, (m, prob)


@pytest.mark.parametrize("m", [7, 100])
def test_binomial_law_test_rejects_a_wrong_p_or_a_wrong_m(m):
    # planted bugs: draws with p off by 0.01, or with m + 1 trials, tested against Binomial(m, p)
    prob = 0.35
    pmf = stats.binom.pmf(np.arange(m + 2), m, prob)  # one more cell: room for m + 1
    shifted = binomial_draws(m=m, n=8, count=5_000, seed=1, probs=(prob + 0.01,))
    assert chi_square_pvalue(shifted, pmf) < 1e-6
    more = binomial_draws(m=m + 1, n=8, count=5_000, seed=2, probs=(prob,))
    assert chi_square_pvalue(more, pmf) < 1e-6
    right = binomial_draws(m=m, n=8, count=5_000, seed=3, probs=(prob,))
    assert chi_square_pvalue(right, pmf) > 1e-4


def test_marginal_average_counts_are_independent_across_workers():
    # the kernel serves the workers of one coordinate from one walk over sorted uniforms; the
    # pair (K_0, K_1) must still have the product law (a mix-up of the sorted order would not)
    m, prob = 3, 0.35
    counts = binomial_draws(m=m, n=4, count=20_000, seed=5, probs=(prob,))[..., 0]
    pmf = stats.binom.pmf(np.arange(m + 1), m, prob)
    pair = counts[:, 0] * (m + 1) + counts[:, 1]
    assert chi_square_pvalue(pair, np.outer(pmf, pmf).ravel()) > 1e-4
    # planted bug: counts sorted across workers (K_0 ≤ K_1 always) are rejected
    ordered = np.sort(counts, axis=1)
    pair = ordered[:, 0] * (m + 1) + ordered[:, 1]
    assert chi_square_pvalue(pair, np.outer(pmf, pmf).ravel()) < 1e-6


def test_marginal_averages_do_not_depend_on_the_walk_storage(monkeypatch):
    # a walk longer than its storage resumes with twice the storage: same draws
    biases = product_biases(d=6, batch_shape=50, generator=torch.Generator().manual_seed(4))
    expected = marginal_averages(biases, n=5, m=400, generator=torch.Generator().manual_seed(6))
    monkeypatch.setattr(_binomial, "_walk_capacity", lambda m: 1)
    again = marginal_averages(biases, n=5, m=400, generator=torch.Generator().manual_seed(6))
    assert torch.equal(again, expected)


def test_marginal_averages_are_deterministic_given_the_seed_and_use_n_d_uniforms():
    biases = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64).expand(3, 5)
    draws = [
        marginal_averages(biases, n=4, m=30, generator=torch.Generator().manual_seed(9))
        for _ in range(2)
    ]
    assert torch.equal(draws[0], draws[1])
    g = torch.Generator().manual_seed(9)
    marginal_averages(biases, n=4, m=30, generator=g)
    after = torch.rand(1, generator=g, dtype=torch.float64)
    g = torch.Generator().manual_seed(9)
    torch.rand(3 * 4 * 5, generator=g, dtype=torch.float64)
    assert torch.equal(after, torch.rand(1, generator=g, dtype=torch.float64))


# --------------------------------------------------------------------------------------------
# Bounded (ball) records


def redraw_ball(*, d, n, m, batch, clip, spread, seed):
    """The documented construction, recomputed from the same torch random stream."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.randn((*batch, 1, 1, d), generator=g, dtype=torch.float64).numpy()
    noise = torch.randn((*batch, n, m, d), generator=g, dtype=torch.float64).numpy()
    mean = 0.5 * clip * direction / np.linalg.norm(direction, axis=-1, keepdims=True)
    raw = mean + spread * clip * noise / np.sqrt(d)
    norms = np.linalg.norm(raw, axis=-1, keepdims=True)
    return np.where(norms > clip, raw * clip / norms, raw)


def test_ball_records_shape_norms_and_construction():
    kw = dict(d=7, n=4, m=6, clip=2.0, spread=1.5)
    x = ball_records(**kw, batch_shape=(3, 2), generator=torch.Generator().manual_seed(4))
    assert x.shape == (3, 2, 4, 6, 7)
    norms = torch.linalg.vector_norm(x, dim=-1)
    assert float(norms.max()) <= 2.0 * (1 + 1e-12)
    # with spread 1.5 some rows must have been projected onto the sphere, some not
    assert bool((norms > 2.0 - 1e-9).any()) and bool((norms < 1.9).any())
    expected = redraw_ball(**kw, batch=(3, 2), seed=4)
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-12, atol=1e-14)


def test_ball_records_share_one_mean_per_batch_element():
    g = torch.Generator().manual_seed(5)
    x = ball_records(d=16, n=50, m=40, batch_shape=2, spread=0.2, generator=g)
    # spread 0.2: no projection; the record mean estimates μ of norm C/2 within ~0.2/√2000
    means = x.reshape(2, -1, 16).mean(dim=1)
    np.testing.assert_allclose(torch.linalg.vector_norm(means, dim=-1).numpy(), 0.5, atol=0.02)
    assert float(torch.linalg.vector_norm(means[0] - means[1])) > 0.1


def test_ball_records_deterministic_per_seed():
    kw = dict(d=5, n=3, m=2, batch_shape=4)
    a = ball_records(**kw, generator=torch.Generator().manual_seed(7))
    b = ball_records(**kw, generator=torch.Generator().manual_seed(7))
    c = ball_records(**kw, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


# --------------------------------------------------------------------------------------------
# scikit-learn datasets


def test_load_dataset_wine_is_standardised_then_normalised():
    raw = datasets.load_wine().data
    expected = normalize(StandardScaler().fit_transform(raw), norm="l2", axis=1)
    rows = load_dataset("wine")
    assert rows.shape == (178, 13)
    np.testing.assert_allclose(rows, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-13)
    assert not rows.flags.writeable


@pytest.mark.parametrize(("name", "shape"), [("digits", (1797, 64)), ("breast_cancer", (569, 30))])
def test_load_dataset_other_tables_have_unit_rows(name, shape):
    rows = load_dataset(name)
    assert rows.shape == shape
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-13)


def test_dataset_records_are_distinct_rows_scaled_by_clip():
    table = load_dataset("wine")
    g = torch.Generator().manual_seed(9)
    x = dataset_records("wine", n=10, m=17, batch_shape=(2, 3), clip=0.5, generator=g)
    assert x.shape == (2, 3, 10, 17, 13)
    flat = x.numpy().reshape(6, 170, 13) / 0.5
    picked = []
    for element in flat:
        distances = ((element[:, None, :] - table[None, :, :]) ** 2).sum(axis=-1)
        index = distances.argmin(axis=1)
        np.testing.assert_allclose(element, table[index], rtol=1e-13, atol=1e-15)
        assert np.unique(index).size == 170  # without replacement
        picked.append(tuple(index))
    assert len(set(picked)) == 6  # each batch element draws its own sample


def test_dataset_records_whole_table_is_a_permutation():
    g = torch.Generator().manual_seed(10)
    x = dataset_records("wine", n=2, m=89, generator=g).reshape(178, 13).numpy()
    table = load_dataset("wine")
    order = np.lexsort(x.T)
    np.testing.assert_allclose(x[order], table[np.lexsort(table.T)], rtol=0, atol=0)


def test_dataset_records_reject_too_many_rows_and_unknown_names():
    with pytest.raises(ValueError, match=r"n\*m=180 records requested but 'wine' has only 178"):
        dataset_records("wine", n=10, m=18, generator=torch.Generator())
    with pytest.raises(ValueError, match="mnist"):
        dataset_records("mnist", n=1, m=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="mnist"):
        load_dataset("mnist")
    assert set(DATASETS) == {"digits", "breast_cancer", "wine"}


# --------------------------------------------------------------------------------------------
# Record checks


def test_check_records_accepts_rows_on_the_sphere_and_returns_input():
    x = torch.zeros(2, 3, 4, dtype=torch.float64)
    x[..., 0] = 2.0 * (1 + 1e-8)  # within the documented relative slack 1e-6
    assert check_records(x, clip=2.0) is x


def test_check_records_rejects_a_row_above_clip_with_its_norm():
    x = torch.zeros(2, 3, 4, dtype=torch.float64)
    x[1, 2] = torch.tensor([3.0, 4.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="norm <= clip=2; the largest row norm is 5"):
        check_records(x, clip=2.0)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_check_records_rejects_non_finite(value):
    x = torch.zeros(1, 2, 3)
    x[0, 1, 2] = value
    with pytest.raises(ValueError, match="must be finite"):
        check_records(x, clip=1.0)


@pytest.mark.parametrize("shape", [(3, 4), (0, 2, 3), (2, 0, 3)])
def test_check_records_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match=r"shape \(\.\.\., n, m, d\)"):
        check_records(torch.zeros(shape), clip=1.0)


def test_check_records_rejects_integer_tensors_and_arrays():
    with pytest.raises(TypeError, match=r"floating torch\.Tensor"):
        check_records(torch.zeros(2, 2, 2, dtype=torch.int64), clip=1.0)
    with pytest.raises(TypeError, match=r"floating torch\.Tensor"):
        check_records(np.zeros((2, 2, 2)), clip=1.0)


@pytest.mark.parametrize("clip", [0.0, -1.0, float("nan")])
def test_check_records_rejects_bad_clip(clip):
    with pytest.raises(ValueError, match="clip"):
        check_records(torch.zeros(1, 1, 1), clip=clip)

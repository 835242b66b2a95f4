"""(f, κ) closed forms against exact rational arithmetic and the derivations in their docstrings."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trilemma.bounds import (
    KAPPA_TABLE,
    kappa,
    kappa_lower_bound,
    mda_kappa,
    mda_kappa_lower_bound,
    nnm_kappa,
    smea_spectral_kappa,
)

PAIRS = [(n, f) for n in range(1, 41) for f in range(0, (n + 1) // 2) if 2 * f < n]


def exact(rule, n, f):
    """The table's formulas, written independently of the module: exact rationals, and for MDA
    (√r + √q)² = r + q + 2√(rq) with q = 2f²/(n − f) in exact rationals but the root."""
    r = Fraction(f, n - 2 * f)
    q = Fraction(2 * f * f, n - f)
    return {
        "cwtm": 6 * r * (1 + r),
        "cwmed": 4 * (1 + r) ** 2,
        "gm": 4 * (1 + r) ** 2,
        "krum": 6 * (1 + r),
        "mda": float(r + q) + 2 * math.sqrt(r * q),
        "smea": 4 * r,
    }[rule]


def test_lower_bound_in_exact_arithmetic_and_vectorised():
    n = np.array([n for n, _ in PAIRS])
    f = np.array([f for _, f in PAIRS])
    values = kappa_lower_bound(n=n, f=f)
    assert values.shape == n.shape
    for (n_i, f_i), value in zip(PAIRS, values, strict=True):
        assert value == pytest.approx(float(Fraction(f_i, n_i - 2 * f_i)), rel=1e-15)
    grid = kappa_lower_bound(n=np.array([[7], [9]]), f=np.array([0, 1, 2, 3]))
    assert grid.shape == (2, 4)
    assert grid[1].tolist() == [0.0, 1 / 7, 2 / 5, 1.0]


@pytest.mark.parametrize(("n", "f"), [(3, 1), (7, 2), (10, 4), (31, 15)])
def test_two_point_instance_forces_the_lower_bound(n, f):
    """The docstring's argument in numpy: S₁ (all zeros) forces F = 0 for finite κ; on S₂ the
    ratio of F = t is ≥ f/(n − 2f) with equality at t = 0, and S₁'s ratio is +inf for t ≠ 0."""
    s2 = np.r_[np.zeros(n - 2 * f), np.ones(f)]
    mean, var = s2.mean(), s2.var()
    assert mean == pytest.approx(f / (n - f), rel=1e-14)
    assert var == pytest.approx(f * (n - 2 * f) / (n - f) ** 2, rel=1e-14)
    t = np.linspace(-2, 2, 4001)
    worst = np.where(t == 0, (t - mean) ** 2 / var, np.inf)  # max over {S₁, S₂}
    bound = float(kappa_lower_bound(n=n, f=f))
    assert worst.min() == pytest.approx(bound, rel=1e-12)
    assert np.all(worst >= bound * (1 - 1e-12))


@pytest.mark.parametrize("rule", ["cwtm", "cwmed", "gm", "krum", "mda", "smea"])
def test_table_formulas_in_exact_arithmetic(rule):
    n = np.array([n for n, _ in PAIRS])
    f = np.array([f for _, f in PAIRS])
    values = kappa(rule, n=n, f=f)
    for (n_i, f_i), value in zip(PAIRS, values, strict=True):
        assert value == pytest.approx(float(exact(rule, n_i, f_i)), rel=1e-14)


@pytest.mark.parametrize("rule", sorted(KAPPA_TABLE))
def test_every_table_kappa_sits_above_the_lower_bound(rule):
    n = np.array([n for n, _ in PAIRS])
    f = np.array([f for _, f in PAIRS])
    assert np.all(kappa(rule, n=n, f=f) >= kappa_lower_bound(n=n, f=f) * (1 - 1e-12))


def test_mean_row():
    assert kappa("mean", n=np.array([5, 5, 9]), f=np.array([0, 1, 4])).tolist() == [
        0.0,
        np.inf,
        np.inf,
    ]


def test_smea_is_four_times_the_lower_bound():
    n = np.array([n for n, _ in PAIRS])
    f = np.array([f for _, f in PAIRS])
    np.testing.assert_allclose(
        smea_spectral_kappa(n=n, f=f), 4 * kappa_lower_bound(n=n, f=f), rtol=1e-15
    )
    np.testing.assert_array_equal(kappa("smea", n=n, f=f), smea_spectral_kappa(n=n, f=f))


def test_nnm_formula_and_composition():
    # (8f/(n−f))(κ+1): n = 10, f = 2, κ = 3 → 2·4 = 8 (hand-worked)
    assert float(nnm_kappa(n=10, f=2, kappa_rule=3.0)) == 8.0
    assert float(nnm_kappa(n=10, f=2, kappa_rule=np.inf)) == np.inf
    for rule in ("cwtm", "cwmed", "krum"):
        inner = kappa(rule, n=20, f=4)
        assert kappa(f"nnm>>{rule}", n=20, f=4) == nnm_kappa(n=20, f=4, kappa_rule=inner)
    # κ_F ≥ f/(n−2f) gives (8f/(n−f))(κ_F + 1) ≥ 8f/(n−2f) = 8 × the lower bound
    n = np.array([n for n, _ in PAIRS])
    f = np.array([f for _, f in PAIRS])
    lower = kappa_lower_bound(n=n, f=f)
    assert np.all(nnm_kappa(n=n, f=f, kappa_rule=lower) >= 8 * lower * (1 - 1e-12))
    with pytest.raises(ValueError, match="kappa_rule"):
        nnm_kappa(n=10, f=2, kappa_rule=-1.0)
    with pytest.raises(ValueError, match="kappa_rule"):
        nnm_kappa(n=10, f=2, kappa_rule=np.nan)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 12),
    st.integers(1, 4),
    st.integers(0, 2**32 - 1),
    st.floats(0.01, 100.0),
)
def test_subset_mean_lemma_of_the_smea_derivation(size, d, seed, scale):
    """Step 1 of :func:`smea_spectral_kappa`: ‖x̄_T − x̄_A‖² ≤ ((|A| − |T|)/|T|) λ_max(Σ_A)."""
    rng = np.random.default_rng(seed)
    points = rng.standard_t(2, size=(size, d)) * scale * rng.uniform(0.01, 1, size=d)
    covariance = np.cov(points.T, bias=True).reshape(d, d)
    top = np.linalg.eigvalsh(covariance)[-1]
    t = int(rng.integers(1, size + 1))
    subset = rng.choice(size, t, replace=False)
    gap = np.sum((points[subset].mean(0) - points.mean(0)) ** 2)
    assert gap <= (size - t) / t * top * (1 + 1e-9) + 1e-12 * scale**2


def test_mda_kappa_between_its_lower_bound_and_the_simple_form():
    """mda_kappa ≤ 8f²/(n − f) (the simpler form of its derivation), ≥ the instance family's
    (2f + 1)²/(2(n − f)) ≥ f/(n − 2f), within a factor (1 + 1/√2)² of the family, and of order
    f²/n: at f = √n the ratio to the universal lower bound grows without bound."""
    n = np.array([n for n, _ in PAIRS])
    f = np.array([f for _, f in PAIRS])
    upper, lower = mda_kappa(n=n, f=f), mda_kappa_lower_bound(n=n, f=f)
    simple = 8.0 * f**2 / (n - f)
    assert np.all(upper <= simple * (1 + 1e-14))
    assert upper[0] == 0.0  # (n, f) = (1, 0): MDA is the mean
    np.testing.assert_array_equal(kappa("mda", n=n, f=f), upper)
    assert np.all(lower <= upper)
    assert np.all(lower >= kappa_lower_bound(n=n, f=f))
    with_f = f >= 1
    assert np.all(upper[with_f] / lower[with_f] <= (1 + 1 / math.sqrt(2)) ** 2)
    for (n_i, f_i), value in zip(PAIRS, lower, strict=True):
        expected = Fraction((2 * f_i + 1) ** 2, 2 * (n_i - f_i)) if f_i else Fraction(0)
        assert value == pytest.approx(float(expected), rel=1e-15)
    big = np.array([10**4, 10**6])
    root = np.sqrt(big).astype(int)
    growth = mda_kappa_lower_bound(n=big, f=root) / kappa_lower_bound(n=big, f=root)
    assert growth[1] > 9 * growth[0]  # ≈ 2f: 200 then 2000


@settings(max_examples=150, deadline=None)
@given(st.integers(3, 8), st.integers(1, 3), st.integers(0, 2**32 - 1), st.sampled_from([1, 2]))
def test_mda_derivation_steps_on_random_inputs(n, d, seed, spread):
    """The steps of mda_kappa in numpy, with MDA by enumeration: for every S, step 1
    ‖x̄_{S*} − x̄_T‖ ≤ (|S*∖T|/|S*|) diam(S*), step 2 diam(S)² ≤ 2|S| Var_S, step 3
    ‖x̄_T − x̄_S‖² ≤ ((|S| − |T|)/|T|) Var_S, and the conclusion."""
    rng = np.random.default_rng(seed)
    f = int(rng.integers(0, (n - 1) // 2 + 1))
    x = rng.standard_t(spread, size=(n, d))
    subsets = [list(c) for c in itertools.combinations(range(n), n - f)]

    def diameter(rows):
        return max(np.linalg.norm(x[i] - x[j]) for i in rows for j in rows)

    best = min(subsets, key=diameter)
    output = x[best].mean(0)
    claimed = float(mda_kappa(n=n, f=f))
    for subset in subsets:
        a, common = n - f, sorted(set(subset) & set(best))
        t = len(common)
        variance = np.mean(np.sum((x[subset] - x[subset].mean(0)) ** 2, axis=1))
        to_t = np.linalg.norm(x[best].mean(0) - x[common].mean(0))
        assert to_t <= (a - t) / a * diameter(best) * (1 + 1e-12) + 1e-12
        assert diameter(subset) ** 2 <= 2 * a * variance * (1 + 1e-12)
        gap = np.sum((x[common].mean(0) - x[subset].mean(0)) ** 2)
        assert gap <= (a - t) / t * variance * (1 + 1e-12) + 1e-24
        error = np.sum((output - x[subset].mean(0)) ** 2)
        assert error <= claimed * variance * (1 + 1e-9) + 1e-24


def test_mda_no_longer_serves_the_recalled_row():
    recalled = lambda n, f: (4 * f / (n - f)) * (1 + f / (n - 2 * f)) ** 2  # noqa: E731
    assert float(kappa("mda", n=18, f=4)) != pytest.approx(recalled(18, 4))
    # the refuting instance's limit (2f + 1)²/(2(n − f)) beats the recalled row, not ours
    assert float(mda_kappa_lower_bound(n=18, f=4)) > recalled(18, 4)
    assert float(mda_kappa_lower_bound(n=18, f=4)) < float(kappa("mda", n=18, f=4))


def test_provenance_is_stated_for_every_row():
    recalled = "[R] recalled from the paper's Table 1, constant unverified"
    for rule in ("cwtm", "cwmed", "gm", "krum"):
        assert recalled in KAPPA_TABLE[rule].provenance
        assert "2302.01772" in KAPPA_TABLE[rule].provenance
    assert "[D] see mda_kappa" in KAPPA_TABLE["mda"].provenance
    assert "refuted" in KAPPA_TABLE["mda"].provenance
    assert recalled not in KAPPA_TABLE["mda"].provenance
    assert KAPPA_TABLE["smea"].provenance.startswith("4f/(n−2f); [D]")
    assert "[D]" in KAPPA_TABLE["mean"].provenance
    formula, _ = KAPPA_TABLE["krum"]  # a plain (formula, provenance) pair
    assert float(formula(np.float64(10), np.float64(2))) == 8.0
    with pytest.raises(TypeError):
        KAPPA_TABLE["new"] = KAPPA_TABLE["krum"]  # read-only


@pytest.mark.parametrize(
    ("n", "f", "message"),
    [
        (9, 5, r"f=5 must satisfy 2f < n=9 \(2f=10\)"),
        (4, 2, r"f=2 must satisfy 2f < n=4"),
        (np.array([10, 6]), np.array([2, 3]), r"f=3 must satisfy 2f < n=6"),
        (5, -1, r"f=-1 must be >= 0"),
        (5.5, 1, "n must hold integers"),
        (5, np.nan, "f must hold integers"),
    ],
)
@pytest.mark.parametrize(
    "function", [kappa_lower_bound, smea_spectral_kappa, mda_kappa, mda_kappa_lower_bound]
)
def test_invalid_counts_are_named(function, n, f, message):
    with pytest.raises(ValueError, match=message):
        function(n=n, f=f)


def test_invalid_rule_and_types():
    with pytest.raises(ValueError, match="rule='bulyan' is not valid"):
        kappa("bulyan", n=10, f=2)
    with pytest.raises(ValueError, match=r"f=3 must satisfy 2f < n=5"):
        kappa("nnm>>cwtm", n=5, f=3)
    with pytest.raises(TypeError, match="rule"):
        kappa(3, n=10, f=2)
    with pytest.raises(TypeError, match="n must be an integer"):
        kappa_lower_bound(n=True, f=0)
    with pytest.raises(TypeError, match="f must be an integer"):
        kappa_lower_bound(n=5, f="1")

"""Empirical κ̂ of the rules against the (f, κ) bounds: the lower bound is attained and never
beaten, and an adversarial hypothesis search tries to break every constant of the κ table.

Inputs of the searches lie on the grid k/1024 of [−10, 10] (collinear layouts on k/512): all
squared distances the rules compute through Gram matrices are then exact in float64, so a failure
is a property of the rule, not of rounding. The only slack is the float64 error of a mean of at
most 9 rows (``_floor``) and a relative 1e-9.

The slow variants (``pytest -m slow -s``) run 2000 examples a rule and print the worst ratio found.
"""

import math
from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from trilemma.aggregators import available, get
from trilemma.aggregators.robustness import empirical_kappa, empirical_spectral_kappa
from trilemma.bounds import kappa, kappa_lower_bound, smea_spectral_kappa

GRID = 1024
EPS = float(np.finfo(np.float64).eps)
FAST, SLOW = 60, 2000


def tensor(rows):
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------- empirical_kappa itself


def test_hand_worked_ratio_and_spectral_ratio():
    # H = {(0,0), (2,0), (0,2), (2,2)}: mean (1,1), trace variance 2, λ_max(Σ_H) = 1
    x = tensor([[0, 0], [2, 0], [0, 2], [2, 2], [7, 7]])
    honest = torch.tensor([0, 1, 2, 3])
    constant = lambda v: torch.tensor([4.0, 1.0]).expand(*v.shape[:-2], 2)  # noqa: E731
    assert float(empirical_kappa(constant, x, honest)) == pytest.approx(9 / 2, rel=1e-15)
    assert float(empirical_spectral_kappa(constant, x, honest)) == pytest.approx(9, rel=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_spectral_denominator_is_the_covariance_top_eigenvalue(seed):
    rng = np.random.default_rng(seed)
    n, f, d = 9, 3, 6
    x = rng.normal(size=(n, d)) * rng.uniform(0.1, 5, size=d)
    honest = np.sort(rng.choice(n, n - f, replace=False))
    rule = get("cwmed", f=f)
    error = np.sum((rule(torch.from_numpy(x)).numpy() - x[honest].mean(0)) ** 2)
    covariance = np.cov(x[honest].T, bias=True)  # d × d, normalised by |H|
    spectral = float(empirical_spectral_kappa(rule, torch.from_numpy(x), torch.from_numpy(honest)))
    plain = float(empirical_kappa(rule, torch.from_numpy(x), torch.from_numpy(honest)))
    assert spectral == pytest.approx(error / np.linalg.eigvalsh(covariance)[-1], rel=1e-10)
    assert plain == pytest.approx(error / np.trace(covariance), rel=1e-10)
    assert spectral >= plain


def test_degenerate_honest_sets():
    x = tensor([[1, 1], [1, 1], [1, 1], [5, 5]])
    honest = torch.tensor([0, 1, 2])
    assert float(empirical_kappa(get("cwmed", f=1), x, honest)) == 0.0  # 0/0
    assert float(empirical_spectral_kappa(get("cwmed", f=1), x, honest)) == 0.0
    assert float(empirical_kappa(get("mean", f=1), x, honest)) == math.inf  # e/0, e > 0
    assert float(empirical_spectral_kappa(get("mean", f=1), x, honest)) == math.inf


def test_mask_index_batch_and_garbage():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(3, 2, 7, 4)))
    x[..., 6, :] = torch.nan  # a Byzantine row of NaN must not reach the honest statistics
    x[..., 5, 0] = torch.inf
    rule = get("cwtm", f=2)
    index = torch.tensor([0, 1, 2, 3, 4])
    mask = torch.tensor([True] * 5 + [False] * 2)
    by_index, by_mask = empirical_kappa(rule, x, index), empirical_kappa(rule, x, mask)
    assert by_index.shape == (3, 2)
    assert torch.equal(by_index, by_mask)
    assert bool(torch.isfinite(by_index).all())
    one = empirical_kappa(rule, x[1, 0], index)
    assert float(one) == pytest.approx(float(by_index[1, 0]), rel=1e-14)
    # a batch of different honest sets
    masks = torch.stack([mask, mask.roll(1)]).expand(3, 2, 7)
    assert empirical_kappa(get("cwmed", f=2), x.nan_to_num(0, 0, 0), masks).shape == (3, 2)
    assert math.isinf(float(empirical_kappa(get("mean", f=2), x[0, 0], index)))  # NaN output


@pytest.mark.parametrize(
    ("honest", "message"),
    [
        (torch.tensor([0, 0, 1]), "distinct"),
        (torch.tensor([0, 5]), r"\[0, 4\]"),
        (torch.tensor([True, False]), "shape"),
        (torch.zeros(5, dtype=torch.bool), "at least one"),
    ],
)
def test_bad_honest_sets_are_named(honest, message):
    with pytest.raises(ValueError, match=message):
        empirical_kappa(get("cwmed", f=1), torch.zeros(5, 2), honest)


def test_float_honest_set_is_a_type_error():
    with pytest.raises(TypeError, match="honest"):
        empirical_kappa(get("cwmed", f=1), torch.zeros(5, 2), torch.tensor([0.0, 1.0]))


# ---------------------------------------------------------------- the lower bound f/(n − 2f)


def two_point(n, f, *, shift=None, direction=None, scale=1.0, order=None):
    """n − f copies of ``shift`` and f of ``shift + scale·direction``; S₁ = the n − f first,
    S₂ = n − 2f of them and the f others. Returns x and the two honest masks."""
    d = 1 if direction is None else len(direction)
    f64 = torch.float64
    shift = torch.zeros(d, dtype=f64) if shift is None else torch.tensor(shift, dtype=f64)
    direction = (
        torch.ones(d, dtype=f64) if direction is None else torch.tensor(direction, dtype=f64)
    )
    rows = torch.cat([shift.expand(n - f, d), (shift + scale * direction).expand(f, d)])
    s1 = torch.arange(n) < n - f
    s2 = torch.arange(n) >= f
    if order is not None:
        rows, s1, s2 = rows[order], s1[order], s2[order]
    return rows, s1, s2


EXACT_ON_TWO_POINT = ["cwtm", "cwmed", "krum", "mda", "smea"]


@pytest.mark.parametrize(
    ("name", "n", "f"),
    [
        (name, n, f)
        for name in [*EXACT_ON_TWO_POINT, "gm"]
        for n, f in [(3, 1), (5, 2), (7, 1), (8, 3), (9, 4)]
        if n >= get(name, f=f).min_workers()
    ],
)
def test_lower_bound_is_attained_by_the_two_point_instance(name, n, f):
    rule = get(name, f=f)
    x, s1, s2 = two_point(n, f)
    worst = max(float(empirical_kappa(rule, x, s1)), float(empirical_kappa(rule, x, s2)))
    bound = float(kappa_lower_bound(n=n, f=f))
    assert worst >= bound * (1 - 1e-9)
    if name in EXACT_ON_TWO_POINT:  # these output 0 exactly: S₂'s ratio is the bound itself
        assert float(empirical_kappa(rule, x, s1)) == 0.0
        assert worst == pytest.approx(bound, rel=1e-12)


def _rule_for(name, f):
    if name == "monna":
        return get(name, f=f, pivot=0)
    return get(name, f=f)


@settings(max_examples=FAST, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(available("rules"))),
    n=st.integers(3, 11),
    data=st.data(),
)
def test_lower_bound_is_never_beaten(name, n, data):
    """Whatever the rule, the worse of S₁ and S₂ has κ̂ ≥ f/(n − 2f): shifted, scaled, turned
    in d ≤ 3 dimensions and shuffled."""
    f = data.draw(st.integers(1, (n - 1) // 2), label="f")
    rule = _rule_for(name, f)
    if n < rule.min_workers():
        return
    d = data.draw(st.integers(1, 3), label="d")
    coordinate = st.integers(-10 * GRID, 10 * GRID).map(lambda k: k / GRID)
    shift = data.draw(st.lists(coordinate, min_size=d, max_size=d), label="shift")
    direction = data.draw(
        st.lists(coordinate, min_size=d, max_size=d).filter(lambda v: any(v)), label="dir"
    )
    order = torch.tensor(data.draw(st.permutations(range(n)), label="order"))
    x, s1, s2 = two_point(n, f, shift=shift, direction=direction, order=order)
    worst = max(float(empirical_kappa(rule, x, s1)), float(empirical_kappa(rule, x, s2)))
    assert worst >= float(kappa_lower_bound(n=n, f=f)) * (1 - 1e-9)


# ---------------------------------------------------------------- the κ table, searched


@st.composite
def points(draw, count, d, layout, anchor=None):
    """``count`` grid points in [−10, 10]^d, free, clustered or on a line through ``anchor``."""
    coordinate = st.integers(-10 * GRID, 10 * GRID).map(lambda k: k / GRID)
    if count == 0:
        return np.zeros((0, d))
    if layout == "free":
        return np.array(
            draw(
                st.lists(
                    st.lists(coordinate, min_size=d, max_size=d), min_size=count, max_size=count
                )
            )
        )
    if layout == "clustered":
        centre = np.array(draw(st.lists(coordinate, min_size=d, max_size=d)))
        spread = draw(st.sampled_from([0.0, 1 / GRID, 1 / 64, 1 / 8, 1.0]))
        steps = np.array(
            draw(
                st.lists(
                    st.lists(st.integers(-4, 4), min_size=d, max_size=d),
                    min_size=count,
                    max_size=count,
                )
            )
        )
        return np.clip(centre + spread * steps, -10.0, 10.0)
    # collinear: anchor + t·u, t on k/8 in [−5, 5], u on m/64 in [−1, 1] (k/512 grid, exact)
    start, direction = anchor
    t = np.array(draw(st.lists(st.integers(-40, 40), min_size=count, max_size=count))) / 8
    return start + t[:, None] * direction


@st.composite
def instances(draw, n_min, n_max, min_gap=1):
    """(x, honest mask, n, f): n in [n_min, n_max], 2f + min_gap ≤ n, d ∈ {1, 2, 3}; honest and
    Byzantine rows from free, clustered or collinear layouts; honest rows at random positions."""
    n = draw(st.integers(n_min, n_max), label="n")
    f = draw(st.integers(0, (n - min_gap) // 2), label="f")
    d = draw(st.sampled_from([1, 2, 3]), label="d")
    layout = draw(st.sampled_from(["free", "clustered", "collinear"]), label="layout")
    line = None
    if layout == "collinear":
        half = st.integers(-5 * 64, 5 * 64).map(lambda k: k / 64)
        start = np.array(draw(st.lists(half, min_size=d, max_size=d)))
        unit = st.integers(-64, 64).map(lambda k: k / 64)
        line = (start, np.array(draw(st.lists(unit, min_size=d, max_size=d))))
    honest_rows = draw(points(n - f, d, layout, line), label="honest")
    byzantine = draw(
        st.sampled_from(
            ["free", "clustered", "copies", "same"] if layout != "collinear" else ["collinear"]
        ),
        label="byzantine",
    )
    if byzantine == "copies":  # mimic: Byzantine rows copy honest ones
        picks = draw(st.lists(st.integers(0, n - f - 1), min_size=f, max_size=f), label="picks")
        byzantine_rows = honest_rows[picks].reshape(f, d)
    elif byzantine == "same":  # one point sent f times
        byzantine_rows = np.repeat(draw(points(1, d, "free"), label="byz"), f, axis=0)
    else:
        byzantine_rows = draw(points(f, d, byzantine, line), label="byz")
    order = np.array(draw(st.permutations(range(n)), label="order"))
    rows = np.concatenate([honest_rows, byzantine_rows])
    x = np.empty_like(rows)  # stacked row j goes to position order[j]
    x[order] = rows
    honest = np.zeros(n, dtype=bool)
    honest[order[: n - f]] = True
    return torch.from_numpy(x), torch.from_numpy(honest), n, f


def _floor(x):
    """Float64 error of a mean of ≤ n rows, squared and summed over d: the only absolute slack."""
    n, d = x.shape[-2:]
    return d * (4 * n * EPS * (1.0 + float(x.abs().max()))) ** 2


def _gm(f):
    # The table is about the exact geometric median. Smoothed Weiszfeld stops about ν·f/(n − f)
    # away from it when it sits on a data point, so the default ν = 1e-6 gives κ̂ = inf on a
    # degenerate honest set (all honest rows equal); ν = 1e-16 puts that below rounding.
    return get("gm", f=f, nu=1e-16, tol=1e-13, max_iter=20_000)


# label: (rule factory f → rule, key of bounds.kappa, n_min, n_max, min_gap); the searched
# (n, f) satisfy 2f + min_gap ≤ n. Krum with its default n − f − 2 neighbours (Blanchard et al.)
# is searched on its domain n ≥ 2f + 3; n = 2f + 1 is the counterexample at the end.
SEARCHES = {
    "cwtm": (partial(get, "cwtm"), "cwtm", 3, 9, 1),
    "cwmed": (partial(get, "cwmed"), "cwmed", 3, 9, 1),
    "gm": (_gm, "gm", 3, 9, 1),
    "krum": (partial(get, "krum"), "krum", 5, 9, 3),
    "krum-n-f-1": (partial(get, "krum", neighbours="n-f-1"), "krum", 3, 9, 1),
    "mda": (partial(get, "mda"), "mda", 3, 8, 1),
    "smea": (partial(get, "smea"), "smea", 3, 8, 1),
    "nnm>>cwtm": (partial(get, "nnm>>cwtm"), "nnm>>cwtm", 3, 9, 1),
    "nnm>>cwmed": (partial(get, "nnm>>cwmed"), "nnm>>cwmed", 3, 9, 1),
}


def _relative(ratio, claimed, error, x):
    """κ̂/κ, with errors at rounding level counted as 0 (the rule is exact there)."""
    if error <= _floor(x):
        return 0.0
    return ratio / claimed if claimed > 0 else math.inf


def search(label, max_examples):
    """Run the adversarial search for one rule; return the worst case seen (ratio / κ first)."""
    make, key, n_min, n_max, gap = SEARCHES[label]
    worst = {"ratio/kappa": -1.0}

    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(instances(n_min, n_max, min_gap=gap))
    def check(instance):
        x, honest, n, f = instance
        rule = make(f=f)
        claimed = float(kappa(key, n=n, f=f))
        output = rule(x)  # computed once: the rules dominate the cost of an example
        ratio = float(empirical_kappa(lambda _: output, x, honest))
        error = float(((output - x[honest].mean(-2)) ** 2).sum())
        relative = _relative(ratio, claimed, error, x)
        if math.isfinite(relative):
            target(relative, label="ratio/kappa")
        if relative > worst["ratio/kappa"]:
            worst.update(
                {
                    "ratio/kappa": relative,
                    "n": n,
                    "f": f,
                    "kappa": claimed,
                    "ratio": ratio,
                    "x": x.tolist(),
                    "honest": honest.tolist(),
                }
            )
        assert ratio <= claimed * (1 + 1e-9) or error <= _floor(x), (n, f, ratio, claimed)
        if label == "smea":
            spectral = float(empirical_spectral_kappa(lambda _: output, x, honest))
            sp_bound = float(smea_spectral_kappa(n=n, f=f))
            assert spectral <= sp_bound * (1 + 1e-9) or error <= _floor(x), (n, f, spectral)

    check()
    return worst


def _report(label, worst):
    print(
        f"\n{label:>12}: worst ratio/κ = {worst['ratio/kappa']:.4f} at n={worst.get('n')}, "
        f"f={worst.get('f')}, κ = {worst.get('kappa', float('nan')):.4f}, "
        f"κ̂ = {worst.get('ratio', float('nan')):.4f}"
    )


@pytest.mark.parametrize("label", list(SEARCHES))
def test_table_kappa_is_not_beaten(label):
    _report(label, search(label, FAST))


@pytest.mark.slow
@pytest.mark.parametrize("label", list(SEARCHES))
def test_table_kappa_is_not_beaten_long_search(label):
    _report(label, search(label, SLOW))


def test_mean_kappa_is_zero_at_f0_and_unbounded_beyond():
    x = tensor([[0, 1], [2, 3], [5, -1], [1, 1]])
    assert float(empirical_kappa(get("mean"), x, torch.arange(4))) <= _floor(x)
    assert float(kappa("mean", n=4, f=0)) == 0.0
    # f = 1: one Byzantine row at distance t moves κ̂ like t²; κ = inf in the table
    ratios = []
    for t in (1e2, 1e4, 1e6):
        y = torch.cat([x[:3], tensor([[t, t]])])
        ratios.append(float(empirical_kappa(get("mean", f=1), y, torch.arange(3))))
    assert ratios[1] / ratios[0] > 5e3 and ratios[2] / ratios[1] > 5e3
    assert float(kappa("mean", n=4, f=1)) == math.inf


# ---------------------------------------------------------------- counterexamples found


def mda_diameter_instance(n, f, y=1 - 1 / GRID):
    """Honest: two points at (±½, 0) and n − f − 2 at 0 (diameter 1, variance 1/(2(n − f)));
    Byzantine: f copies of (0, y), y < 1, placed first. The n − f vectors of smallest diameter
    (y) are the f Byzantine ones and n − 2f zeros, whose mean is f·y/(n − f) away from x̄_H:
    κ̂ = 2f²y²/(n − f), of order f²/n where the table's κ is of order f/n."""
    byzantine = [[0.0, y]] * f
    honest = [[0.5, 0.0], [-0.5, 0.0]] + [[0.0, 0.0]] * (n - f - 2)
    return tensor(byzantine + honest), torch.arange(f, n)


def mda_segment_instance(n, b=1 - 1 / GRID):
    """f = 1, scalars. Honest: −½, ½ and n − 3 zeros (diameter 1, variance 1/(2(n − 1)));
    Byzantine: b < 1, placed first. Dropping −½ for b gives diameter b < 1, so MDA outputs
    (½ + b)/(n − 1): κ̂ = 2(½ + b)²/(n − 1) → 4.5/(n − 1), above the table's 4(n − 1)/(n − 2)²
    from n = 19 on."""
    return tensor([[b], [-0.5], [0.5]] + [[0.0]] * (n - 3)), torch.arange(1, n)


MDA_CASES = [("diameter", 18, 4), ("diameter", 20, 3), ("segment", 19, 1)]


def _mda_case(kind, n, f):
    if kind == "segment":
        x, honest = mda_segment_instance(n)
        return x, honest, 2 * (0.5 + 1 - 1 / GRID) ** 2 / (n - 1)
    x, honest = mda_diameter_instance(n, f)
    return x, honest, 2 * f * f * (1 - 1 / GRID) ** 2 / (n - f)


@pytest.mark.parametrize(("kind", "n", "f"), MDA_CASES)
def test_mda_instances_reach_their_closed_form(kind, n, f):
    x, honest, expected = _mda_case(kind, n, f)
    assert float(empirical_kappa(get("mda", f=f), x, honest)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="counterexamples to the recalled MDA κ (4f/(n−f))(1+f/(n−2f))², y = 1−2⁻¹⁰: "
    "n=18, f=4, x = 4 Byzantine (0, y) first, then honest (½, 0), (−½, 0) and 12 × (0, 0): "
    "κ̂ = 2f²y²/(n−f) = 2.2813 > κ = 2.2400; (n, f) = (20, 3): 1.0567 > 1.0408; "
    "n=19, f=1, x = Byzantine y, then honest −½, ½ and 16 zeros: κ̂ = 0.24967 > κ = 0.24913",
)
@pytest.mark.parametrize(("kind", "n", "f"), MDA_CASES)
def test_mda_table_kappa_on_the_counterexamples(kind, n, f):
    x, honest, _ = _mda_case(kind, n, f)
    ratio = float(empirical_kappa(get("mda", f=f), x, honest))
    assert ratio <= float(kappa("mda", n=n, f=f)) * (1 + 1e-9)


KRUM_INSTANCE = [[100, 100], [100, 100], [0, 0], [1, 0], [0, 2]]  # n = 5, f = 2, Byzantine first


def test_krum_refuses_n_below_2f_plus_3_because_of_this_counterexample():
    """Krum with n − f − 2 neighbours at n = 2f + 1 is not (f, κ)-robust for any κ: on
    KRUM_INSTANCE (n = 5, f = 2) the two equal Byzantine rows score 0 and win, κ̂ = 17820.5 > κ = 18.
    Blanchard et al.'s condition n ≥ 2f + 3 is therefore enforced; the n − f − 1 convention (the
    pair must also reach an honest row) stays robust on the same instance."""
    with pytest.raises(ValueError, match="krum with f=2 needs n ≥ 7 workers, got n=5"):
        get("krum", f=2)(tensor(KRUM_INSTANCE))
    byzfl_convention = get("krum", f=2, neighbours="n-f-1")
    assert torch.equal(byzfl_convention(tensor(KRUM_INSTANCE)), tensor([0, 0]))
    ratio = float(empirical_kappa(byzfl_convention, tensor(KRUM_INSTANCE), torch.arange(2, 5)))
    assert ratio <= float(kappa("krum", n=5, f=2))

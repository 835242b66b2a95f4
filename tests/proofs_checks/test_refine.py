"""The continuous stage of the searches: it reaches maxima a grid cannot hold, its end point is
re-evaluated exactly, and the κ searches report grid inputs whose ratio recomputes."""

import math

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from trilemma.aggregators import empirical_kappa, get
from trilemma.bounds import kappa
from trilemma.proofs_checks import maximise
from trilemma.proofs_checks.refine import Refinement, refine
from trilemma.proofs_checks.report import refinement_plan
from trilemma.proofs_checks.robustness import check_kappa
from trilemma.proofs_checks.strategies import GRID, RobustnessInput


def peak(v):
    """A ratio peaking at v = (1/3, −1/7), off every dyadic grid: max 1."""
    return 1.0 - (v[0] - 1 / 3) ** 2 - (v[1] + 1 / 7) ** 2


def test_refinement_reaches_an_off_grid_maximum_and_reports_the_exact_point():
    grid = st.tuples(st.integers(-8, 8), st.integers(-8, 8)).map(lambda k: (k[0] / 8, k[1] / 8))
    seen = []

    def objective(point):
        seen.append(point)
        return peak(point), {"point": list(point)}

    snap = lambda p: tuple(round(c * 64) / 64 for c in p)  # noqa: E731  the "exact" form
    refinement = Refinement(
        vector=lambda p: np.array(p),
        build=lambda p, v: tuple(v),
        exact=snap,
        bounds=lambda p: (np.full(2, -1.0), np.full(2, 1.0)),
    )
    ratio, case, count = maximise(grid, objective, examples=25, seed=0, refinement=refinement)
    best_on_grid = max(peak(p) for p in seen[:25])
    assert best_on_grid < 1 - 1e-4  # the grid of 1/8 cannot reach the peak
    assert ratio > 1 - 2 * (1 / 128) ** 2  # the snapped end point: within half a 1/64 step
    assert tuple(case["point"]) == snap(case["point"])  # what is reported is the exact point
    assert ratio == peak(case["point"])
    assert count == len(seen) and count > 25


def test_refine_without_bounds_is_nelder_mead_and_counts_its_evaluations():
    calls = []

    def objective(point):
        calls.append(point)
        return peak(point), {}

    refinement = Refinement(vector=np.array, build=lambda p, v: tuple(v))
    ratio, _, spent = refine(objective, [(0.0, 0.0)], refinement, evaluations=400)
    assert ratio == pytest.approx(1.0, abs=1e-8)
    assert spent == len(calls) <= 400 + 2
    assert refine(objective, [], refinement, evaluations=10) == (-math.inf, None, 0)


def test_refinement_plan_scales_with_the_budget():
    assert refinement_plan(25) == (1, 5000)
    assert refinement_plan(200) == (8, 40_000)
    assert refinement_plan(2000) == (80, 400_000)
    with pytest.raises(ValueError, match="examples=0"):
        refinement_plan(0)


def test_on_grid_keeps_the_ratio_and_lands_on_the_grid():
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.normal(size=(7, 2)) * 3 + 40)
    case = RobustnessInput(x, torch.arange(7) < 5, 7, 2)
    snapped = case.on_grid().x
    assert float(snapped.abs().max()) <= 10
    assert torch.equal(snapped, torch.round(snapped * GRID) / GRID)
    rule = get("cwtm", f=2)
    before = float(empirical_kappa(rule, x, case.honest))
    after = float(empirical_kappa(rule, snapped, case.honest))
    assert after == pytest.approx(before, rel=1e-3)  # translation, one scale, rounding only


def test_pinned_search_stays_at_its_n_f_and_reports_a_recomputable_grid_input():
    # planted: Krum's κ claimed at a tenth of the table's, at n = 7, f = 2 only
    result = check_kappa(
        "krum",
        examples=25,
        seed=0,
        n=7,
        f=2,
        claimed=lambda n, f: 0.1 * float(kappa("krum", n=n, f=f)),
    )
    assert not result.passed
    case = result.counterexample
    assert (case["n"], case["f"]) == (7, 2)
    x, honest = torch.tensor(case["x"], dtype=torch.float64), torch.tensor(case["honest"])
    assert torch.equal(x, torch.round(x * GRID) / GRID)
    recomputed = float(empirical_kappa(get("krum", f=2), x, honest))
    assert recomputed == case["kappa_hat"] > case["kappa"] == pytest.approx(1.0)
    assert result.worst_ratio == pytest.approx(recomputed / case["kappa"], rel=1e-12)


@pytest.mark.parametrize(("n", "f"), [(7, None), (7, 4), (4, 2)])
def test_pins_are_validated(n, f):
    with pytest.raises(ValueError, match="f="):
        check_kappa("cwtm", examples=1, n=n, f=f)


def test_worker_counts_can_be_pinned_and_reject_empty_ranges():
    from hypothesis import given, settings

    from trilemma.proofs_checks.strategies import robustness_inputs, worker_counts

    @settings(max_examples=15, database=None, deadline=None)
    @given(
        worker_counts(min_n=7, max_n=7, min_f=2, max_f=2),
        robustness_inputs(min_n=9, max_n=9, min_f=3, max_f=3),
    )
    def pinned(pair, case):
        assert pair == (7, 2)
        assert (case.n, case.f, int(case.honest.sum())) == (9, 3, 6)

    pinned()
    with pytest.raises(ValueError, match="max_f=4"):
        worker_counts(max_n=7, max_f=4)
    with pytest.raises(ValueError, match="min_f=4"):
        worker_counts(min_n=3, max_n=7, min_f=4)

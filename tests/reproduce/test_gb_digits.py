"""gb-breakdown and gb-predicted at tiny size: rows agree with independent recomputations, and
every declared check reports disagreement when a bug is planted in what it checks."""

import math

import numpy as np
import pytest
import torch

import trilemma.reproduce.gb_breakdown as breakdown_module
import trilemma.reproduce.gb_predicted as predicted_module
from trilemma import dgd
from trilemma.reproduce import FIGURES, Settings, _gb_digits

TINY = Settings(size="tiny", seed=3)
BREAKDOWN_CHECKS = {
    "trains": "f = 0 trains",
    "final": "the final-loss column",
    "holds": "each estimated (G, B) pair holds",
}
PREDICTED_CHECKS = {
    "floor": "(G, B) floor ≤ (G, 0) floor",
    "holds": "the runs' (G, B) pair",
    "bound": "measured (1/T')",
}


def _check(data, prefix):
    (statement,) = [s for s in data.checks if s.startswith(prefix)]
    return data.checks[statement]


@pytest.fixture(scope="module")
def breakdown():
    return FIGURES["gb-breakdown"].compute(TINY)


@pytest.fixture(scope="module")
def predicted():
    return FIGURES["gb-predicted"].compute(TINY)


def _dissimilarity_by_hand(problem, thetas):
    """H(θ) and N(θ) from the per-worker gradients, one θ at a time."""
    spread, norm = [], []
    for theta in thetas:
        grads = problem.gradients(theta)  # (h, P)
        mean = grads.mean(dim=0)
        spread.append(float(((grads - mean) ** 2).sum(dim=1).mean()))
        norm.append(float((mean**2).sum()))
    return np.array(spread), np.array(norm)


def test_breakdown_rows_follow_the_runs(breakdown):
    rows, parameters = breakdown.rows, breakdown.parameters
    assert {r["rule"] for r in rows} == {"nnm>>cwtm", "nnm>>cwmed", "nnm>>krum", "nnm>>gm"}
    assert sorted({r["f"] for r in rows}) == [0, 1, 3]
    initial = parameters["initial_loss"]
    assert initial == pytest.approx(math.log(10))  # θ = 0: uniform over the 10 digits
    problem = dgd.extreme_digits(3)
    assert parameters["lr"] == pytest.approx(1 / problem.smoothness(), rel=1e-12)
    # one configuration rerun here: its last loss is the CSV's final loss, not its best one
    row = next(r for r in rows if r["rule"] == "nnm>>cwtm" and r["f"] == 3)
    run = dgd.robust_dgd(
        problem,
        rule="nnm>>cwtm",
        f=3,
        attack="sign_flipping",
        steps=row["steps"],
        lr=parameters["lr"],
    )
    assert row["final_loss"] == pytest.approx(float(problem.objective(run.theta)), rel=1e-9)
    assert row["best_loss"] == pytest.approx(float(run.objective.min()), rel=1e-9)
    assert row["best_loss"] < row["final_loss"]  # this run is worse at its end than at its best
    for r in rows:
        assert r["best_loss"] <= min(r["final_loss"], r["tail_loss"]) + 1e-12
        assert r["diverged"] == (r["final_loss"] > initial)
        assert r["failed_tail"] == (r["tail_loss"] >= 0.9 * initial)
        assert r["failed_best"] == (r["best_loss"] >= 0.9 * initial)
        failing = [
            x["fraction"]
            for x in rows
            if x["rule"] == r["rule"] and x["tail_loss"] >= 0.9 * initial
        ]
        expected = min(failing) if failing else math.nan
        assert r["collapse_tail"] == pytest.approx(expected, nan_ok=True)
        assert 0.0 <= r["final_accuracy"] <= 1.0
    assert all(breakdown.checks.values())


def test_authors_breakdown_line_recomputed(breakdown):
    """1/(2 + B²) of the pair the official criterion picks at f = 1 on the official segment,
    with H and N computed here worker by worker."""
    rows, parameters = breakdown.rows, breakdown.parameters
    problem = dgd.extreme_digits(3)
    reference = dgd.robust_dgd(
        problem, rule="mean", steps=parameters["reference_steps"], lr=parameters["lr"]
    )
    s = torch.linspace(0, 1, 101, dtype=torch.float64)[:, None]
    segment = (1 - s) * reference.theta + s * 1e4
    spread, norm = _dissimilarity_by_hand(problem, segment)
    grid = np.array(parameters["frontier_B2"])
    g2 = np.maximum(spread[None, :] - grid[:, None] * norm[None, :], 0).max(axis=1)
    np.testing.assert_allclose(parameters["frontier_G2"]["authors"], g2, rtol=1e-9, atol=1e-12)
    kappa = 1 / 9  # f = 1, n = 11
    admissible = kappa * grid < 1
    floors = np.where(admissible, kappa * g2 / np.where(admissible, 1 - kappa * grid, 1), np.inf)
    b2 = grid[int(np.argmin(floors))]
    assert rows[0]["breakdown_authors_B2"] == pytest.approx(b2, rel=1e-12)
    assert rows[0]["breakdown_authors"] == pytest.approx(1 / (2 + b2), rel=1e-12)
    # the position of each line relative to the observed collapse is reported, either way
    for r in rows:
        for name in ("authors", "runs"):
            difference = r[f"breakdown_{name}_minus_collapse_tail"]
            expected = r[f"breakdown_{name}"] - r["collapse_tail"]
            assert difference == pytest.approx(expected, nan_ok=True)


def test_breakdown_check_fails_when_the_step_is_100_times_too_small(monkeypatch):
    real = dgd.SoftmaxRegression.smoothness
    monkeypatch.setattr(dgd.SoftmaxRegression, "smoothness", lambda self: 100 * real(self))
    data = FIGURES["gb-breakdown"].compute(TINY)
    assert _check(data, BREAKDOWN_CHECKS["trains"]) is False


def test_breakdown_check_fails_when_divergence_is_hidden(monkeypatch):
    real = breakdown_module._summary

    def best_as_final(run):
        summary = real(run)
        return {**summary, "final_loss": summary["best_loss"]}

    monkeypatch.setattr(breakdown_module, "_summary", best_as_final)
    data = FIGURES["gb-breakdown"].compute(TINY)
    assert _check(data, BREAKDOWN_CHECKS["final"]) is False
    assert _check(data, BREAKDOWN_CHECKS["trains"]) is True


def test_breakdown_check_fails_when_g2_is_halved(monkeypatch):
    real = dgd.sampled_gb
    monkeypatch.setattr(dgd, "sampled_gb", lambda *a, **k: 0.5 * real(*a, **k))
    data = FIGURES["gb-breakdown"].compute(TINY)
    assert _check(data, BREAKDOWN_CHECKS["holds"]) is False


def test_predicted_floors_recomputed_from_the_saved_frontier(predicted):
    rows, parameters = predicted.rows, predicted.parameters
    grid = np.array(parameters["frontier_B2"])
    big_l, gap, steps = parameters["L"], parameters["initial_gap"], parameters["steps"]
    assert sorted({r["f"] for r in rows}) == [1, 3]
    for name in ("authors", "runs"):
        g2 = np.array(parameters["frontier_G2"][name])
        assert g2[0] == g2.max() and np.all(np.diff(g2) <= 1e-12) and g2.min() >= 0
        for row in rows:
            kappa = row["f"] / (row["n"] - 2 * row["f"])
            assert row["kappa"] == pytest.approx(kappa, rel=1e-12)
            admissible = kappa * grid < 1
            floors = kappa * g2[admissible] / (1 - kappa * grid[admissible])
            assert row[f"{name}_floor_gb"] == pytest.approx(floors.min(), rel=1e-12)
            assert row[f"{name}_floor_g0"] == pytest.approx(kappa * g2[0], rel=1e-12)
            assert row[f"{name}_improvement"] == pytest.approx(
                kappa * g2[0] / floors.min(), rel=1e-12
            )
            bounds = (kappa * g2[admissible] + 2 * big_l * gap / steps) / (
                1 - kappa * grid[admissible]
            )
            assert row[f"{name}_bound_gb"] == pytest.approx(bounds.min(), rel=1e-12)
    # the authors' segment: B² > 0 lowers the prediction; its pair breaks where the runs go
    for row in rows:
        assert row["authors_improvement"] > 2
        assert row["authors_pair_ratio_on_run"] > 1
        assert row["runs_pair_ratio_on_run"] <= 1 + 1e-9
    assert all(predicted.checks.values())


def test_predicted_smoothness_and_measured_average_recomputed(predicted):
    rows, parameters = predicted.rows, predicted.parameters
    problem = dgd.extreme_digits(3)
    x = problem.features.reshape(-1, problem.features.shape[-1]).numpy()
    expected = 0.5 * np.linalg.eigvalsh(x.T @ x / len(x))[-1] + 1e-4
    assert parameters["L"] == pytest.approx(expected, rel=1e-10)
    # L bounds the gradient's Lipschitz ratio on random pairs (far apart and close)
    generator = torch.Generator().manual_seed(0)
    for scale in (0.01, 1.0, 10.0):
        a = scale * torch.randn(32, problem.dimension, generator=generator, dtype=torch.float64)
        b = a + 0.1 * torch.randn(a.shape, generator=generator, dtype=torch.float64)
        moved = problem.gradients(a).mean(dim=-2) - problem.gradients(b).mean(dim=-2)
        assert float((moved.norm(dim=-1) / (a - b).norm(dim=-1)).max()) <= parameters["L"]
    row = next(r for r in rows if r["f"] == 1)
    run = dgd.robust_dgd(
        problem,
        rule="nnm>>cwtm",
        f=1,
        attack=row["attack"],
        steps=parameters["steps"],
        lr=parameters["lr"],
        keep_iterates=True,
    )
    _, norms = _dissimilarity_by_hand(problem, run.iterates)
    assert row["measured"] == pytest.approx(norms[:-1].mean(), rel=1e-9)
    assert row["final_loss"] == pytest.approx(float(problem.objective(run.theta)), rel=1e-9)
    assert 0 <= parameters["L_star_lower"] <= parameters["initial_loss"]


def test_predicted_check_fails_when_the_bound_ignores_kappa(monkeypatch):
    real = predicted_module.gb_upper_bound_nonconvex
    monkeypatch.setattr(
        predicted_module, "gb_upper_bound_nonconvex", lambda **k: real(**{**k, "kappa": 0.0})
    )
    data = FIGURES["gb-predicted"].compute(TINY)
    assert _check(data, PREDICTED_CHECKS["bound"]) is False


def test_predicted_check_fails_when_the_runs_sampling_is_restricted(monkeypatch):
    real = _gb_digits.Frontier.sample.__func__

    def first_two(cls, problem, thetas, B2):
        return real(cls, problem, thetas.reshape(-1, problem.dimension)[:2], B2)

    monkeypatch.setattr(_gb_digits.Frontier, "sample", classmethod(first_two))
    data = FIGURES["gb-predicted"].compute(TINY)
    assert _check(data, PREDICTED_CHECKS["holds"]) is False


def test_predicted_check_fails_when_the_minimiser_skips_b2_zero(monkeypatch):
    real = dgd.error_floor_pair
    monkeypatch.setattr(
        dgd, "error_floor_pair", lambda B2, G2, *, kappa: real(B2[1:], G2[1:], kappa=kappa)
    )
    data = FIGURES["gb-predicted"].compute(TINY)
    assert _check(data, PREDICTED_CHECKS["floor"]) is False

"""gb-predicted and gb-safe-dshb at tiny size: the written CSV and meta.json agree with
independent recomputations (frontier, floors, bounds, smoothness, the measured average, the
accountant's ε), not only with the code that wrote them."""

import json
import math

import numpy as np
import pytest
import torch

# importing the modules registers gb-safe-dshb and gb-predicted
import trilemma.reproduce.gb_dp
import trilemma.reproduce.gb_predicted  # noqa: F401
from trilemma import dgd
from trilemma.accountants import worker_epsilon
from trilemma.reproduce import FIGURES, read_csv, reproduce

SEED = 3


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Both figures written once at tiny size: name → (CSV rows, meta, index text)."""
    out = tmp_path_factory.mktemp("figures")
    result = {}
    for name in ("gb-predicted", "gb-safe-dshb"):
        paths = reproduce(name, out=out, size="tiny", seed=SEED)
        meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
        result[name] = (read_csv(paths["csv"]), meta)
    index = (out / "index.md").read_text(encoding="utf-8")
    return {name: (*value, index) for name, value in result.items()}


def _extreme_digits():
    data = dgd.load_classification("digits")
    features, labels = dgd.split_workers(
        data, workers=10, per_worker=150, kind="extreme", seed=SEED
    )
    return dgd.SoftmaxRegression(features, labels, classes=10, ridge=1e-4)


@pytest.mark.parametrize("name", ["gb-predicted", "gb-safe-dshb"])
def test_meta_lists_the_figure_checks(written, name):
    rows, meta, index = written[name]
    assert meta["figure"] == name and rows
    assert meta["settings"]["size"] == "tiny" and meta["settings"]["seed"] == SEED
    figure = FIGURES[name]
    assert meta["theorem"] == figure.theorem
    assert len(meta["checks"]) >= 3
    assert all(isinstance(ok, bool) for ok in meta["checks"].values())
    for statement, ok in meta["checks"].items():
        assert f"{'yes' if ok else 'NO'}: {statement}" in index


def test_frontier_is_a_non_increasing_convex_envelope(written):
    _, meta, _ = written["gb-predicted"]
    grid = np.array(meta["parameters"]["frontier_B2"])
    g2 = np.array(meta["parameters"]["frontier_G2"])
    assert grid[0] == 0.0 and np.all(np.diff(grid) > 0)
    assert np.all(g2 >= 0) and np.all(np.diff(g2) <= 1e-12)
    # a maximum of lines H − B²N, clipped at 0: convex in B² (below every secant)
    for i in range(1, len(grid) - 1):
        w = (grid[i] - grid[i - 1]) / (grid[i + 1] - grid[i - 1])
        assert g2[i] <= (1 - w) * g2[i - 1] + w * g2[i + 1] + 1e-9 * (1 + g2[i])


def test_predicted_floors_recomputed_from_the_saved_frontier(written):
    rows, meta, _ = written["gb-predicted"]
    parameters = meta["parameters"]
    grid = np.array(parameters["frontier_B2"])
    g2 = np.array(parameters["frontier_G2"])
    big_l, gap, steps = parameters["L"], parameters["initial_gap"], parameters["steps"]
    assert sorted({r["f"] for r in rows}) == [1, 3]
    for row in rows:
        f, n = row["f"], row["n"]
        kappa = f / (n - 2 * f)
        assert n == 10 + f and row["kappa"] == pytest.approx(kappa, rel=1e-12)
        # the CSV's floor is κG²/(1 − κB²) at its own pair, read off the saved frontier ...
        at = int(np.flatnonzero(np.isclose(grid, row["floor_B2"], rtol=1e-12, atol=0))[0])
        assert row["floor_G2"] == pytest.approx(g2[at], rel=1e-12)
        expected = kappa * g2[at] / (1 - kappa * grid[at])
        assert row["floor_gb"] == pytest.approx(expected, rel=1e-12)
        # ... and that pair minimises the floor over every admissible B² of the grid
        admissible = kappa * grid < 1
        floors = kappa * g2[admissible] / (1 - kappa * grid[admissible])
        assert row["floor_gb"] == pytest.approx(floors.min(), rel=1e-12)
        # (G, 0): G² is the frontier at B² = 0, i.e. the largest sampled H(θ)
        assert row["G2_0"] == pytest.approx(g2[0], rel=1e-12)
        assert row["floor_g0"] == pytest.approx(kappa * g2[0], rel=1e-12)
        assert row["floor_gb"] <= row["floor_g0"] * (1 + 1e-12)
        # finite-T bound (κG² + 2L·gap/T)/(1 − κB²), minimised by hand over the grid
        bounds = (kappa * g2[admissible] + 2 * big_l * gap / steps) / (1 - kappa * grid[admissible])
        assert row["bound_gb"] == pytest.approx(bounds.min(), rel=1e-12)
        assert row["slack"] == pytest.approx(row["measured"] / row["bound_gb"], rel=1e-12)
        # the bound at the run's own κ̂ must hold: the frontier is exact at every iterate
        assert row["measured"] <= row["bound_kappa_hat"] * (1 + 1e-9)
    checks = meta["checks"]
    assert next(ok for s, ok in checks.items() if s.startswith("(G, B) floor ≤ (G, 0)")) is True
    statement = next(s for s in checks if s.startswith("measured (1/T)"))
    assert checks[statement] == all(r["slack"] <= 1 for r in rows)


def test_smoothness_and_measured_average_recomputed(written):
    rows, meta, _ = written["gb-predicted"]
    parameters = meta["parameters"]
    problem = _extreme_digits()
    x = problem.features.reshape(-1, problem.features.shape[-1]).numpy()
    expected = 0.5 * np.linalg.eigvalsh(x.T @ x / len(x))[-1] + 1e-4
    assert parameters["L"] == pytest.approx(expected, rel=1e-10)
    assert parameters["lr"] == pytest.approx(1 / expected, rel=1e-10)
    # L bounds the gradient's Lipschitz ratio on random pairs (far apart and close)
    generator = torch.Generator().manual_seed(0)
    for scale in (0.01, 1.0, 10.0):
        a = scale * torch.randn(32, problem.dimension, generator=generator, dtype=torch.float64)
        b = a + 0.1 * torch.randn(a.shape, generator=generator, dtype=torch.float64)
        moved = problem.gradients(a).mean(dim=-2) - problem.gradients(b).mean(dim=-2)
        ratio = moved.norm(dim=-1) / (a - b).norm(dim=-1)
        assert float(ratio.max()) <= parameters["L"]
    # the measured error is the average over t < T of ‖∇L_H(θ_t)‖², from the iterates
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
    norms = problem.gradients(run.iterates).mean(dim=-2).square().sum(dim=-1)
    assert row["measured"] == pytest.approx(float(norms[:-1].mean()), rel=1e-9)
    assert row["measured_final"] == pytest.approx(float(norms[-1]), rel=1e-9)
    assert parameters["initial_loss"] == pytest.approx(math.log(10))
    assert 0 <= parameters["L_star_lower"] <= parameters["initial_loss"]


def test_safe_dshb_accuracies_and_noise(written):
    rows, meta, _ = written["gb-safe-dshb"]
    parameters = meta["parameters"]
    tested = parameters["test_examples"]
    assert tested == round(0.2 * 1797)
    assert {(r["rule"], r["attack"]) for r in rows} == {
        ("mean", "none"),
        ("smea", "alie"),
        ("cwtm", "alie"),
    }
    for row in rows:
        assert 0.0 <= row["accuracy_min"] <= row["accuracy_mean"] <= row["accuracy_max"] <= 1.0
        # every trial's accuracy is a count over the test set: the mean is k/(S·N)
        total = row["accuracy_mean"] * row["trials"] * tested
        assert total == pytest.approx(round(total), abs=1e-6)
        if math.isinf(row["epsilon"]):
            assert row["noise_std"] == 0.0
        else:
            assert row["noise_std"] > 0
    # the accountant, run the other way, gives back the budget the noise was calibrated for
    for epsilon in sorted({r["epsilon"] for r in rows if math.isfinite(r["epsilon"])}):
        noise = next(r["noise_std"] for r in rows if r["epsilon"] == epsilon)
        achieved = worker_epsilon(
            noise_std=noise,
            delta=parameters["delta"],
            steps=parameters["steps"],
            local_size=parameters["per_worker"],
            clip=parameters["clip"],
            batch_size=parameters["batch_size"],
        )
        assert achieved <= epsilon * (1 + 1e-6) and achieved == pytest.approx(epsilon, rel=1e-3)
    # the stored table is the CSV's mean accuracy, and the checks agree with it
    for row in rows:
        key = f"{row['rule']} / {row['attack']}"
        assert parameters["accuracy"][key][str(row["epsilon"])] == row["accuracy_mean"]
    low, high = min(r["epsilon"] for r in rows), max(r["epsilon"] for r in rows)
    better = all(
        next(r for r in rows if r["rule"] == rule and r["epsilon"] == high)["accuracy_mean"]
        > next(r for r in rows if r["rule"] == rule and r["epsilon"] == low)["accuracy_mean"]
        for rule in {r["rule"] for r in rows}
    )
    statement = next(s for s in meta["checks"] if s.startswith("accuracy at ε"))
    assert meta["checks"][statement] == better
    clean = next(r for r in rows if r["rule"] == "mean" and math.isinf(r["epsilon"]))
    assert clean["f"] == 0 and clean["accuracy_mean"] > 0.8

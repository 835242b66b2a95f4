"""decor-privacy-utility at tiny size: the CSV agrees with independent recomputations (the
noise levels against dp-accounting, the paired differences), and every declared check reports
disagreement when a bug is planted in what it checks."""

import dataclasses
import json
import math

import dp_accounting
import pytest
import torch

import trilemma.decentralized.runner as runner
import trilemma.reproduce.decor_privacy_utility as module
from trilemma.reproduce import FIGURES, Settings, read_csv, reproduce
from trilemma.reproduce._figure import single_threaded

SEED = 3
TINY = Settings(size="tiny", seed=SEED)
NAME = "decor-privacy-utility"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    paths = reproduce(NAME, out=out, size="tiny", seed=SEED)
    return read_csv(paths["csv"]), json.loads(paths["meta"].read_text(encoding="utf-8"))


def test_meta_declares_four_agreeing_checks(written):
    rows, meta = written
    assert meta["figure"] == NAME and meta["theorem"] == FIGURES[NAME].theorem
    assert set(meta["checks"]) == {
        module.CALIBRATED,
        module.DECOR_NO_WORSE,
        module.CENTRAL_BEST,
        module.DECOR_HELPS,
    }
    assert all(meta["checks"].values())
    assert {r["method"] for r in rows} == {"non-private", "central DP", "local DP", "DECOR"}


def test_noise_levels_against_dp_accounting(written):
    rows, meta = written
    parameters = meta["parameters"]
    steps, nodes = parameters["steps"], parameters["nodes"]

    def rdp_epsilon(multiplier: float) -> float:
        accountant = dp_accounting.rdp.RdpAccountant()
        accountant.compose(dp_accounting.GaussianDpEvent(multiplier), steps)
        return accountant.get_epsilon(parameters["delta"])

    clip = parameters["clip"]
    for row in rows:
        if row["method"] == "local DP":  # user level: sensitivity 2C
            assert rdp_epsilon(row["sigma"] / (2 * clip)) == pytest.approx(row["epsilon"], 1e-4)
            assert row["sigma_cor"] == 0
        if row["method"] == "central DP":  # mean: sensitivity 2C/n, noise σ/√n
            multiplier = (row["sigma"] / math.sqrt(nodes)) / (2 * clip / nodes)
            assert rdp_epsilon(multiplier) == pytest.approx(row["epsilon"], 1e-4)
        if row["method"] == "DECOR":
            local = next(
                r for r in rows if r["method"] == "local DP" and r["epsilon"] == row["epsilon"]
            )
            assert local["sigma"] / math.sqrt(nodes) < row["sigma"] <= local["sigma"]


def test_paired_columns_are_the_differences_of_the_means(written):
    rows, _ = written
    at = {(r["method"], r["graph"], r["epsilon"]): r for r in rows}
    for row in rows:
        assert row["loss_ci95"] >= 0 and row["seeds"] >= 10
        if row["method"] != "DECOR":
            continue
        local = at["local DP", row["graph"], row["epsilon"]]["loss_mean"]
        central = at["central DP", "exact averaging", row["epsilon"]]["loss_mean"]
        assert row["gain_over_local_mean"] == pytest.approx(local - row["loss_mean"], rel=1e-9)
        assert row["excess_over_central_mean"] == pytest.approx(
            row["loss_mean"] - central, rel=1e-9, abs=1e-12
        )
        assert row["gap_closed"] == pytest.approx(
            (local - row["loss_mean"]) / (local - central), rel=1e-9
        )


def test_calibration_check_fails_on_too_little_edge_noise(written):
    rows, meta = written
    corrupted = [
        r | {"sigma_cor": 0.9 * r["sigma_cor"]} if r["method"] == "DECOR" else r for r in rows
    ]
    assert module.checks(rows, meta["parameters"])[module.CALIBRATED]
    assert not module.checks(corrupted, meta["parameters"])[module.CALIBRATED]


def _planted(monkeypatch, name, replacement, target=module):
    monkeypatch.setattr(target, name, replacement)
    with single_threaded():  # as reproduce() computes the figure
        return module._compute(TINY).checks


def test_no_worse_check_fails_when_the_secrets_do_not_cancel(monkeypatch):
    def added_twice(secrets, heads, tails, nodes):
        shape = (*secrets.shape[:-2], nodes, secrets.shape[-1])
        noise = secrets.new_zeros(shape).index_add_(-2, heads, secrets)
        return noise.index_add_(-2, tails, secrets)

    checks = _planted(monkeypatch, "correlated_noise", added_twice, target=runner)
    assert not checks[module.DECOR_NO_WORSE]


def test_central_check_fails_when_central_noise_is_not_divided_by_root_n(monkeypatch):
    checks = _planted(monkeypatch, "central_sigma", lambda sigma, *, nodes: sigma)
    assert not checks[module.CENTRAL_BEST]


def test_helps_check_fails_when_decor_falls_back_to_local_noise(monkeypatch):
    real = module.calibrate_decor

    def local_only(graph, **kwargs):
        noise = real(graph, **kwargs)
        sigma = module.local_sigma(
            graph, **{k: kwargs[k] for k in ("target_epsilon", "clip", "steps", "delta")}
        )
        return dataclasses.replace(noise, sigma=sigma, sigma_cor=0.0)

    checks = _planted(monkeypatch, "calibrate_decor", local_only)
    assert checks[module.DECOR_NO_WORSE]  # equal is no worse ...
    assert not checks[module.DECOR_HELPS]  # ... but does not help


def test_plot_draws_every_method_on_every_graph(written):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    rows, meta = written
    data = module.FigureData(rows=rows, parameters=meta["parameters"])
    canvas = Figure()
    FIGURES[NAME].plot(data, canvas)
    panels = canvas.axes
    assert [a.get_title() for a in panels] == meta["parameters"]["graphs"]
    assert all(len(a.lines) >= 4 for a in panels)
    assert torch.isfinite(torch.tensor([r["loss_mean"] for r in rows])).all()

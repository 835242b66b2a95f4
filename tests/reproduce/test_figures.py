"""Every figure at tiny size: its data agree with theory and with independent recomputations,
and the runner writes complete PNG + CSV + meta.json files atomically."""

import itertools
import json
import math

import numpy as np
import pytest
from dp_accounting import get_sigma_gaussian

from trilemma import reproduce
from trilemma.bounds import (
    trilemma_lower_bound,
)
from trilemma.cli import main
from trilemma.estimators import bound_holds
from trilemma.reproduce import FIGURES, Settings

TINY = Settings(size="tiny", seed=3)


@pytest.fixture(scope="module")
def computed():
    """Each figure computed once at tiny size."""
    return {name: FIGURES[name].compute(TINY) for name in reproduce.available()}


def _by(rows, **where):
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def test_the_registry_lists_every_figure():
    assert set(reproduce.available()) == {
        "accountants-dpsgd",
        "gb-breakdown",
        "gb-predicted",
        "gb-ridge",
        "gb-safe-dshb",
        "podc-batch-size",
        "secldp-graphs",
        "trilemma-byzantine",
        "trilemma-dimension",
        "trilemma-epsilon",
        "trilemma-tracing",
    }


def test_dimension_data(computed):
    rows = computed["trilemma-dimension"].rows
    # 5 rules without attack, 4 robust rules under attack, 2 dimensions each
    assert len(rows) == (5 + 4) * 2
    assert all(bound_holds(r) for r in rows)
    # the honest mean's expected error is d s²/n with s = 2C z/m (analytic Gaussian, m = 100)
    s = 2 * get_sigma_gaussian(1.0, 1e-5) / 100
    for row in _by(rows, rule="mean"):
        assert row["noise_std"] == pytest.approx(s, rel=1e-9)
        assert row["upper_bound"] == pytest.approx(row["d"] * s**2 / 10, rel=1e-12)
    for row in rows:
        expected = trilemma_lower_bound(d=row["d"], n=10, f=2, m=100, epsilon=1.0, delta=1e-5)
        assert row["lower_bound"] == pytest.approx(float(expected), rel=1e-12)
    for rule in ("mean", "smea", "cwtm", "krum"):
        small, large = sorted(_by(rows, rule=rule, panel="no attack"), key=lambda r: r["d"])
        assert large["error_mean"] > 2 * small["error_mean"]  # d grows 4×
    # Krum (κ = Θ(1)) loses the benefit of n workers even without attack
    for d in (4, 16):
        krum = _by(rows, rule="krum", panel="no attack", d=d)[0]
        mean = _by(rows, rule="mean", panel="no attack", d=d)[0]
        assert krum["error_mean"] > 2 * mean["error_mean"]


def test_byzantine_data(computed):
    rows = computed["trilemma-byzantine"].rows
    assert all(bound_holds(r) for r in rows)
    for rule in ("smea", "cwtm", "cwmed", "krum"):
        clean, attacked = sorted(_by(rows, rule=rule), key=lambda r: r["f"])
        assert (clean["f"], attacked["f"]) == (0, 2)
        assert attacked["error_mean"] > clean["error_mean"]
        assert attacked["fraction"] == pytest.approx(2 / 11)
        assert attacked["attack"] == "strongest" and clean["attack"] == "none"


def test_epsilon_data(computed):
    data = computed["trilemma-epsilon"]
    rows = data.rows
    assert all(bound_holds(r) for r in rows)
    for rule in ("smea", "cwtm", "cwmed", "krum"):
        errors = [r["error_mean"] for r in sorted(_by(rows, rule=rule), key=lambda r: r["epsilon"])]
        assert errors == sorted(errors, reverse=True)
    # the recorded band is the ratio spread of SMEA's error to the lower-bound shape
    smea = _by(rows, rule="smea")
    ratios = [r["error_mean"] / r["lower_bound"] for r in smea]
    assert data.parameters["smea_band_all_epsilon"] == pytest.approx(max(ratios) / min(ratios))


def test_tracing_data(computed):
    data = computed["trilemma-tracing"]
    rows = data.rows
    advantage = data.parameters["advantage"]
    assert advantage["non-private mean"] > 0.9
    assert advantage["central ε = 1"] < 0.15 and advantage["distributed ε = 1"] < 0.15
    for series in dict.fromkeys(r["series"] for r in rows):
        mine = _by(rows, series=series)
        fpr = np.array([r["fpr"] for r in mine])
        tpr = np.array([r["tpr"] for r in mine])
        assert np.all(np.diff(fpr) > 0) and np.all(np.diff(tpr) >= -1e-12)
        assert tpr[-1] == pytest.approx(1.0)
        # the stored advantage is at least the largest TPR − FPR on the plotted grid
        assert mine[0]["advantage"] >= np.max(tpr - fpr) - 1e-12
    non_private = _by(rows, series="non-private mean")[0]
    assert non_private["error"] == pytest.approx(0.0, abs=1e-20)
    assert math.isinf(non_private["epsilon"])


def test_reproduce_writes_complete_files(tmp_path):
    paths = reproduce.reproduce("trilemma-dimension", out=tmp_path, size="tiny", seed=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "index.md",
        "trilemma-dimension.csv",
        "trilemma-dimension.meta.json",
        "trilemma-dimension.png",
    ]
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = reproduce.read_csv(paths["csv"])
    direct = FIGURES["trilemma-dimension"].compute(TINY).rows
    assert len(rows) == len(direct)
    for written, computed_row in zip(rows, direct, strict=True):
        assert written["rule"] == computed_row["rule"]
        assert written["error_mean"] == pytest.approx(computed_row["error_mean"], rel=1e-12)
    meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
    assert meta["figure"] == "trilemma-dimension"
    assert meta["settings"] == {"size": "tiny", "device": "cpu", "seed": 3, "progress": False}
    assert all(meta["checks"].values())
    assert meta["wall_time_s"] >= 0
    index = paths["index"].read_text(encoding="utf-8")
    assert index.count("[trilemma-dimension](trilemma-dimension.png)") == 1
    assert "yes: measured error ≤ upper bound at every point" in index


def test_reproduce_bad_input(tmp_path):
    with pytest.raises(ValueError, match="name='nope' is not valid"):
        reproduce.reproduce("nope", out=tmp_path)
    with pytest.raises(ValueError, match="size='huge' is not valid"):
        reproduce.reproduce("podc-batch-size", out=tmp_path, size="huge")
    with pytest.raises(ValueError, match="device='tpu'"):
        reproduce.reproduce("podc-batch-size", out=tmp_path, device="tpu")
    assert not any(tmp_path.iterdir())


def test_cli_reproduce_glob_and_list(tmp_path, capsys):
    assert main(["reproduce", "--list", "--json"]) == 0
    listed = [row["figure"] for row in json.loads(capsys.readouterr().out)]
    assert listed == list(reproduce.available())
    argv = ["reproduce", "podc-*", "--size", "tiny", "--out", str(tmp_path), "--json"]
    assert main([*argv, "--no-progress"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["figure"] for row in rows] == ["podc-batch-size"]
    assert rows[0]["checks_passed"] == "1/1"
    assert (tmp_path / "podc-batch-size.png").exists()
    assert main(["reproduce", "nothing-*", "--out", str(tmp_path)]) == 2


def test_gb_breakdown_data(computed):
    data = computed["gb-breakdown"]
    rows = data.rows
    assert {r["rule"] for r in rows} == {"nnm>>cwtm", "nnm>>cwmed", "nnm>>krum", "nnm>>gm"}
    assert sorted({r["f"] for r in rows}) == [0, 3, 6]
    initial = data.parameters["initial_loss"]
    assert initial == pytest.approx(math.log(10))  # θ = 0: uniform over the 10 digits
    for row in rows:
        assert row["collapsed"] == (row["best_loss"] >= 0.9 * initial)
        assert 0.0 <= row["final_accuracy"] <= 1.0
    clean = [r for r in rows if r["f"] == 0]
    assert all(not r["collapsed"] and r["final_accuracy"] > 0.5 for r in clean)
    low, high = data.parameters["breakdown_band"]
    assert 0 < low <= high <= 0.5
    # the sampled frontier is non-increasing in B² and never negative
    g2 = data.parameters["frontier_G2"]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(g2)) and min(g2) >= 0

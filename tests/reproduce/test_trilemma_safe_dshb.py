"""trilemma-safe-dshb at tiny size: the written CSV and meta.json agree with independent
recomputations (the accountant's ε, accuracies as counts, the intervals), and every declared
check reports disagreement when a bug is planted in what it checks."""

import json
import math

import pytest
from scipy import stats

import trilemma.reproduce.trilemma_safe_dshb as module
from trilemma.accountants import worker_epsilon
from trilemma.reproduce import FIGURES, Settings, read_csv, reproduce

SEED = 3
TINY = Settings(size="tiny", seed=SEED)
NAME = "trilemma-safe-dshb"


def _check(checks, prefix):
    (statement,) = [s for s in checks if s.startswith(prefix)]
    return checks[statement]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    paths = reproduce(NAME, out=out, size="tiny", seed=SEED)
    meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
    index = (out / "index.md").read_text(encoding="utf-8")
    return read_csv(paths["csv"]), meta, index


def test_meta_and_index_list_the_checks(written):
    rows, meta, index = written
    assert meta["figure"] == NAME and rows
    assert meta["theorem"] == FIGURES[NAME].theorem
    assert meta["settings"]["size"] == "tiny" and meta["settings"]["seed"] == SEED
    assert len(meta["checks"]) == 3 and all(meta["checks"].values())
    for statement in meta["checks"]:
        assert f"yes: {statement}" in index


def test_accuracies_intervals_and_noise(written):
    rows, meta, _ = written
    parameters = meta["parameters"]
    tested = parameters["test_examples"]
    assert tested == round(0.2 * 1797)
    assert {(r["series"], r["f"], r["attack"]) for r in rows} == {
        ("mean, no attack", 0, "none"),
        ("mean", 3, "optimal_foe"),
        ("SMEA", 3, "optimal_foe"),
    }
    t = stats.t.ppf(0.975, parameters["trials"] - 1)
    for row in rows:
        assert 0.0 <= row["accuracy_min"] <= row["accuracy_mean"] <= row["accuracy_max"] <= 1.0
        # every trial's accuracy is a count over the test set: the mean is k/(S·N)
        total = row["accuracy_mean"] * row["trials"] * tested
        assert total == pytest.approx(round(total), abs=1e-6)
        # the interval is t·std/√S: never wider than t·(range/2)/√S·√(S/(S−1))
        spread = (row["accuracy_max"] - row["accuracy_min"]) / 2
        s = row["trials"]
        assert row["accuracy_ci95"] <= t * spread * math.sqrt(s / (s - 1)) / math.sqrt(s) + 1e-12
        attacked = next(r for r in rows if r["series"] == "mean" and r["epsilon"] == row["epsilon"])
        assert row["gain_over_attacked_mean"] == pytest.approx(
            row["accuracy_mean"] - attacked["accuracy_mean"]
        )
    # the accountant, run here the other way, gives back the budget the noise was calibrated for
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


def test_check_fails_when_the_noise_is_mis_scaled(monkeypatch):
    real = module._noise_std.__wrapped__
    monkeypatch.setattr(module, "_noise_std", lambda *a: 0.5 * real(*a))
    checks = FIGURES[NAME].compute(TINY).checks
    assert _check(checks, "the accountant gives back") is False


def test_check_fails_when_the_noise_ignores_epsilon(monkeypatch):
    real = module._noise_std.__wrapped__
    monkeypatch.setattr(module, "_noise_std", lambda epsilon, steps, batch: real(1.0, steps, batch))
    checks = FIGURES[NAME].compute(TINY).checks
    assert _check(checks, "privacy costs accuracy") is False


def test_check_fails_when_the_attack_is_disabled(monkeypatch):
    monkeypatch.setattr(module, "_ATTACK", "mimic")
    checks = FIGURES[NAME].compute(TINY).checks
    assert _check(checks, "robustness matters") is False

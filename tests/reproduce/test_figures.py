"""Every figure at tiny size: its data agree with theory and with independent recomputations,
and the runner writes complete PNG + CSV + meta.json files atomically."""

import json

import pytest

from trilemma import reproduce
from trilemma.cli import main
from trilemma.reproduce import FIGURES, Settings

TINY = Settings(size="tiny", seed=3)


def test_the_registry_lists_every_figure():
    assert set(reproduce.available()) == {
        "accountants-dpsgd",
        "decor-privacy-utility",
        "gb-breakdown",
        "gb-predicted",
        "gb-ridge",
        "gb-trajectories",
        "podc-batch-size",
        "secldp-graphs",
        "trilemma-byzantine",
        "trilemma-dimension",
        "trilemma-epsilon",
        "trilemma-records",
        "trilemma-safe-dshb",
        "trilemma-tracing",
    }


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
    assert rows[0]["checks_passed"] == "2/2"
    assert (tmp_path / "podc-batch-size.png").exists()
    assert main(["reproduce", "nothing-*", "--out", str(tmp_path)]) == 2

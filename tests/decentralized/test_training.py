"""Decentralized runs through trilemma.dgd.train and `trilemma run`: records, resume
bit-identical on CPU, calibrated noise in meta.json, config checks."""

import json

import pytest
import torch

from trilemma.accountants import secldp_epsilon
from trilemma.cli import main
from trilemma.decentralized import DecentralizedSGD
from trilemma.dgd import RunConfig, train
from trilemma.dgd.training import build_experiment

BASE = RunConfig(
    name="wine-ring",
    dataset="wine",
    split="dirichlet",
    workers=6,
    per_worker=12,
    f=0,
    rule="mean",
    graph="ring:6",
    steps=12,
    lr=0.2,
    clip=1.0,
    epsilon=4.0,
    seeds=3,
    log_every=4,
    checkpoint_every=5,
)


def test_a_decentralized_run_records_the_runner_at_the_average_model(tmp_path):
    result = train(BASE, out=tmp_path, progress=False)
    meta = json.loads((result.folder / "meta.json").read_text(encoding="utf-8"))
    sigma, sigma_cor = meta["noise_std"], meta["sigma_cor"]
    assert sigma > 0 and sigma_cor > 0 and meta["status"] == "finished"
    epsilon = secldp_epsilon(
        "ring:6",
        sigma=sigma,
        sigma_cor=sigma_cor,
        clip=1.0,
        steps=12,
        delta=1e-5,
        local_size=12,
        batch_size=12,
    )
    assert 4.0 * (1 - 1e-3) <= epsilon <= 4.0
    experiment = build_experiment(BASE)
    runner = DecentralizedSGD(
        experiment.problem,
        "ring:6",
        lr=0.2,
        clip=1.0,
        sigma=sigma,
        sigma_cor=sigma_cor,
    )
    state = runner.start(experiment.theta0)
    generator = torch.Generator().manual_seed(BASE.seed)
    for _ in range(12):
        state, _ = runner.step(state, generator, measure=False)
    assert torch.equal(result.state.theta, state.theta)
    last = [row for row in result.rows if row["step"] == 12]
    expected = experiment.problem.objective(state.theta.mean(dim=-2))
    assert [row["loss"] for row in last] == pytest.approx(expected.tolist(), rel=1e-12)
    assert sorted({row["step"] for row in result.rows}) == [0, 4, 8, 12]


def test_resume_is_bit_identical(tmp_path):
    config = BASE.replace(epsilon=None, sigma=0.5, sigma_cor=2.0, batch_size=4)
    whole = train(config, out=tmp_path / "a", progress=False)

    class StopError(Exception):
        pass

    def stop(step):
        if step == 7:
            raise StopError

    with pytest.raises(StopError):
        train(config, out=tmp_path / "b", progress=False, on_step=stop)
    resumed = train(config, out=tmp_path / "b", resume=True, progress=False)
    assert torch.equal(whole.state.theta, resumed.state.theta)
    assert repr(whole.rows) == repr(resumed.rows)  # κ̂ is NaN: compare the printed rows


def test_the_cli_runs_a_decentralized_config(tmp_path, capsys):
    path = tmp_path / "ring.json"
    values = BASE.to_dict() | {"epsilon": None, "sigma": 0.5, "sigma_cor": 2.0, "steps": 4}
    path.write_text(json.dumps(values), encoding="utf-8")
    assert main(["run", str(path), "--out", str(tmp_path), "--no-progress", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["step"] for row in rows] == [4, 4, 4]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"graph": "ring:5"}, "has 5 nodes but workers=6"),
        ({"f": 1, "rule": "cwtm"}, "f = 0"),
        ({"sigma": 1.0}, "not both"),
        ({"graph": None, "epsilon": None, "sigma": 1.0}, "set graph"),
        ({"mixing": "gossip"}, "mixing"),
    ],
)
def test_bad_decentralized_configs_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        BASE.replace(**changes)

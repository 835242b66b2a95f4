"""Run configs, run folders, checkpoints and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trilemma.dgd import RunConfig, build_experiment, robust_dgd, train
from trilemma.dgd.runner import RunState
from trilemma.reproduce import read_csv

SMALL = {"workers": 4, "per_worker": 25, "steps": 12, "log_every": 3, "checkpoint_every": 5}
STOCHASTIC = SMALL | {"batch_size": 5, "clip": 1.0, "epsilon": 4.0, "momentum": 0.5}
VARIANTS = {
    "dp-momentum": STOCHASTIC | {"f": 1, "attack": "alie"},
    "mlp-label-flipping": STOCHASTIC
    | {"model": "mlp", "hidden": 6, "seeds": 2, "f": 1, "attack": "label_flipping", "lr": 0.5},
    "optimal-attack": SMALL | {"f": 1, "attack": "optimal_foe", "rule": "cwmed"},
}


def test_config_files_round_trip(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('name = "alie"\nattack = "alie"\nf = 3\nbatch_size = 16\nlr = 0.25\n')
    config = RunConfig.from_file(toml)
    assert (config.name, config.attack, config.f, config.batch_size, config.lr) == (
        "alie",
        "alie",
        3,
        16,
        0.25,
    )
    assert config.rule == RunConfig().rule  # unlisted fields keep their defaults
    as_json = tmp_path / "run.json"
    as_json.write_text(json.dumps(config.to_dict()))
    assert RunConfig.from_file(as_json) == config


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"alpha": 0}, ValueError, r"alpha=0 must lie in \(0, inf\)"),
        ({"lr": 0}, ValueError, r"lr=0 must lie in \(0, inf\)"),
        ({"lr": -1}, ValueError, r"lr=-1 must lie in \(0, inf\)"),
        ({"f": 10}, ValueError, r"f=10 must satisfy 2f < n = workers \+ f = 20"),
        ({"rule": "median"}, ValueError, r"rule='median': .*choose one of: 'mean', 'cwmed'"),
        ({"attack": "bogus"}, ValueError, r"attack='bogus' is not valid.*'label_flipping'"),
        ({"dataset": "mnist"}, ValueError, r"dataset='mnist' is neither one of \['digits'"),
        ({"split": "sorted"}, ValueError, r"split='sorted' is not valid.*'dirichlet'"),
        ({"model": "cnn"}, ValueError, r"model='cnn' is not valid.*'logistic', 'mlp'"),
        ({"epsilon": 1.0}, ValueError, "epsilon needs clip"),
        ({"batch_size": 500}, ValueError, r"batch_size=500 must be an integer in \[1, 120\]"),
        ({"name": "../up"}, ValueError, "must be a folder name"),
        ({"steps": 2.5}, TypeError, "steps must be an integer"),
    ],
)
def test_bad_configs_are_refused(changes, error, message):
    with pytest.raises(error, match=message):
        RunConfig(**changes)


def test_unknown_keys_and_file_kinds_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"unknown run config keys \['learning_rate'\]"):
        RunConfig.from_mapping({"learning_rate": 0.1})
    yaml = tmp_path / "run.yaml"
    yaml.write_text("lr: 1")
    with pytest.raises(ValueError, match=r"must end in \.toml or \.json"):
        RunConfig.from_file(yaml)


def test_a_run_logs_what_the_runner_computes(tmp_path):
    config = RunConfig(name="plain", **SMALL | {"f": 1, "attack": "sign_flipping"})
    result = train(config, out=tmp_path, progress=False)
    rows = read_csv(tmp_path / "plain" / "metrics.csv")
    assert [row["step"] for row in rows] == [0, 3, 6, 9, 12]
    experiment = build_experiment(config)
    expected = robust_dgd(
        experiment.problem,
        rule=config.rule,
        f=1,
        attack="sign_flipping",
        steps=config.steps,
        lr=config.lr,
        theta0=experiment.theta0,
    )
    for row in rows:
        assert row["loss"] == pytest.approx(float(expected.objective[row["step"], 0]), rel=1e-12)
        assert row["gradient_norm2"] == pytest.approx(
            float(expected.gradient_norm2[row["step"], 0]), rel=1e-10
        )
        if row["step"]:
            window = expected.kappa_hat[row["step"] - 3 : row["step"], 0]
            assert row["kappa_hat_max"] == pytest.approx(float(window.max()), rel=1e-10)
        assert 0 <= row["test_accuracy"] <= 1
    torch.testing.assert_close(result.state.theta, expected.theta, rtol=0, atol=0)
    meta = json.loads((tmp_path / "plain" / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["steps_done"] == 12
    assert meta["config"] == config.to_dict() and meta["steps_per_second"] > 0
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [
        "checkpoint.pt",
        "meta.json",
        "metrics.csv",
    ]


class _Stop(KeyboardInterrupt):
    """Raised from on_step, as Ctrl-C would be."""


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("stop_at", [5, 7])
def test_resume_is_bit_identical(variant, stop_at, tmp_path):
    config = RunConfig(name=variant, **VARIANTS[variant])
    straight = train(config, out=tmp_path / "straight", progress=False)

    def interrupt(step: int) -> None:
        if step == stop_at:
            raise _Stop

    with pytest.raises(_Stop):
        train(config, out=tmp_path / "resumed", progress=False, on_step=interrupt)
    folder = tmp_path / "resumed" / variant
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["status"] == "interrupted" and meta["steps_done"] == stop_at
    assert max(row["step"] for row in read_csv(folder / "metrics.csv")) <= stop_at
    resumed = train(config, out=tmp_path / "resumed", resume=True, progress=False)
    assert resumed.state.step == 12
    torch.testing.assert_close(resumed.state.theta, straight.state.theta, rtol=0, atol=0)
    first = (tmp_path / "straight" / variant / "metrics.csv").read_bytes()
    assert (folder / "metrics.csv").read_bytes() == first
    assert not list(folder.glob(".*.tmp"))


def test_resume_refuses_a_changed_config_and_a_missing_checkpoint(tmp_path):
    config = RunConfig(name="r", **SMALL)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(config, out=tmp_path, resume=True, progress=False)
    train(config, out=tmp_path, progress=False)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(config, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"config changed \(rule: 'nnm>>cwtm' → 'cwmed'\)"):
        train(config.replace(rule="cwmed"), out=tmp_path, resume=True, progress=False)
    longer = train(config.replace(steps=15), out=tmp_path, resume=True, progress=False)
    assert longer.state.step == 15 and longer.rows[-1]["step"] == 15


def test_steps_cannot_grow_under_a_privacy_budget(tmp_path):
    config = RunConfig(name="dp", **STOCHASTIC)
    train(config, out=tmp_path, progress=False)
    with pytest.raises(ValueError, match="steps: 12 → 20"):
        train(config.replace(steps=20), out=tmp_path, resume=True, progress=False)


def test_a_nan_attack_never_breaks_a_run(tmp_path):
    config = RunConfig(name="nan", **SMALL | {"f": 1, "attack": "nan", "rule": "cwtm"})
    result = train(config, out=tmp_path, progress=False)
    assert all(row["loss"] == row["loss"] for row in result.rows)
    assert bool(torch.isfinite(result.state.theta).all())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_cuda_run_follows_the_cpu_run(variant, tmp_path):
    # the same random draws (made on the CPU generator), the same float64 arithmetic up to
    # rounding: the two runs agree to float tolerance
    config = RunConfig(name=variant, **VARIANTS[variant])
    cpu = train(config, out=tmp_path / "cpu", progress=False)
    cuda = train(config.replace(device="cuda"), out=tmp_path / "cuda", progress=False)
    assert cuda.state.theta.device.type == "cuda"
    torch.testing.assert_close(cuda.state.theta.cpu(), cpu.state.theta, rtol=1e-8, atol=1e-10)
    for mine, theirs in zip(cpu.rows, cuda.rows, strict=True):
        assert theirs["loss"] == pytest.approx(mine["loss"], rel=1e-8)


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[2].glob("examples/configs/*.toml")))
def test_the_example_configs_load_and_train(path, tmp_path):
    config = RunConfig.from_file(path)
    short = config.replace(steps=3, log_every=1, seeds=1)
    result = train(short, out=tmp_path, progress=False)
    assert [row["step"] for row in result.rows] == [0, 1, 2, 3]
    assert all(0 <= row["test_accuracy"] <= 1 for row in result.rows)


def test_there_are_example_configs():
    assert len(list(Path(__file__).parents[2].glob("examples/configs/*.toml"))) >= 3


def test_a_run_state_checkpoint_round_trips(tmp_path):
    theta = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    state = RunState(7, theta, honest_buffer=-theta, gradients=theta + 1)
    path = state.save(tmp_path / "c.pt", config={"name": "x"}, rows=[{"step": 7}], elapsed=1.5)
    assert path == tmp_path / "c.pt" and not list(tmp_path.glob(".*.tmp"))
    saved = torch.load(path, weights_only=False)
    assert list(saved) == [
        "config",
        "step",
        "theta",
        "honest_buffer",
        "byzantine_buffer",
        "rows",
        "elapsed",
    ]
    loaded, rest = RunState.load(path)
    assert (loaded.step, loaded.byzantine_buffer, loaded.gradients) == (7, None, None)
    torch.testing.assert_close(loaded.theta, theta, rtol=0, atol=0)
    torch.testing.assert_close(loaded.honest_buffer, -theta, rtol=0, atol=0)
    assert rest == {"config": {"name": "x"}, "rows": [{"step": 7}], "elapsed": 1.5}
    with pytest.raises(FileNotFoundError):
        RunState.load(tmp_path / "missing.pt")


def test_config_accepts_an_attack_registered_after_import():
    from trilemma import attacks

    name = "config-registered-attack"
    registry = attacks.registry._REGISTRY
    saved = dict(registry)
    try:
        attacks.register(name)(attacks.SignFlipping)
        assert RunConfig(f=1, attack=name).attack == name
    finally:
        registry.clear()
        registry.update(saved)
    with pytest.raises(ValueError, match="attack="):
        RunConfig(f=1, attack=name)

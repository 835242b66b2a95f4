"""The torch.distributed backend: 2 and 3 gloo processes on localhost follow the single-process
trajectory (same seed), through the library and through `trilemma run --nproc`."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from trilemma.dgd import RobustDGD, SoftmaxRegression, shard_bounds
from trilemma.dgd.distributed import launch, launched, process_shard

F64 = torch.float64
SETTINGS = {
    "rule": "nnm>>cwtm",
    "f": 2,
    "attack": "alie",
    "lr": 0.5,
    "batch_size": 3,
    "clip": 1.0,
    "noise_std": 0.1,
    "momentum": 0.9,
}


def _problem() -> SoftmaxRegression:
    g = torch.Generator().manual_seed(0)
    features = torch.randn(5, 6, 4, generator=g, dtype=F64)
    labels = torch.randint(0, 3, (5, 6), generator=g)
    return SoftmaxRegression(features, labels, classes=3, ridge=0.01)


def _trajectory(algorithm: RobustDGD, steps: int = 15) -> torch.Tensor:
    """θ_0..θ_T of two batched starts, stacked."""
    generator = torch.Generator().manual_seed(1)
    start = torch.randn(2, algorithm.problem.dimension, generator=generator, dtype=F64)
    state = algorithm.start(start)
    thetas = [state.theta]
    for _ in range(steps):
        state, _ = algorithm.step(state, generator)
        thetas.append(state.theta)
    return torch.stack(thetas)


def _rank_main(rank: int, world: int, store: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        problem = _problem()
        shard = process_shard(problem.workers)
        assert (shard.start, shard.stop) == shard_bounds(5, world_size=world, rank=rank)
        thetas = _trajectory(RobustDGD(problem, shard=shard, **SETTINGS))
        torch.save(thetas, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_shard_bounds_partition_the_workers():
    for h in range(1, 9):
        for world in range(1, h + 1):
            bounds = [shard_bounds(h, world_size=world, rank=r) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == h
            assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
            sizes = [stop - start for start, stop in bounds]
            assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    with pytest.raises(ValueError, match=r"world_size=6 must be an integer in \[1, 5\]"):
        shard_bounds(5, world_size=6, rank=0)


@pytest.mark.parametrize("world", [2, 3])
def test_gloo_processes_follow_the_single_process_trajectory(world, tmp_path):
    expected = _trajectory(RobustDGD(_problem(), **SETTINGS))
    out = str(tmp_path / "thetas")
    mp.spawn(_rank_main, args=(world, str(tmp_path / "store"), out), nprocs=world, join=True)
    for rank in range(world):
        got = torch.load(f"{out}.{rank}")
        # the workers' gradients are computed by slices: equal up to float rounding
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(expected[-1], expected[0])


def test_trilemma_run_nproc_matches_one_process(tmp_path):
    settings = ["--set=steps=8", "--set=log_every=4", "--set=workers=5", "--set=per_worker=30"]
    settings += ["--set=batch_size=10", "--set=clip=2.0", "--set=epsilon=8.0", "--set=momentum=0.5"]
    printed = {}
    for name, nproc in (("one", 1), ("two", 2)):
        command = [sys.executable, "-m", "trilemma", "run", f"--set=name={name}", *settings]
        command += ["--out", str(tmp_path), "--no-progress", "--nproc", str(nproc), "--json"]
        done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
        printed[name] = json.loads(done.stdout)  # one JSON document: the ranks print nothing
    assert [row["step"] for row in printed["two"]] == [8]
    assert printed["two"][0]["loss"] == pytest.approx(printed["one"][0]["loss"], rel=1e-10)
    one = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=False)
    two = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=False)
    torch.testing.assert_close(two["theta"], one["theta"], rtol=1e-10, atol=1e-12)
    for mine, theirs in zip(one["rows"], two["rows"], strict=True):
        assert mine.keys() == theirs.keys() and mine["step"] == theirs["step"]
        assert theirs["loss"] == pytest.approx(mine["loss"], rel=1e-10)


def test_launch_reports_a_failed_group_and_launched_reads_the_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched()
    monkeypatch.delenv("WORLD_SIZE")
    assert not launched()
    with pytest.raises(ValueError, match="nproc"):
        launch(["--version"], nproc=0)
    # an unknown command makes every rank exit with status 2, and torchrun with it
    with pytest.raises(ValueError, match="torchrun with 1 processes exited with status"):
        launch(["no-such-command"], nproc=1)

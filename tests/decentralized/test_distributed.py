"""Decentralized runs over torch.distributed: 2 gloo processes follow the single-process
trajectory, through the library and through `trilemma run --nproc 2`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from trilemma.decentralized import DecentralizedSGD
from trilemma.dgd import SoftmaxRegression
from trilemma.dgd.distributed import process_shard

SETTINGS = {"lr": 0.3, "batch_size": 3, "clip": 0.5, "sigma": 0.2, "sigma_cor": 0.7}


def _problem() -> SoftmaxRegression:
    g = torch.Generator().manual_seed(0)
    features = torch.randn(5, 6, 4, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 3, (5, 6), generator=g)
    return SoftmaxRegression(features, labels, classes=3, ridge=0.01)


def _trajectory(algorithm: DecentralizedSGD, steps: int = 12) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    state = algorithm.start(torch.zeros(2, algorithm.problem.dimension, dtype=torch.float64))
    thetas = [state.theta]
    for _ in range(steps):
        state, _ = algorithm.step(state, generator, measure=False)
        thetas.append(state.theta)
    return torch.stack(thetas)


def _rank_main(rank: int, world: int, store: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        shard = process_shard(5)
        thetas = _trajectory(DecentralizedSGD(_problem(), "ring:5", shard=shard, **SETTINGS))
        torch.save(thetas, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_follow_the_single_process_trajectory(tmp_path):
    expected = _trajectory(DecentralizedSGD(_problem(), "ring:5", **SETTINGS))
    out = str(tmp_path / "thetas")
    mp.spawn(_rank_main, args=(2, str(tmp_path / "store"), out), nprocs=2, join=True)
    for rank in range(2):
        torch.testing.assert_close(torch.load(f"{out}.{rank}"), expected, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(expected[-1], expected[0])


def test_trilemma_run_nproc_2_matches_one_process(tmp_path):
    settings = ["--set=graph='ring:6'", "--set=f=0", "--set=rule='mean'", "--set=workers=6"]
    settings += ["--set=dataset='wine'", "--set=per_worker=12", "--set=steps=6"]
    settings += ["--set=log_every=3", "--set=clip=1.0", "--set=sigma=0.3", "--set=sigma_cor=1.0"]
    printed = {}
    for name, nproc in (("one", 1), ("two", 2)):
        command = [sys.executable, "-m", "trilemma", "run", f"--set=name={name}", *settings]
        command += ["--out", str(tmp_path), "--no-progress", "--nproc", str(nproc), "--json"]
        done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
        printed[name] = json.loads(done.stdout)
    assert [row["step"] for row in printed["two"]] == [6]
    assert printed["two"][0]["loss"] == pytest.approx(printed["one"][0]["loss"], rel=1e-10)
    one = torch.load(tmp_path / "one" / "checkpoint.pt", weights_only=False)
    two = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=False)
    torch.testing.assert_close(two["theta"], one["theta"], rtol=1e-10, atol=1e-12)

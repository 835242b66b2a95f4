"""Robust D-GD over several processes with torch.distributed.

Each process (rank r of W) computes the messages of a contiguous slice of the h honest workers
(sizes differ by at most one, as :func:`numpy.array_split`); an all-gather assembles all h
messages on every rank, and every rank runs the same server step — aggregation, Byzantine
vectors, update — on identical inputs, so θ stays replicated without a broadcast. The random
draws (batches, noise) are made for all h workers on every rank from the same seeded generator
(:class:`trilemma.dgd.RobustDGD`), so W processes follow the single-process trajectory.

Launch with ``trilemma run --nproc W`` (``torchrun`` underneath): ``gloo`` on CPU, ``nccl`` on
CUDA, where each rank takes the GPU ``LOCAL_RANK``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

import torch
import torch.distributed as dist

from trilemma._validation import check_int
from trilemma.dgd.runner import Shard

__all__ = ["initialize", "launch", "launched", "process_shard", "shard_bounds"]


def shard_bounds(workers: int, *, world_size: int, rank: int) -> tuple[int, int]:
    """Slice ``start:stop`` of the honest workers that ``rank`` computes.

    Examples
    --------
    >>> [shard_bounds(5, world_size=2, rank=r) for r in range(2)]
    [(0, 3), (3, 5)]
    """
    h = check_int("workers", workers, low=1)
    w = check_int("world_size", world_size, low=1, high=h)
    r = check_int("rank", rank, low=0, high=w - 1)
    base, extra = divmod(h, w)
    start = r * base + min(r, extra)
    return start, start + base + (1 if r < extra else 0)


def process_shard(workers: int) -> Shard:
    """The :class:`Shard` of this process in the initialised default process group."""
    world, rank = dist.get_world_size(), dist.get_rank()
    bounds = [shard_bounds(workers, world_size=world, rank=r) for r in range(world)]
    sizes = [stop - start for start, stop in bounds]
    start, stop = bounds[rank]

    def gather(local: torch.Tensor, dim: int) -> torch.Tensor:
        dim = dim % local.ndim
        widest = max(sizes)
        if local.shape[dim] < widest:  # all_gather needs equal shapes: pad, then trim
            pad_shape = list(local.shape)
            pad_shape[dim] = widest - local.shape[dim]
            local = torch.cat([local, local.new_zeros(pad_shape)], dim=dim)
        parts = [torch.empty_like(local) for _ in range(world)]
        dist.all_gather(parts, local.contiguous())
        return torch.cat([p.narrow(dim, 0, k) for p, k in zip(parts, sizes, strict=True)], dim)

    return Shard(start, stop, gather)


def initialize(device: str) -> str:
    """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE``,
    ``RANK``, ``MASTER_ADDR``…) if there is one; return the device this rank computes on
    (``cuda:LOCAL_RANK`` for a CUDA run)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    cuda = device.startswith("cuda")
    if cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return device


def launched() -> bool:
    """Whether this process is a rank that ``torchrun`` started (``WORLD_SIZE`` is set)."""
    return "WORLD_SIZE" in os.environ


def launch(arguments: Sequence[str], *, nproc: int) -> None:
    """Run ``python -m trilemma <arguments>`` as ``nproc`` processes under ``torchrun
    --standalone`` (one machine) and wait for them; each joins the group with
    :func:`initialize`.

    Raises
    ------
    ValueError
        If ``nproc`` < 1, or if the processes exit with a non-zero status.
    """
    nproc = check_int("nproc", nproc, low=1)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "trilemma",
        *arguments,
    ]
    status = subprocess.run(command, check=False).returncode
    if status:
        raise ValueError(f"torchrun with {nproc} processes exited with status {status}")

"""Runs that last: a :class:`~trilemma.dgd.RunConfig` trained into ``<out>/<name>/``.

The folder holds

- ``metrics.csv`` — one row per logged step and seed: training loss L_H(θ_t), ‖∇L_H(θ_t)‖²,
  the largest robustness ratio κ̂ paid since the previous row, training and test accuracy;
- ``meta.json`` — the config, the noise std, status (``running``, ``interrupted``,
  ``finished``), steps done, steps/s, device, world size, versions;
- ``checkpoint.pt`` — step t, θ_t, the momentum buffers, the generator state and the rows so
  far.

Every file is replaced atomically (written beside, then renamed), so an interruption at any
moment leaves the previous complete version. An interrupted run (Ctrl-C) writes a checkpoint of
its last finished step; ``resume=True`` reloads the latest checkpoint and continues: on CPU the
rows and θ are bit-identical to an uninterrupted run, since a step depends only on what the
checkpoint holds. Under torch.distributed (:mod:`trilemma.dgd.distributed`) every rank computes
its shard of workers and rank 0 writes the files.

What a config builds is in :mod:`trilemma.dgd.experiment`, the folder's files in
:mod:`trilemma.dgd.run_folder`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from trilemma.dgd.config import RunConfig
from trilemma.dgd.experiment import Experiment, build_experiment, holdout
from trilemma.dgd.run_folder import Progress, RunFolder, metric_rows
from trilemma.dgd.state import RunState

__all__ = ["Experiment", "TrainingResult", "build_experiment", "holdout", "train"]


@dataclass(frozen=True)
class TrainingResult:
    """Where the run lives, its final state and its metrics rows."""

    folder: Path
    state: RunState
    rows: list[dict[str, Any]]


def train(
    config: RunConfig,
    *,
    out: str | Path = "runs",
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
) -> TrainingResult:
    """Train ``config`` into ``<out>/<config.name>/`` (module docstring).

    Parameters
    ----------
    config : RunConfig
    out : str or Path
        Parent folder of the run folders.
    resume : bool
        Continue from the run's checkpoint. The stored config must equal ``config`` except
        ``steps``, which may grow (not with ``epsilon``: the noise is calibrated to T).
    progress : bool
        Show a progress bar with steps/s (rank 0 only).
    on_step : callable, optional
        Called with t after step t is done (and checkpointed when due), e.g. to stop a run.

    Returns
    -------
    TrainingResult

    Raises
    ------
    FileExistsError
        If the run folder already holds a checkpoint and ``resume`` is False.
    FileNotFoundError
        If ``resume`` is True and there is no checkpoint.
    ValueError
        If the checkpoint's config differs from ``config`` beyond ``steps``.
    """
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    distributed = dist.is_available() and dist.is_initialized()
    experiment = build_experiment(config, distributed=distributed)
    generator = torch.Generator().manual_seed(config.seed)
    folder = RunFolder.of(config, experiment, Path(out) / config.name, distributed)
    begin = folder.resume if resume else folder.start
    done = begin(experiment, generator)
    if distributed:  # every rank has checked the folder before rank 0 writes to it
        dist.barrier()
    folder.save(done, "running" if done.state.step < config.steps else "finished")
    done = _run(done, experiment, generator, folder, progress=progress, on_step=on_step)
    return TrainingResult(folder=folder.path, state=done.state, rows=done.rows)


def _run(
    done: Progress,
    experiment: Experiment,
    generator: torch.Generator,
    folder: RunFolder,
    *,
    progress: bool,
    on_step: Callable[[int], None] | None,
) -> Progress:
    """The steps after ``done`` up to ``config.steps``, checkpointed when due and on Ctrl-C."""
    from tqdm.auto import tqdm

    config = folder.config
    bar = tqdm(
        total=config.steps,
        initial=done.state.step,
        unit="step",
        desc=config.name,
        disable=not (progress and folder.writer),
    )
    try:
        while done.state.step < config.steps:
            # one assignment commits the step: an interruption sees the old or the new progress
            done = _advance(done, experiment, generator, config, bar)
            step = done.state.step
            if step % config.checkpoint_every == 0 or step == config.steps:
                folder.save(done, "finished" if step == config.steps else "running")
            bar.update(1)
            if on_step is not None:
                on_step(step)
    except KeyboardInterrupt:
        folder.save(done, "interrupted")
        raise
    finally:
        bar.close()
    return done


def _advance(
    done: Progress,
    experiment: Experiment,
    generator: torch.Generator,
    config: RunConfig,
    bar: Any,
) -> Progress:
    """One step after ``done``: the new state, a row per seed when the step is logged (the
    loss shown on ``bar``), the running max of κ̂ otherwise."""
    begin = time.perf_counter()
    state, record = experiment.algorithm.step(done.state, generator, measure=False)
    elapsed = done.elapsed + time.perf_counter() - begin
    window: torch.Tensor | None = (
        record.kappa_hat if done.window is None else torch.maximum(done.window, record.kappa_hat)
    )
    rows = done.rows
    if state.step % config.log_every == 0 or state.step == config.steps:
        rows = rows + metric_rows(experiment, state, window=window)
        window = None
        loss = sum(row["loss"] for row in rows[-config.seeds :]) / config.seeds
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
    return Progress(state, rows, window, elapsed, generator.get_state())

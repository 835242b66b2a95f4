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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist

from trilemma._device import check_device
from trilemma._files import write_csv
from trilemma._provenance import write_meta
from trilemma.accountants import worker_noise_std
from trilemma.dgd.config import RunConfig
from trilemma.dgd.data import ClassificationData, load_classification, split_workers
from trilemma.dgd.distributed import process_shard
from trilemma.dgd.mlp import MLPClassifier
from trilemma.dgd.problems import SoftmaxRegression
from trilemma.dgd.runner import RobustDGD, RunState

if TYPE_CHECKING:
    from trilemma.decentralized import GossipTraining

__all__ = ["Experiment", "TrainingResult", "build_experiment", "holdout", "train"]

_CHECKPOINT, _METRICS, _META = "checkpoint.pt", "metrics.csv", "meta.json"


def holdout(
    data: ClassificationData, *, fraction: float, seed: int
) -> tuple[ClassificationData, ClassificationData]:
    """(train, test): a uniformly random share ``fraction`` of the examples held out."""
    order = np.random.default_rng(seed).permutation(len(data.labels))
    cut = round(fraction * len(order))
    test, train = order[:cut], order[cut:]
    return (
        ClassificationData(data.features[train], data.labels[train], data.classes),
        ClassificationData(data.features[test], data.labels[test], data.classes),
    )


@dataclass(frozen=True)
class Experiment:
    """What a config builds: the problem, the algorithm on this process's shard, the start
    θ_0 ``(seeds, P)``, the per-worker noise std and the evaluation sets."""

    problem: SoftmaxRegression | MLPClassifier
    algorithm: RobustDGD | GossipTraining
    theta0: torch.Tensor
    noise_std: float
    train_set: tuple[torch.Tensor, torch.Tensor]
    test_set: tuple[torch.Tensor, torch.Tensor] | None


def build_experiment(config: RunConfig, *, distributed: bool = False) -> Experiment:
    """Load and split the data, build the problem and the algorithm of ``config``.

    With ``distributed`` (an initialised default process group), the algorithm computes only
    this rank's shard of honest workers.
    """
    device = check_device(config.device)
    dtype = getattr(torch, config.dtype)
    data = load_classification(config.dataset)
    train_data, test_data = holdout(data, fraction=config.test_fraction, seed=config.seed)
    features, labels = split_workers(
        train_data,
        workers=config.workers,
        per_worker=config.per_worker,
        kind=config.split,
        alpha=config.alpha,
        gamma=config.similarity,
        seed=config.seed,
    )
    features, labels = features.to(device=device, dtype=dtype), labels.to(device)
    problem: SoftmaxRegression | MLPClassifier
    start_generator = torch.Generator().manual_seed(config.seed)
    if config.model == "logistic":
        problem = SoftmaxRegression(features, labels, classes=data.classes, ridge=config.ridge)
        theta0 = torch.zeros(config.seeds, problem.dimension, dtype=dtype, device=device)
    else:
        problem = MLPClassifier(
            features, labels, classes=data.classes, hidden=config.hidden, ridge=config.ridge
        )
        theta0 = problem.initial_parameters(start_generator, batch_shape=(config.seeds,))
    algorithm: RobustDGD | GossipTraining
    if config.graph is not None:
        algorithm, noise_std = _gossip(config, problem, distributed)
    else:
        noise_std = 0.0
        if config.epsilon is not None:
            noise_std = worker_noise_std(
                epsilon=config.epsilon,
                delta=config.delta,
                steps=config.steps,
                local_size=config.per_worker,
                clip=config.clip,
                batch_size=config.batch_size,
            )
        algorithm = RobustDGD(
            problem,
            rule=config.rule,
            f=config.f,
            attack=config.attack if config.f > 0 else None,
            lr=config.lr,
            batch_size=config.batch_size,
            clip=config.clip,
            noise_std=noise_std,
            momentum=config.momentum,
            shard=process_shard(problem.workers) if distributed else None,
        )

    def as_tensors(part: ClassificationData) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(part.features).to(device=device, dtype=dtype)
        return x, torch.from_numpy(part.labels).to(device)

    return Experiment(
        problem=problem,
        algorithm=algorithm,
        theta0=theta0.to(device=device, dtype=dtype),
        noise_std=noise_std,
        train_set=(features.flatten(0, 1), labels.flatten()),
        test_set=as_tensors(test_data) if len(test_data.labels) else None,
    )


def _gossip(
    config: RunConfig, problem: SoftmaxRegression | MLPClassifier, distributed: bool
) -> tuple[GossipTraining, float]:
    """The decentralized algorithm of a config with a ``graph`` and its local noise σ: DECOR's
    calibrated pair at ``epsilon`` (example level, b of m without replacement), or the
    config's σ and σ_cor."""
    from trilemma.decentralized import DecentralizedSGD, GossipTraining, calibrate_decor

    sigma, sigma_cor = config.sigma, config.sigma_cor
    if config.epsilon is not None:
        noise = calibrate_decor(
            config.graph,
            target_epsilon=config.epsilon,
            clip=config.clip,
            steps=config.steps,
            delta=config.delta,
            mixing=config.mixing,
            local_size=config.per_worker,
            batch_size=config.batch_size or config.per_worker,
        )
        sigma, sigma_cor = noise.sigma, noise.sigma_cor
    runner = DecentralizedSGD(
        problem,
        config.graph,
        lr=config.lr,
        mixing=config.mixing,
        batch_size=config.batch_size,
        clip=config.clip,
        sigma=sigma,
        sigma_cor=sigma_cor,
        shard=process_shard(problem.workers) if distributed else None,
    )
    return GossipTraining(runner), sigma


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
    folder = _RunFolder.of(config, experiment, Path(out) / config.name, distributed)
    begin = folder.resume if resume else folder.start
    done = begin(experiment, generator)
    if distributed:  # every rank has checked the folder before rank 0 writes to it
        dist.barrier()
    folder.save(done, "running" if done.state.step < config.steps else "finished")
    from tqdm.auto import tqdm

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
    return TrainingResult(folder=folder.path, state=done.state, rows=done.rows)


@dataclass(frozen=True)
class _Progress:
    """A finished step: the state, the rows logged so far, the running max of κ̂ since the
    last row, the compute time spent and the generator state after the step."""

    state: RunState
    rows: list[dict[str, Any]]
    window: torch.Tensor | None
    elapsed: float
    generator: torch.Tensor


@dataclass(frozen=True)
class _RunFolder:
    """The files of a run: ``path``, the config, the meta.json fields fixed for the whole run,
    and whether this process writes (rank 0)."""

    path: Path
    config: RunConfig
    meta: dict[str, Any]
    writer: bool

    @classmethod
    def of(
        cls, config: RunConfig, experiment: Experiment, path: Path, distributed: bool
    ) -> _RunFolder:
        algorithm = experiment.algorithm
        meta = {
            "config": config.to_dict(),
            "noise_std": experiment.noise_std,
            "sigma_cor": 0.0 if config.graph is None else algorithm.runner.sigma_cor,
            "world_size": dist.get_world_size() if distributed else 1,
        }
        writer = not distributed or dist.get_rank() == 0
        return cls(path, config, meta, writer)

    def start(self, experiment: Experiment, generator: torch.Generator) -> _Progress:
        """Step 0 of a new run; refuses a folder that already holds a checkpoint."""
        if (self.path / _CHECKPOINT).exists():
            raise FileExistsError(
                f"{self.path} already holds a run: pass resume=True (--resume) or another name"
            )
        state = experiment.algorithm.start(experiment.theta0)
        rows = _rows(experiment, state, window=None)
        return _Progress(state, rows, None, 0.0, generator.get_state())

    def resume(self, experiment: Experiment, generator: torch.Generator) -> _Progress:
        """The progress of the checkpoint, ``generator`` set to its state."""
        checkpoint = self.path / _CHECKPOINT
        if not checkpoint.is_file():
            raise FileNotFoundError(f"resume=True but {checkpoint} does not exist")
        state, saved = RunState.load(checkpoint, map_location=experiment.algorithm.device)
        _check_resumable(RunConfig.from_mapping(saved["config"]), self.config)
        generator.set_state(saved["generator"])
        return _Progress(
            state, saved["rows"], saved["window"], saved["elapsed"], saved["generator"]
        )

    def save(self, progress: _Progress, status: str) -> None:
        """Write checkpoint.pt, metrics.csv and meta.json (rank 0 only)."""
        if not self.writer:
            return
        state = progress.state
        state.save(
            self.path / _CHECKPOINT,
            config=self.config.to_dict(),
            generator=progress.generator,
            rows=progress.rows,
            window=progress.window,
            elapsed=progress.elapsed,
        )
        write_csv(self.path / _METRICS, progress.rows)
        speed = state.step / progress.elapsed if progress.elapsed > 0 else math.nan
        fields = self.meta | {
            "status": status,
            "steps_done": state.step,
            "steps_per_second": round(speed, 3),
        }
        write_meta(
            self.path / _META,
            fields,
            device=self.config.device,
            wall_time_s=progress.elapsed,
            time_key="updated_utc",
        )


def _advance(
    done: _Progress,
    experiment: Experiment,
    generator: torch.Generator,
    config: RunConfig,
    bar: Any,
) -> _Progress:
    """One step after ``done``: the new state, a row per seed when the step is logged (the
    loss shown on ``bar``), the running max of κ̂ otherwise."""
    begin = time.perf_counter()
    state, record = experiment.algorithm.step(done.state, generator, measure=False)
    elapsed = done.elapsed + time.perf_counter() - begin
    window = (
        record.kappa_hat if done.window is None else torch.maximum(done.window, record.kappa_hat)
    )
    rows = done.rows
    if state.step % config.log_every == 0 or state.step == config.steps:
        rows = rows + _rows(experiment, state, window=window)
        window = None
        loss = sum(row["loss"] for row in rows[-config.seeds :]) / config.seeds
        bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
    return _Progress(state, rows, window, elapsed, generator.get_state())


def _check_resumable(saved: RunConfig, config: RunConfig) -> None:
    differences = {
        key: (value, getattr(config, key))
        for key, value in saved.to_dict().items()
        if value != getattr(config, key) and not (key == "steps" and saved.epsilon is None)
    }
    if differences:
        listed = ", ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in differences.items())
        raise ValueError(f"cannot resume: the config changed ({listed})")


def _rows(
    experiment: Experiment, state: RunState, *, window: torch.Tensor | None
) -> list[dict[str, Any]]:
    """One metrics row per seed at θ_t."""
    algorithm, problem = experiment.algorithm, experiment.problem
    theta = state.theta if isinstance(algorithm, RobustDGD) else state.theta.mean(dim=-2)
    loss, norm = (value.tolist() for value in algorithm.measure(state))
    train_accuracy = problem.accuracy(theta, *experiment.train_set).tolist()
    test_accuracy = (
        problem.accuracy(theta, *experiment.test_set).tolist()
        if experiment.test_set is not None
        else [math.nan] * len(loss)
    )
    kappa = [math.nan] * len(loss) if window is None else window.tolist()
    return [
        {
            "step": state.step,
            "seed": index,
            "loss": loss[index],
            "gradient_norm2": norm[index],
            "kappa_hat_max": kappa[index],
            "train_accuracy": train_accuracy[index],
            "test_accuracy": test_accuracy[index],
        }
        for index in range(len(loss))
    ]

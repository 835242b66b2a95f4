"""The folder of a run, ``<out>/<name>/``: ``checkpoint.pt``, ``metrics.csv`` and
``meta.json`` (:mod:`trilemma.dgd.training`), each replaced atomically, and the metrics rows.

:class:`Progress` is a finished step as the folder stores it; :class:`RunFolder` starts a new
run, resumes one from its checkpoint and saves the three files (rank 0 only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from trilemma._files import write_csv
from trilemma._provenance import write_meta
from trilemma.dgd.config import RunConfig
from trilemma.dgd.experiment import Experiment
from trilemma.dgd.runner import RobustDGD
from trilemma.dgd.state import RunState

__all__ = ["Progress", "RunFolder", "metric_rows"]

_CHECKPOINT, _METRICS, _META = "checkpoint.pt", "metrics.csv", "meta.json"


@dataclass(frozen=True)
class Progress:
    """A finished step: the state, the rows logged so far, the running max of κ̂ since the
    last row, the compute time spent and the generator state after the step."""

    state: RunState
    rows: list[dict[str, Any]]
    window: torch.Tensor | None
    elapsed: float
    generator: torch.Tensor


@dataclass(frozen=True)
class RunFolder:
    """The files of a run: ``path``, the config, the meta.json fields fixed for the whole run,
    and whether this process writes (rank 0)."""

    path: Path
    config: RunConfig
    meta: dict[str, Any]
    writer: bool

    @classmethod
    def of(
        cls, config: RunConfig, experiment: Experiment, path: Path, distributed: bool
    ) -> RunFolder:
        """The folder ``path`` of ``config`` run as ``experiment``."""
        algorithm = experiment.algorithm
        meta = {
            "config": config.to_dict(),
            "noise_std": experiment.noise_std,
            "sigma_cor": 0.0 if isinstance(algorithm, RobustDGD) else algorithm.runner.sigma_cor,
            "world_size": dist.get_world_size() if distributed else 1,
        }
        writer = not distributed or dist.get_rank() == 0
        return cls(path, config, meta, writer)

    def start(self, experiment: Experiment, generator: torch.Generator) -> Progress:
        """Step 0 of a new run; refuses a folder that already holds a checkpoint."""
        if (self.path / _CHECKPOINT).exists():
            raise FileExistsError(
                f"{self.path} already holds a run: pass resume=True (--resume) or another name"
            )
        state = experiment.algorithm.start(experiment.theta0)
        rows = metric_rows(experiment, state, window=None)
        return Progress(state, rows, None, 0.0, generator.get_state())

    def resume(self, experiment: Experiment, generator: torch.Generator) -> Progress:
        """The progress of the checkpoint, ``generator`` set to its state."""
        checkpoint = self.path / _CHECKPOINT
        if not checkpoint.is_file():
            raise FileNotFoundError(f"resume=True but {checkpoint} does not exist")
        state, saved = RunState.load(checkpoint, map_location=experiment.algorithm.device)
        _check_resumable(RunConfig.from_mapping(saved["config"]), self.config)
        generator.set_state(saved["generator"])
        return Progress(state, saved["rows"], saved["window"], saved["elapsed"], saved["generator"])

    def save(self, progress: Progress, status: str) -> None:
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


def _check_resumable(saved: RunConfig, config: RunConfig) -> None:
    differences = {
        key: (value, getattr(config, key))
        for key, value in saved.to_dict().items()
        if value != getattr(config, key) and not (key == "steps" and saved.epsilon is None)
    }
    if differences:
        listed = ", ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in differences.items())
        raise ValueError(f"cannot resume: the config changed ({listed})")


def metric_rows(
    experiment: Experiment, state: RunState, *, window: torch.Tensor | None
) -> list[dict[str, Any]]:
    """One metrics row per seed at θ_t (``window``: the max of κ̂ since the previous row)."""
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

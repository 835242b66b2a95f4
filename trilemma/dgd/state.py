"""What a run of :class:`~trilemma.dgd.RobustDGD` carries from step to step and records: the
honest workers this process computes (:class:`Shard`), the state a checkpoint holds
(:class:`RunState`), what one step measured (:class:`StepRecord`) and what a whole run recorded
(:class:`Trajectory`). The decentralized runner (:mod:`trilemma.decentralized`) shares them."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trilemma._files import write_binary

__all__ = ["RunState", "Shard", "StepRecord", "Trajectory"]


@dataclass(frozen=True)
class Shard:
    """The honest workers ``start:stop`` this process computes, and how to assemble all h.

    Attributes
    ----------
    start, stop : int
        Slice of the honest workers.
    gather : callable
        ``gather(local, dim)`` concatenates every process's slice along ``dim`` (the worker
        dimension) in worker order; identity for a single process.
    """

    start: int
    stop: int
    gather: Callable[[torch.Tensor, int], torch.Tensor]


@dataclass(frozen=True)
class RunState:
    """Everything the next step depends on besides the generator: the step count t, θ_t and the
    momentum buffers (None before the first step or without momentum). ``gradients`` caches
    this process's honest workers' ∇L_i(θ_t) when the previous step computed them along with
    L_H(θ_t) (None: computed when needed; never part of a checkpoint)."""

    step: int
    theta: torch.Tensor
    honest_buffer: torch.Tensor | None = None
    byzantine_buffer: torch.Tensor | None = None
    gradients: torch.Tensor | None = None

    def save(
        self, path: str | os.PathLike[str], *, config: Mapping[str, Any], **extra: Any
    ) -> Path:
        """Write a checkpoint to ``path`` atomically (:func:`torch.save`).

        It holds the run's ``config``, t, θ_t and the momentum buffers, then ``extra`` (what
        else the next step needs, e.g. the generator state); ``gradients`` is a cache and is
        left out.

        Returns
        -------
        Path
            ``path``.
        """
        checkpoint = {
            "config": dict(config),
            "step": self.step,
            "theta": self.theta,
            "honest_buffer": self.honest_buffer,
            "byzantine_buffer": self.byzantine_buffer,
            **extra,
        }
        return write_binary(path, lambda stream: torch.save(checkpoint, stream))

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, map_location: str | torch.device | None = None
    ) -> tuple[RunState, dict[str, Any]]:
        """Read a checkpoint written by :meth:`save`.

        Returns
        -------
        (RunState, dict)
            The state and the rest of the checkpoint: ``config`` and the ``extra`` keys.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        """
        rest = torch.load(path, map_location=map_location, weights_only=False)
        state = cls(
            rest.pop("step"),
            rest.pop("theta"),
            rest.pop("honest_buffer"),
            rest.pop("byzantine_buffer"),
        )
        return state, rest


@dataclass(frozen=True)
class StepRecord:
    """What step t measured, each ``(...)``: the robustness ratio κ̂_t (see
    :class:`Trajectory`), and unless the step was told not to measure, ‖∇L_H(θ_t)‖² and
    L_H(θ_{t+1})."""

    kappa_hat: torch.Tensor
    gradient_norm2: torch.Tensor | None = None
    objective: torch.Tensor | None = None


@dataclass(frozen=True)
class Trajectory:
    """What a run recorded.

    Attributes
    ----------
    objective : torch.Tensor
        L_H(θ_t) for t = 0..T, ``(T + 1, ...)``.
    gradient_norm2 : torch.Tensor
        ‖∇L_H(θ_t)‖², ``(T + 1, ...)``.
    kappa_hat : torch.Tensor
        Per step, ‖F − ḡ‖² / ((1/h) Σ ‖g_i − ḡ‖²) over the honest messages g_i (their mean ḡ is
        ∇L_H(θ_t) for D-GD): the robustness ratio the rule actually paid (0 when the honest
        messages coincide and F returns them), ``(T, ...)``.
    theta : torch.Tensor
        θ_T, ``(..., P)``.
    iterates : torch.Tensor or None
        θ_0..θ_T, ``(T + 1, ..., P)``, when the run was asked to keep them (e.g. to sample the
        (G, B) frontier where the algorithm went); None otherwise.
    """

    objective: torch.Tensor
    gradient_norm2: torch.Tensor
    kappa_hat: torch.Tensor
    theta: torch.Tensor
    iterates: torch.Tensor | None = None

"""A decentralized run behind the interface :func:`trilemma.dgd.train` drives, so that
``trilemma run`` with a ``graph`` writes the same records (metrics.csv, meta.json,
checkpoint.pt) and resumes bit-identically on CPU (a round depends only on the models θ_t and
the generator, both in the checkpoint).

The state carried is :class:`trilemma.dgd.RunState` with θ of shape ``(seeds, n, P)`` (every
node's model); the rows are measured at the network average θ̄ (loss L(θ̄), ‖∇L(θ̄)‖², the
accuracies); κ̂ has no meaning without a robust rule and is NaN.
"""

from __future__ import annotations

import math

import torch

from trilemma.decentralized.runner import DecentralizedSGD, GossipState
from trilemma.dgd.runner import RunState, StepRecord

__all__ = ["GossipTraining"]


class GossipTraining:
    """:class:`~trilemma.decentralized.DecentralizedSGD` with ``start``, ``step``, ``measure``
    and ``device`` as :class:`trilemma.dgd.RobustDGD` has them.

    Parameters
    ----------
    runner : DecentralizedSGD
        The algorithm (its σ and σ_cor are already set).
    """

    def __init__(self, runner: DecentralizedSGD) -> None:
        if not isinstance(runner, DecentralizedSGD):
            raise TypeError(f"runner must be a DecentralizedSGD, got {type(runner).__name__}")
        self.runner = runner
        self.problem = runner.problem

    @property
    def device(self) -> torch.device:
        """Device of the data and of θ."""
        return self.problem.features.device

    def start(self, theta0: torch.Tensor | None = None) -> RunState:
        """θ_0 ``(..., P)`` at every node: a state with θ ``(..., n, P)``."""
        return RunState(step=0, theta=self.runner.start(theta0).theta)

    def step(
        self, state: RunState, generator: torch.Generator | None = None, *, measure: bool = True
    ) -> tuple[RunState, StepRecord]:
        """One round; the record holds κ̂ = NaN (and, with ``measure``, L(θ̄_{t+1}))."""
        new, _ = self.runner.step(GossipState(state.step, state.theta), generator, measure=False)
        kappa = torch.full(state.theta.shape[:-2], math.nan, dtype=state.theta.dtype)
        if not measure:
            return RunState(new.step, new.theta), StepRecord(kappa_hat=kappa)
        objective, norm = self.measure(RunState(new.step, new.theta))
        record = StepRecord(kappa_hat=kappa, gradient_norm2=norm, objective=objective)
        return RunState(new.step, new.theta), record

    def measure(self, state: RunState) -> tuple[torch.Tensor, torch.Tensor]:
        """(L(θ̄), ‖∇L(θ̄)‖²) at the network average θ̄, each ``(...)``."""
        losses, gradients = self.problem.losses_and_gradients(state.theta.mean(dim=-2))
        return losses.mean(dim=-1), gradients.mean(dim=-2).square().sum(dim=-1)

"""The Byzantine workers of a :class:`~trilemma.dgd.RobustDGD` run, one object whatever they
do: :func:`byzantine_workers` turns the run's ``attack`` (a name or an
:class:`~trilemma.attacks.Attack`, through :func:`trilemma.attacks.resolve`) into

- :class:`VectorAttack`: the f workers send ``attack(honest messages, f)``;
- :class:`PoisonedWorkers`: the f workers run the honest algorithm (gradients, momentum) on
  poisoned data, for ``"label_flipping"`` the data of honest workers 0..f−1 with labels
  y ↦ K − 1 − y (Allouah et al., AISTATS 2023, arXiv:2302.01772, attack "LF").

Both answer ``send(honest, state, momentum) → (messages (..., f, P), momentum buffer or None)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeAlias

import torch

from trilemma import attacks
from trilemma.dgd.problems import Problem
from trilemma.dgd.state import RunState

__all__ = [
    "Byzantine",
    "PoisonedWorkers",
    "VectorAttack",
    "attack_names",
    "average",
    "byzantine_workers",
]


def average(buffer: torch.Tensor | None, messages: torch.Tensor, beta: float) -> torch.Tensor:
    """Momentum m ← βm + (1 − β)g, started at the first message."""
    return messages if buffer is None else beta * buffer + (1 - beta) * messages


@dataclass(frozen=True)
class VectorAttack:
    """Byzantine workers that send ``attack(honest, f)``: vectors computed from the honest
    messages, no momentum of their own."""

    attack: attacks.Attack
    f: int

    def send(
        self, honest: torch.Tensor, state: RunState, momentum: float
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The f messages ``(..., f, P)`` and no momentum buffer."""
        return self.attack(honest, self.f), None


@dataclass(frozen=True)
class PoisonedWorkers:
    """Byzantine workers that compute honest full gradients on poisoned ``data`` (one worker per
    worker of ``data``), averaged through their own momentum buffers."""

    data: Problem

    def send(
        self, honest: torch.Tensor, state: RunState, momentum: float
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The f messages ``(..., f, P)`` at θ_t and their momentum buffer (None without
        momentum)."""
        byzantine = self.data.gradients(state.theta)
        if momentum > 0:
            byzantine = average(state.byzantine_buffer, byzantine, momentum)
            return byzantine, byzantine
        return byzantine, None


Byzantine: TypeAlias = VectorAttack | PoisonedWorkers
"""What the Byzantine workers of a run do."""


def attack_names() -> tuple[str, ...]:
    """The attack names a run takes, sorted: :func:`trilemma.attacks.available` (read now, so
    attacks registered since are included) and ``"label_flipping"``."""
    return tuple(sorted((*attacks.available(), attacks.LABEL_FLIPPING)))


def byzantine_workers(
    problem: Problem, attack: str | attacks.Attack | None, *, rule: attacks.Rule, f: int
) -> Byzantine | None:
    """The Byzantine workers of a run on ``problem`` with f of them, ``attack`` resolved against
    ``rule`` by :func:`trilemma.attacks.resolve` (the registry read now, not at import, so that
    attacks registered since are accepted). None when f = 0 (``attack`` is still checked).

    Raises
    ------
    ValueError
        If f > 0 and ``attack`` is None, if the name is unknown, or for ``"label_flipping"``
        if ``problem`` is not a classification problem (labels and classes).
    """
    if f > 0 and attack is None:
        raise ValueError("f > 0 needs an attack: say what the Byzantine workers send")
    resolved = attacks.resolve(attack, rule=rule, choices=attack_names())
    if isinstance(resolved, attacks.LabelFlipping):
        poisoned = _label_flipped(problem, resolved, f)
        return None if f == 0 else PoisonedWorkers(poisoned)
    return None if f == 0 or resolved is None else VectorAttack(resolved, f)


def _label_flipped(problem: Problem, flipping: attacks.LabelFlipping, f: int) -> Problem:
    """The data of honest workers 0..f−1 with labels y ↦ K − 1 − y, as a problem."""
    labels, classes = getattr(problem, "labels", None), getattr(problem, "classes", None)
    if labels is None or classes is None:
        raise ValueError(
            f"attack='{attacks.LABEL_FLIPPING}' needs a classification problem (labels and "
            f"classes), got {type(problem).__name__}"
        )
    if f == 0:
        return problem
    features, flipped = flipping.poison(problem.features, labels, classes, f=f)
    return dataclasses.replace(problem, features=features, labels=flipped)

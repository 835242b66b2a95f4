"""Robust distributed gradient descent, batched: all workers' gradients in one call, any
leading batch dimensions of θ (seeds, configurations) carried through every step.

Step t: each honest worker computes its message — the full gradient ∇L_i(θ_t) (D-GD), or the
mean over a batch of b of its m examples (D-SGD), each per-example gradient clipped to norm C
and Gaussian noise N(0, s²I) added (DP, as in SAFE-DSHB: Allouah et al., ICML 2023,
arXiv:2302.04787), then averaged with its momentum buffer m_i ← β m_i + (1 − β) g_i (D-SHB);
the f Byzantine workers send ``attack(messages, f)``; the server moves
θ_{t+1} = θ_t − γ F(messages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from trilemma import aggregators, attacks
from trilemma._validation import check_int, check_real
from trilemma.dgd.problems import Problem

__all__ = ["Trajectory", "robust_dgd"]

Rule = Callable[[torch.Tensor], torch.Tensor]


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


def robust_dgd(
    problem: Problem,
    *,
    rule: str | Rule,
    f: int = 0,
    attack: str | attacks.Attack | None = None,
    steps: int,
    lr: float,
    theta0: torch.Tensor | None = None,
    batch_size: int | None = None,
    clip: float | None = None,
    noise_std: float = 0.0,
    momentum: float = 0.0,
    generator: torch.Generator | None = None,
    keep_iterates: bool = False,
) -> Trajectory:
    """Run T steps of robust D-GD on ``problem``.

    Parameters
    ----------
    problem : Problem
        The h honest workers' losses.
    rule : str or callable
        Aggregation rule: a name of :func:`trilemma.aggregators.get` (built with ``f``) or a
        callable ``(..., n, P) → (..., P)``.
    f : int
        Byzantine workers (n = h + f, 2f < n).
    attack : str, Attack or None
        What the Byzantine workers send; a name of :func:`trilemma.attacks.get`. ``None`` with
        f > 0 is refused (say what they do).
    steps : int
        T ≥ 1.
    lr : float
        Step size γ > 0 (1/L for the bounds of :mod:`trilemma.bounds.heterogeneity`).
    theta0 : torch.Tensor, optional
        Start ``(..., P)`` (zeros by default); leading dimensions are batch dimensions.
    batch_size : int, optional
        b examples per worker and step, drawn without replacement (None: full gradients).
    clip : float, optional
        Per-example clipping norm C (None: no clipping).
    noise_std : float
        Std s of the Gaussian noise each honest worker adds to its averaged gradient, e.g.
        :func:`trilemma.accountants.worker_noise_std` (0: none).
    momentum : float
        β ∈ [0, 1) of the worker momentum m ← βm + (1 − β)g (0: none).
    generator : torch.Generator, optional
        Source of batches and noise (needed when either is used).
    keep_iterates : bool
        Record every θ_t in :attr:`Trajectory.iterates` (memory (T + 1) × θ).

    Returns
    -------
    Trajectory

    Examples
    --------
    >>> from trilemma.dgd import LeastSquares
    >>> X = torch.eye(2, dtype=torch.float64).expand(3, 2, 2)
    >>> y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    >>> run = robust_dgd(LeastSquares(X, y), rule="mean", steps=50, lr=1.0)
    >>> run.theta  # the mean of the workers' optima, reached in one step at γ = 1/L
    tensor([0.6667, 0.6667], dtype=torch.float64)
    """
    f = check_int("f", f, low=0)
    n = problem.workers + f
    if 2 * f >= n:
        raise ValueError(f"f={f} must satisfy 2f < n={n} (h={problem.workers} honest workers)")
    steps = check_int("steps", steps, low=1)
    gamma = check_real("lr", lr, low=0, low_open=True)
    aggregate = aggregators.get(rule, f=f) if isinstance(rule, str) else rule
    if not callable(aggregate):
        raise TypeError(f"rule must be a name or a callable, got {type(rule).__name__}")
    if f > 0 and attack is None:
        raise ValueError("f > 0 needs an attack: say what the Byzantine workers send")
    byzantine = attacks.get(attack) if isinstance(attack, str) else attack
    m = problem.features.shape[1]
    b = None if batch_size is None else check_int("batch_size", batch_size, low=1, high=m)
    c = None if clip is None else check_real("clip", clip, low=0, low_open=True)
    s = check_real("noise_std", noise_std, low=0)
    beta = check_real("momentum", momentum, low=0, high=1, high_open=True)
    stochastic = b is not None or c is not None or s > 0
    if stochastic and generator is None:
        raise ValueError("batches, clipping or noise need a torch.Generator (generator=)")
    dtype = problem.dtype
    theta = torch.zeros(problem.dimension, dtype=dtype) if theta0 is None else theta0.to(dtype)
    objective, norms, ratios = [problem.objective(theta)], [], []
    buffer: torch.Tensor | None = None
    iterates = [theta] if keep_iterates else None
    for _ in range(steps):
        full = problem.gradients(theta)
        norms.append(full.mean(dim=-2).square().sum(dim=-1))
        honest = _messages(problem, theta, b, c, s, generator) if stochastic else full
        if beta > 0:
            buffer = honest if buffer is None else beta * buffer + (1 - beta) * honest
            honest = buffer
        mean = honest.mean(dim=-2)
        sent = honest if f == 0 else torch.cat([honest, byzantine(honest, f)], dim=-2)
        update = aggregate(sent)
        spread = (honest - mean.unsqueeze(-2)).square().sum(dim=-1).mean(dim=-1)
        error = (update - mean).square().sum(dim=-1)
        ratios.append(
            torch.where(
                spread > 0, error / spread.clamp(min=1e-300), torch.where(error > 0, torch.inf, 0.0)
            )
        )
        theta = theta - gamma * update
        objective.append(problem.objective(theta))
        if iterates is not None:
            iterates.append(theta)
    norms.append(problem.gradients(theta).mean(dim=-2).square().sum(dim=-1))
    return Trajectory(
        objective=torch.stack(objective),
        gradient_norm2=torch.stack(norms),
        kappa_hat=torch.stack(ratios),
        theta=theta,
        iterates=None if iterates is None else torch.stack(iterates),
    )


def _messages(
    problem: Problem,
    theta: torch.Tensor,
    batch: int | None,
    clip: float | None,
    noise_std: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Honest messages of one stochastic step: batch, clip, average, add noise."""
    h, m = problem.features.shape[:2]
    b = m if batch is None else batch
    keys = torch.rand((*theta.shape[:-1], h, m), generator=generator, dtype=torch.float64)
    index = keys.argsort(dim=-1)[..., :b].to(theta.device)
    per_example = problem.example_gradients(theta, index)
    if clip is not None:
        norms = torch.linalg.vector_norm(per_example, dim=-1, keepdim=True)
        per_example = per_example * torch.clamp(clip / norms.clamp(min=1e-300), max=1.0)
    messages = per_example.mean(dim=-2)
    if noise_std > 0:
        noise = torch.randn(messages.shape, generator=generator, dtype=messages.dtype)
        messages = messages + noise_std * noise.to(messages.device)
    return messages

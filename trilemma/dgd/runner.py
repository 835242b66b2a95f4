"""Robust distributed gradient descent, batched: all workers' gradients in one call, any
leading batch dimensions of θ (seeds, configurations) carried through every step.

Step t: each honest worker computes its message — the full gradient ∇L_i(θ_t) (D-GD), or the
mean over a batch of b of its m examples (D-SGD), each per-example gradient clipped to norm C
and Gaussian noise N(0, s²I) added (DP, as in SAFE-DSHB: Allouah et al., ICML 2023,
arXiv:2302.04787), then averaged with its momentum buffer m_i ← β m_i + (1 − β) g_i (D-SHB);
the f Byzantine workers send ``attack(messages, f)`` — or, for ``"label_flipping"``, the
gradients of the first f honest workers' data with labels y ↦ K − 1 − y, through their own
momentum buffers (Allouah et al., AISTATS 2023, arXiv:2302.01772; both kinds in
:mod:`trilemma.dgd.byzantine`); the server moves θ_{t+1} = θ_t − γ F(messages).

:class:`RobustDGD` is the algorithm as a state machine (``start``, ``step``) so that a run can
be checkpointed between steps and resumed bit-identically (:mod:`trilemma.dgd.training`), and
split over processes that each compute a slice of the honest workers (:class:`Shard`,
:mod:`trilemma.dgd.distributed`). Every random draw (batches, noise) is made for all h workers
from one generator whatever the slice, so a sharded run follows the single-process trajectory.
:func:`robust_dgd` runs T steps in memory.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from trilemma import aggregators, attacks
from trilemma._validation import check_int, check_real, check_workers
from trilemma.dgd.byzantine import attack_names, average, byzantine_workers
from trilemma.dgd.problems import Problem
from trilemma.dgd.state import RunState, Shard, StepRecord, Trajectory

__all__ = ["ATTACKS", "RobustDGD", "RunState", "Shard", "StepRecord", "Trajectory", "robust_dgd"]

Rule = Callable[[torch.Tensor], torch.Tensor]
ATTACKS: tuple[str, ...] = attack_names()
"""Attack names the runner takes at import: :func:`trilemma.attacks.available` and
``"label_flipping"`` (the optimal line-search attacks are built against the run's rule);
:func:`trilemma.dgd.byzantine.attack_names` reads the registry again."""


class RobustDGD:
    """Robust D-GD / D-SGD / D-SHB / SAFE-DSHB on ``problem`` (module docstring).

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
        What the Byzantine workers send: one of :data:`ATTACKS` (or an attack registered
        since with :func:`trilemma.attacks.register`) or an :class:`~trilemma.attacks.Attack`.
        ``None`` with f > 0 is refused (say what they do).
    lr : float
        Step size γ > 0 (1/L for the bounds of :mod:`trilemma.bounds.heterogeneity`).
    batch_size : int, optional
        b examples per worker and step, drawn without replacement (None: full gradients).
    clip : float, optional
        Per-example clipping norm C (None: no clipping).
    noise_std : float
        Std s of the Gaussian noise each honest worker adds to its averaged gradient, e.g.
        :func:`trilemma.accountants.worker_noise_std` (0: none).
    momentum : float
        β ∈ [0, 1) of the worker momentum m ← βm + (1 − β)g (0: none).
    shard : Shard, optional
        The honest workers this process computes (None: all of them).

    Attributes
    ----------
    byzantine : VectorAttack, PoisonedWorkers or None
        What the f Byzantine workers do, ``attack`` resolved once
        (:func:`trilemma.dgd.byzantine.byzantine_workers`); None when f = 0.
    """

    def __init__(
        self,
        problem: Problem,
        *,
        rule: str | Rule,
        f: int = 0,
        attack: str | attacks.Attack | None = None,
        lr: float,
        batch_size: int | None = None,
        clip: float | None = None,
        noise_std: float = 0.0,
        momentum: float = 0.0,
        shard: Shard | None = None,
    ) -> None:
        self.problem = problem
        self.f = check_int("f", f, low=0)
        check_workers(
            n=problem.workers + self.f, f=self.f, detail=f" (h={problem.workers} honest workers)"
        )
        self.lr = check_real("lr", lr, low=0, low_open=True)
        aggregate = aggregators.get(rule, f=self.f) if isinstance(rule, str) else rule
        if not callable(aggregate):
            raise TypeError(f"rule must be a name or a callable, got {type(rule).__name__}")
        self.aggregate = aggregate
        self.byzantine = byzantine_workers(problem, attack, rule=aggregate, f=self.f)
        m = problem.features.shape[1]
        self.batch_size = (
            None if batch_size is None else check_int("batch_size", batch_size, low=1, high=m)
        )
        self.clip = None if clip is None else check_real("clip", clip, low=0, low_open=True)
        self.noise_std = check_real("noise_std", noise_std, low=0)
        self.momentum = check_real("momentum", momentum, low=0, high=1, high_open=True)
        self.stochastic = self.batch_size is not None or self.clip is not None or self.noise_std > 0
        h = problem.workers
        if shard is None:
            shard = Shard(0, h, lambda local, dim: local)
        elif not 0 <= shard.start < shard.stop <= h:
            raise ValueError(f"shard {shard.start}:{shard.stop} must be a non-empty slice of 0:{h}")
        self.shard = shard
        self.local = (
            problem
            if (shard.start, shard.stop) == (0, h)
            else problem.restrict(shard.start, shard.stop)
        )

    def start(self, theta0: torch.Tensor | None = None) -> RunState:
        """State at t = 0: θ_0 = ``theta0`` ``(..., P)`` (zeros by default), no momentum yet."""
        dtype = self.problem.dtype
        if theta0 is None:
            theta = torch.zeros(self.problem.dimension, dtype=dtype, device=self.device)
        else:
            theta = theta0.to(dtype=dtype, device=self.device)
        if theta.shape[-1:] != (self.problem.dimension,):
            raise ValueError(
                f"theta0 must have shape (..., {self.problem.dimension}), got {tuple(theta.shape)}"
            )
        return RunState(step=0, theta=theta)

    @property
    def device(self) -> torch.device:
        """Device of the problem's data, and of θ."""
        return self.problem.features.device

    def measure(self, state: RunState) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_H(θ_t), ‖∇L_H(θ_t)‖²), each ``(...)``, from every process's workers: one pass
        over the data, or none for the gradients when ``state`` caches them."""
        if state.gradients is None:
            losses, local = self.local.losses_and_gradients(state.theta)
        else:
            losses, local = self.local.losses(state.theta), state.gradients
        gradient = self.shard.gather(local, -2).mean(dim=-2)
        return self.shard.gather(losses, -1).mean(dim=-1), gradient.square().sum(dim=-1)

    def step(
        self, state: RunState, generator: torch.Generator | None = None, *, measure: bool = True
    ) -> tuple[RunState, StepRecord]:
        """One step from ``state``; ``generator`` draws the batches and the noise (required when
        either is used; its state advances). ``measure=False`` skips ‖∇L_H(θ_t)‖² and
        L_H(θ_{t+1}) — for D-SGD the full gradients, about as costly as the step itself — and
        changes nothing else."""
        honest, gradient_norm2 = self._honest(state, generator, measure)
        honest_buffer = byzantine_buffer = None
        if self.momentum > 0:
            honest = honest_buffer = average(state.honest_buffer, honest, self.momentum)
        mean = honest.mean(dim=-2)
        sent = honest
        if self.byzantine is not None:
            byzantine, byzantine_buffer = self.byzantine.send(honest, state, self.momentum)
            sent = torch.cat([honest, byzantine], dim=-2)
        update = self.aggregate(sent)
        ratio = _kappa_hat(honest, mean, update)
        theta = state.theta - self.lr * update
        record, gradients = StepRecord(kappa_hat=ratio), None
        if measure:  # L_H(θ_{t+1}) and the next step's gradients from one pass
            losses, gradients = self.local.losses_and_gradients(theta)
            record = StepRecord(
                kappa_hat=ratio,
                gradient_norm2=gradient_norm2,
                objective=self.shard.gather(losses, -1).mean(dim=-1),
            )
        next_state = RunState(state.step + 1, theta, honest_buffer, byzantine_buffer, gradients)
        return next_state, record

    def _honest(
        self, state: RunState, generator: torch.Generator | None, measure: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The honest messages of the step from ``state`` ``(..., h, P)``, and ‖∇L_H(θ_t)‖² when
        ``measure`` (None otherwise)."""
        if not self.stochastic:
            full = self._full_gradients(state)
            return full, full.mean(dim=-2).square().sum(dim=-1) if measure else None
        if generator is None:
            raise ValueError("batches, clipping or noise need a torch.Generator (generator=)")
        norm2 = self._full_gradients(state).mean(dim=-2).square().sum(dim=-1) if measure else None
        return self._messages(state.theta, generator), norm2

    def _full_gradients(self, state: RunState) -> torch.Tensor:
        """Every honest worker's ∇L_i(θ_t) ``(..., h, P)`` (cached in ``state`` or computed)."""
        local = self.local.gradients(state.theta) if state.gradients is None else state.gradients
        return self.shard.gather(local, -2)

    def _messages(self, theta: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Honest messages of one stochastic step: batch, clip, average, add noise. The random
        keys and the noise are drawn for all h workers, then sliced to this shard."""
        h, m = self.problem.features.shape[:2]
        b = m if self.batch_size is None else self.batch_size
        start, stop = self.shard.start, self.shard.stop
        keys = torch.rand((*theta.shape[:-1], h, m), generator=generator, dtype=torch.float64)
        index = keys[..., start:stop, :].argsort(dim=-1)[..., :b].to(theta.device)
        per_example = self.local.example_gradients(theta, index)
        if self.clip is not None:
            norms = torch.linalg.vector_norm(per_example, dim=-1, keepdim=True)
            per_example = per_example * torch.clamp(self.clip / norms.clamp(min=1e-300), max=1.0)
        messages = per_example.mean(dim=-2)
        if self.noise_std > 0:
            shape = (*theta.shape[:-1], h, theta.shape[-1])
            noise = torch.randn(shape, generator=generator, dtype=messages.dtype)
            messages = messages + self.noise_std * noise[..., start:stop, :].to(messages.device)
        return self.shard.gather(messages, -2)


def _kappa_hat(honest: torch.Tensor, mean: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
    """‖F − ḡ‖² / ((1/h) Σ ‖g_i − ḡ‖²) over the honest messages g_i (:class:`Trajectory`):
    0 when both vanish, ∞ when only the spread does."""
    spread = (honest - mean.unsqueeze(-2)).square().sum(dim=-1).mean(dim=-1)
    error = (update - mean).square().sum(dim=-1)
    return torch.where(
        spread > 0, error / spread.clamp(min=1e-300), torch.where(error > 0, torch.inf, 0.0)
    )


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
    """Run T steps of robust D-GD on ``problem`` (:class:`RobustDGD` for the parameters).

    Parameters
    ----------
    problem, rule, f, attack, lr, batch_size, clip, noise_std, momentum
        As in :class:`RobustDGD`.
    steps : int
        T ≥ 1.
    theta0 : torch.Tensor, optional
        Start ``(..., P)`` (zeros by default); leading dimensions are batch dimensions.
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
    steps = check_int("steps", steps, low=1)
    algorithm = RobustDGD(
        problem,
        rule=rule,
        f=f,
        attack=attack,
        lr=lr,
        batch_size=batch_size,
        clip=clip,
        noise_std=noise_std,
        momentum=momentum,
    )
    state = algorithm.start(theta0)
    objective, norms, ratios = [algorithm.measure(state)[0]], [], []
    iterates = [state.theta] if keep_iterates else None
    for _ in range(steps):
        state, record = algorithm.step(state, generator)
        # step(measure=True) fills both
        assert record.objective is not None and record.gradient_norm2 is not None
        objective.append(record.objective)
        norms.append(record.gradient_norm2)
        ratios.append(record.kappa_hat)
        if iterates is not None:
            iterates.append(state.theta)
    norms.append(algorithm.measure(state)[1])
    return Trajectory(
        objective=torch.stack(objective),
        gradient_norm2=torch.stack(norms),
        kappa_hat=torch.stack(ratios),
        theta=state.theta,
        iterates=None if iterates is None else torch.stack(iterates),
    )

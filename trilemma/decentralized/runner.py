"""Decentralized SGD on a graph with DECOR's correlated noise, every node and seed batched.

Round t (Allouah, Koloskova, El Firdoussi, Jaggi, Guerraoui, ICML 2024, arXiv:2405.01031,
Alg. 1 "DECOR" [V: the reference code's ``worker.grad_descent`` then the weighted average]):

1. node i computes its gradient g_i at its own model θ_i — the mean over a batch of b of its m
   examples (all m without ``batch_size``), each example's gradient clipped to C
   (``clipping="example"``), or the node's mean gradient clipped to C (``clipping="node"``,
   user-level DP, as the reference's LIBSVM runs);
2. it adds its own noise N(0, σ² I) and, for every edge (j, k) with j < k, a fresh secret
   v_jk ~ N(0, σ_cor² w_jk I) that j adds and k subtracts: the secrets sum to zero over the
   network and their covariance across nodes is σ_cor² L per coordinate (L the weighted
   Laplacian), so the noise is N(0, σ² I + σ_cor² L) — what
   :class:`trilemma.accountants.SecLDPDpEvent` accounts;
3. half step θ_i − γ (g_i + noise_i), then gossip: θ ← W θ over the node dimension.

With σ_cor = 0 this is local-DP D-SGD; with W = 11ᵀ/n (``mixing="average"``) every node holds
the exact average, the secrets cancel and it is central-DP SGD with noise σ/√n on the mean
gradient (central DP at the budget of local noise σ_ldp takes σ = σ_ldp/√n, see
:mod:`trilemma.decentralized.calibration`).

Tensors: θ is ``(..., n, P)``; leading dimensions (seeds, configurations) are batch dimensions.
Each node's example gradients come from the problem of :mod:`trilemma.dgd` evaluated once on
the pooled data (one "worker" holding all n·m examples) with the node dimension as a batch
dimension of θ, so any :class:`~trilemma.dgd.Problem` whose ``example_gradients`` follows its
contract is run without a loop over nodes. Random draws per round, in this order, all from one
generator: batch keys ``(..., n, m)`` (only with ``batch_size``), local noise ``(..., n, P)``
(only when σ > 0), edge secrets ``(..., E, P)`` (only when σ_cor > 0) — the first two exactly
as :class:`trilemma.dgd.RobustDGD` draws them, so the two runners agree draw for draw.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from trilemma._validation import check_choice, check_int, check_real
from trilemma.accountants import as_topology
from trilemma.decentralized.mixing import edge_list, mixing_matrix
from trilemma.dgd.problems import Problem
from trilemma.dgd.runner import Shard

__all__ = [
    "CLIPPINGS",
    "DecentralizedSGD",
    "GossipRecord",
    "GossipState",
    "GossipTrajectory",
    "correlated_noise",
    "decentralized_sgd",
]

CLIPPINGS: tuple[str, ...] = ("example", "node")


def correlated_noise(
    secrets: torch.Tensor, heads: torch.Tensor, tails: torch.Tensor, nodes: int
) -> torch.Tensor:
    """Each edge's secret ``secrets (..., E, P)`` added at its head and subtracted at its tail:
    ``(..., n, P)``, summing to zero over the nodes (to rounding)."""
    shape = (*secrets.shape[:-2], nodes, secrets.shape[-1])
    noise = secrets.new_zeros(shape)
    noise.index_add_(-2, heads, secrets)
    noise.index_add_(-2, tails, secrets, alpha=-1)
    return noise


@dataclass(frozen=True)
class GossipState:
    """Round count t and every node's model θ_t ``(..., n, P)``."""

    step: int
    theta: torch.Tensor


@dataclass(frozen=True)
class GossipRecord:
    """What a round measured at θ_{t+1}, each ``(...)``: L(θ̄) at the average model, the mean
    over nodes of L(θ_i), and the consensus distance (1/n) Σ_i ‖θ_i − θ̄‖²."""

    objective: torch.Tensor
    node_objective: torch.Tensor
    consensus: torch.Tensor


@dataclass(frozen=True)
class GossipTrajectory:
    """Records of rounds 0..T, each ``(T + 1, ...)`` (see :class:`GossipRecord`), and θ_T
    ``(..., n, P)``."""

    objective: torch.Tensor
    node_objective: torch.Tensor
    consensus: torch.Tensor
    theta: torch.Tensor


def _pooled(problem: Problem) -> Problem:
    """``problem`` with every per-worker data field ``(h, m, ...)`` reshaped to one worker
    ``(1, h·m, ...)``: its ``example_gradients`` then takes θ ``(..., n, P)`` and indices
    ``(..., n, 1, b)`` into the pooled data, and ``losses`` gives L at each θ_i."""
    h = problem.workers
    fields = {
        item.name: getattr(problem, item.name).flatten(0, 1).unsqueeze(0)
        for item in dataclasses.fields(problem)
        if item.init
        and isinstance(getattr(problem, item.name), torch.Tensor)
        and getattr(problem, item.name).shape[:1] == (h,)
    }
    return dataclasses.replace(problem, **fields)


class DecentralizedSGD:
    """D-SGD with local and correlated Gaussian noise on a graph (module docstring).

    Parameters
    ----------
    problem : Problem
        One worker per node: ``problem.workers`` must equal the number of nodes, worker i is
        the node at position i of :func:`trilemma.accountants.as_topology` of ``graph``.
    graph : object
        Anything :func:`trilemma.accountants.as_topology` accepts (networkx graph, scipy
        sparse or dense adjacency, spec such as ``"torus:4x4"``).
    lr : float
        Step size γ > 0.
    mixing : str or array
        ``"metropolis"`` (default), ``"average"`` (W = 11ᵀ/n) or a doubly stochastic W
        supported on the graph, checked by :func:`trilemma.decentralized.check_mixing`.
    batch_size : int, optional
        b examples per node and round, drawn without replacement (None: all m).
    clip : float, optional
        Clipping norm C (None: no clipping).
    clipping : {"example", "node"}
        Clip each example's gradient, or the node's mean gradient (user level).
    sigma, sigma_cor : float
        Std σ ≥ 0 of each node's own noise and σ_cor ≥ 0 of each edge secret (× √weight).
    shard : trilemma.dgd.Shard, optional
        The nodes whose gradients this process computes (None: all), e.g.
        :func:`trilemma.dgd.distributed.process_shard` under torch.distributed: every rank
        holds every model, computes its slice of the gradients, all-gathers them and runs the
        same noise draws and gossip, so W processes follow the single-process trajectory.
    """

    def __init__(
        self,
        problem: Problem,
        graph: object,
        *,
        lr: float,
        mixing: object = "metropolis",
        batch_size: int | None = None,
        clip: float | None = None,
        clipping: str = "example",
        sigma: float = 0.0,
        sigma_cor: float = 0.0,
        shard: Shard | None = None,
    ) -> None:
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be a trilemma.dgd Problem, got {type(problem).__name__}")
        self.problem = problem
        self.topology = as_topology(graph)
        n, m = problem.workers, problem.features.shape[1]
        if self.topology.n_nodes != n:
            raise ValueError(
                f"graph has {self.topology.n_nodes} nodes but problem has {n} workers: "
                "give one worker per node"
            )
        self.lr = check_real("lr", lr, low=0, low_open=True)
        self.batch_size = (
            None if batch_size is None else check_int("batch_size", batch_size, low=1, high=m)
        )
        self.clip = None if clip is None else check_real("clip", clip, low=0, low_open=True)
        self.clipping = check_choice("clipping", clipping, CLIPPINGS)
        self.sigma = check_real("sigma", sigma, low=0)
        self.sigma_cor = check_real("sigma_cor", sigma_cor, low=0)
        device, dtype = problem.features.device, problem.dtype
        self.mixing = torch.as_tensor(mixing_matrix(mixing, self.topology), dtype=dtype).to(device)
        heads, tails, weights = edge_list(self.topology)
        self.heads = torch.from_numpy(heads).to(device)
        self.tails = torch.from_numpy(tails).to(device)
        self.edge_scale = torch.as_tensor(np.sqrt(weights), dtype=dtype).to(device).unsqueeze(-1)
        if shard is None:
            shard = Shard(0, n, lambda local, dim: local)
        elif not 0 <= shard.start < shard.stop <= n:
            raise ValueError(f"shard {shard.start}:{shard.stop} must be a non-empty slice of 0:{n}")
        self.shard = shard
        local = (
            problem
            if (shard.start, shard.stop) == (0, n)
            else problem.restrict(shard.start, shard.stop)
        )
        self.pooled = _pooled(problem)
        self.local_pooled = _pooled(local)
        self.offsets = (torch.arange(shard.stop - shard.start, device=device) * m).unsqueeze(-1)

    @property
    def nodes(self) -> int:
        """Number of nodes n."""
        return self.topology.n_nodes

    @property
    def stochastic(self) -> bool:
        """Whether a round draws random numbers (batches or noise)."""
        return self.batch_size is not None or self.sigma > 0 or self.sigma_cor > 0

    def start(self, theta0: torch.Tensor | None = None, *, per_node: bool = False) -> GossipState:
        """Round 0 from ``theta0``: ``(..., P)``, the same start at every node, or with
        ``per_node`` ``(..., n, P)``, one start per node; zeros by default."""
        problem = self.problem
        if theta0 is None:
            theta0 = torch.zeros(problem.dimension, dtype=problem.dtype)
        theta = theta0.to(dtype=problem.dtype, device=self.mixing.device)
        expected = (self.nodes, problem.dimension) if per_node else (problem.dimension,)
        if theta.shape[theta.ndim - len(expected) :] != expected:
            shape = "(..., n, P)" if per_node else "(..., P)"
            raise ValueError(
                f"theta0 must have shape {shape} = (..., {', '.join(map(str, expected))}), "
                f"got {tuple(theta.shape)}"
            )
        if not per_node:
            theta = theta.unsqueeze(-2).expand(*theta.shape[:-1], self.nodes, -1)
        return GossipState(0, theta.clone())

    def measure(self, theta: torch.Tensor) -> GossipRecord:
        """:class:`GossipRecord` at θ ``(..., n, P)``."""
        mean = theta.mean(dim=-2)
        return GossipRecord(
            objective=self.problem.objective(mean),
            node_objective=self.pooled.losses(theta).mean(dim=(-2, -1)),
            consensus=(theta - mean.unsqueeze(-2)).square().sum(dim=-1).mean(dim=-1),
        )

    def gradients(self, theta: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Each node's clipped (not yet noised) gradient at its θ_i, ``(..., n, P)``."""
        n, m = self.nodes, self.problem.features.shape[1]
        start, stop = self.shard.start, self.shard.stop
        batch = theta.shape[:-2]
        if self.batch_size is None:
            index = torch.arange(m, device=theta.device).expand(*batch, stop - start, m)
        else:  # keys for all n nodes on every process, so that shards draw the same numbers
            keys = torch.rand((*batch, n, m), generator=generator, dtype=torch.float64)
            index = keys[..., start:stop, :].argsort(dim=-1)[..., : self.batch_size]
            index = index.to(theta.device)
        pooled_index = (index + self.offsets).unsqueeze(-2)
        local = theta[..., start:stop, :]
        per_example = self.local_pooled.example_gradients(local, pooled_index).squeeze(-3)
        if self.clip is not None and self.clipping == "example":
            per_example = _clip(per_example, self.clip)
        gradient = per_example.mean(dim=-2)
        if self.clip is not None and self.clipping == "node":
            gradient = _clip(gradient, self.clip)
        return self.shard.gather(gradient, -2)

    def noise(self, shape: torch.Size, generator: torch.Generator | None) -> torch.Tensor | None:
        """One round's noise ``(..., n, P)``: σ·N(0, I) per node plus the correlated secrets;
        None when σ = σ_cor = 0."""
        noise = None
        dtype, device = self.problem.dtype, self.mixing.device
        if self.sigma > 0:
            draw = torch.randn(shape, generator=generator, dtype=dtype)
            noise = self.sigma * draw.to(device)
        if self.sigma_cor > 0:
            edges = (*shape[:-2], len(self.heads), shape[-1])
            secrets = torch.randn(edges, generator=generator, dtype=dtype).to(device)
            secrets = self.sigma_cor * self.edge_scale * secrets
            cancelling = correlated_noise(secrets, self.heads, self.tails, self.nodes)
            noise = cancelling if noise is None else noise + cancelling
        return noise

    def step(
        self, state: GossipState, generator: torch.Generator | None = None, *, measure: bool = True
    ) -> tuple[GossipState, GossipRecord | None]:
        """One round from ``state``; ``generator`` draws batches and noise (required when
        either is used). Returns the new state and, with ``measure``, its record."""
        if self.stochastic and generator is None:
            raise ValueError("batches or noise need a torch.Generator (generator=)")
        theta = state.theta
        update = self.gradients(theta, generator)
        noise = self.noise(theta.shape, generator)
        if noise is not None:
            update = update + noise
        theta = self.mixing @ (theta - self.lr * update)
        return GossipState(state.step + 1, theta), self.measure(theta) if measure else None


def _clip(vectors: torch.Tensor, clip: float) -> torch.Tensor:
    """Each vector (last dimension) scaled to norm at most ``clip``."""
    norms = torch.linalg.vector_norm(vectors, dim=-1, keepdim=True)
    return vectors * torch.clamp(clip / norms.clamp(min=1e-300), max=1.0)


def decentralized_sgd(
    problem: Problem,
    graph: object,
    *,
    steps: int,
    lr: float,
    theta0: torch.Tensor | None = None,
    mixing: object = "metropolis",
    batch_size: int | None = None,
    clip: float | None = None,
    clipping: str = "example",
    sigma: float = 0.0,
    sigma_cor: float = 0.0,
    generator: torch.Generator | None = None,
) -> GossipTrajectory:
    """Run T rounds of :class:`DecentralizedSGD` in memory, measuring every round.

    Examples
    --------
    Without noise on K_3 with exact averaging, the nodes move together to the mean of their
    optima, like D-GD:

    >>> from trilemma.dgd import LeastSquares
    >>> X = torch.eye(2, dtype=torch.float64).expand(3, 2, 2)
    >>> y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    >>> run = decentralized_sgd(LeastSquares(X, y), "complete:3", steps=50, lr=1.0)
    >>> run.theta[0]
    tensor([0.6667, 0.6667], dtype=torch.float64)
    """
    steps = check_int("steps", steps, low=1)
    algorithm = DecentralizedSGD(
        problem,
        graph,
        lr=lr,
        mixing=mixing,
        batch_size=batch_size,
        clip=clip,
        clipping=clipping,
        sigma=sigma,
        sigma_cor=sigma_cor,
    )
    state = algorithm.start(theta0)
    records = [algorithm.measure(state.theta)]
    for _ in range(steps):
        state, _ = algorithm.step(state, generator, measure=False)
        records.append(algorithm.measure(state.theta))
    return GossipTrajectory(
        objective=torch.stack([r.objective for r in records]),
        node_objective=torch.stack([r.node_objective for r in records]),
        consensus=torch.stack([r.consensus for r in records]),
        theta=state.theta,
    )

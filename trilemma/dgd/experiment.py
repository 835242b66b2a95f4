"""What a :class:`~trilemma.dgd.RunConfig` builds before its first step: the data split over the
workers and a held-out test set, the problem, the per-worker noise and the algorithm — robust
D-GD / D-SGD / SAFE-DSHB (:class:`~trilemma.dgd.RobustDGD`) or, with a ``graph``, decentralized
D-SGD with DECOR noise (:class:`~trilemma.decentralized.GossipTraining`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from trilemma._device import check_device
from trilemma.accountants import worker_noise_std
from trilemma.dgd.config import RunConfig
from trilemma.dgd.data import ClassificationData, load_classification, split_workers
from trilemma.dgd.distributed import process_shard
from trilemma.dgd.mlp import MLPClassifier
from trilemma.dgd.problems import SoftmaxRegression
from trilemma.dgd.runner import RobustDGD

if TYPE_CHECKING:
    from trilemma.decentralized import GossipTraining

__all__ = ["Experiment", "build_experiment", "holdout"]


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
    problem, theta0 = _problem(config, features, labels, data.classes)
    algorithm: RobustDGD | GossipTraining
    if config.graph is not None:
        algorithm, noise_std = _gossip(config, problem, distributed)
    else:
        noise_std = _noise_std(config)
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


def _problem(
    config: RunConfig, features: torch.Tensor, labels: torch.Tensor, classes: int
) -> tuple[SoftmaxRegression | MLPClassifier, torch.Tensor]:
    """The model of ``config`` on the workers' data and its start θ_0 ``(seeds, P)``: zeros
    for the logistic model, a draw seeded by ``config.seed`` for the MLP."""
    if config.model == "logistic":
        problem = SoftmaxRegression(features, labels, classes=classes, ridge=config.ridge)
        theta0 = torch.zeros(
            config.seeds, problem.dimension, dtype=features.dtype, device=features.device
        )
        return problem, theta0
    mlp = MLPClassifier(features, labels, classes=classes, hidden=config.hidden, ridge=config.ridge)
    start_generator = torch.Generator().manual_seed(config.seed)
    return mlp, mlp.initial_parameters(start_generator, batch_shape=(config.seeds,))


def _noise_std(config: RunConfig) -> float:
    """The per-worker noise std s of a server run: calibrated to ``epsilon`` (0 without)."""
    if config.epsilon is None:
        return 0.0
    assert config.clip is not None  # RunConfig refuses epsilon without clip
    return worker_noise_std(
        epsilon=config.epsilon,
        delta=config.delta,
        steps=config.steps,
        local_size=config.per_worker,
        clip=config.clip,
        batch_size=config.batch_size,
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
        assert config.clip is not None  # RunConfig refuses epsilon without clip
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

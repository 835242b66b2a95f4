"""Decentralized SGD with correlated noise: cancellation, and agreement with D-GD, local-DP
D-SGD (trilemma.dgd.RobustDGD) and a per-node loop written here."""

import math

import pytest
import torch

from trilemma.accountants import as_topology
from trilemma.decentralized import (
    DecentralizedSGD,
    correlated_noise,
    decentralized_sgd,
    edge_list,
    metropolis_hastings,
)
from trilemma.dgd import (
    LeastSquares,
    RobustDGD,
    SoftmaxRegression,
    load_classification,
    robust_dgd,
    split_workers,
)


def wine(n: int = 6, m: int = 8) -> SoftmaxRegression:
    features, labels = split_workers(
        load_classification("wine"), workers=n, per_worker=m, kind="dirichlet", alpha=0.5
    )
    return SoftmaxRegression(features, labels, classes=3, ridge=0.01)


def test_correlated_noise_cancels_and_has_covariance_sigma_cor2_laplacian():
    topology = as_topology("torus:3x4")
    heads, tails, weights = (torch.from_numpy(a) for a in edge_list(topology))
    assert len(heads) == 24 and torch.all(weights == 1)
    secrets = torch.randn(
        200_000, len(heads), 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    noise = correlated_noise(2.0 * secrets, heads, tails, 12)[..., 0]  # (draws, n)
    assert noise.sum(dim=-1).abs().max() < 1e-12
    covariance = noise.T @ noise / noise.shape[0]
    expected = 4.0 * torch.from_numpy(topology.laplacian().toarray())
    # sd of each entry estimate ≤ √(2 · 16²/200 000) ≈ 0.05: 6 sd; zeros and ±4 stay apart
    assert torch.allclose(covariance, expected, rtol=0, atol=0.3)


def test_round_noise_sums_to_zero_every_round_and_exact_averaging_cancels_it():
    problem = wine()
    generator = torch.Generator().manual_seed(1)
    noisy = DecentralizedSGD(problem, "ring:6", lr=0.5, sigma_cor=100.0)
    for _ in range(5):
        noise = noisy.noise(torch.Size((3, 6, problem.dimension)), generator)
        assert noise.sum(dim=-2).abs().max() < 1e-11
        assert noise.std() > 50  # the secrets are there, they only cancel in the sum
    # With exact averaging the model is the network mean: the secrets never reach it.
    run = decentralized_sgd(
        problem, "ring:6", steps=20, lr=0.5, mixing="average", sigma_cor=1e3, generator=generator
    )
    plain = robust_dgd(problem, rule="mean", steps=20, lr=0.5)
    assert torch.allclose(run.objective, plain.objective, rtol=0, atol=1e-9)


def test_noiseless_complete_graph_with_exact_averaging_is_centralized_dgd():
    problem = wine()
    run = decentralized_sgd(problem, "complete:6", steps=30, lr=0.5, mixing="average")
    plain = robust_dgd(problem, rule="mean", steps=30, lr=0.5)
    assert torch.allclose(run.objective, plain.objective, rtol=1e-12, atol=0)
    assert torch.allclose(run.theta, plain.theta.expand(6, -1), rtol=0, atol=1e-12)
    assert run.consensus.abs().max() < 1e-25
    # Metropolis-Hastings weights on K_n are 1/n: the same matrix.
    assert torch.allclose(
        torch.from_numpy(metropolis_hastings("complete:6")),
        torch.full((6, 6), 1 / 6, dtype=torch.float64),
    )


def test_without_secrets_it_is_local_dp_dsgd_draw_for_draw():
    problem = wine()
    theta0 = torch.zeros(4, problem.dimension, dtype=torch.float64)
    ours = DecentralizedSGD(
        problem, "complete:6", lr=0.3, mixing="average", batch_size=3, clip=0.5, sigma=0.7
    )
    theirs = RobustDGD(problem, rule="mean", lr=0.3, batch_size=3, clip=0.5, noise_std=0.7)
    state, reference = ours.start(theta0), theirs.start(theta0)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    for _ in range(10):
        state, _ = ours.step(state, g1, measure=False)
        reference, _ = theirs.step(reference, g2, measure=False)
    assert torch.allclose(
        state.theta, reference.theta.unsqueeze(-2).expand_as(state.theta), rtol=0, atol=1e-12
    )


def loop_reference(problem, graph, theta, generator, *, lr, b, clip, sigma, sigma_cor, steps):
    """Per-node loop of DECOR with user-level clipping: node by node, edge by edge."""
    topology = as_topology(graph)
    w = torch.from_numpy(metropolis_hastings(topology))
    heads, tails, weights = edge_list(topology)
    n, m = problem.features.shape[:2]
    for _ in range(steps):
        keys = torch.rand((n, m), generator=generator, dtype=torch.float64)
        local = torch.randn((n, problem.dimension), generator=generator, dtype=torch.float64)
        secrets = torch.randn(
            (len(heads), problem.dimension), generator=generator, dtype=torch.float64
        )
        half = []
        for i in range(n):
            node = LeastSquares(problem.features[i : i + 1], problem.targets[i : i + 1])
            batch = keys[i].argsort()[:b]
            grad = node.example_gradients(theta[i], batch.unsqueeze(0))[0].mean(dim=0)
            grad = grad * min(1.0, clip / float(grad.norm()))
            noise = sigma * local[i]
            for e, (j, k) in enumerate(zip(heads, tails, strict=True)):
                if i == j:
                    noise = noise + sigma_cor * math.sqrt(weights[e]) * secrets[e]
                if i == k:
                    noise = noise - sigma_cor * math.sqrt(weights[e]) * secrets[e]
            half.append(theta[i] - lr * (grad + noise))
        half = torch.stack(half)
        theta = torch.stack([sum(w[i, j] * half[j] for j in range(n)) for i in range(n)])
    return theta


def test_decor_on_a_weighted_ring_matches_a_per_node_loop():
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(5, 4, 3, generator=generator, dtype=torch.float64)
    problem = LeastSquares(features, torch.randn(5, 4, generator=generator, dtype=torch.float64))
    adjacency = torch.zeros(5, 5, dtype=torch.float64)
    for i in range(5):
        adjacency[i, (i + 1) % 5] = adjacency[(i + 1) % 5, i] = 1.0 + i
    graph = adjacency.numpy()
    settings = {"lr": 0.1, "clip": 0.8, "sigma": 0.3, "sigma_cor": 2.0}
    ours = DecentralizedSGD(problem, graph, batch_size=2, clipping="node", **settings)
    state = ours.start()
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    for _ in range(4):
        state, _ = ours.step(state, g1, measure=False)
    loop = loop_reference(
        problem, graph, torch.zeros(5, 3, dtype=torch.float64), g2, b=2, steps=4, **settings
    )
    assert torch.allclose(state.theta, loop, rtol=0, atol=1e-12)


def test_node_clipping_bounds_each_node_and_example_clipping_each_example():
    problem = wine()
    theta = torch.randn(
        2, 6, problem.dimension, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    node = DecentralizedSGD(problem, "ring:6", lr=1.0, clip=0.01, clipping="node")
    grads = node.gradients(theta, None)
    assert torch.allclose(grads.norm(dim=-1), torch.full((2, 6), 0.01, dtype=torch.float64))
    exact = torch.stack([problem.gradients(theta[:, i])[:, i] for i in range(6)], dim=1)
    unclipped = DecentralizedSGD(problem, "ring:6", lr=1.0).gradients(theta, None)
    assert torch.allclose(unclipped, exact, rtol=1e-12, atol=1e-14)
    assert torch.allclose(grads, 0.01 * exact / exact.norm(dim=-1, keepdim=True))


def test_bad_input_is_refused_with_the_argument_named():
    problem = wine()
    with pytest.raises(ValueError, match="graph has 5 nodes but problem has 6 workers"):
        DecentralizedSGD(problem, "ring:5", lr=1.0)
    with pytest.raises(ValueError, match="clipping"):
        DecentralizedSGD(problem, "ring:6", lr=1.0, clipping="batch")
    with pytest.raises(ValueError, match="sigma_cor"):
        DecentralizedSGD(problem, "ring:6", lr=1.0, sigma_cor=-1.0)
    with pytest.raises(ValueError, match="generator"):
        DecentralizedSGD(problem, "ring:6", lr=1.0, sigma=1.0).step(
            DecentralizedSGD(problem, "ring:6", lr=1.0).start()
        )


def test_start_broadcasts_one_start_per_seed_even_when_seeds_equal_nodes():
    problem = wine()
    algorithm = DecentralizedSGD(problem, "ring:6", lr=1.0)
    starts = torch.arange(6 * problem.dimension, dtype=torch.float64).reshape(6, -1)
    theta = algorithm.start(starts).theta  # 6 seeds, not 6 nodes
    assert theta.shape == (6, 6, problem.dimension)
    assert torch.equal(theta[2, 4], starts[2])
    per_node = algorithm.start(starts, per_node=True).theta
    assert per_node.shape == (6, problem.dimension) and torch.equal(per_node[4], starts[4])
    with pytest.raises(ValueError, match=r"theta0 must have shape \(\.\.\., n, P\)"):
        algorithm.start(starts[0], per_node=True)

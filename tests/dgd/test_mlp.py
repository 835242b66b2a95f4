"""The perceptron classifier against independent recomputations: a torch.nn.Sequential built
from the same weights and differentiated with torch.autograd.grad (per worker, per example), a
chain rule worked by hand, a batch of θ against the same θ one at a time, and robust D-GD on a
split of the digits."""

import math

import pytest
import torch

from trilemma.dgd import load_classification, robust_dgd, split_workers
from trilemma.dgd.mlp import MLPClassifier

F64 = torch.float64
H, M, P_IN, K, WIDTH = 3, 4, 5, 3, 6


def _data(seed, *, classes=K, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(H, M, P_IN, generator=g, dtype=dtype)
    return features, torch.randint(0, classes, (H, M), generator=g)


def _layers(theta, p, hidden, classes):
    """(W₁ (p, H), b₁, W₂ (H, K), b₂) of a flat θ, in the documented order."""
    w1, b1, w2, b2 = torch.split(theta, [p * hidden, hidden, hidden * classes, classes])
    return w1.reshape(p, hidden), b1, w2.reshape(hidden, classes), b2


def _network(theta, p, hidden, classes, activation):
    w1, b1, w2, b2 = _layers(theta, p, hidden, classes)
    sigma = torch.nn.Tanh() if activation == "tanh" else torch.nn.ReLU()
    network = torch.nn.Sequential(
        torch.nn.Linear(p, hidden), sigma, torch.nn.Linear(hidden, classes)
    ).to(theta.dtype)
    with torch.no_grad():  # nn.Linear stores its weight as (out, in)
        network[0].weight.copy_(w1.T)
        network[0].bias.copy_(b1)
        network[2].weight.copy_(w2.T)
        network[2].bias.copy_(b2)
    return network


def _reference(features, labels, theta, *, hidden, classes, activation, ridge):
    """Loss and gradient (flattened back to θ's layout) of nn.Sequential on the examples
    ``features (n, p)``, ``labels (n,)``."""
    network = _network(theta, features.shape[-1], hidden, classes, activation)
    parameters = list(network.parameters())
    loss = torch.nn.functional.cross_entropy(network(features), labels)
    loss = loss + ridge / 2 * sum(q.square().sum() for q in parameters)
    w1, b1, w2, b2 = torch.autograd.grad(loss, parameters)
    return loss.detach(), torch.cat([w1.T.reshape(-1), b1, w2.T.reshape(-1), b2])


def _thetas(problem, seed):
    g = torch.Generator().manual_seed(seed)
    return [
        problem.initial_parameters(g),
        torch.randn(problem.dimension, generator=g, dtype=F64),
        3.0 * torch.randn(problem.dimension, generator=g, dtype=F64),
    ]


@pytest.mark.parametrize(("activation", "ridge"), [("tanh", 0.0), ("tanh", 0.3), ("relu", 0.2)])
def test_losses_and_gradients_match_nn_sequential(activation, ridge):
    features, labels = _data(0)
    problem = MLPClassifier(
        features, labels, classes=K, hidden=WIDTH, activation=activation, ridge=ridge
    )
    assert problem.dimension == P_IN * WIDTH + WIDTH + WIDTH * K + K
    for theta in _thetas(problem, seed=1):
        parts = [
            _reference(
                features[i],
                labels[i],
                theta,
                hidden=WIDTH,
                classes=K,
                activation=activation,
                ridge=ridge,
            )
            for i in range(H)
        ]
        losses = torch.stack([loss for loss, _ in parts])
        gradients = torch.stack([gradient for _, gradient in parts])
        torch.testing.assert_close(problem.losses(theta), losses, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(problem.gradients(theta), gradients, rtol=1e-10, atol=1e-13)
        torch.testing.assert_close(problem.objective(theta), losses.mean())


def test_gradient_of_a_hand_worked_network():
    # p = H = 1, K = 2, one example x = 1 of class 0, θ = [W₁, b₁, W₂, b₂] = [1, 0, (1, −1), 0]:
    # hidden t = tanh 1, logits (t, −t), p₁ = 1/(1 + e^{2t}), loss = ln(1 + e^{−2t});
    # ∂/∂z = (−p₁, p₁), ∂/∂W₂ = t(−p₁, p₁), ∂/∂hidden = −2p₁, ∂/∂W₁ = ∂/∂b₁ = −2p₁(1 − t²)
    problem = MLPClassifier(
        torch.ones(1, 1, 1, dtype=F64), torch.tensor([[0]]), classes=2, hidden=1
    )
    theta = torch.tensor([1.0, 0.0, 1.0, -1.0, 0.0, 0.0], dtype=F64)
    t = math.tanh(1.0)
    p1 = 1 / (1 + math.exp(2 * t))
    first = -2 * p1 * (1 - t * t)
    expected = torch.tensor([[first, first, -t * p1, t * p1, -p1, p1]], dtype=F64)
    torch.testing.assert_close(problem.gradients(theta), expected, rtol=1e-13, atol=0)
    assert float(problem.losses(theta)) == pytest.approx(math.log1p(math.exp(-2 * t)), 1e-14)


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_loss_at_zero_is_log_k(classes):
    features, labels = _data(2, classes=classes)
    problem = MLPClassifier(features, labels, classes=classes, hidden=4, ridge=0.5)
    losses = problem.losses(torch.zeros(problem.dimension, dtype=F64))
    torch.testing.assert_close(losses, torch.full((H,), math.log(classes), dtype=F64))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_batch_of_thetas_equals_one_at_a_time(activation):
    features, labels = _data(3)
    problem = MLPClassifier(features, labels, classes=K, hidden=WIDTH, activation=activation)
    batch = problem.initial_parameters(torch.Generator().manual_seed(4), (3, 2))
    gradients, losses = problem.gradients(batch), problem.losses(batch)
    assert gradients.shape == (3, 2, H, problem.dimension)
    assert losses.shape == (3, 2, H)
    assert problem.objective(batch).shape == (3, 2)
    for a in range(3):
        for b in range(2):
            torch.testing.assert_close(gradients[a, b], problem.gradients(batch[a, b]))
            torch.testing.assert_close(losses[a, b], problem.losses(batch[a, b]))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_example_gradients_average_to_the_gradients(activation):
    features, labels = _data(5)
    problem = MLPClassifier(
        features, labels, classes=K, hidden=WIDTH, activation=activation, ridge=0.1
    )
    g = torch.Generator().manual_seed(6)
    thetas = problem.initial_parameters(g, (2,))
    # every worker's m examples, in a different order per θ and worker
    index = torch.rand(2, H, M, generator=g).argsort(dim=-1)
    per_example = problem.example_gradients(thetas, index)
    assert per_example.shape == (2, H, M, problem.dimension)
    torch.testing.assert_close(
        per_example.mean(dim=-2), problem.gradients(thetas), rtol=1e-12, atol=1e-14
    )


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_example_gradient_is_autograd_of_that_example(activation):
    features, labels = _data(7)
    problem = MLPClassifier(
        features, labels, classes=K, hidden=WIDTH, activation=activation, ridge=0.2
    )
    g = torch.Generator().manual_seed(8)
    thetas = problem.initial_parameters(g, (2,))
    index = torch.randint(0, M, (2, H, 3), generator=g)
    per_example = problem.example_gradients(thetas, index)
    for s in range(2):
        for i in range(H):
            for j in range(3):
                example = int(index[s, i, j])
                _, expected = _reference(
                    features[i, example : example + 1],
                    labels[i, example : example + 1],
                    thetas[s],
                    hidden=WIDTH,
                    classes=K,
                    activation=activation,
                    ridge=0.2,
                )
                torch.testing.assert_close(per_example[s, i, j], expected, rtol=1e-10, atol=1e-13)
    # one θ shared by a batch of index draws broadcasts against them
    shared = problem.example_gradients(thetas[0], index)
    torch.testing.assert_close(shared[0], per_example[0])
    torch.testing.assert_close(shared[1], problem.example_gradients(thetas[0], index[1]))


def test_float32_is_kept_and_agrees_with_float64():
    features, labels = _data(9)
    wide = MLPClassifier(features, labels, classes=K, hidden=WIDTH)
    narrow = MLPClassifier(features.float(), labels, classes=K, hidden=WIDTH)
    theta = narrow.initial_parameters(torch.Generator().manual_seed(10))
    assert theta.dtype == narrow.dtype == torch.float32
    gradients = narrow.gradients(theta)
    per_example = narrow.example_gradients(theta, torch.zeros(H, 2, dtype=torch.int64))
    assert gradients.dtype == per_example.dtype == narrow.losses(theta).dtype == torch.float32
    torch.testing.assert_close(
        gradients, wide.gradients(theta.double()).float(), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_zero_start_never_leaves_the_output_bias(activation):
    features, labels = _data(11)
    problem = MLPClassifier(
        features, labels, classes=K, hidden=WIDTH, activation=activation, ridge=0.1
    )
    bias = slice(problem.dimension - K, problem.dimension)
    gradients = problem.gradients(torch.zeros(problem.dimension, dtype=F64))
    assert bool((gradients[:, : bias.start] == 0).all())
    assert bool((gradients[:, bias] != 0).any())
    run = robust_dgd(problem, rule="mean", steps=5, lr=0.5, keep_iterates=True)
    assert bool((run.iterates[:, : bias.start] == 0).all())


@pytest.mark.parametrize(("activation", "gain"), [("tanh", 2 / (400 + 50)), ("relu", 2 / 400)])
def test_initial_parameters_are_scaled_normals_with_zero_biases(activation, gain):
    features = torch.zeros(1, 1, 400, dtype=F64)
    problem = MLPClassifier(
        features, torch.tensor([[0]]), classes=30, hidden=50, activation=activation
    )
    theta = problem.initial_parameters(torch.Generator().manual_seed(12))
    w1, b1, w2, b2 = _layers(theta, 400, 50, 30)
    assert theta.shape == (problem.dimension,) and theta.dtype == F64
    assert bool((b1 == 0).all()) and bool((b2 == 0).all())
    # 20,000 and 1,500 draws: the sample standard deviations are within a few percent
    assert float(w1.std()) == pytest.approx(math.sqrt(gain), rel=0.03)
    assert float(w2.std()) == pytest.approx(math.sqrt(2 / (50 + 30)), rel=0.06)
    assert abs(float(w1.mean())) < 0.05 * math.sqrt(gain)
    # reproducible from the generator; a batch holds independent draws
    again = problem.initial_parameters(torch.Generator().manual_seed(12))
    torch.testing.assert_close(again, theta, rtol=0, atol=0)
    batch = problem.initial_parameters(torch.Generator().manual_seed(13), batch_shape=(2, 3))
    assert batch.shape == (2, 3, problem.dimension)
    assert not torch.equal(batch[0, 0], batch[1, 2])
    assert problem.initial_parameters(None, (0,)).shape == (0, problem.dimension)


def test_accuracy_matches_the_argmax_of_nn_sequential():
    features, labels = _data(14)
    problem = MLPClassifier(features, labels, classes=K, hidden=WIDTH)
    batch = problem.initial_parameters(torch.Generator().manual_seed(15), (2, 3))
    test_features, test_labels = features.reshape(H * M, P_IN), labels.reshape(H * M)
    accuracy = problem.accuracy(batch, test_features, test_labels)
    assert accuracy.shape == (2, 3) and accuracy.dtype == F64
    for a in range(2):
        for b in range(3):
            network = _network(batch[a, b], P_IN, WIDTH, K, "tanh")
            with torch.no_grad():
                right = network(test_features).argmax(dim=-1) == test_labels
            assert float(accuracy[a, b]) == pytest.approx(float(right.double().mean()))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_robust_dgd_trains_on_digits(activation):
    data = load_classification("digits")
    features, labels = split_workers(data, workers=5, per_worker=30, kind="iid", seed=0)
    problem = MLPClassifier(
        features, labels, classes=data.classes, hidden=8, activation=activation, ridge=1e-3
    )
    theta0 = problem.initial_parameters(torch.Generator().manual_seed(0))
    clean = robust_dgd(problem, rule="mean", steps=30, lr=1.0, theta0=theta0)
    attacked = robust_dgd(
        problem, rule="cwtm", f=1, attack="sign_flipping", steps=30, lr=1.0, theta0=theta0
    )
    start = float(clean.objective[0])
    assert start > 2.0  # about ln 10 for a random start
    assert float(clean.objective[-1]) < 0.15 * start
    assert bool((attacked.objective.diff() < 0).all())
    assert float(attacked.objective[-1]) < 0.25 * start
    everything = torch.from_numpy(data.features.copy()), torch.from_numpy(data.labels.copy())
    assert float(problem.accuracy(attacked.theta, *everything)) > 0.75
    # the runner's default θ₀ = 0 only fits the class frequencies
    stuck = robust_dgd(problem, rule="mean", steps=30, lr=1.0)
    assert float(stuck.objective[-1]) > 2.0


def test_rejects_bad_inputs():
    features, labels = _data(16)
    with pytest.raises(ValueError, match=r"shape \(h, m, p\)"):
        MLPClassifier(features.reshape(H * M, P_IN), labels, classes=K, hidden=WIDTH)
    with pytest.raises(TypeError, match="floating"):
        MLPClassifier(features.to(torch.int32), labels, classes=K, hidden=WIDTH)
    with pytest.raises(ValueError, match="labels must have shape"):
        MLPClassifier(features, labels.reshape(-1), classes=K, hidden=WIDTH)
    with pytest.raises(TypeError, match="integer classes"):
        MLPClassifier(features, labels.to(F64), classes=K, hidden=WIDTH)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\]"):
        MLPClassifier(features, torch.where(labels == 0, 3, labels), classes=K, hidden=WIDTH)
    with pytest.raises(ValueError, match=r"classes=1 must be an integer in \[2, inf\)"):
        MLPClassifier(features, torch.zeros_like(labels), classes=1, hidden=WIDTH)
    with pytest.raises(ValueError, match=r"hidden=0 must be an integer in \[1, inf\)"):
        MLPClassifier(features, labels, classes=K, hidden=0)
    with pytest.raises(TypeError, match="hidden must be an integer"):
        MLPClassifier(features, labels, classes=K, hidden=4.0)
    with pytest.raises(
        ValueError, match=r"activation='sigmoid' is not valid; choose one of: 'tanh', 'relu'"
    ):
        MLPClassifier(features, labels, classes=K, hidden=WIDTH, activation="sigmoid")
    with pytest.raises(ValueError, match=r"ridge=-1.0 must lie in \[0, inf\)"):
        MLPClassifier(features, labels, classes=K, hidden=WIDTH, ridge=-1.0)
    problem = MLPClassifier(features, labels, classes=K, hidden=WIDTH)
    with pytest.raises(TypeError, match="batch_shape must be a sequence"):
        problem.initial_parameters(None, 3)
    with pytest.raises(ValueError, match=r"batch_shape=-1 must be an integer in \[0, inf\)"):
        problem.initial_parameters(None, (2, -1))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    features, labels = _data(17)
    cpu = MLPClassifier(features, labels, classes=K, hidden=WIDTH, ridge=0.1)
    cuda = MLPClassifier(features.cuda(), labels.cuda(), classes=K, hidden=WIDTH, ridge=0.1)
    theta = cuda.initial_parameters(torch.Generator(device="cuda").manual_seed(18), (2,))
    assert theta.device.type == "cuda"
    index = torch.randint(0, M, (2, H, 3), device="cuda")
    for on_gpu, on_cpu in [
        (cuda.gradients(theta), cpu.gradients(theta.cpu())),
        (cuda.losses(theta), cpu.losses(theta.cpu())),
        (cuda.example_gradients(theta, index), cpu.example_gradients(theta.cpu(), index.cpu())),
    ]:
        assert on_gpu.device.type == "cuda"
        torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-10, atol=1e-12)
    assert cuda.initial_parameters(torch.Generator().manual_seed(0)).device.type == "cuda"

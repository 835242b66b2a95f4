"""Flower simulation on scikit-learn's digits: 2 Byzantine clients among 10, FedAvg vs trilemma.

Every honest client owns a shard of the training split and answers each round with one step of
per-example-clipped gradient descent on a softmax regression (FedSGD). Clients 0 and 1 are
Byzantine: ``"sign-flip"`` sends the own update times −10, ``"nan"`` sends a model of NaN,
``"mixed"`` does one of each. The server evaluates the global model on the held-out split.

Run ``python examples/flower_digits.py`` (needs ``pip install 'trilemma[flower]'``, which
brings Flower's simulation engine); ``run(...)`` is what the integration tests call.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, Strategy
from flwr.simulation import run_simulation
from sklearn.datasets import load_digits

from trilemma.integrations.flower import RobustStrategy, WorkerNoise

CLIENTS = 10
BYZANTINE = (0, 1)
LEARNING_RATE = 4.0
GRADIENT_CLIP = 1.0
FLIP_SCALE = 10.0


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features in [0, 1], labels; 80 % train / 20 % test, shuffled with ``seed``."""
    features, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(labels))
    features, labels = features[order] / 16.0, labels[order]
    cut = int(0.8 * len(labels))
    return features[:cut], labels[:cut], features[cut:], labels[cut:]


def clipped_step(weights: np.ndarray, bias: np.ndarray, x: np.ndarray, y: np.ndarray):
    """Update of one step of per-example-clipped gradient descent on softmax regression: the
    mean over the batch of −lr · clip(∇ℓ_i, C), each term of norm ≤ lr · C."""
    logits = x @ weights + bias
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    error = probabilities - np.eye(10)[y]
    # ‖∇_W ℓ_i‖² + ‖∇_b ℓ_i‖² = (‖x_i‖² + 1) ‖e_i‖² for the outer product x_i e_iᵀ
    norms = np.sqrt(((x**2).sum(axis=1) + 1.0) * (error**2).sum(axis=1))
    error = error * np.minimum(1.0, GRADIENT_CLIP / np.maximum(norms, 1e-12))[:, None]
    return -LEARNING_RATE * x.T @ error / len(y), -LEARNING_RATE * error.mean(axis=0)


def make_client_app(seed: int = 0) -> ClientApp:
    """Honest clients train; clients 0 and 1 attack as the round's ``attack`` config says."""
    x_train, y_train, _, _ = digits_split(seed)
    app = ClientApp()

    @app.train()
    def train(message: Message, context: Context) -> Message:
        client = int(context.node_config["partition-id"])
        config = message.content["config"]
        weights, bias = message.content["arrays"].to_numpy_ndarrays()
        shard = slice(client, None, int(context.node_config["num-partitions"]))
        d_weights, d_bias = clipped_step(weights, bias, x_train[shard], y_train[shard])
        attack = str(config.get("attack", "none"))
        if client in BYZANTINE and attack != "none":
            nan_attack = attack == "nan" or (attack == "mixed" and client == BYZANTINE[0])
            if nan_attack:
                d_weights, d_bias = np.full_like(d_weights, np.nan), np.full_like(d_bias, np.nan)
            else:
                d_weights, d_bias = -FLIP_SCALE * d_weights, -FLIP_SCALE * d_bias
        model = ArrayRecord([weights + d_weights, bias + d_bias])
        metrics = MetricRecord({"num-examples": len(y_train[shard]), "partition-id": client})
        return Message(RecordDict({"arrays": model, "metrics": metrics}), reply_to=message)

    return app


def accuracy(arrays: ArrayRecord, x: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy of the softmax regression; a non-finite model scores as it predicts."""
    weights, bias = arrays.to_numpy_ndarrays()
    with np.errstate(invalid="ignore"):
        return float(((x @ weights + bias).argmax(axis=1) == y).mean())


def local_size(seed: int = 0) -> int:
    """Records of the smallest client shard (the m of the per-client DP guarantee)."""
    train_size = len(digits_split(seed)[1])
    return min(len(range(client, train_size, CLIENTS)) for client in range(CLIENTS))


def honest_client(reply: Message) -> bool:
    """Known in simulation: the clients report their partition id."""
    return int(reply.content["metrics"]["partition-id"]) not in BYZANTINE


def strategies(rounds: int, epsilon: float, seed: int = 0) -> dict[str, Callable[[], Strategy]]:
    """The runs compared: name → strategy factory (``attack`` is the part after '/')."""
    noise = WorkerNoise(
        epsilon=epsilon,
        delta=1e-5,
        rounds=rounds,
        local_size=local_size(seed),
        clip=LEARNING_RATE * GRADIENT_CLIP,
    )
    common = {"fraction_evaluate": 0.0, "min_train_nodes": CLIENTS, "min_available_nodes": CLIENTS}
    robust = {"rule": "nnm>>cwtm", "f": len(BYZANTINE), "honest": honest_client, **common}
    return {
        "fedavg/none": lambda: FedAvg(**common),
        "fedavg/sign-flip": lambda: FedAvg(**common),
        "fedavg/nan": lambda: FedAvg(**common),
        "trilemma/sign-flip": lambda: RobustStrategy(**robust),
        "trilemma/nan": lambda: RobustStrategy(**robust),
        "trilemma-dp/mixed": lambda: RobustStrategy(**robust, noise=noise, seed=seed),
    }


def run(rounds: int = 10, epsilon: float = 8.0, seed: int = 0) -> dict[str, dict[str, object]]:
    """Run every strategy of :func:`strategies` in one Flower simulation (Ray backend).

    Returns, per run: ``accuracy`` (test accuracy of the final global model), ``accuracies``
    (after each round) and ``train_metrics`` (the strategy's training metrics per round).
    """
    _, _, x_test, y_test = digits_split(seed)
    results: dict[str, dict[str, object]] = {}
    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        for name, make in strategies(rounds, epsilon, seed).items():
            initial = ArrayRecord([np.zeros((64, 10)), np.zeros(10)])
            result = make().start(
                grid=grid,
                initial_arrays=initial,
                num_rounds=rounds,
                train_config=ConfigRecord({"attack": name.split("/")[1]}),
                evaluate_fn=lambda _, arrays: MetricRecord(
                    {"accuracy": accuracy(arrays, x_test, y_test)}
                ),
            )
            curve = result.evaluate_metrics_serverapp
            results[name] = {
                "accuracy": float(curve[rounds]["accuracy"]),
                "accuracies": [float(curve[t]["accuracy"]) for t in range(1, rounds + 1)],
                "train_metrics": {t: dict(m) for t, m in result.train_metrics_clientapp.items()},
            }

    run_simulation(
        server_app=server,
        client_app=make_client_app(seed),
        num_supernodes=CLIENTS,
        backend_config={"client_resources": {"num_cpus": 1}, "init_args": {"num_cpus": 1}},
    )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    outcome = run(arguments.rounds, arguments.epsilon, arguments.seed)
    print(json.dumps({name: r["accuracy"] for name, r in outcome.items()}, indent=2))

"""RobustStrategy: its aggregation against hand computations, and a real Flower simulation."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr", reason="needs the 'flower' extra: pip install -e '.[flower]'")

from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.supercore.task_identity import TaskIdentity

from trilemma import accountants, aggregators
from trilemma.integrations.flower import RobustStrategy, WorkerNoise

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flower_digits.py"


@pytest.fixture(autouse=True)
def server_task(monkeypatch):
    """The task identity Flower's runtime sets before any Message is built (outside a run)."""
    for name, value in (("_run_id", 1), ("_task_id", 1), ("_node_id", 0)):
        if getattr(TaskIdentity, name) is None:
            monkeypatch.setattr(TaskIdentity, name, value)


class OneNodeGrid:
    """The part of Flower's Grid that FedAvg's configure_train reads."""

    def __init__(self, nodes: int) -> None:
        self.nodes = list(range(1, nodes + 1))

    def get_node_ids(self):
        return self.nodes


def global_model() -> ArrayRecord:
    weights = np.arange(6, dtype=np.float32).reshape(2, 3)
    steps = np.array([7], dtype=np.int64)
    return ArrayRecord({"weights": Array(weights), "steps": Array(steps)})


def reply(weights, steps=(7,), client=0, examples=10, arrays=None) -> Message:
    """A training reply as a client sends it (Flower's ``Message`` of a RecordDict)."""
    if arrays is None:
        arrays = ArrayRecord(
            {
                "weights": Array(np.asarray(weights, dtype=np.float32)),
                "steps": Array(np.asarray(steps, dtype=np.int64)),
            }
        )
    metrics = MetricRecord({"num-examples": examples, "client": client, "loss": float(client)})
    content = RecordDict({"arrays": arrays, "metrics": metrics})
    return Message(content=content, dst_node_id=client + 1, message_type=MessageType.TRAIN)


def configured(strategy: RobustStrategy, nodes: int = 5) -> RobustStrategy:
    """Run configure_train once so the strategy knows the global model."""
    strategy.configure_train(1, global_model(), ConfigRecord(), OneNodeGrid(nodes))
    return strategy


def honest_replies(rng: np.random.Generator, n: int) -> list[Message]:
    base = np.arange(6, dtype=np.float32).reshape(2, 3)
    return [reply(base + rng.normal(size=(2, 3)), client=i) for i in range(n)]


def model_of(record: ArrayRecord) -> np.ndarray:
    return np.asarray(record["weights"].numpy(), dtype=np.float64)


def test_aggregate_is_the_rule_on_updates_and_keeps_keys_shapes_dtypes():
    rng = np.random.default_rng(0)
    replies = honest_replies(rng, 5)
    strategy = configured(RobustStrategy("cwtm", f=1, min_available_nodes=5))
    arrays, _ = strategy.aggregate_train(1, replies)
    # coordinate-wise trimmed mean by hand: drop the largest and smallest of 5, average 3
    models = np.stack([model_of(r.content["arrays"]) for r in replies])
    expected = np.sort(models, axis=0)[1:-1].mean(axis=0)
    assert list(arrays.keys()) == ["weights", "steps"]
    assert arrays["weights"].numpy().dtype == np.float32
    assert arrays["steps"].numpy().dtype == np.int64
    np.testing.assert_allclose(model_of(arrays), expected, rtol=1e-6)
    assert int(arrays["steps"].numpy()[0]) == 7


def test_garbage_replies_never_make_the_model_non_finite():
    rng = np.random.default_rng(1)
    honest = honest_replies(rng, 5)
    garbage = [
        reply(np.full((2, 3), np.nan), client=5),
        reply(np.full((2, 3), np.inf), client=6),
        reply(np.zeros((3, 2)), client=7),  # wrong shape
        reply(None, client=8, arrays=ArrayRecord({"other": Array(np.zeros(6))})),  # wrong keys
    ]
    strategy = configured(RobustStrategy("nnm>>cwtm", f=4, min_available_nodes=9), nodes=9)
    arrays, metrics = strategy.aggregate_train(1, honest + garbage)
    assert np.isfinite(model_of(arrays)).all()
    assert metrics["garbage-updates"] == 4
    assert metrics["aggregate-finite"] == 1
    # the garbage rows are at infinity, so NNM's n − f = 5 neighbours of every honest row are
    # the honest rows: the aggregate is the honest mean
    honest_mean = np.mean([model_of(r.content["arrays"]) for r in honest], axis=0)
    np.testing.assert_allclose(model_of(arrays), honest_mean, rtol=1e-5)


def test_a_non_finite_mean_keeps_the_model():
    rng = np.random.default_rng(2)
    replies = [*honest_replies(rng, 4), reply(np.full((2, 3), np.nan), client=4)]
    strategy = configured(RobustStrategy("mean", min_available_nodes=5))
    arrays, metrics = strategy.aggregate_train(1, replies)
    assert arrays is None  # Flower keeps the current global model
    assert metrics["aggregate-finite"] == 0


def test_too_few_replies_for_the_rule_keep_the_model():
    rng = np.random.default_rng(3)
    strategy = configured(RobustStrategy("cwtm", f=2, min_available_nodes=4), nodes=4)
    arrays, _ = strategy.aggregate_train(1, honest_replies(rng, 4))
    assert arrays is None  # 2f < n fails with n = 4


def test_kappa_hat_is_the_ratio_paid_on_the_honest_clients():
    rng = np.random.default_rng(4)
    replies = [*honest_replies(rng, 6), reply(np.full((2, 3), 50.0), client=6)]
    strategy = configured(
        RobustStrategy(
            "cwmed",
            f=1,
            min_available_nodes=7,
            honest=lambda r: r.content["metrics"]["client"] < 6,
        ),
        nodes=7,
    )
    arrays, metrics = strategy.aggregate_train(1, replies)
    base = np.arange(6, dtype=np.float64).reshape(2, 3)
    updates = np.stack([model_of(r.content["arrays"]) - base for r in replies[:6]])
    mean = updates.mean(axis=0)
    spread = ((updates - mean) ** 2).sum(axis=(1, 2)).mean()
    error = ((model_of(arrays) - base - mean) ** 2).sum()
    assert metrics["kappa-hat"] == pytest.approx(error / spread, rel=1e-5)
    assert 0 < metrics["kappa-hat"] < 1


def test_training_metrics_leave_out_garbage_weights():
    rng = np.random.default_rng(5)
    replies = honest_replies(rng, 4)
    replies.append(reply(np.zeros((2, 3)), client=4, examples=float("nan")))
    strategy = configured(RobustStrategy("cwtm", f=2, min_available_nodes=5))
    _, metrics = strategy.aggregate_train(1, replies)
    assert metrics["loss"] == pytest.approx(np.mean([0, 1, 2, 3]))  # equal weights 10


def test_noise_has_the_calibrated_std_and_epsilon_is_reported():
    clients, size = 400, (40, 50)
    noise = WorkerNoise(epsilon=1.0, delta=1e-5, rounds=5, local_size=100, clip=1.0)
    std = accountants.worker_noise_std(epsilon=1.0, delta=1e-5, steps=5, local_size=100, clip=1.0)
    zeros = ArrayRecord({"w": Array(np.zeros(size))})
    replies = [reply(None, client=i, arrays=zeros) for i in range(clients)]
    strategy = RobustStrategy("mean", noise=noise, seed=3, min_available_nodes=clients)
    config = ConfigRecord()
    strategy.configure_train(3, zeros, config, OneNodeGrid(clients))
    assert config["noise-std"] == pytest.approx(std)
    assert config["clip"] == 1.0
    arrays, metrics = strategy.aggregate_train(3, replies)
    # mean of n independent N(0, s²) per coordinate: std s/√n; 2000 coordinates estimate it
    # within 1/√(2·2000) ≈ 1.6 % (one standard error)
    observed = np.asarray(arrays["w"].numpy()).std()
    assert observed == pytest.approx(std / math.sqrt(clients), rel=0.06)
    expected = accountants.worker_epsilon(
        noise_std=std, delta=1e-5, steps=3, local_size=100, clip=1.0
    )
    assert metrics["epsilon"] == pytest.approx(expected, rel=1e-12)
    assert noise.epsilon_after(5) <= 1.0


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="rule"):
        RobustStrategy(3)
    with pytest.raises(ValueError, match="pre-aggregation"):
        RobustStrategy("nnm", f=1)
    with pytest.raises(ValueError, match="name"):
        RobustStrategy("median-of-means")
    with pytest.raises(TypeError, match="noise"):
        RobustStrategy("cwtm", noise={"epsilon": 1.0})
    with pytest.raises(ValueError, match="epsilon"):
        WorkerNoise(epsilon=0.0, delta=1e-5, rounds=5, local_size=10, clip=1.0)
    with pytest.raises(ValueError, match="batch_size"):
        WorkerNoise(epsilon=1.0, delta=1e-5, rounds=5, local_size=10, clip=1.0, batch_size=11)
    assert isinstance(RobustStrategy(aggregators.SMEA(f=1)).rule, aggregators.SMEA)


@pytest.fixture(scope="module")
def digits_runs():
    """The example's six runs (FedAvg and trilemma under attack) in one Flower simulation."""
    pytest.importorskip("ray", reason="Flower's simulation engine needs flwr[simulation]")
    spec = importlib.util.spec_from_file_location("flower_digits", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example, example.run(rounds=10, epsilon=8.0, seed=0)


def test_simulation_trilemma_trains_where_fedavg_does_not(digits_runs):
    _, runs = digits_runs
    assert runs["fedavg/none"]["accuracy"] > 0.8  # without attack FedAvg learns
    assert runs["fedavg/sign-flip"]["accuracy"] < 0.3
    assert runs["fedavg/nan"]["accuracy"] < 0.3
    for name in ("trilemma/sign-flip", "trilemma/nan", "trilemma-dp/mixed"):
        assert runs[name]["accuracy"] > 0.8, name


def test_simulation_reports_garbage_kappa_and_epsilon_each_round(digits_runs):
    example, runs = digits_runs
    metrics = runs["trilemma-dp/mixed"]["train_metrics"]
    assert sorted(metrics) == list(range(1, 11))
    std = example.strategies(10, 8.0)["trilemma-dp/mixed"]().noise_std
    for t, record in metrics.items():
        assert record["garbage-updates"] == 1  # the NaN client; the sign flip is finite
        assert record["kappa-hat"] < 1.0
        expected = accountants.worker_epsilon(
            noise_std=std,
            delta=1e-5,
            steps=t,
            local_size=example.local_size(0),
            clip=example.LEARNING_RATE * example.GRADIENT_CLIP,
        )
        assert record["epsilon"] == pytest.approx(expected, rel=1e-12)
    assert metrics[10]["epsilon"] <= 8.0
    assert metrics[10]["epsilon"] == pytest.approx(8.0, abs=1e-4)

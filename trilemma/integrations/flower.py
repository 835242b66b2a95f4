"""A Flower strategy that aggregates the clients' updates with a trilemma rule.

:class:`RobustStrategy` is Flower's message-API ``FedAvg`` (flwr 1.42: node sampling,
configuration records, metric aggregation and federated evaluation unchanged) whose training
aggregation is replaced:

1. every training reply's model x_i is flattened and turned into the update Δ_i = x_i − w of the
   current global model w; a reply whose arrays are missing, mis-shaped or unreadable is a row of
   NaN (Byzantine data, never an error);
2. optionally, each update receives the Gaussian noise N(0, s² I) of a per-client
   (ε, δ)-DP guarantee, s from :func:`trilemma.accountants.worker_noise_std`;
3. w ← w + F(Δ_1, …, Δ_n) with F any rule or composition of :mod:`trilemma.aggregators`
   (``"nnm>>cwtm"``); client weights (``num-examples``) are ignored, since a Byzantine client
   could claim any weight. If F's output is not finite (only ``"mean"`` can do that), the model
   is kept unchanged and the round reports ``aggregate-finite = 0``.

With the honest clients known (simulation), the round's metrics carry the robustness ratio
κ̂ = ‖F(Δ) − Δ̄_H‖² / ((1/|H|) Σ_{i∈H} ‖Δ_i − Δ̄_H‖²) of
:func:`trilemma.aggregators.empirical_kappa` (Allouah et al., AISTATS 2023, arXiv:2302.01772,
Def. 1) [V]; with noise, the per-client ε spent after t rounds,
:func:`trilemma.accountants.worker_epsilon` with T = t messages [V].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from logging import INFO, WARNING
from typing import Any, Literal

import numpy as np
import torch

from trilemma import accountants, aggregators
from trilemma._validation import check_choice, check_int, check_real
from trilemma.integrations._extras import missing_extra

try:
    from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
    from flwr.serverapp import Grid
    from flwr.serverapp.strategy import FedAvg
    from flwr.supercore import log
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        missing_extra("trilemma.integrations.flower", package="flwr", extra="flower")
    ) from error

__all__ = ["RobustStrategy", "WorkerNoise"]


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerNoise:
    """Per-client Gaussian noise for (ε, δ)-DP of every client's messages w.r.t. one record.

    Each client holds ``local_size`` = m records; its update must be the average over a batch of
    ``batch_size`` = b records of per-record contributions of norm at most ``clip`` = C (one
    local step of per-example-clipped gradient descent: C = learning rate × gradient clipping
    norm). Over ``rounds`` = T messages, N(0, s² I) with s = z(ε, δ, T, b/m) · C / b makes each
    client (ε, δ)-DP under replace-one (Allouah et al., ICML 2023, arXiv:2302.04787, Sec. 3;
    :func:`trilemma.accountants.worker_noise_std`) [V]. A client that does not train every
    round spends at most this ε.

    Parameters
    ----------
    epsilon, delta : float
        Per-client budget after ``rounds`` rounds.
    rounds : int
        Number of training rounds T the budget covers.
    local_size : int
        Records per client m.
    clip : float
        Norm bound C of one record's contribution to the update (before averaging).
    batch_size : int, optional
        Records per update b ≤ m; ``None`` is the full local dataset.
    method : {"rdp", "pld"}
        Accountant (sampling without replacement, b < m, needs ``"rdp"``).

    Examples
    --------
    >>> noise = WorkerNoise(epsilon=2.0, delta=1e-5, rounds=10, local_size=100, clip=1.0)
    >>> round(noise.std(), 4), round(noise.epsilon_after(10), 4)
    (0.1359, 2.0)
    """

    epsilon: float
    delta: float
    rounds: int
    local_size: int
    clip: float
    batch_size: int | None = None
    method: Literal["rdp", "pld"] = "rdp"

    def __post_init__(self) -> None:
        check_real("epsilon", self.epsilon, low=0, low_open=True)
        check_real("delta", self.delta, low=0, high=1, low_open=True, high_open=True)
        check_int("rounds", self.rounds, low=1)
        check_int("local_size", self.local_size, low=1)
        check_real("clip", self.clip, low=0, low_open=True)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, low=1, high=self.local_size)
        check_choice("method", self.method, ("rdp", "pld"))

    def std(self) -> float:
        """Noise standard deviation s per coordinate of each client's update."""
        return accountants.worker_noise_std(
            epsilon=self.epsilon,
            delta=self.delta,
            steps=self.rounds,
            local_size=self.local_size,
            clip=self.clip,
            batch_size=self.batch_size,
            method=self.method,
        )

    def epsilon_after(self, rounds: int) -> float:
        """Per-client ε spent after ``rounds`` noised messages."""
        return accountants.worker_epsilon(
            noise_std=self.std(),
            delta=self.delta,
            steps=check_int("rounds", rounds, low=1),
            local_size=self.local_size,
            clip=self.clip,
            batch_size=self.batch_size,
            method=self.method,
        )


def _read_model(
    arrays: object, keys: Sequence[str], shapes: Sequence[tuple[int, ...]]
) -> list[np.ndarray] | None:
    """The reply's arrays in the global model's order, or ``None`` when they do not match it."""
    if not isinstance(arrays, ArrayRecord) or list(arrays.keys()) != list(keys):
        return None
    try:
        values = [np.asarray(arrays[key].numpy()) for key in keys]
    except Exception:  # a Byzantine reply may carry unreadable bytes: it is data, not an error
        return None
    if [value.shape for value in values] != list(shapes):
        return None
    return values


class RobustStrategy(FedAvg):
    """Flower ``FedAvg`` whose training aggregation is a trilemma robust rule.

    Parameters
    ----------
    rule : str or Aggregator
        A rule of :func:`trilemma.aggregators.get` (``"cwtm"``, ``"nnm>>cwtm"``, …) or an
        aggregator instance.
    f : int
        Byzantine clients tolerated, when ``rule`` is a name.
    honest : callable, optional
        ``honest(reply) -> bool`` says whether a training reply comes from an honest client
        (known in simulation only); then each round logs κ̂ as the ``kappa-hat`` metric.
    noise : WorkerNoise, optional
        Adds N(0, s² I) to every client's update on arrival and reports ``epsilon`` (per-client,
        after t rounds) in the round's training metrics. The noise is drawn on the server,
        which is the distributed-DP mechanism as the other clients and the released model see
        it; against a curious server, clients add it themselves: the strategy sends
        ``noise-std`` and ``clip`` in every training configuration.
    seed : int
        Seed of the noise generator.
    **fedavg
        Keyword arguments of Flower's ``FedAvg`` (``fraction_train``, ``min_train_nodes``,
        ``fraction_evaluate``, ``arrayrecord_key``, ``train_metrics_aggr_fn``, …).

    Examples
    --------
    >>> strategy = RobustStrategy(rule="nnm>>cwtm", f=2, fraction_evaluate=0.0)
    >>> strategy.rule
    NNM(f=2) >> CWTM(f=2)
    """

    def __init__(
        self,
        rule: str | aggregators.Aggregator = "nnm>>cwtm",
        *,
        f: int = 0,
        honest: Callable[[Message], bool] | None = None,
        noise: WorkerNoise | None = None,
        seed: int = 0,
        **fedavg: Any,  # forwarded to FedAvg, which types and checks them
    ) -> None:
        super().__init__(**fedavg)
        if isinstance(rule, str):
            built = aggregators.get(rule, f=check_int("f", f, low=0))
        elif isinstance(rule, aggregators.Aggregator):
            built = rule
        else:
            raise TypeError(f"rule must be a name or an Aggregator, got {type(rule).__name__}")
        if not isinstance(built, aggregators.Aggregator):
            raise ValueError(f"rule={rule!r} is a pre-aggregation; compose it with a rule (>>)")
        if honest is not None and not callable(honest):
            raise TypeError(f"honest must be callable, got {type(honest).__name__}")
        if noise is not None and not isinstance(noise, WorkerNoise):
            raise TypeError(f"noise must be a WorkerNoise, got {type(noise).__name__}")
        self.rule = built
        self.honest = honest
        self.noise = noise
        self.noise_std = None if noise is None else noise.std()
        self._generator = torch.Generator().manual_seed(check_int("seed", seed, low=0))
        self._global: ArrayRecord | None = None

    def summary(self) -> None:
        """Log the rule and the noise, then FedAvg's sampling settings."""
        log(INFO, "\t├──> Robust aggregation: %r", self.rule)
        if self.noise is not None:
            log(INFO, "\t├──> Per-client noise std %.6g for %s", self.noise_std, self.noise)
        super().summary()

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """FedAvg's configuration, remembering the global model and sending the noise scale."""
        self._global = arrays
        if self.noise is not None and self.noise_std is not None:  # both set or both None
            config["noise-std"] = float(self.noise_std)
            config["clip"] = float(self.noise.clip)
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """w + F(updates): robust, garbage-safe; metrics of the honest-weighted replies."""
        if self._global is None:
            raise RuntimeError("aggregate_train before configure_train: no global model known")
        valid = [reply for reply in replies if not reply.has_error()]
        if not valid:
            return None, None
        updates, garbage = self._updates(self._global, valid)
        if self.noise_std is not None:
            noise = torch.randn(updates.shape, generator=self._generator, dtype=updates.dtype)
            updates = updates + self.noise_std * noise
        metrics = self._client_metrics(valid)
        metrics["garbage-updates"] = garbage
        n = updates.shape[0]
        if n < self.rule.min_workers():
            log(WARNING, "%r needs %d replies, got %d", self.rule, self.rule.min_workers(), n)
            return None, metrics
        step = self.rule(updates)
        if self.honest is not None:
            mask = torch.tensor([bool(self.honest(reply)) for reply in valid])
            if bool(mask.any()):
                kappa = aggregators.empirical_kappa(lambda _: step, updates, mask)
                metrics["kappa-hat"] = float(kappa)
                log(INFO, "\t├──> robustness ratio κ̂ = %.4g (round %d)", kappa, server_round)
        if self.noise is not None:
            metrics["epsilon"] = self.noise.epsilon_after(server_round)
        finite = bool(torch.isfinite(step).all())
        metrics["aggregate-finite"] = int(finite)
        if not finite:
            log(WARNING, "%r gave a non-finite aggregate; the model is kept", self.rule)
            return None, metrics
        return self._apply(self._global, step), metrics

    def _updates(self, model: ArrayRecord, replies: list[Message]) -> tuple[torch.Tensor, int]:
        """Updates Δ_i = x_i − w of the global ``model`` w as rows ``(n, d)`` (float64 if the
        model has a float64 array, float32 otherwise), NaN rows for unreadable replies, and the
        number of garbage rows (unreadable or non-finite)."""
        keys = list(model.keys())
        base = [np.asarray(model[key].numpy()) for key in keys]
        shapes = [value.shape for value in base]
        wide = any(value.dtype == np.float64 for value in base)
        dtype = np.float64 if wide else np.float32
        flat_base = np.concatenate([value.ravel().astype(dtype) for value in base])
        rows = np.full((len(replies), flat_base.size), np.nan, dtype=dtype)
        for row, reply in zip(rows, replies, strict=True):
            values = _read_model(reply.content.get(self.arrayrecord_key), keys, shapes)
            if values is not None:
                with np.errstate(all="ignore"):  # overflowing garbage becomes ±inf: data
                    flat = np.concatenate([v.ravel().astype(dtype) for v in values])
                    row[:] = flat - flat_base
        garbage = int((~np.isfinite(rows).all(axis=1)).sum())
        return torch.from_numpy(rows), garbage

    def _apply(self, model: ArrayRecord, step: torch.Tensor) -> ArrayRecord:
        """The new global model w + step, split and cast back to the arrays of ``model`` w."""
        result: dict[str, Array] = {}
        start = 0
        for key, array in model.items():
            value = np.asarray(array.numpy())
            stop = start + value.size
            new = value.astype(np.float64) + step[start:stop].numpy().reshape(value.shape)
            if not np.issubdtype(value.dtype, np.floating):
                new = np.rint(new)
            result[key] = Array(new.astype(value.dtype))
            start = stop
        return ArrayRecord(result)

    def _client_metrics(self, replies: list[Message]) -> MetricRecord:
        """FedAvg's metric aggregation over the replies whose weight is finite and positive
        (garbage weights of Byzantine clients are left out); empty when none or when it fails."""
        usable = []
        for reply in replies:
            records = list(reply.content.metric_records.values())
            weight = records[0].get(self.weighted_by_key) if len(records) == 1 else None
            if isinstance(weight, int | float) and np.isfinite(weight) and weight > 0:
                usable.append(reply.content)
        if not usable:
            return MetricRecord()
        try:
            return self.train_metrics_aggr_fn(usable, self.weighted_by_key)
        except (ValueError, TypeError, ZeroDivisionError) as error:
            log(WARNING, "training metrics not aggregated: %s", error)
            return MetricRecord()

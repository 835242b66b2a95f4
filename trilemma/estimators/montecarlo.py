"""Monte Carlo harness: sweep points × trials as batch dimensions, tidy records out.

A sweep is a list of :class:`SweepPoint` (protocol, dimension d, records per worker m, data
family). Points that differ only in their privacy budget (ε, δ) share everything else, so they
are stacked with the trials into one batch ``(points, trials, h, m, d)`` and estimated in one
protocol call, the noise of each point scaled by its own std; trials are cut into chunks that
keep the records tensor under ``max_elements``. Each trial gives one record (a dict): the point's
parameters, the trial index, the noise std, the measured errors and the upper bound of
:mod:`trilemma.bounds` conditional on that trial's data (see :func:`upper_bound`).
:func:`summarize` turns records into one row per point with mean ± 95 % confidence interval.

Determinism: group k of a sweep draws from ``torch.Generator().manual_seed(seed + k)`` (CPU), so
the same points, trials, seed and ``max_elements`` give the same numbers on every CPU run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from scipy import stats

from trilemma import bounds
from trilemma._validation import check_int
from trilemma.estimators.data import (
    DATASETS,
    ball_records,
    dataset_records,
    marginal_averages,
    product_biases,
)
from trilemma.estimators.protocols import DistributedMeanEstimation, subset_statistics

__all__ = [
    "DATA_FAMILIES",
    "SweepPoint",
    "bound_holds",
    "bound_kind",
    "mean_interval",
    "run_sweep",
    "summarize",
    "upper_bound",
]

DATA_FAMILIES: tuple[str, ...] = ("marginals", "ball", *DATASETS)
METRICS: tuple[str, ...] = ("error", "excess", "honest_error", "upper_bound")
_PER_TRIAL = frozenset({"trial", *METRICS})


@dataclass(frozen=True, kw_only=True)
class SweepPoint:
    """One configuration of a sweep.

    Parameters
    ----------
    protocol : DistributedMeanEstimation
        Estimator (privacy model, rule, attack, n, f, ε, δ, C).
    d : int
        Dimension (for a scikit-learn dataset: must equal its number of features).
    m : int
        Records per worker.
    data : str
        ``"marginals"`` (:func:`~trilemma.estimators.marginal_records` with uniform biases;
        the worker averages are drawn exactly by
        :func:`~trilemma.estimators.marginal_averages`, so any m is cheap),
        ``"ball"`` (:func:`~trilemma.estimators.ball_records`) or a dataset name of
        :data:`~trilemma.estimators.DATASETS`.
    labels : mapping
        Extra columns copied into every record (e.g. ``{"series": "SMEA"}``).
    """

    protocol: DistributedMeanEstimation
    d: int
    m: int
    data: str = "marginals"
    labels: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not isinstance(self.protocol, DistributedMeanEstimation):
            raise TypeError(
                f"protocol must be a DistributedMeanEstimation, got {type(self.protocol).__name__}"
            )
        check_int("d", self.d, low=1)
        check_int("m", self.m, low=1)
        if self.data not in DATA_FAMILIES:
            raise ValueError(f"data={self.data!r} is not valid; choose one of: {DATA_FAMILIES}")
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))

    def _group_key(self) -> tuple[Any, ...]:
        p = self.protocol
        return (p.n, p.f, p.clip, p.rule, p.attack, p.privacy, self.d, self.m, self.data)

    def columns(self) -> dict[str, Any]:
        """The point's parameters as record columns."""
        p = self.protocol
        return {
            "privacy": p.privacy,
            "rule": p.rule if isinstance(p.rule, str) else getattr(p.rule, "name", repr(p.rule)),
            "attack": "none" if p.attack is None else str(p.attack),
            "n": p.n,
            "f": p.f,
            "byzantine": p.byzantine,
            "m": self.m,
            "d": self.d,
            "epsilon": p.epsilon,
            "delta": p.delta,
            "clip": p.clip,
            "data": self.data,
            **self.labels,
        }


def bound_kind(protocol: DistributedMeanEstimation) -> str:
    """What :func:`upper_bound` returns for ``protocol``: ``"exact"`` (the expected error
    itself: central model, the mean without attack, or a rule with κ = 0 at f = 0, which must
    return the mean), ``"upper"`` (a bound) or ``"none"`` (NaN: a callable rule or a rule
    without a known κ).

    ``"upper"`` rests on the κ of :func:`trilemma.bounds.kappa`, which serves only constants that
    are derived ([D]: SMEA, MDA, the mean) or recalled ([R]: CWTM, CWMed, GM, Krum, NNM) and not
    refuted by any instance the package knows (``tests/aggregators/test_kappa_search.py``
    asserts it for every rule it accepts); a refuted constant is removed from
    :data:`trilemma.bounds.KAPPA_TABLE`, which turns its rows into ``"none"``, as MDA's recalled
    row was replaced by the derived :func:`trilemma.bounds.mda_kappa`."""
    if protocol.privacy == "central" or (protocol.rule == "mean" and protocol.byzantine == 0):
        return "exact"
    if not isinstance(protocol.rule, str):
        return "none"
    try:
        kappa = float(bounds.kappa(protocol.rule, n=protocol.n, f=protocol.f))
    except ValueError:
        return "none"
    return "exact" if protocol.f == 0 and kappa == 0 else "upper"


def bound_holds(row: Mapping[str, Any], *, tolerance: float = 2.0) -> bool:
    """Whether a :func:`summarize` row agrees with its bound.

    ``"upper"``: the measured mean error is ≤ the bound (an infinite bound always holds);
    ``"exact"``: it lies within ``tolerance`` confidence half-widths of the expectation;
    ``"none"``: True (nothing to check).
    """
    kind = row["bound_kind"]
    if kind == "upper":
        return bool(row["error_mean"] <= row["upper_bound"])
    if kind == "exact":
        return bool(abs(row["error_mean"] - row["upper_bound"]) <= tolerance * row["error_ci"])
    return True


def upper_bound(
    protocol: DistributedMeanEstimation, *, d: int, noise_std: float, averages: torch.Tensor
) -> np.ndarray:
    """Bound on E‖F − x̄_H‖² given the noise-free worker averages, one value per batch element.

    - ``privacy="central"``: d s², the exact expectation of the released mean's error;
    - rule ``"mean"`` without attack: d s²/h, exact (:func:`trilemma.bounds.honest_average_error`);
    - rule ``"smea"``: :func:`trilemma.bounds.smea_upper_bound` with κ_sp = 4f/(n − 2f);
    - a rule named in :data:`trilemma.bounds.KAPPA_TABLE` (or ``"nnm>>"`` + one):
      :func:`trilemma.bounds.naive_upper_bound` with its κ (inf for the attacked mean; MDA's
      is the derived :func:`trilemma.bounds.mda_kappa`, the [R] rows are unverified
      constants no instance refutes, see :func:`bound_kind`);
    - anything else (a callable rule, a rule without a κ): NaN.

    The data terms are those of S = the first n − f honest workers
    (:func:`~trilemma.estimators.subset_statistics`); with an attack S is the whole honest set.

    Parameters
    ----------
    protocol : DistributedMeanEstimation
    d : int
        Dimension.
    noise_std : float
        Std of the noise on each honest message.
    averages : torch.Tensor
        Noise-free worker averages ``(..., h, d)``.
    """
    batch = averages.shape[:-2]
    p = protocol
    kind = bound_kind(p)
    if kind == "exact":
        h = 1 if p.privacy == "central" else p.n
        value = bounds.honest_average_error(d=d, n_honest=h, noise_std=noise_std)
        return np.broadcast_to(value, batch).copy()
    if kind == "none":
        return np.full(batch, np.nan)
    spread, top, offset = (t.double().cpu().numpy() for t in subset_statistics(averages, p.n - p.f))
    if p.rule == "smea":
        return bounds.smea_upper_bound(
            d=d,
            n=p.n,
            f=p.f,
            noise_std=noise_std,
            data_top_eigenvalue=top,
            data_offset=offset,
        )
    return bounds.naive_upper_bound(
        kappa=bounds.kappa(p.rule, n=p.n, f=p.f),
        d=d,
        n=p.n,
        f=p.f,
        noise_std=noise_std,
        data_spread=spread,
        data_offset=offset,
    )


def _averages(
    point: SweepPoint,
    batch_shape: tuple[int, ...],
    generator: torch.Generator,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Honest worker averages ``(*batch_shape, h, d)`` of the point's data family."""
    h = point.protocol.honest_workers()
    clip = point.protocol.clip
    if point.data == "marginals":
        biases = product_biases(d=point.d, batch_shape=batch_shape, generator=generator)
        return marginal_averages(biases, n=h, m=point.m, clip=clip, generator=generator).to(dtype)
    if point.data == "ball":
        records = ball_records(
            d=point.d,
            n=h,
            m=point.m,
            batch_shape=batch_shape,
            clip=clip,
            generator=generator,
            dtype=dtype,
        )
        return records.mean(dim=-2)
    records = dataset_records(
        point.data,
        n=h,
        m=point.m,
        batch_shape=batch_shape,
        clip=clip,
        generator=generator,
        dtype=dtype,
    )
    if records.shape[-1] != point.d:
        raise ValueError(
            f"data={point.data!r} has d={records.shape[-1]}, the point says d={point.d}"
        )
    return records.mean(dim=-2)


def _groups(points: Sequence[SweepPoint]) -> list[list[int]]:
    order: dict[tuple[Any, ...], list[int]] = {}
    for index, point in enumerate(points):
        order.setdefault(point._group_key(), []).append(index)
    return list(order.values())


def run_sweep(
    points: Iterable[SweepPoint],
    *,
    trials: int = 200,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    max_elements: int = 2**24,
    progress: bool | Callable[[int], None] = False,
) -> list[dict[str, Any]]:
    """Run every point ``trials`` times; one record per (point, trial).

    Parameters
    ----------
    points : iterable of SweepPoint
    trials : int
        Monte Carlo trials per point (≥ 1).
    seed : int
        Base seed (see the module docstring).
    device : str or torch.device
        Where the estimation runs (``"cuda"`` for a GPU); the noise is drawn on the CPU.
    dtype : torch.dtype
        Floating dtype of the computation.
    max_elements : int
        Largest number of record entries held at once (trials are chunked to fit).
    progress : bool or callable
        ``True`` shows a progress bar (tqdm) over the estimated trials; a callable receives the
        number of trials done after each chunk.

    Returns
    -------
    list of dict
        Columns of :meth:`SweepPoint.columns`, then ``trial``, ``noise_std``, ``error``
        (‖F − x̄_H‖²), ``excess`` (‖F − ȳ_H‖²), ``honest_error`` (‖ȳ_H − x̄_H‖²),
        ``upper_bound`` (:func:`upper_bound`), ``bound_kind`` (:func:`bound_kind`) and
        ``lower_bound``
        (:func:`trilemma.bounds.trilemma_lower_bound` with constant 1). Records come in the
        order of the points.

    Examples
    --------
    >>> from trilemma.estimators import DistributedMeanEstimation
    >>> points = [SweepPoint(protocol=DistributedMeanEstimation(n=5, f=1, epsilon=eps,
    ...                                                          rule="cwtm", attack="alie"),
    ...                      d=4, m=3) for eps in (0.5, 2.0)]
    >>> rows = run_sweep(points, trials=50, seed=1)
    >>> len(rows), rows[0]["epsilon"], rows[-1]["epsilon"], rows[-1]["trial"]
    (100, 0.5, 2.0, 49)
    """
    points = list(points)
    trials = check_int("trials", trials, low=1)
    seed = check_int("seed", seed)
    max_elements = check_int("max_elements", max_elements, low=1)
    device = torch.device(device)
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    for point in points:
        if not isinstance(point, SweepPoint):
            raise TypeError(f"points must hold SweepPoint objects, got {type(point).__name__}")
    report = _progress(progress, total=trials * len(points))
    results: list[list[dict[str, Any]]] = [[] for _ in points]
    try:
        for group_index, members in enumerate(_groups(points)):
            generator = torch.Generator().manual_seed(seed + group_index)
            _run_group(
                [points[i] for i in members],
                members,
                trials,
                generator,
                device,
                dtype,
                max_elements,
                results,
                report,
            )
    finally:
        report(None)
    return [row for rows in results for row in rows]


def _run_group(
    group: list[SweepPoint],
    members: list[int],
    trials: int,
    generator: torch.Generator,
    device: torch.device,
    dtype: torch.dtype,
    max_elements: int,
    results: list[list[dict[str, Any]]],
    report: Callable[[int | None], None],
) -> None:
    reference = group[0]
    protocol, d, m = reference.protocol, reference.d, reference.m
    h = protocol.honest_workers()
    stds = [point.protocol.noise_std(m) for point in group]
    base = stds[0] if stds[0] > 0 else 1.0
    scale = torch.tensor([std / base for std in stds], dtype=dtype)
    per_trial = len(group) * h * d * (1 if reference.data == "marginals" else m)
    chunk = max(1, min(trials, max_elements // per_trial))
    columns = [{**point.columns(), "bound_kind": bound_kind(point.protocol)} for point in group]
    lower = [
        float(
            bounds.trilemma_lower_bound(
                d=d,
                n=p.protocol.n,
                f=p.protocol.f,
                m=m,
                epsilon=p.protocol.epsilon,
                delta=p.protocol.delta,
                clip=p.protocol.clip,
            )
        )
        if p.protocol.privacy != "none"
        else 0.0
        for p in group
    ]
    for start in range(0, trials, chunk):
        size = min(chunk, trials - start)
        averages = _averages(reference, (len(group), size), generator, dtype).to(device)
        result = protocol.estimate_averages(averages, m=m, generator=generator, noise_scale=scale)
        metrics = {
            "error": result.error.double().cpu().numpy(),
            "excess": result.excess.double().cpu().numpy(),
            "honest_error": result.honest_error.double().cpu().numpy(),
        }
        for k, point in enumerate(group):
            ub = upper_bound(point.protocol, d=d, noise_std=stds[k], averages=averages[k])
            for t in range(size):
                results[members[k]].append(
                    {
                        **columns[k],
                        "trial": start + t,
                        "noise_std": stds[k],
                        **{name: float(values[k, t]) for name, values in metrics.items()},
                        "upper_bound": float(ub[t]),
                        "lower_bound": lower[k],
                    }
                )
        report(size * len(group))


def _progress(
    progress: bool | Callable[[int], None], *, total: int
) -> Callable[[int | None], None]:
    """A reporter taking a trial count, or None to close."""
    if callable(progress):

        def forward(done: int | None) -> None:
            if done is not None:
                progress(done)

        return forward
    if not progress:
        return lambda done: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit="trial", dynamic_ncols=True)

    def update(done: int | None) -> None:
        if done is None:
            bar.close()
        else:
            bar.update(done)

    return update


def summarize(
    records: Iterable[Mapping[str, Any]], *, confidence: float = 0.95
) -> list[dict[str, Any]]:
    """One row per point: mean, standard deviation and confidence half-width of each metric.

    Records are grouped by every column except ``trial`` and the per-trial metrics; for each of
    ``error``, ``excess``, ``honest_error`` the row holds ``<metric>_mean``, ``<metric>_std``
    and ``<metric>_ci`` (half-width of the Student-t interval of the mean at ``confidence``),
    plus ``upper_bound`` (mean of the per-trial conditional bounds, a bound on the expected
    error) and ``trials``.

    Examples
    --------
    >>> rows = [{"d": 4, "trial": t, "error": e, "excess": 0.0, "honest_error": e,
    ...          "upper_bound": 3.0} for t, e in enumerate([1.0, 2.0, 3.0])]
    >>> row = summarize(rows)[0]
    >>> row["d"], row["trials"], row["error_mean"], round(row["error_ci"], 4)
    (4, 3, 2.0, 2.4841)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must lie in (0, 1)")
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    keys: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in records:
        point = {k: v for k, v in record.items() if k not in _PER_TRIAL}
        key = tuple(sorted(point.items(), key=lambda item: item[0]))
        groups.setdefault(key, []).append(record)
        keys.setdefault(key, point)
    rows = []
    for key, members in groups.items():
        row = dict(keys[key])
        count = len(members)
        row["trials"] = count
        for metric in ("error", "excess", "honest_error"):
            values = np.array([r[metric] for r in members], dtype=np.float64)
            row[f"{metric}_mean"] = float(values.mean())
            row[f"{metric}_std"] = float(values.std(ddof=1)) if count > 1 else math.nan
            row[f"{metric}_ci"] = mean_interval(values, confidence=confidence)
        row["upper_bound"] = float(np.mean([r["upper_bound"] for r in members]))
        rows.append(row)
    return rows


def mean_interval(values: Sequence[float] | np.ndarray, *, confidence: float = 0.95) -> float:
    """Half-width of the Student-t confidence interval of the mean of ``values``:
    t_{(1 + c)/2, S − 1} · s/√S, s the sample standard deviation (divisor S − 1); ``inf`` for
    fewer than two values.

    Examples
    --------
    >>> round(mean_interval([0.5, 0.7, 0.9]), 6)  # t_{0.975, 2} = 4.302653
    0.496828
    """
    array = np.asarray(values, dtype=np.float64)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must lie in (0, 1)")
    count = array.size
    if count < 2:
        return math.inf
    quantile = float(stats.t.ppf(0.5 + confidence / 2, count - 1))
    return quantile * float(array.std(ddof=1)) / math.sqrt(count)

"""What a Monte Carlo sweep runs and the bound each of its points is held to.

A sweep is a list of :class:`SweepPoint` (protocol, dimension d, records per worker m, data
family, extra label columns); :func:`bound_kind` says whether a point's error has an exact
expectation, an upper bound or neither, and :func:`upper_bound` evaluates it per trial from the
trial's noise-free worker averages (:mod:`trilemma.bounds`). :mod:`trilemma.estimators.montecarlo`
runs the points, :mod:`trilemma.estimators.summary` summarises the records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from trilemma import bounds
from trilemma._validation import check_int
from trilemma.estimators.data import DATASETS
from trilemma.estimators.protocols import DistributedMeanEstimation, subset_statistics

__all__ = ["DATA_FAMILIES", "SweepPoint", "bound_kind", "upper_bound"]

DATA_FAMILIES: tuple[str, ...] = ("marginals", "ball", *DATASETS)


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
    if kind == "none" or not isinstance(p.rule, str):  # a callable rule is "none"
        return np.full(batch, np.nan)
    statistics = subset_statistics(averages, p.n - p.f, top=p.rule == "smea")
    spread, top, offset = (t.double().cpu().numpy() for t in statistics)
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

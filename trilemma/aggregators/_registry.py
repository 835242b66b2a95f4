"""A string registry of rules and pre-aggregations: ``get("cwtm", f=2)``."""

from __future__ import annotations

from trilemma._validation import check_choice
from trilemma.aggregators._base import Aggregator, PreAggregator
from trilemma.aggregators.coordinatewise import CWTM, CWMed, Meamed, Mean
from trilemma.aggregators.distance import MDA, Bulyan, Krum, MoNNA, MultiKrum
from trilemma.aggregators.iterative import CenteredClipping, GeometricMedian
from trilemma.aggregators.preaggregation import ARC, NNM, Bucketing, Clipping
from trilemma.aggregators.spectral import CAF, SMEA

__all__ = ["available", "get"]

_REGISTRY: dict[str, type[Aggregator] | type[PreAggregator]] = {
    "mean": Mean,
    "cwmed": CWMed,
    "cwtm": CWTM,
    "meamed": Meamed,
    "gm": GeometricMedian,
    "krum": Krum,
    "multikrum": MultiKrum,
    "mda": MDA,
    "bulyan": Bulyan,
    "cc": CenteredClipping,
    "monna": MoNNA,
    "caf": CAF,
    "smea": SMEA,
    "nnm": NNM,
    "bucketing": Bucketing,
    "arc": ARC,
    "clip": Clipping,
}


def available(kind: str = "all") -> tuple[str, ...]:
    """Registered names: ``kind`` in {"all", "rules", "pre"}."""
    check_choice("kind", kind, ("all", "rules", "pre"))
    names = tuple(_REGISTRY)
    if kind == "rules":
        return tuple(n for n in names if issubclass(_REGISTRY[n], Aggregator))
    if kind == "pre":
        return tuple(n for n in names if issubclass(_REGISTRY[n], PreAggregator))
    return names


def get(name: str, **params: object) -> Aggregator | PreAggregator:
    """Instantiate a registered rule or pre-aggregation; ``"nnm>>cwtm"`` composes.

    Examples
    --------
    >>> get("cwtm", f=2)
    CWTM(f=2)
    >>> get("nnm>>cwtm", f=1)
    NNM(f=1) >> CWTM(f=1)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    parts = [part.strip().lower() for part in name.split(">>")]
    for part in parts:
        check_choice("name", part, _REGISTRY)
    if len(parts) == 1:
        return _REGISTRY[parts[0]](**params)
    f = params.pop("f", 0)
    *pre_names, rule_name = parts
    result = _REGISTRY[rule_name](f=f, **params)
    for pre_name in reversed(pre_names):
        result = _REGISTRY[pre_name](f=f) >> result
    return result

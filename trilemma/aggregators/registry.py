"""An open string registry of rules and pre-aggregations: ``get("cwtm", f=2)``, ``register``.

The built-in rules are registered below through the same :func:`register` decorator a user
applies to a new rule (see the README section "Extending trilemma").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from trilemma._validation import check_choice
from trilemma.aggregators._base import Aggregator, PreAggregator
from trilemma.aggregators.coordinatewise import CWTM, CWMed, Meamed, Mean
from trilemma.aggregators.distance import MDA, Bulyan, Krum, MoNNA, MultiKrum
from trilemma.aggregators.iterative import CenteredClipping, GeometricMedian
from trilemma.aggregators.preaggregation import ARC, NNM, Bucketing, Clipping
from trilemma.aggregators.spectral import CAF, SMEA

__all__ = ["available", "get", "register"]

Factory = Callable[..., Aggregator | PreAggregator]
F = TypeVar("F", bound=Factory)

_REGISTRY: dict[str, Factory] = {}


def register(name: str) -> Callable[[F], F]:
    """Decorator: register a rule or pre-aggregation class (or factory) as ``name``.

    The decorated object is returned unchanged; ``get(name, f=..., **params)`` then calls it
    with those keywords and must receive an :class:`~trilemma.aggregators.Aggregator` or a
    :class:`~trilemma.aggregators.PreAggregator`.

    Parameters
    ----------
    name : str
        Lower-case name without ``">>"`` (which composes names), not yet registered.

    Raises
    ------
    TypeError
        If ``name`` is not a string or the decorated object is not callable.
    ValueError
        If ``name`` is empty, not lower-case, contains ``">>"`` or is already registered.

    Examples
    --------
    >>> from trilemma.aggregators import Mean
    >>> @register("doc-mean")
    ... class DocMean(Mean):
    ...     pass
    >>> get("doc-mean", f=0)
    DocMean(f=0)
    >>> register("doc-mean")(DocMean)
    Traceback (most recent call last):
    ...
    ValueError: name='doc-mean' is already registered
    >>> _ = _REGISTRY.pop("doc-mean")
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if not name or name != name.strip().lower() or ">>" in name:
        raise ValueError(f"name={name!r} must be a non-empty lower-case name without '>>'")
    if name in _REGISTRY:
        raise ValueError(f"name={name!r} is already registered")

    def decorate(factory: F) -> F:
        if not callable(factory):
            raise TypeError(f"register({name!r}) needs a class or a callable, got {factory!r}")
        _REGISTRY[name] = factory
        return factory

    return decorate


for _name, _class in (
    ("mean", Mean),
    ("cwmed", CWMed),
    ("cwtm", CWTM),
    ("meamed", Meamed),
    ("gm", GeometricMedian),
    ("krum", Krum),
    ("multikrum", MultiKrum),
    ("mda", MDA),
    ("bulyan", Bulyan),
    ("cc", CenteredClipping),
    ("monna", MoNNA),
    ("caf", CAF),
    ("smea", SMEA),
    ("nnm", NNM),
    ("bucketing", Bucketing),
    ("arc", ARC),
    ("clip", Clipping),
):
    register(_name)(_class)


def _is(name: str, kind: type) -> bool:
    factory = _REGISTRY[name]
    return isinstance(factory, type) and issubclass(factory, kind)


def available(kind: str = "all") -> tuple[str, ...]:
    """Registered names: ``kind`` in {"all", "rules", "pre"}.

    A factory that is not a class counts in ``"all"`` only (its kind is known once called).
    """
    check_choice("kind", kind, ("all", "rules", "pre"))
    names = tuple(_REGISTRY)
    if kind == "rules":
        return tuple(n for n in names if _is(n, Aggregator))
    if kind == "pre":
        return tuple(n for n in names if _is(n, PreAggregator))
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

"""An open string registry of the attacks: ``get("alie", z=1.0)``, ``available()``,
``register``, and :func:`resolve`, the one place that turns what a caller was given (a name or
an attack) into what its Byzantine workers do.

The built-in attacks are registered below through the same :func:`register` decorator a user
applies to a new attack (see the README section "Extending trilemma").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import torch

from trilemma._validation import check_choice
from trilemma.attacks._base import Attack, Rule
from trilemma.attacks.alie import ALIE
from trilemma.attacks.degenerate import HugeAttack, InfAttack, NaNAttack
from trilemma.attacks.label_flipping import LabelFlipping
from trilemma.attacks.mean_based import FOE, SignFlipping
from trilemma.attacks.mimic import Mimic
from trilemma.attacks.noise import GaussianAttack
from trilemma.attacks.optimal import OptimalALIE, OptimalFOE, OptimalShift, Strongest
from trilemma.attacks.shift import ShiftAttack

__all__ = ["LABEL_FLIPPING", "STRONGEST", "available", "get", "register", "resolve"]

#: Name of the data-poisoning attack :func:`resolve` answers with a :class:`LabelFlipping`.
LABEL_FLIPPING = "label_flipping"
#: Name of the worst of the line-search ALIE and shift attacks against the rule (per batch
#: element), :class:`~trilemma.attacks.Strongest`.
STRONGEST = "strongest"

Factory = Callable[..., Attack]
F = TypeVar("F", bound=Factory)

_REGISTRY: dict[str, Factory] = {}
_NEEDS_RULE: set[str] = set()


def register(name: str, *, needs_rule: bool = False) -> Callable[[F], F]:
    """Decorator: register an attack class (or factory returning an Attack) as ``name``.

    Parameters
    ----------
    name : str
        Lower-case name, not yet registered, other than ``"strongest"`` and
        ``"label_flipping"`` (which :func:`resolve` knows).
    needs_rule : bool
        The attack is built against the aggregation rule: :func:`resolve` passes ``rule=`` (and
        ``candidates=`` when given) to it, as to the line-search attacks.

    Raises
    ------
    TypeError
        If ``name`` is not a string or the decorated object is not callable.
    ValueError
        If ``name`` is empty, not lower-case, reserved or already registered.

    Examples
    --------
    >>> import torch
    >>> @register("doc-zeros")
    ... class Zeros(Attack):
    ...     def _forward(self, honest, f):
    ...         return honest.new_zeros((*honest.shape[:-2], f, honest.shape[-1]))
    >>> get("doc-zeros")(torch.ones(3, 2), f=1)
    tensor([[0., 0.]])
    >>> _ = _REGISTRY.pop("doc-zeros")
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if not name or name != name.strip().lower():
        raise ValueError(f"name={name!r} must be a non-empty lower-case name")
    if name in _REGISTRY or name in (STRONGEST, LABEL_FLIPPING):
        raise ValueError(f"name={name!r} is already registered")

    def decorate(factory: F) -> F:
        if not callable(factory):
            raise TypeError(f"register({name!r}) needs a class or a callable, got {factory!r}")
        _REGISTRY[name] = factory
        if needs_rule:
            _NEEDS_RULE.add(name)
        return factory

    return decorate


_BUILT_IN: tuple[tuple[str, Factory], ...] = (
    ("alie", ALIE),
    ("foe", FOE),
    ("gaussian", GaussianAttack),
    ("huge", HugeAttack),
    ("inf", InfAttack),
    ("ipm", FOE),
    ("mimic", Mimic),
    ("nan", NaNAttack),
    ("shift", ShiftAttack),
    ("sign_flipping", SignFlipping),
)
_LINE_SEARCH: tuple[tuple[str, Factory], ...] = (
    ("optimal_alie", OptimalALIE),
    ("optimal_foe", OptimalFOE),
    ("optimal_shift", OptimalShift),
)
for _name, _factory in _BUILT_IN:
    register(_name)(_factory)
for _name, _factory in _LINE_SEARCH:
    register(_name, needs_rule=True)(_factory)


def available() -> tuple[str, ...]:
    """Registered attack names, sorted (``"ipm"`` is an alias of ``"foe"``).

    Examples
    --------
    >>> "alie" in available() and "ipm" in available()
    True
    """
    return tuple(sorted(_REGISTRY))


def get(name: str, **params: Any) -> Attack:
    """Return a new instance of the attack registered as ``name``, built with ``params``.

    Parameters
    ----------
    name : str
        One of :func:`available`.
    **params
        Keyword arguments of the attack class (e.g. ``z`` for ``"alie"``, ``rule`` for the
        optimal variants).

    Raises
    ------
    ValueError
        If ``name`` is not registered (the message lists the valid names).

    Examples
    --------
    >>> get("ipm", tau=0.5)
    FOE(tau=0.5)
    >>> get("alie")
    ALIE(z=None, unbiased=True)
    """
    key = check_choice("name", name, available())
    return _REGISTRY[key](**params)


def resolve(
    attack: str | Attack | None,
    *,
    rule: Rule,
    candidates: torch.Tensor | Sequence[float] | None = None,
    choices: Iterable[str] | None = None,
) -> Attack | LabelFlipping | None:
    """What the Byzantine workers do, from a name or an attack, against ``rule``.

    Parameters
    ----------
    attack : str, Attack or None
        An :class:`~trilemma.attacks.Attack` (returned as is), None (returned as is), a name of
        :func:`available`, ``"strongest"`` (the worst per batch element of the line-search ALIE
        and shift attacks, :class:`~trilemma.attacks.Strongest`) or ``"label_flipping"`` (data
        poisoning: a :class:`~trilemma.attacks.LabelFlipping` the caller applies to the
        Byzantine workers' data).
    rule : callable
        The aggregation rule the attacks registered with ``needs_rule`` (the line-search
        ``optimal_*``) and ``"strongest"`` are built against.
    candidates : sequence of float or torch.Tensor, optional
        τ grid of those attacks (None: :func:`~trilemma.attacks.default_candidates`).
    choices : iterable of str, optional
        The names this caller accepts (default: all of the above); others raise.

    Raises
    ------
    TypeError
        If ``attack`` is neither a string, an Attack nor None.
    ValueError
        If the name is not one of ``choices`` (the message lists them).

    Examples
    --------
    >>> def mean(x):
    ...     return x.mean(dim=-2)
    >>> resolve("optimal_alie", rule=mean, candidates=[0.0, 1.0]).candidates
    tensor([0., 1.], dtype=torch.float64)
    >>> resolve("label_flipping", rule=mean)
    LabelFlipping()
    >>> resolve("sign_flipping", rule=mean, choices=("alie",))
    Traceback (most recent call last):
    ...
    ValueError: attack='sign_flipping' is not valid; choose one of: 'alie'
    """
    if attack is None or isinstance(attack, Attack):
        return attack
    if not isinstance(attack, str):
        raise TypeError(f"attack must be a name, an Attack or None, got {type(attack).__name__}")
    options = (*available(), LABEL_FLIPPING, STRONGEST) if choices is None else tuple(choices)
    name = check_choice("attack", attack, options)
    if name == LABEL_FLIPPING:
        return LabelFlipping()
    if name == STRONGEST:
        return Strongest(
            rule=rule,
            attacks=(
                OptimalALIE(rule=rule, candidates=candidates),
                OptimalShift(rule=rule, candidates=candidates),
            ),
        )
    if name in _NEEDS_RULE:
        extra = {} if candidates is None else {"candidates": candidates}
        return get(name, rule=rule, **extra)
    return get(name)

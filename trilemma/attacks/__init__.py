"""Byzantine attacks: the vectors the f adversarial workers send, given the honest ones.

Every attack is a callable object ``attack(honest, f)``: ``honest`` has shape ``(..., h, d)``
(leading batch dimensions such as rounds × seeds are kept) and the result, shape
``(..., f, d)``, has the dtype and device of ``honest``; ``f = 0`` gives ``(..., 0, d)``.
Randomness only comes from an explicit ``torch.Generator``. Build attacks directly or by name:

>>> import torch
>>> from trilemma import attacks
>>> honest = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
>>> attacks.get("sign_flipping")(honest, f=1)
tensor([[-2., -4.]])

Label flipping changes the data, not the vectors: the runner applies :func:`flip_labels`.
:func:`resolve` turns a name (including ``"strongest"`` and ``"label_flipping"``) or an attack
into what the Byzantine workers do against a given rule; :func:`register` adds an attack.
"""

from trilemma.attacks._base import Attack, Rule
from trilemma.attacks.alie import ALIE, alie_z_max
from trilemma.attacks.degenerate import HugeAttack, InfAttack, NaNAttack
from trilemma.attacks.label_flipping import LabelFlipping, flip_labels
from trilemma.attacks.mean_based import FOE, SignFlipping
from trilemma.attacks.mimic import Mimic
from trilemma.attacks.noise import GaussianAttack
from trilemma.attacks.optimal import (
    LineSearchResult,
    OptimalALIE,
    OptimalFOE,
    OptimalShift,
    Strongest,
    default_candidates,
)
from trilemma.attacks.registry import LABEL_FLIPPING, STRONGEST, available, get, register, resolve
from trilemma.attacks.shift import ShiftAttack, top_principal_direction

__all__ = [
    "ALIE",
    "FOE",
    "LABEL_FLIPPING",
    "STRONGEST",
    "Attack",
    "GaussianAttack",
    "HugeAttack",
    "InfAttack",
    "LabelFlipping",
    "LineSearchResult",
    "Mimic",
    "NaNAttack",
    "OptimalALIE",
    "OptimalFOE",
    "OptimalShift",
    "Rule",
    "ShiftAttack",
    "SignFlipping",
    "Strongest",
    "alie_z_max",
    "available",
    "default_candidates",
    "flip_labels",
    "get",
    "register",
    "resolve",
    "top_principal_direction",
]

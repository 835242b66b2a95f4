"""Opacus accounting backed by dp-accounting, and a calibration that never overshoots.

:class:`TrilemmaAccountant` implements Opacus' accountant interface (``step``, ``get_epsilon``,
``history``, ``state_dict``/``load_state_dict``, ``mechanism``, the optimizer hook) and answers
with :func:`trilemma.accountants.get_epsilon` on the dp-accounting event of its history:
``history`` holds Opacus' ``(noise_multiplier, sample_rate, steps)`` segments, each the DP-SGD
event of :func:`trilemma.accountants.sgd_event` (Poisson sampling, add/remove-one; Abadi et al.
2016, Alg. 1), composed in order. After T identical steps the reported ε is exactly
``accountants.dpsgd_epsilon(noise_multiplier=σ, sample_rate=q, steps=T, delta=δ)`` [V].

:class:`TrilemmaPrivacyEngine` is Opacus' ``PrivacyEngine`` with that accountant; its
``make_private_with_epsilon`` takes σ from :func:`trilemma.accountants.calibrate_dpsgd` for
T = epochs × len(data_loader) steps at q = 1 / len(data_loader) (Opacus' own sampling rate),
so the ε after the planned steps is at most the target [V] (Opacus' search stops within
``epsilon_tolerance`` = 0.01 below it).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Literal

from trilemma import accountants
from trilemma._validation import check_choice, check_int, check_real
from trilemma.integrations._extras import missing_extra

try:
    from dp_accounting import dp_event
    from opacus import PrivacyEngine
    from opacus.accountants import IAccountant
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        missing_extra("trilemma.integrations.opacus", package="opacus", extra="opacus")
    ) from error

__all__ = ["TrilemmaAccountant", "TrilemmaPrivacyEngine"]

Method = Literal["rdp", "pld"]
_METHODS = ("rdp", "pld")


class TrilemmaAccountant(IAccountant):
    """Opacus accountant whose ε is dp-accounting's (RDP or PLD) through trilemma.

    Parameters
    ----------
    method : {"rdp", "pld"}
        dp-accounting's Rényi-DP accountant (Mironov 2017) or its privacy-loss-distribution
        accountant (Doroshenko et al. 2022), as in :func:`trilemma.accountants.get_epsilon`.

    Examples
    --------
    >>> from trilemma.accountants import dpsgd_epsilon
    >>> accountant = TrilemmaAccountant()
    >>> for _ in range(100):
    ...     accountant.step(noise_multiplier=1.1, sample_rate=0.01)
    >>> accountant.history, len(accountant)
    ([(1.1, 0.01, 100)], 100)
    >>> accountant.get_epsilon(delta=1e-5) == dpsgd_epsilon(
    ...     noise_multiplier=1.1, sample_rate=0.01, steps=100, delta=1e-5)
    True
    """

    def __init__(self, method: Method = "rdp") -> None:
        self.method: Method = check_choice("method", method, _METHODS)  # type: ignore[assignment]
        self.history: list[tuple[float, float, int]] = []

    def step(self, *, noise_multiplier: float, sample_rate: float) -> None:
        """Record one optimizer step (merged into the last segment when σ and q repeat)."""
        sigma = check_real("noise_multiplier", noise_multiplier, low=0)
        q = check_real("sample_rate", sample_rate, low=0, high=1, low_open=True)
        if self.history and self.history[-1][:2] == (sigma, q):
            self.history[-1] = (sigma, q, self.history[-1][2] + 1)
        else:
            self.history.append((sigma, q, 1))

    def event(self) -> dp_event.DpEvent:
        """The dp-accounting event of the history (``NoOpDpEvent`` when empty)."""
        events = [
            accountants.sgd_event(noise_multiplier=sigma, sample_rate=q, steps=steps)
            for sigma, q, steps in self.history
        ]
        if not events:
            return dp_event.NoOpDpEvent()
        return events[0] if len(events) == 1 else dp_event.ComposedDpEvent(events)

    def get_epsilon(self, delta: float, *args: Any, **kwargs: Any) -> float:
        """ε spent so far at ``delta`` (0 before any step, inf after a noiseless step).

        Extra arguments of other Opacus accountants (``alphas``, ``eps_error``) are ignored.
        """
        check_real("delta", delta, low=0, high=1, low_open=True, high_open=True)
        if not self.history:
            return 0.0
        if any(sigma == 0 for sigma, _, _ in self.history):
            return float("inf")
        return accountants.get_epsilon(self.event(), delta=delta, method=self.method)

    def __len__(self) -> int:
        """Optimizer steps recorded (Opacus' interface: "number of optimization steps")."""
        return sum(steps for _, _, steps in self.history)

    @classmethod
    def mechanism(cls) -> str:
        """Name checked by ``load_state_dict``."""
        return "trilemma"

    def state_dict(self, destination: Any = None) -> Any:
        """Opacus' state dict (``history``, ``mechanism``) plus the ``method``."""
        destination = super().state_dict(OrderedDict() if destination is None else destination)
        destination["method"] = self.method
        return destination

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore a state dict of a trilemma accountant (Opacus' checks, then the method)."""
        super().load_state_dict(state_dict)
        self.method = check_choice(  # type: ignore[assignment]
            "method", state_dict.get("method", "rdp"), _METHODS
        )
        self.history = [(float(s), float(q), int(t)) for s, q, t in self.history]


class TrilemmaPrivacyEngine(PrivacyEngine):
    """Opacus ``PrivacyEngine`` accounted by :class:`TrilemmaAccountant`.

    Parameters
    ----------
    method : {"rdp", "pld"}
        Accountant used for the ε reported and for the calibration.
    secure_mode : bool
        As in Opacus.
    """

    def __init__(self, *, method: Method = "rdp", secure_mode: bool = False) -> None:
        super().__init__(accountant="rdp", secure_mode=secure_mode)
        self.accountant = TrilemmaAccountant(method=method)

    def calibrated_noise(
        self, *, target_epsilon: float, target_delta: float, epochs: int, batches: int
    ) -> float:
        """σ of :func:`trilemma.accountants.calibrate_dpsgd` for ``epochs`` epochs of
        ``batches`` Poisson batches each (q = 1 / batches, T = epochs × batches)."""
        count = check_int("epochs", epochs, low=1)
        per_epoch = check_int("batches", batches, low=1)
        return accountants.calibrate_dpsgd(
            target_epsilon=target_epsilon,
            delta=target_delta,
            sample_rate=1.0 / per_epoch,
            steps=count * per_epoch,
            method=self.accountant.method,
        )

    def make_private_with_epsilon(
        self,
        *,
        data_loader: Any,
        target_epsilon: float,
        target_delta: float,
        epochs: int,
        **make_private: Any,
    ) -> Any:
        """Opacus' ``make_private`` with the smallest σ whose ε after ``epochs`` epochs is at
        most ``target_epsilon`` (other keyword arguments: those of ``make_private``)."""
        if "epsilon_tolerance" in make_private:
            raise TypeError("epsilon_tolerance is Opacus' search; trilemma's never overshoots")
        if len(self.accountant) > 0:
            warnings.warn(
                "privacy already spent: the calibrated noise assumes a fresh start, so the "
                "total ε will exceed target_epsilon",
                stacklevel=2,
            )
        sigma = self.calibrated_noise(
            target_epsilon=target_epsilon,
            target_delta=target_delta,
            epochs=epochs,
            batches=len(data_loader),
        )
        return self.make_private(data_loader=data_loader, noise_multiplier=sigma, **make_private)

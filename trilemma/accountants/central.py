"""ε and δ of standard mechanisms, on top of dp-accounting's ``DpEvent`` algebra.

Nothing here re-implements RDP or PLD accounting: events are built with dp-accounting and
handed to its ``RdpAccountant`` or ``PLDAccountant``. What this module adds is the bookkeeping
practitioners get wrong:

* **Noise multiplier convention.** ``noise_multiplier`` is always the standard deviation of the
  Gaussian noise divided by the clipping norm ``C`` of one record's contribution, i.e. by the
  add/remove-one sensitivity of the noised *sum* (Abadi et al. 2016; Opacus uses the same).
* **Neighbouring relations.** dp-accounting 0.6 treats ``REPLACE_ONE`` inconsistently: its PLD
  accountant doubles a Gaussian's sensitivity under replace-one, its RDP accountant does not.
  We therefore account under add/remove-one and put the factor 2 of replace-one sensitivity
  (a replaced record moves the sum by up to ``2C``) into the noise multiplier explicitly. The one
  exception is sampling without replacement, which dp-accounting analyses only with RDP under
  replace-one (Wang, Balle, Kasiviswanathan, AISTATS 2019, arXiv:1808.00087); there the base
  Gaussian event receives ``noise_multiplier / 2`` for the same reason.
"""

from __future__ import annotations

from typing import Literal

import dp_accounting
from dp_accounting import NeighboringRelation, dp_event, pld, rdp

from trilemma._validation import check_choice, check_int, check_real

__all__ = [
    "METHODS",
    "dpsgd_delta",
    "dpsgd_epsilon",
    "gaussian_epsilon",
    "get_delta",
    "get_epsilon",
    "laplace_epsilon",
    "make_accountant",
    "sgd_event",
]

Method = Literal["rdp", "pld"]
Sampling = Literal["poisson", "without_replacement"]
Neighboring = Literal["add_remove", "replace_one"]

METHODS: tuple[str, ...] = ("rdp", "pld")
SAMPLINGS: tuple[str, ...] = ("poisson", "without_replacement")
NEIGHBORINGS: tuple[str, ...] = ("add_remove", "replace_one")

_RELATIONS = {
    "add_remove": NeighboringRelation.ADD_OR_REMOVE_ONE,
    "replace_one": NeighboringRelation.REPLACE_ONE,
}


def make_accountant(
    method: Method = "rdp",
    *,
    neighboring: Neighboring = "add_remove",
    pld_discretization: float = 1e-4,
) -> dp_accounting.PrivacyAccountant:
    """Return a fresh dp-accounting accountant.

    Parameters
    ----------
    method : {"rdp", "pld"}
        ``"rdp"``: Rényi DP (Mironov 2017) with dp-accounting's default orders and its
        RDP-to-DP conversion; ``"pld"``: privacy loss distributions (Koskela et al. 2020;
        Doroshenko et al. 2022), tighter and slower.
    neighboring : {"add_remove", "replace_one"}
        dp-accounting's neighbouring relation (see the module docstring before using
        ``"replace_one"``).
    pld_discretization : float
        Value discretization interval of the PLD accountant (dp-accounting's default 1e-4).
    """
    check_choice("method", method, METHODS)
    check_choice("neighboring", neighboring, NEIGHBORINGS)
    check_real("pld_discretization", pld_discretization, low=0, low_open=True)
    relation = _RELATIONS[neighboring]
    if method == "rdp":
        return rdp.RdpAccountant(neighboring_relation=relation)
    return pld.PLDAccountant(
        neighboring_relation=relation, value_discretization_interval=pld_discretization
    )


def default_neighboring(event: dp_event.DpEvent) -> Neighboring:
    """The relation trilemma accounts ``event`` under: replace-one if it samples without
    replacement anywhere (dp-accounting supports nothing else there), add/remove-one otherwise."""
    return "replace_one" if _contains_sampling_without_replacement(event) else "add_remove"


def _contains_sampling_without_replacement(event: dp_event.DpEvent) -> bool:
    if isinstance(event, dp_event.SampledWithoutReplacementDpEvent):
        return True
    if isinstance(event, dp_event.SelfComposedDpEvent):
        return _contains_sampling_without_replacement(event.event)
    if isinstance(event, dp_event.ComposedDpEvent):
        return any(_contains_sampling_without_replacement(e) for e in event.events)
    if isinstance(event, dp_event.PoissonSampledDpEvent | dp_event.SampledWithReplacementDpEvent):
        return _contains_sampling_without_replacement(event.event)
    return False


def _composed_accountant(
    event: dp_event.DpEvent, method: Method, neighboring: Neighboring | None
) -> dp_accounting.PrivacyAccountant:
    if not isinstance(event, dp_event.DpEvent):
        raise TypeError(f"event must be a dp_accounting DpEvent, got {type(event).__name__}")
    check_choice("method", method, METHODS)
    if neighboring is None:
        neighboring = default_neighboring(event)
        if neighboring == "replace_one" and method == "pld":
            raise ValueError(
                "method='pld' cannot account sampling without replacement (dp-accounting "
                "analyses it only with RDP under replace-one); use method='rdp'"
            )
    accountant = make_accountant(method, neighboring=neighboring)
    if not accountant.supports(event):
        raise ValueError(
            f"dp-accounting's {method.upper()} accountant under neighboring={neighboring!r} "
            f"does not support the event {event}"
        )
    return accountant.compose(event)


def get_epsilon(
    event: dp_event.DpEvent,
    *,
    delta: float,
    method: Method = "rdp",
    neighboring: Neighboring | None = None,
) -> float:
    """ε of any dp-accounting event at a given δ.

    Parameters
    ----------
    event : dp_accounting.DpEvent
        The mechanism, e.g.
        ``SelfComposedDpEvent(PoissonSampledDpEvent(q, GaussianDpEvent(σ)), T)``.
    delta : float
        Target δ in (0, 1).
    method : {"rdp", "pld"}
        Accountant (see :func:`make_accountant`).
    neighboring : {"add_remove", "replace_one"} or None
        ``None`` picks add/remove-one, or replace-one when the event samples without
        replacement (the only relation dp-accounting supports for it).

    Examples
    --------
    >>> import dp_accounting
    >>> round(get_epsilon(dp_accounting.GaussianDpEvent(1.0), delta=1e-5, method="pld"), 2)
    4.38
    """
    check_real("delta", delta, low=0, high=1, low_open=True, high_open=True)
    return float(_composed_accountant(event, method, neighboring).get_epsilon(delta))


def get_delta(
    event: dp_event.DpEvent,
    *,
    epsilon: float,
    method: Method = "rdp",
    neighboring: Neighboring | None = None,
) -> float:
    """δ of any dp-accounting event at a given ε (see :func:`get_epsilon`)."""
    check_real("epsilon", epsilon, low=0, low_open=True)
    return float(_composed_accountant(event, method, neighboring).get_delta(epsilon))


def gaussian_epsilon(
    *,
    noise_multiplier: float,
    delta: float,
    compositions: int = 1,
    method: Literal["analytic", "rdp", "pld"] = "analytic",
) -> float:
    """ε of ``compositions`` Gaussian mechanisms with noise ``noise_multiplier`` × sensitivity.

    ``"analytic"`` is exact: the composition of k Gaussian mechanisms of noise multiplier σ is
    the Gaussian mechanism of noise multiplier σ/√k (Dong, Roth, Su 2022, Cor. 3.3), whose exact
    (ε, δ) curve is that of Balle & Wang 2018 (arXiv:1805.06530, Thm. 8), computed by
    ``dp_accounting.get_epsilon_gaussian``.

    Examples
    --------
    >>> round(gaussian_epsilon(noise_multiplier=1.0, delta=1e-5), 6)
    4.377178
    """
    sigma = check_real("noise_multiplier", noise_multiplier, low=0, low_open=True)
    check_real("delta", delta, low=0, high=1, low_open=True, high_open=True)
    count = check_int("compositions", compositions, low=1)
    check_choice("method", method, ("analytic", *METHODS))
    if method == "analytic":
        return float(dp_accounting.get_epsilon_gaussian(sigma / count**0.5, delta))
    event = dp_event.SelfComposedDpEvent(dp_event.GaussianDpEvent(sigma), count)
    return get_epsilon(event, delta=delta, method=method)


def laplace_epsilon(
    *,
    noise_multiplier: float,
    delta: float = 0.0,
    compositions: int = 1,
    method: Literal["pure", "rdp", "pld"] = "pld",
) -> float:
    """ε of ``compositions`` Laplace mechanisms of scale ``noise_multiplier`` × ℓ1-sensitivity.

    ``"pure"`` is basic composition of pure DP, ε = k / b (Dwork & Roth 2014, Thm. 3.6 and
    3.16), and ignores δ; ``"rdp"`` and ``"pld"`` use dp-accounting at the given δ ∈ (0, 1).

    Examples
    --------
    >>> laplace_epsilon(noise_multiplier=2.0, compositions=3, method="pure")
    1.5
    """
    scale = check_real("noise_multiplier", noise_multiplier, low=0, low_open=True)
    count = check_int("compositions", compositions, low=1)
    check_choice("method", method, ("pure", *METHODS))
    if method == "pure":
        return count / scale
    event = dp_event.SelfComposedDpEvent(dp_event.LaplaceDpEvent(scale), count)
    return get_epsilon(event, delta=delta, method=method)


def sgd_event(
    *,
    noise_multiplier: float,
    steps: int,
    sample_rate: float | None = None,
    dataset_size: int | None = None,
    batch_size: int | None = None,
    sampling: Sampling = "poisson",
    neighboring: Neighboring = "add_remove",
) -> dp_event.DpEvent:
    """The dp-accounting event of ``steps`` noisy (sub)sampled-gradient steps (DP-SGD).

    Each step sums the clipped gradients of a sampled batch and adds
    N(0, (noise_multiplier · C)² I) (Abadi et al. 2016, Alg. 1).

    Parameters
    ----------
    noise_multiplier : float
        Noise standard deviation divided by the clipping norm C (> 0).
    steps : int
        Number of steps (≥ 1).
    sample_rate : float, optional
        Poisson sampling probability q ∈ (0, 1]; defaults to ``batch_size / dataset_size``.
    dataset_size, batch_size : int, optional
        Records available and (expected) batch size. Required for sampling without replacement.
    sampling : {"poisson", "without_replacement"}
        Poisson sampling is analysed under add/remove-one; sampling a fixed-size batch without
        replacement is analysed by dp-accounting only under replace-one, with RDP.
    neighboring : {"add_remove", "replace_one"}
        Replace-one doubles the sensitivity (the module docstring explains how). Full-batch steps
        (q = 1) support both; Poisson sampling only add/remove; sampling without replacement
        only replace-one.

    Returns
    -------
    dp_accounting.DpEvent
        A ``SelfComposedDpEvent`` of the per-step event.

    Examples
    --------
    >>> event = sgd_event(noise_multiplier=1.1, sample_rate=0.01, steps=3)
    >>> event.count, event.event.sampling_probability, event.event.event
    (3, 0.01, GaussianDpEvent(noise_multiplier=1.1))
    """
    sigma = check_real("noise_multiplier", noise_multiplier, low=0, low_open=True)
    count = check_int("steps", steps, low=1)
    check_choice("sampling", sampling, SAMPLINGS)
    check_choice("neighboring", neighboring, NEIGHBORINGS)
    if dataset_size is not None:
        dataset_size = check_int("dataset_size", dataset_size, low=1)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, low=1, high=dataset_size)
    noise_factor = 2.0 if neighboring == "replace_one" else 1.0

    if sampling == "without_replacement":
        if dataset_size is None or batch_size is None:
            raise ValueError(
                "sampling='without_replacement' needs dataset_size and batch_size, "
                f"got dataset_size={dataset_size}, batch_size={batch_size}"
            )
        if sample_rate is not None:
            raise ValueError("sample_rate is for Poisson sampling; give batch_size instead")
        base = dp_event.GaussianDpEvent(sigma / noise_factor)
        if batch_size == dataset_size:
            step = base
        elif neighboring != "replace_one":
            raise ValueError(
                "sampling='without_replacement' is analysed only under neighboring='replace_one' "
                f"(dp-accounting's RDP); got neighboring={neighboring!r}"
            )
        else:
            step = dp_event.SampledWithoutReplacementDpEvent(dataset_size, batch_size, base)
        return dp_event.SelfComposedDpEvent(step, count)

    if sample_rate is None:
        if dataset_size is None or batch_size is None:
            raise ValueError("give sample_rate, or dataset_size and batch_size")
        sample_rate = batch_size / dataset_size
    q = check_real("sample_rate", sample_rate, low=0, high=1, low_open=True)
    base = dp_event.GaussianDpEvent(sigma / noise_factor)
    if q == 1.0:
        return dp_event.SelfComposedDpEvent(base, count)
    if neighboring != "add_remove":
        raise ValueError(
            "Poisson sampling with q < 1 is analysed under neighboring='add_remove' only; "
            f"got neighboring={neighboring!r} with sample_rate={q}"
        )
    return dp_event.SelfComposedDpEvent(dp_event.PoissonSampledDpEvent(q, base), count)


def dpsgd_epsilon(
    *,
    noise_multiplier: float,
    steps: int,
    delta: float,
    sample_rate: float | None = None,
    method: Method = "rdp",
    dataset_size: int | None = None,
    batch_size: int | None = None,
    sampling: Sampling = "poisson",
    neighboring: Neighboring = "add_remove",
) -> float:
    """ε of DP-SGD (see :func:`sgd_event` for the parameters).

    Examples
    --------
    >>> round(dpsgd_epsilon(noise_multiplier=1.1, sample_rate=0.01, steps=10_000, delta=1e-5), 6)
    5.632011
    """
    event = sgd_event(
        noise_multiplier=noise_multiplier,
        steps=steps,
        sample_rate=sample_rate,
        dataset_size=dataset_size,
        batch_size=batch_size,
        sampling=sampling,
        neighboring=neighboring,
    )
    return get_epsilon(event, delta=delta, method=method)


def dpsgd_delta(
    *,
    noise_multiplier: float,
    steps: int,
    epsilon: float,
    sample_rate: float | None = None,
    method: Method = "rdp",
    dataset_size: int | None = None,
    batch_size: int | None = None,
    sampling: Sampling = "poisson",
    neighboring: Neighboring = "add_remove",
) -> float:
    """δ of DP-SGD at a given ε (see :func:`sgd_event` for the parameters)."""
    event = sgd_event(
        noise_multiplier=noise_multiplier,
        steps=steps,
        sample_rate=sample_rate,
        dataset_size=dataset_size,
        batch_size=batch_size,
        sampling=sampling,
        neighboring=neighboring,
    )
    return get_delta(event, epsilon=epsilon, method=method)

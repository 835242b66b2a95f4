"""Private and robust distributed mean estimation: one protocol, four privacy models.

The protocol of the trilemma (Allouah, Guerraoui, Gupta, Pinot, Stephan, ICML 2023,
arXiv:2302.04787, mean estimation under distributed DP and robustness): each honest worker
averages its m records (norm ≤ C) and sends the average plus Gaussian noise; f Byzantine workers
send what an attack from :mod:`trilemma.attacks` computes from everything the honest workers
sent; the server aggregates the n vectors with a rule from :mod:`trilemma.aggregators`.

Privacy models (``privacy=``), all record-level (ε, δ)-DP under replace-one, noise calibrated
exactly with the analytic Gaussian mechanism (:func:`trilemma.accountants.calibrate_gaussian`,
Balle & Wang 2018) for sensitivity Δ:

- ``"distributed"`` — each worker protects its own average against every other party:
  Δ = 2C/m, noise on the average s = Δ·z(ε, δ);
- ``"local"`` — every record is randomised before leaving its owner: Δ = 2C per record, so
  the worker average carries s = 2C·z/√m;
- ``"central"`` — a trusted server averages all N = h·m honest records and adds noise once
  (Δ = 2C/N); no Byzantine worker, no aggregation rule;
- ``"none"`` — no noise (the non-private baseline of the tracing attack).

Every batch dimension of the records (trials, sweep points) is kept: one call estimates all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from trilemma import aggregators, attacks
from trilemma._validation import check_choice, check_int, check_real, check_workers
from trilemma.accountants import calibrate_gaussian
from trilemma.estimators.data import check_records

__all__ = [
    "PRIVACY_MODELS",
    "STRONGEST_GRID",
    "DistributedMeanEstimation",
    "Estimate",
    "subset_statistics",
]

Privacy = Literal["distributed", "local", "central", "none"]
PRIVACY_MODELS: tuple[str, ...] = ("distributed", "local", "central", "none")

#: τ grid of the line-search attacks used by ``attack="strongest"``: 0.1 … 31.6 honest standard
#: deviations, 4 per decade (the useful ALIE z and shift lengths are O(0.1–10)).
STRONGEST_GRID: tuple[float, ...] = tuple(10.0 ** (k / 4.0) for k in range(-4, 7))


@dataclass(frozen=True, slots=True)
class Estimate:
    """What one protocol call produced, every tensor with the batch shape of the records.

    Attributes
    ----------
    estimate : torch.Tensor
        Server output F, ``(..., d)``.
    target : torch.Tensor
        x̄_H, mean of all honest records, ``(..., d)``.
    honest_average : torch.Tensor
        ȳ_H, mean of the honest messages (for ``"central"``: the released mean), ``(..., d)``.
    noise_std : float
        Std per coordinate of the noise on each honest message (on the mean for ``"central"``).
    n_honest : int
        h, number of honest workers.
    """

    estimate: torch.Tensor
    target: torch.Tensor
    honest_average: torch.Tensor
    noise_std: float
    n_honest: int

    @property
    def error(self) -> torch.Tensor:
        """‖F − x̄_H‖², ``(...)``."""
        return (self.estimate - self.target).square().sum(dim=-1)

    @property
    def excess(self) -> torch.Tensor:
        """‖F − ȳ_H‖², the price of robustness beyond the honest average, ``(...)``."""
        return (self.estimate - self.honest_average).square().sum(dim=-1)

    @property
    def honest_error(self) -> torch.Tensor:
        """‖ȳ_H − x̄_H‖², the error of averaging the honest messages, ``(...)``."""
        return (self.honest_average - self.target).square().sum(dim=-1)


def subset_statistics(
    averages: torch.Tensor, size: int, *, top: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Noise-free data terms of the upper bounds for S = the first ``size`` workers.

    Parameters
    ----------
    averages : torch.Tensor
        Worker averages x_i, ``(..., h, d)``, h ≥ ``size``.
    size : int
        |S| = n − f.
    top : bool
        Compute λ_max(Σ_S) (an eigenvalue per batch element); ``False`` returns NaN in its place
        (the naive bounds need only the trace).

    Returns
    -------
    tuple of torch.Tensor
        (tr Σ_S, λ_max(Σ_S), ‖x̄_S − x̄_H‖²), each ``(...)``, with
        Σ_S = (1/|S|) Σ_{i∈S} (x_i − x̄_S)(x_i − x̄_S)ᵀ — the ``data_spread``,
        ``data_top_eigenvalue`` and ``data_offset`` of :func:`trilemma.bounds.naive_upper_bound`
        and :func:`trilemma.bounds.smea_upper_bound`.
    """
    subset = averages[..., :size, :]
    centred = subset - subset.mean(dim=-2, keepdim=True)
    spread = centred.square().sum(dim=(-2, -1)) / size
    offset = (subset.mean(dim=-2) - averages.mean(dim=-2)).square().sum(dim=-1)
    if not top:
        return spread, torch.full_like(spread, torch.nan), offset
    # λ_max of CᵀC/|S| equals that of the |S| × |S| Gram matrix CCᵀ/|S|
    eigenvalue = torch.linalg.eigvalsh(centred @ centred.mT / size)[..., -1].clamp(min=0.0)
    return spread, eigenvalue, offset


@dataclass(frozen=True, kw_only=True)
class DistributedMeanEstimation:
    """One distributed mean-estimation protocol: privacy model, rule and Byzantine attack.

    Parameters
    ----------
    n : int
        Number of workers (≥ 1).
    f : int
        Number of Byzantine workers the rule is set to tolerate, 2f < n.
    epsilon, delta : float
        Record-level budget, ε > 0, δ ∈ (0, 1) (ignored for ``privacy="none"``).
    clip : float
        Norm bound C of every record (records outside the ball are refused).
    rule : str or callable
        Aggregation rule: a name of :func:`trilemma.aggregators.get` (built with ``f``, e.g.
        ``"smea"``, ``"nnm>>cwtm"``) or any callable ``(..., n, d) → (..., d)``.
    attack : str, Attack or None
        ``None``: no Byzantine worker (all n workers honest; the rule still tolerates f).
        Otherwise f workers are Byzantine and send: an attack name of
        :func:`trilemma.attacks.get` (the ``optimal_*`` ones search against ``rule``), an
        :class:`~trilemma.attacks.Attack`, or ``"strongest"`` — per trial the worst of the
        line-search ALIE and the line-search shift along the top principal direction
        (grid :data:`STRONGEST_GRID`).
    privacy : {"distributed", "local", "central", "none"}
        Privacy model (module docstring).

    Raises
    ------
    ValueError
        For 2f ≥ n, ε ≤ 0, δ ∉ (0, 1), C ≤ 0, an unknown rule, attack or privacy model, or an
        attack with f = 0, or a central model with an attack.

    Examples
    --------
    >>> import torch
    >>> from trilemma.estimators import marginal_records, product_biases
    >>> g = torch.Generator().manual_seed(0)
    >>> records = marginal_records(product_biases(d=8, batch_shape=500, generator=g),
    ...                            n=10, m=5, generator=g)
    >>> protocol = DistributedMeanEstimation(n=10, f=0, epsilon=1.0, delta=1e-5, rule="mean")
    >>> result = protocol.estimate(records, generator=g)
    >>> expected = 8 * result.noise_std**2 / 10  # d s²/n, exact in expectation
    >>> bool(abs(result.error.mean() / expected - 1) < 0.15)
    True
    """

    n: int
    f: int = 0
    epsilon: float
    delta: float = 1e-5
    clip: float = 1.0
    rule: str | Callable[[torch.Tensor], torch.Tensor] = "smea"
    attack: str | attacks.Attack | None = None
    privacy: Privacy = "distributed"
    _rule: Callable[[torch.Tensor], torch.Tensor] = field(init=False, repr=False, compare=False)
    _attack: attacks.Attack | None = field(init=False, repr=False, compare=False)
    _multiplier: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _, f = check_workers(n=self.n, f=self.f)
        check_real("clip", self.clip, low=0, low_open=True)
        privacy = check_choice("privacy", self.privacy, PRIVACY_MODELS)
        multiplier = 0.0
        if privacy != "none":
            eps = check_real("epsilon", self.epsilon, low=0, low_open=True)
            dlt = check_real("delta", self.delta, low=0, high=1, low_open=True, high_open=True)
            multiplier = calibrate_gaussian(target_epsilon=eps, delta=dlt, method="analytic")
        rule: Callable[[torch.Tensor], torch.Tensor]
        if isinstance(self.rule, str):
            rule = aggregators.get(self.rule, f=f)
        elif callable(self.rule):
            rule = self.rule
        else:
            raise TypeError(f"rule must be a name or a callable, got {type(self.rule).__name__}")
        attack = self._build_attack(rule, f, privacy)
        object.__setattr__(self, "_rule", rule)
        object.__setattr__(self, "_attack", attack)
        object.__setattr__(self, "_multiplier", multiplier)

    def _build_attack(
        self, rule: Callable[[torch.Tensor], torch.Tensor], f: int, privacy: str
    ) -> attacks.Attack | None:
        if self.attack is None:
            return None
        if privacy == "central":
            raise ValueError("privacy='central' is the trusted-server baseline: use attack=None")
        if f == 0:
            raise ValueError(f"attack={self.attack!r} needs f >= 1 Byzantine workers, got f=0")
        resolved = attacks.resolve(
            self.attack,
            rule=rule,
            candidates=torch.tensor(STRONGEST_GRID, dtype=torch.float64),
            choices=(attacks.STRONGEST, *attacks.available()),
        )
        assert not isinstance(resolved, attacks.LabelFlipping)  # not among the choices
        return resolved

    @property
    def byzantine(self) -> int:
        """Number of Byzantine workers actually present: f with an attack, else 0."""
        return 0 if self._attack is None else self.f

    def honest_workers(self) -> int:
        """h: workers whose records the caller provides (n − f with an attack, else n)."""
        return self.n - self.byzantine

    def noise_std(self, m: int) -> float:
        """Std per coordinate of the noise on each honest message (on the mean if central).

        Parameters
        ----------
        m : int
            Records per worker.
        """
        m = check_int("m", m, low=1)
        c = float(self.clip)
        if self.privacy == "distributed":
            return 2.0 * c * self._multiplier / m
        if self.privacy == "local":
            return 2.0 * c * self._multiplier / m**0.5
        if self.privacy == "central":
            return 2.0 * c * self._multiplier / (self.honest_workers() * m)
        return 0.0

    def estimate(
        self,
        records: torch.Tensor,
        *,
        generator: torch.Generator,
        noise_scale: torch.Tensor | Sequence[float] | float = 1.0,
    ) -> Estimate:
        """Run the protocol on every batch element of ``records``.

        Parameters
        ----------
        records : torch.Tensor
            Honest records ``(..., h, m, d)`` with h = :meth:`honest_workers`, norms ≤ C.
        generator : torch.Generator
            Source of the privacy noise (drawn on the CPU, then moved to the records' device).
        noise_scale : float, sequence or tensor
            Factor on the noise std broadcast against the batch shape (e.g. one value per sweep
            point of ε stacked in the batch); default 1.

        Returns
        -------
        Estimate
        """
        x = check_records(records, clip=self.clip)
        return self._estimate(x.mean(dim=-2), x.shape[-2], generator, noise_scale)

    def estimate_averages(
        self,
        averages: torch.Tensor,
        *,
        m: int,
        generator: torch.Generator,
        noise_scale: torch.Tensor | Sequence[float] | float = 1.0,
    ) -> Estimate:
        """Run the protocol from the honest workers' averages of m records each.

        Same as :meth:`estimate` when the records themselves are not needed (e.g.
        :func:`~trilemma.estimators.marginal_averages` draws averages exactly for any m). The
        averages are checked to lie in the ball of radius C, which averages of records in that
        ball always do.

        Parameters
        ----------
        averages : torch.Tensor
            ``(..., h, d)``.
        m : int
            Records behind each average (sets the noise std).
        generator, noise_scale
            As in :meth:`estimate`.
        """
        m = check_int("m", m, low=1)
        y = check_records(averages.unsqueeze(-2), clip=self.clip).squeeze(-2)
        return self._estimate(y, m, generator, noise_scale)

    def _estimate(
        self,
        averages: torch.Tensor,
        m: int,
        generator: torch.Generator,
        noise_scale: torch.Tensor | Sequence[float] | float,
    ) -> Estimate:
        h, d = averages.shape[-2:]
        if h != self.honest_workers():
            raise ValueError(
                f"records hold {h} workers along the worker dimension; expected "
                f"{self.honest_workers()} honest workers (n={self.n}, {self.byzantine} Byzantine)"
            )
        batch = averages.shape[:-2]
        device, dtype = averages.device, averages.dtype
        scale = torch.as_tensor(noise_scale, dtype=dtype).to(device)
        scale = scale.reshape(*scale.shape, *([1] * (averages.ndim - scale.ndim)))
        std = self.noise_std(m)
        target = averages.mean(dim=-2)
        if self.privacy == "central":
            noise = torch.randn((*batch, d), generator=generator, dtype=dtype).to(device)
            released = target + std * scale.squeeze(-1) * noise
            return Estimate(released, target, released, std, h)
        noise = torch.randn((*batch, h, d), generator=generator, dtype=dtype).to(device)
        messages = averages + std * scale * noise
        if self._attack is not None:
            messages = torch.cat([messages, self._attack(messages, self.f)], dim=-2)
        return Estimate(self._rule(messages), target, messages[..., :h, :].mean(dim=-2), std, h)

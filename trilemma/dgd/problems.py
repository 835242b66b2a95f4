"""Learning problems of the honest workers, with every worker's gradient in one batched call.

Each honest worker i holds m examples (X_i, y_i); its loss is the mean example loss plus a
shared L2 term (λ/2)‖θ‖². Gradients are closed forms evaluated for all workers at once, and
for any leading batch dimensions of θ (seeds, configurations): ``gradients(θ)`` maps
``(..., P)`` to ``(..., h, P)``; ``losses(θ)`` to ``(..., h)``.

- :class:`LeastSquares` — (1/(2m))‖X_iθ − y_i‖² + (λ/2)‖θ‖² (ridge when λ > 0): gradients are
  affine, A_iθ − b_i with A_i = X_iᵀX_i/m + λI and b_i = X_iᵀy_i/m, so L, μ and θ* are exact.
- :class:`SoftmaxRegression` — multinomial logistic regression (binary is K = 2), parameters
  θ ∈ ℝ^{p×K} flattened, gradient (1/m) X_iᵀ(softmax(X_iθ) − onehot(y_i)) + λθ.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from trilemma._validation import check_int, check_real

__all__ = ["LeastSquares", "Problem", "SoftmaxRegression"]


def _check_data(features: torch.Tensor, labels: torch.Tensor) -> tuple[int, int, int]:
    if not isinstance(features, torch.Tensor) or not features.is_floating_point():
        raise TypeError("features must be a floating torch.Tensor of shape (h, m, p)")
    if features.ndim != 3 or 0 in features.shape:
        raise ValueError(
            f"features must have shape (h, m, p) with h, m, p >= 1, got {tuple(features.shape)}"
        )
    if not isinstance(labels, torch.Tensor) or labels.shape != features.shape[:2]:
        raise ValueError(f"labels must have shape {tuple(features.shape[:2])}")
    return features.shape[0], features.shape[1], features.shape[2]


def _check_classes(labels: torch.Tensor, classes: int) -> int:
    """K after checking K ≥ 2 and that ``labels`` are integers in [0, K)."""
    k = check_int("classes", classes, low=2)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError("labels must hold integer classes")
    if int(labels.min()) < 0 or int(labels.max()) >= k:
        raise ValueError(f"labels must lie in [0, {k - 1}]")
    return k


def _take(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` ``(..., h, b)`` of each worker's features ``(h, m, p)``, as
    ``(..., h, b, p)``."""
    expanded = features.expand(*index.shape[:-2], *features.shape)
    return expanded.gather(-2, index.unsqueeze(-1).expand(*index.shape, features.shape[-1]))


class Problem(abc.ABC):
    """Honest workers' losses: ``losses(θ)`` ``(..., P) → (..., h)``, ``gradients(θ)``
    ``(..., P) → (..., h, P)``; the honest objective is L_H = mean over workers."""

    # every concrete problem is a dataclass: restrict() and the runners read its fields
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    workers: int
    dimension: int
    features: torch.Tensor

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the data, and of θ."""
        return self.features.dtype

    @abc.abstractmethod
    def losses(self, theta: torch.Tensor) -> torch.Tensor:
        """Per-worker losses L_i(θ), ``(..., h)``."""

    @abc.abstractmethod
    def gradients(self, theta: torch.Tensor) -> torch.Tensor:
        """Per-worker gradients ∇L_i(θ), ``(..., h, P)``."""

    @abc.abstractmethod
    def example_gradients(self, theta: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Gradients of the examples ``index`` ``(..., h, b)`` (positions in each worker's
        data) of the per-example loss plus the L2 term, ``(..., h, b, P)``; their mean over all
        m examples is :meth:`gradients`."""

    def objective(self, theta: torch.Tensor) -> torch.Tensor:
        """L_H(θ) = (1/h) Σ_i L_i(θ), ``(...)``."""
        return self.losses(theta).mean(dim=-1)

    def losses_and_gradients(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(:meth:`losses`, :meth:`gradients`) at θ, the same values as the two calls; problems
        that share work between them (the logits) override it."""
        return self.losses(theta), self.gradients(theta)

    def restrict(self, start: int, stop: int) -> Problem:
        """The same problem on honest workers ``start:stop`` only: every per-worker data field
        (a tensor whose first dimension is h) is sliced, the other fields are kept.

        Examples
        --------
        >>> problem = LeastSquares(torch.ones(4, 2, 3), torch.zeros(4, 2))
        >>> problem.restrict(1, 3).workers
        2
        """
        h = self.workers
        start = check_int("start", start, low=0, high=h - 1)
        stop = check_int("stop", stop, low=start + 1, high=h)
        sliced = {
            item.name: getattr(self, item.name)[start:stop]
            for item in dataclasses.fields(self)
            if item.init
            and isinstance(getattr(self, item.name), torch.Tensor)
            and getattr(self, item.name).shape[:1] == (h,)
        }
        return dataclasses.replace(self, **sliced)


@dataclass(frozen=True, eq=False)
class LeastSquares(Problem):
    """Ridge least squares per worker: L_i(θ) = (1/(2m))‖X_iθ − y_i‖² + (λ/2)‖θ‖².

    Parameters
    ----------
    features : torch.Tensor
        X, ``(h, m, p)``, floating.
    targets : torch.Tensor
        y, ``(h, m)``.
    ridge : float
        λ ≥ 0 (λ > 0 or a full-rank X̄ makes L_H strongly convex).

    Examples
    --------
    >>> X = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.0], [0.0, 2.0]]])
    >>> y = torch.tensor([[1.0, 1.0], [2.0, 0.0]])
    >>> problem = LeastSquares(X, y, ridge=0.0)
    >>> problem.gradients(torch.zeros(2))
    tensor([[-0.5000, -0.5000],
            [-2.0000,  0.0000]])
    """

    features: torch.Tensor
    targets: torch.Tensor
    ridge: float = 0.0
    workers: int = field(init=False)
    dimension: int = field(init=False)

    def __post_init__(self) -> None:
        h, _, p = _check_data(self.features, self.targets)
        if not self.targets.is_floating_point():
            raise TypeError("targets must be floating for least squares")
        check_real("ridge", self.ridge, low=0)
        object.__setattr__(self, "workers", h)
        object.__setattr__(self, "dimension", p)

    def _residuals(self, theta: torch.Tensor) -> torch.Tensor:
        return torch.einsum("hmp,...p->...hm", self.features, theta) - self.targets

    def losses(self, theta: torch.Tensor) -> torch.Tensor:
        fit = self._residuals(theta).square().mean(dim=-1) / 2
        return fit + self.ridge / 2 * theta.square().sum(dim=-1, keepdim=True)

    def gradients(self, theta: torch.Tensor) -> torch.Tensor:
        m = self.features.shape[1]
        data = torch.einsum("hmp,...hm->...hp", self.features, self._residuals(theta)) / m
        return data + self.ridge * theta.unsqueeze(-2)

    def example_gradients(self, theta: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        x = _take(self.features, index)  # (..., h, b, p)
        y = self.targets.expand(*index.shape[:-1], -1).gather(-1, index)
        residual = (x * theta[..., None, None, :]).sum(dim=-1) - y
        return x * residual.unsqueeze(-1) + self.ridge * theta[..., None, None, :]

    def hessians(self) -> torch.Tensor:
        """A_i = X_iᵀX_i/m + λI, ``(h, p, p)``: ∇L_i(θ) = A_iθ − b_i."""
        m, p = self.features.shape[1], self.features.shape[2]
        gram = self.features.mT @ self.features / m
        return gram + self.ridge * torch.eye(p, dtype=gram.dtype)

    def offsets(self) -> torch.Tensor:
        """b_i = X_iᵀy_i/m, ``(h, p)``."""
        m = self.features.shape[1]
        return torch.einsum("hmp,hm->hp", self.features, self.targets) / m

    def mean_hessian(self) -> torch.Tensor:
        """Ā = (1/h) Σ A_i after checking L_H is strongly convex (smallest eigenvalue above
        1e-10 × the largest).

        Raises
        ------
        ValueError
            If Ā is singular up to that tolerance (no ridge and rank-deficient data).
        """
        a_bar = self.hessians().mean(dim=0)
        spectrum = torch.linalg.eigvalsh(a_bar)
        if not float(spectrum[0]) > 1e-10 * float(spectrum[-1].abs()):
            raise ValueError(
                "the honest objective is not strongly convex (the mean Hessian is singular): "
                "add ridge > 0 or more examples per worker"
            )
        return a_bar

    def optimum(self) -> tuple[torch.Tensor, float, float, float]:
        """(θ*, L_H(θ*), μ, L): minimiser, minimum and the extreme eigenvalues of Ā.

        Raises
        ------
        ValueError
            If Ā is singular (see :meth:`mean_hessian`).
        """
        a_bar = self.mean_hessian()
        spectrum = torch.linalg.eigvalsh(a_bar)
        theta = torch.linalg.solve(a_bar, self.offsets().mean(dim=0))
        return theta, float(self.objective(theta)), float(spectrum[0]), float(spectrum[-1])


@dataclass(frozen=True, eq=False)
class SoftmaxRegression(Problem):
    """Multinomial logistic regression per worker, K classes, θ ∈ ℝ^{p×K} flattened (P = pK).

    Parameters
    ----------
    features : torch.Tensor
        X, ``(h, m, p)``.
    labels : torch.Tensor
        Integer classes in [0, K), ``(h, m)``.
    classes : int
        K ≥ 2.
    ridge : float
        λ ≥ 0.

    Examples
    --------
    At θ = 0 every class has probability 1/K:

    >>> X = torch.ones(1, 2, 1)
    >>> problem = SoftmaxRegression(X, torch.tensor([[0, 1]]), classes=2)
    >>> problem.losses(torch.zeros(2))
    tensor([0.6931])
    """

    features: torch.Tensor
    labels: torch.Tensor
    classes: int
    ridge: float = 0.0
    workers: int = field(init=False)
    dimension: int = field(init=False)

    def __post_init__(self) -> None:
        h, _, p = _check_data(self.features, self.labels)
        k = _check_classes(self.labels, self.classes)
        check_real("ridge", self.ridge, low=0)
        object.__setattr__(self, "workers", h)
        object.__setattr__(self, "dimension", p * k)

    def _logits(self, theta: torch.Tensor) -> torch.Tensor:
        weights = theta.reshape(*theta.shape[:-1], self.features.shape[2], self.classes)
        return torch.einsum("hmp,...pk->...hmk", self.features, weights)

    def _losses(self, theta: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        labels = self.labels.expand(*logits.shape[:-1])
        picked = logits.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        data = (torch.logsumexp(logits, dim=-1) - picked).mean(dim=-1)
        return data + self.ridge / 2 * theta.square().sum(dim=-1, keepdim=True)

    def losses(self, theta: torch.Tensor) -> torch.Tensor:
        return self._losses(theta, self._logits(theta))

    def gradients(self, theta: torch.Tensor) -> torch.Tensor:
        return self._gradients(theta, self._logits(theta))

    def losses_and_gradients(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self._logits(theta)
        return self._losses(theta, logits), self._gradients(theta, logits)

    def _gradients(self, theta: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        residual = torch.softmax(logits, dim=-1)
        onehot = torch.nn.functional.one_hot(self.labels, self.classes).to(residual.dtype)
        residual = residual - onehot
        m = self.features.shape[1]
        grad = torch.einsum("hmp,...hmk->...hpk", self.features, residual) / m
        grad = grad.reshape(*grad.shape[:-2], self.dimension)
        return grad + self.ridge * theta.unsqueeze(-2)

    def example_gradients(self, theta: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        x = _take(self.features, index)  # (..., h, b, p)
        labels = self.labels.expand(*index.shape[:-1], -1).gather(-1, index)
        weights = theta.reshape(*theta.shape[:-1], self.features.shape[2], self.classes)
        logits = torch.einsum("...hbp,...pk->...hbk", x, weights)
        onehot = torch.nn.functional.one_hot(labels, self.classes).to(logits.dtype)
        residual = torch.softmax(logits, dim=-1) - onehot
        grad = (x.unsqueeze(-1) * residual.unsqueeze(-2)).flatten(-2)
        return grad + self.ridge * theta[..., None, None, :]

    def smoothness(self) -> float:
        """L = ½ λ_max((1/(hm)) Σ xxᵀ) + λ, a smoothness constant of L_H.

        Derivation [D]: for one example with π = softmax(θᵀx) the Hessian of the cross-entropy
        is xxᵀ ⊗ (diag(π) − ππᵀ); for a unit u ∈ ℝ^K, uᵀ(diag(π) − ππᵀ)u is the variance of u_k
        under k ~ π, at most (max u − min u)²/4 ≤ 1/2 (Popoviciu), so diag(π) − ππᵀ ≼ ½ I
        (Böhning, Ann. Inst. Statist. Math. 44, 1992, has ½(I − 11ᵀ/K)). Averaging over the hm
        examples and adding the ridge: ∇²L_H ≼ (½ λ_max(Σ̂) + λ) I.

        Examples
        --------
        One example x = (1, 0), ridge 0.1: λ_max(xxᵀ) = 1, so L = 0.5 + 0.1.

        >>> X = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
        >>> problem = SoftmaxRegression(X, torch.tensor([[0]]), classes=2, ridge=0.1)
        >>> round(problem.smoothness(), 12)
        0.6
        """
        rows = self.features.reshape(-1, self.features.shape[-1]).double()
        second_moment = rows.mT @ rows / rows.shape[0]
        return 0.5 * float(torch.linalg.eigvalsh(second_moment)[-1]) + self.ridge

    def accuracy(
        self, theta: torch.Tensor, features: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Fraction of ``(features (N, p), labels (N,))`` classified right, ``(...)``."""
        weights = theta.reshape(*theta.shape[:-1], features.shape[-1], self.classes)
        predicted = torch.einsum("np,...pk->...nk", features, weights).argmax(dim=-1)
        return (predicted == labels).to(theta.dtype).mean(dim=-1)

"""A non-convex learning problem: a one-hidden-layer perceptron classifier per worker.

Worker i's loss is the mean cross-entropy of its m examples under the network
x ↦ σ(xW₁ + b₁)W₂ + b₂ (σ = tanh or ReLU, K logits) plus (λ/2)‖θ‖². Gradients are not written
by hand: :mod:`torch.func` differentiates the loss (``grad``) and maps it over workers, examples
and any leading batch dimensions of θ (``vmap``), so every worker and example is computed in one
batched call.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch.func import grad, vmap

from trilemma._validation import check_choice, check_int, check_real
from trilemma.dgd.problems import Problem, _check_classes, _check_data, _take

__all__ = ["ACTIVATIONS", "MLPClassifier"]

ACTIVATIONS: tuple[str, ...] = ("tanh", "relu")

_Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True, eq=False)
class MLPClassifier(Problem):
    """One-hidden-layer perceptron classifier per worker, K classes, H hidden units:
    L_i(θ) = (1/m) Σ_j CE(σ(x_ij W₁ + b₁)W₂ + b₂, y_ij) + (λ/2)‖θ‖².

    θ ∈ ℝ^P is the flat concatenation ``[W₁, b₁, W₂, b₂]`` of W₁ ``(p, H)``, b₁ ``(H,)``,
    W₂ ``(H, K)`` and b₂ ``(K,)``, so P = pH + H + HK + K; the matrices are row-major
    (W₁[a, c] = θ[aH + c], W₂[a, c] = θ[pH + H + aK + c]). Gradients come from
    :func:`torch.func.grad` mapped with :func:`torch.func.vmap`. The loss is not convex, so
    unlike :class:`~trilemma.dgd.LeastSquares` there is no ``optimum``.

    θ = 0 is a poor start: every hidden unit outputs σ(0) = 0 and sends back no gradient, so
    gradient descent from zero (the default of :func:`trilemma.dgd.robust_dgd`) only ever fits
    b₂. Start from :meth:`initial_parameters` instead.

    Parameters
    ----------
    features : torch.Tensor
        X, ``(h, m, p)``, floating; θ must have its dtype and device.
    labels : torch.Tensor
        Integer classes in [0, K), ``(h, m)``, on the device of ``features``.
    classes : int
        K ≥ 2.
    hidden : int
        Width H ≥ 1 of the hidden layer.
    activation : {"tanh", "relu"}
        σ; tanh (the default) makes the loss smooth.
    ridge : float
        λ ≥ 0.

    Examples
    --------
    >>> X = torch.ones(1, 2, 1)
    >>> problem = MLPClassifier(X, torch.tensor([[0, 1]]), classes=2, hidden=3)
    >>> problem.dimension  # W₁ 1×3, b₁ 3, W₂ 3×2, b₂ 2
    14
    >>> problem.losses(torch.zeros(14))  # θ = 0: every class has probability 1/2
    tensor([0.6931])
    >>> theta = problem.initial_parameters(torch.Generator().manual_seed(0), (5,))
    >>> problem.gradients(theta).shape  # 5 starts, 1 worker, P = 14
    torch.Size([5, 1, 14])
    """

    features: torch.Tensor
    labels: torch.Tensor
    classes: int
    hidden: int
    activation: str = "tanh"
    ridge: float = 0.0
    workers: int = field(init=False)
    dimension: int = field(init=False)

    def __post_init__(self) -> None:
        h, _, p = _check_data(self.features, self.labels)
        k = _check_classes(self.labels, self.classes)
        width = check_int("hidden", self.hidden, low=1)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_real("ridge", self.ridge, low=0)
        object.__setattr__(self, "workers", h)
        object.__setattr__(self, "dimension", p * width + width + width * k + k)

    def _unflatten(
        self, theta: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(W₁, b₁, W₂, b₂) of θ ``(..., P)``, with θ's leading dimensions."""
        p, width, k = self.features.shape[2], self.hidden, self.classes
        w1, b1, w2, b2 = theta.split([p * width, width, width * k, k], dim=-1)
        batch = theta.shape[:-1]
        return w1.reshape(*batch, p, width), b1, w2.reshape(*batch, width, k), b2

    def _logits(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., n, K)`` of examples x ``(n, p)`` under θ ``(..., P)``."""
        w1, b1, w2, b2 = self._unflatten(theta)
        sigma = torch.tanh if self.activation == "tanh" else torch.relu
        hidden = sigma(x @ w1 + b1.unsqueeze(-2))
        return hidden @ w2 + b2.unsqueeze(-2)

    def _loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of x ``(n, p)``, y ``(n,)`` plus (λ/2)‖θ‖², for one θ ``(P,)``."""
        logits = self._logits(theta, x)
        picked = logits.gather(-1, y.unsqueeze(-1)).squeeze(-1)
        # logsumexp − picked logit: cross-entropy without forming the probabilities
        data = (torch.logsumexp(logits, dim=-1) - picked).mean()
        return data + self.ridge / 2 * theta.square().sum()

    def _example_loss(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss of one example x ``(p,)``, y ``()``."""
        return self._loss(theta, x.unsqueeze(0), y.unsqueeze(0))

    def _per_worker(self, function: _Loss, theta: torch.Tensor) -> torch.Tensor:
        """``function(θ, X_i, y_i)`` for every worker and every θ of ``(..., P)``."""
        over_workers = vmap(function, in_dims=(None, 0, 0))
        over_thetas = vmap(over_workers, in_dims=(0, None, None))
        flat = theta.reshape(-1, theta.shape[-1])
        values = over_thetas(flat, self.features, self.labels)
        return values.reshape(*theta.shape[:-1], *values.shape[1:])

    def losses(self, theta: torch.Tensor) -> torch.Tensor:
        return self._per_worker(self._loss, theta)

    def gradients(self, theta: torch.Tensor) -> torch.Tensor:
        return self._per_worker(grad(self._loss), theta)

    def example_gradients(self, theta: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        batch = torch.broadcast_shapes(theta.shape[:-1], index.shape[:-2])
        index = index.expand(*batch, *index.shape[-2:])
        x = _take(self.features, index)  # (..., h, b, p)
        y = self.labels.expand(*index.shape[:-1], -1).gather(-1, index)
        over_examples = vmap(grad(self._example_loss), in_dims=(None, 0, 0))
        over_workers = vmap(over_examples, in_dims=(None, 0, 0))
        over_thetas = vmap(over_workers)
        flat = over_thetas(
            theta.expand(*batch, theta.shape[-1]).reshape(-1, theta.shape[-1]),
            x.reshape(-1, *x.shape[-3:]),
            y.reshape(-1, *y.shape[-2:]),
        )
        return flat.reshape(*index.shape, theta.shape[-1])

    def initial_parameters(
        self,
        generator: torch.Generator | None = None,
        batch_shape: Sequence[int] = (),
    ) -> torch.Tensor:
        """A random start θ₀ ``(*batch_shape, P)`` in the dtype and on the device of the data.

        Weights are scaled normals and biases zero: W₁ ~ N(0, 2/(p + H)) (Glorot) for tanh or
        N(0, 2/p) (He) for ReLU, W₂ ~ N(0, 2/(H + K)) (Glorot: the output layer is linear).

        Parameters
        ----------
        generator : torch.Generator, optional
            Source of the draws (the global one when None); it may live on any device.
        batch_shape : sequence of int
            Leading dimensions: independent starts, e.g. one per seed.

        Returns
        -------
        torch.Tensor
            θ₀ ``(*batch_shape, P)``.
        """
        if not isinstance(batch_shape, Sequence):
            raise TypeError(f"batch_shape must be a sequence of integers, got {batch_shape!r}")
        shape = tuple(check_int("batch_shape", size, low=0) for size in batch_shape)
        p, width, k = self.features.shape[2], self.hidden, self.classes
        hidden_variance = 2 / p if self.activation == "relu" else 2 / (p + width)
        device = None if generator is None else generator.device

        def normal(rows: int, columns: int, variance: float) -> torch.Tensor:
            draw = torch.randn(
                (*shape, rows * columns), generator=generator, dtype=self.dtype, device=device
            )
            return math.sqrt(variance) * draw

        theta = torch.cat(
            [
                normal(p, width, hidden_variance),
                torch.zeros((*shape, width), dtype=self.dtype, device=device),
                normal(width, k, 2 / (width + k)),
                torch.zeros((*shape, k), dtype=self.dtype, device=device),
            ],
            dim=-1,
        )
        return theta.to(self.features.device)

    def accuracy(
        self, theta: torch.Tensor, features: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Fraction of ``(features (N, p), labels (N,))`` classified right, ``(...)``."""
        predicted = self._logits(theta, features).argmax(dim=-1)
        return (predicted == labels).to(theta.dtype).mean(dim=-1)

"""Time robust D-GD steps: trilemma, byzfl's framework and a per-worker loop; print a table.

Every implementation trains the same model from the same start on the same data: n = 20 workers
of which f = 4 are Byzantine (h = 16 honest), multinomial logistic regression (64 standardised
pixels and a bias, 10 classes, 650 parameters, no L2 term, θ₀ = 0) on scikit-learn's digits
split among the honest workers by ``trilemma.dgd.split_workers`` (``--per-worker`` examples
each, ``--split`` iid or extreme, seed 0). One step: every honest worker computes its full-batch
gradient, the f Byzantine workers send the attack's vectors, the server moves
θ ← θ − γ · rule(all n vectors). Rules: cwtm (byzfl ``TrMean``), cwmed (``Median``) and
nnm>>cwtm (``NNM`` pre-aggregation, then ``TrMean``); attacks: sign flipping (``SignFlipping``)
and ALIE with z = 1.5 and the unbiased standard deviation (``ALittleIsEnough(tau=1.5)``).

Implementations, each timed from its first to its last step:

- trilemma: one ``robust_dgd`` call on a ``SoftmaxRegression``: the 16 workers' gradients in one
  closed-form batched call per step; the call also records L_H(θ_t), ‖∇L_H(θ_t)‖² and the
  robustness ratio κ̂_t at every step, which the loops below do not;
- trilemma, S starts: the same call with θ₀ of shape (S, 650) (``--starts``, default 16; row 0
  is θ₀ = 0, the others 0.01·N(0, I)), reported as configuration-steps/s = S · steps/s;
- byzfl: the D-SGD round of byzfl's own training script (``byzfl/benchmark/train.py``) with its
  ``Client``, ``ByzantineClient`` and ``Server`` (``RobustAggregator`` inside): each client
  computes its gradient by autograd on one batch from its ``DataLoader``, the server aggregates
  the honest and Byzantine flat vectors, takes an SGD step (``torch.optim.SGD``, lr γ) and sends
  its state dict back to every client. Constructing the clients and the server is not timed;
- per-worker loop: the plain PyTorch loop, one ``loss.backward()`` per honest worker, the
  gradients stacked, then ``trilemma.attacks.get(attack)`` and
  ``trilemma.aggregators.get(rule, f=f)``, then the update under ``torch.no_grad()``;
- floor: what no implementation of a D-GD step can skip, one evaluation of the 16 honest
  workers' full-batch gradients (``SoftmaxRegression.gradients``, one batched closed-form call:
  a read of the data, 1 600 × 65 × 10 multiply-adds and a softmax) per step, followed by the
  cheapest update θ ← θ − γ·mean (no attack, no robust rule, nothing recorded). Each row gives
  the floor's steps/s of the same run and the implementation's time over the floor's.

How byzfl runs on this data. byzfl builds its models by name from
``byzfl.fed_framework.models``; its zoo has no model for 64-pixel digits (``logreg_mnist`` is a
784-input linear layer followed by a sigmoid, a different loss), so the model used here,
``logreg_digits`` = ``torch.nn.Linear(64, 10)`` returning logits, is registered in that module
under that name. With ``CrossEntropyLoss`` it is exactly our softmax regression: its weight and
bias are θ's pixel rows (transposed) and its bias row, and every rule and attack used here is
invariant under that reordering of coordinates. byzfl's ``DataDistributor`` is not used: it
splits a torchvision dataset through its ``targets`` attribute; each ``Client`` instead gets a
``DataLoader`` over its worker's data from ``split_workers`` (bias column dropped), with one
batch of all its examples, so every side sees identical workers. The server's weights are set to
zero through ``Server.set_parameters`` before the first round, and its optimizer is SGD without
momentum, weight decay or learning-rate decay (``milestones=[]``).

Everything is float32 (byzfl's torch aggregators and attacks cast their input to float32), on
the CPU (``--device cuda``: every implementation, byzfl's clients and server included, on the
GPU). Rates are steps per second: steps over the best of ``--repeats`` interleaved
``time.perf_counter`` runs, after one untimed warm-up run of every implementation (see
``benchmarks/_harness.py``). ``--quick`` runs 50 steps, best of 1. Correctness: the final loss
L_H(θ_T) of each implementation (for byzfl, the mean of the losses its clients report at θ_T)
and max |θ_T − θ_T(trilemma)| over the parameters (for the S-start run, row 0; for the floor,
which runs the plain mean, no comparison).

byzfl's top-level ``__init__`` (which imports torchvision, matplotlib and seaborn) is skipped as
in ``benchmarks/_byzfl.py``; ``byzfl.fed_framework`` itself imports none of them, so nothing is
mocked and all the code that runs is byzfl's own.
"""

from __future__ import annotations

import abc
import importlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import _harness as harness
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from trilemma import aggregators, attacks
from trilemma.dgd import (
    SoftmaxRegression,
    Trajectory,
    load_classification,
    robust_dgd,
    split_workers,
)

N, F = 20, 4
H = N - F
PIXELS, CLASSES = 64, 10  # scikit-learn's 8×8 digits
ALIE_Z = 1.5  # byzfl's default τ, set explicitly on both sides
START_SCALE = 0.01  # std of the random starts of the batched run (row 0 stays at zero)
AGREE_ATOL = 1e-4  # max |Δθ| below which two float32 runs count as the same trajectory
BYZFL_MODEL = "logreg_digits"

RULE_KEYS = ("cwtm", "cwmed", "nnm>>cwtm")
ATTACK_KEYS = ("sign_flipping", "alie")


@dataclass(frozen=True)
class Case:
    """One (rule, attack) cell, as trilemma and byzfl spell it."""

    rule: str
    attack: str

    def our_attack(self) -> attacks.Attack:
        """trilemma's attack object."""
        params = {"z": ALIE_Z, "unbiased": True} if self.attack == "alie" else {}
        return attacks.get(self.attack, **params)

    def byzfl_attack(self) -> dict[str, object]:
        """The configuration of byzfl's ``ByzantineClient``."""
        if self.attack == "alie":
            return {"name": "ALittleIsEnough", "f": F, "parameters": {"tau": ALIE_Z}}
        return {"name": "SignFlipping", "f": F, "parameters": {}}

    def byzfl_rule(self) -> tuple[dict[str, object], list[dict[str, object]]]:
        """byzfl's ``aggregator_info`` and ``pre_agg_list``."""
        if self.rule == "cwmed":
            return {"name": "Median", "parameters": {}}, []
        trimmed_mean: dict[str, object] = {"name": "TrMean", "parameters": {"f": F}}
        if self.rule == "nnm>>cwtm":
            return trimmed_mean, [{"name": "NNM", "parameters": {"f": F}}]
        return trimmed_mean, []


class DigitsLogReg(torch.nn.Module):
    """Multinomial logistic regression on the 64 digits pixels: logits Wx + b (for byzfl)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(PIXELS, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, 10)`` of pixels ``(batch, 64)``."""
        return self.linear(x)


class Loop(abc.ABC):
    """One implementation of T training steps: :meth:`reset` (untimed), then :meth:`train`
    (timed), then :meth:`result` (untimed).

    Parameters
    ----------
    problem : SoftmaxRegression
        The honest workers' data and loss (float32).
    case : Case
        Rule and attack.
    steps : int
        T.
    lr : float
        Step size γ.
    """

    label: str
    starts: int = 1  # configurations advanced per step

    def __init__(self, problem: SoftmaxRegression, case: Case, steps: int, lr: float) -> None:
        self.problem, self.case, self.steps, self.lr = problem, case, steps, lr

    def side(self) -> harness.Side:
        """:meth:`train` timed, after an untimed :meth:`reset`."""
        return harness.Side(lambda _: self.train(), lambda _: self.reset())

    @abc.abstractmethod
    def reset(self) -> None:
        """Build fresh state before a run (not timed)."""

    @abc.abstractmethod
    def train(self) -> None:
        """Run the T steps (timed)."""

    @abc.abstractmethod
    def result(self) -> tuple[torch.Tensor, float]:
        """θ_T in trilemma's layout ``(650,)`` and the final training loss."""


class TrilemmaLoop(Loop):
    """``robust_dgd`` from θ₀ = 0, or from ``starts`` starts at once (row 0 at zero)."""

    def __init__(
        self, problem: SoftmaxRegression, case: Case, steps: int, lr: float, starts: int = 1
    ) -> None:
        super().__init__(problem, case, steps, lr)
        self.starts = starts
        self.theta0: torch.Tensor | None = None
        self.label = "trilemma robust_dgd"
        if starts > 1:
            generator = torch.Generator().manual_seed(0)
            shape = (starts, problem.dimension)
            self.theta0 = START_SCALE * torch.randn(shape, generator=generator)
            self.theta0[0] = 0.0
            self.label += f", {starts} starts batched (configuration-steps/s)"
        self.run: Trajectory | None = None

    def reset(self) -> None:
        self.run = None  # robust_dgd needs no preparation: only drop the previous trajectory

    def train(self) -> None:
        self.run = robust_dgd(
            self.problem,
            rule=self.case.rule,
            f=F,
            attack=self.case.our_attack(),
            steps=self.steps,
            lr=self.lr,
            theta0=self.theta0,
        )

    def result(self) -> tuple[torch.Tensor, float]:
        if self.run is None:
            raise RuntimeError("train() has not run since the last reset()")
        if self.theta0 is None:
            return self.run.theta, float(self.run.objective[-1])
        return self.run.theta[0], float(self.run.objective[-1, 0])


class FloorLoop(Loop):
    """One batched gradient evaluation of the honest workers per step, then the mean step."""

    label = "floor: 1 gradient evaluation + mean step"

    def reset(self) -> None:
        self.theta = torch.zeros(
            self.problem.dimension, dtype=self.problem.dtype, device=self.problem.features.device
        )

    def train(self) -> None:
        problem, theta, lr = self.problem, self.theta, self.lr
        for _ in range(self.steps):
            theta = theta - lr * problem.gradients(theta).mean(dim=0)
        self.theta = theta

    def result(self) -> tuple[torch.Tensor, float]:
        return self.theta, float(self.problem.objective(self.theta))


class PerWorkerLoop(Loop):
    """Autograd gradient worker by worker, then trilemma's attack and rule."""

    label = "per-worker autograd loop + trilemma rule"

    def reset(self) -> None:
        self.weights = torch.zeros(
            self.problem.features.shape[-1],
            CLASSES,
            dtype=self.problem.dtype,
            device=self.problem.features.device,
            requires_grad=True,
        )

    def train(self) -> None:
        rule = aggregators.get(self.case.rule, f=F)
        attack = self.case.our_attack()
        workers = list(zip(self.problem.features, self.problem.labels, strict=True))
        weights = self.weights
        for _ in range(self.steps):
            gradients: list[torch.Tensor] = []
            for x, y in workers:
                weights.grad = None
                torch.nn.functional.cross_entropy(x @ weights, y).backward()
                assert weights.grad is not None  # backward() filled it
                gradients.append(weights.grad.flatten())
            honest = torch.stack(gradients)
            update = rule(torch.cat([honest, attack(honest, F)]))
            with torch.no_grad():
                weights -= self.lr * update.view_as(weights)

    def result(self) -> tuple[torch.Tensor, float]:
        theta = self.weights.detach().flatten()
        return theta, float(self.problem.objective(theta))


class ByzflLoop(Loop):
    """byzfl's D-SGD round with its Client, ByzantineClient and Server classes."""

    label = "byzfl fed_framework (Client/Server)"

    def __init__(
        self,
        problem: SoftmaxRegression,
        case: Case,
        steps: int,
        lr: float,
        framework: ModuleType,
    ) -> None:
        super().__init__(problem, case, steps, lr)
        self.framework = framework
        self.device = str(problem.features.device)
        pixels = problem.features[..., :PIXELS]  # nn.Linear carries the bias itself
        m = problem.features.shape[1]
        self.loaders = [
            DataLoader(TensorDataset(x, y), batch_size=m)
            for x, y in zip(pixels, problem.labels, strict=True)
        ]
        everything = TensorDataset(pixels.flatten(0, 1), problem.labels.flatten())
        self.test_loader = DataLoader(everything, batch_size=len(everything))

    def reset(self) -> None:
        fw = self.framework
        self.clients = [
            fw.Client(
                {
                    "model_name": BYZFL_MODEL,
                    "device": self.device,
                    "loss_name": "CrossEntropyLoss",
                    "LabelFlipping": False,
                    "nb_labels": CLASSES,
                    "momentum": 0.0,
                    "training_dataloader": loader,
                    "store_per_client_metrics": False,
                }
            )
            for loader in self.loaders
        ]
        aggregator_info, pre_agg_list = self.case.byzfl_rule()
        self.server = fw.Server(
            {
                "model_name": BYZFL_MODEL,
                "device": self.device,
                "test_loader": self.test_loader,
                "optimizer_name": "SGD",
                "learning_rate": float(self.lr),
                "weight_decay": 0.0,
                "milestones": [],
                "learning_rate_decay": 1.0,
                "aggregator_info": aggregator_info,
                "pre_agg_list": pre_agg_list,
            }
        )
        size = sum(p.numel() for p in self.server.model.parameters())
        self.server.set_parameters(torch.zeros(size, device=self.device))
        self.byzantine = fw.ByzantineClient(self.case.byzfl_attack())

    def train(self) -> None:
        clients, server = self.clients, self.server
        model = server.get_dict_parameters()
        for client in clients:
            client.set_model_state(model)
        for _ in range(self.steps):
            for client in clients:
                client.compute_gradients()
            honest = [client.get_flat_gradients_with_momentum() for client in clients]
            server.update_model_with_gradients(honest + self.byzantine.apply_attack(honest))
            model = server.get_dict_parameters()
            for client in clients:
                client.set_model_state(model)

    def result(self) -> tuple[torch.Tensor, float]:
        state = self.server.get_dict_parameters()
        weight, bias = state["linear.weight"], state["linear.bias"]
        theta = torch.cat([weight.T, bias.unsqueeze(0)]).flatten()
        loss = float(np.mean([client.compute_gradients() for client in self.clients]))
        return theta.detach().clone(), loss


@dataclass
class Row:
    """Rate and outcome of one implementation on one case."""

    case: Case
    label: str
    rate: float  # steps/s, × starts for a batched run
    loss: float
    max_abs: float  # max |θ_T − θ_T(trilemma)|; NaN: not compared


def load_framework() -> ModuleType:
    """``byzfl.fed_framework`` without ``byzfl/__init__``, with the digits model registered."""
    harness.sibling("_byzfl").load_byzfl()
    framework = importlib.import_module("byzfl.fed_framework")
    setattr(framework.models, BYZFL_MODEL, DigitsLogReg)
    return framework


def make_problem(per_worker: int, split: str, device: torch.device) -> SoftmaxRegression:
    """Digits split among the h honest workers, float32, on ``device``."""
    data = load_classification("digits")
    features, labels = split_workers(data, workers=H, per_worker=per_worker, kind=split, seed=0)
    return SoftmaxRegression(features.float().to(device), labels.to(device), classes=data.classes)


def run_case(
    loops: Sequence[Loop], repeats: int, timer: harness.Timer
) -> list[tuple[float, torch.Tensor, float]]:
    """Warm up every loop, then time ``repeats`` interleaved runs of each (a reset before
    every run, untimed).

    Returns
    -------
    list of tuple
        Per loop: best seconds, θ_T and final loss (of its last run).
    """
    timings = harness.best_of([loop.side() for loop in loops], repeats, timer=timer)
    return [(t.seconds, *loop.result()) for t, loop in zip(timings, loops, strict=True)]


def measure(
    case: Case,
    problem: SoftmaxRegression,
    framework: ModuleType,
    *,
    steps: int,
    lr: float,
    starts: int,
    repeats: int,
    timer: harness.Timer,
) -> list[Row]:
    """Rows of the four implementations and the floor on one case; prints a progress line."""
    loops: list[Loop] = [
        TrilemmaLoop(problem, case, steps, lr),
        TrilemmaLoop(problem, case, steps, lr, starts=starts),
        ByzflLoop(problem, case, steps, lr, framework),
        PerWorkerLoop(problem, case, steps, lr),
        FloorLoop(problem, case, steps, lr),
    ]
    outcomes = run_case(loops, repeats, timer)
    reference = outcomes[0][1].cpu()
    rows = [
        Row(
            case,
            loop.label,
            loop.starts * steps / seconds,
            loss,
            math.nan
            if isinstance(loop, FloorLoop)
            else float((theta.cpu() - reference).abs().max()),
        )
        for loop, (seconds, theta, loss) in zip(loops, outcomes, strict=True)
    ]
    rates = ", ".join(f"{row.rate:,.0f}" for row in rows)
    print(
        f"  {case.rule:<10} {case.attack:<14} steps/s (trilemma, ×{starts}, byzfl, loop, "
        f"floor): {rates}"
    )
    return rows


IMPLEMENTATIONS = 5  # rows per case, in the order of :func:`measure`


def result_table(rows: Sequence[Row], starts: int) -> str:
    """One line per implementation and case: rate, the floor's rate, time over the floor's,
    ratios against trilemma's single and S-start runs of the same case, loss, Δθ."""
    header = [
        "rule",
        "attack",
        "implementation",
        "steps/s",
        "floor steps/s",
        "time / floor",
        "ratio trilemma/this",
        f"ratio trilemma ×{starts}/this",
        "final loss",
        "max abs Δθ vs trilemma",
    ]
    lines = []
    for i in range(0, len(rows), IMPLEMENTATIONS):
        group = rows[i : i + IMPLEMENTATIONS]
        single, batched, floor = group[0].rate, group[1].rate, group[-1].rate
        for k, row in enumerate(group[:-1]):
            ratios = (
                ("—", "—")
                if k < 2
                else (harness.times(single / row.rate), harness.times(batched / row.rate))
            )
            lines.append(
                [
                    row.case.rule,
                    row.case.attack,
                    row.label,
                    harness.rate(row.rate),
                    harness.rate(floor),
                    harness.times(floor / row.rate),
                    *ratios,
                    f"{row.loss:.6f}",
                    f"{row.max_abs:.1e}",
                ]
            )
    return harness.markdown_table(header, lines, align="lll" + "r" * 7)


def main(argv: Sequence[str] | None = None) -> int:
    """Time every (rule, attack) case, print progress, then the Markdown table and the checks;
    ``argv`` defaults to ``sys.argv[1:]``. Returns the exit status: 0, or 1 when an implementation
    ends further than ``AGREE_ATOL`` from trilemma's θ_T on some case.
    """
    parser = harness.make_parser(
        __doc__,
        repeats=3,
        quick_repeats=1,
        quick="50 steps, best of 1",
    )
    parser.add_argument("--steps", type=int, help="T (default 200; quick 50)")
    parser.add_argument("--starts", type=int, default=16, help="S of the batched run (16)")
    parser.add_argument("--lr", type=float, default=0.5, help="step size γ (default 0.5)")
    parser.add_argument("--per-worker", type=int, default=100, help="examples per worker (100)")
    parser.add_argument("--split", choices=("iid", "extreme"), default="iid", help="(iid)")
    parser.add_argument("--rules", help=f"comma-separated subset of {','.join(RULE_KEYS)}")
    parser.add_argument("--attacks", help=f"comma-separated subset of {','.join(ATTACK_KEYS)}")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    args = harness.parse(parser, argv)
    steps = args.steps or (50 if args.quick else 200)
    if steps < 1 or args.starts < 2 or args.lr <= 0 or args.per_worker < 1:
        parser.error("--steps and --per-worker must be ≥ 1, --starts ≥ 2 and --lr > 0")
    rules = harness.choices(args.rules, RULE_KEYS, "--rules", parser)
    attack_keys = harness.choices(args.attacks, ATTACK_KEYS, "--attacks", parser)
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    framework = load_framework()
    problem = make_problem(args.per_worker, args.split, args.device)
    timer = harness.Timer(args.device)

    start = harness.print_header(
        "Robust D-GD steps: trilemma vs byzfl's framework vs a per-worker loop vs the floor",
        device=args.device,
        packages=("torch", "numba", "byzfl"),
    )
    initial = float(problem.objective(torch.zeros(problem.dimension, device=args.device)))
    print(f"float32 on {args.device}; best of {args.repeats} after one warm-up run each")
    print(
        f"digits, {args.split} split: n={N} f={F} h={H}, {args.per_worker} examples per worker, "
        f"{problem.dimension} parameters; T={steps} steps at γ={args.lr:g}; ALIE z={ALIE_Z:g}; "
        f"L_H(θ₀=0) = {initial:.6f}"
    )
    print()

    rows: list[Row] = []
    for rule in rules:
        for attack in attack_keys:
            rows += measure(
                Case(rule, attack),
                problem,
                framework,
                steps=steps,
                lr=args.lr,
                starts=args.starts,
                repeats=args.repeats,
                timer=timer,
            )

    print()
    print(result_table(rows, args.starts))
    print()
    print(
        f"Ratios: trilemma steps/s (resp. configuration-steps/s of the {args.starts}-start run) "
        "over this implementation's steps/s. Final loss: L_H(θ_T) (the S-start run: its θ₀ = 0 "
        "row; byzfl: the mean of its clients' CrossEntropyLoss at θ_T). max abs Δθ: over the "
        f"{problem.dimension} parameters, against the single trilemma run (byzfl's Linear "
        "weight and bias mapped to θ's layout). floor steps/s: one batched evaluation of the "
        "honest workers' gradients and a mean step per step, measured in the same run; time / "
        "floor: this implementation's time per (configuration-)step over the floor's."
    )
    apart = [r for r in rows if not (math.isnan(r.max_abs) or r.max_abs <= AGREE_ATOL)]
    if apart:
        cells = ", ".join(
            f"{r.case.rule}/{r.case.attack}/{r.label} ({r.max_abs:.1e})" for r in apart
        )
        print(f"Trajectories further than {AGREE_ATOL:g} from trilemma's: {cells}.")
    else:
        print(f"Every implementation ends within {AGREE_ATOL:g} of trilemma's θ_T on every case.")
    harness.print_footer(start)
    return 1 if apart else 0


if __name__ == "__main__":
    sys.exit(main())

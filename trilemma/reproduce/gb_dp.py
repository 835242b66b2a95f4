"""SAFE-DSHB under attack (Allouah et al., "On the Privacy-Robustness-Utility Trilemma in
Distributed Learning", ICML 2023, arXiv:2302.04787): final test accuracy of private, robust
distributed SGD with momentum against the per-worker privacy budget ε, for SMEA and CWTM
(and NNM∘CWTM), on digits with a moderately heterogeneous split.

Setting: digits (d = 65 features with the bias, K = 10, P = 650 parameters) is split once into
a held-out test set (20 %, from ``settings.seed``; :func:`trilemma.dgd.holdout`) and a training
set; 10 honest workers get m = 140 training examples each, class proportions q_i ~ Dir(α = 1)
(Hsu, Qi, Brown 2019, arXiv:1909.06335; :func:`trilemma.dgd.split_workers`); multinomial
logistic regression with ridge 1e-4; f = 2 Byzantine workers (n = 12). One step of SAFE-DSHB
as in the paper's Algorithm 1 (THEORY §4), run by :func:`trilemma.dgd.robust_dgd`: each honest
worker draws b = 70 of its m examples without replacement, clips every per-example gradient to
norm C = 1, averages them and adds N(0, s²I); its momentum is m_i ← β m_i + (1 − β) g_i with
β = 0.5 (THEORY §4 writes the weights the other way round); the server moves
θ ← θ − γ F(m_1, …, m_n) with γ = 3, for T = 40 steps. Size ``tiny`` (tests) runs T = 10 steps
with full batches b = m, whose accounting (a composition of Gaussian mechanisms) takes
milliseconds where sampling without replacement takes seconds per ε.

Noise: s = z(ε, δ, T, b/m) · C/b, with z the noise multiplier that makes T steps of the
subsampled Gaussian mechanism (ε, δ)-DP for one worker's record under replace-one
neighbouring, δ = 1e-5, RDP accounting (Abadi et al., CCS 2016, arXiv:1607.00133; per-worker
use as in the paper's Sec. 3; :func:`trilemma.accountants.worker_noise_std`). ε = ∞ means
s = 0 (clipping and batches kept).

Seeds: S trials are leading dimensions of θ₀, driven by one ``torch.Generator`` seeded with
``settings.seed`` for every run, so that rules and budgets meet the same batches and the same
standard-normal draws (common random numbers; the noise scale s differs). The reference
``mean, f = 0`` is the same algorithm without Byzantine workers. Reported: the mean over the S
trials of the final test accuracy, with the standard deviation and the range.

Theory in view [D, THEORY §4]: the honest average carries noise of squared norm ≈ P s²/(n − f),
which grows like 1/ε², and a robust rule adds κ times a spread that the DP noise inflates —
spectrally (κ_sp λ_max, SMEA, κ_sp = 4f/(n − 2f)) or in trace (κ tr, CWTM); accuracy must fall
as ε shrinks, for every rule.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma import dgd
from trilemma.accountants import worker_noise_std
from trilemma.reproduce._figure import Figure, FigureData, Settings, non_decreasing, register

__all__: list[str] = []

_HONEST, _PER_WORKER, _BATCH, _F = 10, 140, 70, 2
_CLIP, _DELTA, _MOMENTUM, _LR, _RIDGE, _ALPHA = 1.0, 1e-5, 0.5, 3.0, 1e-4, 1.0
_TEST_FRACTION = 0.2
_CLEAN_ACCURACY = 0.9
_LABELS = {"smea": "SMEA", "cwtm": "CWTM", "nnm>>cwtm": "NNM∘CWTM", "mean": "mean, no attack"}


@functools.cache
def _noise_std(epsilon: float, steps: int, batch: int) -> float:
    """s for budget ε over T steps with batches of b (the accountant's search for sampling
    without replacement takes seconds: computed once)."""
    return worker_noise_std(
        epsilon=epsilon,
        delta=_DELTA,
        steps=steps,
        local_size=_PER_WORKER,
        clip=_CLIP,
        batch_size=batch,
    )


def _safe_dshb(settings: Settings) -> FigureData:
    training, test = dgd.holdout(
        dgd.load_classification("digits"), fraction=_TEST_FRACTION, seed=settings.seed
    )
    test_x, test_y = torch.from_numpy(test.features), torch.from_numpy(test.labels)
    features, labels = dgd.split_workers(
        training,
        workers=_HONEST,
        per_worker=_PER_WORKER,
        kind="dirichlet",
        alpha=_ALPHA,
        seed=settings.seed,
    )
    problem = dgd.SoftmaxRegression(features, labels, classes=training.classes, ridge=_RIDGE)
    steps = settings.pick(tiny=10, quick=40, full=40)
    batch = settings.pick(tiny=_PER_WORKER, quick=_BATCH, full=_BATCH)
    trials = settings.pick(tiny=2, quick=2, full=5)
    epsilons = settings.pick(
        tiny=(8.0, math.inf),
        quick=(0.5, 2.0, 8.0, math.inf),
        full=(0.5, 1.0, 2.0, 4.0, 8.0, 16.0, math.inf),
    )
    rules = settings.pick(
        tiny=("smea", "cwtm"), quick=("smea", "cwtm"), full=("smea", "cwtm", "nnm>>cwtm")
    )
    attacks = settings.pick(tiny=("alie",), quick=("alie",), full=("alie", "sign_flipping"))
    theta0 = torch.zeros(trials, problem.dimension, dtype=torch.float64)
    series = [("mean", 0, "none")] + [(r, _F, a) for a in attacks for r in rules]
    rows: list[dict[str, Any]] = []
    for epsilon in epsilons:
        noise = 0.0 if math.isinf(epsilon) else _noise_std(epsilon, steps, batch)
        for rule, f, attack in series:
            run = dgd.robust_dgd(
                problem,
                rule=rule,
                f=f,
                attack=None if f == 0 else attack,
                steps=steps,
                lr=_LR,
                theta0=theta0,
                batch_size=batch,
                clip=_CLIP,
                noise_std=noise,
                momentum=_MOMENTUM,
                generator=torch.Generator().manual_seed(settings.seed),
            )
            accuracy = problem.accuracy(run.theta, test_x, test_y).double().numpy()
            accuracy = np.where(np.isfinite(run.theta.numpy()).all(axis=-1), accuracy, 0.0)
            rows.append(
                {
                    "rule": rule,
                    "f": f,
                    "n": _HONEST + f,
                    "attack": attack,
                    "epsilon": epsilon,
                    "noise_std": noise,
                    "batch_size": batch,
                    "trials": trials,
                    "accuracy_mean": float(accuracy.mean()),
                    "accuracy_std": float(accuracy.std(ddof=1)) if trials > 1 else 0.0,
                    "accuracy_min": float(accuracy.min()),
                    "accuracy_max": float(accuracy.max()),
                    "final_loss": float(run.objective[-1].mean()),
                    "kappa_hat_mean": float(run.kappa_hat.mean()),
                }
            )
    low, high = min(epsilons), max(epsilons)

    def accuracy_at(rule: str, attack: str, epsilon: float) -> float:
        return next(
            r["accuracy_mean"]
            for r in rows
            if (r["rule"], r["attack"], r["epsilon"]) == (rule, attack, epsilon)
        )

    table = {
        f"{rule} / {attack}": {str(e): accuracy_at(rule, attack, e) for e in epsilons}
        for rule, _, attack in series
    }
    return FigureData(
        rows=rows,
        parameters={
            "honest": _HONEST,
            "f": _F,
            "per_worker": _PER_WORKER,
            "batch_size": batch,
            "clip": _CLIP,
            "delta": _DELTA,
            "momentum": _MOMENTUM,
            "lr": _LR,
            "ridge": _RIDGE,
            "split": f"dirichlet alpha={_ALPHA}",
            "test_examples": len(test_y),
            "steps": steps,
            "trials": trials,
            "noise_std": {str(r["epsilon"]): r["noise_std"] for r in rows},
            "accuracy": table,
        },
        checks={
            f"accuracy at ε = {high:g} exceeds accuracy at ε = {low:g}, every rule": all(
                accuracy_at(rule, attack, high) > accuracy_at(rule, attack, low)
                for rule, _, attack in series
            ),
            f"without noise and attack (mean, f = 0, ε = ∞) test accuracy ≥ "
            f"{_CLEAN_ACCURACY:.0%}": accuracy_at("mean", "none", math.inf) >= _CLEAN_ACCURACY,
            "mean accuracy does not decrease as ε grows (within 5 %), every rule": all(
                non_decreasing([accuracy_at(rule, attack, e) for e in epsilons])
                for rule, _, attack in series
            ),
        },
    )


def _position(epsilon: float, largest: float) -> float:
    """x position: ε itself, and ε = ∞ at twice the largest finite ε."""
    return 2.0 * largest if math.isinf(epsilon) else epsilon


def _plot_safe_dshb(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows = data.rows
    attacks = [a for a in dict.fromkeys(r["attack"] for r in rows) if a != "none"]
    panels = canvas.subplots(1, len(attacks), sharey=True, squeeze=False)[0]
    epsilons = sorted({r["epsilon"] for r in rows})
    largest = max(e for e in epsilons if math.isfinite(e))
    ticks = [_position(e, largest) for e in epsilons]
    labels = ["∞" if math.isinf(e) else f"{e:g}" for e in epsilons]
    for axes, attack in zip(panels, attacks, strict=True):
        shown = [
            ("mean", "none", "0.4", "--"),
            *(
                (rule, attack, f"C{i}", "-")
                for i, rule in enumerate(
                    dict.fromkeys(r["rule"] for r in rows if r["attack"] == attack)
                )
            ),
        ]
        for rule, which, color, style in shown:
            mine = sorted(
                (r for r in rows if r["rule"] == rule and r["attack"] == which),
                key=lambda r: r["epsilon"],
            )
            axes.errorbar(
                [_position(r["epsilon"], largest) for r in mine],
                [r["accuracy_mean"] for r in mine],
                yerr=[r["accuracy_std"] for r in mine],
                color=color,
                ls=style,
                marker="o",
                ms=3,
                capsize=2,
                label=_LABELS.get(rule, rule) + ("" if which == "none" else f", f = {_F}"),
            )
        axes.set_xscale("log")
        axes.set_xticks(ticks, labels)
        axes.minorticks_off()
        axes.set_xlabel("per-worker ε (δ = 1e-5)")
        axes.set_title(f"attack: {attack}", fontsize=9)
        axes.grid(True, alpha=0.3)
    panels[0].set_ylabel("final test accuracy (mean ± std over trials)")
    panels[0].legend(fontsize=7)
    canvas.suptitle(
        "SAFE-DSHB on digits, 10 honest workers (Dirichlet α = 1), per-example clip C = 1, "
        f"b = {rows[0]['batch_size']}, β = {_MOMENTUM}",
        fontsize=9,
    )


register(
    Figure(
        name="gb-safe-dshb",
        theorem="Allouah et al., ICML 2023 (arXiv:2302.04787): SAFE-DSHB, private and robust "
        "distributed SGD with momentum, SMEA against CWTM",
        description="final test accuracy vs per-worker ε of D-SHB with per-example clipping and "
        "Gaussian noise from the accountant, f = 2 Byzantine workers, SMEA vs CWTM, with the "
        "attack-free mean as reference",
        compute=_safe_dshb,
        plot=_plot_safe_dshb,
        size=(9.0, 4.4),
        single_thread=True,
    )
)

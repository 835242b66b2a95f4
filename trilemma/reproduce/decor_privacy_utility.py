"""Privacy–utility of decentralized learning with correlated noise (DECOR, Allouah, Koloskova,
El Firdoussi, Jaggi, Guerraoui, ICML 2024, arXiv:2405.01031, Fig. 2's protocol on our data):
final training loss against the per-node budget ε for central DP, local DP and DECOR on ring,
torus and complete graphs of 16 nodes.

Setting: scikit-learn's breast_cancer (offline; the paper's LIBSVM a9a is not shipped — pass a
LIBSVM path to :func:`trilemma.dgd.load_classification` to use it), standardised, bias column,
20 % held out (:func:`trilemma.dgd.holdout`, seed ``settings.seed``); 16 nodes with m = 25
training examples each, class proportions q_i ~ Dir(α = 1) (:func:`trilemma.dgd.split_workers`);
logistic regression as two-class softmax with ridge 1e-3. Each round (:class:`trilemma.
decentralized.DecentralizedSGD`): node i's full local gradient at its own model, clipped to
C = 1 as a whole (user-level DP, the reference's LIBSVM setting ``"privacy": "user"``), plus
N(0, σ² I) plus DECOR's edge secrets (σ_cor), a step γ = 0.01, then Metropolis–Hastings gossip;
T = 200 rounds from θ = 0. The reference runs T = 5000 rounds of batches of 64 and tunes
(γ, C) per method and ε on a grid; we keep one (γ, C) for every method, so differences come
from the noise alone.

Noise at each ε (δ = 1e-5, user level, T rounds, RDP accounting of dp-accounting through
:func:`trilemma.accountants.secldp_epsilon`; :mod:`trilemma.decentralized.calibration`):

- local DP: the smallest σ_ldp with ε(σ_ldp, σ_cor = 0) ≤ ε;
- central DP: exact averaging (W = 11ᵀ/n) with σ_cdp = σ_ldp/√n per node [D];
- DECOR: (σ, σ_cor) meeting ε for the worst node with the least network-average noise variance
  after one gossip round, V = (σ² ‖W‖_F² + σ_cor² tr(W L Wᵀ))/n
  (:func:`trilemma.decentralized.calibrate_decor`) — where the reference keeps the first pair
  of a 50 × 1000 grid that meets ε.

Reported (as the reference's evaluator): the training objective L(θ̄_T) at the average of the
node models, mean over S seeds with its 95 % Student-t interval, and the mean over nodes of
L(θ_i) as a second column; ε = ∞ is noiseless D-GD with exact averaging. All methods at one
seed share their standard-normal draws (common random numbers), so the checks compare methods
by the paired per-seed differences.

Theory in view [D]: gossip preserves the network mean, so the noise reaching θ̄ per round is
σ²/n per coordinate — σ_ldp²/n for local DP, σ_ldp²/n² for central DP, σ²/n for DECOR with
σ_ldp/√n < σ < σ_ldp — and DECOR's secrets only perturb the consensus, which gossip contracts.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma import dgd
from trilemma.accountants import secldp_epsilon
from trilemma.decentralized import (
    DecentralizedSGD,
    calibrate_decor,
    central_sigma,
    local_sigma,
)
from trilemma.estimators import mean_interval
from trilemma.reproduce._figure import Figure, FigureData, Settings, register

__all__ = ["CALIBRATED", "CENTRAL_BEST", "DECOR_HELPS", "DECOR_NO_WORSE", "checks"]

_NODES, _PER_WORKER, _ALPHA, _RIDGE = 16, 25, 1.0, 1e-3
_CLIP, _LR, _DELTA, _TEST_FRACTION = 1.0, 0.01, 1e-5, 0.2
_TAIL = 0.25
_DATASET = "breast_cancer"
_SPARSE = ("ring:16", "torus:4x4")
_CALIBRATION = 1e-3
"""Relative tolerance of the calibration check: each σ is found to 1e-4 or better, and ε is
flat to first order near it."""
_AVERAGING = "exact averaging"

CALIBRATED = (
    "every noise level meets its ε, re-accounted from the CSV's σ and σ_cor (within 0.1 %, "
    "never above)"
)
DECOR_NO_WORSE = (
    "DECOR is no worse than local DP on every graph at every ε (paired 95 % interval of "
    "loss(local) − loss(DECOR) reaches 0 or above)"
)
CENTRAL_BEST = (
    "central DP is no worse than DECOR on every graph at every ε (paired 95 % interval of "
    "loss(DECOR) − loss(central) reaches 0 or above)"
)
_HELPS_AT = 3.0
"""ε of the "DECOR helps" check: at ε = 1 the noise swamps the signal (losses 40× the
non-private one, heavy-tailed over seeds) and at ε ≥ 10 every method is near the floor."""
DECOR_HELPS = (
    f"correlated noise buys utility on the sparse graphs: DECOR beats local DP on ring and "
    f"torus at ε = {_HELPS_AT:g} (paired 95 % interval above 0)"
)


def _problem(seed: int) -> dgd.SoftmaxRegression:
    training, _ = dgd.holdout(dgd.load_classification(_DATASET), fraction=_TEST_FRACTION, seed=seed)
    features, labels = dgd.split_workers(
        training,
        workers=_NODES,
        per_worker=_PER_WORKER,
        kind="dirichlet",
        alpha=_ALPHA,
        seed=seed,
    )
    return dgd.SoftmaxRegression(features, labels, classes=training.classes, ridge=_RIDGE)


def _final_losses(
    problem: dgd.SoftmaxRegression,
    graph: str,
    *,
    steps: int,
    seeds: int,
    seed: int,
    mixing: str = "metropolis",
    sigma: float = 0.0,
    sigma_cor: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Per seed, the tail average (last quarter of the rounds) of L(θ̄_t) and the final mean
    over nodes of L(θ_i,T) (inf where a run diverged)."""
    algorithm = DecentralizedSGD(
        problem,
        graph,
        lr=_LR,
        mixing=mixing,
        clip=_CLIP,
        clipping="node",
        sigma=sigma,
        sigma_cor=sigma_cor,
    )
    state = algorithm.start(torch.zeros(seeds, problem.dimension, dtype=problem.dtype))
    generator = torch.Generator().manual_seed(seed)
    tail = max(1, round(_TAIL * steps))
    average = torch.zeros(seeds, dtype=problem.dtype)
    for step in range(steps):
        state, _ = algorithm.step(state, generator, measure=False)
        if step >= steps - tail:
            average = average + problem.objective(state.theta.mean(dim=-2)) / tail
    nodes = algorithm.measure(state.theta).node_objective
    finite = torch.isfinite(state.theta).all(dim=-1).all(dim=-1)
    average = torch.where(finite & torch.isfinite(average), average, torch.inf)
    nodes = torch.where(finite & torch.isfinite(nodes), nodes, torch.inf)
    return average.numpy(), nodes.numpy()


class _Series(NamedTuple):
    """The noise of one run of the figure: method, graph, target ε and the noise levels."""

    method: str
    graph: str
    epsilon: float
    sigma: float
    sigma_cor: float
    mixing: str = "metropolis"


def _noise_levels(
    graphs: tuple[str, ...], epsilons: tuple[float, ...], budget: dict[str, Any]
) -> list[_Series]:
    """The series to run, in row order: non-private, then per ε central DP (σ of local DP on the
    first graph over √n) and per graph local DP and DECOR (σ, σ_cor calibrated to ε)."""
    series = [_Series("non-private", graphs[-1], math.inf, 0.0, 0.0, mixing="average")]
    for epsilon in epsilons:
        sigma_ldp = local_sigma(graphs[0], target_epsilon=epsilon, rtol=1e-6, **budget)
        central = central_sigma(sigma_ldp, nodes=_NODES)
        series.append(_Series("central DP", graphs[-1], epsilon, central, 0.0, mixing="average"))
        for graph in graphs:
            series.append(_Series("local DP", graph, epsilon, sigma_ldp, 0.0))
            noise = calibrate_decor(graph, target_epsilon=epsilon, rtol=1e-5, **budget)
            series.append(_Series("DECOR", graph, epsilon, noise.sigma, noise.sigma_cor))
    return series


def _loss_row(
    problem: dgd.SoftmaxRegression, series: _Series, *, steps: int, seeds: int, seed: int
) -> tuple[dict[str, Any], np.ndarray]:
    """One series' row (tail-average and final node losses, mean and 95 % interval over the
    seeds) and its per-seed tail averages."""
    average, nodes = _final_losses(
        problem,
        series.graph,
        steps=steps,
        seeds=seeds,
        seed=seed,
        mixing=series.mixing,
        sigma=series.sigma,
        sigma_cor=series.sigma_cor,
    )
    row = {
        "method": series.method,
        "graph": _AVERAGING if series.mixing == "average" else series.graph,
        "epsilon": series.epsilon,
        "sigma": series.sigma,
        "sigma_cor": series.sigma_cor,
        "loss_mean": float(average.mean()),
        "loss_ci95": mean_interval(average),
        "node_loss_mean": float(nodes.mean()),
        "node_loss_ci95": mean_interval(nodes),
        "seeds": seeds,
        "steps": steps,
    }
    return row, average


def _add_paired_columns(
    rows: list[dict[str, Any]], losses: dict[tuple[str, str, float], np.ndarray]
) -> None:
    """Append to each DECOR row its paired gain over local DP and excess over central DP (mean
    and 95 % interval over the seeds) and the fraction of the local-to-central gap it closes."""
    for row in rows:
        if row["method"] != "DECOR":
            continue
        graph, epsilon = row["graph"], row["epsilon"]
        decor = losses["DECOR", graph, epsilon]
        gain = losses["local DP", graph, epsilon] - decor
        excess = decor - losses["central DP", _AVERAGING, epsilon]
        row["gain_over_local_mean"] = float(gain.mean())
        row["gain_over_local_ci95"] = mean_interval(gain)
        row["excess_over_central_mean"] = float(excess.mean())
        row["excess_over_central_ci95"] = mean_interval(excess)
        spread = (
            losses["local DP", graph, epsilon].mean()
            - losses["central DP", _AVERAGING, epsilon].mean()
        )
        row["gap_closed"] = float(gain.mean() / spread) if spread != 0 else math.nan


def _compute(settings: Settings) -> FigureData:
    steps = settings.pick(tiny=100, quick=150, full=200)
    seeds = settings.pick(tiny=32, quick=32, full=64)
    epsilons = settings.pick(
        tiny=(3.0,), quick=(1.0, 3.0, 10.0), full=(1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
    )
    graphs = settings.pick(
        tiny=("ring:16", "complete:16"),
        quick=("ring:16", "torus:4x4", "complete:16"),
        full=("ring:16", "torus:4x4", "complete:16"),
    )
    problem = _problem(settings.seed)
    budget = {"clip": _CLIP, "steps": steps, "delta": _DELTA}
    rows: list[dict[str, Any]] = []
    losses: dict[tuple[str, str, float], np.ndarray] = {}
    for series in _noise_levels(graphs, epsilons, budget):
        row, average = _loss_row(problem, series, steps=steps, seeds=seeds, seed=settings.seed)
        losses[row["method"], row["graph"], row["epsilon"]] = average
        rows.append(row)
    _add_paired_columns(rows, losses)
    parameters = {
        "dataset": _DATASET,
        "nodes": _NODES,
        "per_worker": _PER_WORKER,
        "split": f"dirichlet alpha={_ALPHA}",
        "ridge": _RIDGE,
        "clip": _CLIP,
        "clipping": "node (user level)",
        "lr": _LR,
        "delta": _DELTA,
        "steps": steps,
        "seeds": seeds,
        "tail_fraction": _TAIL,
        "graphs": list(graphs),
        "mixing": "metropolis",
        "decor_objective": "network-average noise variance after one gossip round",
        "accounting": "rdp",
    }
    return FigureData(rows=rows, parameters=parameters, checks=checks(rows, parameters))


def checks(rows: list[dict[str, Any]], parameters: dict[str, Any]) -> dict[str, bool]:
    """The four declared checks, evaluated on ``rows`` (so corrupted rows can be tested); the
    last is False when the rows hold no sparse graph at ε = 3."""
    budget = {
        "clip": parameters["clip"],
        "steps": parameters["steps"],
        "delta": parameters["delta"],
    }
    calibrated = True
    for row in rows:
        if not math.isfinite(row["epsilon"]):
            continue
        if row["method"] == "central DP":  # the mean's noise σ/√n against sensitivity 2C/n
            graph, sigma = (
                f"complete:{parameters['nodes']}",
                row["sigma"] * math.sqrt(parameters["nodes"]),
            )
        else:
            graph, sigma = row["graph"], row["sigma"]
        epsilon = secldp_epsilon(graph, sigma=sigma, sigma_cor=row["sigma_cor"], **budget)
        calibrated &= row["epsilon"] * (1 - _CALIBRATION) <= epsilon <= row["epsilon"]
    decor = [r for r in rows if r["method"] == "DECOR"]
    sparse = [r for r in decor if r["graph"] in _SPARSE and r["epsilon"] == _HELPS_AT]
    return {
        CALIBRATED: bool(calibrated),
        DECOR_NO_WORSE: all(
            r["gain_over_local_mean"] + r["gain_over_local_ci95"] >= 0 for r in decor
        ),
        CENTRAL_BEST: all(
            r["excess_over_central_mean"] + r["excess_over_central_ci95"] >= 0 for r in decor
        ),
        DECOR_HELPS: bool(sparse)
        and all(r["gain_over_local_mean"] - r["gain_over_local_ci95"] > 0 for r in sparse),
    }


def _plot(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows, parameters = data.rows, data.parameters
    graphs = parameters["graphs"]
    axes = canvas.subplots(1, len(graphs), sharey=True, squeeze=False)[0]
    styles = {
        "local DP": ("C3", "s", "-"),
        "DECOR": ("C0", "o", "-"),
        "central DP": ("k", "^", "--"),
    }
    (free,) = [r for r in rows if r["method"] == "non-private"]
    for panel, graph in zip(axes, graphs, strict=True):
        for method, (color, marker, style) in styles.items():
            where = _AVERAGING if method == "central DP" else graph
            mine = sorted(
                (r for r in rows if r["method"] == method and r["graph"] == where),
                key=lambda r: r["epsilon"],
            )
            panel.errorbar(
                [r["epsilon"] for r in mine],
                [r["loss_mean"] for r in mine],
                yerr=[r["loss_ci95"] for r in mine],
                color=color,
                marker=marker,
                ls=style,
                ms=4,
                capsize=2,
                label=method if method != "central DP" else "central DP (exact averaging)",
            )
        panel.axhline(free["loss_mean"], color="0.5", ls=":", label="non-private D-GD")
        panel.set_xscale("log")
        panel.set_yscale("log")
        epsilons = sorted({r["epsilon"] for r in rows if math.isfinite(r["epsilon"])})
        panel.set_xticks(epsilons, [f"{e:g}" for e in epsilons])
        panel.minorticks_off()
        panel.set_title(graph, fontsize=9)
        panel.set_xlabel(f"per-node ε (δ = {parameters['delta']:g}, user level)")
        panel.grid(True, alpha=0.3)
    axes[0].set_ylabel(
        f"training loss L(θ̄), mean of the last {100 * parameters['tail_fraction']:g} % of rounds\n"
        f"(mean and 95 % interval over {parameters['seeds']} seeds)"
    )
    axes[0].legend(fontsize=7)
    canvas.suptitle(
        f"D-SGD on {parameters['dataset']}, {parameters['nodes']} nodes × "
        f"{parameters['per_worker']} examples ({parameters['split']}), logistic regression; "
        f"C = {parameters['clip']:g} per node, γ = {parameters['lr']:g}, "
        f"T = {parameters['steps']}, Metropolis–Hastings gossip",
        fontsize=9,
    )


register(
    Figure(
        name="decor-privacy-utility",
        theorem="Allouah et al., ICML 2024 (arXiv:2405.01031): DECOR's correlated noise reaches "
        "central-DP utility on any connected graph under SecLDP",
        description="final training loss vs per-node ε of D-SGD with local DP, DECOR (noise "
        "calibrated by the SecLDP accountant) and central DP on ring, torus and complete "
        "graphs of 16 nodes",
        compute=_compute,
        plot=_plot,
        size=(12.0, 4.4),
        single_thread=True,
    )
)

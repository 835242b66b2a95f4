"""Figure ``trilemma-tracing``: the tracing attack's ROC against the (ε, δ)-DP limit.

The tracing statistic ⟨F − p, x − p⟩ (Bun, Ullman, Vadhan, STOC 2014; Dwork, Smith, Steinke,
Ullman, Vadhan, FOCS 2015; :func:`trilemma.estimators.tracing_attack`) tests "record x is in the
data set" on one-way-marginal data with d ≫ N² (N = h·m records). This is the regime where the
one-way-marginal lower bound (Steinke & Ullman 2016, :func:`trilemma.bounds.
central_marginal_lower_bound`) equals C²: no (ε, δ)-DP estimator with ε = O(1) beats answering 0.
The only estimator below it, the non-private mean (error 0), is traced.

DP limit [V, Kairouz, Oh, Viswanath, ICML 2015, Thm. 2.1 (hypothesis-testing region)]: for any
test of "x in D" against "x replaced by a fresh record" from an (ε, δ)-DP output,
FPR + e^ε·FNR ≥ 1 − δ and e^ε·FPR + FNR ≥ 1 − δ, i.e.
TPR ≤ min(e^ε·FPR + δ, 1 − e^(−ε)·(1 − δ − FPR)). A member's score and a fresh record's score
are the two hypotheses of replace-one DP (the fresh record is exchangeable with the member it
would replace) [D], so every private estimator's true ROC lies under this curve, drawn for each ε.

The check allows for sampling error: at each of :data:`THRESHOLDS` thresholds the pooled member
and fresh-record rates are turned into Clopper–Pearson bounds (lower for TPR, upper for FPR) with
the number of *trials* T as sample size, Bonferroni-corrected over thresholds, both bounds and
series. The pooled rate is the mean over trials of per-trial fractions in [0, 1], independent
and identically distributed across trials (records of one trial share F, so they are not
independent); a sum of T such variables is dominated in convex order by a Binomial(T, p)
(Hoeffding, J. ASA 1963, Thm. 3 [R]), so the binomial's tail bounds carry over and the
Clopper–Pearson interval at T is the allowance [D, approximate: exact for the binomial only].
Power: at 2000 trials a central ε = 1 estimator with its noise std divided by 10 leaves the
region; at 100 trials (size ``"tiny"``) a division by 30 does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure as MatplotlibFigure
from scipy import stats

from trilemma.bounds import central_marginal_lower_bound
from trilemma.estimators import DistributedMeanEstimation, TracingResult, tracing_attack
from trilemma.estimators.protocols import Privacy
from trilemma.reproduce._figure import Figure, FigureData, Settings, register

__all__ = ["dp_roc_limit", "roc_violation"]

_GRID = np.linspace(0.0, 1.0, 101)
#: Thresholds of the region check: the fresh-record score quantiles at these FPRs.
THRESHOLDS = np.geomspace(0.002, 0.5, 24)
#: Family-wise error level of the region check.
ALPHA = 0.05
#: Workers, records per worker (N = 20 records), dimension (d ≫ N²), δ.
N, M, D, DELTA = 4, 5, 2000, 1e-5
#: Required advantage max(TPR − FPR) of the tracing attack on the non-private mean.
TRACED = 0.9


def dp_roc_limit(fpr: np.ndarray | float, *, epsilon: float, delta: float) -> np.ndarray:
    """Largest TPR an (ε, δ)-DP output allows at ``fpr`` (Kairouz et al. 2015, Thm. 2.1):
    min(e^ε·FPR + δ, 1 − e^(−ε)·(1 − δ − FPR)), clipped to [0, 1].

    Examples
    --------
    >>> dp_roc_limit(np.array([0.0, 0.1, 1.0]), epsilon=1.0, delta=0.0).round(4).tolist()
    [0.0, 0.2718, 1.0]
    """
    x = np.asarray(fpr, dtype=np.float64)
    if epsilon <= 0 or not 0 <= delta < 1:
        raise ValueError(f"need epsilon > 0 and delta in [0, 1), got {epsilon}, {delta}")
    upper = np.minimum(np.exp(epsilon) * x + delta, 1.0 - np.exp(-epsilon) * (1.0 - delta - x))
    return np.clip(upper, 0.0, 1.0)


def roc_violation(
    result: TracingResult,
    *,
    trials: int,
    epsilon: float,
    delta: float,
    alpha: float,
) -> float:
    """Largest lower confidence bound on TPR minus the DP limit at the upper bound on FPR,
    over :data:`THRESHOLDS` (> 0: the measured ROC leaves the (ε, δ) region).

    Clopper–Pearson bounds at level ``alpha`` / (2 × number of thresholds), sample size
    ``trials`` (see the module docstring).
    """
    level = alpha / (2 * THRESHOLDS.size)
    outsiders = np.sort(result.non_member_scores)
    cuts = np.quantile(outsiders, 1.0 - THRESHOLDS)
    tpr = (result.member_scores[None, :] >= cuts[:, None]).mean(axis=1)
    fpr = (result.non_member_scores[None, :] >= cuts[:, None]).mean(axis=1)
    tpr_low = stats.beta.ppf(level, tpr * trials, (1 - tpr) * trials + 1)
    tpr_low = np.where(tpr > 0, tpr_low, 0.0)
    fpr_high = stats.beta.ppf(1 - level, fpr * trials + 1, (1 - fpr) * trials)
    fpr_high = np.where(fpr < 1, fpr_high, 1.0)
    return float(np.max(tpr_low - dp_roc_limit(fpr_high, epsilon=epsilon, delta=delta)))


def _series(settings: Settings) -> list[tuple[Privacy, float]]:
    """(privacy model, ε) of the attacked estimators; ε is ignored without privacy."""
    epsilons = settings.pick(
        tiny=(1.0, 4.0), quick=(1.0, 4.0, 16.0), full=(0.5, 1.0, 2.0, 4.0, 8.0)
    )
    return [
        ("none", 1.0),
        *[("central", eps) for eps in epsilons],
        *[("distributed", eps) for eps in epsilons],
    ]


def _series_rows(
    privacy: Privacy, eps: float, result: TracingResult, *, d: int, trials: int, private: int
) -> list[dict[str, Any]]:
    """The rows of one attacked estimator: its ROC on :data:`_GRID` next to its DP limit, the
    region violation (family-wise level shared by the ``private`` series) and the lower bound
    on its error (nan, none and 0 for the non-private mean)."""
    if privacy == "none":
        label, limit, violation = "non-private mean", np.ones_like(_GRID), float("nan")
        bound = 0.0
    else:
        label = f"{privacy} ε = {eps:g}"
        limit = dp_roc_limit(_GRID, epsilon=eps, delta=DELTA)
        violation = roc_violation(
            result, trials=trials, epsilon=eps, delta=DELTA, alpha=ALPHA / private
        )
        bound = float(central_marginal_lower_bound(d=d, n_records=N * M, epsilon=eps, delta=DELTA))
    tpr = np.interp(_GRID, result.fpr, result.tpr)
    return [
        {
            "series": label,
            "privacy": privacy,
            "epsilon": eps if privacy != "none" else float("inf"),
            "fpr": float(x),
            "tpr": float(y),
            "dp_limit_tpr": float(z),
            "violation": violation,
            "auc": result.auc,
            "advantage": result.advantage,
            "error": result.error,
            "lower_bound": bound,
            "trials": trials,
        }
        for x, y, z in zip(_GRID, tpr, limit, strict=True)
    ]


def _compute(settings: Settings) -> FigureData:
    d = D
    trials = settings.pick(tiny=100, quick=300, full=2000)
    series = _series(settings)
    private = sum(privacy != "none" for privacy, _ in series)
    rows: list[dict[str, Any]] = []
    for index, (privacy, eps) in enumerate(series):
        protocol = DistributedMeanEstimation(
            n=N, epsilon=eps, delta=DELTA, rule="mean", privacy=privacy
        )
        generator = torch.Generator().manual_seed(settings.seed + index)
        result = tracing_attack(protocol, d=d, m=M, trials=trials, generator=generator)
        rows += _series_rows(privacy, eps, result, d=d, trials=trials, private=private)
    return FigureData(
        rows=rows,
        parameters={
            "n": N,
            "m": M,
            "records": N * M,
            "d": d,
            "delta": DELTA,
            "trials": trials,
            "alpha": ALPHA,
            "thresholds_fpr": THRESHOLDS.tolist(),
            "advantage": _per_series(rows, "advantage"),
            "violation": _per_series(rows, "violation"),
        },
        checks={
            f"non-private mean is traced (advantage > {TRACED:g})": traced(rows),
            "every private estimator's ROC stays inside its (ε, δ) region (Clopper–Pearson at "
            f"the number of trials, family-wise level {ALPHA:g})": inside_region(rows),
        },
    )


def _per_series(rows: Sequence[Mapping[str, Any]], column: str) -> dict[str, float]:
    return {r["series"]: r[column] for r in rows}


def traced(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the non-private mean's tracing advantage exceeds :data:`TRACED`."""
    return all(r["advantage"] > TRACED for r in rows if r["privacy"] == "none")


def inside_region(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether no private series' ROC leaves its region beyond the allowance."""
    return all(r["violation"] <= 0 for r in rows if r["privacy"] != "none")


def _plot(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows = data.rows
    p = data.parameters
    axes_list = canvas.subplots(1, 2, sharey=True)
    epsilons = sorted({r["epsilon"] for r in rows if r["privacy"] != "none"})
    colors = {eps: f"C{k}" for k, eps in enumerate(epsilons)}
    for axes, privacy in zip(axes_list, ("central", "distributed"), strict=True):
        for label in dict.fromkeys(r["series"] for r in rows):
            mine = [r for r in rows if r["series"] == label]
            first = mine[0]
            if first["privacy"] not in ("none", privacy):
                continue
            fpr = [r["fpr"] for r in mine]
            color = "k" if first["privacy"] == "none" else colors[first["epsilon"]]
            axes.plot(
                fpr,
                [r["tpr"] for r in mine],
                color=color,
                lw=1.6,
                label=f"{label}: adv {first['advantage']:.2f}, error {first['error']:.3g}",
            )
            if first["privacy"] != "none":
                axes.plot(fpr, [r["dp_limit_tpr"] for r in mine], color=color, lw=0.9, ls=":")
        axes.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--")
        axes.set_xlim(-0.01, 1.01)
        axes.set_ylim(-0.01, 1.01)
        axes.set_xlabel("false-positive rate (fresh records flagged)")
        axes.legend(fontsize=6.5, loc="lower right")
        axes.set_title(
            f"{privacy} DP (dotted: TPR ≤ min(e^ε FPR + δ, 1 − e^−ε (1 − δ − FPR)))", fontsize=8.5
        )
    axes_list[0].set_ylabel("true-positive rate (members flagged)")
    canvas.suptitle(
        f"Tracing ⟨F − p, x − p⟩ on one-way marginals: d = {p['d']}, N = {p['records']} records "
        f"({p['n']} workers × {p['m']}), δ = {p['delta']:g}, {p['trials']} trials; "
        "lower bound = C² = 1 for every ε here",
        fontsize=9.5,
    )


register(
    Figure(
        name="trilemma-tracing",
        theorem="Fingerprinting/tracing (Bun, Ullman, Vadhan 2014; Dwork et al. 2015) and the "
        "(ε, δ)-DP hypothesis-testing region (Kairouz, Oh, Viswanath 2015)",
        description="ROC of the tracing statistic for the non-private mean (traced) and central "
        "and distributed Gaussian estimators at several ε, each with its DP limit "
        "TPR ≤ min(e^ε FPR + δ, 1 − e^−ε(1 − δ − FPR)); advantage and measured error",
        compute=_compute,
        plot=_plot,
        size=(11.0, 4.8),
        single_thread=True,
    )
)

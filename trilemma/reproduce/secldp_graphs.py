"""Privacy of correlated-noise decentralized learning (SecLDP / DECOR) on graphs: the worst
node's ε against the edge noise σ_cor, its closed forms and bounds, three conversions to
(ε, δ), colluders, and empirical audits.

Mechanism (Allouah, Koloskova, El Firdoussi, Jaggi, Guerraoui, ICML 2024, arXiv:2405.01031,
Alg. 1): per coordinate the honest nodes' noise is N(0, Σ_H), Σ_H = σ² I + σ_cor² L_H, and a
user-level round of node i is a Gaussian mechanism of sensitivity 2C√((Σ_H⁻¹)_ii) [D, THEORY
§6]. Panels:

(a) worst-node ε (the reference's classic conversion ε = ρ + 2√(ρ ln(1/δ)), ρ = 2TC²(Σ_H⁻¹)_ii)
    on ring, torus and complete graphs of 16 nodes, and on the ring with colluders {0, 8} (two
    honest paths of 7 nodes) and {0, 2} (node 1 isolated), between the local-DP limit
    (σ_cor = 0) and the central limit of the smallest honest component (σ_cor → ∞);
(b) the closed forms against the exact diagonal: the K_n formula
    1/(nσ²) + ((n − 1)/n)/(σ² + nσ_cor²) (:func:`trilemma.bounds.complete_graph_inverse_variance`)
    and the spectral and effective-resistance upper bounds of
    :func:`trilemma.accountants.secldp_report` [D];
(c) the classic, RDP and PLD conversions of the same rounds on the ring;
(d) one round at σ = 2: the PLD ε of the worst honest node against the empirical lower bound of
    :func:`trilemma.proofs_checks.audit_secldp_round`, which draws the full correlated noise
    (Jagielski, Ullman, Oprea, NeurIPS 2020, arXiv:2006.07709).
"""

from __future__ import annotations

import itertools
from typing import Any, Final, TypedDict

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma.accountants import as_topology, secldp_epsilon, secldp_report
from trilemma.bounds import complete_graph_inverse_variance, zcdp_to_dp_epsilon
from trilemma.proofs_checks import audit_secldp_round
from trilemma.proofs_checks.audit import SOUNDNESS_TOLERANCE
from trilemma.reproduce._figure import Figure, FigureData, Settings, register

__all__ = ["AUDIT_SOUND", "BOUNDS_HOLD", "CONVERSIONS", "DECREASING", "K_N", "LIMITS", "checks"]


class _Setting(TypedDict):
    sigma: float
    clip: float
    steps: int
    delta: float


_SETTING: Final[_Setting] = {"sigma": 17.827, "clip": 1.0, "steps": 3500, "delta": 1e-5}
_NODES = 16
# (graph, colluders); colluders {0, 8} cut the ring into two paths of 7, {0, 2} isolate node 1
_CASES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("ring:16", ()),
    ("torus:4x4", ()),
    ("complete:16", ()),
    ("ring:16", (0, 8)),
    ("ring:16", (0, 2)),
)
_CONVERTED = "ring:16"
# σ_cor of the reference code's ring-16 example (elfirdoussilab1/DECOR), always on the grid
_REFERENCE_SIGMA_COR = 188.0
_AUDIT_SIGMA = 2.0
_AUDIT_COLLUDERS: tuple[tuple[int, ...], ...] = ((), (0, 8), (0, 2))
_RTOL = 1e-9

LIMITS = "ε lies between the central limit of the smallest honest component and local DP"
DECREASING = "ε decreases as σ_cor grows"
K_N = "the K_n formula equals the accountant's exact (Σ⁻¹)_ii on complete:16"
BOUNDS_HOLD = "exact (Σ_H⁻¹)_ii ≤ spectral and ≤ resistance bound on every graph"
CONVERSIONS = "PLD ≤ RDP ≤ classic conversion at every σ_cor"
AUDIT_SOUND = "audit lower bound ≤ PLD ε at every audited setting, colluders included"


def _case(graph: str, colluders: tuple[int, ...]) -> str:
    """Series name of a (graph, colluders) case."""
    if not colluders:
        return graph
    return f"{graph}, colluders {{{', '.join(map(str, colluders))}}}"


def _classic(rho: float) -> float:
    return float(zcdp_to_dp_epsilon(rho=rho, delta=_SETTING["delta"]))


def _smallest_honest_component(graph: str, colluders: tuple[int, ...]) -> int:
    """Nodes of the smallest component of the graph left by the colluders, read from the graph
    itself (not from the accountant under check): its central rate bounds ε from below."""
    topology = as_topology(graph)
    honest = np.setdiff1d(np.arange(topology.n_nodes), topology.indices(colluders))
    return min(len(nodes) for nodes in topology.induced(honest).components())


def _accounting_rows(grid: np.ndarray) -> list[dict[str, Any]]:
    """One row per (case, σ_cor) of the T-round accounting (panels a–c)."""
    sigma, clip, steps = _SETTING["sigma"], _SETTING["clip"], _SETTING["steps"]
    rho_local = 2.0 * steps * clip**2 / sigma**2
    rows = []
    for (graph, colluders), sigma_cor in itertools.product(_CASES, grid):
        report = secldp_report(
            graph, sigma_cor=float(sigma_cor), colluders=colluders, method="classic", **_SETTING
        )
        # the component holding the worst node carries its exact value and bounds
        part = max(report.components, key=lambda c: c.exact_max)
        smallest = _smallest_honest_component(graph, colluders)
        row = {
            "kind": "accounting",
            "case": _case(graph, colluders),
            "graph": graph,
            "colluders": " ".join(map(str, colluders)),
            "sigma_cor": float(sigma_cor),
            "epsilon": report.worst_epsilon,
            "inverse_variance": float(np.nanmax(report.inverse_variance)),
            "spectral_bound": part.spectral_bound,
            "resistance_bound": part.resistance_bound_max,
            "bounds_hold": all(
                c.exact_max <= min(c.spectral_bound, c.resistance_bound_max) * (1 + _RTOL)
                for c in report.components
            ),
            "local_limit": _classic(rho_local),
            "central_limit": _classic(rho_local / smallest),
            "smallest_component": smallest,
        }
        if graph.startswith("complete:") and not colluders:
            row["k_n_formula"] = float(
                complete_graph_inverse_variance(n=_NODES, sigma=sigma, sigma_cor=sigma_cor)
            )
        if graph == _CONVERTED and not colluders:
            for method in ("rdp", "pld"):
                row[f"epsilon_{method}"] = secldp_epsilon(
                    graph, sigma_cor=float(sigma_cor), method=method, **_SETTING
                )
        rows.append(row)
    return rows


def _claim(
    topology: object,
    *,
    sigma: float,
    sigma_cor: float,
    clip: float,
    delta: float,
    colluders: tuple[int, ...],
    node: object,
) -> float:
    """The claim under audit: PLD ε of the worst honest node after one round (the audit picks
    that node)."""
    del node  # the audit's node is the worst honest one
    return secldp_epsilon(
        topology,
        sigma=sigma,
        sigma_cor=sigma_cor,
        clip=clip,
        steps=1,
        delta=delta,
        colluders=colluders,
        method="pld",
    )


def _audit_rows(settings: Settings) -> list[dict[str, Any]]:
    """One-round curves (PLD) and audits at σ = 2 (panel d)."""
    curve = np.concatenate([[0.0], np.logspace(-1, 2, settings.pick(tiny=3, quick=7, full=13))])
    audited = settings.pick(tiny=(10.0,), quick=(0.5, 2.0, 10.0), full=(0.25, 1.0, 3.0, 10.0, 30.0))
    trials = settings.pick(tiny=20_000, quick=100_000, full=300_000)
    rows: list[dict[str, Any]] = []
    delta = _SETTING["delta"]
    for colluders in _AUDIT_COLLUDERS:
        for sigma_cor in curve:
            rows.append(
                {
                    "kind": "one_round",
                    "case": _case(_CONVERTED, colluders),
                    "sigma_cor": float(sigma_cor),
                    "epsilon_pld": _claim(
                        _CONVERTED,
                        sigma=_AUDIT_SIGMA,
                        sigma_cor=float(sigma_cor),
                        clip=1.0,
                        delta=delta,
                        colluders=colluders,
                        node=None,
                    ),
                }
            )
    for index, (colluders, sigma_cor) in enumerate(itertools.product(_AUDIT_COLLUDERS, audited)):
        result = audit_secldp_round(
            _CONVERTED,
            sigma=_AUDIT_SIGMA,
            sigma_cor=sigma_cor,
            delta=delta,
            trials=trials,
            seed=settings.seed + index,
            colluders=colluders,
            accountant=_claim,
        )
        rows.append(
            {
                "kind": "audit",
                "case": _case(_CONVERTED, colluders),
                "sigma_cor": sigma_cor,
                "node": result.parameters["node"],
                "epsilon_pld": result.epsilon_claimed,
                "epsilon_lower": result.bound.epsilon_lower,
                "tightness": result.tightness,
                "trials": trials,
                "confidence": result.bound.confidence,
            }
        )
    return rows


def checks(rows: list[dict[str, Any]]) -> dict[str, bool]:
    """The figure's checks, from its rows."""
    accounting = [r for r in rows if r["kind"] == "accounting"]
    audits = [r for r in rows if r["kind"] == "audit"]
    inside = all(
        r["central_limit"] * (1 - _RTOL) <= r["epsilon"] <= r["local_limit"] * (1 + _RTOL)
        for r in accounting
    )
    decreasing = True
    for case in dict.fromkeys(r["case"] for r in accounting):
        series = sorted((r["sigma_cor"], r["epsilon"]) for r in accounting if r["case"] == case)
        decreasing &= bool(np.all(np.diff([e for _, e in series]) <= 1e-9))
    complete = [r for r in accounting if "k_n_formula" in r]
    k_n = bool(complete) and all(
        abs(r["k_n_formula"] - r["inverse_variance"]) <= _RTOL * r["inverse_variance"]
        for r in complete
    )
    bounds_hold = all(
        r["bounds_hold"]
        and r["inverse_variance"] <= min(r["spectral_bound"], r["resistance_bound"]) * (1 + _RTOL)
        for r in accounting
    )
    converted = [r for r in accounting if "epsilon_pld" in r]
    conversions = bool(converted) and all(
        r["epsilon_pld"] <= r["epsilon_rdp"] * (1 + _RTOL)
        and r["epsilon_rdp"] <= r["epsilon"] * (1 + _RTOL)
        for r in converted
    )
    sound = bool(audits) and all(
        r["epsilon_lower"] <= r["epsilon_pld"] + SOUNDNESS_TOLERANCE for r in audits
    )
    return {
        LIMITS: inside,
        DECREASING: decreasing,
        K_N: k_n,
        BOUNDS_HOLD: bounds_hold,
        CONVERSIONS: conversions,
        AUDIT_SOUND: sound,
    }


def _compute(settings: Settings) -> FigureData:
    grid = np.concatenate([[0.0], np.logspace(0, 4, settings.pick(tiny=3, quick=7, full=17))])
    grid = np.sort(np.append(grid, _REFERENCE_SIGMA_COR))
    rows = _accounting_rows(grid) + _audit_rows(settings)
    return FigureData(
        rows=rows,
        parameters={
            **_SETTING,
            "nodes": _NODES,
            "cases": [_case(g, c) for g, c in _CASES],
            "converted_graph": _CONVERTED,
            "audit_sigma": _AUDIT_SIGMA,
            "audit_steps": 1,
        },
        checks=checks(rows),
    )


def _series(rows: list[dict[str, Any]], kind: str, case: str) -> list[dict[str, Any]]:
    return sorted(
        (r for r in rows if r["kind"] == kind and r["case"] == case), key=lambda r: r["sigma_cor"]
    )


def _plot_epsilons(axes: Axes, data: FigureData, positive: list[dict[str, Any]]) -> None:
    """Panel a: the worst-node ε of every case against σ_cor, between the local-DP limit and
    the central limit of each smallest honest component."""
    p = data.parameters
    for index, case in enumerate(p["cases"]):
        mine = _series(positive, "accounting", case)
        axes.plot(
            [r["sigma_cor"] for r in mine],
            [r["epsilon"] for r in mine],
            color=f"C{index}",
            label=case,
        )
    first = positive[0]
    axes.axhline(first["local_limit"], color="0.3", ls="--", lw=1, label="local DP (σ_cor = 0)")
    for size in sorted({r["smallest_component"] for r in positive if r["smallest_component"] > 1}):
        limit = next(r["central_limit"] for r in positive if r["smallest_component"] == size)
        axes.axhline(limit, color="0.5", ls=":", lw=1, label=f"central limit, {size} nodes")
    axes.set_ylabel(f"worst-node ε at δ = {p['delta']:g} (classic)")
    axes.set_title(
        f"{p['nodes']} nodes, σ = {p['sigma']:g}, C = {p['clip']:g}, T = {p['steps']}", fontsize=8
    )
    axes.legend(fontsize=5.5)


def _plot_bounds(axes: Axes, data: FigureData, positive: list[dict[str, Any]]) -> None:
    """Panel b: the spectral and resistance bounds and the K_n formula over the exact
    (Σ_H⁻¹)_ii."""
    for index, case in enumerate(data.parameters["cases"]):
        mine = _series(positive, "accounting", case)
        ratio_s = [r["spectral_bound"] / r["inverse_variance"] for r in mine]
        ratio_r = [r["resistance_bound"] / r["inverse_variance"] for r in mine]
        sigma_cor = [r["sigma_cor"] for r in mine]
        axes.plot(sigma_cor, ratio_s, color=f"C{index}", ls="-")
        axes.plot(sigma_cor, ratio_r, color=f"C{index}", ls=":")
        if any("k_n_formula" in r for r in mine):
            axes.plot(
                sigma_cor,
                [r["k_n_formula"] / r["inverse_variance"] for r in mine],
                color=f"C{index}",
                ls="none",
                marker="x",
                label="K_n formula / exact",
            )
    axes.plot([], [], color="k", ls="-", label="spectral bound / exact")
    axes.plot([], [], color="k", ls=":", label="resistance bound / exact")
    axes.axhline(1.0, color="k", lw=0.8)
    axes.set_ylim(0.9, 10.0)
    axes.set_ylabel("bound / exact max (Σ_H⁻¹)_ii")
    axes.set_title("closed forms against the exact diagonal", fontsize=8)
    axes.legend(fontsize=6)
    axes.set_yscale("log")


def _plot_conversions(axes: Axes, data: FigureData, positive: list[dict[str, Any]]) -> None:
    """Panel c: the classic, RDP and PLD conversions of the same rounds on one graph."""
    converted_graph = data.parameters["converted_graph"]
    converted = _series(positive, "accounting", converted_graph)
    for key, label, style in (
        ("epsilon", "classic (reference code)", "-"),
        ("epsilon_rdp", "RDP (dp-accounting)", "--"),
        ("epsilon_pld", "PLD (dp-accounting)", ":"),
    ):
        axes.plot(
            [r["sigma_cor"] for r in converted], [r[key] for r in converted], ls=style, label=label
        )
    axes.set_ylabel("worst-node ε")
    axes.set_title(f"{converted_graph}: conversions of the same rounds", fontsize=8)
    axes.legend(fontsize=6)


def _plot_audits(axes: Axes, data: FigureData) -> None:
    """Panel d: the one-round PLD ε of each audited case and the audits' lower bounds."""
    rows, p = data.rows, data.parameters
    for index, case in enumerate(dict.fromkeys(r["case"] for r in rows if r["kind"] == "audit")):
        color = f"C{p['cases'].index(case)}"
        curve = [r for r in _series(rows, "one_round", case) if r["sigma_cor"] > 0]
        axes.plot(
            [r["sigma_cor"] for r in curve],
            [r["epsilon_pld"] for r in curve],
            color=color,
            label=f"{case}: PLD",
        )
        audits = [r for r in _series(rows, "audit", case) if r["epsilon_lower"] > 0]
        axes.scatter(
            [r["sigma_cor"] for r in audits],
            [r["epsilon_lower"] for r in audits],
            marker="v",
            color=color,
            edgecolors="k",
            zorder=3 + index,
            label=f"{case}: audit ε_lower",
        )
    axes.set_ylabel("ε of one round")
    axes.set_title(f"one round, σ = {p['audit_sigma']:g}: accountant vs audit", fontsize=8)
    axes.legend(fontsize=5.5)


def _plot(data: FigureData, canvas: MatplotlibFigure) -> None:
    (eps_axes, bound_axes), (conv_axes, audit_axes) = canvas.subplots(2, 2)
    positive = [r for r in data.rows if r["kind"] == "accounting" and r["sigma_cor"] > 0]
    _plot_epsilons(eps_axes, data, positive)
    _plot_bounds(bound_axes, data, positive)
    _plot_conversions(conv_axes, data, positive)
    _plot_audits(audit_axes, data)
    for axes in (eps_axes, bound_axes, conv_axes, audit_axes):
        axes.set_xscale("log")
        axes.set_xlabel("edge-secret noise σ_cor")
        axes.grid(True, which="both", alpha=0.3)


register(
    Figure(
        name="secldp-graphs",
        theorem="Allouah et al., ICML 2024 (arXiv:2405.01031): privacy of correlated noise "
        "(DECOR), (Σ_H⁻¹)_ii with Σ_H = σ²I + σ_cor²L_H; audits after Jagielski et al., "
        "NeurIPS 2020",
        description="worst-node ε of SecLDP vs σ_cor on ring, torus and complete graphs and "
        "the ring with colluders; K_n formula, spectral and resistance bounds against the "
        "exact (Σ_H⁻¹)_ii; classic, RDP and PLD conversions; one-round audits",
        compute=_compute,
        plot=_plot,
        size=(10.0, 8.0),
        single_thread=True,
    )
)

"""Privacy accounting figures: DP-SGD's ε against the number of steps (RDP and PLD), and the
privacy of correlated-noise decentralized learning (SecLDP) against the edge noise σ_cor on
three graphs, between its local-DP and central-DP limits."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma import accountants
from trilemma.bounds import zcdp_to_dp_epsilon
from trilemma.reproduce._figure import Figure, FigureData, Settings, register

__all__: list[str] = []

_DPSGD = {"noise_multiplier": 1.1, "sample_rate": 0.01, "delta": 1e-5}


def _dpsgd(settings: Settings) -> FigureData:
    count = settings.pick(tiny=4, quick=9, full=25)
    steps = np.unique(np.logspace(1, 4, count).round().astype(int))
    rows = [
        {
            "method": method,
            "steps": int(t),
            "epsilon": accountants.dpsgd_epsilon(steps=int(t), method=method, **_DPSGD),
        }
        for method in ("rdp", "pld")
        for t in steps
    ]
    rdp = {r["steps"]: r["epsilon"] for r in rows if r["method"] == "rdp"}
    pld = {r["steps"]: r["epsilon"] for r in rows if r["method"] == "pld"}
    return FigureData(
        rows=rows,
        parameters={**_DPSGD, "steps": [int(t) for t in steps]},
        checks={
            "PLD is never looser than RDP": all(pld[t] <= rdp[t] * (1 + 1e-9) for t in rdp),
            "ε grows with the number of steps": all(np.diff([rdp[t] for t in sorted(rdp)]) >= 0),
        },
    )


def _plot_dpsgd(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows = data.rows
    axes = canvas.subplots()
    for method, label in (("rdp", "RDP (dp-accounting)"), ("pld", "PLD (dp-accounting)")):
        mine = [r for r in rows if r["method"] == method]
        axes.plot(
            [r["steps"] for r in mine], [r["epsilon"] for r in mine], marker="o", ms=3, label=label
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("steps T")
    axes.set_ylabel("ε at δ = 1e-5")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title("DP-SGD, Poisson q = 0.01, σ = 1.1", fontsize=9)


register(
    Figure(
        name="accountants-dpsgd",
        theorem="Abadi et al., CCS 2016 (DP-SGD); RDP (Mironov 2017) and PLD (Koskela et al. "
        "2020) accounting via dp-accounting",
        description="ε of DP-SGD vs the number of steps with the RDP and PLD accountants",
        compute=_dpsgd,
        plot=_plot_dpsgd,
    )
)

_SECLDP = {"sigma": 17.827, "clip": 1.0, "steps": 3500, "delta": 1e-5}
_GRAPHS = ("ring:16", "torus:4x4", "complete:16")


def _secldp(settings: Settings) -> FigureData:
    grid = np.logspace(0, 4, settings.pick(tiny=3, quick=9, full=21))
    rows: list[dict[str, Any]] = []
    for graph in _GRAPHS:
        for sigma_cor in (0.0, *grid):
            rows.append(
                {
                    "graph": graph,
                    "sigma_cor": float(sigma_cor),
                    "epsilon": accountants.secldp_epsilon(
                        graph, sigma_cor=float(sigma_cor), method="classic", **_SECLDP
                    ),
                }
            )
    # limits with the same classic conversion: local DP (σ_cor = 0, (Σ⁻¹)_ii = 1/σ²) and the
    # central rate of n = 16 nodes ((Σ⁻¹)_ii → 1/(nσ²) as σ_cor → ∞)
    rho = 2 * _SECLDP["steps"] * _SECLDP["clip"] ** 2 / _SECLDP["sigma"] ** 2
    local = float(zcdp_to_dp_epsilon(rho=rho, delta=_SECLDP["delta"]))
    central = float(zcdp_to_dp_epsilon(rho=rho / 16, delta=_SECLDP["delta"]))
    for row in rows:
        row["local_limit"], row["central_limit"] = local, central
    inside = all(central * (1 - 1e-9) <= r["epsilon"] <= local * (1 + 1e-9) for r in rows)
    decreasing = all(
        np.all(np.diff([r["epsilon"] for r in rows if r["graph"] == g]) <= 1e-9) for g in _GRAPHS
    )
    return FigureData(
        rows=rows,
        parameters={**_SECLDP, "graphs": list(_GRAPHS), "conversion": "classic (zCDP)"},
        checks={
            "ε lies between the central and the local-DP limits": inside,
            "ε decreases as σ_cor grows": decreasing,
        },
    )


def _plot_secldp(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows = data.rows
    axes = canvas.subplots()
    for graph in dict.fromkeys(r["graph"] for r in rows):
        mine = [r for r in rows if r["graph"] == graph and r["sigma_cor"] > 0]
        axes.plot(
            [r["sigma_cor"] for r in mine],
            [r["epsilon"] for r in mine],
            marker="o",
            ms=3,
            label=graph,
        )
    axes.axhline(rows[0]["local_limit"], color="0.3", ls="--", lw=1, label="local DP (σ_cor = 0)")
    axes.axhline(
        rows[0]["central_limit"],
        color="0.3",
        ls=":",
        lw=1,
        label="central DP, 16 nodes (σ_cor → ∞)",
    )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("edge-secret noise σ_cor")
    axes.set_ylabel("worst-node ε at δ = 1e-5")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title("SecLDP, 16 nodes, σ = 17.827, T = 3500 (classic conversion)", fontsize=9)


register(
    Figure(
        name="secldp-graphs",
        theorem="Allouah et al., ICML 2024 (arXiv:2405.01031): privacy of correlated noise "
        "(DECOR), (Σ⁻¹)_ii with Σ = σ²I + σ_cor²L",
        description="worst-node ε of SecLDP vs σ_cor on ring, torus and complete graphs of 16 "
        "nodes, between the local-DP and central-DP limits",
        compute=_secldp,
        plot=_plot_secldp,
    )
)

"""The batch size DP + Byzantine-resilient SGD needs, vs the dimension (Guerraoui et al.,
PODC 2021, arXiv:2102.08166), from :func:`trilemma.bounds.vn_required_batch_size`."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure as MatplotlibFigure

from trilemma.bounds import vn_required_batch_size
from trilemma.reproduce._figure import Figure, FigureData, Settings, register

__all__: list[str] = []

_SETTING = {"n": 11, "f": 2, "delta": 1e-6, "clip": 1.0, "gradient_norm": 1.0}
_RULES = ("mda", "median", "krum")
_LABELS = {"mda": "MDA", "median": "Median", "krum": "Krum"}


def _batch(settings: Settings) -> FigureData:
    dims = np.unique(
        np.logspace(0, 6, settings.pick(tiny=7, quick=25, full=61)).round().astype(int)
    )
    rows = [
        {
            "rule": rule,
            "epsilon": eps,
            "d": int(d),
            "batch_size": float(
                vn_required_batch_size(rule=rule, d=int(d), epsilon=eps, **_SETTING)
            ),
        }
        for rule in _RULES
        for eps in (0.1, 0.5)
        for d in dims
    ]
    slopes = {}
    for rule in _RULES:
        mine = [r for r in rows if r["rule"] == rule and r["epsilon"] == 0.1]
        slopes[rule] = float(
            np.polyfit(np.log([r["d"] for r in mine]), np.log([r["batch_size"] for r in mine]), 1)[
                0
            ]
        )
    return FigureData(
        rows=rows,
        parameters={
            **_SETTING,
            "rules": list(_RULES),
            "epsilon": [0.1, 0.5],
            "log_log_slope": slopes,
        },
        checks={
            "batch size grows like √d (log-log slope 0.5)": all(
                abs(s - 0.5) < 1e-9 for s in slopes.values()
            )
        },
    )


def _plot_batch(data: FigureData, canvas: MatplotlibFigure) -> None:
    rows = data.rows
    axes = canvas.subplots()
    for index, rule in enumerate(_RULES):
        for eps, style in ((0.1, "-"), (0.5, "--")):
            mine = [r for r in rows if r["rule"] == rule and r["epsilon"] == eps]
            axes.plot(
                [r["d"] for r in mine],
                [r["batch_size"] for r in mine],
                ls=style,
                color=f"C{index}",
                label=f"{_LABELS[rule]}, ε = {eps:g}",
            )
    axes.axvline(69, color="0.5", lw=0.8, ls=":", label="d = 69 (phishing, PODC'21)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("model dimension d")
    axes.set_ylabel("required batch size b (examples per worker step)")
    axes.legend(fontsize=7)
    axes.grid(True, which="both", alpha=0.3)
    axes.set_title(
        "VN-ratio condition: b ≥ 2C√(2d ln(1.25/δ))/(ε k_F ‖∇Q‖) "
        "(n = 11, f = 2, δ = 1e-6, ‖∇Q‖ = C)",
        fontsize=8,
    )


register(
    Figure(
        name="podc-batch-size",
        theorem="Guerraoui et al., PODC 2021 (arXiv:2102.08166): VN-ratio condition under DP",
        description="Batch size required by the VN-ratio condition vs d for MDA, Median and "
        "Krum at ε = 0.1 and 0.5 (closed form)",
        compute=_batch,
        plot=_plot_batch,
    )
)

"""Reference worst ratios κ̂ of the κ-table rules, found by a generic global optimiser.

What a sceptical reader would try without knowing any structure of the rules: scipy's
:func:`scipy.optimize.differential_evolution` over all n rows in d = 2 (box [−10, 10]), the
honest set fixed to the first n − f rows, followed by Nelder–Mead from the best point found;
the best of ``--restarts`` seeds is kept, re-evaluated with the exact rule (the search itself
solves the geometric median to 1e-10 relative, not 1e-13). The ratio maximised is
κ̂ = ‖F(x) − x̄_H‖² / ((1/|H|) Σ_H ‖x_i − x̄_H‖²)
(:func:`trilemma.aggregators.empirical_kappa`), or for ``smea-spectral`` κ̂_sp with λ_max(Σ_H)
in the denominator. The population is evaluated as one batch (the rules and
``empirical_kappa`` take ``(..., n, d)``).

These numbers are the "reference" column of the README κ table: ``trilemma check robustness``
(hypothesis structure + continuous refinement) must reach ≥ 90 % of them on the same (n, f).

Run (one thread; about 45 minutes for every case on a busy 2-core machine, SMEA and the geometric
median taking most of it; ``--rules krum`` alone takes a minute)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/reference_kappa_search.py --out ref.json

``--quick`` runs one restart of 30 generations at (n, f) = (7, 2) only, and without ``--rules``
skips the slow rules (SMEA and the geometric median, :data:`SLOW`): a run of a few minutes
whose κ̂ are lower bounds of the full search's. It prints a Markdown table at
the end and writes the JSON after every case. CPU only (``--device cuda`` is refused).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence

import _harness as harness
import numpy as np
import torch
from scipy.optimize import differential_evolution, minimize

from trilemma.aggregators import empirical_kappa, empirical_spectral_kappa
from trilemma.bounds import kappa, smea_spectral_kappa
from trilemma.proofs_checks.robustness import KAPPA_SEARCHES

#: label → the (n, f) it is searched at: n = 7, f = 2 and n = 9, f = 3 for every rule, and the
#: (n, f) of the README table where that differs.
CASES: dict[str, list[tuple[int, int]]] = {
    "cwtm": [(7, 2), (9, 3), (6, 1)],
    "cwmed": [(7, 2), (9, 3), (7, 1)],
    "gm": [(7, 2), (9, 3), (5, 1)],
    "krum": [(7, 2), (9, 3), (5, 1)],
    "krum-n-f-1": [(7, 2), (9, 3), (3, 1)],
    "mda": [(7, 2), (9, 3), (3, 1)],
    "smea": [(7, 2), (9, 3), (3, 1)],
    "smea-spectral": [(7, 2), (9, 3), (3, 1)],
    "nnm>>cwtm": [(7, 2), (9, 3), (7, 1)],
    "nnm>>cwmed": [(7, 2), (9, 3), (7, 1)],
}
SLOW = ("gm", "smea", "smea-spectral")
"""Rules whose search takes most of the run (left out by ``--quick`` unless named)."""


def ratio_function(
    label: str, n: int, f: int, d: int = 2, *, exact: bool = True
) -> tuple[Callable, float]:
    """(batched κ̂ of flattened inputs (S, n·d) → (S,), the claimed κ) with H = the first n − f
    rows; NaN counts as 0. ``exact=False`` takes the search's cheaper solve of the rule (the
    geometric median to 1e-10 instead of 1e-13), as the optimiser does before the final
    re-evaluation."""
    spectral = label == "smea-spectral"
    make, key, _, moving = KAPPA_SEARCHES["smea" if spectral else label]
    rule = (make if exact or moving is None else moving)(f=f)
    honest = torch.arange(n - f)
    measure = empirical_spectral_kappa if spectral else empirical_kappa
    claim = float(smea_spectral_kappa(n=n, f=f) if spectral else kappa(key, n=n, f=f))

    def ratios(flat: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(flat, dtype=np.float64).reshape(-1, n, d))
        values = measure(rule, x, honest).numpy()
        return np.nan_to_num(values, nan=0.0)

    return ratios, claim


def reference_search(
    label: str, n: int, f: int, *, seed: int = 0, restarts: int = 3, maxiter: int = 300
) -> dict:
    """Best κ̂ of ``restarts`` differential-evolution runs (d = 2, box [−10, 10]), polished
    by Nelder–Mead."""
    ratios, claim = ratio_function(label, n, f, exact=False)
    exact_ratios, _ = ratio_function(label, n, f)
    dimension = 2 * n
    best_value, best_point = -np.inf, None
    start = time.perf_counter()
    evaluations = 0
    for restart in range(restarts):
        result = differential_evolution(
            lambda flat: -ratios(flat.T),
            bounds=[(-10.0, 10.0)] * dimension,
            seed=seed + restart,
            maxiter=maxiter,
            popsize=15,
            tol=1e-10,
            polish=False,
            vectorized=True,
            updating="deferred",
        )
        evaluations += result.nfev
        polished = minimize(
            lambda flat: -float(ratios(flat[None])[0]),
            result.x,
            method="Nelder-Mead",
            options={"maxfev": 20_000, "xatol": 1e-12, "fatol": 1e-14, "adaptive": True},
        )
        evaluations += polished.nfev
        for point in (result.x, polished.x):
            value = float(exact_ratios(point[None])[0])
            if value > best_value:
                best_value, best_point = float(value), point
    return {
        "rule": label,
        "n": n,
        "f": f,
        "kappa": claim,
        "reference_kappa_hat": best_value,
        "reference_ratio": best_value / claim,
        "evaluations": evaluations,
        "seconds": time.perf_counter() - start,
        "x": np.asarray(best_point).reshape(n, 2).tolist(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Search every chosen case, print progress and the table, write the JSON; ``argv`` defaults to
    ``sys.argv[1:]``. Returns the exit status, 0.
    """
    parser = harness.make_parser(
        __doc__,
        repeats=None,
        quick="1 restart × 30 generations at (n, f) = (7, 2) only",
    )
    parser.add_argument("--out", default="reference_kappa.json")
    parser.add_argument(
        "--rules", nargs="*", choices=list(CASES), help="default: all (quick: all but SLOW)"
    )
    parser.add_argument("--restarts", type=int, help="seeds per case (default 3; quick 1)")
    parser.add_argument("--maxiter", type=int, help="generations (default 300; quick 30)")
    args = harness.parse(parser, argv)
    if args.device.type != "cpu":
        parser.error("--device: the search runs on the CPU only")
    restarts = args.restarts or (1 if args.quick else 3)
    maxiter = args.maxiter or (30 if args.quick else 300)
    if restarts < 1 or maxiter < 1:
        parser.error("--restarts and --maxiter must be at least 1")
    rules = args.rules or [r for r in CASES if not (args.quick and r in SLOW)]
    torch.set_num_threads(1)
    start = harness.print_header(
        "Reference κ̂ by a generic global optimiser", packages=("scipy", "torch")
    )
    rows = []
    for label in rules:
        for n, f in CASES[label][:1] if args.quick else CASES[label]:
            row = reference_search(label, n, f, restarts=restarts, maxiter=maxiter)
            rows.append(row)
            print(
                f"{label:>14} n={n} f={f} κ={row['kappa']:.4g}"
                f" κ̂_ref={row['reference_kappa_hat']:.4g} ratio={row['reference_ratio']:.4f}"
                f" ({row['seconds']:.0f} s)",
                flush=True,
            )
            with open(args.out, "w") as handle:
                json.dump(rows, handle, indent=1)
    print()
    header = ["rule", "n", "f", "claimed κ", "reference κ̂", "κ̂ / κ", "evaluations", "seconds"]
    lines = [
        [
            r["rule"],
            str(r["n"]),
            str(r["f"]),
            f"{r['kappa']:.4g}",
            f"{r['reference_kappa_hat']:.4g}",
            f"{r['reference_ratio']:.3f}",
            str(r["evaluations"]),
            f"{r['seconds']:.0f}",
        ]
        for r in rows
    ]
    print(harness.markdown_table(header, lines))
    harness.print_footer(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())

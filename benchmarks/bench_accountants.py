"""Time trilemma's accountants against peer libraries in one run and print a Markdown table.

Peers: dp-accounting (raw), Opacus, and optionally the DECOR reference code
(github.com/elfirdoussilab1/DECOR, ``utils/dp_account.py``), which is not part of this repository:
pass ``--decor PATH`` with PATH the directory holding its ``utils/`` package.

Ratios are peer time / our time (> 1: we are faster); times are the best of ``--repeats``
interleaved runs of ``time.perf_counter`` after one untimed warm-up call each (see
``benchmarks/_harness.py``; one run for the slow rows). Graph construction is excluded on both
sides of the SecLDP rows. ``--quick``: one timed run each and the 16- and 64-node DECOR graphs
only. There is no floor column: an accountant reads no data, its cost is the number of orders
or grid points it evaluates, which the peer column compares. CPU only (``--device cuda`` is
refused).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from types import ModuleType
from typing import Any, Literal

import _harness as harness
import dp_accounting
import numpy as np
from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from trilemma.accountants import as_topology, calibrate_dpsgd, dpsgd_epsilon, secldp_epsilon

SIGMA, RATE, STEPS, DELTA = 1.1, 0.01, 10_000, 1e-5
TARGET_EPSILON = 3.0
OPACUS_TARGET = {"target_epsilon": TARGET_EPSILON, "target_delta": DELTA, "accountant": "rdp"}
SECLDP: dict[str, Any] = {
    "sigma": 17.827,
    "sigma_cor": 188.0,
    "clip": 1.0,
    "steps": 3500,
    "delta": 1e-5,
}
DECOR_NAMES = {"ring": "ring", "torus": "grid", "complete": "centralized"}


@dataclass(frozen=True)
class Row:
    """One line of the result table (``peer_s`` and ``eps_peer`` are NaN without a peer)."""

    what: str
    ours_s: float
    peer: str
    peer_s: float
    eps_ours: float
    eps_peer: float


def best_time(function: Callable[[], float], repeats: int) -> tuple[float, float]:
    """Best wall time of ``repeats`` calls of ``function``, the first one cold, and its value.

    Parameters
    ----------
    function : callable
        No-argument callable returning a number (an ε or a σ).
    repeats : int
        Number of timed calls.

    Returns
    -------
    tuple of float
        Best wall time in seconds and the value of the last call.
    """
    (timing,) = harness.best_of(
        [harness.Side(lambda _: function())], repeats, keep="timed", warm_up=False
    )
    return timing.seconds, float(timing.outputs[-1])  # type: ignore[arg-type]


def compare(
    what: str, ours: Callable[[], float], peer: str, theirs: Callable[[], float], repeats: int
) -> Row:
    """Time both sides, print both values and their relative difference, return the row.

    ``ours`` and ``theirs`` are no-argument callables returning ε; after one untimed warm-up
    call each (imports and caches are not what we compare), they are timed alternately
    ``repeats`` times and the fastest run of each is kept.
    """
    sides = [harness.Side(lambda _: ours()), harness.Side(lambda _: theirs())]
    mine, peers = harness.best_of(sides, repeats, keep="timed")
    eps_ours, eps_peer = float(mine.outputs[-1]), float(peers.outputs[-1])  # type: ignore[arg-type]
    rel = abs(eps_ours - eps_peer) / abs(eps_peer)
    print(f"  {what} vs {peer}: ε ours={eps_ours:.9g} peer={eps_peer:.9g} rel.diff={rel:.2e}")
    return Row(what, mine.seconds, peer, peers.seconds, eps_ours, eps_peer)


def dpsgd_event(sigma: float) -> dp_accounting.DpEvent:
    """The DP-SGD event of the central rows (Poisson sampling, ``STEPS`` steps)."""
    step = dp_accounting.PoissonSampledDpEvent(RATE, dp_accounting.GaussianDpEvent(sigma))
    return dp_accounting.SelfComposedDpEvent(step, STEPS)


def ours_dpsgd(method: Literal["rdp", "pld"]) -> Callable[[], float]:
    """Our DP-SGD ε with ``method`` as a thunk."""
    return lambda: dpsgd_epsilon(
        noise_multiplier=SIGMA, sample_rate=RATE, steps=STEPS, delta=DELTA, method=method
    )


def central_rows(repeats: int) -> list[Row]:
    """Rows 1-4: DP-SGD ε vs raw dp-accounting (RDP, PLD) and Opacus (RDP, PRV vs our PLD).

    Opacus' RDP uses other orders than dp-accounting, so its ε differs slightly.
    """

    def opacus_epsilon(make: type) -> float:
        accountant = make()
        accountant.history = [(SIGMA, RATE, STEPS)]
        return accountant.get_epsilon(DELTA)

    def raw_epsilon(make: type) -> float:
        return make().compose(dpsgd_event(SIGMA)).get_epsilon(DELTA)

    peers: tuple[tuple[Literal["rdp", "pld"], str, Callable[[type], float], type], ...] = (
        ("rdp", "dp-accounting RDP", raw_epsilon, dp_accounting.rdp.RdpAccountant),
        ("pld", "dp-accounting PLD", raw_epsilon, dp_accounting.pld.PLDAccountant),
        ("rdp", "Opacus RDP", opacus_epsilon, RDPAccountant),
        ("pld", "Opacus PRV", opacus_epsilon, PRVAccountant),
    )
    return [
        compare(f"DP-SGD {method.upper()}", ours_dpsgd(method), peer, partial(run, make), repeats)
        for method, peer, run, make in peers
    ]


def calibration_rows(repeats: int) -> list[Row]:
    """Row 5: σ for ε = 3 vs Opacus and vs dp-accounting's ``calibrate_dp_mechanism``.

    The ε columns are those each σ achieves, all measured with dp-accounting's RDP accountant.
    """

    def achieved(sigma: float) -> float:
        return dp_accounting.rdp.RdpAccountant().compose(dpsgd_event(sigma)).get_epsilon(DELTA)

    def opacus_sigma() -> float:
        with warnings.catch_warnings():  # "optimal order is the largest alpha" during its search
            warnings.simplefilter("ignore", UserWarning)
            return get_noise_multiplier(**OPACUS_TARGET, sample_rate=RATE, steps=STEPS)

    def dp_accounting_sigma() -> float:
        return dp_accounting.calibrate_dp_mechanism(
            dp_accounting.rdp.RdpAccountant,
            dpsgd_event,
            TARGET_EPSILON,
            DELTA,
            bracket_interval=dp_accounting.LowerEndpointAndGuess(0.1, 1.0),
        )

    ours_s, sigma_ours = best_time(
        lambda: calibrate_dpsgd(
            target_epsilon=TARGET_EPSILON, sample_rate=RATE, steps=STEPS, delta=DELTA, method="rdp"
        ),
        repeats,
    )
    rows = []
    for peer, function in (
        ("Opacus get_noise_multiplier", opacus_sigma),
        ("dp-accounting calibrate_dp_mechanism", dp_accounting_sigma),
    ):
        peer_s, sigma_peer = best_time(function, repeats)
        eps_ours, eps_peer = achieved(sigma_ours), achieved(sigma_peer)
        print(
            f"  calibration vs {peer}: σ ours={sigma_ours:.9g} peer={sigma_peer:.9g} "
            f"ε achieved ours={eps_ours:.12g} peer={eps_peer:.12g}"
        )
        rows.append(Row("calibrate σ (ε=3, RDP)", ours_s, peer, peer_s, eps_ours, eps_peer))
    return rows


def load_decor(path: str) -> tuple[ModuleType, ModuleType]:
    """Import the DECOR reference's ``utils.dp_account`` and ``utils.topology`` from ``path``."""
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module("utils.dp_account"), importlib.import_module("utils.topology")


def decor_row(spec: str, decor: tuple[ModuleType, ModuleType], repeats: int) -> Row:
    """SecLDP ε (``method="classic"``) on ``spec`` vs DECOR's ``rdp_compose_convert``.

    Both sides get prebuilt graphs: ours a Topology, the reference its (D, A) built as its
    scripts do. Only the accounting calls are timed.
    """
    dp_account, topology = decor
    kind, size = spec.split(":")
    n = int(np.prod([int(side) for side in size.split("x")]))
    W = topology.FixedMixingMatrix(DECOR_NAMES[kind], n)(0)
    A = np.array(W != 0, dtype=float)
    A = A - np.diag(np.diag(A))
    D = np.diag(A @ np.ones_like(A[0]))
    ours = partial(secldp_epsilon, as_topology(spec), method="classic", **SECLDP)
    # rdp_compose_convert(num_iter, delta, sigmacdp, sigmacor, clip, degree_matrix, adjacency)
    arguments = [SECLDP[key] for key in ("steps", "delta", "sigma", "sigma_cor", "clip")]
    reference = partial(dp_account.rdp_compose_convert, *arguments, D, A)
    return compare(f"SecLDP classic {spec}", ours, "DECOR reference", reference, repeats)


def decor_rows(path: str, repeats: int, quick: bool) -> list[Row]:
    """Row 6 (ring, torus, complete on 16, 64, 256 nodes) and, unless quick, ring:1024."""
    decor = load_decor(path)
    sizes = (16, 64) if quick else (16, 64, 256)
    rows = []
    for n in sizes:
        side = int(np.sqrt(n))
        for spec in (f"ring:{n}", f"torus:{side}x{side}", f"complete:{n}"):
            rows.append(decor_row(spec, decor, repeats))
    if not quick:
        rows.append(decor_row("ring:1024", decor, 1))
    return rows


def large_graph_rows() -> list[Row]:
    """Row 7: our SecLDP ε (``method="rdp"``) on 10,000-node graphs; no peer, one run."""
    rows = []
    for spec in ("torus:100x100", "regular:4:10000"):
        start = time.perf_counter()
        graph = as_topology(spec)
        build_s = time.perf_counter() - start
        seconds, eps = best_time(partial(secldp_epsilon, graph, method="rdp", **SECLDP), 1)
        print(
            f"  SecLDP RDP {spec}: ε={eps:.9g} in {seconds:.3f} s (target < 10 s; "
            f"graph construction, not timed: {build_s:.3f} s)"
        )
        rows.append(Row(f"SecLDP RDP {spec}", seconds, "—", np.nan, eps, np.nan))
    return rows


def result_table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""

    def cell(x: float, fmt: str) -> str:
        return "—" if np.isnan(x) else format(x, fmt)

    header = ["what", "ours (s)", "peer", "peer (s)", "ratio peer/ours", "ε ours", "ε peer"]
    lines = [
        [
            r.what,
            f"{r.ours_s:.4f}",
            r.peer,
            cell(r.peer_s, ".4f"),
            harness.times(r.peer_s / r.ours_s if r.ours_s > 0 else np.nan),
            f"{r.eps_ours:.6f}",
            cell(r.eps_peer, ".6f"),
        ]
        for r in rows
    ]
    return harness.markdown_table(header, lines, align="lrlrrrr")


def main(argv: Sequence[str] | None = None) -> int:
    """Run every row, print the value checks as they come, then the Markdown table; ``argv``
    defaults to ``sys.argv[1:]``. Returns the exit status, 0.
    """
    parser = harness.make_parser(
        __doc__,
        repeats=5,
        quick_repeats=1,
        quick="one timed run each, DECOR graphs of 16 and 64 nodes only",
    )
    parser.add_argument("--decor", metavar="PATH", help="directory holding DECOR's utils/")
    args = harness.parse(parser, argv)
    if args.device.type != "cpu":
        parser.error("--device: the accountants run on the CPU only")
    if args.decor and not os.path.isdir(os.path.join(args.decor, "utils")):
        parser.error(f"--decor {args.decor!r} has no utils/ directory")
    start = harness.print_header(
        "trilemma's accountants vs dp-accounting, Opacus and the DECOR reference",
        packages=("dp-accounting", "opacus", "numpy", "scipy"),
    )
    print("Value checks:")
    rows = central_rows(args.repeats) + calibration_rows(1)
    if args.decor:
        rows += decor_rows(args.decor, args.repeats, args.quick)
    else:
        print("  DECOR rows skipped: --decor was not given")
    rows += large_graph_rows()
    print()
    print(result_table(rows))
    harness.print_footer(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time trilemma's aggregation rules against byzfl and the floor of each rule; print tables.

Settings (float32, n workers of which the last f are shifted "Byzantine" rows):

(a) one round, n = 50, f = 10, d = 10⁶, every rule both libraries have;
(b) 64 rounds at d = 10⁴ (n = 50, f = 10): trilemma called once on a (64, n, d) tensor,
    byzfl in a Python loop over the rounds (it takes one (n, d) round per call);
(c) the exact combinatorial rules SMEA and MDA at n = 15, f = 3, d = 10⁴, and ours alone at
    n = 25, f = 6 (177 100 subsets), where byzfl's subset loop is impractical.

``--quick`` runs d = 10⁵ in (a), 16 rounds in (b), d = 10³ in (c) and n = 20, f = 4, d = 64
for ours alone, best of 2.

Every row also gets the floor of its rule, timed on the same input and device interleaved with
the row's own calls (best of as many calls), and our time / floor:

- rules that compare all pairs of rows (krum, multikrum, caf, nnm>>cwtm, bulyan, mda, smea):
  the Gram product ``x @ x.mT`` (batched in (b)), the one matrix product they all need;
- iterative rules (gm, cc): iterations × two reads of x (``x.sum()``), with the iterations the
  rule ran in its last call (``last_iterations``) printed in the row;
- mean, the coordinate-wise rules (cwmed, cwtm, meamed) and monna (the distances to one pivot
  row, n·d work: the Gram product is no floor for it): one read of x (``x.sum()``);
- clip, arc, bucketing: one read plus one write of x's size (``buffer.copy_(x)`` into a
  preallocated buffer): what a rule that writes an (n, d) result must do at least.

Bulyan is timed for trilemma only (byzfl has none). Times are wall times in milliseconds, the
best of ``--repeats`` interleaved calls after one untimed warm-up call per function (a single
timed call when the warm-up took more than 5 s), see ``benchmarks/_harness.py``. Ratios are byzfl
time / trilemma time (> 1: we are faster). byzfl's Clipping and ARC overwrite their input, so
they get a fresh copy before every call, made outside the timed region. Values are compared
wherever both libraries compute the same thing. ``--device cuda`` runs both libraries and the
floors on the GPU (its name is printed in the header).

byzfl is imported without its ``__init__`` (see ``benchmarks/_byzfl.py``).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import _harness as harness
import torch

from trilemma.aggregators import get

REL_TOLERANCE = 1e-3  # value checks flag a relative max difference above this

RULE_KEYS = (
    *("mean", "cwmed", "cwtm", "meamed", "gm", "krum", "multikrum", "cc", "monna", "caf"),
    *("nnm>>cwtm", "arc", "clip", "bucketing", "bulyan", "mda", "smea"),
)
GRAM, READ, READ_WRITE, ITERATIVE = "Gram x@xᵀ", "1 read", "1 read + 1 write", "2 reads"
FLOOR_OF = {
    **dict.fromkeys(("mean", "cwmed", "cwtm", "meamed", "monna"), READ),
    **dict.fromkeys(("gm", "cc"), ITERATIVE),
    **dict.fromkeys(("krum", "multikrum", "caf", "nnm>>cwtm", "bulyan"), GRAM),
    **dict.fromkeys(("mda", "smea"), GRAM),
    **dict.fromkeys(("arc", "clip", "bucketing"), READ_WRITE),
}
"""Which floor bounds each rule (see the module docstring)."""
TARGET = {
    **dict.fromkeys(("krum", "multikrum", "caf", "nnm>>cwtm"), 1.5),
    **dict.fromkeys(("gm", "cc", "arc", "clip", "bucketing"), 2.0),
}
"""Our time / floor, at most (performance targets; see the footnote for the rules without)."""

Rule = Callable[[torch.Tensor], object]


@dataclass(frozen=True)
class Spec:
    """One rule as both libraries spell it.

    ``ours`` / ``theirs`` map an ``(n, d)`` (ours: ``(..., n, d)``) tensor to the output;
    ``theirs`` is None where byzfl has no counterpart. ``check``: same definition and
    convention on both sides, so values are compared. ``mutates``: byzfl writes into its input.
    """

    key: str
    label: str
    ours: Rule
    theirs: Rule | None = None
    check: bool = False
    mutates: bool = False


@dataclass(frozen=True)
class Setting:
    """Input shape of one table section."""

    tag: str
    batch: int  # 0: a single (n, d) round
    n: int
    f: int
    d: int

    def describe(self) -> str:
        round_ = f"n={self.n} f={self.f} d={_power(self.d)}"
        return f"({self.tag}) {self.batch}×[{round_}]" if self.batch else f"({self.tag}) {round_}"


@dataclass
class Row:
    """One line of the result table (NaN where a side was not run)."""

    label: str
    setting: str
    ours_s: float
    theirs_s: float
    floor: str
    floor_s: float
    target: float  # NaN: none

    def verdict(self) -> str:
        """``≤ 1.5 (met)``, ``≤ 2 (missed)`` or ``—``."""
        if math.isnan(self.target):
            return "—"
        met = self.ours_s / self.floor_s <= self.target
        return f"≤ {self.target:g} ({'met' if met else 'missed'})"


@dataclass(frozen=True)
class Check:
    """max |ours − byzfl| of one row, and relative to max |byzfl|."""

    label: str
    setting: str
    max_abs: float
    relative: float


def _power(d: int) -> str:
    exponent = round(math.log10(d)) if d > 0 else 0
    return f"1e{exponent}" if 10**exponent == d else str(d)


def make_input(setting: Setting, device: torch.device, seed: int = 0) -> torch.Tensor:
    """Honest rows ~ N(1, 1), the last f rows ~ N(−4, 1), float32, contiguous on ``device``."""
    generator = torch.Generator().manual_seed(seed)
    shape = (setting.batch, setting.n, setting.d) if setting.batch else (setting.n, setting.d)
    x = torch.randn(shape, generator=generator, dtype=torch.float32) + 1.0
    if setting.f:
        x[..., setting.n - setting.f :, :] -= 5.0
    return x.to(device)


def shared_specs(A: ModuleType, P: ModuleType, f: int) -> list[Spec]:
    """The rules of settings (a) and (b): trilemma and byzfl (A: aggregators, P: pre-aggr.)."""

    def centered_clipping(v: torch.Tensor) -> torch.Tensor:
        return A.CenteredClipping(tau=100.0, L=1)(v)  # stateful: a fresh instance per call

    def nnm_trmean(v: torch.Tensor) -> torch.Tensor:
        return A.TrMean(f)(P.NNM(f)(v))

    return [
        Spec("mean", "mean / Average", get("mean"), A.Average(), check=True),
        Spec("cwmed", "cwmed / Median", get("cwmed", f=f), A.Median(), check=True),
        Spec("cwtm", "cwtm / TrMean", get("cwtm", f=f), A.TrMean(f), check=True),
        Spec("meamed", "meamed / Meamed", get("meamed", f=f), A.Meamed(f), check=True),
        Spec(
            "gm",
            "gm (defaults: tol 1e-7, max_iter 1000) / GeometricMedian(T=3)",
            get("gm", f=f),
            A.GeometricMedian(nu=0.1, T=3),
        ),
        Spec(
            "gm",
            "gm (max_iter=3) / GeometricMedian(T=3)",
            get("gm", f=f, max_iter=3),
            A.GeometricMedian(nu=0.1, T=3),
        ),
        Spec(
            "krum",
            "krum (n−f−1) / Krum",
            get("krum", f=f, neighbours="n-f-1"),
            A.Krum(f),
            check=True,
        ),
        Spec(
            "multikrum",
            "multikrum (n−f−1) / MultiKrum",
            get("multikrum", f=f, neighbours="n-f-1"),
            A.MultiKrum(f),
            check=True,
        ),
        Spec(
            "cc",
            "cc (τ=100, 1 iteration) / CenteredClipping",
            get("cc", f=f, tau=100.0, iterations=1),
            centered_clipping,
            check=True,
        ),
        Spec("monna", "monna / MoNNA", get("monna", f=f), A.MoNNA(f, idx=0), check=True),
        Spec("caf", "caf / CAF", get("caf", f=f), A.CAF(f)),
        Spec("nnm>>cwtm", "nnm>>cwtm / NNM then TrMean", get("nnm>>cwtm", f=f), nnm_trmean, True),
        Spec("arc", "arc / ARC", get("arc", f=f), P.ARC(f), check=True, mutates=True),
        Spec("clip", "clip (c=2) / Clipping", get("clip", c=2.0), P.Clipping(2.0), True, True),
        Spec("bucketing", "bucketing (s=2) / Bucketing", get("bucketing", s=2), P.Bucketing(2)),
        Spec("bulyan", "bulyan (ours only: byzfl has none)", get("bulyan", f=f)),
    ]


def combinatorial_specs(A: ModuleType, f: int, *, peer: bool) -> list[Spec]:
    """MDA and SMEA of setting (c), with byzfl's counterparts when ``peer``."""
    return [
        Spec(
            "mda",
            "mda / MDA" if peer else "mda (ours only)",
            get("mda", f=f),
            A.MDA(f) if peer else None,
            check=peer,
        ),
        Spec(
            "smea",
            "smea / SMEA (byzfl: 1 power-iteration step)" if peer else "smea (ours only)",
            get("smea", f=f),
            A.SMEA(f) if peer else None,
        ),
    ]


def batched(rule: Rule) -> Rule:
    """byzfl on a batch: one call per round in a Python loop (outputs kept as a list)."""
    return lambda x: [rule(x[i]) for i in range(x.shape[0])]


def _as_tensor(out: object) -> torch.Tensor:
    if isinstance(out, list):
        out = torch.stack([torch.as_tensor(item) for item in out])
    return torch.as_tensor(out).detach().to("cpu", torch.float64)


def value_check(label: str, setting: str, ours: object, theirs: object) -> Check:
    """max |ours − byzfl| and its ratio to max |byzfl|."""
    a, b = _as_tensor(ours), _as_tensor(theirs)
    if a.shape != b.shape:
        return Check(label, setting, math.inf, math.inf)
    max_abs = float((a - b).abs().max())
    scale = float(b.abs().max())
    return Check(label, setting, max_abs, max_abs / scale if scale > 0 else max_abs)


def floor_side(key: str, x: torch.Tensor) -> harness.Side:
    """The floor of rule ``key`` on ``x`` (for an iterative rule: one read, to be scaled)."""
    kind = FLOOR_OF[key]
    if kind == GRAM:
        return harness.gram_side(x)
    if kind == READ_WRITE:
        return harness.read_write_side(x)
    return harness.read_side(x)


def run_spec(
    spec: Spec, setting: Setting, x: torch.Tensor, timer: harness.Timer, repeats: int
) -> tuple[Row, Check | None]:
    """Time ours, byzfl's and the floor interleaved on ``x`` (see :func:`_harness.best_of`);
    compare ours and byzfl's warm-up outputs when ``spec.check``."""
    where = setting.describe()
    theirs = spec.theirs
    if theirs is not None and setting.batch:
        theirs = batched(theirs)
    sides = [harness.Side(spec.ours, lambda _: x), floor_side(spec.key, x)]
    if theirs is not None:
        sides.append(harness.Side(theirs, lambda _: x.clone() if spec.mutates else x))
    timings = harness.best_of(sides, repeats, timer=timer, keep="warm-up" if spec.check else "none")
    check = None
    if spec.check and theirs is not None:
        check = value_check(spec.label, where, timings[0].outputs[0], timings[2].outputs[0])
    floor, floor_s = FLOOR_OF[spec.key], timings[1].seconds
    if floor == ITERATIVE:  # iterations × two reads
        iterations = int(getattr(spec.ours, "last_iterations", 0))
        floor, floor_s = f"{iterations} it. × 2 reads", 2 * iterations * floor_s
    theirs_s = timings[2].seconds if theirs is not None else math.nan
    target = TARGET.get(spec.key, math.nan)
    row = Row(spec.label, where, timings[0].seconds, theirs_s, floor, floor_s, target)
    print(
        f"  {spec.label:<64} {where:<26} ours {harness.ms(row.ours_s):>7} ms  floor ({floor}) "
        f"{harness.ms(floor_s)} ms  byzfl {harness.ms(theirs_s)} ms",
        flush=True,
    )
    return row, check


def run_setting(
    specs: Sequence[Spec],
    setting: Setting,
    timer: harness.Timer,
    repeats: int,
    keys: set[str] | None,
) -> tuple[list[Row], list[Check]]:
    """Every selected spec on one freshly drawn input of ``setting``."""
    chosen = [spec for spec in specs if keys is None or spec.key in keys]
    if not chosen:
        return [], []
    x = make_input(setting, timer.device)
    read = harness.read_floor(x, timer)
    gbps = x.numel() * x.element_size() / read / 1e9
    print(
        f"{setting.describe()}: input {x.numel() * 4 / 2**20:.0f} MiB; one read (x.sum()) "
        f"{harness.ms(read)} ms ≈ {gbps:.0f} GB/s at the start"
    )
    rows, checks = [], []
    for spec in chosen:
        row, check = run_spec(spec, setting, x, timer, repeats)
        rows.append(row)
        if check is not None:
            checks.append(check)
    return rows, checks


def first_call_cwtm(setting: Setting, timer: harness.Timer) -> str:
    """First call of cwtm in this process (numba compiles, or loads its on-disk cache), before
    any other rule has touched the kernel; plus a cold compile in a subprocess (CPU only)."""
    x = make_input(setting, timer.device)
    rule = get("cwtm", f=setting.f)
    first, _ = timer.call(rule, x)
    second, _ = timer.call(rule, x)
    text = f"cwtm first call {first * 1e3:.0f} ms, second {second * 1e3:.0f} ms"
    if timer.device.type != "cpu":
        return text + " (the numba kernel is CPU-only; on CUDA cwtm uses torch.sort)"
    try:
        from trilemma.aggregators import _sorted

        stats = _sorted._sorted_reduce_kernel.stats
        source = "numba on-disk cache hit" if sum(stats.cache_hits.values()) else "JIT compile"
        text += f" (first call includes the {source})"
    except AttributeError:  # pragma: no cover - internals moved
        pass
    cold = cold_compile_seconds()
    if not math.isnan(cold):
        text += f"; cold JIT compile with an empty NUMBA_CACHE_DIR (subprocess): {cold:.2f} s"
    return text


def cold_compile_seconds() -> float:
    """First-call minus second-call time of cwtm in a fresh process with an empty numba cache."""
    code = textwrap.dedent(
        """
        import time, torch
        from trilemma.aggregators import get
        x, rule = torch.randn(50, 1000), get("cwtm", f=10)
        start = time.perf_counter(); rule(x); first = time.perf_counter() - start
        start = time.perf_counter(); rule(x); second = time.perf_counter() - start
        print(first - second)
        """
    )
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        try:
            done = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
            )
            return float(done.stdout.strip().splitlines()[-1])
        except (subprocess.SubprocessError, ValueError, IndexError):
            return math.nan


def result_table(rows: Sequence[Row]) -> str:
    """Our time, the floor, our time / floor, byzfl's time and byzfl / ours, per row."""
    header = [
        "rule",
        "setting",
        "trilemma (ms)",
        "floor",
        "floor (ms)",
        "trilemma / floor",
        "target",
        "byzfl (ms)",
        "byzfl / trilemma",
    ]
    lines = [
        [
            r.label,
            r.setting,
            harness.ms(r.ours_s),
            r.floor,
            harness.ms(r.floor_s),
            harness.times(r.ours_s / r.floor_s),
            r.verdict(),
            harness.ms(r.theirs_s),
            harness.times(r.theirs_s / r.ours_s),
        ]
        for r in rows
    ]
    return harness.markdown_table(header, lines, align="llrlrrlrr")


def check_table(checks: Sequence[Check]) -> str:
    """max |ours − byzfl| per checked row, flagged above ``REL_TOLERANCE``."""
    lines = [
        [
            c.label,
            c.setting,
            f"{c.max_abs:.3g}",
            f"{c.relative:.3g}",
            f"> {REL_TOLERANCE:g} relative" if c.relative > REL_TOLERANCE else "ok",
        ]
        for c in checks
    ]
    header = ["rule", "setting", "max abs diff", "relative to max abs byzfl", "flag"]
    return harness.markdown_table(header, lines, align="llrrl")


def settings(quick: bool) -> dict[str, Setting]:
    """The shapes of each section (``quick``: smaller ones, for a run of a minute or so)."""
    if quick:
        return {
            "a": Setting("a", 0, 50, 10, 10**5),
            "b": Setting("b", 16, 50, 10, 10**4),
            "c": Setting("c", 0, 15, 3, 10**3),
            "c'": Setting("c", 0, 20, 4, 64),
        }
    return {
        "a": Setting("a", 0, 50, 10, 10**6),
        "b": Setting("b", 64, 50, 10, 10**4),
        "c": Setting("c", 0, 15, 3, 10**4),
        "c'": Setting("c", 0, 25, 6, 10**4),
    }


FOOTNOTE = (
    "trilemma / floor: our time over the floor of the rule measured on the same input and "
    "device in this run — Gram x@xᵀ: the (batched) Gram product; 1 read: x.sum(); 1 read + 1 "
    "write: buffer.copy_(x) into a preallocated buffer; k it. × 2 reads: k times two x.sum(), "
    "k the iterations the rule ran in its last call. target: the largest trilemma / floor "
    "accepted for the rules that select by one Gram matrix (1.5: krum, multikrum, caf, nnm), "
    "the iterative rules (2) and the read-write rules (2); none for bulyan (its selection is "
    "not timed alone), the exact subset searches mda and smea, and the one-read rules (monna "
    "included: it needs the distances to one pivot only, so the Gram product is no floor for "
    "it). byzfl / trilemma: > 1 where we are faster. "
    "gm: byzfl runs exactly T=3 Weiszfeld steps from 0 (ν=0.1); ours starts at the "
    "coordinate-wise median (ν=1e-6) and, with its defaults, iterates to tol=1e-7 (convergence "
    "checked every 8 steps) — the max_iter=3 row is the like-for-like one. byzfl's SMEA and CAF "
    "take one power-iteration step from a random start (approximate); ours are exact. byzfl's "
    "Clipping and ARC overwrite their input in place: they are timed on a copy made outside the "
    "timer, so their times exclude the n·d write that a non-destructive rule (ours) must make."
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every section, print progress and the value checks, then the Markdown tables; ``argv``
    defaults to ``sys.argv[1:]``. Returns the exit status, 0.
    """
    parser = harness.make_parser(
        __doc__,
        repeats=3,
        quick_repeats=2,
        quick="d = 1e5 in (a), 16 rounds in (b), d = 1e3 in (c) and n = 20, f = 4, d = 64 in (c'), "
        "best of 2",
    )
    parser.add_argument(
        "--rules", help=f"comma-separated subset of: {','.join(RULE_KEYS)} (default: all)"
    )
    args = harness.parse(parser, argv)
    keys = None if args.rules is None else {k.strip().lower() for k in args.rules.split(",")}
    unknown = sorted((keys or set()) - set(RULE_KEYS))
    if unknown:
        parser.error(f"--rules: unknown {unknown}; known: {', '.join(RULE_KEYS)}")
    A, P = harness.sibling("_byzfl").load_byzfl()
    timer = harness.Timer(args.device)
    shapes = settings(args.quick)

    start = harness.print_header(
        "trilemma vs byzfl and the floors: aggregation rules",
        device=args.device,
        packages=("torch", "numba", "byzfl"),
    )
    print(f"float32; best of {args.repeats} (1 when a warm-up call took > 5 s)")
    if keys is None or "cwtm" in keys:
        print(first_call_cwtm(shapes["a"], timer))
    print()

    rows, checks = [], []
    f = shapes["a"].f
    for tag in ("a", "b"):
        new_rows, new_checks = run_setting(
            shared_specs(A, P, f), shapes[tag], timer, args.repeats, keys
        )
        rows += new_rows
        checks += new_checks
    for tag, peer in (("c", True), ("c'", False)):
        specs = combinatorial_specs(A, shapes[tag].f, peer=peer)
        new_rows, new_checks = run_setting(specs, shapes[tag], timer, args.repeats, keys)
        rows += new_rows
        checks += new_checks

    print()
    print(result_table(rows))
    print()
    print(FOOTNOTE)
    print()
    print("Value checks (same definition on both sides):")
    print()
    print(check_table(checks))
    harness.print_footer(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())

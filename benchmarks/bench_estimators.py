"""Time trilemma's batched Monte Carlo harness against a per-trial byzfl loop; print a table.

Both sides run the same experiment: distributed mean estimation with n = 10 workers, f = 2 of
them Byzantine, m = 100 one-way-marginal records per honest worker (biases uniform in [−1, 1]^d,
worker averages drawn exactly as (2K − m)/m · C/√d with K ~ Binomial(m, (1 + p)/2), C = 1),
Gaussian noise of the distributed model at (ε, δ) = (1, 1e-5) on every honest average, the f
Byzantine vectors computed from the noisy honest ones, an aggregation rule, and the squared
error ‖F − x̄_H‖² against the mean of the noise-free honest averages.

- trilemma: one ``run_sweep`` call of ``--trials`` trials (batched over trials; the harness also
  computes each trial's conditional upper bound and returns one record per trial);
- byzfl: a Python loop of ``--iterations`` trials, each drawing its data with numpy and calling
  byzfl's attack (``ALittleIsEnough``, ``SignFlipping``) and rule (``TrMean``, ``Median``,
  ``Krum``, ``MoNNA``), as a user of byzfl would write it.

The noise std is taken from ``protocol.noise_std(m)`` on both sides, so the privacy calibration
is not timed. ALIE uses z = 1.5 (byzfl's default τ; trilemma's default would be Baruch et al.'s
z_max ≈ 0.25 at n = 10, f = 2) with the unbiased σ on both sides. Krum uses byzfl's n − f − 1
neighbours on both sides; MoNNA uses worker 0 as pivot on both sides.

Everything is float64: byzfl's torch path casts its input to float32, its numpy path keeps
float64, so the loop uses numpy.

``optimal_alie`` is the line-search ALIE the figures run: trilemma evaluates its 11-point τ grid
(:data:`trilemma.estimators.STRONGEST_GRID`) for all trials in one batched rule call; byzfl's
``Optimal_ALittleIsEnough`` runs its sequential expansion/contraction search (20 rule calls) per
trial. The two searches visit different τ, so their errors are close but not identical.

A second table times the protocol step alone (noise, attack, rule, error) on pre-drawn worker
averages: ``DistributedMeanEstimation.estimate_averages`` against
the same loop without the data draw.

Rates are trials per second, ``--trials`` (resp. ``--iterations``) over the best of ``--repeats``
interleaved ``time.perf_counter`` runs, after one untimed warm-up per side (see
``benchmarks/_harness.py``); each repeat uses a new seed and the mean errors pool all repeats.
They agree when they differ by less than 3 standard errors; "max abs diff" compares both
libraries' attack + rule on one identical input.

Floor: the random numbers an exact simulation must draw, timed in the same run — end to end,
per trial the biases (d uniforms), the honest workers' averages drawn from their Binomial
success counts ((n − f)·d draws by the fastest exact sampler at hand, trilemma's inversion
kernel ``marginal_averages``, on the CPU; ``torch.binomial`` is 3× slower) and their noise
((n − f)·d Gaussians, ``torch.randn`` on trilemma's device); for the protocol step alone, the
noise. The tables give the floor's rate (trials/s) and trilemma's time over the floor's.
``--quick`` runs d = 64 only (the targets' dimension), best of 2; ``--device cuda`` runs
trilemma and the noise on the GPU (byzfl's loop stays on the CPU).

byzfl is imported without its ``__init__`` (see ``benchmarks/_byzfl.py``).
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import _harness as harness
import numpy as np
import torch

from trilemma import aggregators, attacks
from trilemma.estimators import (
    STRONGEST_GRID,
    DistributedMeanEstimation,
    SweepPoint,
    marginal_averages,
    product_biases,
    run_sweep,
)

N, F, M = 10, 2, 100
EPSILON, DELTA, CLIP = 1.0, 1e-5, 1.0
ALIE_Z = 1.5  # byzfl's default τ, set explicitly on both sides
TARGET_RATIO = {"alie": 5.0, "sign_flipping": 5.0, "optimal_alie": 20.0}
"""trilemma / byzfl-loop trials/s, at least, end to end at ``TARGET_DIMENSION``."""
TARGET_DIMENSION = 64
AGREE_SIGMAS = 3.0  # mean errors agree within this many standard errors of their difference
RULE_KEYS = ("cwtm", "cwmed", "krum", "monna", "smea")
ATTACK_KEYS = ("alie", "sign_flipping", "optimal_alie")

Vectors = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Case:
    """One (rule, attack, d) cell, as both libraries spell it."""

    rule: str
    attack: str
    d: int
    protocol: DistributedMeanEstimation
    ours_rule: Callable[[torch.Tensor], torch.Tensor]
    ours_attack: attacks.Attack
    their_rule: Vectors
    their_attack: Vectors


@dataclass
class Row:
    """Rates (trials/s) and per-trial errors of one case and stage."""

    case: Case
    ours_rate: float
    theirs_rate: float
    ours_errors: np.ndarray
    theirs_errors: np.ndarray
    floor_rate: float
    max_abs: float = math.nan


def load_peer() -> tuple[ModuleType, ModuleType]:
    """byzfl's aggregators and attacks modules, without ``byzfl/__init__``."""
    A, _ = harness.sibling("_byzfl").load_byzfl()
    return A, importlib.import_module("byzfl.attacks.attacks")


def make_case(A: ModuleType, B: ModuleType, rule: str, attack: str, d: int) -> Case:
    """The protocol of trilemma and the matching byzfl objects (A: aggregators, B: attacks)."""
    ours_rules: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "cwtm": aggregators.get("cwtm", f=F),
        "cwmed": aggregators.get("cwmed", f=F),
        "krum": aggregators.Krum(f=F, neighbours="n-f-1"),
        "monna": aggregators.get("monna", f=F),
        "smea": aggregators.get("smea", f=F),
    }
    their_rules: dict[str, Vectors] = {
        "cwtm": A.TrMean(F),
        "cwmed": A.Median(),
        "krum": A.Krum(F),
        "monna": A.MoNNA(F, idx=0),
        "smea": A.SMEA(F),
    }
    ours_attacks: dict[str, attacks.Attack] = {
        "alie": attacks.ALIE(z=ALIE_Z, unbiased=True),
        "sign_flipping": attacks.SignFlipping(),
        "optimal_alie": attacks.OptimalALIE(
            rule=ours_rules[rule], candidates=torch.tensor(STRONGEST_GRID, dtype=torch.float64)
        ),
    }
    their_attacks: dict[str, Vectors] = {
        "alie": B.ALittleIsEnough(tau=float(ALIE_Z)),
        "sign_flipping": B.SignFlipping(),
        "optimal_alie": B.Optimal_ALittleIsEnough(agg=their_rules[rule], pre_agg_list=[], f=F),
    }
    # a rule name keeps the harness's bound computation; Krum with byzfl's convention is an object
    protocol = DistributedMeanEstimation(
        n=N,
        f=F,
        epsilon=EPSILON,
        delta=DELTA,
        clip=CLIP,
        rule=ours_rules[rule] if rule == "krum" else rule,
        attack=ours_attacks[attack],
    )
    return Case(
        rule,
        attack,
        d,
        protocol,
        ours_rules[rule],
        ours_attacks[attack],
        their_rules[rule],
        their_attacks[attack],
    )


def numpy_averages(rng: np.random.Generator, *, h: int, d: int) -> np.ndarray:
    """h worker averages of m one-way-marginal records, drawn exactly, ``(h, d)`` float64."""
    biases = rng.uniform(-1.0, 1.0, d)
    successes = rng.binomial(M, (1.0 + biases) / 2.0, size=(h, d))
    return (2.0 * successes - M) / M * (CLIP / math.sqrt(d))


def byzfl_trial(case: Case, averages: np.ndarray, std: float, rng: np.random.Generator) -> float:
    """Noise, byzfl's attack and rule on one trial's averages; the squared error."""
    honest = averages + rng.normal(0.0, std, averages.shape)
    byzantine = np.tile(case.their_attack(honest), (F, 1))
    output = case.their_rule(np.vstack([honest, byzantine]))
    return float(np.sum((output - averages.mean(axis=0)) ** 2))


def byzfl_loop(case: Case, iterations: int, seed: int) -> np.ndarray:
    """``iterations`` trials one at a time, each drawing its own data."""
    rng = np.random.default_rng(seed)
    std, h = case.protocol.noise_std(M), N - F
    errors = np.empty(iterations)
    for t in range(iterations):
        errors[t] = byzfl_trial(case, numpy_averages(rng, h=h, d=case.d), std, rng)
    return errors


def byzfl_protocol_loop(case: Case, averages: np.ndarray, seed: int) -> np.ndarray:
    """The protocol step of :func:`byzfl_loop` alone, one trial at a time on pre-drawn data."""
    rng = np.random.default_rng(seed)
    std = case.protocol.noise_std(M)
    errors = np.empty(len(averages))
    for t in range(len(averages)):
        errors[t] = byzfl_trial(case, averages[t], std, rng)
    return errors


def trilemma_sweep(case: Case, trials: int, seed: int, device: torch.device) -> np.ndarray:
    """One batched ``run_sweep`` of ``trials`` trials; the per-trial errors."""
    point = SweepPoint(protocol=case.protocol, d=case.d, m=M, data="marginals")
    records = run_sweep([point], trials=trials, seed=seed, device=device, dtype=torch.float64)
    return np.array([record["error"] for record in records])


def trilemma_averages(d: int, trials: int, seed: int, device: torch.device) -> torch.Tensor:
    """Pre-drawn honest averages ``(trials, h, d)`` as the harness draws them."""
    generator = torch.Generator().manual_seed(seed)
    biases = product_biases(d=d, batch_shape=trials, generator=generator)
    averages = marginal_averages(biases, n=N - F, m=M, clip=CLIP, generator=generator)
    return averages.to(device)


def trilemma_protocol(case: Case, averages: torch.Tensor, seed: int) -> np.ndarray:
    """``estimate_averages`` on pre-drawn averages: noise, attack and rule batched."""
    generator = torch.Generator().manual_seed(seed)
    result = case.protocol.estimate_averages(averages, m=M, generator=generator)
    return result.error.double().cpu().numpy()


def same_input_diff(case: Case, seed: int) -> float:
    """max |trilemma − byzfl| of attack + rule on one identical noisy honest input."""
    rng = np.random.default_rng(seed)
    honest = numpy_averages(rng, h=N - F, d=case.d)
    honest = honest + rng.normal(0.0, case.protocol.noise_std(M), honest.shape)
    theirs = case.their_rule(np.vstack([honest, np.tile(case.their_attack(honest), (F, 1))]))
    x = torch.from_numpy(honest)
    ours = case.ours_rule(torch.cat([x, case.ours_attack(x, F)], dim=-2)).numpy()
    return float(np.abs(ours - np.asarray(theirs)).max())


def _seed(run: int) -> int:
    """The seed of run ``run`` (−1: the warm-up)."""
    return 10_000 if run < 0 else run


def draws(trials: int, d: int, device: torch.device, *, data: bool) -> Callable[[int], object]:
    """The floor: per trial, the honest workers' noise ((n − f)·d Gaussians) and, when
    ``data``, their biases (d uniforms) and worker averages ((n − f)·d binomial counts, drawn
    by the fastest exact sampler at hand, :func:`trilemma.estimators.marginal_averages`)."""
    shape = (trials, N - F, d)

    def draw(seed: int) -> object:
        generator = torch.Generator(device).manual_seed(seed)
        noise = torch.randn(shape, generator=generator, device=device, dtype=torch.float64)
        if not data:
            return noise
        cpu = torch.Generator().manual_seed(seed)
        biases = product_biases(d=d, batch_shape=trials, generator=cpu)
        averages = marginal_averages(biases, n=N - F, m=M, generator=cpu).to(device)
        return averages, noise

    return draw


def measure(
    ours: Callable[[int], np.ndarray],
    theirs: Callable[[int], np.ndarray],
    floor: Callable[[int], object],
    *,
    trials: int,
    iterations: int,
    repeats: int,
    device: torch.device,
) -> tuple[float, float, np.ndarray, np.ndarray, float]:
    """Warm up the three sides, then ``repeats`` interleaved timed runs (seed = repeat index).

    Returns the best rates (trials/s) of ours and theirs, their pooled per-trial errors and
    the floor's rate.
    """
    sides = [harness.Side(ours, _seed), harness.Side(theirs, _seed), harness.Side(floor, _seed)]
    mine, peer, bound = harness.best_of(sides, repeats, timer=harness.Timer(device), keep="timed")
    return (
        trials / mine.seconds,
        iterations / peer.seconds,
        np.concatenate([np.asarray(e) for e in mine.outputs]),
        np.concatenate([np.asarray(e) for e in peer.outputs]),
        trials / bound.seconds,
    )


def run_case(
    case: Case, *, trials: int, iterations: int, repeats: int, device: torch.device
) -> tuple[Row, Row]:
    """End-to-end and protocol-only rows of one case."""
    end_to_end = Row(
        case,
        *measure(
            lambda seed: trilemma_sweep(case, trials, seed, device),
            lambda seed: byzfl_loop(case, iterations, seed),
            draws(trials, case.d, device, data=True),
            trials=trials,
            iterations=iterations,
            repeats=repeats,
            device=device,
        ),
        max_abs=same_input_diff(case, seed=12345),
    )
    ours_averages = trilemma_averages(case.d, trials, seed=1, device=device)
    rng = np.random.default_rng(2)
    their_averages = np.stack([numpy_averages(rng, h=N - F, d=case.d) for _ in range(iterations)])
    protocol_only = Row(
        case,
        *measure(
            lambda seed: trilemma_protocol(case, ours_averages, seed),
            lambda seed: byzfl_protocol_loop(case, their_averages, seed),
            draws(trials, case.d, device, data=False),
            trials=trials,
            iterations=iterations,
            repeats=repeats,
            device=device,
        ),
    )
    print(
        f"  {case.rule:<6} {case.attack:<14} d={case.d:<5} end-to-end "
        f"{end_to_end.ours_rate:10.0f} vs {end_to_end.theirs_rate:8.0f} trials/s (floor "
        f"{end_to_end.floor_rate:.0f}); protocol step {protocol_only.ours_rate:10.0f} vs "
        f"{protocol_only.theirs_rate:8.0f} trials/s (floor {protocol_only.floor_rate:.0f})",
        flush=True,
    )
    return end_to_end, protocol_only


def _mean_se(errors: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the mean."""
    return float(errors.mean()), float(errors.std(ddof=1) / math.sqrt(len(errors)))


def result_table(rows: Sequence[Row], *, same_input: bool) -> str:
    """Rates, floor, ratios and mean errors (± 1.96 standard errors) per case."""
    header = [
        "rule",
        "attack",
        "d",
        "trilemma trials/s",
        "floor trials/s",
        "trilemma / floor",
        "byzfl loop trials/s",
        "trilemma / byzfl",
        "mean error (trilemma)",
        "mean error (byzfl)",
        "agree",
    ]
    if same_input:
        header.append("max abs diff (same input)")
    lines = []
    for r in rows:
        (mo, so), (mt, st) = _mean_se(r.ours_errors), _mean_se(r.theirs_errors)
        gap = abs(mo - mt) / math.hypot(so, st) if so or st else 0.0
        line = [
            r.case.rule,
            r.case.attack,
            str(r.case.d),
            harness.rate(r.ours_rate),
            harness.rate(r.floor_rate),
            harness.times(r.floor_rate / r.ours_rate),
            harness.rate(r.theirs_rate),
            harness.times(r.ours_rate / r.theirs_rate),
            f"{mo:.4g} ± {1.96 * so:.2g}",
            f"{mt:.4g} ± {1.96 * st:.2g}",
            "yes" if gap <= AGREE_SIGMAS else f"no ({gap:.1f} σ)",
        ]
        if same_input:
            line.append(f"{r.max_abs:.2g}")
        lines.append(line)
    return harness.markdown_table(header, lines, align="llr" + "r" * 7 + "l" + "r" * same_input)


def main(argv: Sequence[str] | None = None) -> int:
    """Time every (rule, attack, d) case, print progress, then the Markdown tables; ``argv``
    defaults to ``sys.argv[1:]``. Returns the exit status, 0.
    """
    parser = harness.make_parser(
        __doc__,
        repeats=3,
        quick_repeats=2,
        quick="d = 64 only, best of 2",
    )
    parser.add_argument("--trials", type=int, help="batched trials (default 2000)")
    parser.add_argument("--iterations", type=int, help="trials of the byzfl loop (default 300)")
    parser.add_argument("--dims", help="comma-separated dimensions (default 64,1024; quick 64)")
    parser.add_argument("--rules", help=f"comma-separated subset of {','.join(RULE_KEYS)}")
    parser.add_argument("--attacks", help=f"comma-separated subset of {','.join(ATTACK_KEYS)}")
    args = harness.parse(parser, argv)
    trials = args.trials or 2000
    iterations = args.iterations or 300
    try:
        dims = tuple(int(v) for v in (args.dims or ("64" if args.quick else "64,1024")).split(","))
    except ValueError:
        parser.error(f"--dims must be comma-separated integers, got {args.dims!r}")
    if min(trials, iterations, *dims) < 2:
        parser.error("--trials, --iterations and every dimension must be at least 2")
    rules = harness.choices(args.rules, RULE_KEYS, "--rules", parser)
    attack_keys = harness.choices(args.attacks, ATTACK_KEYS, "--attacks", parser)
    device, repeats = args.device, args.repeats
    A, B = load_peer()

    start = harness.print_header(
        "trilemma vs byzfl and the floor: Monte Carlo trials of distributed mean estimation",
        device=device,
        packages=("torch", "numpy", "byzfl"),
    )
    print(f"float64 on both sides; trilemma on {device}; best of {repeats}")
    probe = make_case(A, B, "cwtm", "alie", dims[0]).protocol
    print(
        f"n={N} f={F} m={M} ε={EPSILON:g} δ={DELTA:g} C={CLIP:g}: noise std "
        f"{probe.noise_std(M):.4g} per coordinate; ALIE z={ALIE_Z:g}; trilemma {trials} trials "
        f"per run, byzfl {iterations} per run"
    )
    print()

    end_rows, step_rows = [], []
    for d in dims:
        for rule in rules:
            for attack in attack_keys:
                case = make_case(A, B, rule, attack, d)
                end_to_end, protocol_only = run_case(
                    case, trials=trials, iterations=iterations, repeats=repeats, device=device
                )
                end_rows.append(end_to_end)
                step_rows.append(protocol_only)

    print()
    print("End to end (data draw, noise, attack, rule, error; trilemma: run_sweep):")
    print()
    print(result_table(end_rows, same_input=True))
    print()
    print("Protocol step only, on pre-drawn worker averages (trilemma: estimate_averages):")
    print()
    print(result_table(step_rows, same_input=False))
    print()
    print(
        "trilemma / floor: trilemma's time per trial over the floor's (the random draws: end to "
        "end the biases, binomial counts and Gaussian noise; protocol step the noise). "
        "trilemma / byzfl: trilemma trials/s over byzfl-loop trials/s. Mean errors: ± 1.96 "
        f"standard errors over all repeats; agree: within {AGREE_SIGMAS:g} standard errors of "
        "the difference. run_sweep also computes each trial's conditional upper bound (not for "
        "Krum, an object rule without a κ) and builds one record per trial; the byzfl loop does "
        "neither."
    )
    targeted = [r for r in end_rows if r.case.d == TARGET_DIMENSION]
    below = [r for r in targeted if r.ours_rate / r.theirs_rate < TARGET_RATIO[r.case.attack]]
    goals = ", ".join(f"{a} ≥ {t:g}×" for a, t in TARGET_RATIO.items())
    if below:
        cells = ", ".join(
            f"{r.case.rule}/{r.case.attack} ({r.ours_rate / r.theirs_rate:.1f}×)" for r in below
        )
        print(f"Below the targets at d = {TARGET_DIMENSION} ({goals}) end to end: {cells}.")
    elif targeted:
        print(f"Every end-to-end case at d = {TARGET_DIMENSION} meets its target ({goals}).")
    harness.print_footer(start)
    return 0


if __name__ == "__main__":
    sys.exit(main())

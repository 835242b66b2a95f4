"""Command line: ``trilemma account ...``, ``check ...``, ``reproduce ...``, ``run ...`` and
``demo``.

Tables for people by default, ``--json`` for scripts: strict JSON (RFC 8259), in which a number
that is not finite (a bound that does not apply, an infinite ε) is ``null``. Invalid input prints
one line
``trilemma: error: ...`` on stderr and exits with status 2, like argparse's own usage errors;
``trilemma check`` exits with status 1 when it finds a counterexample to a claimed bound.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trilemma import __version__, accountants
from trilemma._files import read_csv

if TYPE_CHECKING:
    from trilemma.dgd import RunConfig
    from trilemma.proofs_checks import CheckReport

Rows = list[dict[str, object]]


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _strict(value: object) -> object:
    """``value`` with every non-finite float (NaN, ±inf, numpy scalars included) as ``None``."""
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(item) for item in value]
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if np.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _print_rows(rows: Rows, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_strict(rows), indent=2, default=float, allow_nan=False))
        return
    if not rows:
        return
    headers = list(rows[0])
    cells = [[_format(row[key]) for key in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))


def _methods(choice: str, all_methods: Sequence[str]) -> Sequence[str]:
    return all_methods if choice == "all" else (choice,)


def _node_list(text: str) -> list[object]:
    """'0,3' -> [0, 3]; non-numeric labels stay strings."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    return [int(item) if item.lstrip("-").isdigit() else item for item in items]


def _account_dpsgd(args: argparse.Namespace) -> Rows:
    return [
        {
            "mechanism": "DP-SGD (Poisson)",
            "method": method,
            "noise_multiplier": args.sigma,
            "sample_rate": args.q,
            "steps": args.steps,
            "delta": args.delta,
            "epsilon": accountants.dpsgd_epsilon(
                noise_multiplier=args.sigma,
                sample_rate=args.q,
                steps=args.steps,
                delta=args.delta,
                method=method,
            ),
        }
        for method in _methods(args.method, ("rdp", "pld"))
    ]


def _account_gaussian(args: argparse.Namespace) -> Rows:
    return [
        {
            "mechanism": "Gaussian",
            "method": method,
            "noise_multiplier": args.sigma,
            "compositions": args.compositions,
            "delta": args.delta,
            "epsilon": accountants.gaussian_epsilon(
                noise_multiplier=args.sigma,
                delta=args.delta,
                compositions=args.compositions,
                method=method,
            ),
        }
        for method in _methods(args.method, ("analytic", "rdp", "pld"))
    ]


def _account_laplace(args: argparse.Namespace) -> Rows:
    return [
        {
            "mechanism": "Laplace",
            "method": method,
            "scale": args.scale,
            "compositions": args.compositions,
            "delta": args.delta,
            "epsilon": accountants.laplace_epsilon(
                noise_multiplier=args.scale,
                delta=args.delta,
                compositions=args.compositions,
                method=method,
            ),
        }
        for method in _methods(args.method, ("pure", "rdp", "pld"))
    ]


def _account_worker(args: argparse.Namespace) -> Rows:
    std = accountants.worker_noise_std(
        epsilon=args.epsilon,
        delta=args.delta,
        steps=args.steps,
        local_size=args.local_size,
        batch_size=args.batch_size,
        clip=args.clip,
    )
    return [
        {
            "epsilon": args.epsilon,
            "delta": args.delta,
            "steps": args.steps,
            "local_size": args.local_size,
            "batch_size": args.batch_size or args.local_size,
            "clip": args.clip,
            "noise_std": std,
        }
    ]


def _secldp_kwargs(args: argparse.Namespace) -> dict[str, object]:
    return dict(
        clip=args.clip,
        steps=args.steps,
        delta=args.delta,
        colluders=_node_list(args.colluders),
        local_size=args.local_size,
        batch_size=args.batch_size,
        sampling=args.sampling,
    )


def _account_secldp(args: argparse.Namespace) -> Rows:
    report = accountants.secldp_report(
        args.graph,
        sigma=args.sigma,
        sigma_cor=args.sigma_cor,
        method=args.method,
        **_secldp_kwargs(args),
    )
    if args.per_node:
        return [
            {
                "node": label,
                "inverse_variance": float(report.inverse_variance[i]),
                f"epsilon_{args.method}": float(report.epsilon[i]),
                "epsilon_classic": float(report.classic_epsilon[i]),
            }
            for i, label in enumerate(report.labels)
        ]
    worst = int(np.nanargmax(report.epsilon))
    rows: Rows = [
        {
            "scope": "worst node",
            "nodes": 1,
            "node": report.labels[worst],
            f"epsilon_{args.method}": report.worst_epsilon,
            "epsilon_classic": float(report.classic_epsilon[worst]),
            "max_inv_var": float(report.inverse_variance[worst]),
            "spectral_bound": float("nan"),
            "resistance_bound": float("nan"),
            "lambda2": float("nan"),
        }
    ]
    for k, part in enumerate(report.components):
        rows.append(
            {
                "scope": f"component {k}",
                "nodes": len(part.nodes),
                "node": "-",
                f"epsilon_{args.method}": float("nan"),
                "epsilon_classic": float("nan"),
                "max_inv_var": part.exact_max,
                "spectral_bound": part.spectral_bound,
                "resistance_bound": part.resistance_bound_max,
                "lambda2": part.algebraic_connectivity,
            }
        )
    return rows


def _calibrate(args: argparse.Namespace) -> Rows:
    if args.target == "dpsgd":
        sigma = accountants.calibrate_dpsgd(
            target_epsilon=args.epsilon,
            sample_rate=args.q,
            steps=args.steps,
            delta=args.delta,
            method=args.method,
        )
        return [{"target_epsilon": args.epsilon, "method": args.method, "noise_multiplier": sigma}]
    if args.target == "steps":
        steps = accountants.calibrate_dpsgd_steps(
            target_epsilon=args.epsilon,
            noise_multiplier=args.sigma,
            sample_rate=args.q,
            delta=args.delta,
            method=args.method,
        )
        return [{"target_epsilon": args.epsilon, "method": args.method, "steps": steps}]
    if args.target == "gaussian":
        sigma = accountants.calibrate_gaussian(
            target_epsilon=args.epsilon, delta=args.delta, compositions=args.compositions
        )
        return [{"target_epsilon": args.epsilon, "noise_multiplier": sigma}]
    sigma_cor = accountants.calibrate_sigma_cor(
        args.graph,
        target_epsilon=args.epsilon,
        sigma=args.sigma,
        method=args.method,
        **_secldp_kwargs(args),
    )
    return [{"target_epsilon": args.epsilon, "method": args.method, "sigma_cor": sigma_cor}]


def _demo(args: argparse.Namespace) -> Rows:
    """A tour of the accountants on the settings of the literature."""
    rows: Rows = []
    for method in ("rdp", "pld"):
        eps = accountants.dpsgd_epsilon(
            noise_multiplier=1.1, sample_rate=0.01, steps=10_000, delta=1e-5, method=method
        )
        rows.append({"question": f"DP-SGD σ=1.1 q=0.01 T=1e4 δ=1e-5 ({method})", "answer": eps})
    sigma = accountants.calibrate_dpsgd(
        target_epsilon=3.0, sample_rate=0.01, steps=10_000, delta=1e-5
    )
    rows.append({"question": "σ for ε=3 with q=0.01 T=1e4 δ=1e-5 (rdp)", "answer": sigma})
    std = accountants.worker_noise_std(
        epsilon=1.0, delta=1e-5, steps=100, local_size=500, batch_size=25, clip=1.0
    )
    rows.append({"question": "per-worker noise std, ε=1 m=500 b=25 T=100 C=1", "answer": std})
    for graph in ("ring:16", "torus:4x4", "complete:16"):
        for method in ("classic", "rdp"):
            eps = accountants.secldp_epsilon(
                graph,
                sigma=17.827,
                sigma_cor=188.0,
                clip=1.0,
                steps=3500,
                delta=1e-5,
                method=method,
            )
            rows.append(
                {"question": f"SecLDP {graph} σ=17.827 σ_cor=188 T=3500 ({method})", "answer": eps}
            )
    eps = accountants.secldp_epsilon(
        "ring:16",
        sigma=17.827,
        sigma_cor=188.0,
        clip=1.0,
        steps=3500,
        delta=1e-5,
        colluders=[0, 8],
    )
    rows.append({"question": "SecLDP ring:16 with colluders 0 and 8 (rdp)", "answer": eps})
    return rows


def _figure_names(patterns: Sequence[str]) -> list[str]:
    """Figure names matching ``patterns`` ('all', exact names or shell-style globs), in order."""
    from trilemma import reproduce

    names = reproduce.available()
    chosen: list[str] = []
    for pattern in patterns:
        matched = names if pattern == "all" else fnmatch.filter(names, pattern)
        if not matched:
            raise ValueError(f"no figure matches {pattern!r}; see `trilemma reproduce --list`")
        chosen.extend(name for name in matched if name not in chosen)
    return chosen


def _reproduce(args: argparse.Namespace) -> Rows:
    from trilemma import reproduce

    if args.list or not args.names:
        return [
            {"figure": name, "theorem": reproduce.FIGURES[name].theorem}
            for name in reproduce.available()
        ]
    rows: Rows = []
    for name in _figure_names(args.names):
        paths = reproduce.reproduce(
            name,
            out=args.out,
            size="quick" if args.quick else args.size,
            device=args.device,
            seed=args.seed,
            progress=not args.no_progress,
        )
        meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
        checks = meta["checks"]
        index = paths["index"]
        rows.append(
            {
                "figure": name,
                "png": str(paths["png"]),
                "wall_s": meta["wall_time_s"],
                "checks_passed": f"{sum(checks.values())}/{len(checks)}",
            }
        )
    if not args.json:
        print(f"figures, data and the index are in {index.parent}/ (see {index})", file=sys.stderr)
    return rows


def _setting(text: str) -> tuple[str, object]:
    """``key=value`` of ``--set``: the value is read as a TOML literal (``3``, ``0.5``,
    ``true``, ``"iid"``), ``none`` as None, anything else as a string."""
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise ValueError(f"--set {text!r} must look like key=value")
    if value.strip().lower() == "none":
        return key.strip(), None
    try:
        return key.strip(), tomllib.loads(f"value = {value}")["value"]
    except tomllib.TOMLDecodeError:
        return key.strip(), value


def _run_config(args: argparse.Namespace) -> RunConfig:
    from trilemma.dgd import RunConfig

    values = {} if args.config is None else RunConfig.from_file(args.config).to_dict()
    values.update(_setting(text) for text in args.set)
    return RunConfig.from_mapping(values)


def _run(args: argparse.Namespace) -> Rows:
    import torch.distributed as dist

    from trilemma.dgd import train
    from trilemma.dgd.distributed import initialize, launch, launched

    config = _run_config(args)  # checked here, before any process starts
    nproc = args.nproc
    if nproc < 1:
        raise ValueError(f"--nproc={nproc} must be an integer in [1, inf)")
    if nproc > 1 and not launched():
        if nproc > config.workers:
            raise ValueError(f"--nproc={nproc} exceeds the {config.workers} honest workers")
        launch(["run", *_rank_arguments(args)], nproc=nproc)
        folder = Path(args.out) / config.name
        return _final_rows(folder, read_csv(folder / "metrics.csv"), args.json)
    config = config.replace(device=initialize(config.device))
    rank = dist.get_rank() if dist.is_initialized() else 0
    try:
        result = train(config, out=args.out, resume=args.resume, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(
            f"trilemma: interrupted; continue with --resume ({Path(args.out) / config.name})",
            file=sys.stderr,
        )
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if rank or args.worker:
        return []
    return _final_rows(result.folder, result.rows, args.json)


def _rank_arguments(args: argparse.Namespace) -> list[str]:
    """The ``trilemma run`` arguments of every rank: the same run, printing nothing (this
    process reports)."""
    forwarded = [args.config] if args.config else []
    forwarded += [f"--set={text}" for text in args.set]
    forwarded += ["--out", args.out, "--worker"]
    switches = (("--resume", args.resume), ("--no-progress", args.no_progress))
    return forwarded + [flag for flag, on in switches if on]


def _final_rows(folder: Path, rows: Rows, as_json: bool) -> Rows:
    """The metrics of the last logged step, one row per seed."""
    if not as_json:
        print(f"metrics, meta.json and the checkpoint are in {folder}/", file=sys.stderr)
    last = max(row["step"] for row in rows)
    keys = ("step", "seed", "loss", "gradient_norm2", "train_accuracy", "test_accuracy")
    return [{k: row[k] for k in keys} for row in rows if row["step"] == last]


def _check(args: argparse.Namespace) -> tuple[Rows, int]:
    """The reports as rows, and the exit status: 1 if a check found a counterexample."""
    from trilemma.proofs_checks import run_checks

    def show(report: CheckReport) -> None:
        if not args.json:
            status = "ok  " if report.passed else "FAIL"
            print(f"{status} {report.name}  worst ratio {report.worst_ratio:.4g}", file=sys.stderr)

    reports = run_checks(args.group, budget=args.budget, seed=args.seed, progress=show)
    status = 1 if any(not report.passed for report in reports) else 0
    if args.json:
        return [report.as_row() for report in reports], status
    rows: Rows = [
        {
            "check": report.name,
            "result": "passed" if report.passed else "COUNTEREXAMPLE",
            "worst_ratio": report.worst_ratio,
            "examples": report.examples,
            "statement": report.statement,
        }
        for report in reports
    ]
    return rows, status


def _add_secldp_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--graph",
        required=True,
        help="ring:N, torus:RxC, complete:N, path:N, star:N, regular:D:N[:seed], "
        "er:N:P[:seed] or an .edgelist file",
    )
    parser.add_argument("--clip", type=float, default=1.0, help="clipping norm C")
    parser.add_argument("--steps", type=int, required=True, help="rounds T")
    parser.add_argument("--delta", type=float, required=True)
    parser.add_argument("--colluders", default="", help="comma-separated node labels")
    parser.add_argument(
        "--local-size", type=int, default=1, help="records per node (1: user level)"
    )
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument(
        "--sampling", choices=("without_replacement", "poisson"), default="without_replacement"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``trilemma`` command."""
    parser = argparse.ArgumentParser(
        prog="trilemma",
        description="Privacy accounting, falsification checks, theorem figures and training "
        "runs of private and Byzantine-robust distributed learning: ``account``, ``check``, "
        "``reproduce``, ``run`` and ``demo``. --json output is strict JSON (non-finite numbers "
        "are null).",
    )
    parser.add_argument("--version", action="version", version=f"trilemma {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="tour of the accountants on literature settings")
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(handler=_demo)
    _add_account(commands)
    _add_reproduce(commands)
    _add_run(commands)
    _add_check(commands)
    return parser


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="machine-readable output: strict JSON, non-finite numbers as null",
    )


def _add_account(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``trilemma account dpsgd|gaussian|laplace|worker|secldp|calibrate``."""
    account = commands.add_parser("account", help="privacy accounting")
    kinds = account.add_subparsers(dest="kind", required=True)

    dpsgd = kinds.add_parser("dpsgd", help="ε of DP-SGD with Poisson sampling")
    dpsgd.add_argument("--sigma", type=float, required=True, help="noise multiplier")
    dpsgd.add_argument("--q", type=float, required=True, help="sampling rate")
    dpsgd.add_argument("--steps", type=int, required=True)
    dpsgd.add_argument("--delta", type=float, required=True)
    dpsgd.add_argument("--method", choices=("rdp", "pld", "all"), default="all")
    dpsgd.set_defaults(handler=_account_dpsgd)

    gaussian = kinds.add_parser("gaussian", help="ε of composed Gaussian mechanisms")
    gaussian.add_argument("--sigma", type=float, required=True, help="noise multiplier")
    gaussian.add_argument("--delta", type=float, required=True)
    gaussian.add_argument("--compositions", type=int, default=1)
    gaussian.add_argument("--method", choices=("analytic", "rdp", "pld", "all"), default="all")
    gaussian.set_defaults(handler=_account_gaussian)

    laplace = kinds.add_parser("laplace", help="ε of composed Laplace mechanisms")
    laplace.add_argument("--scale", type=float, required=True, help="scale / ℓ1 sensitivity")
    laplace.add_argument("--delta", type=float, default=1e-6)
    laplace.add_argument("--compositions", type=int, default=1)
    laplace.add_argument("--method", choices=("pure", "rdp", "pld", "all"), default="all")
    laplace.set_defaults(handler=_account_laplace)

    worker = kinds.add_parser("worker", help="per-worker noise std for distributed DP")
    worker.add_argument("--epsilon", type=float, required=True)
    worker.add_argument("--delta", type=float, required=True)
    worker.add_argument("--steps", type=int, required=True)
    worker.add_argument("--local-size", type=int, required=True, help="records per worker m")
    worker.add_argument("--batch-size", type=int, default=None, help="b (default: m)")
    worker.add_argument("--clip", type=float, default=1.0)
    worker.set_defaults(handler=_account_worker)

    secldp = kinds.add_parser("secldp", help="ε of correlated-noise decentralized learning")
    _add_secldp_options(secldp)
    secldp.add_argument("--sigma", type=float, required=True, help="independent noise σ")
    secldp.add_argument("--sigma-cor", type=float, required=True, help="edge-secret noise σ_cor")
    secldp.add_argument("--method", choices=("rdp", "pld", "classic"), default="rdp")
    secldp.add_argument("--per-node", action="store_true", help="one row per node")
    secldp.set_defaults(handler=_account_secldp)

    calibrate = kinds.add_parser("calibrate", help="noise, steps or σ_cor for a target ε")
    calibrate.add_argument("target", choices=("dpsgd", "steps", "gaussian", "secldp"))
    calibrate.add_argument("--epsilon", type=float, required=True, help="target ε")
    calibrate.add_argument("--delta", type=float, required=True)
    calibrate.add_argument("--q", type=float, default=None, help="sampling rate (dpsgd, steps)")
    calibrate.add_argument("--steps", type=int, default=None)
    calibrate.add_argument("--sigma", type=float, default=None, help="noise (steps, secldp)")
    calibrate.add_argument("--compositions", type=int, default=1, help="(gaussian)")
    calibrate.add_argument("--method", choices=("rdp", "pld", "classic"), default="rdp")
    calibrate.add_argument("--graph", default=None, help="(secldp)")
    calibrate.add_argument("--clip", type=float, default=1.0)
    calibrate.add_argument("--colluders", default="")
    calibrate.add_argument("--local-size", type=int, default=1)
    calibrate.add_argument("--batch-size", type=int, default=1)
    calibrate.add_argument(
        "--sampling", choices=("without_replacement", "poisson"), default="without_replacement"
    )
    calibrate.set_defaults(handler=_calibrate)
    for sub in (dpsgd, gaussian, laplace, worker, secldp, calibrate):
        _add_json(sub)


def _add_reproduce(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    figures = commands.add_parser(
        "reproduce", help="reproduce theorem figures as PNG + CSV + meta.json"
    )
    figures.add_argument("names", nargs="*", help="figure names, globs (trilemma-*) or 'all'")
    figures.add_argument("--list", action="store_true", help="list the figures and exit")
    figures.add_argument("--quick", action="store_true", help="same as --size quick")
    figures.add_argument(
        "--size",
        choices=("tiny", "quick", "full"),
        default="full",
        help="problem sizes: quick runs in under a minute per figure, tiny in seconds",
    )
    figures.add_argument("--out", default="results", help="output folder (default: results)")
    figures.add_argument("--device", default="cpu", help="cpu or cuda[:k]")
    figures.add_argument("--seed", type=int, default=0)
    figures.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    figures.set_defaults(handler=_reproduce)
    _add_json(figures)


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        help="train robust D-GD / D-SGD / SAFE-DSHB, or decentralized D-SGD with DECOR noise "
        "(graph=...), from a config into <out>/<name>/",
        description="Train a run config (TOML or JSON; every field has a default) into "
        "<out>/<name>/ with metrics.csv, meta.json and checkpoint.pt.",
    )
    run.add_argument(
        "config", nargs="?", help="a .toml or .json run config (default: the built-in run)"
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set attack=alie --set f=3 (repeatable)",
    )
    run.add_argument("--out", default="runs", help="parent folder of the runs (default: runs)")
    run.add_argument("--resume", action="store_true", help="continue from the run's checkpoint")
    run.add_argument(
        "--nproc", type=int, default=1, help="processes (torch.distributed via torchrun)"
    )
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    run.set_defaults(handler=_run)
    _add_json(run)


def _add_check(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check", help="try to falsify the theorems and audit the accountants (hypothesis)"
    )
    check.add_argument(
        "group",
        nargs="?",
        default="all",
        choices=("robustness", "gb", "trilemma", "accountants", "audit", "all"),
    )
    check.add_argument(
        "--budget", default="small", help="small, medium, large or examples per check"
    )
    check.add_argument("--seed", type=int, default=0)
    check.set_defaults(handler=_check)
    _add_json(check)


_REQUIRED = {
    "dpsgd": ("q", "steps"),
    "steps": ("sigma", "q"),
    "secldp": ("graph", "sigma", "steps"),
    "gaussian": (),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trilemma`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "kind", None) == "calibrate":
        missing = [f"--{name}" for name in _REQUIRED[args.target] if getattr(args, name) is None]
        if missing:
            parser.error(f"calibrate {args.target} needs {', '.join(missing)}")
    handler: Callable[[argparse.Namespace], Rows | tuple[Rows, int]] = args.handler
    try:
        output = handler(args)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError) as error:
        print(f"trilemma: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    rows, status = output if isinstance(output, tuple) else (output, 0)
    _print_rows(rows, args.json)
    return status


if __name__ == "__main__":
    sys.exit(main())

"""``trilemma account dpsgd|gaussian|laplace|worker|secldp|calibrate`` and ``trilemma demo``:
privacy accounting from the command line (:mod:`trilemma.accountants`)."""

from __future__ import annotations

import argparse
from typing import Literal, TypedDict

import numpy as np

from trilemma import accountants
from trilemma.cli._common import Commands, Rows, add_json, methods, node_list

__all__ = ["add_demo_parser", "add_parser", "calibrate_error"]

_DPSGD_METHODS: tuple[Literal["rdp", "pld"], ...] = ("rdp", "pld")
_GAUSSIAN_METHODS: tuple[Literal["analytic", "rdp", "pld"], ...] = ("analytic", "rdp", "pld")
_LAPLACE_METHODS: tuple[Literal["pure", "rdp", "pld"], ...] = ("pure", "rdp", "pld")
_DEMO_SECLDP_METHODS: tuple[Literal["classic", "rdp"], ...] = ("classic", "rdp")


class _SecLDPOptions(TypedDict):
    """The keywords ``secldp`` and ``calibrate secldp`` pass to the SecLDP accountant."""

    clip: float
    steps: int
    delta: float
    colluders: list[int | str]
    local_size: int
    batch_size: int
    sampling: Literal["without_replacement", "poisson"]


def _dpsgd(args: argparse.Namespace) -> Rows:
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
        for method in methods(args.method, _DPSGD_METHODS)
    ]


def _gaussian(args: argparse.Namespace) -> Rows:
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
        for method in methods(args.method, _GAUSSIAN_METHODS)
    ]


def _laplace(args: argparse.Namespace) -> Rows:
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
        for method in methods(args.method, _LAPLACE_METHODS)
    ]


def _worker(args: argparse.Namespace) -> Rows:
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


def _secldp_options(args: argparse.Namespace) -> _SecLDPOptions:
    return _SecLDPOptions(
        clip=args.clip,
        steps=args.steps,
        delta=args.delta,
        colluders=node_list(args.colluders),
        local_size=args.local_size,
        batch_size=args.batch_size,
        sampling=args.sampling,
    )


def _secldp(args: argparse.Namespace) -> Rows:
    report = accountants.secldp_report(
        args.graph,
        sigma=args.sigma,
        sigma_cor=args.sigma_cor,
        method=args.method,
        **_secldp_options(args),
    )
    epsilon = f"epsilon_{args.method}"
    if args.per_node:
        return [
            {
                "node": label,
                "inverse_variance": float(report.inverse_variance[i]),
                epsilon: float(report.epsilon[i]),
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
            epsilon: report.worst_epsilon,
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
                epsilon: float("nan"),
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
        **_secldp_options(args),
    )
    return [{"target_epsilon": args.epsilon, "method": args.method, "sigma_cor": sigma_cor}]


_REQUIRED = {
    "dpsgd": ("q", "steps"),
    "steps": ("sigma", "q"),
    "secldp": ("graph", "sigma", "steps"),
    "gaussian": (),
}


def calibrate_error(args: argparse.Namespace) -> str | None:
    """The usage error of ``trilemma account calibrate TARGET`` without the options TARGET
    needs (None when they are all given)."""
    missing = [f"--{name}" for name in _REQUIRED[args.target] if getattr(args, name) is None]
    return f"calibrate {args.target} needs {', '.join(missing)}" if missing else None


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
        for secldp_method in _DEMO_SECLDP_METHODS:
            eps = accountants.secldp_epsilon(
                graph,
                sigma=17.827,
                sigma_cor=188.0,
                clip=1.0,
                steps=3500,
                delta=1e-5,
                method=secldp_method,
            )
            question = f"SecLDP {graph} σ=17.827 σ_cor=188 T=3500 ({secldp_method})"
            rows.append({"question": question, "answer": eps})
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


def add_demo_parser(commands: Commands) -> None:
    """``trilemma demo``."""
    demo = commands.add_parser("demo", help="tour of the accountants on literature settings")
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(handler=_demo)


def add_parser(commands: Commands) -> None:
    """``trilemma account dpsgd|gaussian|laplace|worker|secldp|calibrate``."""
    account = commands.add_parser("account", help="privacy accounting")
    kinds = account.add_subparsers(dest="kind", required=True)
    _add_central(kinds)
    _add_secldp(kinds)
    _add_calibrate(kinds)


def _add_central(kinds: Commands) -> None:
    """``dpsgd``, ``gaussian``, ``laplace`` and ``worker``."""
    dpsgd = kinds.add_parser("dpsgd", help="ε of DP-SGD with Poisson sampling")
    dpsgd.add_argument("--sigma", type=float, required=True, help="noise multiplier")
    dpsgd.add_argument("--q", type=float, required=True, help="sampling rate")
    dpsgd.add_argument("--steps", type=int, required=True)
    dpsgd.add_argument("--delta", type=float, required=True)
    dpsgd.add_argument("--method", choices=(*_DPSGD_METHODS, "all"), default="all")
    dpsgd.set_defaults(handler=_dpsgd)

    gaussian = kinds.add_parser("gaussian", help="ε of composed Gaussian mechanisms")
    gaussian.add_argument("--sigma", type=float, required=True, help="noise multiplier")
    gaussian.add_argument("--delta", type=float, required=True)
    gaussian.add_argument("--compositions", type=int, default=1)
    gaussian.add_argument("--method", choices=(*_GAUSSIAN_METHODS, "all"), default="all")
    gaussian.set_defaults(handler=_gaussian)

    laplace = kinds.add_parser("laplace", help="ε of composed Laplace mechanisms")
    laplace.add_argument("--scale", type=float, required=True, help="scale / ℓ1 sensitivity")
    laplace.add_argument("--delta", type=float, default=1e-6)
    laplace.add_argument("--compositions", type=int, default=1)
    laplace.add_argument("--method", choices=(*_LAPLACE_METHODS, "all"), default="all")
    laplace.set_defaults(handler=_laplace)

    worker = kinds.add_parser("worker", help="per-worker noise std for distributed DP")
    worker.add_argument("--epsilon", type=float, required=True)
    worker.add_argument("--delta", type=float, required=True)
    worker.add_argument("--steps", type=int, required=True)
    worker.add_argument("--local-size", type=int, required=True, help="records per worker m")
    worker.add_argument("--batch-size", type=int, default=None, help="b (default: m)")
    worker.add_argument("--clip", type=float, default=1.0)
    worker.set_defaults(handler=_worker)
    for sub in (dpsgd, gaussian, laplace, worker):
        add_json(sub)


def _add_secldp(kinds: Commands) -> None:
    """``secldp``."""
    secldp = kinds.add_parser("secldp", help="ε of correlated-noise decentralized learning")
    secldp.add_argument(
        "--graph",
        required=True,
        help="ring:N, torus:RxC, complete:N, path:N, star:N, regular:D:N[:seed], "
        "er:N:P[:seed] or an .edgelist file",
    )
    secldp.add_argument("--clip", type=float, default=1.0, help="clipping norm C")
    secldp.add_argument("--steps", type=int, required=True, help="rounds T")
    secldp.add_argument("--delta", type=float, required=True)
    secldp.add_argument("--colluders", default="", help="comma-separated node labels")
    secldp.add_argument(
        "--local-size", type=int, default=1, help="records per node (1: user level)"
    )
    secldp.add_argument("--batch-size", type=int, default=1)
    secldp.add_argument(
        "--sampling", choices=("without_replacement", "poisson"), default="without_replacement"
    )
    secldp.add_argument("--sigma", type=float, required=True, help="independent noise σ")
    secldp.add_argument("--sigma-cor", type=float, required=True, help="edge-secret noise σ_cor")
    secldp.add_argument("--method", choices=("rdp", "pld", "classic"), default="rdp")
    secldp.add_argument("--per-node", action="store_true", help="one row per node")
    secldp.set_defaults(handler=_secldp)
    add_json(secldp)


def _add_calibrate(kinds: Commands) -> None:
    """``calibrate dpsgd|steps|gaussian|secldp``."""
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
    add_json(calibrate)

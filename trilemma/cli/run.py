"""``trilemma run [CONFIG] [--set KEY=VALUE ...]``: train a run config into ``<out>/<name>/``
(:func:`trilemma.dgd.train`), on one process or, with ``--nproc``, under torchrun."""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trilemma._files import read_csv
from trilemma.cli._common import Commands, Rows, add_json

if TYPE_CHECKING:
    from trilemma.dgd import RunConfig

__all__ = ["add_parser"]


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


def _final_rows(folder: Path, rows: list[dict[str, Any]], as_json: bool) -> Rows:
    """The metrics of the last logged step, one row per seed (``rows`` as
    :func:`trilemma.dgd.train` returns them or :func:`trilemma._files.read_csv` reads them)."""
    if not as_json:
        print(f"metrics, meta.json and the checkpoint are in {folder}/", file=sys.stderr)
    last = max(row["step"] for row in rows)
    keys = ("step", "seed", "loss", "gradient_norm2", "train_accuracy", "test_accuracy")
    return [{k: row[k] for k in keys} for row in rows if row["step"] == last]


def add_parser(commands: Commands) -> None:
    """``trilemma run``."""
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
    add_json(run)

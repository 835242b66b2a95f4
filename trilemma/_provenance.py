"""Provenance of a result: the one writer of every ``meta.json``.

A figure (:func:`trilemma.reproduce.reproduce`) and a training run (:func:`trilemma.dgd.train`)
describe themselves with their own fields; :func:`write_meta` appends what says where and when
the numbers were made — package and torch versions, the device's name, the wall time and the
UTC time — and writes the file atomically.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import trilemma
from trilemma._device import device_name
from trilemma._files import write_json

__all__ = ["write_meta"]


def write_meta(
    path: str | os.PathLike[str],
    fields: Mapping[str, Any],
    *,
    device: str,
    wall_time_s: float,
    time_key: str = "created_utc",
) -> Path:
    """Write ``fields`` plus the provenance keys to ``path`` as JSON, atomically.

    Parameters
    ----------
    path : str or PathLike
        The ``meta.json`` to write.
    fields : Mapping
        The caller's own keys (config, status, checks…), written first in their order.
    device : str
        The device the numbers were computed on (``"cpu"``, ``"cuda:0"``…); its name is
        written as ``device_name``.
    wall_time_s : float
        Seconds the computation took, written rounded to milliseconds.
    time_key : str
        Key of the UTC time stamp (ISO 8601, seconds): ``"created_utc"`` for a result written
        once, ``"updated_utc"`` for a file rewritten as a run goes on.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If ``wall_time_s`` is negative or not finite, or ``fields`` already holds a
        provenance key.
    """
    wall = float(wall_time_s)
    if not math.isfinite(wall) or wall < 0:
        raise ValueError(f"wall_time_s={wall_time_s!r} must be a finite number ≥ 0")
    provenance = {
        "trilemma_version": trilemma.__version__,
        "torch_version": torch.__version__,
        "device_name": device_name(device),
        "wall_time_s": round(wall, 3),
        time_key: datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    clash = sorted(set(fields) & set(provenance))
    if clash:
        raise ValueError(f"fields must not hold the provenance keys {clash}")
    return write_json(path, {**fields, **provenance})

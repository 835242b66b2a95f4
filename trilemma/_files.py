"""Atomic result files: every file is written to a temporary sibling and renamed into place, so
an interrupted run never leaves a half-written CSV, JSON, PNG or checkpoint."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MatplotlibFigure

__all__ = ["read_csv", "save_png", "write_binary", "write_csv", "write_json", "write_text"]


def _replace(path: Path, write: Any, mode: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode) as stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_binary(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(stream)`` on a binary stream whose bytes land at ``path`` atomically (e.g.
    ``lambda stream: torch.save(state, stream)``)."""
    return _replace(Path(path), write, "wb")


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return _replace(Path(path), lambda stream: stream.write(text.encode("utf-8")), "wb")


def write_json(path: str | os.PathLike[str], payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as indented JSON atomically (non-finite floats become strings)."""
    text = json.dumps(_finite(payload), indent=2, sort_keys=False) + "\n"
    return write_text(path, text)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_csv(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write tidy ``rows`` (one dict per measurement) as CSV atomically; columns are the union
    of the keys in first-seen order."""
    rows = list(rows)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def read_csv(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`write_csv`; numbers come back as int or float."""
    with open(path, newline="", encoding="utf-8") as stream:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(stream)]


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def save_png(path: str | os.PathLike[str], figure: MatplotlibFigure, *, dpi: int = 110) -> Path:
    """Render ``figure`` to PNG atomically."""
    return _replace(Path(path), lambda stream: figure.savefig(stream, format="png", dpi=dpi), "wb")

"""The README gallery ships its data: every figure in it has PNG + CSV + meta.json in
docs/figures, computed at full size, with every check agreeing, and every decimal number a
caption quotes is a value of that figure's CSV (at the caption's precision)."""

import csv
import json
import math
import re
from pathlib import Path

import pytest

from trilemma import reproduce

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "docs" / "figures"
ROW = re.compile(r"^\| !\[\]\(docs/figures/(?P<name>[\w-]+)\.png\) \| (?P<caption>.*) \|$")
DECIMAL = re.compile(r"(?<![\w.])(\d+\.\d+)(?:·10(⁻?[⁰¹²³⁴⁵⁶⁷⁸⁹]+))?(?!\w)(?!\.\d)")
SUPERSCRIPT = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def _gallery() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return {m["name"]: m["caption"] for m in map(ROW.match, text.splitlines()) if m}


def _csv_numbers(name: str) -> list[float]:
    with (FIGURES / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        values = []
        for row in csv.DictReader(handle):
            for cell in row.values():
                try:
                    values.append(float(cell))
                except (TypeError, ValueError):
                    continue
    return [v for v in values if math.isfinite(v)]


def test_the_gallery_shows_every_registered_figure():
    assert sorted(_gallery()) == sorted(reproduce.available())


@pytest.mark.parametrize("name", sorted(_gallery()))
def test_gallery_figure_ships_png_csv_and_agreeing_meta(name):
    png, table, meta_path = (FIGURES / f"{name}{ext}" for ext in (".png", ".csv", ".meta.json"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert table.stat().st_size > 0
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    assert meta["figure"] == name and meta["settings"]["size"] == "full"
    assert meta["checks"], f"{name} declares no check"
    assert all(meta["checks"].values()), {s: ok for s, ok in meta["checks"].items() if not ok}


@pytest.mark.parametrize("name", sorted(_gallery()))
def test_caption_numbers_are_in_the_csv(name):
    caption = _gallery()[name]
    values = _csv_numbers(name)
    missing = []
    for text, exponent in DECIMAL.findall(caption):
        scale = 10.0 ** int(exponent.translate(SUPERSCRIPT)) if exponent else 1.0
        places = len(text.split(".")[1])
        quoted = float(text) * scale
        tolerance = (0.5 * 10**-places + 1e-12) * scale
        if not any(abs(abs(v) - quoted) <= tolerance for v in values):
            missing.append(text)
    assert not missing, f"{name}: caption numbers not in its CSV: {missing}"

"""The README section "Using trilemma with Flower / Opacus": its ``py`` blocks run (they hold
their own asserts). They are fenced ``py``, not ``python``, so that tests/test_readme.py, which
runs every ``python`` block without the extras, leaves them to this file."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "## Using trilemma with Flower / Opacus"


def section_blocks(text: str) -> list[str]:
    """The ``py`` blocks of the section that starts at HEADING and ends at the next ``## ``."""
    assert HEADING in text, f"README.md has no section {HEADING!r}"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```py\n(.*?)```", section, flags=re.S)


def blocks() -> list[str]:
    return section_blocks(README.read_text(encoding="utf-8"))


def test_the_section_has_a_flower_and_an_opacus_block():
    flower, opacus = blocks()
    assert "RobustStrategy" in flower and "run_simulation" in flower
    assert "TrilemmaPrivacyEngine" in opacus and "get_epsilon" in opacus


def test_the_flower_block_runs():
    pytest.importorskip("flwr", reason="needs the 'flower' extra: pip install -e '.[flower]'")
    pytest.importorskip("ray", reason="Flower's simulation engine needs the 'flower' extra")
    exec(compile(blocks()[0], str(README), "exec"), {})


def test_the_opacus_block_runs():
    pytest.importorskip("opacus", reason="needs the 'opacus' extra: pip install -e '.[opacus]'")
    exec(compile(blocks()[1], str(README), "exec"), {})

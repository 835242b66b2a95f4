"""The README section "Extending trilemma": its ```py blocks run, in order, in one namespace
(they contain their own asserts); what they register is removed afterwards.

The blocks are fenced ``py`` rather than ``python`` so that ``tests/test_readme.py``, which runs
the README's ``python`` blocks, does not run them a second time.
"""

import re
from pathlib import Path

import pytest

from trilemma.aggregators import registry as rule_registry
from trilemma.attacks import registry as attack_registry
from trilemma.reproduce import FIGURES

README = Path(__file__).resolve().parents[1] / "README.md"
HEADING = "## Extending trilemma"


def section() -> str | None:
    """The text from the heading to the next level-2 heading (``# `` may start a code comment)."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(HEADING)}[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return None if match is None else match.group(1)


def py_blocks(text: str) -> list[str]:
    return re.findall(r"^```py\n(.*?)^```", text, flags=re.M | re.S)


@pytest.fixture
def registries():
    """Snapshot the rule, attack and figure registries; restore them after the test."""
    saved = (
        dict(rule_registry._REGISTRY),
        dict(attack_registry._REGISTRY),
        set(attack_registry._NEEDS_RULE),
        dict(FIGURES),
    )
    yield
    for live, old in zip(
        (rule_registry._REGISTRY, attack_registry._REGISTRY, attack_registry._NEEDS_RULE, FIGURES),
        saved,
        strict=True,
    ):
        live.clear()
        live.update(old)


def test_the_extending_section_shows_a_rule_an_attack_a_figure_and_an_event():
    text = section()
    assert text is not None, f"README.md has no {HEADING!r} section"
    blocks = py_blocks(text)
    assert len(blocks) >= 4
    for needle in ("aggregators.register", "attacks.register", "Figure(", "DpEvent"):
        assert any(needle in block for block in blocks), needle


def test_the_extending_blocks_run(registries):
    text = section()
    assert text is not None, f"README.md has no {HEADING!r} section"
    namespace: dict[str, object] = {}
    for block in py_blocks(text):
        exec(compile(block, str(README), "exec"), namespace)
    assert "lower-median" in rule_registry.available("rules")
    assert "mirror" in attack_registry.available()
    assert "mean-vs-median" in FIGURES

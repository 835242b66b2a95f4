"""Shared fixtures: the rules under the contract, and byzfl loaded without its heavy imports."""

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="session")
def byzfl():
    """byzfl's aggregator modules (loaded as in the benchmarks, see benchmarks/_byzfl.py)."""
    spec = importlib.util.spec_from_file_location("_byzfl", BENCHMARKS / "_byzfl.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_byzfl()

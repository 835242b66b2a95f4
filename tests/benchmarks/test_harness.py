"""The shared benchmark helpers (``benchmarks/_harness.py``) and the contention script's logic."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import pytest
import torch

from trilemma._threads import usable_cores

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _harness as harness
import bench_contention as contention


class Clock:
    """A fake ``time.perf_counter`` that each recorded call advances by its own duration."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _side(clock: Clock, durations: list[float], log: list[tuple[str, int]], name: str):
    """A side whose k-th call takes ``durations[k]`` seconds on ``clock`` and logs its index."""

    def run(index: int) -> str:
        log.append((name, index))
        clock.now += durations[len([e for e in log if e[0] == name]) - 1]
        return f"{name}{index}"

    return harness.Side(run)


def test_best_of_warms_up_interleaves_and_keeps_the_best(monkeypatch) -> None:
    clock, log = Clock(), []
    monkeypatch.setattr(harness.time, "perf_counter", clock)
    a = _side(clock, [9.0, 3.0, 1.0, 2.0], log, "a")  # warm-up 9 s > SLOW_S: one timed call
    b = _side(clock, [1.0, 4.0, 0.5, 2.0], log, "b")
    first, second = harness.best_of([a, b], 3, keep="timed")
    assert log == [("a", -1), ("b", -1), ("a", 0), ("b", 0), ("b", 1), ("b", 2)]
    assert (first.runs, first.seconds, first.warm_up_s) == (1, 3.0, 9.0)
    assert (second.runs, second.seconds, second.warm_up_s) == (3, 0.5, 1.0)
    assert second.outputs == ["b0", "b1", "b2"]


def test_best_of_without_warm_up_times_the_cold_call(monkeypatch) -> None:
    clock, log = Clock(), []
    monkeypatch.setattr(harness.time, "perf_counter", clock)
    (only,) = harness.best_of([_side(clock, [0.5, 2.0], log, "a")], 2, warm_up=False)
    assert log == [("a", 0), ("a", 1)]
    assert only.seconds == 0.5 and math.isnan(only.warm_up_s)


def test_best_of_prepares_arguments_outside_the_timer(monkeypatch) -> None:
    clock = Clock()
    monkeypatch.setattr(harness.time, "perf_counter", clock)

    def prepare(index: int) -> int:
        clock.now += 100.0  # an expensive copy, not timed
        return index

    def run(index: int) -> int:
        clock.now += 1.0
        return index

    (timing,) = harness.best_of([harness.Side(run, prepare)], 2, keep="warm-up")
    assert timing.seconds == 1.0 and timing.outputs == [-1]


def test_floor_sides_compute_what_they_name() -> None:
    x = torch.arange(12.0).reshape(2, 2, 3)
    timer = harness.Timer()
    _, total = timer.call(harness.read_side(x).run, harness.read_side(x).prepare(0))
    assert float(total) == 66.0
    copy_side = harness.read_write_side(x)
    _, copied = timer.call(copy_side.run, copy_side.prepare(0))
    assert torch.equal(copied, x) and copied.data_ptr() != x.data_ptr()
    _, gram = timer.call(harness.gram_side(x).run, x)
    assert torch.equal(gram, torch.einsum("bid,bjd->bij", x, x))
    small, large = torch.ones(64, 1000), torch.ones(64, 400_000)
    assert harness.read_floor(large, timer) > harness.read_floor(small, timer)


def test_markdown_table_and_formats() -> None:
    table = harness.markdown_table(["a", "b"], [["x", "1"]], align="lr")
    assert table == "| a | b |\n|---|---:|\n| x | 1 |"
    with pytest.raises(ValueError, match="align"):
        harness.markdown_table(["a"], [], align="c")
    with pytest.raises(ValueError, match="cells"):
        harness.markdown_table(["a", "b"], [["x"]])
    assert (harness.ms(0.0123), harness.ms(1.5), harness.ms(math.nan)) == ("12.3", "1500", "—")
    assert (harness.times(2.345), harness.times(14.25)) == ("2.35", "14.2")
    assert (harness.rate(12345.6), harness.rate(12.34)) == ("12,346", "12.3")


def test_parser_resolves_repeats_and_devices(capsys) -> None:
    parser = harness.make_parser("Title line.\n\nMore.", repeats=3, quick_repeats=1, quick="q")
    assert parser.description == "Title line."
    assert harness.parse(parser, []).repeats == 3
    assert harness.parse(parser, ["--quick"]).repeats == 1
    assert harness.parse(parser, ["--quick", "--repeats", "5"]).repeats == 5
    assert harness.parse(parser, []).device == torch.device("cpu")
    for bad in (["--repeats", "0"], ["--device", "tpu"], ["--device", "nonsense:x"]):
        with pytest.raises(SystemExit):
            harness.parse(parser, bad)
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            harness.parse(parser, ["--device", "cuda"])
        assert "sees no CUDA device" in capsys.readouterr().err
    timeless = harness.make_parser(None, repeats=None, quick="q")
    assert not hasattr(harness.parse(timeless, []), "repeats")


def test_contention_table_ratios_and_verdicts() -> None:
    def level(k: int, wall: float, cpu: float) -> contention.Level:
        return contention.Level(k, tuple(contention.Outcome(wall, cpu, 0) for _ in range(k)), 0.5)

    solo = level(1, 10.0, 10.0)
    table = contention.table([solo, level(2, 24.0, 11.0), level(3, 41.0, 10.0)])
    lines = table.splitlines()
    fair = harness.times(max(1.0, 2 / usable_cores()))  # a solo run keeps one core busy
    assert lines[3].split(" | ")[1:5] == ["24.0", "2.40", "≤ 2.5× (met)", fair]
    assert lines[4].split(" | ")[2:4] == ["4.10", "≤ 4× (missed)"]
    assert lines[3].split(" | ")[6] == "1.10"  # CPU per copy over solo


BURN = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass"


@pytest.mark.parametrize(
    ("code", "cpu_low", "cpu_high"),
    [
        ("import time; time.sleep(0.4)", 0.0, 0.3),
        (
            "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass",
            0.35,
            5,
        ),
    ],
)
def test_run_copies_measures_each_copy(monkeypatch, code, cpu_low, cpu_high) -> None:
    monkeypatch.setattr(contention, "command", lambda figure, out: [sys.executable, "-c", code])
    start = time.perf_counter()
    level = contention.run_copies("any", 2, dict(os.environ))
    assert len(level.outcomes) == 2
    for outcome in level.outcomes:
        assert outcome.status == 0
        assert 0.35 <= outcome.wall_s <= time.perf_counter() - start
        assert cpu_low <= outcome.cpu_s <= cpu_high


def test_run_copies_reports_a_failed_copy(monkeypatch) -> None:
    code = "import sys; sys.exit(3)"
    monkeypatch.setattr(contention, "command", lambda figure, out: [sys.executable, "-c", code])
    with pytest.raises(RuntimeError, match=r"2 of 2 copies of any failed: \[3, 3\]"):
        contention.run_copies("any", 2, dict(os.environ))

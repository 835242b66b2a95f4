"""What a check returns, and the hypothesis-driven search every check runs.

A check states one theorem as a ratio observed/claimed that the theorem says is ≤ 1, searches
the inputs for the largest ratio in two stages — hypothesis draws the structure (guided by
:func:`hypothesis.target`), then :func:`~trilemma.proofs_checks.refine.refine` moves the best
candidates continuously with scipy.optimize and re-evaluates the end point exactly — and
returns a :class:`CheckReport`: the statement, its source, how many inputs were evaluated, the
worst ratio found and, if it exceeds 1 beyond a relative tolerance, the counterexample.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings, target
from hypothesis import seed as hypothesis_seed
from hypothesis.strategies import SearchStrategy

from trilemma._validation import check_int
from trilemma.proofs_checks.refine import Refinement, refine

__all__ = ["BUDGETS", "CheckReport", "examples_for", "maximise", "refinement_plan"]

#: examples per check for the named budgets of ``trilemma check --budget``.
BUDGETS: Mapping[str, int] = {"small": 25, "medium": 200, "large": 2000}

#: continuous stage per hypothesis example: objective evaluations, and candidates refined.
REFINE_EVALUATIONS_PER_EXAMPLE = 200
REFINE_CANDIDATES_PER_EXAMPLE = 1 / 25

#: relative slack of floating-point evaluation: a ratio ≤ 1 + TOLERANCE passes.
TOLERANCE = 1e-9


def examples_for(budget: str | int) -> int:
    """Examples per check: a name of :data:`BUDGETS` or a positive integer.

    Examples
    --------
    >>> examples_for("small"), examples_for(7)
    (25, 7)
    """
    if isinstance(budget, str):
        if budget.isdigit():
            return check_int("budget", int(budget), low=1)
        if budget not in BUDGETS:
            raise ValueError(f"budget={budget!r} must be one of {sorted(BUDGETS)} or an integer")
        return BUDGETS[budget]
    return check_int("budget", budget, low=1)


@dataclass(frozen=True)
class CheckReport:
    """The outcome of one check.

    Attributes
    ----------
    name, statement, source : str
        Short name, the claim in words, and where the claim comes from.
    examples : int
        Inputs tried.
    worst_ratio : float
        Largest observed/claimed found (≤ 1 when the claim held on every input).
    counterexample : mapping or None
        The input of the worst ratio when it exceeds 1 + tolerance.
    details : mapping
        Extra facts (e.g. where the worst ratio was found).
    """

    name: str
    statement: str
    source: str
    examples: int
    worst_ratio: float
    counterexample: Mapping[str, Any] | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """No counterexample found."""
        return self.counterexample is None

    def as_row(self) -> dict[str, Any]:
        """A flat row for tables and JSON."""
        return {
            "check": self.name,
            "passed": self.passed,
            "worst_ratio": self.worst_ratio,
            "examples": self.examples,
            "statement": self.statement,
            "source": self.source,
            "counterexample": dict(self.counterexample) if self.counterexample else None,
        }


def refinement_plan(examples: int) -> tuple[int, int]:
    """(candidates refined, objective evaluations of the continuous stage) for a budget of
    ``examples`` hypothesis examples: one candidate per 25 examples (at least 1) and 200
    evaluations per example, so every budget keeps its meaning (small: 1 candidate, 5000
    evaluations; medium: 8, 40 000; large: 80, 400 000). A batched objective evaluates them
    in populations (one call per generation).

    Examples
    --------
    >>> refinement_plan(25), refinement_plan(200)
    ((1, 5000), (8, 40000))
    """
    examples = check_int("examples", examples, low=1)
    candidates = max(1, round(examples * REFINE_CANDIDATES_PER_EXAMPLE))
    return candidates, examples * REFINE_EVALUATIONS_PER_EXAMPLE


def maximise(
    strategy: SearchStrategy[Any],
    objective: Callable[[Any], tuple[float, Mapping[str, Any]]],
    *,
    examples: int,
    seed: int,
    refinement: Refinement | Sequence[Refinement] | None = None,
) -> tuple[float, Mapping[str, Any] | None, int]:
    """Search ``strategy`` for the input maximising ``objective``'s ratio.

    ``objective(example)`` returns ``(ratio, description)``; finite ratios guide the search
    through :func:`hypothesis.target`. No shrinking: the worst input seen is kept as is. With a
    ``refinement`` (or several, sharing the budget by their ``share``), the best candidates
    (:func:`refinement_plan`) are then moved continuously by
    :func:`~trilemma.proofs_checks.refine.refine`; the exactly re-evaluated end points compete
    with the hypothesis examples.

    Returns
    -------
    tuple
        (worst ratio, description of its input, number of objective evaluations).
    """
    worst: dict[str, Any] = {"ratio": -math.inf, "input": None, "count": 0}
    keep, budget = refinement_plan(examples) if refinement is not None else (0, 0)
    best: list[tuple[float, int, Any]] = []  # min-heap of the `keep` best finite ratios
    tie = itertools.count()

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=(Phase.generate, Phase.target),
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(example: Any) -> None:
        ratio, description = objective(example)
        worst["count"] += 1
        if math.isfinite(ratio):
            target(ratio, label="observed/claimed")
        if ratio > worst["ratio"] or math.isnan(ratio):
            worst.update(ratio=ratio, input=description)
        if keep and math.isfinite(ratio) and ratio > 0:
            entry = (ratio, next(tie), example)
            if len(best) < keep:
                heapq.heappush(best, entry)
            elif ratio > best[0][0]:
                heapq.heapreplace(best, entry)

    run()
    stages = [refinement] if isinstance(refinement, Refinement) else list(refinement or ())
    total = sum(stage.share for stage in stages)
    starts = [example for _, _, example in sorted(best, reverse=True)]
    for stage in stages if starts else ():
        ratio, description, spent = refine(
            objective, starts, stage, evaluations=int(budget * stage.share / total), seed=seed
        )
        worst["count"] += spent
        if ratio > worst["ratio"] or math.isnan(ratio):
            worst.update(ratio=ratio, input=description)
    return worst["ratio"], worst["input"], worst["count"]


def report(
    *,
    name: str,
    statement: str,
    source: str,
    outcome: tuple[float, Mapping[str, Any] | None, int],
    details: Mapping[str, Any] | None = None,
) -> CheckReport:
    """A :class:`CheckReport` from the result of :func:`maximise`."""
    ratio, description, count = outcome
    failed = math.isnan(ratio) or ratio > 1.0 + TOLERANCE
    return CheckReport(
        name=name,
        statement=statement,
        source=source,
        examples=count,
        worst_ratio=ratio,
        counterexample=description if failed else None,
        details={} if details is None else dict(details),
    )

"""Shape of robust D-GD on heterogeneous digits, at small sizes (Allouah et al., NeurIPS 2023,
arXiv:2309.13591; NNM: Allouah et al., AISTATS 2023, arXiv:2302.01772).

Digits split with extreme heterogeneity (worker i holds digit i), 10 honest workers × 30
examples, multinomial logistic regression (λ = 1e-3), D-GD with γ = 0.5 for 60 steps. The
error of a rule at f is its best training loss, worst case over four attacks (sign flipping,
FOE, label flipping, ALIE): the robustness guarantees are worst-case statements. Measured
(worst-case best loss, f = 0..3):

    cwtm        0.120  0.810  2.129  2.303
    nnm>>cwtm   0.120  0.846  1.382  1.896
    cwmed       0.666  1.243  2.298  2.303
    nnm>>cwmed  0.120  0.846  1.382  1.898

Per attack NNM is not always better: under FOE and label flipping NNM∘CWTM ends above CWTM
(e.g. FOE f = 2: 0.87 vs 0.64 at 50 examples a worker), under ALIE and sign flipping (f ≥ 2)
below; at f = 1 its worst case is 4 % above CWTM's, within the 10 % tolerance asserted.
"""

from __future__ import annotations

import itertools
from functools import cache

import pytest

from trilemma import dgd

ATTACKS = ("sign_flipping", "foe", "label_flipping", "alie")
FS = (0, 1, 2, 3)


@cache
def _problem() -> dgd.SoftmaxRegression:
    data = dgd.load_classification("digits")
    features, labels = dgd.split_workers(data, workers=10, per_worker=30, kind="extreme")
    return dgd.SoftmaxRegression(features, labels, classes=10, ridge=1e-3)


@cache
def _worst_best_loss(rule: str, f: int) -> float:
    problem = _problem()
    losses = [
        float(
            dgd.robust_dgd(problem, rule=rule, f=f, attack=attack, steps=60, lr=0.5).objective.min()
        )
        for attack in (ATTACKS if f else (None,))
    ]
    return max(losses)


@pytest.mark.parametrize("rule", ["cwtm", "cwmed", "nnm>>cwtm", "nnm>>cwmed"])
def test_the_error_does_not_decrease_as_f_grows(rule):
    errors = [_worst_best_loss(rule, f) for f in FS]
    assert all(later >= earlier for earlier, later in itertools.pairwise(errors)), errors
    assert errors[-1] > 2 * errors[0]


@pytest.mark.parametrize("rule", ["cwtm", "cwmed"])
def test_nnm_is_no_worse_than_the_rule_alone(rule):
    for f in FS:
        alone, mixed = _worst_best_loss(rule, f), _worst_best_loss(f"nnm>>{rule}", f)
        assert mixed <= 1.1 * alone, (f, mixed, alone)

"""Contract every registered attack satisfies: shapes, dtype/device, f = 0, batching, errors."""

import numpy as np
import pytest
import torch

from trilemma import attacks

DETERMINISTIC = [name for name in attacks.available() if name != "gaussian"]
CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    ],
)


def _mean_rule(x):
    return x.mean(dim=-2)


def make(name):
    """An instance of every registered attack, with the parameters it needs."""
    if name.startswith("optimal"):
        return attacks.get(name, rule=_mean_rule, candidates=[0.0, 0.5, 2.0])
    if name == "gaussian":
        return attacks.get(name, generator=torch.Generator().manual_seed(0))
    return attacks.get(name)


def _honest(shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)


def test_registry_lists_the_attacks_and_aliases():
    assert set(attacks.available()) == {
        "alie",
        "foe",
        "gaussian",
        "huge",
        "inf",
        "ipm",
        "mimic",
        "nan",
        "optimal_alie",
        "optimal_foe",
        "optimal_shift",
        "shift",
        "sign_flipping",
    }
    assert list(attacks.available()) == sorted(attacks.available())
    assert isinstance(attacks.get("ipm"), attacks.FOE)
    assert attacks.get("foe", tau=0.3) == attacks.FOE(tau=0.3)
    assert attacks.get("alie", z=1.0) is not attacks.get("alie", z=1.0)


def test_registry_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"name='krum' is not valid; choose one of: 'alie'"):
        attacks.get("krum")
    with pytest.raises(TypeError):
        attacks.get("foe", epsilon=0.1)


@pytest.mark.parametrize("name", attacks.available())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_shape_dtype_device(name, dtype, device):
    honest = _honest((2, 3, 6, 4), dtype).to(device)
    out = make(name)(honest, 3)
    assert out.shape == (2, 3, 3, 4)
    assert out.dtype == dtype
    assert out.device == honest.device


@pytest.mark.parametrize("name", attacks.available())
def test_f_zero_gives_empty_vectors(name):
    honest = _honest((5, 6, 4), torch.float32)
    out = make(name)(honest, 0)
    assert out.shape == (5, 0, 4)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_batched_equals_looped(name):
    honest = _honest((3, 2, 7, 5))
    attack = make(name)
    batched = attack(honest, 2)
    looped = torch.stack(
        [torch.stack([attack(honest[i, j], 2) for j in range(2)]) for i in range(3)]
    )
    torch.testing.assert_close(batched, looped, rtol=1e-12, atol=0.0, equal_nan=True)


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_numpy_input_and_no_aliasing(name):
    array = _honest((6, 3)).numpy()
    before = array.copy()
    out = make(name)(array, 2)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float64
    expected = make(name)(torch.from_numpy(before), 2)
    torch.testing.assert_close(out, expected, equal_nan=True)
    out.fill_(7.0)  # writing into the result must not touch the honest input
    np.testing.assert_array_equal(array, before)


@pytest.mark.parametrize("name", attacks.available())
def test_bad_inputs_name_the_argument(name):
    attack = make(name)
    honest = _honest((6, 3))
    with pytest.raises(ValueError, match=r"f=-1 must be an integer in \[0, inf\)"):
        attack(honest, -1)
    with pytest.raises(TypeError, match="f must be an integer"):
        attack(honest, 1.5)
    with pytest.raises(ValueError, match=r"honest must have shape \(\.\.\., h, d\).*\(3,\)"):
        attack(honest[0], 1)
    with pytest.raises(TypeError, match="honest must have a floating dtype"):
        attack(torch.ones(6, 3, dtype=torch.int64), 1)
    with pytest.raises(ValueError, match="honest must hold h >= 1"):
        attack(torch.ones(0, 3), 1)


@pytest.mark.parametrize(
    ("name", "param"),
    [("foe", "tau"), ("alie", "z"), ("shift", "tau"), ("gaussian", "mean"), ("huge", "value")],
)
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_parameters_are_rejected(name, param, value):
    with pytest.raises(ValueError, match=f"{param}="):
        attacks.get(name, **{param: value})


def test_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        attacks.FOE(0.5)


def test_resolve_builds_the_line_search_attacks_against_the_rule():
    grid = torch.tensor([0.0, 1.0, 4.0], dtype=torch.float64)
    built = attacks.resolve("optimal_foe", rule=_mean_rule, candidates=grid)
    assert isinstance(built, attacks.OptimalFOE) and built.rule is _mean_rule
    torch.testing.assert_close(built.candidates, grid)
    default = attacks.resolve("optimal_alie", rule=_mean_rule)
    torch.testing.assert_close(default.candidates, attacks.default_candidates())
    assert attacks.resolve("ipm", rule=_mean_rule) == attacks.FOE()


def test_resolve_strongest_is_the_worse_of_optimal_alie_and_shift():
    grid = [0.5, 3.0]
    strongest = attacks.resolve("strongest", rule=_mean_rule, candidates=grid)
    assert isinstance(strongest, attacks.Strongest)
    assert [type(a) for a in strongest.attacks] == [attacks.OptimalALIE, attacks.OptimalShift]
    honest = _honest((5, 6, 3), seed=3)
    by_hand = attacks.Strongest(
        rule=_mean_rule,
        attacks=(
            attacks.OptimalALIE(rule=_mean_rule, candidates=grid),
            attacks.OptimalShift(rule=_mean_rule, candidates=grid),
        ),
    )
    torch.testing.assert_close(strongest(honest, 2), by_hand(honest, 2), rtol=0, atol=0)


def test_resolve_passes_through_and_names_label_flipping():
    attack = attacks.SignFlipping()
    assert attacks.resolve(attack, rule=_mean_rule) is attack
    assert attacks.resolve(None, rule=_mean_rule) is None
    flipping = attacks.resolve(attacks.LABEL_FLIPPING, rule=_mean_rule)
    assert isinstance(flipping, attacks.LabelFlipping)
    assert flipping.flip(torch.tensor([0, 1, 4]), 5).tolist() == [4, 3, 0]


def test_resolve_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"attack='strongest' is not valid; choose one of: 'alie'"):
        attacks.resolve("strongest", rule=_mean_rule, choices=("alie",))
    with pytest.raises(ValueError, match=r"attack='krum' is not valid.*'label_flipping'"):
        attacks.resolve("krum", rule=_mean_rule)
    with pytest.raises(TypeError, match="attack must be a name, an Attack or None, got int"):
        attacks.resolve(3, rule=_mean_rule)


def test_a_registered_attack_needing_the_rule_gets_it():
    from trilemma.attacks import registry

    @attacks.register("away-from-rule", needs_rule=True)
    class AwayFromRule(attacks.Attack):
        def __init__(self, rule, candidates=None):
            self.rule, self.candidates = rule, candidates

        def _forward(self, honest, f):
            return (
                (2 * honest.mean(dim=-2) - self.rule(honest))
                .unsqueeze(-2)
                .expand(*honest.shape[:-2], f, honest.shape[-1])
            )

    try:
        built = attacks.resolve("away-from-rule", rule=_mean_rule, candidates=[1.0])
        assert built.rule is _mean_rule and built.candidates == [1.0]
        assert "away-from-rule" in attacks.available()
        honest = _honest((4, 3))
        torch.testing.assert_close(built(honest, 2), honest.mean(dim=0).expand(2, 3))
        with pytest.raises(ValueError, match="name='away-from-rule' is already registered"):
            attacks.register("away-from-rule")(AwayFromRule)
        with pytest.raises(ValueError, match="name='strongest' is already registered"):
            attacks.register("strongest")(AwayFromRule)
    finally:
        registry._REGISTRY.pop("away-from-rule")
        registry._NEEDS_RULE.discard("away-from-rule")

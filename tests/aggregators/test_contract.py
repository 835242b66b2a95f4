"""One contract every rule honours: shapes, dtypes, batching, permutations, (n, f) errors and
Byzantine garbage."""

import numpy as np
import pytest
import torch

from trilemma.aggregators import Aggregator, available, get, register

# (name, parameters, n, f) — sizes each rule accepts; MDA/SMEA enumerate subsets, kept small
RULES = [
    ("mean", {}, 7, 2),
    ("cwmed", {}, 7, 2),
    ("cwtm", {}, 7, 2),
    ("meamed", {}, 7, 2),
    ("gm", {}, 7, 2),
    ("krum", {}, 7, 2),
    ("krum", {"neighbours": "n-f-1"}, 7, 2),
    ("multikrum", {}, 7, 2),
    ("mda", {}, 7, 2),
    ("bulyan", {}, 11, 2),
    ("cc", {"tau": 1.0, "iterations": 3}, 7, 2),
    ("monna", {}, 7, 2),
    ("caf", {}, 7, 2),
    ("smea", {}, 7, 2),
    ("nnm>>cwtm", {}, 7, 2),
    ("arc>>cwmed", {}, 7, 2),
    ("clip>>krum", {}, 7, 2),
    ("bucketing>>cwmed", {}, 12, 1),
]
IDS = [f"{name}{'-' + '-'.join(map(str, p.values())) if p else ''}" for name, p, _, _ in RULES]
# Rules whose output depends on the order of the rows, by design
ORDER_DEPENDENT = {"monna", "bucketing>>cwmed"}
RANDOM = {"bucketing>>cwmed"}
# With f = 0 these rules average everything
MEAN_AT_F0 = {"mean", "cwtm", "meamed", "mda", "smea", "multikrum", "caf", "bulyan"}


def make(name, params, f):
    if name.startswith("bucketing"):
        params = dict(params)
        rule = get("cwmed", f=f)
        from trilemma.aggregators import Bucketing

        return Bucketing(f=f, s=2, generator=torch.Generator().manual_seed(0)) >> rule
    return get(name, f=f, **params)


def sample(shape, dtype=torch.float64, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_every_registered_rule_is_under_contract():
    covered = {part for name, *_ in RULES for part in name.split(">>")}
    assert covered == set(available())


@pytest.mark.parametrize(("name", "params", "n", "f"), RULES, ids=IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_and_numpy(name, params, n, f, dtype):
    rule = make(name, params, f)
    out = rule(sample((2, 3, n, 5), dtype))
    assert out.shape == (2, 3, 5) and out.dtype == dtype and out.device.type == "cpu"
    assert torch.isfinite(out).all()
    from_numpy = make(name, params, f)(sample((n, 5), dtype).numpy())
    assert isinstance(from_numpy, torch.Tensor) and from_numpy.shape == (5,)


# Random buckets draw one permutation per batch element, so a batch cannot equal a loop that
# reseeds; bucketing's batching is tested by test_bucketing_partitions_the_workers instead.
DETERMINISTIC = [(rule, i) for rule, i in zip(RULES, IDS, strict=True) if rule[0] not in RANDOM]
# Row order matters by design for these; MoNNA has its own invariance test below.
ORDER_FREE = [
    (rule, i) for rule, i in zip(RULES, IDS, strict=True) if rule[0] not in ORDER_DEPENDENT
]


@pytest.mark.parametrize(
    ("name", "params", "n", "f"), [r for r, _ in DETERMINISTIC], ids=[i for _, i in DETERMINISTIC]
)
def test_batched_equals_looped(name, params, n, f):
    x = sample((4, n, 6))
    batched = make(name, params, f)(x)
    looped = torch.stack([make(name, params, f)(row) for row in x])
    torch.testing.assert_close(batched, looped, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("name", "params", "n", "f"), [r for r, _ in ORDER_FREE], ids=[i for _, i in ORDER_FREE]
)
def test_permutation_invariance(name, params, n, f):
    x = sample((n, 4), seed=1)
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(2))
    rule = make(name, params, f)
    torch.testing.assert_close(rule(x[permutation]), rule(x), rtol=1e-9, atol=1e-9)


def test_monna_is_invariant_to_the_order_of_the_others():
    x = sample((7, 4), seed=3)
    others = torch.tensor([0, 6, 5, 4, 3, 2, 1])  # pivot 0 stays first
    rule = get("monna", f=2)
    torch.testing.assert_close(rule(x[others]), rule(x))


@pytest.mark.parametrize(("name", "params", "n", "f"), RULES, ids=IDS)
def test_f_zero(name, params, n, f):
    x = sample((n, 3), seed=4)
    out = make(name, params, 0)(x)
    if name in MEAN_AT_F0:
        torch.testing.assert_close(out, x.mean(dim=0))
    else:
        assert torch.isfinite(out).all()


@pytest.mark.parametrize(("name", "params", "n", "f"), RULES, ids=IDS)
def test_too_many_byzantine_workers(name, params, n, f):
    rule = make(name, params, f)
    n_bad = 2 * f if name != "bulyan" else 4 * f + 2
    with pytest.raises(ValueError, match=rf"f={f} needs n ≥ \d+ workers, got n={n_bad}"):
        rule(sample((n_bad, 3)))


def test_error_messages_name_the_constraint():
    with pytest.raises(ValueError, match=r"2f < n fails: 2f=6 ≥ n=6"):
        get("cwtm", f=3)(torch.zeros(6, 2))
    with pytest.raises(ValueError, match=r"bulyan with f=2 needs n ≥ 11 workers, got n=10"):
        get("bulyan", f=2)(torch.zeros(10, 2))
    with pytest.raises(ValueError, match="f=-1 must be an integer"):
        get("cwtm", f=-1)
    with pytest.raises(ValueError, match="name='median' is not valid"):
        get("median")
    with pytest.raises(ValueError, match=r"shape \(..., n, d\)"):
        get("cwtm", f=0)(torch.zeros(5))
    with pytest.raises(TypeError, match=r"torch\.Tensor or numpy array"):
        get("cwtm", f=0)([[1.0, 2.0]])


GARBAGE = {
    "nan": float("nan"),
    "+inf": float("inf"),
    "-inf": -float("inf"),
    "huge": 1e38,
}


@pytest.mark.parametrize(("name", "params", "n", "f"), RULES, ids=IDS)
@pytest.mark.parametrize("kind", list(GARBAGE))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_byzantine_garbage(name, params, n, f, kind, dtype):
    x = sample((n, 5), dtype, seed=5)
    x[n - f + 1 :] = GARBAGE[kind]  # f − 1 rows entirely bad (MoNNA's pivot 0 stays honest) ...
    x[n - f, 2] = GARBAGE[kind]  # ... and one row with a single bad entry: f rows in all
    rule = make(name, params, f)
    out = rule(x)
    if rule.finite_under_garbage:
        assert torch.isfinite(out).all(), out
    elif kind != "huge":  # the mean says it is not robust: garbage goes straight through
        assert name == "mean" and not torch.isfinite(out).all()


def test_garbage_never_selected_by_krum_even_when_huge_but_finite():
    x = sample((9, 3), seed=6)
    x[:3] = 1e30
    out = get("krum", f=3)(x)
    assert torch.isin(out, x[3:]).all()


def test_rules_are_aggregators():
    for name in available("rules"):
        assert isinstance(get(name), Aggregator)


def test_numpy_float32_input_keeps_dtype():
    out = get("cwtm", f=1)(np.ones((5, 3), dtype=np.float32))
    assert out.dtype == torch.float32


def test_bucketing_partitions_the_workers():
    from trilemma.aggregators import Bucketing

    n, s = 11, 3
    x = torch.eye(n, dtype=torch.float64).expand(4, n, n)  # row i is the i-th unit vector
    buckets = Bucketing(s=s, generator=torch.Generator().manual_seed(1))(x)
    assert buckets.shape == (4, 4, n)
    sizes = torch.tensor([3, 3, 3, 2], dtype=torch.float64)
    members = buckets * sizes.view(1, -1, 1)  # back to 0/1 membership indicators
    torch.testing.assert_close(members, members.round())
    torch.testing.assert_close(members.sum(dim=1), torch.ones(4, n, dtype=torch.float64))
    assert not torch.equal(members[0], members[1])  # each batch element has its own shuffle


@pytest.fixture
def user_rule():
    """A rule registered the way a user would, removed from the registry afterwards."""
    from trilemma.aggregators import registry

    @register("lower-median")
    class LowerMedian(Aggregator):
        """Coordinate-wise lower median (NaN sorts last, so ≤ f garbage rows never win)."""

        name = "lower-median"

        def _aggregate(self, x):
            return x.sort(dim=-2).values[..., (x.shape[-2] - 1) // 2, :]

    yield "lower-median"
    registry._REGISTRY.pop("lower-median")


def test_a_rule_registered_by_a_user_goes_through_the_contract(user_rule):
    assert user_rule in available("rules") and isinstance(get(user_rule, f=2), Aggregator)
    case = (user_rule, {}, 7, 2)
    for dtype in (torch.float32, torch.float64):
        test_shape_dtype_and_numpy(*case, dtype)
        for kind in GARBAGE:
            test_byzantine_garbage(*case, kind, dtype)
    test_batched_equals_looped(*case)
    test_permutation_invariance(*case)
    test_f_zero(*case)
    test_too_many_byzantine_workers(*case)
    x = sample((7, 3), seed=7)
    torch.testing.assert_close(get(user_rule, f=2)(x), x.sort(dim=0).values[3])


def test_register_refuses_taken_and_malformed_names():
    with pytest.raises(ValueError, match="name='cwtm' is already registered"):
        register("cwtm")(Aggregator)
    with pytest.raises(ValueError, match="lower-case name without '>>'"):
        register("nnm>>x")
    with pytest.raises(TypeError, match="needs a class or a callable"):
        register("not-callable")(3)

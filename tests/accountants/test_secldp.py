"""SecLDP accountant: closed forms, limits, colluders, composition and bad input."""

import math

import dp_accounting
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trilemma.accountants import (
    SecLDPAccountant,
    SecLDPDpEvent,
    calibrate_sigma_cor,
    gaussian_epsilon,
    secldp_epsilon,
    secldp_report,
)
from trilemma.accountants.secldp import event_epsilon
from trilemma.accountants.secldp_calibration import calibrate_event_sigma_cor
from trilemma.accountants.secldp_report import event_report
from trilemma.bounds import complete_graph_inverse_variance


def inverse_variances(graph, sigma, sigma_cor, colluders=()):
    event = SecLDPDpEvent(graph, sigma, sigma_cor, 1.0)
    return SecLDPAccountant(colluders=colluders).compose(event).inverse_variances()[0]


def dense_honest_inverse_diagonal(graph, sigma, sigma_cor, colluders=()):
    """Independent reference: build Σ_H densely from networkx and invert it with numpy."""
    honest = [v for v in graph.nodes if v not in set(colluders)]
    laplacian = nx.laplacian_matrix(graph.subgraph(honest), nodelist=honest).toarray()
    covariance = sigma**2 * np.eye(len(honest)) + sigma_cor**2 * laplacian
    return dict(zip(honest, np.diag(np.linalg.inv(covariance)), strict=True))


graphs = st.builds(
    lambda n, p, seed: nx.gnp_random_graph(n, p, seed=seed),
    st.integers(2, 10),
    st.floats(0.1, 1.0),
    st.integers(0, 10_000),
)


@pytest.mark.parametrize("n", [2, 5, 16, 40])
@pytest.mark.parametrize(("sigma", "sigma_cor"), [(1.0, 0.0), (2.0, 3.0), (17.827, 188.0)])
def test_complete_graph_closed_form(n, sigma, sigma_cor):
    values = inverse_variances(nx.complete_graph(n), sigma, sigma_cor)
    expected = complete_graph_inverse_variance(n=n, sigma=sigma, sigma_cor=sigma_cor)
    np.testing.assert_allclose(values, expected, rtol=1e-12)


def test_large_sigma_cor_tends_to_central_rate():
    sigma, n = 2.0, 16
    central = 1.0 / (n * sigma**2)
    gaps = [inverse_variances(nx.cycle_graph(n), sigma, s).max() - central for s in (1e1, 1e2, 1e3)]
    assert gaps[0] > gaps[1] > gaps[2] > 0
    assert gaps[2] < 1e-4 * central
    # the ε of the central Gaussian mechanism with the n-fold noise is the limit
    limit = gaussian_epsilon(
        noise_multiplier=sigma * math.sqrt(n) / 2, compositions=50, delta=1e-5, method="rdp"
    )
    eps = secldp_epsilon("ring:16", sigma=sigma, sigma_cor=1e4, clip=1.0, steps=50, delta=1e-5)
    assert math.isclose(eps, limit, rel_tol=1e-4)


def test_zero_sigma_cor_is_local_dp():
    sigma, clip, steps = 3.0, 0.5, 40
    eps = secldp_epsilon(
        "torus:4x4", sigma=sigma, sigma_cor=0.0, clip=clip, steps=steps, delta=1e-6, method="pld"
    )
    # replace-one sensitivity 2C with noise σ: noise multiplier σ / (2C)
    expected = gaussian_epsilon(
        noise_multiplier=sigma / (2 * clip), compositions=steps, delta=1e-6, method="pld"
    )
    assert math.isclose(eps, expected, rel_tol=1e-12)
    np.testing.assert_allclose(inverse_variances(nx.cycle_graph(8), sigma, 0.0), 1 / sigma**2)


@settings(max_examples=40, deadline=None)
@given(
    graphs,
    st.floats(0.1, 10.0),
    st.floats(0.0, 50.0),
    st.sets(st.integers(0, 9), max_size=4),
)
def test_inverse_variances_match_dense_inverse(graph, sigma, sigma_cor, colluders):
    colluders = sorted(c for c in colluders if c < graph.number_of_nodes() - 1)
    values = inverse_variances(graph, sigma, sigma_cor, colluders)
    reference = dense_honest_inverse_diagonal(graph, sigma, sigma_cor, colluders)
    for node, expected in reference.items():
        assert math.isclose(values[node], expected, rel_tol=1e-10)
    assert all(np.isnan(values[c]) for c in colluders)


@settings(max_examples=60, deadline=None)
@given(
    graphs,
    st.floats(0.1, 10.0),
    st.floats(0.0, 50.0),
    st.sets(st.integers(0, 9), min_size=1, max_size=5),
)
def test_colluders_never_decrease_epsilon(graph, sigma, sigma_cor, colluders):
    colluders = sorted(c for c in colluders if c < graph.number_of_nodes() - 1)
    event = SecLDPDpEvent(graph, sigma, sigma_cor, 1.0)
    alone = SecLDPAccountant(method="classic").compose(event, 100).node_epsilons(1e-5)
    pooled = SecLDPAccountant(colluders=colluders, method="classic").compose(event, 100)
    with_colluders = pooled.node_epsilons(1e-5)
    honest = [v for v in range(graph.number_of_nodes()) if v not in colluders]
    assert np.all(with_colluders[honest] >= alone[honest] * (1 - 1e-12))


@settings(max_examples=40, deadline=None)
@given(graphs, st.floats(0.1, 10.0), st.floats(0.01, 50.0))
def test_report_bounds_hold_per_component(graph, sigma, sigma_cor):
    report = secldp_report(
        graph, sigma=sigma, sigma_cor=sigma_cor, clip=1.0, steps=5, delta=1e-5, method="classic"
    )
    covered = sorted(v for part in report.components for v in part.nodes)
    assert covered == sorted(graph.nodes)
    for part in report.components:
        assert part.exact_max <= part.spectral_bound * (1 + 1e-10)
        assert part.exact_max <= part.resistance_bound_max * (1 + 1e-10)
        assert part.exact_max >= 1 / (len(part.nodes) * sigma**2) * (1 - 1e-12)


def test_disconnected_honest_subgraph_is_valid():
    # path 0-1-2-3-4 with colluder 2: honest components {0, 1} and {3, 4}
    report = secldp_report(
        nx.path_graph(5), sigma=1.0, sigma_cor=2.0, clip=1.0, steps=10, delta=1e-5, colluders=[2]
    )
    assert sorted(part.nodes for part in report.components) == [(0, 1), (3, 4)]
    two_nodes = complete_graph_inverse_variance(n=2, sigma=1.0, sigma_cor=2.0)
    np.testing.assert_allclose(report.inverse_variance[[0, 1, 3, 4]], two_nodes, rtol=1e-12)
    assert np.isnan(report.epsilon[2]) and np.isfinite(report.worst_epsilon)


def test_conversions_ordered_and_delta_inverts_epsilon():
    event = SecLDPDpEvent("ring:16", 10.0, 40.0, 1.0)
    values = {}
    for method in ("classic", "rdp", "pld"):
        accountant = SecLDPAccountant(method=method).compose(event, 500)
        values[method] = accountant.get_epsilon(1e-6)
        if method != "pld":  # PLD's δ(ε) is discretised; RDP and classic invert exactly
            assert math.isclose(accountant.get_delta(values[method]), 1e-6, rel_tol=1e-3)
    assert values["pld"] <= values["rdp"] <= values["classic"]


def test_composition_forms_agree():
    ring = SecLDPDpEvent("ring:8", 5.0, 10.0, 1.0)
    torus_like = SecLDPDpEvent(nx.circulant_graph(8, [1, 2]), 5.0, 10.0, 1.0)
    step_by_step = SecLDPAccountant()
    for _ in range(3):
        step_by_step.compose(ring)
    step_by_step.compose(torus_like, 2)
    nested = SecLDPAccountant().compose(
        dp_accounting.ComposedDpEvent(
            [
                dp_accounting.SelfComposedDpEvent(ring, 3),
                dp_accounting.SelfComposedDpEvent(torus_like, 2),
            ]
        )
    )
    assert math.isclose(step_by_step.get_epsilon(1e-5), nested.get_epsilon(1e-5), rel_tol=1e-12)
    one_graph = SecLDPAccountant().compose(ring, 5).get_epsilon(1e-5)
    assert nested.get_epsilon(1e-5) < one_graph  # the denser graph hides better
    assert SecLDPAccountant().get_epsilon(1e-5) == 0.0


def test_rejects_foreign_events():
    with pytest.raises(dp_accounting.UnsupportedEventError):
        SecLDPAccountant().compose(dp_accounting.GaussianDpEvent(1.0))


def test_example_level_full_batch_equals_user_level_with_scaled_clip():
    kwargs = dict(sigma=4.0, sigma_cor=9.0, steps=30, delta=1e-5)
    full = secldp_epsilon("ring:10", clip=2.0, local_size=5, batch_size=5, **kwargs)
    user = secldp_epsilon("ring:10", clip=2.0 / 5, **kwargs)
    assert math.isclose(full, user, rel_tol=1e-12)
    sampled = secldp_epsilon("ring:10", clip=2.0, local_size=100, batch_size=5, **kwargs)
    poisson = secldp_epsilon(
        "ring:10",
        clip=2.0,
        local_size=100,
        batch_size=5,
        sampling="poisson",
        method="pld",
        **kwargs,
    )
    assert sampled < user and poisson < user


def test_calibrate_sigma_cor_round_trip():
    kwargs = dict(sigma=12.0, clip=1.0, steps=1000, delta=1e-5)
    found = calibrate_sigma_cor("ring:16", target_epsilon=8.0, **kwargs)
    assert secldp_epsilon("ring:16", sigma_cor=found, **kwargs) <= 8.0
    assert secldp_epsilon("ring:16", sigma_cor=found * (1 - 1e-4), **kwargs) > 8.0
    assert calibrate_sigma_cor("ring:16", target_epsilon=1e4, **kwargs) == 0.0
    with pytest.raises(ValueError, match="out of reach"):
        calibrate_sigma_cor("ring:16", target_epsilon=0.5, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(sigma=0.0), "sigma=0.0 must lie in"),
        (dict(sigma=float("nan")), "sigma=nan"),
        (dict(sigma_cor=-1.0), "sigma_cor=-1.0 must lie in"),
        (dict(clip=0.0), "clip=0.0 must lie in"),
        (dict(steps=0), "steps=0 must be an integer"),
        (dict(delta=1.0), "delta=1.0 must lie in"),
        (dict(colluders=[99]), "colluders contains 99"),
        (dict(colluders=list(range(8))), "honest set is empty"),
        (dict(batch_size=2), "batch_size=2 must be an integer in"),
        (dict(method="moments"), "method='moments' is not valid"),
    ],
)
def test_bad_input(kwargs, pattern):
    arguments = dict(sigma=1.0, sigma_cor=1.0, clip=1.0, steps=10, delta=1e-5) | kwargs
    with pytest.raises(ValueError, match=pattern):
        secldp_epsilon("ring:8", **arguments)


def test_events_compare_and_hash_by_value():
    ring = SecLDPDpEvent("ring:8", 1.0, 2.0, 1.0)
    same = SecLDPDpEvent(nx.cycle_graph(8), 1.0, 2.0, 1.0)
    matrix = SecLDPDpEvent(nx.to_numpy_array(nx.cycle_graph(8)), 1.0, 2.0, 1.0)
    assert ring == same == matrix and len({ring, same, matrix}) == 1
    weighted = nx.cycle_graph(8)
    weighted[0][1]["weight"] = 2.0
    relabelled = nx.relabel_nodes(nx.cycle_graph(8), {0: "a"})
    different = [
        SecLDPDpEvent("path:8", 1.0, 2.0, 1.0),
        SecLDPDpEvent(weighted, 1.0, 2.0, 1.0),
        SecLDPDpEvent(relabelled, 1.0, 2.0, 1.0),
        SecLDPDpEvent("ring:8", 1.0, 2.5, 1.0),
        SecLDPDpEvent("ring:8", 1.0, 2.0, 1.0, local_size=4),
    ]
    assert all(ring != other for other in different)
    assert len({ring, *different}) == 1 + len(different)


def test_accountant_cache_is_keyed_by_the_event_value():
    accountant = SecLDPAccountant()
    accountant.compose(SecLDPDpEvent("ring:8", 1.0, 2.0, 1.0), 3)
    accountant.compose(SecLDPDpEvent(nx.cycle_graph(8), 1.0, 2.0, 1.0), 2)
    accountant.compose(SecLDPDpEvent("ring:8", 1.0, 3.0, 1.0), 1)
    table = accountant.inverse_variances()
    assert len(accountant._cache) == 2
    np.testing.assert_array_equal(table[0], table[1])
    assert np.all(table[2] < table[0])
    single = SecLDPAccountant().compose(SecLDPDpEvent("ring:8", 1.0, 2.0, 1.0), 5)
    single.compose(SecLDPDpEvent("ring:8", 1.0, 3.0, 1.0), 1)
    assert single.get_epsilon(1e-5) == accountant.get_epsilon(1e-5)


def test_event_helpers_match_the_keyword_helpers():
    kwargs = dict(sigma=3.0, clip=1.0, local_size=20, batch_size=4, sampling="poisson")
    budget = dict(steps=200, delta=1e-5, colluders=[0, 4], method="pld")
    event = SecLDPDpEvent("ring:10", kwargs["sigma"], 5.0, 1.0, 20, 4, "poisson")
    assert event_epsilon(event, **budget) == secldp_epsilon(
        "ring:10", sigma_cor=5.0, **kwargs, **budget
    )
    ours = event_report(event, **budget)
    theirs = secldp_report("ring:10", sigma_cor=5.0, **kwargs, **budget)
    np.testing.assert_array_equal(ours.epsilon, theirs.epsilon)
    assert np.all(np.isnan(ours.classic_epsilon))  # example level: no classic conversion
    user = dict(sigma=12.0, clip=1.0)
    found = calibrate_event_sigma_cor(
        SecLDPDpEvent("ring:16", 12.0, 99.0, 1.0), target_epsilon=8.0, steps=1000, delta=1e-5
    )
    assert found == calibrate_sigma_cor(
        "ring:16", target_epsilon=8.0, steps=1000, delta=1e-5, **user
    )

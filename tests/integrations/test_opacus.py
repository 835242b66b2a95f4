"""The Opacus accountant and engine against trilemma's accounting, in real Opacus training."""

import warnings

import numpy as np
import pytest

pytest.importorskip("opacus", reason="needs the 'opacus' extra: pip install -e '.[opacus]'")

import torch
from opacus.accountants import RDPAccountant
from sklearn.datasets import load_digits

from trilemma import accountants
from trilemma.integrations.opacus import TrilemmaAccountant, TrilemmaPrivacyEngine

DELTA = 1e-5
BATCH = 64
EPOCHS = 2


def digits_training(engine, *, sigma=None, target_epsilon=None, seed=0):
    """Train a softmax regression on digits for EPOCHS epochs with Opacus' DP-SGD; return the
    engine's optimizer, the number of batches per epoch and the final training accuracy."""
    features, labels = load_digits(return_X_y=True)
    x = torch.tensor(features / 16.0, dtype=torch.float32)
    y = torch.tensor(labels)
    torch.manual_seed(seed)
    model = torch.nn.Linear(64, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH)
    common = {"module": model, "optimizer": optimizer, "data_loader": loader, "max_grad_norm": 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Opacus' secure-RNG and hook warnings
        if sigma is not None:
            model, optimizer, loader = engine.make_private(noise_multiplier=sigma, **common)
        else:
            model, optimizer, loader = engine.make_private_with_epsilon(
                target_epsilon=target_epsilon, target_delta=DELTA, epochs=EPOCHS, **common
            )
        for _ in range(EPOCHS):
            for inputs, targets in loader:
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(inputs), targets).backward()
                optimizer.step()
    accuracy = float((model(x).argmax(1) == y).float().mean())
    return optimizer, len(loader), accuracy


@pytest.mark.parametrize("method", ["rdp", "pld"])
def test_epsilon_after_real_training_is_dpsgd_epsilon(method):
    engine = TrilemmaPrivacyEngine(method=method)
    _, batches, accuracy = digits_training(engine, sigma=1.1)
    steps = EPOCHS * batches
    assert engine.accountant.history == [(1.1, 1 / batches, steps)]
    assert len(engine.accountant) == steps
    expected = accountants.dpsgd_epsilon(
        noise_multiplier=1.1, sample_rate=1 / batches, steps=steps, delta=DELTA, method=method
    )
    assert engine.get_epsilon(DELTA) == expected
    assert accuracy > 0.5  # the private model learned something (chance is 0.1)


def test_rdp_epsilon_close_to_opacus_own_rdp():
    """An independent RDP implementation (Opacus' own orders and conversion) on the same
    history: dp-accounting's finer orders give an ε within 3 % of it."""
    ours = TrilemmaAccountant("rdp")
    theirs = RDPAccountant()
    for _ in range(500):
        ours.step(noise_multiplier=1.0, sample_rate=0.02)
        theirs.step(noise_multiplier=1.0, sample_rate=0.02)
    assert ours.get_epsilon(DELTA) == pytest.approx(theirs.get_epsilon(DELTA), rel=0.03)


def test_calibrated_engine_spends_at_most_the_target():
    engine = TrilemmaPrivacyEngine()
    optimizer, batches, _ = digits_training(engine, target_epsilon=3.0)
    sigma = accountants.calibrate_dpsgd(
        target_epsilon=3.0, sample_rate=1 / batches, steps=EPOCHS * batches, delta=DELTA
    )
    assert optimizer.noise_multiplier == sigma
    spent = engine.get_epsilon(DELTA)
    assert spent <= 3.0
    assert spent > 3.0 - 1e-4  # and wastes (almost) none of the budget
    # 1 % less noise would overshoot: the calibration is tight, not merely safe
    tighter = accountants.dpsgd_epsilon(
        noise_multiplier=0.99 * sigma,
        sample_rate=1 / batches,
        steps=EPOCHS * batches,
        delta=DELTA,
    )
    assert tighter > 3.0


def test_segments_compose():
    """Two segments of the same (σ, q) spend what one segment of their total length does;
    a noisier second segment spends less than a repeat of the first."""
    split, joined, noisier = TrilemmaAccountant(), TrilemmaAccountant(), TrilemmaAccountant()
    split.history = [(1.0, 0.05, 30), (1.0, 0.05, 20)]
    joined.history = [(1.0, 0.05, 50)]
    noisier.history = [(1.0, 0.05, 30), (2.0, 0.05, 20)]
    assert split.get_epsilon(DELTA) == pytest.approx(joined.get_epsilon(DELTA), rel=1e-9)
    assert noisier.get_epsilon(DELTA) < joined.get_epsilon(DELTA)
    assert TrilemmaAccountant().get_epsilon(DELTA) == 0.0


def test_state_dict_round_trip_and_mechanism_check():
    accountant = TrilemmaAccountant("pld")
    for sigma in (1.0, 1.0, 1.5):
        accountant.step(noise_multiplier=sigma, sample_rate=0.1)
    restored = TrilemmaAccountant()
    restored.load_state_dict(accountant.state_dict())
    assert restored.method == "pld"
    assert restored.history == [(1.0, 0.1, 2), (1.5, 0.1, 1)]
    assert restored.get_epsilon(DELTA) == accountant.get_epsilon(DELTA)
    with pytest.raises(ValueError, match="rdp"):
        restored.load_state_dict(RDPAccountant().state_dict() | {"history": []})


def test_noiseless_step_spends_infinity_and_bad_input_is_named():
    accountant = TrilemmaAccountant()
    accountant.step(noise_multiplier=0.0, sample_rate=0.5)
    assert np.isinf(accountant.get_epsilon(DELTA))
    with pytest.raises(ValueError, match="sample_rate"):
        accountant.step(noise_multiplier=1.0, sample_rate=1.5)
    with pytest.raises(ValueError, match="method"):
        TrilemmaAccountant("prv")
    with pytest.raises(ValueError, match="delta"):
        accountant.get_epsilon(0.0)

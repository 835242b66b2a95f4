"""flip_labels: y ↦ K − 1 − y, the hook the training runner uses for label flipping."""

import numpy as np
import pytest
import torch

from trilemma.attacks import LabelFlipping, flip_labels


def test_values_dtype_and_involution():
    y = torch.tensor([[0, 1, 2], [9, 5, 4]], dtype=torch.int32)
    out = flip_labels(y, 10)
    assert out.dtype == torch.int32
    assert out.tolist() == [[9, 8, 7], [0, 4, 5]]
    assert torch.equal(flip_labels(out, 10), y)
    assert flip_labels(np.array([0, 1]), 2).tolist() == [1, 0]
    assert flip_labels(torch.tensor([0]), 1).tolist() == [0]
    assert flip_labels(torch.tensor([], dtype=torch.int64), 3).shape == (0,)


def test_errors():
    with pytest.raises(ValueError, match=r"label 10; labels must lie in \[0, 9\]"):
        flip_labels(torch.tensor([1, 10]), 10)
    with pytest.raises(ValueError, match="label -1"):
        flip_labels(torch.tensor([-1]), 10)
    with pytest.raises(TypeError, match="y must hold integer labels"):
        flip_labels(torch.tensor([0.0]), 10)
    with pytest.raises(TypeError, match="y must hold integer labels"):
        flip_labels(torch.tensor([True]), 2)
    with pytest.raises(ValueError, match="num_classes=0"):
        flip_labels(torch.tensor([0]), 0)
    assert flip_labels(torch.tensor([12]), 10, validate=False).tolist() == [-3]


def test_poison_copies_the_first_workers_with_flipped_labels():
    features = torch.arange(24.0).reshape(3, 2, 4)
    labels = torch.tensor([[0, 1], [2, 2], [1, 0]])
    x, y = LabelFlipping().poison(features, labels, 3, f=2)
    assert torch.equal(x, features[:2]) and y.tolist() == [[2, 1], [0, 0]]
    x, y = LabelFlipping().poison(features, labels, 3, f=4)  # cyclic past the h workers
    assert torch.equal(x, features[[0, 1, 2, 0]]) and y[3].tolist() == [2, 1]
    assert LabelFlipping().poison(features, labels, 3, f=0)[0].shape == (0, 2, 4)
    with pytest.raises(ValueError, match="f=-1"):
        LabelFlipping().poison(features, labels, 3, f=-1)

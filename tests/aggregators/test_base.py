"""fresh_tensor: the huge-page advice covers only whole 2 MiB pages inside the new tensor."""

import torch

from trilemma.aggregators import _base


class RecordingLibc:
    def __init__(self):
        self.calls = []

    def madvise(self, start, length, advice):
        self.calls.append((start.value, length.value, advice))
        return 0


def test_advice_covers_whole_huge_pages_inside_the_tensor(monkeypatch):
    libc = RecordingLibc()
    monkeypatch.setattr(_base, "_LIBC", libc)
    like = torch.zeros(1, dtype=torch.float32)
    out = _base.fresh_tensor((3, 1_500_000), like)
    assert out.shape == (3, 1_500_000) and out.dtype == torch.float32
    ((start, length, advice),) = libc.calls
    page = 1 << 21
    assert advice == 14 and start % page == 0 and length % page == 0 and length > 0
    assert out.data_ptr() <= start and start + length <= out.data_ptr() + out.numel() * 4
    assert (
        start - out.data_ptr() < page and out.data_ptr() + out.numel() * 4 - (start + length) < page
    )


def test_small_tensors_are_not_advised(monkeypatch):
    libc = RecordingLibc()
    monkeypatch.setattr(_base, "_LIBC", libc)
    out = _base.fresh_tensor((5, 7), torch.zeros(1, dtype=torch.float64))
    assert out.shape == (5, 7) and out.dtype == torch.float64 and libc.calls == []

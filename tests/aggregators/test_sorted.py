"""The per-coordinate sorting kernel: network correctness and agreement of its two paths."""

import itertools

import numpy as np
import pytest
import torch

from trilemma.aggregators import get
from trilemma.aggregators._sorted import _batcher_network, _torch_sorted_reduce, sorted_reduce


@pytest.mark.parametrize("n", range(1, 13))
def test_network_sorts_every_binary_input(n):
    # 0-1 principle (Knuth, TAOCP 5.3.4, Thm. Z): a comparator network that sorts all 2^n
    # binary sequences sorts every sequence
    network = _batcher_network(n)
    for bits in itertools.product((0, 1), repeat=n):
        values = list(bits)
        for i, j in network:
            if values[i] > values[j]:
                values[i], values[j] = values[j], values[i]
        assert values == sorted(bits)


@pytest.mark.parametrize("n", [13, 31, 50, 64, 65])
def test_network_sorts_random_inputs(n):
    network = _batcher_network(n)
    rng = np.random.default_rng(n)
    for _ in range(50):
        values = rng.normal(size=n)
        for i, j in network:
            if values[i] > values[j]:
                values[i], values[j] = values[j], values[i]
        assert np.all(np.diff(values) >= 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("mode", "params"),
    [("trimmed", {"lo": 2, "hi": 7}), ("window", {"k": 6}), ("window", {"k": 8})],
)
def test_kernel_and_torch_paths_agree(dtype, mode, params):
    x = torch.randn(3, 9, 700, dtype=dtype, generator=torch.Generator().manual_seed(0))
    x[0, 1, ::3] = torch.nan
    x[1, 4] = torch.inf
    x[2, 0, 5] = -torch.inf
    kernel = sorted_reduce(x, mode=mode, **params)
    code, a, b = (0, params["lo"], params["hi"]) if mode == "trimmed" else (1, params["k"], 0)
    reference = _torch_sorted_reduce(x, code, a, b)
    torch.testing.assert_close(kernel, reference)


def test_half_precision_and_autograd_take_the_torch_path():
    x = torch.randn(7, 5)
    half = get("cwtm", f=2)(x.to(torch.bfloat16))
    assert half.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), get("cwtm", f=2)(x), rtol=2e-2, atol=2e-2)
    leaf = x.clone().requires_grad_(True)
    get("cwtm", f=2)(leaf).sum().backward()
    # each coordinate averages n − 2f = 3 values: their gradient is 1/3, the trimmed ones 0
    torch.testing.assert_close(leaf.grad.sum(dim=0), torch.ones(5))
    values = leaf.grad.unique()
    assert len(values) == 2 and values[0] == 0 and abs(values[1].item() - 1 / 3) < 1e-7


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x = torch.randn(4, 15, 1000, dtype=torch.float64)
    for name in ("cwtm", "cwmed", "meamed", "krum", "smea", "gm", "nnm>>cwtm"):
        rule = get(name, f=3)
        on_gpu = rule(x.cuda())
        assert on_gpu.device.type == "cuda"
        torch.testing.assert_close(on_gpu.cpu(), rule(x), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize(
    "mode", [{"mode": "window", "k": 3}, {"mode": "trimmed", "lo": 1, "hi": 4}]
)
def test_selected_rows_are_reduced_in_place_as_a_gathered_copy(mode):
    x = torch.randn(2, 3, 9, 700, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    x[0, 1, 4, 5] = -torch.inf  # an invalid row counts as +inf whatever its values
    rows = torch.randperm(9, generator=torch.Generator().manual_seed(5))[:5].expand(2, 3, 5)
    invalid = torch.zeros(rows.shape, dtype=torch.bool)
    invalid[0, 1, (rows[0, 1] == 4).nonzero()] = True
    gathered = torch.gather(x, -2, rows.unsqueeze(-1).expand(*rows.shape, 700))
    gathered = gathered.masked_fill(invalid.unsqueeze(-1), torch.nan)
    expected = sorted_reduce(gathered, **mode)
    compiled = sorted_reduce(x, rows=rows, invalid=invalid, **mode)
    fallback = sorted_reduce(x.requires_grad_(True), rows=rows, invalid=invalid, **mode)
    torch.testing.assert_close(compiled, expected, rtol=0, atol=0)
    torch.testing.assert_close(fallback.detach(), expected, rtol=1e-12, atol=1e-12)
    assert torch.isfinite(expected).all()

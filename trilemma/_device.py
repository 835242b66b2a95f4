"""The torch device a computation runs on: checked at the public boundary, named in metadata."""

from __future__ import annotations

import platform

import torch

__all__ = ["check_device", "device_name"]


def check_device(device: object) -> str:
    """Return ``device`` after checking it is ``"cpu"`` or an available ``"cuda[:k]"``.

    Raises
    ------
    TypeError
        If ``device`` is not a string.
    ValueError
        For another device, or CUDA without a CUDA device.
    """
    if not isinstance(device, str):
        raise TypeError(f"device must be a string, got {type(device).__name__}")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device={device!r} must be 'cpu' or 'cuda[:k]'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but no CUDA device is available")
    return device


def device_name(device: str) -> str:
    """The GPU's name for a CUDA device, the processor's otherwise."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()

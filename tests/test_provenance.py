"""The one writer of meta.json."""

from __future__ import annotations

import datetime
import json

import pytest
import torch

import trilemma
from trilemma._device import device_name
from trilemma._provenance import write_meta


def test_write_meta_keeps_the_fields_and_appends_the_provenance(tmp_path):
    path = write_meta(
        tmp_path / "sub" / "meta.json",
        {"figure": "x", "checks": {"a": True}},
        device="cpu",
        wall_time_s=1.23456,
    )
    meta = json.loads(path.read_text(encoding="utf-8"))
    assert list(meta) == [
        "figure",
        "checks",
        "trilemma_version",
        "torch_version",
        "device_name",
        "wall_time_s",
        "created_utc",
    ]
    assert meta["checks"] == {"a": True} and meta["wall_time_s"] == 1.235
    assert meta["trilemma_version"] == trilemma.__version__
    assert meta["torch_version"] == torch.__version__
    assert meta["device_name"] == device_name("cpu")
    stamp = datetime.datetime.fromisoformat(meta["created_utc"])
    now = datetime.datetime.now(datetime.UTC)
    assert stamp.utcoffset() == datetime.timedelta(0) and abs(now - stamp).total_seconds() < 60
    assert not list(path.parent.glob("*.tmp"))  # written beside, then renamed


def test_write_meta_names_the_time_key_and_rejects_bad_input(tmp_path):
    path = write_meta(tmp_path / "m.json", {}, device="cpu", wall_time_s=0, time_key="updated_utc")
    meta = json.loads(path.read_text(encoding="utf-8"))
    assert "updated_utc" in meta and "created_utc" not in meta and meta["wall_time_s"] == 0
    with pytest.raises(ValueError, match="wall_time_s"):
        write_meta(tmp_path / "m.json", {}, device="cpu", wall_time_s=-1.0)
    with pytest.raises(ValueError, match="wall_time_s"):
        write_meta(tmp_path / "m.json", {}, device="cpu", wall_time_s=float("nan"))
    with pytest.raises(ValueError, match="torch_version"):
        write_meta(tmp_path / "m.json", {"torch_version": "0"}, device="cpu", wall_time_s=1.0)

"""Import byzfl's aggregation rules without running ``byzfl/__init__.py``.

byzfl 0.0.11's top-level ``__init__`` eagerly imports its whole federated-learning framework
(``byzfl.fed_framework`` and ``byzfl.benchmark``), which pulls in torchvision, matplotlib and
seaborn. Those are not needed to call an aggregation rule and are not installed in our benchmark
environment (byzfl is installed without its dependencies). The rules themselves live in
``byzfl.aggregators.aggregators`` and ``byzfl.aggregators.preaggregators`` and only need numpy,
torch, scipy and ``byzfl.utils``.

So we register an empty package object named ``byzfl`` in :data:`sys.modules`, pointing at the
installed package directory (``__path__``) with its real import spec. Python then resolves the
submodules ``byzfl.aggregators`` and ``byzfl.utils`` from that directory as usual, but never
executes the top-level ``__init__``. Nothing is copied or patched: the code that runs is
byzfl's own.
"""

from __future__ import annotations

import importlib.util
import sys
import types

__all__ = ["load_byzfl"]


def load_byzfl() -> tuple[types.ModuleType, types.ModuleType]:
    """Return byzfl's ``(aggregators, preaggregators)`` modules, skipping ``byzfl/__init__``.

    Raises
    ------
    ModuleNotFoundError
        If byzfl is not installed.
    """
    loaded = sys.modules.get("byzfl")
    if loaded is None:
        spec = importlib.util.find_spec("byzfl")
        if spec is None or spec.submodule_search_locations is None:
            raise ModuleNotFoundError("byzfl is not installed (pip install --no-deps byzfl)")
        package = types.ModuleType("byzfl")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        package.__file__ = spec.origin
        sys.modules["byzfl"] = package
    from byzfl.aggregators import (  # type: ignore[import-untyped]  # byzfl ships no types
        aggregators,
        preaggregators,
    )

    return aggregators, preaggregators

"""The message of the ImportError raised when an integration's extra is missing."""

from __future__ import annotations

__all__ = ["missing_extra"]


def missing_extra(module: str, *, package: str, extra: str) -> str:
    """Say which extra brings ``package``, which ``module`` needs.

    Examples
    --------
    >>> missing_extra("trilemma.integrations.flower", package="flwr", extra="flower")
    "trilemma.integrations.flower needs flwr: pip install 'trilemma[flower]'"
    """
    return f"{module} needs {package}: pip install 'trilemma[{extra}]'"

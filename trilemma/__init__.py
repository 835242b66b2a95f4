"""trilemma: private and Byzantine-robust distributed learning.

Subpackages: :mod:`trilemma.accountants` (privacy accounting), :mod:`trilemma.aggregators`
(robust aggregation), :mod:`trilemma.attacks` (Byzantine vectors), :mod:`trilemma.bounds`
(closed-form theory).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trilemma")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

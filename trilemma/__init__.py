"""trilemma: private and Byzantine-robust distributed learning.

Subpackages: :mod:`trilemma.accountants` (privacy accounting), :mod:`trilemma.aggregators`
(robust aggregation), :mod:`trilemma.attacks` (Byzantine vectors), :mod:`trilemma.bounds`
(closed-form theory).

Importing trilemma sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is set already (idle OpenMP threads
sleep instead of spinning; see :mod:`trilemma._threads`). It takes effect for every OpenMP
library loaded afterwards: import trilemma before torch, or set the variable yourself.
"""

from importlib.metadata import PackageNotFoundError, version

from trilemma._threads import set_environment_defaults

set_environment_defaults()  # before torch or numba load libgomp, which reads it once

try:
    __version__ = version("trilemma")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

"""Thread policy for a shared CPU: pools sized to the cores this process may use, passive waits.

Three thread pools can run trilemma's work: torch's intra-op pool (OpenMP, the libgomp that torch
ships), numba's parallel kernels (its ``omp`` threading layer, the system libgomp) and the BLAS
of numpy and scipy (OpenBLAS, pthreads). On a CPU shared with other jobs two things make them
slow, and this module handles both:

- **Spin-waiting.** By default libgomp keeps an idle worker thread spinning for a while after
  each parallel region (``OMP_WAIT_POLICY`` unset: about 300 000 spins) before it sleeps. Alone
  on the machine that saves a wake-up; next to other jobs it burns cycles they need.
  ``OMP_WAIT_POLICY=PASSIVE`` makes idle threads sleep at once. libgomp reads the variable when
  it is loaded, so it must be in ``os.environ`` before torch or numba's pool is imported:
  :func:`set_environment_defaults` does that from ``trilemma/__init__.py`` (a value the user
  set is kept).
- **Oversubscription.** A pool larger than the cores the process may use makes its threads wait
  on each other. Every pool's default already follows the affinity mask (measured under
  ``taskset -c 0`` with torch 2.13, numba 0.68, OpenBLAS 0.3: one thread each), but not a CPU
  quota of the control group (``docker --cpus``): :func:`usable_cores` takes the smaller of
  both, and :func:`cap_threads` lowers every pool that is larger than that.

:func:`limited` runs a block with fewer threads in every pool (the figures with small tensors
run with one, see :func:`trilemma.reproduce._figure.single_threaded`).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterator, MutableMapping
from pathlib import Path

__all__ = [
    "ENVIRONMENT_DEFAULTS",
    "cap_threads",
    "limited",
    "numba_limited",
    "set_environment_defaults",
    "usable_cores",
]

ENVIRONMENT_DEFAULTS: dict[str, str] = {"OMP_WAIT_POLICY": "PASSIVE"}
"""Variables set before any thread pool is loaded, unless the user set them."""

_CGROUP = Path("/sys/fs/cgroup")


def _quota_cores(root: Path = _CGROUP) -> int | None:
    """Cores allowed by the control group's CPU quota, rounded up; None without a quota.

    Reads cgroup v2 ``cpu.max`` ("quota period" or "max period"), else cgroup v1
    ``cpu/cpu.cfs_quota_us`` and ``cpu.cfs_period_us`` (quota −1: none).
    """
    try:
        fields = (root / "cpu.max").read_text(encoding="ascii").split()
    except OSError:
        try:
            quota_text = (root / "cpu" / "cpu.cfs_quota_us").read_text(encoding="ascii")
            period_text = (root / "cpu" / "cpu.cfs_period_us").read_text(encoding="ascii")
            fields = [quota_text.strip(), period_text.strip()]
        except OSError:
            return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except (ValueError, IndexError):  # "max", "-1" handled below; anything else: no quota
        return None
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def usable_cores(*, cgroup_root: Path = _CGROUP) -> int:
    """Number of CPUs this process may run on.

    The size of the affinity mask (``os.sched_getaffinity(0)``; ``os.cpu_count()`` where the
    platform has none), lowered to the control group's CPU quota when there is one.

    Parameters
    ----------
    cgroup_root : Path
        Where the control-group files are mounted (tests point it at a fake tree).

    Returns
    -------
    int
        At least 1.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity mask
        cores = os.cpu_count() or 1
    quota = _quota_cores(cgroup_root)
    return max(1, min(cores, quota) if quota is not None else cores)


def set_environment_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put :data:`ENVIRONMENT_DEFAULTS` into ``environ`` where the user has not set them, and
    ``NUMBA_NUM_THREADS`` = ``OMP_NUM_THREADS`` where the user set only the latter (and numba is
    not loaded yet).

    Call it before torch or numba is imported: libgomp reads ``OMP_WAIT_POLICY`` once, when it is
    loaded.

    Parameters
    ----------
    environ : mutable mapping, optional
        The environment to update (default ``os.environ``).

    Returns
    -------
    dict
        The variables this call set (empty when the user had set them all).
    """
    target = os.environ if environ is None else environ
    added = {key: value for key, value in ENVIRONMENT_DEFAULTS.items() if key not in target}
    # numba sizes its pool from the cores, not from OMP_NUM_THREADS, and its omp layer then
    # sets that size in the libgomp torch shares: a user's OMP_NUM_THREADS=1 would become 2
    # torch threads after the first numba kernel. Let numba follow the user's setting, unless
    # numba is loaded already: it re-reads the variable at every compilation and refuses a
    # value other than the one its running pool started with.
    numba_loaded = environ is None and "numba" in sys.modules
    if "OMP_NUM_THREADS" in target and "NUMBA_NUM_THREADS" not in target and not numba_loaded:
        added["NUMBA_NUM_THREADS"] = target["OMP_NUM_THREADS"]
    target.update(added)
    return added


def cap_threads(cores: int | None = None) -> dict[str, int]:
    """Lower torch's intra-op pool, numba's pool and every BLAS/OpenMP pool to ``cores``.

    A pool already at or below ``cores`` is left as it is (a user's smaller setting wins).

    Parameters
    ----------
    cores : int, optional
        The cap (default :func:`usable_cores`).

    Returns
    -------
    dict
        ``{"torch": t, "numba": m}``: the thread counts after the call.

    Raises
    ------
    ValueError
        If ``cores`` is below 1.
    """
    import numba
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    cap = usable_cores() if cores is None else cores
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ValueError(f"cores must be an integer ≥ 1, got {cores!r}")
    if torch.get_num_threads() > cap:
        torch.set_num_threads(cap)
    if numba.get_num_threads() > cap:
        numba.set_num_threads(cap)
    if any(pool["num_threads"] > cap for pool in threadpool_info()):
        threadpool_limits(limits=cap)  # not a context: the limit stays
    return {"torch": torch.get_num_threads(), "numba": numba.get_num_threads()}


@contextlib.contextmanager
def limited(threads: int = 1) -> Iterator[None]:
    """Run the block with at most ``threads`` threads in numba's pool and every BLAS/OpenMP
    pool (torch's intra-op pool is torch's libgomp), restoring them afterwards.

    ``threadpool_limits`` does not reach numba's pool, so it is limited separately.

    Parameters
    ----------
    threads : int
        The limit, at least 1.

    Raises
    ------
    ValueError
        If ``threads`` is below 1.
    """
    from threadpoolctl import threadpool_limits

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer ≥ 1, got {threads!r}")
    with numba_limited(threads), threadpool_limits(limits=threads):
        yield


@contextlib.contextmanager
def numba_limited(threads: int) -> Iterator[None]:
    """Run the block with at most ``threads`` (≥ 1) threads in numba's pool, restoring its
    size afterwards."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(min(before, threads))
    try:
        yield
    finally:
        numba.set_num_threads(before)

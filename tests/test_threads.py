"""The thread policy of :mod:`trilemma._threads`: usable cores, passive waits, pool limits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import pytest
import torch
from threadpoolctl import threadpool_info

from trilemma import _threads
from trilemma.reproduce._figure import single_threaded


def _affinity() -> int:
    return len(os.sched_getaffinity(0))


def _run(code: str, **environment: str | None) -> str:
    """stdout of ``code`` in a fresh interpreter, with ``environment`` (None: unset)."""
    env = dict(os.environ)
    for key, value in environment.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_usable_cores_is_the_affinity_mask_without_quota(tmp_path: Path) -> None:
    assert _threads.usable_cores(cgroup_root=tmp_path) == _affinity()


@pytest.mark.parametrize(
    ("files", "cap"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "50000 100000\n"}, 1),  # half a core rounds up to one
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
        ({"cpu.max": "garbage\n"}, None),
    ],
)
def test_usable_cores_follows_a_cgroup_quota(
    tmp_path: Path, files: dict[str, str], cap: int | None
) -> None:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="ascii")
    expected = _affinity() if cap is None else min(_affinity(), cap)
    assert _threads.usable_cores(cgroup_root=tmp_path) == expected


def test_usable_cores_under_a_one_core_affinity_mask() -> None:
    out = _run(
        """
        import os
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        from trilemma._threads import usable_cores
        print(usable_cores())
        """
    )
    assert out.strip() == "1"


def test_environment_defaults_keep_what_the_user_set() -> None:
    empty: dict[str, str] = {}
    assert _threads.set_environment_defaults(empty) == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert empty == {"OMP_WAIT_POLICY": "PASSIVE"}
    user = {"OMP_WAIT_POLICY": "ACTIVE"}
    assert _threads.set_environment_defaults(user) == {}
    assert user == {"OMP_WAIT_POLICY": "ACTIVE"}


def test_numba_follows_the_users_omp_num_threads() -> None:
    environ = {"OMP_NUM_THREADS": "1"}
    assert _threads.set_environment_defaults(environ)["NUMBA_NUM_THREADS"] == "1"
    own = {"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2"}
    assert "NUMBA_NUM_THREADS" not in _threads.set_environment_defaults(own)
    assert own["NUMBA_NUM_THREADS"] == "2"


@pytest.mark.skipif(_threads.usable_cores() < 2, reason="needs 2 cores to show a second thread")
def test_a_numba_kernel_leaves_torchs_single_thread_alone() -> None:
    # numba's omp layer sets its pool size in the libgomp torch shares (2 on 2 cores without
    # the default above): torch would run the next operations with 2 threads.
    code = (
        "import trilemma, torch; from trilemma import aggregators; "
        "aggregators.get('cwtm', f=2)(torch.randn(10, 1000)); print(torch.get_num_threads())"
    )
    assert _run(code, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS=None).strip() == "1"


def test_numba_loaded_before_trilemma_keeps_its_thread_count(tmp_path: Path) -> None:
    # numba re-reads NUMBA_NUM_THREADS at every compilation and raises when it differs from
    # its running pool: trilemma must not set it once numba is loaded (cold cache: compiles).
    code = (
        "import numba, torch, trilemma; from trilemma import aggregators; "
        "x = torch.randn(10, 100_000); aggregators.get('cwtm', f=2)(x); "
        "aggregators.get('gm', f=2)(x); print(numba.get_num_threads())"
    )
    out = _run(code, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS=None, NUMBA_CACHE_DIR=str(tmp_path))
    assert out.strip() == str(numba.config.NUMBA_DEFAULT_NUM_THREADS)


def test_importing_trilemma_sets_the_passive_policy_unless_the_user_did() -> None:
    code = "import os, trilemma; print(os.environ['OMP_WAIT_POLICY'])"
    assert _run(code, OMP_WAIT_POLICY=None).strip() == "PASSIVE"
    assert _run(code, OMP_WAIT_POLICY="ACTIVE").strip() == "ACTIVE"


_IDLE_CPU = """
    import sys, time
    if sys.argv[-1] == "trilemma":
        import trilemma  # before torch, as a user of the package would
    import torch
    torch.set_num_threads(2)  # a worker thread, even on a one-core mask
    x = torch.randn(1000, 1000)
    for _ in range(5):
        x.exp().sum()
    start = time.process_time()
    time.sleep(0.5)
    print(time.process_time() - start)
"""


def _idle_cpu(mode: str, policy: str | None) -> float:
    """CPU seconds a process burns during 0.5 s of sleep after torch's parallel regions."""
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    env.pop("OMP_NUM_THREADS", None)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_IDLE_CPU), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return float(done.stdout.strip())


def test_passive_policy_stops_idle_threads_from_spinning() -> None:
    # ACTIVE: the worker spins through the whole sleep (as much CPU as the machine gives it);
    # after importing trilemma it sleeps at once. Without the default (or with it set after
    # torch has loaded libgomp) libgomp spins about 300 000 times first: 7 ms of CPU here.
    active = _idle_cpu("plain", "ACTIVE")
    passive = _idle_cpu("trilemma", None)
    assert passive < 1e-3
    assert active > 10 * max(passive, 1e-3)


def test_cap_threads_lowers_every_pool_and_never_raises_one() -> None:
    out = _run(
        """
        import numba, torch
        from threadpoolctl import threadpool_info
        from trilemma._threads import cap_threads
        torch.set_num_threads(3); numba.set_num_threads(1)
        counts = cap_threads(2)
        pools = max(p["num_threads"] for p in threadpool_info())
        print(counts["torch"], counts["numba"], torch.get_num_threads(), pools)
        """
    )
    torch_threads, numba_threads, torch_now, largest_pool = (int(v) for v in out.split())
    assert (torch_threads, numba_threads, torch_now) == (2, 1, 2)
    assert largest_pool <= 2


def test_cap_threads_defaults_to_usable_cores() -> None:
    out = _run(
        """
        import os, numba, torch
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        torch.set_num_threads(4)
        from trilemma._threads import cap_threads
        print(cap_threads())
        """
    )
    assert out.strip() == "{'torch': 1, 'numba': 1}"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_thread_counts_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="cores"):
        _threads.cap_threads(bad)  # type: ignore[arg-type]  # a wrong type on purpose
    with pytest.raises(ValueError, match="threads"), _threads.limited(bad):  # type: ignore[arg-type]
        pass


def test_single_threaded_limits_every_pool_and_restores_them() -> None:
    numba_before, torch_before = numba.get_num_threads(), torch.get_num_threads()
    pools_before = [p["num_threads"] for p in threadpool_info()]
    with single_threaded():
        assert numba.get_num_threads() == 1
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info())
    assert numba.get_num_threads() == numba_before
    assert torch.get_num_threads() == torch_before
    assert [p["num_threads"] for p in threadpool_info()] == pools_before

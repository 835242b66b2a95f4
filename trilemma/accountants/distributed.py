"""Per-worker (distributed) DP for D-SGD with an honest-but-curious server.

Each honest worker holds ``local_size`` = m records. At each of T steps it samples a batch of
``batch_size`` = b records, clips every per-example gradient to norm C, averages them and adds
N(0, s² I) before sending: the server sees every message, so the worker must be (ε, δ)-DP on its
own (record-level DP w.r.t. one of its m records). Dividing by b turns the noise multiplier
z = std/C of the sum into s = z · C / b on the average, so

    s = z(ε, δ, T, b/m) · C / b,

with z from the DP-SGD accounting of :mod:`trilemma.accountants.central` (Abadi et al. 2016;
per-worker use as in Guerraoui et al., PODC 2021, arXiv:2102.08166, and Allouah et al.,
ICML 2023, arXiv:2302.04787, Sec. 3). Full-batch D-GD is b = m.

The default neighbouring relation is replace-one (a worker's m records with one replaced), the
one the distributed-DP papers above use; with full batches its sensitivity is 2C/m, the
``2C/b`` of the PODC 2021 code.
"""

from __future__ import annotations

from trilemma._validation import check_int, check_real
from trilemma.accountants.calibration import calibrate_dpsgd
from trilemma.accountants.central import Method, Neighboring, Sampling, dpsgd_epsilon

__all__ = ["worker_epsilon", "worker_noise_std"]


def _check_sizes(local_size: int, batch_size: int | None) -> tuple[int, int]:
    m = check_int("local_size", local_size, low=1)
    b = m if batch_size is None else check_int("batch_size", batch_size, low=1, high=m)
    return m, b


def worker_noise_std(
    *,
    epsilon: float,
    delta: float,
    steps: int,
    local_size: int,
    clip: float,
    batch_size: int | None = None,
    method: Method = "rdp",
    sampling: Sampling = "without_replacement",
    neighboring: Neighboring = "replace_one",
) -> float:
    """Standard deviation s of the Gaussian noise each honest worker adds to its averaged
    clipped gradient so that its T messages are (ε, δ)-DP w.r.t. one of its records.

    Parameters
    ----------
    epsilon, delta : float
        Per-worker budget, ε > 0 and δ ∈ (0, 1).
    steps : int
        Number of messages T (≥ 1).
    local_size : int
        Records per worker m (≥ 1).
    clip : float
        Per-example clipping norm C (> 0).
    batch_size : int, optional
        Batch b ∈ [1, m]; ``None`` means full batch (D-GD).
    method : {"rdp", "pld"}
        Accountant; sampling without replacement needs ``"rdp"``.
    sampling : {"without_replacement", "poisson"}
        How the batch is drawn when b < m (Poisson rate b/m needs ``neighboring="add_remove"``).
    neighboring : {"replace_one", "add_remove"}
        Neighbouring relation on the worker's dataset.

    Returns
    -------
    float
        Noise standard deviation per coordinate on the averaged gradient.

    Examples
    --------
    Full-batch D-GD releases one Gaussian mechanism per step with replace-one sensitivity
    2C/m, so s = 2C/m · σ(ε, δ) for one step:

    >>> from trilemma.accountants import calibrate_gaussian
    >>> s = worker_noise_std(epsilon=1.0, delta=1e-5, steps=1, local_size=100, clip=1.0)
    >>> z = calibrate_gaussian(target_epsilon=1.0, delta=1e-5, method="rdp")
    >>> abs(s - 2 * z / 100) < 1e-6
    True
    """
    m, b = _check_sizes(local_size, batch_size)
    c = check_real("clip", clip, low=0, low_open=True)
    z = calibrate_dpsgd(
        target_epsilon=epsilon,
        steps=steps,
        delta=delta,
        dataset_size=m,
        batch_size=b,
        method=method,
        sampling=sampling,
        neighboring=neighboring,
    )
    return z * c / b


def worker_epsilon(
    *,
    noise_std: float,
    delta: float,
    steps: int,
    local_size: int,
    clip: float,
    batch_size: int | None = None,
    method: Method = "rdp",
    sampling: Sampling = "without_replacement",
    neighboring: Neighboring = "replace_one",
) -> float:
    """ε of one honest worker that adds N(0, noise_std² I) to its averaged clipped gradient
    (inverse of :func:`worker_noise_std`; same parameters).

    Examples
    --------
    >>> kwargs = dict(delta=1e-5, steps=200, local_size=500, batch_size=25, clip=1.0)
    >>> s = worker_noise_std(epsilon=2.0, **kwargs)
    >>> round(worker_epsilon(noise_std=s, **kwargs), 4)
    2.0
    """
    m, b = _check_sizes(local_size, batch_size)
    c = check_real("clip", clip, low=0, low_open=True)
    s = check_real("noise_std", noise_std, low=0, low_open=True)
    return dpsgd_epsilon(
        noise_multiplier=s * b / c,
        steps=steps,
        delta=delta,
        dataset_size=m,
        batch_size=b,
        method=method,
        sampling=sampling,
        neighboring=neighboring,
    )

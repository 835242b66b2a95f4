"""A training run described by one frozen dataclass, loadable from TOML or JSON.

Every field has a default, so ``RunConfig()`` is a complete run (NNM∘CWTM against ALIE on
digits split with extreme heterogeneity, the setting of Allouah et al., NeurIPS 2023,
arXiv:2309.13591: about 96 % test accuracy with f = 2 of 12 workers Byzantine) and a file only
lists what it changes::

    name = "digits-sign-flipping"
    attack = "sign_flipping"
    f = 3
    steps = 500

Checks run at construction, so a bad file fails before any data is loaded, with a message
naming the field and its valid range or choices.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trilemma import aggregators
from trilemma._validation import check_choice, check_int, check_real, check_workers
from trilemma.dgd.byzantine import attack_names
from trilemma.dgd.data import SPLITS

__all__ = ["MODELS", "RunConfig"]

MODELS: tuple[str, ...] = ("logistic", "mlp")
_DATASETS = ("digits", "breast_cancer", "wine")
_DTYPES = ("float32", "float64")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """One robust D-GD / D-SGD / SAFE-DSHB run on a classification dataset.

    Attributes
    ----------
    name : str
        Folder of the run under the output directory (letters, digits, ``.``, ``_``, ``-``).
    dataset : str
        ``"digits"``, ``"breast_cancer"``, ``"wine"`` (scikit-learn, offline) or the path of a
        LIBSVM file.
    split : str
        Heterogeneity of the honest workers' data, one of :data:`trilemma.dgd.SPLITS`.
    alpha : float
        Dirichlet concentration α > 0 (``split="dirichlet"``).
    similarity : float
        Fraction γ ∈ [0, 1] of iid data per worker (``split="gamma"``).
    workers : int
        Honest workers h ≥ 1.
    per_worker : int
        Training examples per honest worker m ≥ 1.
    test_fraction : float
        Share of the dataset held out for the test accuracy, in [0, 1) (taken before the split).
    model : str
        ``"logistic"`` (multinomial logistic regression) or ``"mlp"`` (one hidden layer).
    hidden : int
        Width of the MLP's hidden layer.
    ridge : float
        L2 coefficient λ ≥ 0.
    rule : str
        Aggregation rule, a name of :func:`trilemma.aggregators.get` (``"nnm>>cwtm"`` composes).
    f : int
        Byzantine workers, 2f < h + f.
    attack : str
        One of :data:`trilemma.dgd.ATTACKS` (ignored when f = 0).
    steps : int
        Training steps T ≥ 1.
    lr : float
        Step size γ > 0.
    batch_size : int or None
        Examples per worker and step (None: full gradients, D-GD).
    momentum : float
        Worker momentum β ∈ [0, 1).
    clip : float or None
        Per-example clipping norm C > 0 (required with ``epsilon``).
    epsilon : float or None
        Per-worker privacy budget ε > 0 of the T messages (None: no noise); the noise std comes
        from :func:`trilemma.accountants.worker_noise_std` with ``delta``.
    delta : float
        δ ∈ (0, 1).
    graph : str or None
        Decentralized run (D-SGD with gossip, :mod:`trilemma.decentralized`) on this graph spec
        (``"ring:16"``, ``"torus:4x4"``, …; one node per worker, f = 0, no momentum; ``rule``
        and ``attack`` unused); None: the server run above. With ``epsilon`` the noise is
        DECOR's pair (σ, σ_cor) of :func:`trilemma.decentralized.calibrate_decor`.
    mixing : str
        Gossip matrix of a decentralized run: ``"metropolis"`` or ``"average"`` (W = 11ᵀ/n).
    sigma, sigma_cor : float
        Explicit local and edge noise std of a decentralized run without ``epsilon``.
    seeds : int
        Runs batched through one computation (different starts for the MLP, different batches
        and noise when stochastic) ≥ 1.
    seed : int
        Seed of the data split, the starts and the random draws.
    log_every : int
        Steps between two rows of ``metrics.csv`` ≥ 1 (the last step is always logged).
    checkpoint_every : int
        Steps between two checkpoints ≥ 1 (the last step always writes one).
    device : str
        ``"cpu"`` or ``"cuda[:k]"``.
    dtype : str
        ``"float32"`` or ``"float64"``.
    """

    name: str = "digits-nnm-cwtm"
    dataset: str = "digits"
    split: str = "extreme"
    alpha: float = 1.0
    similarity: float = 0.5
    workers: int = 10
    per_worker: int = 120
    test_fraction: float = 0.2
    model: str = "logistic"
    hidden: int = 32
    ridge: float = 1e-3
    rule: str = "nnm>>cwtm"
    f: int = 2
    attack: str = "alie"
    steps: int = 300
    lr: float = 0.5
    batch_size: int | None = None
    momentum: float = 0.0
    clip: float | None = None
    epsilon: float | None = None
    delta: float = 1e-5
    graph: str | None = None
    mixing: str = "metropolis"
    sigma: float = 0.0
    sigma_cor: float = 0.0
    seeds: int = 1
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 50
    device: str = "cpu"
    dtype: str = "float64"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"name={self.name!r} must be a folder name: letters, digits, '.', '_', '-'"
            )
        if not isinstance(self.dataset, str):
            raise TypeError(f"dataset must be a string, got {type(self.dataset).__name__}")
        if self.dataset not in _DATASETS and not Path(self.dataset).is_file():
            raise ValueError(
                f"dataset={self.dataset!r} is neither one of {list(_DATASETS)} nor an existing "
                "LIBSVM file"
            )
        check_choice("split", self.split, SPLITS)
        check_real("alpha", self.alpha, low=0, low_open=True)
        check_real("similarity", self.similarity, low=0, high=1)
        check_int("workers", self.workers, low=1)
        check_int("per_worker", self.per_worker, low=1)
        check_real("test_fraction", self.test_fraction, low=0, high=1, high_open=True)
        check_choice("model", self.model, MODELS)
        check_int("hidden", self.hidden, low=1)
        check_real("ridge", self.ridge, low=0)
        f = check_int("f", self.f, low=0)
        n = self.workers + f
        check_workers(n=n, f=f, n_text=f"n = workers + f = {n}", detail=", i.e. f < workers")
        try:
            aggregators.get(self.rule, f=f)
        except (ValueError, TypeError) as error:
            raise type(error)(f"rule={self.rule!r}: {error}") from error
        check_choice("attack", self.attack, attack_names())
        check_int("steps", self.steps, low=1)
        check_real("lr", self.lr, low=0, low_open=True)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size, low=1, high=self.per_worker)
        check_real("momentum", self.momentum, low=0, high=1, high_open=True)
        if self.clip is not None:
            check_real("clip", self.clip, low=0, low_open=True)
        if self.epsilon is not None:
            check_real("epsilon", self.epsilon, low=0, low_open=True)
            if self.clip is None:
                raise ValueError("epsilon needs clip: the noise is calibrated to the clip norm C")
        check_real("delta", self.delta, low=0, high=1, low_open=True, high_open=True)
        self._check_graph()
        check_int("seeds", self.seeds, low=1)
        check_int("seed", self.seed, low=0)
        check_int("log_every", self.log_every, low=1)
        check_int("checkpoint_every", self.checkpoint_every, low=1)
        if not isinstance(self.device, str) or not (
            self.device == "cpu" or self.device.startswith("cuda")
        ):
            raise ValueError(f"device={self.device!r} must be 'cpu' or 'cuda[:k]'")
        check_choice("dtype", self.dtype, _DTYPES)

    def _check_graph(self) -> None:
        from trilemma.accountants import as_topology
        from trilemma.decentralized.mixing import MIXINGS

        check_choice("mixing", self.mixing, MIXINGS)
        check_real("sigma", self.sigma, low=0)
        check_real("sigma_cor", self.sigma_cor, low=0)
        if self.graph is None:
            if self.sigma or self.sigma_cor:
                raise ValueError(
                    "sigma and sigma_cor are the noise of a decentralized run: set graph"
                )
            return
        nodes = as_topology(self.graph).n_nodes
        if nodes != self.workers:
            raise ValueError(f"graph={self.graph!r} has {nodes} nodes but workers={self.workers}")
        if self.f or self.momentum:
            raise ValueError("a decentralized run (graph) has f = 0 and momentum = 0")
        if self.epsilon is not None and (self.sigma or self.sigma_cor):
            raise ValueError("give epsilon (calibrated noise) or sigma/sigma_cor, not both")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> RunConfig:
        """Build from a mapping of field names (unknown keys are refused, listing the valid
        ones)."""
        known = [item.name for item in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown run config keys {unknown}; valid keys: {known}")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """Load a ``.toml`` or ``.json`` file (a flat table of field names)."""
        path = Path(path)
        if path.suffix not in (".toml", ".json"):
            raise ValueError(f"config file {str(path)!r} must end in .toml or .json")
        text = path.read_text(encoding="utf-8")
        values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        if not isinstance(values, dict):
            raise ValueError(f"config file {str(path)!r} must hold one table of fields")
        return cls.from_mapping(values)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with ``changes`` applied (and checked)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values (JSON-ready)."""
        return dataclasses.asdict(self)

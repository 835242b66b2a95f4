"""Time DECOR rounds: trilemma's batched runner against a per-node Python loop; print a table.

Both sides run the same rounds of D-SGD with correlated noise (Allouah et al., ICML 2024,
arXiv:2405.01031, Alg. 1) on the same data and graph from θ₀ = 0: n nodes on a torus
(``torus:4x4`` for 16 nodes, ``torus:16x16`` for 256), each holding m = 16 examples of a
synthetic two-class problem (31 standard-normal features with a bias column, labels from a
random linear rule), multinomial logistic regression (P = 64 parameters). One round: every node
draws b = 8 of its examples without replacement, takes the mean gradient, clips it to C = 1
(user level), adds N(0, σ² I) and ± one N(0, σ_cor² I) secret per incident edge, steps
θ_i − γ(·), then gossips with Metropolis–Hastings weights.

- trilemma: :class:`trilemma.decentralized.DecentralizedSGD` (``measure=False``): every node's
  example gradients in one call, the secrets by two ``index_add_``, the gossip one matmul; and
  the same with S seeds batched (``--seeds``, default 16), reported as seed-rounds/s;
- per-node loop: the plain PyTorch loop — per node, its batch through ``loss.backward()`` on its
  own parameter tensor, clipping, its noise summed edge by edge over its neighbours, then per
  node the weighted sum of its neighbours' half-steps.

The loop consumes the random numbers in the runner's order (batch keys, local noise, secrets,
from one generator with the same seed), so both reach the same θ_T: the table reports the
largest |θ_T − θ_T(trilemma)|. float64 on the CPU (``--device cuda``: both sides on the GPU);
rates are rounds per second over the best of ``--repeats`` interleaved runs after one untimed
warm-up run of each side (see ``benchmarks/_harness.py``); ``--quick`` runs 20 rounds, best of 1.

Floor: the random numbers a round must draw whatever the implementation — n·m batch keys,
n·P local Gaussians and one P-vector secret per edge — drawn by torch on the same device and
dtype, T rounds, in the same run; each row gives the floor's rounds/s and trilemma's time over
the floor's (the runner's other work: gradients, clipping, the secrets' two ``index_add_``,
the gossip product).

With ``--decor PATH`` (PATH: a working copy of github.com/elfirdoussilab1/DECOR, the directory
holding its ``worker.py``; not part of this repository, and its ``misc`` needs pandas and
matplotlib), a second table times the reference's own round as its
``tuning_libsvm.py::train_decentralized`` runs it: for every node ``Worker.grad_descent(V[i],
lr, weight_decay)`` (a batch from the node's shuffled DataLoader, the BCE gradient of its
``models.libsvm_model`` — 123 inputs and a bias, P = 124 — clipped to C as a whole (user
level), plus N(0, σ² I) and the sum of the node's row of the antisymmetric secrets), then for
every node ``Worker.decentralized_learning(W[i], all_parameters)``. Its problem: the a9a
training-set size split evenly (m = 32 561 // n examples per node, b = 64, momentum 0, weight
decay 10⁻⁵, as in ``tuning_libsvm.py``), synthetic standard-normal features with labels from a
random linear rule, W the Metropolis–Hastings matrix of the same torus. Against it,
:class:`~trilemma.decentralized.DecentralizedSGD` runs the same m, b, C, σ, σ_cor, γ and graph
on the same features with a constant column, as two-class softmax regression (P = 2 × 124 =
248: our package's logistic regression; the reference's model has one output). What differs
besides: the reference works in float32, ours in float64 (the first rows' precision) and, in
a second column, float32; it draws its secrets once (V before the loop, reused every round,
each scaled by σ_cor·w_ij) where ours draws a fresh N(0, σ_cor² w_jk I) per edge and round; it
sums all n rows of V (zeros off the graph) and averages over all n nodes with W[i], O(n²P) per
round, where ours touches only the edges and multiplies by W once; it reshuffles its DataLoader
once per epoch where ours draws a fresh batch (b of m keys sorted) per node and round; ours has
no weight decay. Random numbers come from different generators, so the trajectories are not
compared. Each worker starts from its own copy of θ₀ = 0 (the training script hands all
workers the server's one tensor, which the first in-place update then shares among them).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from types import ModuleType

import _harness as harness
import torch

from trilemma.accountants import as_topology
from trilemma.decentralized import DecentralizedSGD, edge_list, metropolis_hastings
from trilemma.dgd import SoftmaxRegression

GRAPHS = {16: "torus:4x4", 256: "torus:16x16"}
PER_NODE, BATCH, FEATURES, CLIP, LR, SIGMA, SIGMA_COR = 16, 8, 30, 1.0, 0.05, 0.5, 2.0
A9A_TRAIN, A9A_FEATURES, DECOR_BATCH, DECOR_WEIGHT_DECAY = 32561, 123, 64, 1e-5


def make_problem(nodes: int, device: torch.device) -> SoftmaxRegression:
    """The synthetic two-class problem of the module docstring (seed 0), on ``device``."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(nodes, PER_NODE, FEATURES, generator=generator, dtype=torch.float64)
    rule = torch.randn(FEATURES, generator=generator, dtype=torch.float64)
    labels = (x @ rule > 0).long()
    features = torch.cat([x, torch.ones(nodes, PER_NODE, 1, dtype=torch.float64)], dim=-1)
    return SoftmaxRegression(features.to(device), labels.to(device), classes=2)


def draws(problem: SoftmaxRegression, graph: str, steps: int) -> torch.Tensor:
    """The floor: ``steps`` rounds of the random numbers of a round (batch keys, local noise,
    one secret per edge) on the problem's device and dtype."""
    n, m, _ = problem.features.shape
    edges = len(edge_list(as_topology(graph))[0])
    device, dtype = problem.features.device, problem.features.dtype
    generator = torch.Generator(device).manual_seed(1)
    out = torch.empty(0)
    for _ in range(steps):
        torch.rand((n, m), generator=generator, device=device, dtype=dtype)
        torch.randn((n, problem.dimension), generator=generator, device=device, dtype=dtype)
        out = torch.randn(
            (edges, problem.dimension), generator=generator, device=device, dtype=dtype
        )
    return out


def ours(problem: SoftmaxRegression, graph: str, steps: int, seeds: int) -> torch.Tensor:
    """θ_T of the batched runner, ``(seeds, n, P)``."""
    algorithm = DecentralizedSGD(
        problem,
        graph,
        lr=LR,
        batch_size=BATCH,
        clip=CLIP,
        clipping="node",
        sigma=SIGMA,
        sigma_cor=SIGMA_COR,
    )
    device = problem.features.device
    state = algorithm.start(
        torch.zeros(seeds, problem.dimension, dtype=torch.float64, device=device)
    )
    generator = torch.Generator(device).manual_seed(1)
    for _ in range(steps):
        state, _ = algorithm.step(state, generator, measure=False)
    return state.theta


def per_node_loop(problem: SoftmaxRegression, graph: str, steps: int) -> torch.Tensor:
    """θ_T of the per-node loop, ``(n, P)``."""
    topology = as_topology(graph)
    w = metropolis_hastings(topology)
    heads, tails, _ = edge_list(topology)
    incident: list[list[tuple[int, float]]] = [[] for _ in range(topology.n_nodes)]
    for e, (j, k) in enumerate(zip(heads.tolist(), tails.tolist(), strict=True)):
        incident[j].append((e, 1.0))
        incident[k].append((e, -1.0))
    neighbours = [[(j, float(w[i, j])) for j in w[i].nonzero()[0]] for i in range(len(w))]
    n, m, p = problem.features.shape
    dimension = problem.dimension
    device = problem.features.device
    dtype = torch.float64
    theta = [torch.zeros(dimension, dtype=dtype, device=device) for _ in range(n)]
    generator = torch.Generator(device).manual_seed(1)
    for _ in range(steps):
        keys = torch.rand((1, n, m), generator=generator, dtype=dtype, device=device)[0]
        shape = (1, n, dimension)
        local = torch.randn(shape, generator=generator, dtype=dtype, device=device)[0]
        shape = (1, len(heads), dimension)
        secrets = torch.randn(shape, generator=generator, dtype=dtype, device=device)[0]
        half = []
        for i in range(n):
            batch = keys[i].argsort()[:BATCH]
            weights = theta[i].clone().requires_grad_(True)
            logits = problem.features[i, batch] @ weights.view(p, problem.classes)
            loss = torch.nn.functional.cross_entropy(logits, problem.labels[i, batch])
            loss.backward()
            grad = weights.grad
            assert grad is not None  # backward() filled it
            grad = grad * min(1.0, CLIP / float(grad.norm()))
            noise = SIGMA * local[i]
            for e, sign in incident[i]:
                noise = noise + sign * SIGMA_COR * secrets[e]
            half.append(theta[i] - LR * (grad + noise))
        theta = [sum(weight * half[j] for j, weight in neighbours[i]) for i in range(n)]
    return torch.stack(theta)


def _ignoring_index(function: Callable[[], object]) -> Callable[[int], object]:
    """``function`` as a side's run, which receives the run index."""
    return lambda _: function()


def best_rates(
    functions: Sequence[Callable[[], object]], steps: int, repeats: int, timer: harness.Timer
) -> list[tuple[float, object]]:
    """Per function: (rounds/s over the best of ``repeats`` interleaved runs after one warm-up
    run, the result of its last run)."""
    sides = [harness.Side(_ignoring_index(function)) for function in functions]
    timings = harness.best_of(sides, repeats, timer=timer, keep="timed")
    return [(steps / t.seconds, t.outputs[-1]) for t in timings]


def load_decor(path: str) -> tuple[ModuleType, ModuleType, ModuleType]:
    """Import the DECOR reference's ``worker``, ``misc`` and ``models`` from ``path``."""
    if path not in sys.path:
        sys.path.insert(0, path)
    worker, misc, models = (importlib.import_module(n) for n in ("worker", "misc", "models"))
    return worker, misc, models


def a9a_like(nodes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``(n, m, 123)`` and 0/1 labels ``(n, m)``, m = 32 561 // n (seed 0), float64."""
    generator = torch.Generator().manual_seed(0)
    m = A9A_TRAIN // nodes
    x = torch.randn(nodes, m, A9A_FEATURES, generator=generator, dtype=torch.float64)
    rule = torch.randn(A9A_FEATURES, generator=generator, dtype=torch.float64)
    return x, (x @ rule > 0).long()


def decor_workers(
    decor: tuple[ModuleType, ...], nodes: int
) -> tuple[list, torch.Tensor, torch.Tensor]:
    """The reference's Workers on :func:`a9a_like` data, its secrets V ``(n, n, 124)``, W."""
    worker, misc, _ = decor
    x, y = a9a_like(nodes)
    misc.fix_seed(1)
    w = torch.as_tensor(metropolis_hastings(as_topology(GRAPHS[nodes])), dtype=torch.float32)
    workers = []
    for i in range(nodes):
        data = torch.utils.data.TensorDataset(x[i].float(), y[i].float())
        loader = torch.utils.data.DataLoader(data, batch_size=DECOR_BATCH, shuffle=True)
        node = worker.Worker(
            train_data_loader=loader,
            test_data_loader=loader,
            batch_size=DECOR_BATCH,
            model="libsvm_model",
            loss="BCELoss",
            momentum=0.0,
            gradient_clip=CLIP,
            sigma=SIGMA,
            num_labels=2,
            criterion="libsvm_topk",
            num_evaluations=1,
            device="cpu",
            privacy="user",
        )
        node.flat_parameters = torch.zeros(node.model_size)
        node.update_model_parameters()
        workers.append(node)
    secrets = torch.randn(nodes, nodes, workers[0].model_size) * SIGMA_COR
    return workers, misc.to_antisymmetric(secrets, w, "cpu"), w


def decor_rounds(workers: list, secrets: torch.Tensor, w: torch.Tensor, steps: int) -> None:
    """``steps`` rounds of the reference's loop (``tuning_libsvm.py::train_decentralized``)."""
    for _ in range(steps):
        half = torch.stack(
            [
                node.grad_descent(secrets[i], lr=LR, weight_decay=DECOR_WEIGHT_DECAY)
                for i, node in enumerate(workers)
            ]
        )
        for i, node in enumerate(workers):
            node.decentralized_learning(weights=w[i], workers_parameters=half)


def a9a_problem(nodes: int, dtype: torch.dtype) -> SoftmaxRegression:
    """:func:`a9a_like` data with a constant column as two-class softmax regression."""
    x, y = a9a_like(nodes)
    features = torch.cat([x, torch.ones(*x.shape[:2], 1, dtype=torch.float64)], dim=-1)
    return SoftmaxRegression(features.to(dtype), y, classes=2)


def ours_a9a_like(nodes: int, steps: int, dtype: torch.dtype) -> torch.Tensor:
    """θ_T of the batched runner on :func:`a9a_like` data in ``dtype``, the reference's m, b,
    C, σ, σ_cor, γ."""
    problem = a9a_problem(nodes, dtype)
    algorithm = DecentralizedSGD(
        problem,
        GRAPHS[nodes],
        lr=LR,
        batch_size=DECOR_BATCH,
        clip=CLIP,
        clipping="node",
        sigma=SIGMA,
        sigma_cor=SIGMA_COR,
    )
    state = algorithm.start(torch.zeros(problem.dimension, dtype=dtype))
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        state, _ = algorithm.step(state, generator, measure=False)
    return state.theta


def decor_table(path: str, sizes: Sequence[int], steps: int, repeats: int) -> None:
    """Print the table of trilemma's runner against the DECOR reference's round (CPU)."""
    decor = load_decor(path)
    timer = harness.Timer("cpu")
    print(f"\n## Against the DECOR reference ({path}), T = {steps} rounds, best of {repeats}")
    print(f"b = {DECOR_BATCH}; reference float32 with P = 124; trilemma P = 248; on the CPU\n")
    lines = []
    for nodes in sizes:
        workers, secrets, w = decor_workers(decor, nodes)
        floor_problem = a9a_problem(nodes, torch.float64)
        functions: list[Callable[[], object]] = [
            partial(ours_a9a_like, nodes, steps, torch.float64),
            partial(ours_a9a_like, nodes, steps, torch.float32),
            partial(decor_rounds, workers, secrets, w, steps),
            partial(draws, floor_problem, GRAPHS[nodes], steps),
        ]
        (double, _), (single, _), (reference, _), (floor, _) = best_rates(
            functions, steps, repeats, timer
        )
        lines.append(
            [
                str(nodes),
                GRAPHS[nodes],
                str(A9A_TRAIN // nodes),
                harness.rate(double),
                harness.rate(single),
                harness.rate(reference),
                harness.rate(floor),
                harness.times(floor / double),
                f"{harness.times(double / reference)}×",
                f"{harness.times(single / reference)}×",
            ]
        )
    header = [
        "nodes",
        "graph",
        "m per node",
        "trilemma float64 rounds/s",
        "trilemma float32 rounds/s",
        "DECOR reference rounds/s",
        "floor float64 rounds/s",
        "trilemma float64 / floor",
        "speed-up float64",
        "speed-up float32",
    ]
    print(harness.markdown_table(header, lines, align="rl" + "r" * 8))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print a markdown table; ``argv`` defaults to ``sys.argv[1:]``. Returns
    the exit status, 0.
    """
    parser = harness.make_parser(
        __doc__,
        repeats=3,
        quick_repeats=1,
        quick="20 rounds, best of 1",
    )
    parser.add_argument("--steps", type=int, help="rounds T (default 50; quick 20)")
    parser.add_argument("--seeds", type=int, default=16, help="S of the batched run (16)")
    parser.add_argument("--nodes", default="16,256", help="comma-separated subset of 16,256")
    parser.add_argument("--decor", metavar="PATH", help="directory holding DECOR's worker.py")
    args = harness.parse(parser, argv)
    if args.decor and not os.path.isfile(os.path.join(args.decor, "worker.py")):
        parser.error(f"--decor {args.decor!r} has no worker.py")
    steps = args.steps or (20 if args.quick else 50)
    sizes = [int(v) for v in args.nodes.split(",")]
    if steps < 1 or args.seeds < 1 or not set(sizes) <= set(GRAPHS):
        parser.error("--steps and --seeds must be ≥ 1 and --nodes a subset of 16,256")
    timer = harness.Timer(args.device)
    start = harness.print_header(
        "DECOR rounds: trilemma's batched runner vs a per-node loop vs the floor",
        device=args.device,
    )
    print(
        f"float64 on {args.device}; T = {steps} rounds, best of {args.repeats} after a warm-up "
        f"run; m = {PER_NODE}, b = {BATCH}"
    )
    print()
    lines = []
    for nodes in sizes:
        problem, graph = make_problem(nodes, args.device), GRAPHS[nodes]
        functions: list[Callable[[], object]] = [
            partial(ours, problem, graph, steps, 1),
            partial(ours, problem, graph, steps, args.seeds),
            partial(per_node_loop, problem, graph, steps),
            partial(draws, problem, graph, steps),
        ]
        (single, theta), (batched, _), (loop, loop_theta), (floor, _) = best_rates(
            functions, steps, args.repeats, timer
        )
        assert isinstance(theta, torch.Tensor) and isinstance(loop_theta, torch.Tensor)
        lines.append(
            [
                str(nodes),
                graph,
                harness.rate(single),
                f"{harness.rate(batched * args.seeds)} (S = {args.seeds})",
                harness.rate(loop),
                harness.rate(floor),
                harness.times(floor / single),
                f"{single / loop:,.0f}×",
                f"{float((theta[0] - loop_theta).abs().max()):.1e}",
            ]
        )
    header = [
        "nodes",
        "graph",
        "trilemma rounds/s",
        "trilemma, S seeds: seed-rounds/s",
        "per-node loop rounds/s",
        "floor rounds/s",
        "trilemma / floor",
        "speed-up",
        "max abs θ_T diff",
    ]
    print(harness.markdown_table(header, lines, align="rl" + "r" * 7))
    print(
        "\nfloor: the random numbers of T rounds (batch keys, local noise, one secret per edge) "
        "drawn on the same device; trilemma / floor: the runner's time over the floor's."
    )
    if args.decor:
        decor_table(args.decor, sizes, steps, args.repeats)
    harness.print_footer(start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

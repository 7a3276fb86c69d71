"""NAS-Bench-201 cells (Dong & Yang 2020) in node-labelled form.

The official cell has 4 nodes and an op on each of its 6 edges. As an Architecture each edge op is a
node: input, the six edges in arch-string order e(0->1), e(0->2), e(1->2), e(0->3), e(1->3), e(2->3),
then the output. The op node of e(i->j) takes the op nodes of the edges into cell node i (the input
when i = 0); the output takes the op nodes of the edges into cell node 3.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nas_ray.errors import InvalidArchitecture, UnknownName
from nas_ray.graph import Architecture
from nas_ray.spaces.base import INPUT, OUTPUT, NodeMasks, SearchSpace, StepMasks, as_rng

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Cell edges (from, to) in the order of the arch string.
CELL_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_CELLS = len(OPS) ** len(CELL_EDGES)  # 15,625


def _skeleton() -> np.ndarray:
    m = np.zeros((8, 8), dtype=np.int8)
    for k, (i, _) in enumerate(CELL_EDGES, start=1):
        if i == 0:
            m[0, k] = 1
        for h, (_, j) in enumerate(CELL_EDGES, start=1):
            if j == i:
                m[h, k] = 1
    for h, (_, j) in enumerate(CELL_EDGES, start=1):
        if j == 3:
            m[h, 7] = 1
    m.setflags(write=False)
    return m


SKELETON = _skeleton()
_SKELETON_BYTES = SKELETON.tobytes()


# Published 100-query anchors on NB201 test accuracy: the GraphPNAS paper, and random search
# reproduced on the benchmark table over 500 seeds.
NB201_ANCHORS = {
    "cifar10": {"GraphPNAS (paper)": 94.34, "REINFORCE (paper)": 93.90, "random (paper)": 93.86, "random (reproduced, 500 seeds)": 93.75},
    "cifar100": {"GraphPNAS (paper)": 73.35, "REINFORCE (paper)": 71.86, "random (paper)": 71.55, "random (reproduced, 500 seeds)": 71.50},
    "imagenet16-120": {"GraphPNAS (paper)": 46.50, "REINFORCE (paper)": 45.64, "random (paper)": 45.28, "random (reproduced, 500 seeds)": 45.49},
}


class NasBench201(SearchSpace):
    """The NAS-Bench-201 cell space: 5 ops on 6 fixed edges, 15,625 cells.

    ``hash`` is the official arch string, so every one of the 15,625 cells is distinct (as in the
    benchmark, which lists cells whose ``none`` edges make them compute the same function separately).
    ``sample`` is exactly uniform over the cells; ``mutate`` changes the op of one edge (the mutation of
    NB201's regularized evolution); ``enumerate`` yields every cell.

    >>> space = NasBench201()
    >>> arch = space.from_native("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    >>> space.to_native(arch) == space.hash(arch)
    True
    """

    name = "nasbench201"
    ops = OPS
    max_nodes = 8
    max_edges = int(SKELETON.sum())
    size = NUM_CELLS
    edge_limits_depend_on_op = False
    priors = {"no_none": "_prior_no_none"}
    benchmark_datasets = ("cifar10", "cifar100", "imagenet16-120")

    # ------------------------------------------------------------------ hooks for methods and tools
    def _dataset(self, dataset: str | None) -> str:
        dataset = dataset or self.benchmark_datasets[0]
        if dataset not in self.benchmark_datasets:
            raise UnknownName(f"unknown NAS-Bench-201 dataset {dataset!r}; datasets: {', '.join(self.benchmark_datasets)}")
        return dataset

    def benchmark(self, dataset: str | None = None) -> str:
        return f"table:nasbench201:{self._dataset(dataset)}"

    def graphpnas_preset(self, dataset: str | None = None) -> str:
        return f"nb201-{self._dataset(dataset)}"  # the official code's per-dataset settings

    def triplet_thresholds(self) -> tuple[float, float]:
        return 2.0, 4.0  # SVGe, App. Table 4

    def published(self, what: str, dataset: str | None = None) -> dict[str, Any]:
        if what == "bench":
            return dict(NB201_ANCHORS.get(self._dataset(dataset), {}))
        return {}

    def vae_dataset(self, data_dir: Any = None, *, seed: int = 0, test_fraction: float = 0.1) -> Any:
        from nas_ray.evaluators.tables import load_nasbench201
        from nas_ray.latent import VAEData, split_graphs

        table = load_nasbench201(data_dir, with_costs=False)
        archs = list(self.enumerate())
        y = np.array([table.values[table.rows[self.hash(a)], table.columns.index("c10_val12")] for a in archs])
        return VAEData(*split_graphs(archs, y, seed, test_fraction), source="all 15,625 NB201 cells (labels: c10_val12, GP metrics only)")

    def _edge_ops(self, arch: Architecture) -> tuple[str, ...]:
        """The six edge ops in arch-string order; relabelled node orders are mapped back."""
        if arch.num_nodes != 8:
            raise InvalidArchitecture(f"{self.name}: a cell has 8 nodes in node-labelled form, got {arch.num_nodes}")
        self._check_ops(arch)
        if arch.matrix.tobytes() == _SKELETON_BYTES:
            return arch.ops[1:7]
        order = self._match_skeleton(arch)
        return tuple(arch.ops[order[k]] for k in range(1, 7))

    def _match_skeleton(self, arch: Architecture) -> dict[int, int]:
        import networkx as nx
        from networkx.algorithms.isomorphism import DiGraphMatcher

        skeleton = nx.DiGraph(np.asarray(SKELETON))
        matcher = DiGraphMatcher(skeleton, nx.DiGraph(np.asarray(arch.matrix)))
        if not matcher.is_isomorphic():
            raise InvalidArchitecture(
                f"{self.name}: the edges {arch.edges} are not the NB201 cell's wiring "
                f"{[tuple(e) for e in np.argwhere(SKELETON).tolist()]}"
            )
        return matcher.mapping  # skeleton node -> arch node (unique: the skeleton has no automorphism)

    def validate(self, arch: Architecture) -> None:
        self._edge_ops(arch)

    def canonicalize(self, arch: Architecture) -> Architecture:
        ops = self._edge_ops(arch)
        if arch.matrix.tobytes() == _SKELETON_BYTES:
            return arch
        return self._build(ops)

    def hash(self, arch: Architecture) -> str:
        return _arch_string(self._edge_ops(arch))

    @staticmethod
    def _build(edge_ops: Sequence[str]) -> Architecture:
        # edge_ops come from OPS (callers check), SKELETON is read-only and upper-triangular
        return Architecture._trusted((INPUT, *edge_ops, OUTPUT), SKELETON)

    def decisions(self) -> list[tuple[str, tuple[str, ...]]]:
        """One op per cell edge: ``edge_{i}_{j}`` for e(i->j)."""
        return [(f"edge_{i}_{j}", OPS) for i, j in CELL_EDGES]

    def from_decisions(self, values: Mapping[str, str]) -> Architecture:
        ops = [values[f"edge_{i}_{j}"] for i, j in CELL_EDGES]
        bad = [o for o in ops if o not in OPS]
        if bad:
            raise InvalidArchitecture(f"{self.name}: unknown op {bad[0]!r}; ops: {', '.join(OPS)}")
        return self._build(ops)

    def to_decisions(self, arch: Architecture) -> dict[str, str]:
        return {f"edge_{i}_{j}": op for (i, j), op in zip(CELL_EDGES, self._edge_ops(arch))}

    # ------------------------------------------------------------------ native form
    def from_native(self, native: str) -> Architecture:
        """Parse an official arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
        if not isinstance(native, str):
            raise InvalidArchitecture(f"{self.name}: an arch string is a str, got {type(native).__name__}")
        nodes = native.split("+")
        if len(nodes) != 3:
            raise InvalidArchitecture(f"{self.name}: arch string {native!r} must have 3 '+'-separated nodes")
        edge_ops = {}
        for j, node in enumerate(nodes, start=1):
            parts = node.split("|")
            if len(parts) != j + 2 or parts[0] or parts[-1]:
                raise InvalidArchitecture(f"{self.name}: node {j} of arch string {native!r} must be |op~0|...|op~{j - 1}|")
            for i, token in enumerate(parts[1:-1]):
                op, sep, src = token.partition("~")
                if not sep or src != str(i):
                    raise InvalidArchitecture(f"{self.name}: edge {token!r} in arch string {native!r} must read op~{i}")
                if op not in OPS:
                    raise InvalidArchitecture(f"{self.name}: unknown op {op!r} in arch string {native!r}; ops: {', '.join(OPS)}")
                edge_ops[(i, j)] = op
        return self._build([edge_ops[e] for e in CELL_EDGES])

    def to_native(self, arch: Architecture) -> str:
        return self.hash(arch)

    def enumerate(self) -> Iterator[Architecture]:
        """All 15,625 cells."""
        for ops in itertools.product(OPS, repeat=len(CELL_EDGES)):
            yield self._build(ops)

    # ------------------------------------------------------------------ sampling and moves
    def sample(self, rng: np.random.Generator | int | None = None) -> Architecture:
        idx = as_rng(rng).integers(len(OPS), size=len(CELL_EDGES)).tolist()
        return self._build([OPS[i] for i in idx])

    def _prior_no_none(self, rng: np.random.Generator) -> Architecture:
        """A cell with a uniformly random op other than ``none`` on every edge (GraphPNAS's NB201 explorer)."""
        ops = [o for o in OPS if o != "none"]
        return self._build([ops[i] for i in rng.integers(len(ops), size=len(CELL_EDGES)).tolist()])

    def mutate(self, arch: Architecture, rng: np.random.Generator | int | None = None) -> Architecture:
        rng = as_rng(rng)
        ops = list(self._edge_ops(arch))
        k = int(rng.integers(len(ops)))
        others = [o for o in OPS if o != ops[k]]
        ops[k] = others[int(rng.integers(len(others)))]
        return self._build(ops)

    def step_masks(self, ops: Sequence[str], matrix: np.ndarray) -> StepMasks:
        # the wiring is fixed: the masks depend on the node count only
        return _STEP_MASKS[len(ops)] if len(ops) < 8 else super().step_masks(ops, matrix)

    def next_node_masks(self, ops: Sequence[str], matrix: np.ndarray, op: str | None = None) -> NodeMasks:
        n = len(ops)
        if n >= 8:
            raise InvalidArchitecture(f"{self.name}: a cell is complete at 8 nodes")
        kind = (INPUT,) if n == 0 else (OUTPUT,) if n == 7 else OPS
        preds = SKELETON[:n, n].astype(bool)
        k = int(preds.sum())
        return NodeMasks(self._op_mask(*kind), preds.copy(), preds.copy(), k, k)


def _arch_string(edge_ops: Sequence[str]) -> str:
    a, b, c, d, e, f = edge_ops
    return f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"


def _step_masks_by_size() -> list[StepMasks]:
    space = NasBench201()
    out = []
    for n in range(8):
        m = SearchSpace.step_masks(space, [INPUT] * n, SKELETON[:n, :n])
        for a in (m.ops, m.edges, m.required, m.min_edges, m.max_edges):
            a.setflags(write=False)
        out.append(m)
    return out


_STEP_MASKS = _step_masks_by_size()

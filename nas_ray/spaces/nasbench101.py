"""NAS-Bench-101 cells (Ying et al. 2019): at most 7 nodes and 9 edges after pruning."""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from nas_ray.errors import ConfigError, InvalidArchitecture
from nas_ray.graph import Architecture
from nas_ray.spaces import priors
from nas_ray.spaces.base import INPUT, OUTPUT, NodeMasks, SearchSpace, ancestors_and_descendants, as_rng
from nas_ray.spaces.table import TableDefinedSpace

CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
# The NB101 hash labels interior ops by their index in this list; input is -1, output -2.
_HASH_LABELS = {CONV3X3: 0, CONV1X1: 1, MAXPOOL3X3: 2, INPUT: -1, OUTPUT: -2}
_MAX_TRIES = 100_000


@functools.cache
def _graph_util() -> ModuleType:
    """nasbench-pytorch's ``graph_util`` (official ``hash_module``), loaded without the package's
    ``__init__``, which imports torch: hashing must not cost a torch import."""
    spec = importlib.util.find_spec("nasbench_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("nasbench-pytorch is required for NAS-Bench-101 hashing: pip install nasbench-pytorch")
    path = os.path.join(spec.submodule_search_locations[0], "model", "graph_util.py")
    name = "nas_ray._nasbench_graph_util"
    file_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def prune(matrix: np.ndarray, ops: Sequence[str]) -> tuple[np.ndarray, list[str]] | None:
    """Drop the nodes off every input -> output path, as NB101's ModelSpec does.
    Returns None when the input does not reach the output."""
    from_input, to_output = ancestors_and_descendants(matrix)
    if not to_output[0]:
        return None
    keep = from_input & to_output
    if keep.all():
        return matrix, list(ops)
    idx = np.nonzero(keep)[0]
    return matrix[np.ix_(idx, idx)], [ops[i] for i in idx]


class NasBench101(SearchSpace):
    """The NAS-Bench-101 cell space.

    ``canonicalize`` prunes nodes that lie on no input -> output path (as NB101 does) and the node /
    edge limits are checked on the pruned cell; ``hash`` is the official NB101 module hash, so it
    keys the NB101 tables directly.

    ``sample`` is NB101's own random-spec procedure: 7 nodes, each upper-triangular edge with
    probability 1/2, ops uniform, rejected until valid. It is uniform over valid 7-node *specs*, not
    over the 423,624 isomorphism classes: a class has as many specs as it has labelled forms, and
    enumerating the classes needs the full table.

    >>> space = NasBench101()
    >>> arch = space.sample(0)
    >>> space.hash(arch) == space.hash(space.canonicalize(arch))
    True
    """

    name = "nasbench101"
    ops = (CONV3X3, CONV1X1, MAXPOOL3X3)
    max_nodes = 7
    max_edges = 9
    priors = {"erdos_renyi": "_prior_erdos_renyi", "watts_strogatz": "_prior_watts_strogatz"}

    # ------------------------------------------------------------------ hooks for methods and tools
    def benchmark(self, dataset: str | None = None) -> str:
        return "table:nasbench101"  # the official TFRecord

    def graphpnas_preset(self, dataset: str | None = None) -> str:
        return "nb101"

    def triplet_thresholds(self) -> tuple[float, float]:
        return 3.0, 4.0  # SVGe, App. Table 4

    def vae_dataset(self, data_dir: Any = None, *, seed: int = 0, test_fraction: float = 0.1) -> Any:
        from nas_ray.evaluators.tables import load_nasbench101_subset
        from nas_ray.latent import VAEData, split_graphs

        table = load_nasbench101_subset(data_dir)
        archs = list(table.archs)
        y = np.asarray(table.column(table.columns[0]), dtype=float)
        return VAEData(*split_graphs(archs, y, seed, test_fraction), source=f"the {len(archs)}-cell NB101 sample")

    def _prune_checked(self, arch: Architecture) -> tuple[np.ndarray, list[str]]:
        self._check_ops(arch)
        pruned = prune(arch.matrix, arch.ops)
        if pruned is None:
            raise InvalidArchitecture(f"{self.name}: the input does not reach the output")
        m, ops = pruned
        if len(ops) > self.max_nodes:
            raise InvalidArchitecture(
                f"{self.name}: {len(ops)} nodes after pruning, at most {self.max_nodes} allowed"
            )
        edges = int(m.sum())
        if edges > self.max_edges:
            raise InvalidArchitecture(f"{self.name}: {edges} edges after pruning, at most {self.max_edges} allowed")
        return m, ops

    def validate(self, arch: Architecture) -> None:
        self._prune_checked(arch)

    def canonicalize(self, arch: Architecture) -> Architecture:
        m, ops = self._prune_checked(arch)
        if len(ops) == arch.num_nodes:
            return arch
        return Architecture(ops, m)

    def hash(self, arch: Architecture) -> str:
        m, ops = self._prune_checked(arch)
        return _graph_util().hash_module(np.asarray(m), [_HASH_LABELS[o] for o in ops])

    # ------------------------------------------------------------------ sampling
    def _random_spec(self, rng: np.random.Generator, matrix_fn) -> Architecture:  # noqa: ANN001
        n = self.max_nodes
        for _ in range(_MAX_TRIES):
            m = matrix_fn()
            interior = rng.integers(len(self.ops), size=n - 2)
            ops = [INPUT, *(self.ops[i] for i in interior), OUTPUT]
            pruned = prune(m, ops)
            if pruned is not None and int(pruned[0].sum()) <= self.max_edges:
                return Architecture(ops, m)
        raise ConfigError(f"{self.name}: no valid cell in {_MAX_TRIES} draws; the prior's parameters leave none")

    def sample(self, rng: np.random.Generator | int | None = None) -> Architecture:
        rng = as_rng(rng)
        return self._random_spec(rng, lambda: priors.erdos_renyi(self.max_nodes, 0.5, rng))

    def _prior_erdos_renyi(self, rng: np.random.Generator, p: float = 0.5, min_nodes: int | None = None) -> Architecture:
        """Each forward edge with probability ``p``; with ``min_nodes`` the cell has N ~ U{min_nodes..7}
        nodes (GraphPNAS's NB101 explorer: p = 0.25, min_nodes = 3), else 7. Rejected until valid."""
        if min_nodes is None:
            return self._random_spec(rng, lambda: priors.erdos_renyi(self.max_nodes, p, rng))
        if not 2 <= min_nodes <= self.max_nodes:
            raise ConfigError(f"erdos_renyi: min_nodes must be in [2, {self.max_nodes}], got {min_nodes}")
        for _ in range(_MAX_TRIES):
            n = int(rng.integers(min_nodes, self.max_nodes + 1))
            m = priors.erdos_renyi(n, p, rng)
            ops = [INPUT, *(self.ops[i] for i in rng.integers(len(self.ops), size=n - 2)), OUTPUT]
            pruned = prune(m, ops)
            if pruned is not None and int(pruned[0].sum()) <= self.max_edges:
                return Architecture(ops, m)
        raise ConfigError(f"{self.name}: no valid cell in {_MAX_TRIES} draws; the prior's parameters leave none")

    def _prior_watts_strogatz(self, rng: np.random.Generator, k: int = 2, p: float = 0.5) -> Architecture:
        return self._random_spec(rng, lambda: priors.watts_strogatz(self.max_nodes, k, p, rng))

    def mutate(self, arch: Architecture, rng: np.random.Generator | int | None = None) -> Architecture:
        """NB101's evolution mutation (mutation rate 1): flip each edge with probability 1/7 and
        change each interior op with probability 1/5, until the cell is valid and its hash differs."""
        rng = as_rng(rng)
        original = self.hash(arch)
        matrix, ops = self._padded(arch, rng)
        n = self.max_nodes
        upper = np.triu(np.ones((n, n), dtype=bool), k=1)
        for _ in range(_MAX_TRIES):
            flips = (rng.random((n, n)) < 1.0 / n) & upper
            m = matrix ^ flips.astype(np.int8)
            new_ops = list(ops)
            for i in range(1, n - 1):
                if rng.random() < 1.0 / (n - 2):
                    others = [o for o in self.ops if o != new_ops[i]]
                    new_ops[i] = others[rng.integers(len(others))]
            pruned = prune(m, new_ops)
            if pruned is None or int(pruned[0].sum()) > self.max_edges:
                continue
            child = Architecture(new_ops, m)
            if self.hash(child) != original:
                return child
        raise RuntimeError(f"{self.name}: no valid mutation of {arch!r} found")  # pragma: no cover

    def _padded(self, arch: Architecture, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        """The cell as 7 raw nodes: pruned cells get unconnected nodes (random ops) before the output,
        so that mutation can grow them back."""
        m, ops = self._prune_checked(arch)
        if arch.num_nodes == self.max_nodes:
            return arch.matrix.copy(), list(arch.ops)
        k = len(ops)
        extra = self.max_nodes - k
        padded = np.zeros((self.max_nodes, self.max_nodes), dtype=np.int8)
        padded[: k - 1, : k - 1] = m[: k - 1, : k - 1]
        padded[: k - 1, -1] = m[: k - 1, -1]
        new_ops = ops[:-1] + [self.ops[i] for i in rng.integers(len(self.ops), size=extra)] + [OUTPUT]
        return padded, new_ops

    # ------------------------------------------------------------------ construction masks
    def to_decisions(self, arch: Architecture) -> dict[str, Any] | None:
        """The decision values (7-node ops and edges) of ``arch``. A pruned cell of fewer nodes is
        padded with unconnected nodes before the output, which pruning removes again, so every cell
        has a decision form and ``from_decisions`` of it gives the same cell."""
        n, size = arch.num_nodes, int(self.max_nodes)
        if n > size:
            return None
        if n < size:
            ops = [*arch.ops[:-1], *[self.ops[0]] * (size - n), arch.ops[-1]]
            matrix = np.zeros((size, size), dtype=np.int8)
            matrix[: n - 1, : n - 1] = arch.matrix[: n - 1, : n - 1]
            matrix[: n - 1, size - 1] = arch.matrix[: n - 1, n - 1]
            arch = Architecture(ops, matrix)
        return super().to_decisions(arch)

    def next_node_masks(self, ops: Sequence[str], matrix: np.ndarray, op: str | None = None) -> NodeMasks:
        n = len(ops)
        if n == 0:
            return NodeMasks(self._op_mask(INPUT), np.zeros(0, bool), np.zeros(0, bool), 0, 0)
        remaining = self.max_edges - int(np.asarray(matrix).sum())
        allowed = [OUTPUT] if remaining >= 1 else []
        # An interior node needs one edge in and, later, one out: keep an edge for the output.
        if n < self.max_nodes - 1 and remaining >= 2:
            allowed += list(self.ops)
        reserve = 1 if op in self.ops else 0
        max_edges = min(n, max(remaining - reserve, 0))
        return NodeMasks(self._op_mask(*allowed), np.ones(n, bool), np.zeros(n, bool), 1, max_edges)


class NasBench101Subset(TableDefinedSpace):
    """The 292 cells of the NAS-Bench-101 sample table: ``nasbench101`` restricted to them.

    The table is ``nb101/nb101_naslib_subset500.csv`` (500 specs, one training run each; specs that
    prune to one cell are merged); validity is membership."""

    name = "nasbench101-subset"
    base = "nasbench101"

    def members(self) -> list[Architecture]:
        from nas_ray.evaluators.tables import load_nasbench101_subset

        return load_nasbench101_subset(self.data_dir).archs

    def benchmark(self, dataset: str | None = None) -> str:
        return "table:nasbench101-subset"

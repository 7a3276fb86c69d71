"""Randomly wired networks (Xie et al. 2019, "Exploring Randomly Wired Neural Networks")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nas_ray.errors import ConfigError, InvalidArchitecture
from nas_ray.graph import Architecture
from nas_ray.spaces import priors
from nas_ray.spaces.base import (
    INPUT,
    OUTPUT,
    NodeMasks,
    SearchSpace,
    ancestors_and_descendants,
    as_rng,
    check_every_node_on_a_path,
    wl_hash,
)

# RandWire's node: weighted-sum aggregation, then ReLU - 3x3 separable conv - BN.
NODE_OP = "relu_sepconv3x3_bn"
_MAX_TRIES = 100_000


class RandWire(SearchSpace):
    """Any DAG of ``num_nodes`` RandWire nodes (one op type) between an input and an output, in which
    every node lies on an input -> output path.

    ``sample`` is uniform over such graphs with labelled (topologically numbered) nodes: every
    upper-triangular edge with probability 1/2, rejected until valid. It is not uniform over
    isomorphism classes, which cannot be enumerated at this size. The RandWire generators are the
    priors ``erdos_renyi`` (p, default 0.2), ``barabasi_albert`` (m, default 5) and
    ``watts_strogatz`` (k, p, defaults 4, 0.75): a random undirected graph on the nodes, each edge
    directed from the lower to the higher index, the input feeding every node without an in-edge
    and every node without an out-edge feeding the output (paper §3.2-3.3). ``hash`` is a
    Weisfeiler-Lehman hash (equal for isomorphic graphs).

    >>> space = RandWire(num_nodes=8)
    >>> arch = space.sample_prior("watts_strogatz", 0, k=4, p=0.75)
    >>> space.is_valid(arch), arch.num_nodes
    (True, 10)
    """

    name = "randwire"
    ops = (NODE_OP,)
    priors = {
        "erdos_renyi": "_prior_erdos_renyi",
        "watts_strogatz": "_prior_watts_strogatz",
        "barabasi_albert": "_prior_barabasi_albert",
    }
    edge_limits_depend_on_op = False

    def __init__(self, num_nodes: int = 32) -> None:
        if not isinstance(num_nodes, (int, np.integer)) or num_nodes < 1:
            raise ConfigError(f"randwire: num_nodes must be a positive int, got {num_nodes!r}")
        self.num_nodes = int(num_nodes)
        self.max_nodes = self.num_nodes + 2
        self._ops = (INPUT, *([NODE_OP] * self.num_nodes), OUTPUT)

    def options(self) -> dict[str, Any]:
        return {"num_nodes": self.num_nodes}

    # ------------------------------------------------------------------ hooks for methods and tools
    def graphpnas_preset(self, dataset: str | None = None) -> str:
        return "randwire"  # the GraphPNAS paper's RandWire settings

    def triplet_thresholds(self) -> tuple[float, float]:
        return 3.0, 6.0

    def validate(self, arch: Architecture) -> None:
        if arch.num_nodes != self.max_nodes:
            raise InvalidArchitecture(
                f"{self.name}: {self.num_nodes} nodes plus input and output make {self.max_nodes}, got {arch.num_nodes}"
            )
        self._check_ops(arch)
        check_every_node_on_a_path(self.name, arch)

    def hash(self, arch: Architecture) -> str:
        self.validate(arch)
        return wl_hash(arch.matrix, arch.ops)

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: np.random.Generator | int | None = None) -> Architecture:
        rng = as_rng(rng)
        n = self.max_nodes
        for _ in range(_MAX_TRIES):
            m = priors.erdos_renyi(n, 0.5, rng)
            from_input, to_output = ancestors_and_descendants(m)
            if (from_input & to_output).all():
                return Architecture(self._ops, m)
        raise RuntimeError(f"{self.name}: no valid graph in {_MAX_TRIES} draws")  # pragma: no cover

    def _wire(self, inner: np.ndarray) -> Architecture:
        """Put the input before the sources and the output after the sinks of an inner DAG."""
        n = self.max_nodes
        m = np.zeros((n, n), dtype=np.int8)
        m[1:-1, 1:-1] = inner
        m[0, 1:-1] = inner.sum(axis=0) == 0
        m[1:-1, -1] = inner.sum(axis=1) == 0
        return Architecture(self._ops, m)

    def _prior_erdos_renyi(self, rng: np.random.Generator, p: float = 0.2) -> Architecture:
        return self._wire(priors.erdos_renyi(self.num_nodes, p, rng))

    def _prior_watts_strogatz(self, rng: np.random.Generator, k: int = 4, p: float = 0.75) -> Architecture:
        return self._wire(priors.watts_strogatz(self.num_nodes, k, p, rng))

    def _prior_barabasi_albert(self, rng: np.random.Generator, m: int = 5) -> Architecture:
        return self._wire(priors.barabasi_albert(self.num_nodes, m, rng))

    def mutate(self, arch: Architecture, rng: np.random.Generator | int | None = None) -> Architecture:
        """Flip one edge (a uniformly chosen node pair), retried until valid and non-isomorphic."""
        rng = as_rng(rng)
        original = self.hash(arch)
        n = self.max_nodes
        src, dst = np.triu_indices(n, k=1)
        for _ in range(_MAX_TRIES):
            k = int(rng.integers(len(src)))
            m = arch.matrix.copy()
            m[src[k], dst[k]] ^= 1
            from_input, to_output = ancestors_and_descendants(m)
            if not (from_input & to_output).all():
                continue
            child = Architecture(self._ops, m)
            if wl_hash(child.matrix, child.ops) != original:
                return child
        raise RuntimeError(f"{self.name}: no valid mutation of {arch!r} found")  # pragma: no cover

    def next_node_masks(self, ops: Sequence[str], matrix: np.ndarray, op: str | None = None) -> NodeMasks:
        n = len(ops)
        if n >= self.max_nodes:
            raise InvalidArchitecture(f"{self.name}: the graph is complete at {self.max_nodes} nodes")
        if n == 0:
            return NodeMasks(self._op_mask(INPUT), np.zeros(0, bool), np.zeros(0, bool), 0, 0)
        if n == self.max_nodes - 1:
            # every node without a successor must feed the output, or it would lie on no path
            sinks = ~np.asarray(matrix, dtype=bool).any(axis=1)
            return NodeMasks(self._op_mask(OUTPUT), np.ones(n, bool), sinks, max(1, int(sinks.sum())), n)
        return NodeMasks(self._op_mask(NODE_OP), np.ones(n, bool), np.zeros(n, bool), 1, n)

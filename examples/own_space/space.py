"""A search space of your own, with its networks and its benchmark table, plugged into nas-ray.

``my-chain``: a network is a chain of ``depth`` layers (default 4), each layer one of ``OPS``. The
topology is fixed, so the space overrides ``decisions`` / ``from_decisions`` (TPE searches the ops
only) and says through ``next_node_masks`` that each new node takes exactly one edge, from the node
before it (what the design environment, GraphPNAS and the RLlib algorithm build with).

Importing this file (``nas-ray ... --import examples/own_space/space.py``) registers:

- the space ``my-chain`` (``--space my-chain``);
- its networks (``register_network``), so ``--evaluator train:digits`` trains them;
- the evaluator ``my-table`` (``--evaluator my-table``): this space's benchmark table, made by
  ``make_table.py`` next to this file (every cell trained on scikit-learn's digits), looked up by
  ``TabularEvaluator.from_table`` with no subclass.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas_ray import Architecture, register_evaluator, register_space
from nas_ray.errors import InvalidArchitecture
from nas_ray.spaces import SearchSpace
from nas_ray.spaces.base import INPUT, OUTPUT, NodeMasks, as_rng

OPS = ("conv3x3", "conv5x5", "maxpool")


def table_path() -> Path:
    """Where make_table.py writes the table and my-table reads it: ``$MY_CHAIN_TABLE``, else next to this file."""
    return Path(os.environ.get("MY_CHAIN_TABLE", Path(__file__).with_name("my_chain_digits.csv")))


class MyChain(SearchSpace):
    """A chain of ``depth`` layers, each conv3x3, conv5x5 or maxpool: 3 ** depth networks."""

    name = "my-chain"
    ops = OPS
    edge_limits_depend_on_op = False  # every node takes exactly one edge, whatever its op

    def __init__(self, depth: int = 4) -> None:
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"my-chain: depth must be a positive int, got {depth!r}")
        self.depth = depth
        self.max_nodes = depth + 2  # input, the layers, output
        self.max_edges = depth + 1
        self.size = len(OPS) ** depth

    def options(self) -> dict[str, Any]:
        return {"depth": self.depth}

    def _make(self, layers: Sequence[str]) -> Architecture:
        return Architecture([INPUT, *layers, OUTPUT], np.eye(self.max_nodes, k=1, dtype=np.int8))

    # membership: the right size, known ops, and nothing but the chain's edges
    def validate(self, arch: Architecture) -> None:
        if arch.num_nodes != self.max_nodes:
            raise InvalidArchitecture(f"my-chain: depth {self.depth} means {self.max_nodes} nodes, got {arch.num_nodes}")
        self._check_ops(arch)
        if not np.array_equal(arch.matrix, np.eye(self.max_nodes, k=1, dtype=arch.matrix.dtype)):
            raise InvalidArchitecture("my-chain: the layers must form a single chain from input to output")

    def hash(self, arch: Architecture) -> str:
        self.validate(arch)  # one node order per network, so the op string is a complete key
        return ",".join(arch.ops[1:-1])

    def sample(self, rng: np.random.Generator | int | None = None) -> Architecture:
        rng = as_rng(rng)
        return self._make([OPS[k] for k in rng.integers(len(OPS), size=self.depth)])

    def mutate(self, arch: Architecture, rng: np.random.Generator | int | None = None) -> Architecture:
        rng = as_rng(rng)
        layers = list(arch.ops[1:-1])
        at = int(rng.integers(self.depth))
        layers[at] = OPS[(OPS.index(layers[at]) + 1 + int(rng.integers(len(OPS) - 1))) % len(OPS)]
        return self._make(layers)

    # step-by-step construction: a layer op (the output once the chain is long enough), one edge back
    def next_node_masks(self, ops: Sequence[str], matrix: np.ndarray, op: str | None = None) -> NodeMasks:
        n = len(ops)
        back = np.arange(n) == n - 1
        allowed = (OUTPUT,) if n == self.max_nodes - 1 else OPS
        return NodeMasks(self._op_mask(*allowed), back, back.copy(), 1, 1)

    # TPE: one categorical decision per layer (the edges are not a choice here)
    def decisions(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [(f"layer{i}", OPS) for i in range(self.depth)]

    def from_decisions(self, values: Mapping[str, Any]) -> Architecture:
        return self._make([values[f"layer{i}"] for i in range(self.depth)])

    def to_decisions(self, arch: Architecture) -> dict[str, Any]:
        return {f"layer{i}": op for i, op in enumerate(arch.ops[1:-1])}


register_space("my-chain", MyChain, overwrite=True)


# ---------------------------------------------------------------------------------- networks
def build_chain_network(space: MyChain, arch: Architecture, *, num_classes: int, in_channels: int, channels: int):  # noqa: ANN201
    """A stem conv, one block per layer op, global average pooling and a linear classifier."""
    from torch import nn

    def block(op: str) -> nn.Module:
        if op == "maxpool":
            return nn.MaxPool2d(3, stride=1, padding=1)
        k = 3 if op == "conv3x3" else 5
        return nn.Sequential(nn.Conv2d(channels, channels, k, padding=k // 2, bias=False), nn.BatchNorm2d(channels), nn.ReLU())

    layers = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU()]
    layers += [block(op) for op in arch.ops[1:-1]]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


def _register_networks() -> None:
    from nas_ray.evaluators.networks import register_network

    register_network("my-chain", build_chain_network, {"default": {"channels": 32}, "small": {"channels": 8}},
                     dataset_presets={"digits": "small"}, overwrite=True)


try:
    _register_networks()
except ImportError:  # pragma: no cover - torch is part of nas-ray's install
    pass


# ---------------------------------------------------------------------------------- the benchmark table
def my_table(argument: str = "", data_dir: Any = None, **options: Any):  # noqa: ANN201
    """``my-table``: the digits accuracy of every my-chain network, from the table make_table.py wrote."""
    from nas_ray.evaluators import TabularEvaluator

    table = table_path()
    if not table.is_file():
        from nas_ray.errors import DataFileError

        raise DataFileError(f"{table} does not exist: run python examples/own_space/make_table.py first")
    with table.open() as f:  # the table's depth: the layers of its first network
        f.readline()
        depth = len(f.readline().split('"')[1].split(","))
    return TabularEvaluator.from_table(table, space=MyChain(depth), key_column="arch", reward="val_acc",
                                       report=["val_acc_seed1", "params", "macs"], dataset="digits")


register_evaluator("my-table", my_table, help="my-table - my-chain networks trained on digits (examples/own_space)", overwrite=True)

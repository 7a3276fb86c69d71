"""The ENAS macro space (Pham et al. 2018) in D-VAE's DAG form.

``num_layers`` = L layers in a chain, each with one of 6 ops and skip bits to earlier vertices.
As a DAG (D-VAE's ``decode_ENAS_to_igraph``): vertex 0 is the input, vertex k+1 is layer k, vertex
L+1 the output; the chain edge k -> k+1 is always there; bit j of layer k adds the edge j -> k+1
(j indexes DAG vertices, so j = 0 is the input); the output has one in-edge, from the last layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nas_ray.errors import ConfigError, InvalidArchitecture
from nas_ray.graph import Architecture
from nas_ray.spaces.base import INPUT, OUTPUT, NodeMasks, SearchSpace, as_rng
from nas_ray.spaces.table import TableDefinedSpace

# ENAS general-controller op order: the integer t_k of the layer list indexes this tuple.
OPS = ("conv3x3", "sep_conv3x3", "conv5x5", "sep_conv5x5", "avg_pool3x3", "max_pool3x3")


#: the published ENAS-6 graph-VAE abilities (percent; SGP in standardised units): the D-VAE, DVAE-EMB and SVGe papers
PUBLISHED_ENAS6: dict[str, dict[str, float]] = {
    "dvae": {"recon": 99.96, "validity": 100.00, "uniqueness": 37.26, "sgp_rmse": 0.384, "sgp_pearson": 0.920},
    "dvae-emb": {"recon": 99.99, "validity": 100.00, "uniqueness": 39.15, "sgp_rmse": 0.371, "sgp_pearson": 0.925},
    "svge": {"recon": 98.97, "validity": 99.69, "uniqueness": 40.22, "novelty": 100.0},
    "svge-triplet": {"recon": 99.80, "validity": 99.75, "uniqueness": 35.37, "novelty": 99.99},
}


class EnasMacro(SearchSpace):
    """ENAS macro networks with ``num_layers`` layers (6 is D-VAE's dataset, 12 the original ENAS size).

    Validity is D-VAE's ``is_valid_ENAS``: a DAG with one input and one output, no other source or
    sink, the full chain 0 -> 1 -> ... -> L+1, and an output with exactly one in-edge. The chain is
    a Hamiltonian path, so the topological order is unique: isomorphic networks are identical, and
    ``hash`` is the flat layer string.
    ``sample`` is exactly uniform (ops uniform, each skip bit 1/2); ``mutate`` changes one decision.

    >>> space = EnasMacro()
    >>> space.to_native(space.from_native([[0], [1, 0], [2, 0, 1], [3, 1, 0, 0], [4, 0, 0, 0, 1], [5, 1, 1, 1, 1, 1]]))[1]
    [1, 0]
    """

    name = "enas-macro"
    ops = OPS
    priors = {"erdos_renyi": "_prior_erdos_renyi"}
    edge_limits_depend_on_op = False

    def __init__(self, num_layers: int = 6) -> None:
        if not isinstance(num_layers, (int, np.integer)) or num_layers < 1:
            raise ConfigError(f"enas-macro: num_layers must be a positive int, got {num_layers!r}")
        self.num_layers = int(num_layers)
        self.max_nodes = self.num_layers + 2
        self.max_edges = self.num_layers + 1 + self.num_layers * (self.num_layers - 1) // 2
        chain = np.zeros((self.max_nodes, self.max_nodes), dtype=np.int8)
        idx = np.arange(self.max_nodes - 1)
        chain[idx, idx + 1] = 1
        self._chain = chain
        # skip edges j -> k+1 (j < k) between the input/layer vertices, in layer-list bit order
        self._skip_edges = [(j, k + 1) for k in range(self.num_layers) for j in range(k)]
        # every op / skip-bit combination is valid and distinct
        self.size = len(OPS) ** self.num_layers * 2 ** len(self._skip_edges)

    def options(self) -> dict[str, Any]:
        return {"num_layers": self.num_layers}

    # ------------------------------------------------------------------ hooks for methods and tools
    def benchmark(self, dataset: str | None = None) -> str | None:
        return None  # D-VAE's ENAS-6 table covers 19,020 of its 6-layer architectures: that is the space "enas6"

    def graphpnas_preset(self, dataset: str | None = None) -> str:
        return "enas"

    def triplet_thresholds(self) -> tuple[float, float]:
        return 2.0, 5.0  # SVGe, App. Table 4

    svge_paper_batch_size = 32  # D-VAE's ENAS setting, which SVGe kept

    def published(self, what: str, dataset: str | None = None) -> dict[str, Any]:
        if what == "vae-abilities" and self.num_layers == 6:
            return {k: dict(v) for k, v in PUBLISHED_ENAS6.items()}
        return {}

    def vae_dataset(self, data_dir: Any = None, *, seed: int = 0, test_fraction: float = 0.1) -> Any:
        if self.num_layers != 6:
            return None
        from nas_ray.evaluators.tables import enas6_vae_split
        from nas_ray.latent import VAEData

        tr, ytr, te, yte = enas6_vae_split(data_dir, seed=seed)  # D-VAE's own split (its test fraction)
        return VAEData(tr, te, ytr, yte, "D-VAE's ENAS-6 file and split (weight-sharing accuracy)")

    # ------------------------------------------------------------------ membership
    def _checked(self, arch: Architecture) -> Architecture:
        """Validate ``arch`` and return it."""
        n = self.max_nodes
        if arch.num_nodes != n:
            raise InvalidArchitecture(f"{self.name}: {self.num_layers} layers make {n} nodes, got {arch.num_nodes}")
        m = arch.matrix
        # With the chain 0 -> 1 -> ... -> L+1 present, the topological order is unique, so every
        # architecture of this space is already in its canonical node order.
        missing = np.nonzero(m[np.arange(n - 1), np.arange(1, n)] == 0)[0]
        if len(missing):
            i = int(missing[0])
            raise InvalidArchitecture(f"{self.name}: the chain edge {i}->{i + 1} is missing")
        self._check_ops(arch)
        into_output = np.nonzero(m[:, n - 1])[0]
        if len(into_output) != 1:
            raise InvalidArchitecture(
                f"{self.name}: the output must have exactly one in-edge (from node {n - 2}), got {len(into_output)}"
            )
        return arch

    def validate(self, arch: Architecture) -> None:
        self._checked(arch)

    def canonicalize(self, arch: Architecture) -> Architecture:
        return self._checked(arch)

    def hash(self, arch: Architecture) -> str:
        arch = self._checked(arch)
        return " ".join(str(v) for layer in self._layers(arch) for v in layer)

    def decisions(self) -> list[tuple[str, tuple[Any, ...]]]:
        """The op of every layer and every skip bit (``skip_{j}_{v}``: edge j -> v)."""
        return [(f"op_{k + 1}", OPS) for k in range(self.num_layers)] + [
            (f"skip_{j}_{v}", (0, 1)) for j, v in self._skip_edges
        ]

    def from_decisions(self, values: Mapping[str, Any]) -> Architecture:
        index = {op: i for i, op in enumerate(OPS)}
        try:
            ops = [index[values[f"op_{k + 1}"]] for k in range(self.num_layers)]
        except KeyError as exc:
            raise InvalidArchitecture(f"{self.name}: unknown op {exc.args[0]!r}; ops: {', '.join(OPS)}") from None
        return self._from_bits(ops, np.array([values[f"skip_{j}_{v}"] for j, v in self._skip_edges], dtype=np.int8))

    def to_decisions(self, arch: Architecture) -> dict[str, Any]:
        arch = self._checked(arch)
        values: dict[str, Any] = {f"op_{k + 1}": arch.ops[k + 1] for k in range(self.num_layers)}
        values.update({f"skip_{j}_{v}": int(arch.matrix[j, v]) for j, v in self._skip_edges})
        return values

    # ------------------------------------------------------------------ native form
    def from_native(self, native: Sequence[Sequence[int]]) -> Architecture:
        """The layer list ``[[t0], [t1, b0], [t2, b0, b1], ...]`` (D-VAE's ENAS encoding)."""
        try:
            layers = [list(layer) for layer in native]
        except TypeError:
            raise InvalidArchitecture(f"{self.name}: a layer list is a list of lists, got {native!r}") from None
        if len(layers) != self.num_layers:
            raise InvalidArchitecture(f"{self.name}: expected {self.num_layers} layers, got {len(layers)}")
        m = self._chain.copy()
        ops = [INPUT]
        for k, layer in enumerate(layers):
            if len(layer) != k + 1:
                raise InvalidArchitecture(f"{self.name}: layer {k} must be [op, {k} skip bits], got {layer!r}")
            t, bits = layer[0], layer[1:]
            if not isinstance(t, (int, np.integer)) or not 0 <= t < len(OPS):
                raise InvalidArchitecture(f"{self.name}: layer {k} has op {t!r}; ops are 0..{len(OPS) - 1}")
            for j, b in enumerate(bits):
                if b not in (0, 1):
                    raise InvalidArchitecture(f"{self.name}: layer {k} skip bit {j} must be 0 or 1, got {b!r}")
                if b:
                    m[j, k + 1] = 1
            ops.append(OPS[t])
        ops.append(OUTPUT)
        m.setflags(write=False)
        return Architecture._trusted(tuple(ops), m)  # chain + checked skip bits: upper-triangular

    def to_native(self, arch: Architecture) -> list[list[int]]:
        return self._layers(self._checked(arch))

    def _layers(self, arch: Architecture) -> list[list[int]]:
        m = arch.matrix
        index = {op: i for i, op in enumerate(OPS)}
        return [[index[arch.ops[k + 1]], *m[:k, k + 1].tolist()] for k in range(self.num_layers)]

    # ------------------------------------------------------------------ sampling and moves
    def _from_bits(self, op_idx: Sequence[int], bits: np.ndarray) -> Architecture:
        m = self._chain.copy()
        for (j, v), b in zip(self._skip_edges, bits):
            m[j, v] = b
        m.setflags(write=False)
        return Architecture._trusted((INPUT, *(OPS[i] for i in op_idx), OUTPUT), m)

    def sample(self, rng: np.random.Generator | int | None = None) -> Architecture:
        return self._prior_erdos_renyi(as_rng(rng), 0.5)

    def _prior_erdos_renyi(self, rng: np.random.Generator, p: float = 0.5) -> Architecture:
        """Ops uniform, each skip edge present with probability ``p``."""
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"erdos_renyi: p must be in [0, 1], got {p}")
        ops = rng.integers(len(OPS), size=self.num_layers)
        bits = (rng.random(len(self._skip_edges)) < p).astype(np.int8)
        return self._from_bits(ops, bits)

    def mutate(self, arch: Architecture, rng: np.random.Generator | int | None = None) -> Architecture:
        """Change one decision, chosen uniformly: a layer's op (to another op) or a skip bit."""
        rng = as_rng(rng)
        arch = self._checked(arch)
        index = {op: i for i, op in enumerate(OPS)}
        ops = [index[o] for o in arch.ops[1:-1]]
        bits = np.array([arch.matrix[j, v] for j, v in self._skip_edges], dtype=np.int8)
        k = int(rng.integers(len(ops) + len(bits)))
        if k < len(ops):
            others = [i for i in range(len(OPS)) if i != ops[k]]
            ops[k] = others[int(rng.integers(len(others)))]
        else:
            bits[k - len(ops)] ^= 1
        return self._from_bits(ops, bits)

    def next_node_masks(self, ops: Sequence[str], matrix: np.ndarray, op: str | None = None) -> NodeMasks:
        n = len(ops)
        if n >= self.max_nodes:
            raise InvalidArchitecture(f"{self.name}: the network is complete at {self.max_nodes} nodes")
        if n == 0:
            return NodeMasks(self._op_mask(INPUT), np.zeros(0, bool), np.zeros(0, bool), 0, 0)
        required = np.zeros(n, bool)
        required[n - 1] = True  # the chain edge
        if n == self.max_nodes - 1:
            return NodeMasks(self._op_mask(OUTPUT), required.copy(), required, 1, 1)
        return NodeMasks(self._op_mask(*OPS), np.ones(n, bool), required, 1, n)


class Enas6(TableDefinedSpace):
    """The 19,015 architectures of D-VAE's ENAS-6 table: ``enas-macro`` (6 layers) restricted to them.

    The table's 19,020 lines after the burn-in, merged by architecture; validity is membership.

    >>> space = get_space("enas6", data_dir="../shared/data")   # doctest: +SKIP
    >>> space.size                                              # doctest: +SKIP
    """

    name = "enas6"
    base = "enas-macro"
    base_options = {"num_layers": 6}

    def members(self) -> list[Architecture]:
        from nas_ray.evaluators.tables import load_enas6

        return load_enas6(self.data_dir).archs

    def benchmark(self, dataset: str | None = None) -> str:
        return "table:enas6"

"""The SearchSpace contract shared by every space."""

from __future__ import annotations

import abc
import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nas_ray.errors import ConfigTypeError, InvalidArchitecture, UnknownName
from nas_ray.graph import Architecture

INPUT = "input"
OUTPUT = "output"


def as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """Accept a Generator, an int seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise ConfigTypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


@dataclass(frozen=True)
class NodeMasks:
    """What the architecture-design environment may do when it adds the next node.

    ``ops[k]`` says whether ``space.node_types[k]`` is legal for the new node; ``edges[j]`` whether an
    edge from existing node ``j`` may enter it, ``required[j]`` whether that edge must be there;
    the new node takes between ``min_edges`` and ``max_edges`` incoming edges.
    """

    ops: np.ndarray
    edges: np.ndarray
    required: np.ndarray
    min_edges: int
    max_edges: int


@dataclass(frozen=True)
class StepMasks:
    """Everything that is legal for the next node, for every op at once (the environment's masks).

    ``ops[d]``: node type ``d`` is legal; ``edges[j]`` / ``required[j]``: the edge from node ``j``
    may / must enter the new node; with op ``d`` the new node takes between ``min_edges[d]`` and
    ``max_edges[d]`` incoming edges (both 0 where the op is illegal).
    """

    ops: np.ndarray
    edges: np.ndarray
    required: np.ndarray
    min_edges: np.ndarray
    max_edges: np.ndarray


class SearchSpace(abc.ABC):
    """A family of architectures: its vocabulary, its limits and what searchers need to move in it.

    Subclasses set ``name``, ``ops`` (interior operations) and implement ``validate``, ``hash``,
    ``sample``, ``mutate`` and ``next_node_masks``; the rest has defaults.
    """

    name: ClassVar[str]
    #: interior operations; ``node_types`` = ("input", *ops, "output")
    ops: tuple[str, ...]
    #: at most this many nodes / edges (None: no limit)
    max_nodes: int | None = None
    max_edges: int | None = None
    #: number of distinct architectures (hashes), where it is known
    size: int | None = None
    #: True when membership is a table's rows (``TableDefinedSpace``): construction and decisions then
    #: follow a larger space and may build non-members, which ``validate`` rejects
    table_defined: ClassVar[bool] = False

    @functools.cached_property
    def _op_set(self) -> frozenset[str]:
        return frozenset(self.ops)

    @property
    def node_types(self) -> tuple[str, ...]:
        return (INPUT, *self.ops, OUTPUT)

    def options(self) -> dict[str, Any]:
        """The keyword options this space was built with (``get_space(name, **options)``)."""
        return {}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"

    # ------------------------------------------------------------------ membership
    @abc.abstractmethod
    def validate(self, arch: Architecture) -> None:
        """Raise ``InvalidArchitecture`` naming what is wrong if ``arch`` is not in this space."""

    def is_valid(self, arch: Architecture) -> bool:
        try:
            self.validate(arch)
        except InvalidArchitecture:
            return False
        return True

    def canonicalize(self, arch: Architecture) -> Architecture:
        """The representative that ``hash`` and the benchmark tables use (validates first)."""
        self.validate(arch)
        return arch

    @abc.abstractmethod
    def hash(self, arch: Architecture) -> str:
        """A string equal for isomorphic architectures of this space (validates first)."""

    def _check_ops(self, arch: Architecture) -> None:
        """First op input, last op output, interior ops from the vocabulary."""
        ops = arch.ops
        if ops[0] != INPUT:
            raise InvalidArchitecture(f"{self.name}: node 0 must be 'input', got {ops[0]!r}")
        if ops[-1] != OUTPUT:
            raise InvalidArchitecture(f"{self.name}: the last node must be 'output', got {ops[-1]!r}")
        allowed = self._op_set
        for i, op in enumerate(ops[1:-1], start=1):
            if op not in allowed:
                raise InvalidArchitecture(
                    f"{self.name}: unknown op {op!r} at node {i}; this space has {', '.join(self.ops)}"
                )

    # ------------------------------------------------------------------ sampling and moves
    @abc.abstractmethod
    def sample(self, rng: np.random.Generator | int | None = None) -> Architecture:
        """A random valid architecture (see each space for the distribution)."""

    @abc.abstractmethod
    def mutate(self, arch: Architecture, rng: np.random.Generator | int | None = None) -> Architecture:
        """A valid neighbour of ``arch`` with a different ``hash``."""

    #: name -> method(rng, **params) drawing from a random-graph prior
    priors: ClassVar[dict[str, str]] = {}

    def sample_prior(self, prior: str, rng: np.random.Generator | int | None = None, **params: Any) -> Architecture:
        """Draw from a named random-graph prior (``space.priors`` lists them with their parameters)."""
        if prior not in self.priors:
            have = ", ".join(sorted(self.priors)) or "none (its topology is fixed)"
            raise UnknownName(f"space {self.name} has no prior {prior!r}; its priors: {have}")
        method: Callable[..., Architecture] = getattr(self, self.priors[prior])
        return method(as_rng(rng), **params)

    # ------------------------------------------------------------------ step-by-step construction
    @abc.abstractmethod
    def next_node_masks(self, ops: Sequence[str], matrix: np.ndarray, op: str | None = None) -> NodeMasks:
        """Masks for adding node ``len(ops)`` to a partial graph (``matrix`` is its ``n x n`` adjacency).

        With ``op`` given (the op chosen for the new node), the edge masks are those for that op."""

    #: whether ``next_node_masks``' edge-count limits depend on the chosen op (its edge masks may not)
    edge_limits_depend_on_op: ClassVar[bool] = True

    def step_masks(self, ops: Sequence[str], matrix: np.ndarray) -> StepMasks:
        """``next_node_masks`` for every legal op at once: what the environment and the generator use."""
        base = self.next_node_masks(ops, matrix)
        lo = np.zeros(len(self.node_types), dtype=np.int64)
        hi = np.zeros(len(self.node_types), dtype=np.int64)
        legal = np.flatnonzero(base.ops)
        if self.edge_limits_depend_on_op:
            types = self.node_types
            for d in legal:
                m = self.next_node_masks(ops, matrix, op=types[d])
                lo[d], hi[d] = m.min_edges, m.max_edges
        else:
            lo[legal], hi[legal] = base.min_edges, base.max_edges
        return StepMasks(base.ops, base.edges, base.required, lo, hi)

    def _op_mask(self, *allowed: str) -> np.ndarray:
        types = self.node_types
        return np.array([t in allowed for t in types], dtype=bool)

    # ------------------------------------------------------------------ decisions (for samplers such as TPE)
    def decisions(self) -> list[tuple[str, tuple[Any, ...]]]:
        """The space as named categorical decisions ``[(name, choices), ...]``; ``from_decisions``
        maps one value per name back to an Architecture (which may be invalid). Default: the op of
        each interior node of a ``max_nodes`` graph (when there is a choice) and every forward edge."""
        if self.max_nodes is None:
            raise NotImplementedError(f"space {self.name} has no fixed size; override decisions()")
        n = self.max_nodes
        out: list[tuple[str, tuple[Any, ...]]] = []
        if len(self.ops) > 1:
            out += [(f"op_{v}", self.ops) for v in range(1, n - 1)]
        out += [(f"edge_{i}_{j}", (0, 1)) for i in range(n) for j in range(i + 1, n)]
        return out

    def from_decisions(self, values: Mapping[str, Any]) -> Architecture:
        """The Architecture of one value per decision; raises ``InvalidArchitecture`` if not in the space."""
        n = self.max_nodes
        ops = [INPUT, *(values[f"op_{v}"] if len(self.ops) > 1 else self.ops[0] for v in range(1, n - 1)), OUTPUT]
        m = np.zeros((n, n), dtype=np.int8)
        for i in range(n):
            for j in range(i + 1, n):
                m[i, j] = values[f"edge_{i}_{j}"]
        arch = Architecture(ops, m)
        self.validate(arch)
        return arch

    def to_decisions(self, arch: Architecture) -> dict[str, Any] | None:
        """The decision values of ``arch`` (inverse of ``from_decisions``), or None if ``arch`` has no
        such form (e.g. a pruned cell smaller than ``max_nodes``)."""
        n = self.max_nodes
        if n is None or arch.num_nodes != n:
            return None
        values: dict[str, Any] = {}
        if len(self.ops) > 1:
            values.update({f"op_{v}": arch.ops[v] for v in range(1, n - 1)})
        values.update({f"edge_{i}_{j}": int(arch.matrix[i, j]) for i in range(n) for j in range(i + 1, n)})
        return values

    # ------------------------------------------------------------------ native form
    def from_native(self, native: Any) -> Architecture:
        """The space's own form -> Architecture. Default: the JSON dict ``{"ops", "matrix"}``."""
        arch = native if isinstance(native, Architecture) else Architecture.from_dict(native)
        self.validate(arch)
        return arch

    def to_native(self, arch: Architecture) -> Any:
        """Architecture -> the space's own form. Default: the JSON dict ``{"ops", "matrix"}``."""
        self.validate(arch)
        return arch.to_dict()

    # ------------------------------------------------------------------ conversions
    def to_pyg(self, arch: Architecture):  # noqa: ANN201 - torch_geometric is imported lazily
        """``arch.to_pyg`` with this space's ``node_types`` as the vocabulary."""
        return arch.to_pyg(self.node_types)

    # ------------------------------------------------------------------ what methods need to know (optional hooks)
    # Everything a searcher or evaluator treats differently per space is asked of the space here, with
    # a fallback that works for any space; a space overrides what it knows better.

    def benchmark(self, dataset: str | None = None) -> str | None:
        """The evaluator spec of this space's benchmark table for ``dataset`` (``nas-ray bench`` uses
        it when no ``--evaluator`` is given), or None when the space has none."""
        return None

    #: the datasets ``benchmark`` knows (the first is the default)
    benchmark_datasets: ClassVar[tuple[str, ...]] = ()

    def graphpnas_preset(self, dataset: str | None = None) -> str | None:
        """The GraphPNAS preset (a name in ``nas_ray.models.learning.PRESETS``) for this space and
        dataset; None: the paper's RandWire settings with uniform exploration of the space."""
        return None

    def triplet_thresholds(self) -> tuple[float, float]:
        """SVGe's triplet-loss thresholds (epsilon, delta) in graph edit distance: positives closer
        than epsilon, negatives farther than delta. Fallback: a quarter and a half of ``max_nodes``
        (at least 2 and epsilon + 1)."""
        n = self.max_nodes or 12
        eps = max(2, round(n / 4))
        return float(eps), float(max(eps + 1, round(n / 2)))

    #: the batch size SVGe's paper trained with on this space (``recipe="paper"``)
    svge_paper_batch_size: ClassVar[int] = 128

    def published(self, what: str, dataset: str | None = None) -> dict[str, Any]:
        """Published numbers on this space that reports print beside measured ones: ``"bench"`` (the
        best test accuracy after 100 queries, per method, for ``dataset``) or ``"vae-abilities"`` (per
        graph VAE). Empty where there are none."""
        return {}

    def vae_dataset(self, data_dir: Any = None, *, seed: int = 0, test_fraction: float = 0.1) -> Any:
        """Graphs (with accuracy labels) of this space's benchmark table for graph-VAE pretraining and
        its GP metrics, as a ``nas_ray.latent.VAEData``; None when the space has no such table."""
        return None


def wl_hash(matrix: np.ndarray, labels: Sequence[Any]) -> str:
    """Weisfeiler-Lehman hash of a labelled DAG, equal for isomorphic graphs.

    Refines node colours by (in-neighbour colours, out-neighbour colours, own colour) until the
    partition stops splitting (an isomorphism invariant), then digests the sorted colours. Used for
    spaces without an official hash; NAS-Bench-101 uses its own (``graph_util.hash_module``).
    """
    n = matrix.shape[0]
    preds = [np.nonzero(matrix[:, v])[0].tolist() for v in range(n)]
    succs = [np.nonzero(matrix[v])[0].tolist() for v in range(n)]
    colours = [f"{lab}:{len(preds[v])}:{len(succs[v])}" for v, lab in enumerate(labels)]
    classes = len(set(colours))
    for _ in range(n):
        colours = [
            hashlib.blake2b(
                (
                    ",".join(sorted(colours[u] for u in preds[v]))
                    + "|"
                    + ",".join(sorted(colours[u] for u in succs[v]))
                    + "|"
                    + colours[v]
                ).encode(),
                digest_size=12,
            ).hexdigest()
            for v in range(n)
        ]
        new_classes = len(set(colours))
        if new_classes == classes:
            break
        classes = new_classes
    return hashlib.blake2b("".join(sorted(colours)).encode(), digest_size=16).hexdigest()


def ancestors_and_descendants(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks: nodes reachable from node 0, and nodes that reach the last node."""
    n = matrix.shape[0]
    from_input = np.zeros(n, dtype=bool)
    from_input[0] = True
    for v in range(n):  # topological order: one sweep suffices
        if from_input[v]:
            from_input[matrix[v].astype(bool)] = True
    to_output = np.zeros(n, dtype=bool)
    to_output[n - 1] = True
    for v in range(n - 1, -1, -1):
        if to_output[v]:
            to_output[matrix[:, v].astype(bool)] = True
    return from_input, to_output


def check_every_node_on_a_path(space: str, arch: Architecture) -> None:
    """Every node lies on an input -> output path (no dangling or unreachable node)."""
    from_input, to_output = ancestors_and_descendants(arch.matrix)
    if not to_output[0]:
        raise InvalidArchitecture(f"{space}: the input does not reach the output")
    off = np.nonzero(~(from_input & to_output))[0]
    if off.size:
        v = int(off[0])
        why = "is unreachable from the input" if not from_input[v] else "does not reach the output"
        raise InvalidArchitecture(f"{space}: node {v} ({arch.ops[v]}) {why}")


__all__ = [
    "SearchSpace",
    "NodeMasks",
    "StepMasks",
    "as_rng",
    "wl_hash",
    "INPUT",
    "OUTPUT",
    "check_every_node_on_a_path",
    "ancestors_and_descendants",
]

"""Building an architecture one node at a time, as padded arrays (no torch, no gymnasium).

The architecture-design environment and the GraphPNAS generator share this module, so the two see
the same observations and the same masks. A partial graph of a space with at most ``N`` nodes and
``D`` node types (``space.node_types``) is the observation::

    adjacency      float32 [N, N]  adjacency[src, dst] = 1 for an edge src -> dst (upper-triangular)
    ops            int64   [N]     node type ids; padding = D
    num_nodes      int64   []      nodes placed so far (the input is placed by ``reset``)
    op_mask        int8    [D]     legal node types for the next node
    edge_mask      int8    [N]     existing nodes that may feed the next node
    edge_required  int8    [N]     existing nodes that must feed it
    min_edges      int64   [D]     with node type d, the next node takes between min_edges[d]
    max_edges      int64   [D]     and max_edges[d] incoming edges (0 for illegal types)

and one action adds the next node: ``{"op": type id, "edges": int8 [N]}`` (``edges[j] = 1``: an
edge from node ``j``). The graph is complete when an ``output`` node is placed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas_ray.errors import ConfigError, IllegalAction, InvalidArchitecture
from nas_ray.graph import Architecture
from nas_ray.spaces.base import INPUT, OUTPUT, SearchSpace, StepMasks

OBS_KEYS = ("adjacency", "ops", "num_nodes", "op_mask", "edge_mask", "edge_required", "min_edges", "max_edges")


@dataclass(frozen=True)
class Trajectory:
    """The construction steps of one architecture: ``obs[key][t]`` before step ``t``, its action
    ``op[t]`` / ``edges[t]``; ``T = num_nodes - 1`` steps (node 0, the input, is given)."""

    obs: dict[str, np.ndarray]
    op: np.ndarray
    edges: np.ndarray

    def __len__(self) -> int:
        return len(self.op)


class Builder:
    """Step-by-step construction in one space: observations, legality checks, trajectories.

    >>> from nas_ray.spaces import get_space
    >>> b = Builder(get_space("nasbench201"))
    >>> state = b.start()
    >>> obs = b.observe(state)
    >>> int(obs["num_nodes"]), obs["op_mask"].tolist()
    (1, [0, 1, 1, 1, 1, 1, 0])
    """

    def __init__(self, space: SearchSpace) -> None:
        if space.max_nodes is None:
            raise ConfigError(f"space {space.name} has no max_nodes; step-by-step construction needs a bound")
        self.space = space
        self.max_nodes = int(space.max_nodes)
        self.node_types = tuple(space.node_types)
        self.num_types = len(self.node_types)
        self.type_index = {t: i for i, t in enumerate(self.node_types)}
        self.output_id = self.type_index[OUTPUT]

    # ------------------------------------------------------------------ state
    def start(self) -> PartialGraph:
        """A graph holding only the input node."""
        g = PartialGraph(np.zeros((self.max_nodes, self.max_nodes), dtype=np.int8), [INPUT])
        g.masks = self.space.step_masks(g.ops, g.matrix[:1, :1])
        return g

    def observe(self, g: PartialGraph) -> dict[str, np.ndarray]:
        n, N, D = len(g.ops), self.max_nodes, self.num_types
        ops = np.full(N, D, dtype=np.int64)
        ops[:n] = [self.type_index[o] for o in g.ops]
        edge_mask = np.zeros(N, dtype=np.int8)
        required = np.zeros(N, dtype=np.int8)
        if g.masks is None:  # complete
            op_mask = np.zeros(D, dtype=np.int8)
            lo = hi = np.zeros(D, dtype=np.int64)
        else:
            m = g.masks
            op_mask = m.ops.astype(np.int8)
            edge_mask[:n] = m.edges
            required[:n] = m.required
            lo, hi = m.min_edges.astype(np.int64), m.max_edges.astype(np.int64)
        return {
            "adjacency": g.matrix.astype(np.float32),
            "ops": ops,
            "num_nodes": np.int64(n),
            "op_mask": op_mask,
            "edge_mask": edge_mask,
            "edge_required": required,
            "min_edges": lo,
            "max_edges": hi,
        }

    def check(self, g: PartialGraph, op: int, edges: np.ndarray) -> None:
        """Raise ``IllegalAction`` naming the problem unless (op, edges) is legal for ``g``."""
        self._check(g.masks, len(g.ops), op, edges)

    def _check(self, m: StepMasks | None, n: int, op: int, edges: np.ndarray) -> None:
        if m is None:
            raise IllegalAction("the architecture is complete; call reset()")
        if not 0 <= op < self.num_types or not m.ops[op]:
            legal = [self.node_types[d] for d in np.flatnonzero(m.ops)]
            name = self.node_types[op] if 0 <= op < self.num_types else op
            raise IllegalAction(f"op {name!r} is not legal for node {n}; legal: {', '.join(legal)}")
        if edges.shape != (self.max_nodes,):
            raise IllegalAction(f"edges must have shape ({self.max_nodes},), got {edges.shape}")
        if edges.max(initial=0) > 1 or edges.min(initial=0) < 0:
            bad = np.flatnonzero((edges != 0) & (edges != 1))
            raise IllegalAction(f"edges[{bad[0]}] is {edges[bad[0]]}; edges are 0 or 1")
        if edges[n:].any():
            beyond = np.flatnonzero(edges[n:])
            raise IllegalAction(f"edge from node {n + beyond[0]}, which does not exist yet (node {n} is being added)")
        e = edges[:n].astype(bool)
        if (e & ~m.edges).any():
            forbidden = np.flatnonzero(e & ~m.edges)
            raise IllegalAction(f"the edge {forbidden[0]}->{n} is not legal in {self.space.name}")
        if (m.required & ~e).any():
            missing = np.flatnonzero(m.required & ~e)
            raise IllegalAction(f"the edge {missing[0]}->{n} is required in {self.space.name}")
        k = int(e.sum())
        if not m.min_edges[op] <= k <= m.max_edges[op]:
            raise IllegalAction(
                f"node {n} ({self.node_types[op]}) takes {m.min_edges[op]} to {m.max_edges[op]} incoming edges, got {k}"
            )

    def apply(self, g: PartialGraph, op: int, edges: np.ndarray, *, check: bool = True) -> bool:
        """Add the node (checked unless ``check=False``); returns True when the graph is complete."""
        if check:
            self.check(g, op, edges)
        n = len(g.ops)
        g.matrix[:n, n] = edges[:n]
        g.ops.append(self.node_types[op])
        if op == self.output_id:
            g.masks = None
            return True
        n += 1
        if n >= self.max_nodes:  # a space whose masks let the graph fill up without an output
            g.masks = None
            return True
        g.masks = self.space.step_masks(g.ops, g.matrix[:n, :n])
        return False

    def architecture(self, g: PartialGraph) -> Architecture:
        n = len(g.ops)
        return Architecture(g.ops, g.matrix[:n, :n])

    # ------------------------------------------------------------------ whole graphs
    def trajectory(self, arch: Architecture) -> Trajectory:
        """The steps that build ``arch`` node by node (in its node order), each checked against the
        masks; raises ``InvalidArchitecture`` if some step is illegal (the architecture cannot be
        built in this space, e.g. an uncanonicalised NB101 cell with an unconnected node)."""
        n, N, D = arch.num_nodes, self.max_nodes, self.num_types
        name = self.space.name
        if n > N:
            raise InvalidArchitecture(f"{name}: {n} nodes, at most {N}")
        if n < 2 or arch.ops[0] != INPUT:
            raise InvalidArchitecture(f"{name}: node 0 must be 'input' and a graph has at least 2 nodes")
        try:
            type_ids = [self.type_index[o] for o in arch.ops]
        except KeyError as exc:
            raise InvalidArchitecture(f"{name}: unknown op {exc.args[0]!r}") from None
        T = n - 1
        matrix = arch.matrix
        adjacency = np.zeros((T, N, N), dtype=np.float32)
        ops = np.full((T, N), D, dtype=np.int64)
        op_mask = np.zeros((T, D), dtype=np.int8)
        edge_mask = np.zeros((T, N), dtype=np.int8)
        required = np.zeros((T, N), dtype=np.int8)
        lo = np.zeros((T, D), dtype=np.int64)
        hi = np.zeros((T, D), dtype=np.int64)
        edges = np.zeros((T, N), dtype=np.int8)
        for t in range(T):
            i = t + 1  # the node this step adds
            adjacency[t, :i, :i] = matrix[:i, :i]
            ops[t, :i] = type_ids[:i]
            m = self.space.step_masks(arch.ops[:i], matrix[:i, :i])
            op_mask[t] = m.ops
            edge_mask[t, :i] = m.edges
            required[t, :i] = m.required
            lo[t], hi[t] = m.min_edges, m.max_edges
            edges[t, :i] = matrix[:i, i]
            try:
                self._check(m, i, type_ids[i], edges[t])
            except IllegalAction as exc:
                raise InvalidArchitecture(f"{name}: node {i} cannot be built: {exc}") from None
            if type_ids[i] == self.output_id and i != n - 1:
                raise InvalidArchitecture(f"{name}: node {i} is an output before the last node")
        if type_ids[-1] != self.output_id and n < N:
            raise InvalidArchitecture(f"{name}: the graph does not end with an output node")
        obs = {
            "adjacency": adjacency,
            "ops": ops,
            "num_nodes": np.arange(1, n, dtype=np.int64),
            "op_mask": op_mask,
            "edge_mask": edge_mask,
            "edge_required": required,
            "min_edges": lo,
            "max_edges": hi,
        }
        return Trajectory(obs, np.array(type_ids[1:], dtype=np.int64), edges)


class BatchBuild:
    """Many graphs built together with vectorised bookkeeping (the generator's sampler): the same
    observations as ``Builder.observe``, as batch arrays."""

    def __init__(self, builder: Builder, num: int) -> None:
        N, D = builder.max_nodes, builder.num_types
        self.builder = builder
        self.adjacency = np.zeros((num, N, N), dtype=np.float32)
        self.ops = np.full((num, N), D, dtype=np.int64)
        self.ops[:, 0] = builder.type_index[INPUT]
        self.num_nodes = np.ones(num, dtype=np.int64)
        self.names = [[INPUT] for _ in range(num)]
        self.op_mask = np.zeros((num, D), dtype=np.int8)
        self.edge_mask = np.zeros((num, N), dtype=np.int8)
        self.edge_required = np.zeros((num, N), dtype=np.int8)
        self.min_edges = np.zeros((num, D), dtype=np.int64)
        self.max_edges = np.zeros((num, D), dtype=np.int64)
        self.live = np.arange(num)
        self._refresh(self.live)

    def _refresh(self, rows: np.ndarray) -> None:
        space = self.builder.space
        for r in rows.tolist():
            n = int(self.num_nodes[r])
            m = space.step_masks(self.names[r], self.adjacency[r, :n, :n])
            self.op_mask[r] = m.ops
            self.edge_mask[r, :n] = m.edges
            self.edge_required[r, :n] = m.required
            self.min_edges[r] = m.min_edges
            self.max_edges[r] = m.max_edges

    def observation(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        rows = self.live if rows is None else rows
        return {k: getattr(self, k)[rows] for k in OBS_KEYS}

    def apply(self, op: np.ndarray, edges: np.ndarray) -> None:
        """Add one node to every live graph (``op`` [L], ``edges`` [L, N], trusted to be legal)."""
        rows = self.live
        n = self.num_nodes[rows]
        N = self.builder.max_nodes
        self.adjacency[rows[:, None], np.arange(N)[None, :], n[:, None]] = edges
        self.ops[rows, n] = op
        types = self.builder.node_types
        for r, o in zip(rows.tolist(), op.tolist()):
            self.names[r].append(types[o])
        self.num_nodes[rows] = n + 1
        done = (op == self.builder.output_id) | (n + 1 >= N)
        finished = rows[done]
        for arr in (self.op_mask, self.edge_mask, self.edge_required, self.min_edges, self.max_edges):
            arr[finished] = 0
        self.live = rows[~done]
        self._refresh(self.live)

    def architectures(self) -> list[Architecture]:
        return [
            Architecture(names, self.adjacency[r, : len(names), : len(names)].astype(np.int8))
            for r, names in enumerate(self.names)
        ]


class PartialGraph:
    """A graph under construction: ``matrix`` is padded to ``max_nodes``; ``masks`` are those for
    the next node (None once complete)."""

    __slots__ = ("matrix", "ops", "masks")

    def __init__(self, matrix: np.ndarray, ops: list[str]) -> None:
        self.matrix = matrix
        self.ops = ops
        self.masks: StepMasks | None = None


def random_legal_action(obs: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A uniformly random legal op, then its required edges plus a random number (uniform in the
    legal range) of the other legal edges."""
    op = int(rng.choice(np.flatnonzero(obs["op_mask"])))
    edges = obs["edge_required"].astype(np.int8).copy()
    free = np.flatnonzero(obs["edge_mask"].astype(bool) & ~obs["edge_required"].astype(bool))
    have = int(edges.sum())
    lo = max(int(obs["min_edges"][op]) - have, 0)
    hi = min(int(obs["max_edges"][op]) - have, len(free))
    k = int(rng.integers(lo, hi + 1))
    if k:
        edges[rng.choice(free, size=k, replace=False)] = 1
    return {"op": op, "edges": edges}

"""The architecture model: an immutable, node-labelled DAG.

No torch and no Ray here: this module is imported by everything, including ``import nas_ray``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_ray.errors import ConfigError, InvalidArchitecture

if TYPE_CHECKING:  # pragma: no cover
    import networkx
    import torch_geometric.data

__all__ = ["Architecture"]


class Architecture:
    """A neural architecture as a node-labelled DAG.

    ``ops[i]`` is the operation of node ``i``; ``matrix[src][dst] == 1`` is an edge ``src -> dst``.
    Nodes are in topological order (the matrix is strictly upper-triangular), node 0 is the input
    and the last node the output. Instances are immutable and hashable; equality is exact (same
    ops, same matrix): isomorphic graphs are identified by a search space's ``hash``, not here.

    >>> arch = Architecture(["input", "conv3x3-bn-relu", "output"], [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    >>> arch.num_nodes, arch.num_edges
    (3, 2)
    >>> Architecture.from_json(arch.to_json()) == arch
    True
    """

    __slots__ = ("_ops", "_matrix", "_hash")

    def __init__(self, ops: Sequence[str], matrix: Sequence[Sequence[int]] | np.ndarray) -> None:
        if isinstance(ops, str) or not isinstance(ops, Iterable):
            raise InvalidArchitecture(f"ops must be a list of operation names, got {type(ops).__name__}")
        ops_t = tuple(ops)
        for i, op in enumerate(ops_t):
            if not isinstance(op, str) or not op:
                raise InvalidArchitecture(f"op of node {i} must be a non-empty string, got {op!r}")
        m = _as_matrix(matrix)
        n = len(ops_t)
        if m.shape != (n, n):
            raise InvalidArchitecture(
                f"matrix is {m.shape[0]}x{m.shape[1]} but there are {n} ops: it must be {n}x{n}"
            )
        if n < 2:
            raise InvalidArchitecture(f"an architecture needs at least an input and an output node, got {n} node(s)")
        _check_topological(m)
        m.setflags(write=False)
        self._ops = ops_t
        self._matrix = m
        self._hash = hash((ops_t, m.tobytes()))

    # ------------------------------------------------------------------ basic properties
    @property
    def ops(self) -> tuple[str, ...]:
        return self._ops

    @property
    def matrix(self) -> np.ndarray:
        """Read-only ``int8`` adjacency matrix."""
        return self._matrix

    @property
    def num_nodes(self) -> int:
        return len(self._ops)

    @property
    def num_edges(self) -> int:
        return int(self._matrix.sum())

    @property
    def edges(self) -> list[tuple[int, int]]:
        src, dst = np.nonzero(self._matrix)
        return list(zip(src.tolist(), dst.tolist()))

    def predecessors(self, node: int) -> list[int]:
        return np.nonzero(self._matrix[:, node])[0].tolist()

    def successors(self, node: int) -> list[int]:
        return np.nonzero(self._matrix[node])[0].tolist()

    @classmethod
    def _trusted(cls, ops: tuple[str, ...], matrix: np.ndarray) -> Architecture:
        """Construct without validation, for spaces that build from parts they have validated:
        ``ops`` a tuple of str, ``matrix`` a read-only, strictly upper-triangular int8 array."""
        arch = object.__new__(cls)
        object.__setattr__(arch, "_ops", ops)
        object.__setattr__(arch, "_matrix", matrix)
        object.__setattr__(arch, "_hash", hash((ops, matrix.tobytes())))
        return arch

    @classmethod
    def from_edges(cls, ops: Sequence[str], edges: Iterable[tuple[int, int]]) -> Architecture:
        """Build from an edge list ``[(src, dst), ...]`` over nodes ``0..len(ops)-1``."""
        n = len(ops)
        m = np.zeros((n, n), dtype=np.int8)
        for e in edges:
            try:
                src, dst = (int(v) for v in e)
            except (TypeError, ValueError):
                raise InvalidArchitecture(f"an edge must be a (src, dst) pair of ints, got {e!r}") from None
            if not (0 <= src < n and 0 <= dst < n):
                raise InvalidArchitecture(f"edge {src}->{dst} names a node outside 0..{n - 1}")
            m[src, dst] = 1
        return cls(ops, m)

    # ------------------------------------------------------------------ value semantics
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Architecture):
            return NotImplemented
        return self._hash == other._hash and self._ops == other._ops and np.array_equal(self._matrix, other._matrix)

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Architecture(ops={list(self._ops)!r}, edges={self.edges!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Architecture, (self._ops, self._matrix.tolist()))

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, "_hash"):
            raise AttributeError("Architecture is immutable")
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ JSON form
    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form ``{"ops": [...], "matrix": [[...]]}`` that crosses process boundaries."""
        return {"ops": list(self._ops), "matrix": self._matrix.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Architecture:
        if not isinstance(data, Mapping):
            raise InvalidArchitecture(
                f'architecture JSON must be an object {{"ops": [...], "matrix": [[...]]}}, got {type(data).__name__}'
            )
        missing = [k for k in ("ops", "matrix") if k not in data]
        if missing:
            raise InvalidArchitecture(f"architecture JSON lacks the key(s) {', '.join(map(repr, missing))}")
        return cls(data["ops"], data["matrix"])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Architecture:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidArchitecture(f"malformed architecture JSON: {exc}") from None
        except RecursionError:  # json's C scanner recurses per nesting level
            raise InvalidArchitecture("malformed architecture JSON: nested too deeply to parse") from None
        return cls.from_dict(data)

    # ------------------------------------------------------------------ conversions
    def to_networkx(self) -> networkx.DiGraph:
        """A ``networkx.DiGraph`` with the op of each node under the node attribute ``"op"``."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from((i, {"op": op}) for i, op in enumerate(self._ops))
        g.add_edges_from(self.edges)
        return g

    def to_pyg(self, vocabulary: Sequence[str]) -> torch_geometric.data.Data:
        """A ``torch_geometric.data.Data`` with ``x`` = op indices into ``vocabulary`` (LongTensor [n])
        and ``edge_index`` (LongTensor [2, E], rows src -> dst, sorted by source)."""
        import torch
        from torch_geometric.data import Data

        index = {op: i for i, op in enumerate(vocabulary)}
        try:
            x = [index[op] for op in self._ops]
        except KeyError as exc:
            raise InvalidArchitecture(f"op {exc.args[0]!r} is not in the vocabulary {list(vocabulary)}") from None
        src, dst = np.nonzero(self._matrix)
        edge_index = torch.as_tensor(np.stack([src, dst]), dtype=torch.long)
        return Data(x=torch.as_tensor(x, dtype=torch.long), edge_index=edge_index, num_nodes=self.num_nodes)

    # ------------------------------------------------------------------ graph statistics
    def average_path_length(self) -> float:
        """Average shortest directed path length, Eq. 12 of the operation-embeddings paper:
        ``L = 1 / (n (n - 1)) * sum_{i != j} d(i, j)`` with ``d(i, j) = 0`` where j is unreachable."""
        n = self.num_nodes
        dist = _directed_distances(self._matrix)
        return float(dist[dist > 0].sum()) / (n * (n - 1))

    def clustering_coefficient(self) -> float:
        """Global clustering coefficient (transitivity: 3 x triangles / connected triples) of the
        undirected graph, edge directions ignored, as the operation-embeddings paper computes it
        with igraph. 0.0 for a graph without connected triples."""
        a = (self._matrix | self._matrix.T).astype(np.int64)
        deg = a.sum(axis=1)
        triples = float((deg * (deg - 1)).sum())
        if triples == 0:
            return 0.0
        closed = float(np.trace(a @ a @ a))  # = 6 x triangles; triples counts each path twice
        return closed / triples


def _as_matrix(matrix: Any) -> np.ndarray:
    try:
        m = np.array(matrix)
    except Exception as exc:  # ragged lists raise ConfigError in numpy >= 1.24
        raise InvalidArchitecture(f"matrix is not a square 0/1 array: {exc}") from None
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InvalidArchitecture(f"matrix must be square, got shape {m.shape}")
    if m.dtype == bool:
        return m.astype(np.int8)
    if m.size and not np.issubdtype(m.dtype, np.number):
        raise InvalidArchitecture(f"matrix entries must be 0 or 1, got {m.dtype} values")
    bad = (m != 0) & (m != 1)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InvalidArchitecture(f"matrix entries must be 0 or 1, got {m[i, j].item()!r} at [{i}][{j}]")
    return m.astype(np.int8)


def _check_topological(m: np.ndarray) -> None:
    """Strictly upper-triangular; if not, say whether the graph is cyclic or only mis-ordered."""
    lower = np.tril(m)
    if not lower.any():
        return
    cycle = _find_cycle(m)
    if cycle is not None:
        path = "->".join(str(v) for v in cycle)
        raise InvalidArchitecture(f"graph is cyclic ({path}): an architecture must be a DAG")
    i, j = np.argwhere(lower)[0]
    if i == j:
        raise InvalidArchitecture(f"self-loop on node {i}")
    raise InvalidArchitecture(
        f"edge {i}->{j} points backwards: nodes must be numbered in topological order "
        "(the matrix must be strictly upper-triangular)"
    )


def _find_cycle(m: np.ndarray) -> list[int] | None:
    n = m.shape[0]
    colour = [0] * n  # 0 new, 1 on the stack, 2 done
    parent = [-1] * n
    for root in range(n):
        if colour[root]:
            continue
        stack = [(root, iter(np.nonzero(m[root])[0].tolist()))]
        colour[root] = 1
        while stack:
            v, it = stack[-1]
            for w in it:
                if colour[w] == 1:  # back edge v -> w closes a cycle
                    cycle = [v]
                    while cycle[-1] != w:
                        cycle.append(parent[cycle[-1]])
                    return cycle[::-1] + [w]
                if colour[w] == 0:
                    colour[w] = 1
                    parent[w] = v
                    stack.append((w, iter(np.nonzero(m[w])[0].tolist())))
                    break
            else:
                colour[v] = 2
                stack.pop()
    return None


def _directed_distances(m: np.ndarray) -> np.ndarray:
    """All-pairs shortest directed path lengths by repeated boolean products; 0 = unreachable/self."""
    n = m.shape[0]
    adj = m.astype(bool)
    dist = np.zeros((n, n), dtype=np.int64)
    reach = np.eye(n, dtype=bool)
    frontier = adj.copy()
    step = 1
    while frontier.any() and step < n:
        new = frontier & ~reach
        dist[new] = step
        reach |= new
        frontier = (new.astype(np.int64) @ adj.astype(np.int64)) > 0
        step += 1
    return dist

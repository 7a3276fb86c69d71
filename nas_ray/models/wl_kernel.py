"""Weisfeiler-Lehman subtree kernel on node-labelled DAGs: NASGEM's graph similarity ``S_g``.

The kernel
----------
Every node starts with its op name as label (iteration 0). At each refinement step ``t = 1..h`` a
node's new label is a function of its own label and of the sorted multisets of its predecessors'
and of its successors' labels. The feature vector ``phi(G)`` of a graph counts how often each label
occurs among its nodes, over all iterations ``0..h`` (a label is tagged with its iteration, so labels
of different iterations never coincide). The WL subtree kernel is ``k(G_i, G_j) = <phi_i, phi_j>``
and the similarity is its cosine normalisation

    S(G_i, G_j) = k(G_i, G_j) / sqrt(k(G_i, G_i) k(G_j, G_j))  in [0, 1],

1 for identical or isomorphic graphs (exactly 1.0: counts are integers, so the arithmetic is exact),
0 for graphs that share no op. With ``h = 0`` it is the cosine similarity of the op counts.

Direction
---------
Architectures are directed: an input feeding a conv differs from a conv feeding an output, so the
refinement keeps the in-multiset and the out-multiset apart (a predecessor labelled ``L`` is never
confused with a successor labelled ``L``). The relabelling is delegated to networkx's
``weisfeiler_lehman_subgraph_hashes`` on a helper ``DiGraph`` holding, for every edge ``u -> v`` of
the architecture, the edge ``u -> v`` with attribute ``dir = ">"`` (out) and the reverse edge
``v -> u`` with ``dir = "<"`` (in); a DAG never has both ``u -> v`` and ``v -> u``, so no attribute
is overwritten. With ``edge_attr="dir"`` the successors of a node in that graph are all its
neighbours in the architecture, each seen as a (direction, label) pair: exactly the two directed
multisets. (networkx >= 3.5 also aggregates the predecessors of a directed graph; in the helper
graph they are the same neighbours with the direction flipped, so they add nothing and lose
nothing; older versions looked at the successors only, which is already enough.)

networkx builds a node's new label by concatenating its label and the prefixed neighbour labels
without separators, and hashes that string (blake2b, ASCII only). To keep that concatenation
injective, and to accept any op name, the initial label of a node is the JSON string literal of
``str(op)``: ASCII, quoted and escaped, hence self-delimiting; later labels are fixed-length hex
digests. Node labels that are not ``str`` are ``str()``-ed.

Features and batching
---------------------
:class:`WLKernel` maps the labels to columns of a sparse matrix. The vocabulary (label -> column)
lives on the object and only grows, so feature matrices computed by separate calls of the same
kernel are comparable once padded to the same width (:meth:`WLKernel.pad`; :meth:`WLKernel.gram`
and :meth:`WLKernel.pairs` pad by themselves). The label counts of each graph are memoised (key: ops
and adjacency bytes), as search code asks for overlapping graphs again and again; the memo is
cleared when it exceeds :attr:`WLKernel.max_cache_entries` graphs. The object is not thread-safe.

This is NASGEM's ``S_g``; the defaults are ``h = 3``, normalised, directed in/out multisets.

>>> from nas_ray import Architecture
>>> a = Architecture(["input", "conv", "pool", "output"], [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
>>> b = Architecture(["input", "pool", "conv", "output"], [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
>>> wl_similarity(a, b)
1.0
"""

from __future__ import annotations

import contextlib
import json
import numbers
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import scipy.sparse as sp
from nas_ray.errors import ConfigError, ConfigTypeError

__all__ = ["WLKernel", "wl_similarity"]

_OUT = ">"  # edge attribute of an architecture edge u -> v, seen from u
_IN = "<"  # edge attribute of the helper reverse edge v -> u, seen from v
_NX_DIRECTED_WARNING = "The hashes produced for directed graphs changed"

ArchLike = Any  # an Architecture, or any object with ``ops`` (node labels) and ``matrix`` (n x n adjacency)


def _initial_label(op: object) -> str:
    """The iteration-0 label: the JSON literal of ``str(op)`` (ASCII, self-delimiting)."""
    return json.dumps(str(op))


class WLKernel:
    """Normalised directed WL-subtree kernel with ``h`` refinement iterations (see the module doc).

    ``features``/``counts`` map a sequence of architectures to a CSR matrix with one row per graph;
    ``gram`` and ``pairs`` accept either sequences of architectures or such matrices (from this
    kernel object: columns of different objects mean different labels).
    """

    #: the memo of per-graph label counts is cleared when it holds more graphs than this
    max_cache_entries: int = 200_000

    def __init__(self, h: int = 3) -> None:
        if isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 0:
            raise ConfigError(f"WLKernel: h (the number of WL iterations) must be an int >= 0, got {h!r}")
        self.h = int(h)
        self._vocab: dict[str, int] = {}
        self._cache: dict[tuple[tuple[str, ...], bytes], Counter[str]] = {}

    def __repr__(self) -> str:
        return f"WLKernel(h={self.h})"

    # ------------------------------------------------------------------ vocabulary and memo
    @property
    def vocabulary(self) -> Mapping[str, int]:
        """Read-only view of the label -> column map (labels are ``"<iteration>:<label>"``)."""
        return MappingProxyType(self._vocab)

    @property
    def num_features(self) -> int:
        """Current number of columns (distinct labels seen so far)."""
        return len(self._vocab)

    @property
    def cache_size(self) -> int:
        return len(self._cache)

    def clear_cache(self) -> None:
        """Forget the memoised label counts (the vocabulary stays, so columns keep their meaning)."""
        self._cache.clear()

    # ------------------------------------------------------------------ labels of one graph
    def label_counts(self, arch: ArchLike) -> Counter[str]:
        """The WL label multiset of one graph over iterations ``0..h`` (memoised; do not mutate)."""
        with _quiet_networkx():
            return self._label_counts(arch)

    def _label_counts(self, arch: ArchLike) -> Counter[str]:
        ops, m = _ops_and_matrix(arch)
        key = (ops, m.tobytes())
        counts = self._cache.get(key)
        if counts is None:
            counts = self._compute(ops, m)
            if len(self._cache) >= self.max_cache_entries:
                self._cache.clear()
            self._cache[key] = counts
        return counts

    def _compute(self, ops: tuple[str, ...], m: np.ndarray) -> Counter[str]:
        if np.any(np.diagonal(m)) or np.any(m & m.T):
            raise ConfigError(f"WLKernel: the graph with ops {list(ops)} has a self-loop or a 2-cycle; expected a DAG")
        initial = [_initial_label(op) for op in ops]
        if self.h == 0:
            return Counter("0:" + label for label in initial)
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from((i, {"op": label}) for i, label in enumerate(initial))
        src, dst = np.nonzero(m)
        src_l, dst_l = src.tolist(), dst.tolist()
        g.add_edges_from((u, v, {"dir": _OUT}) for u, v in zip(src_l, dst_l))
        g.add_edges_from((v, u, {"dir": _IN}) for u, v in zip(src_l, dst_l))
        hashes = nx.weisfeiler_lehman_subgraph_hashes(g, edge_attr="dir", node_attr="op", iterations=self.h,
                                                      include_initial_labels=True)
        counts: Counter[str] = Counter()
        for node_hashes in hashes.values():
            if len(node_hashes) != self.h + 1:  # guards against a change of networkx's output
                raise RuntimeError(f"networkx returned {len(node_hashes)} WL labels per node, expected h + 1 = {self.h + 1}")
            counts.update(f"{t}:{label}" for t, label in enumerate(node_hashes))
        return counts

    # ------------------------------------------------------------------ batched features
    def counts(self, archs: Sequence[ArchLike]) -> sp.csr_matrix:
        """Unnormalised WL feature counts, CSR float64 ``[len(archs), num_features]``."""
        if hasattr(archs, "ops") and hasattr(archs, "matrix"):
            raise ConfigTypeError("WLKernel expects a sequence of architectures, got a single architecture")
        vocab = self._vocab
        indptr = [0]
        indices: list[int] = []
        data: list[int] = []
        with _quiet_networkx():
            for arch in archs:
                for label, c in self._label_counts(arch).items():
                    col = vocab.get(label)
                    if col is None:
                        col = vocab[label] = len(vocab)
                    indices.append(col)
                    data.append(c)
                indptr.append(len(indices))
        out = sp.csr_matrix(
            (np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
            shape=(len(indptr) - 1, len(vocab)),
        )
        out.sort_indices()
        return out

    def features(self, archs: Sequence[ArchLike]) -> sp.csr_matrix:
        """L2-normalised WL features, CSR float64 ``[len(archs), num_features]``: the dot product of
        two rows is the normalised kernel."""
        c = self.counts(archs)
        norms = np.sqrt(_row_sq_norms(c))
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        c.data *= np.repeat(scale, np.diff(c.indptr))
        return c

    def pad(self, x: sp.spmatrix | sp.sparray, num_columns: int | None = None) -> sp.csr_matrix:
        """``x`` (a matrix from :meth:`features`/:meth:`counts`) widened with zero columns to
        ``num_columns`` (default: the current vocabulary size), so it lines up with later matrices."""
        width = self.num_features if num_columns is None else int(num_columns)
        x = sp.csr_matrix(x)
        if x.shape[1] > width:
            raise ConfigError(f"cannot pad a matrix with {x.shape[1]} columns to {width} columns")
        if x.shape[1] == width:
            return x
        return sp.csr_matrix((x.data, x.indices, x.indptr), shape=(x.shape[0], width))

    def _as_matrix(self, x: Any) -> sp.csr_matrix:
        if sp.issparse(x):
            return sp.csr_matrix(x, dtype=np.float64)
        return self.counts(x)

    def _aligned(self, a: Any, b: Any) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        xa = self._as_matrix(a)
        xb = self._as_matrix(b)
        width = max(xa.shape[1], xb.shape[1])
        return self.pad(xa, width), self.pad(xb, width)

    # ------------------------------------------------------------------ kernels
    def gram(self, a: Any, b: Any = None) -> np.ndarray:
        """Normalised kernel matrix ``[len(a), len(b)]`` (float64; ``b=None``: ``a`` against itself).
        ``a`` and ``b`` are sequences of architectures or matrices from :meth:`features`/:meth:`counts`
        of this object (any row scaling: the result is renormalised)."""
        if b is None:
            xa = self._as_matrix(a)
            k = (xa @ xa.T).toarray()
            d = np.diagonal(k).copy()  # from the same product, so the diagonal is exactly 1
            return _normalise(k, d, d)
        xa, xb = self._aligned(a, b)
        k = (xa @ xb.T).toarray()
        return _normalise(k, _row_sq_norms(xa), _row_sq_norms(xb))

    def pairs(self, a: Any, b: Any) -> np.ndarray:
        """Normalised kernel of ``a[i]`` with ``b[i]`` for equal-length ``a``, ``b`` (float64 ``[len(a)]``)."""
        xa, xb = self._aligned(a, b)
        if xa.shape[0] != xb.shape[0]:
            raise ConfigError(f"pairs needs sequences of equal length, got {xa.shape[0]} and {xb.shape[0]}")
        k = np.asarray(xa.multiply(xb).sum(axis=1), dtype=np.float64).ravel()
        return _normalise(k, _row_sq_norms(xa), _row_sq_norms(xb), outer=False)


def wl_similarity(arch_a: ArchLike, arch_b: ArchLike, h: int = 3) -> float:
    """Normalised directed WL-subtree similarity of two architectures, in [0, 1]."""
    return float(WLKernel(h).pairs([arch_a], [arch_b])[0])


# ---------------------------------------------------------------------- helpers
def _ops_and_matrix(arch: ArchLike) -> tuple[tuple[str, ...], np.ndarray]:
    try:
        raw_ops, raw_matrix = arch.ops, arch.matrix
    except AttributeError:
        raise ConfigTypeError(f"expected an architecture with .ops and .matrix, got {type(arch).__name__}") from None
    ops = tuple(op if type(op) is str else str(op) for op in raw_ops)
    m = np.asarray(raw_matrix)
    n = len(ops)
    if m.shape != (n, n):
        raise ConfigError(f"adjacency matrix has shape {m.shape}, expected ({n}, {n}) for {n} nodes")
    if m.dtype != np.int8:
        m = (m != 0).astype(np.int8)
    return ops, m


@contextlib.contextmanager
def _quiet_networkx() -> Iterator[None]:
    """Silences networkx's per-call UserWarning that its directed-graph hashes changed in v3.5."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_NX_DIRECTED_WARNING, category=UserWarning)
        yield


def _row_sq_norms(x: sp.csr_matrix) -> np.ndarray:
    return np.asarray(x.multiply(x).sum(axis=1), dtype=np.float64).ravel()


def _normalise(k: np.ndarray, da: np.ndarray, db: np.ndarray, *, outer: bool = True) -> np.ndarray:
    """``k / sqrt(da db)`` (outer product or element-wise), 0 where a graph has no features, clipped
    to [0, 1] against rounding. ``sqrt`` of the product keeps ``k / sqrt(k k) == 1`` exact."""
    denom = np.sqrt(np.multiply.outer(da, db) if outer else da * db)
    s = np.divide(k, denom, out=np.zeros_like(k, dtype=np.float64), where=denom > 0)
    return np.clip(s, 0.0, 1.0, out=s)

"""Random-graph priors as DAGs: undirected random graphs oriented from lower to higher node index,
as the RandWire paper (Xie et al. 2019, §3.2-3.3) turns them into networks."""

from __future__ import annotations

import numpy as np
from nas_ray.errors import ConfigError


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def _oriented(graph, n: int) -> np.ndarray:  # noqa: ANN001 - networkx.Graph
    m = np.zeros((n, n), dtype=np.int8)
    for u, v in graph.edges():
        a, b = (u, v) if u < v else (v, u)
        m[a, b] = 1
    return m


def erdos_renyi(n: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """ER(P): each of the n(n-1)/2 node pairs is an edge with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"erdos_renyi: p must be in [0, 1], got {p}")
    return np.triu(rng.random((n, n)) < p, k=1).astype(np.int8)


def watts_strogatz(n: int, k: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """WS(K, P): a ring where each node joins its K nearest neighbours, each edge rewired with probability P."""
    import networkx as nx

    if not (0 < k < n) or k % 2:
        raise ConfigError(f"watts_strogatz: k must be even and in (0, {n}), got {k}")
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"watts_strogatz: p must be in [0, 1], got {p}")
    return _oriented(nx.watts_strogatz_graph(n, k, p, seed=_seed(rng)), n)


def barabasi_albert(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """BA(M): nodes added one by one, each attached to M existing nodes by preferential attachment."""
    import networkx as nx

    if not (1 <= m < n):
        raise ConfigError(f"barabasi_albert: m must be in [1, {n}), got {m}")
    return _oriented(nx.barabasi_albert_graph(n, m, seed=_seed(rng)), n)

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


def relabel_topologically(matrix: np.ndarray, ops: list[str], rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """The same graph with its nodes in a random topological order (input first, output last)."""
    matrix = np.asarray(matrix)
    n = len(ops)
    indeg = matrix.sum(axis=0).astype(int) - matrix[0]
    order = [0]
    while len(order) < n - 1:
        ready = [v for v in range(1, n - 1) if v not in order and indeg[v] == 0]
        v = ready[int(rng.integers(len(ready)))]
        order.append(v)
        indeg -= matrix[v]
    order.append(n - 1)
    return matrix[np.ix_(order, order)], [ops[i] for i in order]


@pytest.fixture
def relabel() -> Callable[..., tuple[np.ndarray, list[str]]]:
    return relabel_topologically

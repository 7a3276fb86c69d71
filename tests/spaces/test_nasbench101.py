from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nas_ray import Architecture, InvalidArchitecture, get_space
from nas_ray.spaces.nasbench101 import CONV1X1, CONV3X3, MAXPOOL3X3

graph_util = pytest.importorskip("nasbench_pytorch.model.graph_util")
ModelSpec = pytest.importorskip("nasbench_pytorch.model").ModelSpec

SPACE = get_space("nasbench101")
OPS = [CONV3X3, CONV1X1, MAXPOOL3X3]
LABELS = {"input": -1, "output": -2, CONV3X3: 0, CONV1X1: 1, MAXPOOL3X3: 2}


def official_hash(matrix: np.ndarray, ops: list[str]) -> str | None:
    """hash_module of the cell pruned by nasbench-pytorch's ModelSpec; None if NB101 rejects it."""
    try:
        spec = ModelSpec(np.array(matrix), list(ops))
    except (RuntimeError, TypeError):  # nasbench-pytorch crashes on a cell whose input misses the output
        return None
    pruned = spec.matrix.numpy()
    if not spec.valid_spec or len(spec.ops) > 7 or int(pruned.sum()) > 9:
        return None
    return graph_util.hash_module(pruned, [LABELS[o] for o in spec.ops])


def test_hash_parity_with_official_hash_module(relabel) -> None:  # noqa: ANN001
    """>= 300 random specs, raw (unpruned) and isomorphic relabellings, against nasbench-pytorch."""
    rng = np.random.default_rng(0)
    checked = relabelled = pruned_away = 0
    while checked < 400:
        n = int(rng.integers(2, 8))
        m = np.triu(rng.random((n, n)) < 0.5, k=1).astype(np.int8)
        ops = ["input", *(OPS[i] for i in rng.integers(3, size=n - 2)), "output"]
        expected = official_hash(m, ops)
        arch = Architecture(ops, m)
        if expected is None:
            assert not SPACE.is_valid(arch)
            continue
        assert SPACE.hash(arch) == expected
        if SPACE.canonicalize(arch).num_nodes < n:
            pruned_away += 1
        m2, ops2 = relabel(m, ops, rng)
        if not np.array_equal(m2, m):
            relabelled += 1
        assert SPACE.hash(Architecture(ops2, m2)) == expected
        checked += 1
    assert pruned_away >= 30 and relabelled >= 100


def test_known_cell_hash() -> None:
    # The NB101 paper's example-style cell: input -> conv3x3 -> output with a skip
    arch = Architecture(["input", CONV3X3, "output"], [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    expected = graph_util.hash_module(np.array(arch.matrix), [-1, 0, -2])
    assert SPACE.hash(arch) == expected


def test_canonicalize_prunes_and_limits_apply_after_pruning() -> None:
    # 8 raw nodes: node 6 dangles (no out-edge), so the pruned cell has 7 nodes and is valid
    m = np.zeros((8, 8), dtype=np.int8)
    for i in range(5):
        m[i, i + 1] = 1
    m[5, 7] = 1
    m[0, 6] = 1
    ops = ["input", CONV3X3, CONV1X1, MAXPOOL3X3, CONV3X3, CONV1X1, MAXPOOL3X3, "output"]
    arch = Architecture(ops, m)
    pruned = SPACE.canonicalize(arch)
    assert pruned.num_nodes == 7 and MAXPOOL3X3 == pruned.ops[3]
    assert SPACE.hash(arch) == SPACE.hash(pruned)


@pytest.mark.parametrize(
    ("ops", "matrix", "message"),
    [
        (["input", "conv9x9", "output"], [[0, 1, 0], [0, 0, 1], [0, 0, 0]], r"unknown op 'conv9x9' at node 1"),
        ([CONV3X3, CONV3X3, "output"], [[0, 1, 0], [0, 0, 1], [0, 0, 0]], r"node 0 must be 'input'"),
        (["input", CONV3X3, CONV3X3], [[0, 1, 0], [0, 0, 1], [0, 0, 0]], r"last node must be 'output'"),
        (["input", CONV3X3, "output"], [[0, 1, 0], [0, 0, 0], [0, 0, 0]], r"input does not reach the output"),
    ],
)
def test_invalid_cells(ops, matrix, message) -> None:  # noqa: ANN001
    arch = Architecture(ops, matrix)
    with pytest.raises(InvalidArchitecture, match=message):
        SPACE.validate(arch)
    assert not SPACE.is_valid(arch)
    with pytest.raises(InvalidArchitecture):
        SPACE.hash(arch)


def test_too_many_edges_and_nodes() -> None:
    full = np.triu(np.ones((7, 7), dtype=np.int8), k=1)  # 21 edges
    with pytest.raises(InvalidArchitecture, match=r"21 edges after pruning, at most 9 allowed"):
        SPACE.validate(Architecture(["input", *[CONV3X3] * 5, "output"], full))
    chain = np.eye(9, k=1, dtype=np.int8)
    with pytest.raises(InvalidArchitecture, match=r"9 nodes after pruning, at most 7 allowed"):
        SPACE.validate(Architecture(["input", *[CONV3X3] * 7, "output"], chain))


def test_sample_is_valid_and_reproducible() -> None:
    a = [SPACE.sample(7) for _ in range(3)]
    assert all(x == a[0] for x in a)
    rng = np.random.default_rng(1)
    for _ in range(200):
        assert SPACE.is_valid(SPACE.sample(rng))


def test_sample_op_frequencies_are_uniform() -> None:
    """Validity does not depend on the ops, so interior ops of valid specs are uniform (chi-square)."""
    rng = np.random.default_rng(3)
    counts = dict.fromkeys(OPS, 0)
    for _ in range(3000):
        for op in SPACE.sample(rng).ops[1:-1]:
            counts[op] += 1
    assert stats.chisquare(list(counts.values())).pvalue > 1e-3


def test_mutate_gives_a_valid_different_cell() -> None:
    rng = np.random.default_rng(5)
    arch = SPACE.sample(rng)
    for _ in range(100):
        child = SPACE.mutate(arch, rng)
        assert SPACE.is_valid(child) and SPACE.hash(child) != SPACE.hash(arch)
        arch = child
    # a pruned (small) cell can grow back
    tiny = Architecture(["input", "output"], [[0, 1], [0, 0]])
    sizes = {SPACE.canonicalize(SPACE.mutate(tiny, rng)).num_nodes for _ in range(50)}
    assert max(sizes) > 2


def test_priors_give_valid_cells() -> None:
    rng = np.random.default_rng(9)
    assert set(SPACE.priors) == {"erdos_renyi", "watts_strogatz"}
    for prior, params in [("erdos_renyi", {"p": 0.3}), ("watts_strogatz", {"k": 2, "p": 0.2})]:
        for _ in range(20):
            assert SPACE.is_valid(SPACE.sample_prior(prior, rng, **params))
    with pytest.raises(KeyError, match=r"space nasbench101 has no prior 'barabasi_albert'"):
        SPACE.sample_prior("barabasi_albert", rng)


def test_masks_build_valid_cells() -> None:
    """Following the masks from an empty graph always ends in a valid cell."""
    rng = np.random.default_rng(11)
    types = SPACE.node_types
    for _ in range(200):
        ops: list[str] = []
        m = np.zeros((0, 0), dtype=np.int8)
        while not ops or ops[-1] != "output":
            masks = SPACE.next_node_masks(ops, m)
            op = types[int(rng.choice(np.nonzero(masks.ops)[0]))]
            masks = SPACE.next_node_masks(ops, m, op)
            n = len(ops)
            k = int(rng.integers(masks.min_edges, masks.max_edges + 1)) if n else 0
            preds = rng.choice(np.nonzero(masks.edges)[0], size=k, replace=False) if k else []
            grown = np.zeros((n + 1, n + 1), dtype=np.int8)
            grown[:n, :n] = m
            grown[list(preds), n] = 1
            ops.append(op)
            m = grown
        assert SPACE.is_valid(Architecture(ops, m)), (ops, m)


def test_every_cell_has_a_decision_form() -> None:
    # a pruned cell of fewer than 7 nodes is padded with nodes that pruning removes again
    space = get_space("nasbench101")
    rng = np.random.default_rng(0)
    small = 0
    for _ in range(200):
        cell = space.canonicalize(space.sample(rng))
        small += cell.num_nodes < 7
        values = space.to_decisions(cell)
        assert values is not None and space.hash(space.from_decisions(values)) == space.hash(cell)
    assert small > 20  # the sampler's pruned cells were among them

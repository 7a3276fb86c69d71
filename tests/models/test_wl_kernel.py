"""The directed WL-subtree kernel (NASGEM's S_g), checked against a plain-Python reference."""

from __future__ import annotations

import math
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from nas_ray import Architecture, get_space
from nas_ray.models.wl_kernel import WLKernel, wl_similarity


# ---------------------------------------------------------------------- an independent reference
def ref_counts(ops, matrix, h, *, directed=True):
    """WL subtree feature counts with tuples as labels: label_{t+1}(v) = (label_t(v), sorted in-multiset,
    sorted out-multiset); undirected: (label_t(v), sorted neighbour multiset)."""
    m = np.asarray(matrix)
    n = len(ops)
    preds = [[u for u in range(n) if m[u, v]] for v in range(n)]
    succs = [[w for w in range(n) if m[v, w]] for v in range(n)]
    labels = [str(op) for op in ops]
    counts = Counter((0, label) for label in labels)
    for t in range(1, h + 1):
        if directed:
            labels = [(labels[v], tuple(sorted(labels[u] for u in preds[v])), tuple(sorted(labels[w] for w in succs[v])))
                      for v in range(n)]
        else:
            labels = [(labels[v], tuple(sorted(labels[u] for u in preds[v] + succs[v]))) for v in range(n)]
        counts.update((t, label) for label in labels)
    return counts


def ref_kernel(c1, c2):
    def k(a, b):
        return sum(v * b[key] for key, v in a.items())

    return k(c1, c2) / math.sqrt(k(c1, c1) * k(c2, c2))


def ref_gram(archs, h, *, directed=True):
    cs = [ref_counts(a.ops, a.matrix, h, directed=directed) for a in archs]
    return np.array([[ref_kernel(x, y) for y in cs] for x in cs])


def samples(space, n, seed):
    rng = np.random.default_rng(seed)
    s = get_space(space)
    return [s.sample(rng) for _ in range(n)]


def random_topological_relabel(arch, rng):
    """The same DAG with its nodes renumbered along a random topological order."""
    m = arch.matrix
    n = arch.num_nodes
    indeg = m.sum(axis=0).astype(int)
    ready = [v for v in range(n) if indeg[v] == 0]
    order = []
    while ready:
        v = ready.pop(int(rng.integers(len(ready))))
        order.append(v)
        for w in np.nonzero(m[v])[0]:
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(int(w))
    assert len(order) == n
    return Architecture([arch.ops[i] for i in order], m[np.ix_(order, order)])


def chain(ops):
    n = len(ops)
    return Architecture(ops, np.eye(n, k=1, dtype=np.int8))


# ---------------------------------------------------------------------- invariants
def test_identical_and_isomorphic_graphs_have_similarity_one():
    rng = np.random.default_rng(0)
    kernel = WLKernel()
    moved = 0
    for space in ("nasbench201", "enas-macro", "nasbench101"):
        for arch in samples(space, 8, 1):
            twin = random_topological_relabel(arch, rng)
            moved += twin != arch
            assert kernel.gram([arch], [twin])[0, 0] == 1.0
            assert wl_similarity(arch, twin) == 1.0
            assert wl_similarity(arch, arch) == 1.0
    assert moved > 10  # the relabelling really changed most graphs


def test_isomorphic_under_any_node_order():
    """Node order need not be topological for a duck-typed graph: any permutation of a DAG."""
    rng = np.random.default_rng(3)
    for arch in samples("nasbench201", 5, 2):
        perm = rng.permutation(arch.num_nodes)
        twin = SimpleNamespace(ops=[arch.ops[i] for i in perm], matrix=arch.matrix[np.ix_(perm, perm)])
        assert wl_similarity(arch, twin) == 1.0


def test_gram_on_nb201_is_a_valid_similarity_matrix():
    archs = samples("nasbench201", 50, 5)
    g = WLKernel().gram(archs)
    assert g.shape == (50, 50) and g.dtype == np.float64
    assert np.all((g >= 0) & (g <= 1))
    np.testing.assert_array_equal(g, g.T)
    np.testing.assert_array_equal(np.diag(g), 1.0)
    assert np.linalg.eigvalsh(g).min() >= -1e-9
    assert g[~np.eye(50, dtype=bool)].min() < 0.99  # not trivially all ones


# ---------------------------------------------------------------------- against the reference
ADVERSARIAL = [  # op names that would collide under a naive string concatenation of labels
    Architecture(["a", "x"], [[0, 1], [0, 0]]),
    Architecture(["a>x", "q1"], [[0, 0], [0, 0]]),
    Architecture(['a>"x"', "q2"], [[0, 0], [0, 0]]),
    Architecture(["aoutx", "q3"], [[0, 0], [0, 0]]),
    Architecture(["a>x<x", "q4"], [[0, 0], [0, 0]]),
    Architecture(["a", "x\"<\"a"], [[0, 1], [0, 0]]),
    Architecture(["é", "x"], [[0, 1], [0, 0]]),
]


@pytest.mark.parametrize("h", [1, 2, 3])
def test_matches_plain_python_reference(h):
    archs = samples("nasbench201", 6, 11) + samples("enas-macro", 6, 12) + samples("nasbench101", 4, 13) + ADVERSARIAL
    kernel = WLKernel(h)
    got = kernel.gram(archs)
    want = ref_gram(archs, h)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # the same partition of labels: as many distinct (iteration, label) as the reference
    ref_labels = set().union(*(ref_counts(a.ops, a.matrix, h) for a in archs))
    assert kernel.num_features == len(ref_labels)
    # the reference itself tells direction apart on these graphs (so this test can fail)
    assert np.abs(ref_gram(archs, h, directed=False) - want).max() > 1e-3


def test_adversarial_names_share_nothing():
    s = WLKernel().gram(ADVERSARIAL[:5])
    np.testing.assert_array_equal(s, np.eye(5))


def test_direction_matters():
    forward = chain(["x", "y", "z"])  # x -> y -> z
    backward = chain(["z", "y", "x"])  # z -> y -> x: the same undirected path
    undirected = ref_kernel(ref_counts(forward.ops, forward.matrix, 3, directed=False),
                            ref_counts(backward.ops, backward.matrix, 3, directed=False))
    assert undirected == pytest.approx(1.0)
    s = wl_similarity(forward, backward)
    assert s < 1.0
    # only the iteration-0 counts (3 of 12 per graph) agree: 3 / 12
    assert s == pytest.approx(3 / 12)
    # an in-neighbour labelled L is not an out-neighbour labelled L: y with x before vs y with x after
    a = Architecture(["x", "y"], [[0, 1], [0, 0]])
    b = Architecture(["y", "x"], [[0, 1], [0, 0]])
    assert wl_similarity(a, b, h=1) == pytest.approx(2 / 4)


def test_h0_is_bag_of_ops_cosine():
    a = Architecture(["input", "a", "a", "b", "output"], np.eye(5, k=1, dtype=np.int8))
    b = Architecture(["input", "a", "b", "b", "output"], np.triu(np.ones((5, 5), dtype=np.int8), 1))
    assert wl_similarity(a, b, h=0) == pytest.approx(6 / 7)  # (1 + 2 + 2 + 1) / (sqrt(7) sqrt(7))
    c = Architecture(["input", "a", "a", "b", "output"], np.triu(np.ones((5, 5), dtype=np.int8), 1))
    assert wl_similarity(a, c, h=0) == 1.0  # structure is invisible at h = 0
    assert wl_similarity(a, c, h=1) < 1.0


# ---------------------------------------------------------------------- the batched API
def test_features_are_unit_rows_and_dot_products_are_the_kernel():
    archs = samples("enas-macro", 10, 21)
    kernel = WLKernel()
    f = kernel.features(archs)
    assert sp.issparse(f) and f.shape == (10, kernel.num_features)
    np.testing.assert_allclose(sp.linalg.norm(f, axis=1), 1.0)
    np.testing.assert_allclose((f @ f.T).toarray(), kernel.gram(archs), atol=1e-12)


def test_features_from_separate_calls_compare_like_one_call():
    a = samples("nasbench201", 12, 31)
    b = samples("enas-macro", 9, 32) + samples("nasbench201", 3, 33)
    kernel = WLKernel()
    fa = kernel.features(a)
    fb = kernel.features(b)  # new labels: fb is wider than fa
    assert fb.shape[1] > fa.shape[1]
    one_call = WLKernel().gram(a, b)
    np.testing.assert_allclose(kernel.gram(fa, fb), one_call, atol=1e-12)
    np.testing.assert_allclose(kernel.gram(fa, b), one_call, atol=1e-12)
    padded = kernel.pad(fa)
    assert padded.shape == (12, kernel.num_features)
    np.testing.assert_allclose((padded @ fb.T).toarray(), one_call, atol=1e-12)
    np.testing.assert_allclose(kernel.gram(fa), WLKernel().gram(a), atol=1e-12)


def test_pairs_is_the_diagonal_of_gram():
    a = samples("nasbench201", 15, 41)
    b = samples("nasbench201", 15, 42)
    b[3] = a[3]
    kernel = WLKernel()
    p = kernel.pairs(a, b)
    assert p.shape == (15,)
    np.testing.assert_allclose(p, np.diag(WLKernel().gram(a, b)), atol=1e-12)
    assert p[3] == 1.0
    np.testing.assert_allclose(kernel.pairs(kernel.features(a), kernel.counts(b)), p, atol=1e-12)
    with pytest.raises(ValueError, match="equal length"):
        kernel.pairs(a, b[:3])


def test_memo_is_reused_and_bounded():
    archs = samples("nasbench101", 20, 51)
    kernel = WLKernel()
    first = kernel.counts(archs)
    assert kernel.cache_size == len(set(archs))
    assert kernel.label_counts(archs[0]) is kernel.label_counts(archs[0])
    assert (kernel.counts(archs) != first).nnz == 0
    kernel.max_cache_entries = 5
    kernel.counts(samples("nasbench101", 20, 52))
    assert kernel.cache_size <= 5
    assert (kernel.pad(first) != kernel.counts(archs)).nnz == 0  # same columns after clearing


def test_non_string_labels_are_stringified():
    m = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]], dtype=np.int64)
    ints = SimpleNamespace(ops=(0, 7, 1), matrix=m)
    strs = Architecture(["0", "7", "1"], m)
    assert wl_similarity(ints, strs) == 1.0
    assert wl_similarity(ints, Architecture(["0", "8", "1"], m)) < 1.0


def test_empty_inputs():
    kernel = WLKernel()
    archs = samples("nasbench201", 3, 61)
    assert kernel.features([]).shape == (0, 0)
    assert kernel.gram([]).shape == (0, 0)
    assert kernel.gram([], archs).shape == (0, 3)
    assert kernel.gram(archs, []).shape == (3, 0)
    assert kernel.pairs([], []).shape == (0,)
    assert kernel.features([]).shape == (0, kernel.num_features)


@pytest.mark.parametrize("h", [-1, 1.5, "3", None, True])
def test_bad_h_raises(h):
    with pytest.raises(ValueError, match="h"):
        WLKernel(h)
    with pytest.raises(ValueError):
        wl_similarity(chain(["a", "b"]), chain(["a", "b"]), h=h)


def test_bad_graphs_raise():
    kernel = WLKernel()
    with pytest.raises(TypeError, match="sequence"):
        kernel.features(chain(["a", "b"]))
    with pytest.raises(ValueError, match="DAG"):
        kernel.features([SimpleNamespace(ops=("a", "b"), matrix=np.array([[0, 1], [1, 0]]))])

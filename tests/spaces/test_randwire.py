from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from nas_ray import Architecture, InvalidArchitecture, get_space
from nas_ray.spaces.randwire import NODE_OP


def test_defaults_and_validity() -> None:
    space = get_space("randwire")
    arch = space.sample(0)
    assert arch.num_nodes == 34 and set(arch.ops[1:-1]) == {NODE_OP}
    assert space.is_valid(arch)
    m = np.array(arch.matrix)
    m[:, 5] = 0  # node 5 loses its inputs
    with pytest.raises(InvalidArchitecture, match=r"node 5 \(relu_sepconv3x3_bn\) is unreachable from the input"):
        space.validate(Architecture(arch.ops, m))
    m = np.array(arch.matrix)
    m[7, :] = 0
    with pytest.raises(InvalidArchitecture, match=r"node 7 .* does not reach the output"):
        space.validate(Architecture(arch.ops, m))
    with pytest.raises(InvalidArchitecture, match=r"32 nodes plus input and output make 34, got 3"):
        space.validate(Architecture(["input", NODE_OP, "output"], [[0, 1, 0], [0, 0, 1], [0, 0, 0]]))


def test_hash_is_isomorphism_invariant_and_separates(relabel) -> None:  # noqa: ANN001
    space = get_space("randwire", num_nodes=12)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(50)]
    for arch in archs:
        m, ops = relabel(arch.matrix, list(arch.ops), rng)
        other = Architecture(ops, m)
        assert space.hash(other) == space.hash(arch)
    assert len({space.hash(a) for a in archs}) == 50


def test_sampling_is_uniform_over_labelled_graphs() -> None:
    """With 3 inner nodes (5 in all) every valid labelled graph can be listed: chi-square on the draws."""
    space = get_space("randwire", num_nodes=3)
    pairs = list(itertools.combinations(range(5), 2))
    valid = []
    for bits in itertools.product((0, 1), repeat=len(pairs)):
        m = np.zeros((5, 5), dtype=np.int8)
        for (i, j), b in zip(pairs, bits):
            m[i, j] = b
        arch = Architecture(space.node_types[:1] + (NODE_OP,) * 3 + ("output",), m)
        if space.is_valid(arch):
            valid.append(arch)
    index = {a: i for i, a in enumerate(valid)}
    rng = np.random.default_rng(1)
    counts = np.bincount([index[space.sample(rng)] for _ in range(20 * len(valid))], minlength=len(valid))
    assert len(valid) > 100 and counts.min() > 0
    assert stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize(
    ("prior", "params"),
    [("erdos_renyi", {"p": 0.2}), ("watts_strogatz", {"k": 4, "p": 0.75}), ("barabasi_albert", {"m": 5})],
)
def test_randwire_priors(prior: str, params: dict) -> None:
    space = get_space("randwire")
    rng = np.random.default_rng(2)
    archs = [space.sample_prior(prior, rng, **params) for _ in range(20)]
    assert all(space.is_valid(a) for a in archs)
    inner_edges = np.mean([np.asarray(a.matrix)[1:-1, 1:-1].sum() for a in archs])
    expected = {"erdos_renyi": 0.2 * 32 * 31 / 2, "watts_strogatz": 32 * 4 / 2, "barabasi_albert": 5 * (32 - 5)}[prior]
    assert inner_edges == pytest.approx(expected, rel=0.15)


def test_prior_parameter_errors() -> None:
    space = get_space("randwire")
    with pytest.raises(ValueError, match=r"k must be even"):
        space.sample_prior("watts_strogatz", 0, k=3)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        space.sample_prior("erdos_renyi", 0, p=1.5)


def test_mutate() -> None:
    space = get_space("randwire", num_nodes=10)
    rng = np.random.default_rng(3)
    arch = space.sample(rng)
    for _ in range(50):
        child = space.mutate(arch, rng)
        assert space.is_valid(child) and space.hash(child) != space.hash(arch)
        assert int(np.abs(child.matrix.astype(int) - arch.matrix).sum()) == 1
        arch = child


def test_masks() -> None:
    space = get_space("randwire", num_nodes=4)
    assert space.next_node_masks([], np.zeros((0, 0))).ops.tolist() == [True, False, False]
    mid = space.next_node_masks(["input", NODE_OP], np.zeros((2, 2)))
    assert mid.ops.tolist() == [False, True, False] and mid.min_edges == 1 and mid.max_edges == 2
    last = space.next_node_masks(["input"] + [NODE_OP] * 4, np.zeros((5, 5)))
    assert last.ops.tolist() == [False, False, True]

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nas_ray import Architecture, InvalidArchitecture, get_space
from nas_ray.spaces.nasbench201 import OPS, SKELETON

SPACE = get_space("nasbench201")
BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"


def test_enumerate_gives_15625_distinct_cells() -> None:
    cells = list(SPACE.enumerate())
    assert len(cells) == 15625
    assert len({SPACE.hash(a) for a in cells}) == 15625
    assert all(SPACE.from_native(SPACE.to_native(a)) == a for a in cells[::97])


def test_node_labelled_form() -> None:
    arch = SPACE.from_native(BEST_C10)
    assert arch.ops == ("input", "nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "output")
    # e(0->1) feeds e(1->2) and e(1->3); e(0->2), e(1->2) feed e(2->3); edges into cell node 3 feed the output
    assert arch.edges == [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7)]


def test_every_table_arch_string_round_trips(data_dir) -> None:  # noqa: ANN001
    import pandas as pd

    strings = pd.read_csv(data_dir / "nb201" / "nb201_accuracy.csv", usecols=["arch_str"])["arch_str"]
    assert len(strings) == 15625
    for s in strings:
        arch = SPACE.from_native(s)
        assert SPACE.to_native(arch) == s and SPACE.hash(arch) == s


def test_relabelled_cell_has_the_same_hash(rng: np.random.Generator) -> None:
    """The same node-labelled graph with its op nodes in another topological order."""
    arch = SPACE.from_native(BEST_C10)
    # NASLib order of the edges: e01, e02, e03, e12, e13, e23 (a different topological order)
    order = [0, 1, 2, 4, 3, 5, 6, 7]
    other = Architecture([arch.ops[i] for i in order], np.asarray(arch.matrix)[np.ix_(order, order)])
    assert other != arch
    assert SPACE.hash(other) == BEST_C10
    assert SPACE.canonicalize(other) == arch


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", r"must have 3 '\+'-separated nodes"),
        ("|conv7x7~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|", r"unknown op 'conv7x7'"),
        ("|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|", r"must read op~0"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|", r"node 2 .* must be \|op~0\|...\|op~1\|"),
    ],
)
def test_bad_arch_strings(text: str, message: str) -> None:
    with pytest.raises(InvalidArchitecture, match=message):
        SPACE.from_native(text)


def test_bad_architectures() -> None:
    arch = SPACE.from_native(BEST_C10)
    wrong_op = Architecture(["input", "conv7x7", *arch.ops[2:]], arch.matrix)
    with pytest.raises(InvalidArchitecture, match=r"unknown op 'conv7x7' at node 1"):
        SPACE.validate(wrong_op)
    m = np.array(arch.matrix)
    m[0, 3] = 1
    with pytest.raises(InvalidArchitecture, match=r"not the NB201 cell's wiring"):
        SPACE.hash(Architecture(arch.ops, m))
    with pytest.raises(InvalidArchitecture, match=r"8 nodes in node-labelled form, got 3"):
        SPACE.validate(Architecture(["input", "none", "output"], [[0, 1, 0], [0, 0, 1], [0, 0, 0]]))


def test_sampling_is_uniform_over_cells() -> None:
    """Chi-square over all 15,625 cells (5 expected draws each) and over ops per edge."""
    rng = np.random.default_rng(2024)
    index = {s: i for i, s in enumerate(SPACE.hash(a) for a in SPACE.enumerate())}
    draws = [index[SPACE.hash(SPACE.sample(rng))] for _ in range(78125)]
    counts = np.bincount(draws, minlength=15625)
    assert stats.chisquare(counts).pvalue > 1e-3
    for edge_ops in np.unravel_index(draws, (5,) * 6):  # enumerate() order: one digit per edge
        assert stats.chisquare(np.bincount(edge_ops, minlength=5)).pvalue > 1e-3
    # a biased sampler fails the same test
    biased = np.bincount(np.minimum(rng.integers(0, 15625, 78125), rng.integers(0, 15625, 78125)), minlength=15625)
    assert stats.chisquare(biased).pvalue < 1e-6


def test_mutate_changes_exactly_one_edge() -> None:
    rng = np.random.default_rng(4)
    arch = SPACE.sample(rng)
    for _ in range(200):
        child = SPACE.mutate(arch, rng)
        assert sum(a != b for a, b in zip(arch.ops, child.ops)) == 1
        arch = child


def test_masks_follow_the_fixed_wiring() -> None:
    ops: list[str] = []
    for n in range(8):
        masks = SPACE.next_node_masks(ops, SKELETON[:n, :n])
        allowed = [t for t, ok in zip(SPACE.node_types, masks.ops) if ok]
        assert allowed == (["input"] if n == 0 else ["output"] if n == 7 else list(OPS))
        assert masks.required.tolist() == SKELETON[:n, n].astype(bool).tolist()
        assert masks.min_edges == masks.max_edges == int(SKELETON[:n, n].sum())
        ops.append(allowed[0])
    assert list(SPACE.priors) == ["no_none"]  # GraphPNAS's explorer: no 'none' op on any edge
    with pytest.raises(KeyError, match=r"no prior 'erdos_renyi'; its priors: no_none"):
        SPACE.sample_prior("erdos_renyi")

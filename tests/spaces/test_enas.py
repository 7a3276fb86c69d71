from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nas_ray import Architecture, InvalidArchitecture, get_space
from nas_ray.evaluators.tables import parse_enas6

SPACE = get_space("enas-macro")
LAYERS = [[1], [4, 0], [5, 0, 0], [0, 1, 1, 1], [2, 1, 1, 1, 1], [3, 0, 0, 0, 0, 1]]


def test_dag_form_is_d_vae_s() -> None:
    arch = SPACE.from_native(LAYERS)
    assert arch.num_nodes == 8
    assert arch.ops == ("input", "sep_conv3x3", "avg_pool3x3", "max_pool3x3", "conv3x3", "conv5x5", "sep_conv5x5", "output")
    edges = set(arch.edges)
    assert {(k, k + 1) for k in range(7)} <= edges  # the chain, input to output
    # layer 3 bits [1, 1, 1] -> vertices 0, 1, 2 feed vertex 4; bit 0 is the input vertex
    assert {(0, 4), (1, 4), (2, 4)} <= edges
    assert (4, 6) in edges and (0, 6) not in edges  # layer 5's last bit
    assert arch.predecessors(7) == [6]
    assert SPACE.to_native(arch) == LAYERS


def test_all_dataset_lines_parse_and_count(data_dir) -> None:  # noqa: ANN001
    entries = parse_enas6(data_dir / "enas6" / "final_structures6.txt")
    assert len(entries) == 20020
    hashes = [SPACE.hash(a) for a, _ in entries[1000:]]
    assert len(hashes) == 19020 and len(set(hashes)) == 19015
    for arch, _ in entries[::50]:
        assert SPACE.from_native(SPACE.to_native(arch)) == arch


def test_graph_structure_correlations(data_dir) -> None:  # noqa: ANN001
    """Operation-embeddings paper, Figs. 7-8: Pearson r of accuracy with average path length 0.32
    and with the clustering coefficient -0.39, on the 19,020 graphs after the burn-in."""
    entries = parse_enas6(data_dir / "enas6" / "final_structures6.txt")[1000:]
    acc = np.array([a for _, a in entries])
    apl = np.array([arch.average_path_length() for arch, _ in entries])
    cc = np.array([arch.clustering_coefficient() for arch, _ in entries])
    assert stats.pearsonr(apl, acc)[0] == pytest.approx(0.32, abs=0.01)
    assert stats.pearsonr(cc, acc)[0] == pytest.approx(-0.39, abs=0.01)


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (LAYERS[:5], r"expected 6 layers, got 5"),
        ([[1], [4, 0], [5, 0], *LAYERS[3:]], r"layer 2 must be \[op, 2 skip bits\]"),
        ([[9], *LAYERS[1:]], r"layer 0 has op 9; ops are 0..5"),
        ([[1], [4, 2], *LAYERS[2:]], r"layer 1 skip bit 0 must be 0 or 1, got 2"),
        ("abc", r"expected 6 layers"),
    ],
)
def test_bad_layer_lists(layers, message: str) -> None:  # noqa: ANN001
    with pytest.raises(InvalidArchitecture, match=message):
        SPACE.from_native(layers)


def test_d_vae_validity_rule() -> None:
    arch = SPACE.from_native(LAYERS)
    m = np.array(arch.matrix)
    m[3, 4] = 0  # break the chain
    with pytest.raises(InvalidArchitecture, match=r"chain edge 3->4 is missing"):
        SPACE.validate(Architecture(arch.ops, m))
    m = np.array(arch.matrix)
    m[2, 7] = 1  # a second in-edge of the output
    with pytest.raises(InvalidArchitecture, match=r"output must have exactly one in-edge"):
        SPACE.validate(Architecture(arch.ops, m))
    with pytest.raises(InvalidArchitecture, match=r"6 layers make 8 nodes, got 3"):
        SPACE.validate(Architecture(["input", "conv3x3", "output"], [[0, 1, 0], [0, 0, 1], [0, 0, 0]]))


def test_sampling_is_uniform() -> None:
    rng = np.random.default_rng(8)
    samples = [SPACE.to_native(SPACE.sample(rng)) for _ in range(4000)]
    ops = np.bincount([layer[0] for s in samples for layer in s], minlength=6)
    assert stats.chisquare(ops).pvalue > 1e-3
    bits = np.array([b for s in samples for layer in s for b in layer[1:]])
    assert stats.binomtest(int(bits.sum()), len(bits), 0.5).pvalue > 1e-3


def test_mutate_changes_one_decision_and_stays_valid() -> None:
    rng = np.random.default_rng(2)
    arch = SPACE.sample(rng)
    for _ in range(100):
        child = SPACE.mutate(arch, rng)
        a, b = SPACE.to_native(arch), SPACE.to_native(child)
        assert sum(x != y for la, lb in zip(a, b) for x, y in zip(la, lb)) == 1
        arch = child


def test_twelve_layers_and_priors() -> None:
    space = get_space("enas-macro", num_layers=12)
    arch = space.sample(0)
    assert arch.num_nodes == 14 and space.is_valid(arch)
    sparse = space.sample_prior("erdos_renyi", 0, p=0.0)
    assert sparse.num_edges == 13  # the chain only
    with pytest.raises(ValueError, match=r"num_layers must be a positive int"):
        get_space("enas-macro", num_layers=0)


def test_masks_build_valid_networks() -> None:
    rng = np.random.default_rng(3)
    types = SPACE.node_types
    for _ in range(50):
        ops: list[str] = []
        m = np.zeros((0, 0), dtype=np.int8)
        for n in range(SPACE.max_nodes):
            masks = SPACE.next_node_masks(ops, m)
            op = types[int(rng.choice(np.nonzero(masks.ops)[0]))]
            chosen = masks.required | (masks.edges & (rng.random(n) < 0.5))
            grown = np.zeros((n + 1, n + 1), dtype=np.int8)
            grown[:n, :n] = m
            grown[:n, n] = chosen
            ops.append(op)
            m = grown
        assert SPACE.is_valid(Architecture(ops, m))

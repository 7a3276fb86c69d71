from __future__ import annotations

import pickle

import networkx as nx
import numpy as np
import pytest

from nas_ray import Architecture, InvalidArchitecture

CHAIN = [[0, 1, 0], [0, 0, 1], [0, 0, 0]]


def diamond() -> Architecture:
    return Architecture.from_edges(["input", "a", "b", "output"], [(0, 1), (0, 2), (1, 3), (2, 3)])


def test_basic_properties() -> None:
    arch = diamond()
    assert arch.num_nodes == 4 and arch.num_edges == 4
    assert arch.edges == [(0, 1), (0, 2), (1, 3), (2, 3)]
    assert arch.predecessors(3) == [1, 2] and arch.successors(0) == [1, 2]
    assert arch.matrix.dtype == np.int8


def test_immutable_and_hashable() -> None:
    arch = diamond()
    with pytest.raises(ValueError):
        arch.matrix[0, 3] = 1
    with pytest.raises(AttributeError):
        arch._ops = ("x",)
    same = Architecture(list(arch.ops), arch.matrix.tolist())
    assert same == arch and hash(same) == hash(arch) and len({same, arch}) == 1
    other = Architecture(["input", "b", "a", "output"], arch.matrix)
    assert other != arch


def test_input_matrix_is_copied() -> None:
    m = np.array(CHAIN)
    arch = Architecture(["input", "x", "output"], m)
    m[0, 2] = 1
    assert arch.num_edges == 2


def test_json_round_trip() -> None:
    arch = diamond()
    assert Architecture.from_json(arch.to_json()) == arch
    assert Architecture.from_dict(arch.to_dict()) == arch
    assert arch.to_dict() == {"ops": ["input", "a", "b", "output"], "matrix": arch.matrix.tolist()}
    assert pickle.loads(pickle.dumps(arch)) == arch


@pytest.mark.parametrize(
    ("ops", "matrix", "message"),
    [
        (["input", "x", "output"], [[0, 1, 0], [0, 0, 1], [1, 0, 0]], r"graph is cyclic \(0->1->2->0\)"),
        (["input", "x", "output"], [[0, 0, 0], [1, 0, 0], [0, 1, 0]], r"edge 1->0 points backwards"),
        (["input", "x", "output"], [[1, 1, 0], [0, 0, 1], [0, 0, 0]], r"graph is cyclic \(0->0\)"),
        (["input", "x", "output"], [[0, 2, 0], [0, 0, 1], [0, 0, 0]], r"0 or 1, got 2 at \[0\]\[1\]"),
        (["input", "x", "output"], [[0, 1], [0, 0]], r"matrix is 2x2 but there are 3 ops"),
        (["input", "x", "output"], [[0, 1, 0], [0, 0, 1]], r"matrix must be square, got shape \(2, 3\)"),
        (["input", "x", "output"], [[0, 1, 0], [0, 0], [0, 0, 0]], r"not a square 0/1 array"),
        (["input", "", "output"], CHAIN, r"op of node 1 must be a non-empty string"),
        ("input", CHAIN, r"ops must be a list"),
        (["input"], [[0]], r"at least an input and an output"),
    ],
)
def test_bad_input_names_the_problem(ops, matrix, message) -> None:  # noqa: ANN001
    with pytest.raises(InvalidArchitecture, match=message):
        Architecture(ops, matrix)
    assert issubclass(InvalidArchitecture, ValueError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"ops": ["input", "output"], "matrix": [[0, 1], [0, 0]', r"malformed architecture JSON"),
        ('["input", "output"]', r"must be an object"),
        ('{"ops": ["input", "output"]}', r"lacks the key\(s\) 'matrix'"),
        ('{"ops": ["input", "output"], "matrix": [[0, 1], [1, 0]]}', r"cyclic"),
    ],
)
def test_bad_json(text: str, message: str) -> None:
    with pytest.raises(InvalidArchitecture, match=message):
        Architecture.from_json(text)


def test_from_edges_rejects_unknown_nodes() -> None:
    with pytest.raises(InvalidArchitecture, match=r"edge 0->5 names a node outside 0..2"):
        Architecture.from_edges(["input", "x", "output"], [(0, 5)])


def test_to_networkx() -> None:
    g = diamond().to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert sorted(g.edges) == [(0, 1), (0, 2), (1, 3), (2, 3)]
    assert [g.nodes[i]["op"] for i in range(4)] == ["input", "a", "b", "output"]


def test_to_pyg() -> None:
    torch = pytest.importorskip("torch")
    data = diamond().to_pyg(["input", "output", "a", "b"])
    assert data.x.tolist() == [0, 2, 3, 1] and data.x.dtype == torch.long
    assert data.edge_index.tolist() == [[0, 0, 1, 2], [1, 2, 3, 3]]
    assert data.num_nodes == 4
    with pytest.raises(InvalidArchitecture, match=r"op 'b' is not in the vocabulary"):
        diamond().to_pyg(["input", "output", "a"])


def _networkx_path_length(arch: Architecture) -> float:
    g = arch.to_networkx()
    n = arch.num_nodes
    return sum(sum(d.values()) for _, d in nx.all_pairs_shortest_path_length(g)) / (n * (n - 1))


def test_graph_statistics_match_networkx(rng: np.random.Generator) -> None:
    for _ in range(200):
        n = int(rng.integers(2, 12))
        m = np.triu(rng.random((n, n)) < rng.random(), k=1).astype(int)
        arch = Architecture(["input", *["x"] * (n - 2), "output"], m)
        assert arch.average_path_length() == pytest.approx(_networkx_path_length(arch))
        assert arch.clustering_coefficient() == pytest.approx(nx.transitivity(arch.to_networkx().to_undirected()))


def test_graph_statistics_by_hand() -> None:
    # chain 0->1->2: distances 1, 2, 1 over 6 ordered pairs
    chain = Architecture(["input", "x", "output"], CHAIN)
    assert chain.average_path_length() == pytest.approx(4 / 6)
    assert chain.clustering_coefficient() == 0.0
    triangle = Architecture(["input", "x", "output"], [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    assert triangle.clustering_coefficient() == 1.0
    assert triangle.average_path_length() == pytest.approx(3 / 6)

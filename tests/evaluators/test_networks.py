"""Networks of architectures (``nas_ray.evaluators.networks``): parameter counts equal to the benchmarks',
forward shapes for every space and preset, gradients, ENAS skip wiring, RandWire wiring, presets, errors.

NB201 parity covers all 15,625 cells x 3 class counts from the builder's parts (checked against whole
networks); building every one of the 46,875 networks runs with NAS_RAY_EXHAUSTIVE=1. All 500 NB101
specs are built in a slow test; seeded samples of both run by default.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from nasbench_pytorch.model.model import Placeholder

from nas_ray import Architecture, InvalidArchitecture, get_space
from nas_ray.evaluators import nasbench101_parameter_count
from nas_ray.evaluators.networks import (
    PRESETS,
    EnasLayer,
    EnasMacroNetwork,
    EnasReduction,
    RandWireStage,
    build_network,
    enas_op,
    enas_reduction_layers,
    network_options,
    parameter_count,
)
from nas_ray.spaces.enas import OPS as ENAS_OPS

NB201_CLASSES = {"params_c10_M": 10, "params_c100_M": 100, "params_in16_M": 120}
ALL_CONV_CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_3x3~2|"
# 6 layers, every skip bit set: every output is read again, so every reduction is used
ENAS_DENSE = [[0], [1, 1], [2, 1, 1], [3, 1, 1, 1], [4, 1, 1, 1, 1], [5, 1, 1, 1, 1, 1]]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: these small networks ran up to 70x slower with two on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def nb201_frame(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "nb201" / "nb201_accuracy.csv", usecols=["arch_str", *NB201_CLASSES])


@pytest.fixture(scope="module")
def nb101_specs(data_dir: Path) -> list[tuple[Architecture, float]]:
    """The 500 raw specs of the NB101 subset with their own parameter counts. ``load_nasbench101_subset``
    merges isomorphic specs by their mean, but isomorphic specs in another node order can differ in
    parameters (NB101 gives the extra channel of an uneven split to the lower-numbered vertex)."""
    frame = pd.read_csv(data_dir / "nb101" / "nb101_naslib_subset500.csv", dtype={"adjacency_7x7_rowmajor": str})
    return [
        (Architecture(ops.split("|"), np.array(list(adj), dtype=np.int8).reshape(7, 7)), params)
        for adj, ops, params in zip(frame["adjacency_7x7_rowmajor"], frame["ops"], frame["params_M"])
    ]


def _nb201_mismatches(frame: pd.DataFrame, columns: list[str]) -> list[tuple[str, int, int, int]]:
    space = get_space("nasbench201")
    bad = []
    for row in frame.itertuples(index=False):
        arch = space.from_native(row.arch_str)
        for column in columns:
            expected = round(getattr(row, column) * 1e6)
            count = parameter_count(build_network("nasbench201", arch, num_classes=NB201_CLASSES[column]))
            if count != expected:
                bad.append((row.arch_str, NB201_CLASSES[column], count, expected))
    return bad


def _nb101_mismatches(specs: list[tuple[Architecture, float]]) -> list[tuple[Architecture, int, int]]:
    bad = []
    for arch, params in specs:
        count = parameter_count(build_network("nasbench101", arch))
        if count != round(params * 1e6):
            bad.append((arch, count, round(params * 1e6)))
    return bad


# ---------------------------------------------------------------------------------- benchmark parity
def test_nasbench201_parameters_match_the_benchmark_on_a_sample(nb201_frame: pd.DataFrame) -> None:
    sample = nb201_frame.iloc[np.random.default_rng(0).choice(len(nb201_frame), 150, replace=False)]
    assert _nb201_mismatches(sample, ["params_c10_M"]) == []
    assert _nb201_mismatches(sample.iloc[:10], ["params_c100_M", "params_in16_M"]) == []


def test_nasbench201_parameters_match_the_benchmark_for_every_cell(nb201_frame: pd.DataFrame) -> None:
    """All 15,625 cells x 3 class counts, from the builder's own parts: a network's count is that of the
    all-"none" network (stem, reductions, head) plus, per stage, N times its six edge ops' counts.
    The decomposition is checked against whole built networks first. (Building all 46,875 networks
    takes ~20 min here: NAS_RAY_EXHAUSTIVE=1 runs that test too.)"""
    from nas_ray.evaluators.networks import nasbench201_op

    space = get_space("nasbench201")
    nb201 = network_options("nasbench201")
    stages = [nb201["channels"] * 2**s for s in range(3)]
    op_params = {(op, c): sum(p.numel() for p in nasbench201_op(op, c).parameters())
                 for op in space.ops for c in stages}
    empty = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    base = {n: parameter_count(build_network(space, space.from_native(empty), num_classes=n))
            for n in NB201_CLASSES.values()}

    def predicted(arch_str: str, num_classes: int) -> int:
        ops = [edge.split("~")[0] for node in arch_str.strip("|").split("|+|") for edge in node.split("|")]
        return base[num_classes] + nb201["cells_per_stage"] * sum(op_params[op, c] for c in stages for op in ops)

    for arch_str in nb201_frame["arch_str"].iloc[::997]:  # the decomposition is exact on whole networks
        for n in (10, 120):
            assert predicted(arch_str, n) == parameter_count(build_network(space, space.from_native(arch_str), num_classes=n))
    assert len(nb201_frame) == 15_625
    bad = [(row.arch_str, n) for row in nb201_frame.itertuples(index=False) for column, n in NB201_CLASSES.items()
           if predicted(row.arch_str, n) != round(getattr(row, column) * 1e6)]
    assert bad == []


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("NAS_RAY_EXHAUSTIVE"), reason="builds 46,875 networks (~20 min): set NAS_RAY_EXHAUSTIVE=1")
def test_nasbench201_every_built_network_matches_the_benchmark(nb201_frame: pd.DataFrame) -> None:
    assert len(nb201_frame) == 15_625
    assert _nb201_mismatches(nb201_frame, list(NB201_CLASSES)) == []


def test_nasbench101_parameters_match_the_benchmark_on_a_sample(nb101_specs: list) -> None:
    picks = np.random.default_rng(0).choice(len(nb101_specs), 12, replace=False)
    assert _nb101_mismatches([nb101_specs[i] for i in picks]) == []


@pytest.mark.slow
def test_nasbench101_parameters_match_the_benchmark_for_every_spec(nb101_specs: list) -> None:
    """The real networks, built without initialising their weights (a count needs none; 2.7x faster)."""
    from unittest import mock

    assert len(nb101_specs) == 500
    uninitialised = [mock.patch.object(cls, "reset_parameters", lambda self: None)
                     for cls in (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d)]
    for patch in uninitialised:
        patch.start()
    try:
        assert _nb101_mismatches(nb101_specs) == []
    finally:
        for patch in uninitialised:
            patch.stop()


def test_parameter_count_skips_placeholders_and_frozen_parameters() -> None:
    model = build_network("nasbench101", get_space("nasbench101").sample(0), preset="small", in_channels=1)
    everything = sum(p.numel() for p in model.parameters())
    assert parameter_count(model) == nasbench101_parameter_count(model) < everything
    model.classifier.requires_grad_(False)
    assert parameter_count(model) == nasbench101_parameter_count(model) - model.classifier.weight.numel() - 10


# ---------------------------------------------------------------------------------- forward and backward
def _arch(space: str, seed: int = 0) -> Architecture:
    if space == "enas-macro":
        return get_space(space, num_layers=12 if seed else 6).sample(seed)
    if space == "randwire":
        return get_space(space, num_nodes=8).sample(seed)
    return get_space(space).sample(seed)


@pytest.mark.parametrize(
    ("space", "preset", "shape"),
    [
        ("nasbench101", "full", (2, 3, 32, 32)),
        ("nasbench101", "small", (2, 1, 8, 8)),
        ("nasbench201", "default", (2, 3, 32, 32)),
        ("nasbench201", "default", (2, 1, 8, 8)),
        ("enas-macro", "search", (2, 3, 32, 32)),
        ("enas-macro", "small", (2, 1, 8, 8)),
        ("randwire", "base", (2, 3, 64, 64)),
        ("randwire", "cifar", (2, 3, 32, 32)),
        ("randwire", "small", (2, 1, 8, 8)),
    ],
)
def test_forward_shapes(space: str, preset: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = build_network(space, _arch(space, seed=1), num_classes=7, in_channels=shape[1], preset=preset)
    with torch.no_grad():
        out = model(torch.randn(*shape))
    assert out.shape == (shape[0], 7) and torch.isfinite(out).all()


def test_every_space_has_a_default_equal_to_its_named_full_size_preset() -> None:
    assert set(PRESETS) == {"nasbench101", "nasbench201", "enas-macro", "randwire"}
    assert network_options("nasbench101") == network_options("nasbench101", "full")
    assert network_options("enas-macro") == network_options("enas-macro", "search") == {"channels": 36, "dropout": 0.1}
    assert network_options("randwire") == network_options("randwire", "base")
    assert network_options("nasbench201") == {"channels": 16, "cells_per_stage": 5}
    assert network_options("randwire", "cifar")["stem_strides"] == (1, 1)


def _unused_parameters(model: torch.nn.Module) -> list[str]:
    placeholders = {id(p) for m in model.modules() if isinstance(m, Placeholder) for p in m.parameters()}
    return [name for name, p in model.named_parameters()
            if p.numel() and id(p) not in placeholders and (p.grad is None or not torch.isfinite(p.grad).all())]


@pytest.mark.parametrize(
    ("space", "arch", "options"),
    [
        ("nasbench101", get_space("nasbench101").sample(0), {"preset": "small"}),
        ("nasbench201", get_space("nasbench201").from_native(ALL_CONV_CELL), {"channels": 4, "cells_per_stage": 2}),
        ("enas-macro", get_space("enas-macro", num_layers=6).from_native(ENAS_DENSE), {"preset": "small"}),
        # a uniform sample: node 0 feeds inner nodes that have other inputs, and the output (projection)
        ("randwire", get_space("randwire", num_nodes=8).sample(0), {"preset": "small"}),
    ],
)
def test_backward_reaches_every_parameter(space: str, arch: Architecture, options: dict) -> None:
    torch.manual_seed(0)
    model = build_network(space, arch, in_channels=1, **options)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert _unused_parameters(model) == []


# ---------------------------------------------------------------------------------- NAS-Bench-201
def test_nasbench201_cells_follow_the_arch_string() -> None:
    arch_str = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_3x3~1|skip_connect~2|"
    model = build_network("nasbench201", get_space("nasbench201").from_native(arch_str).to_dict())
    cells = [m for m in model.cells if type(m).__name__ == "NasBench201Cell"]
    assert len(cells) == 15
    kinds = [type(op).__name__ for op in cells[0].edges]
    assert kinds == ["AvgPool2d", "Sequential", "Identity", "_Zero", "Sequential", "Identity"]
    assert cells[0].edges[1][1].kernel_size == (1, 1) and cells[0].edges[4][1].kernel_size == (3, 3)
    assert [cell.edges[4][1].in_channels for cell in cells[::5]] == [16, 32, 64]


# ---------------------------------------------------------------------------------- ENAS macro
def test_enas_ops_and_reduction_blocks() -> None:
    x = torch.randn(2, 4, 7, 7)
    for i, name in enumerate(ENAS_OPS):
        op = enas_op(i, 4)
        assert op(x).shape == x.shape
        assert str(op) == str(enas_op(name, 4))
    # 1x1 conv + BN, then 3x3 conv + BN / depthwise 3x3 + pointwise 1x1 + BN / pooling
    assert [parameter_count(enas_op(i, 4)) for i in range(6)] == [176, 84, 432, 148, 24, 24]
    assert EnasReduction(4)(x).shape == (2, 4, 4, 4)
    assert EnasReduction(4)(torch.randn(2, 4, 8, 8)).shape == (2, 4, 4, 4)
    assert enas_reduction_layers(6) == (1, 3) and enas_reduction_layers(12) == (3, 7)
    assert enas_reduction_layers(3) == (0, 1) and enas_reduction_layers(2) == ()
    with pytest.raises(ValueError, match="enas-macro: a factorized reduction needs an even channel count, got 5"):
        EnasReduction(5)
    with pytest.raises(ValueError, match="enas-macro: unknown op 6; ops: 0..5 or conv3x3"):
        enas_op(6, 4)


def test_enas_layer_sums_the_selected_outputs() -> None:
    layer = EnasLayer("avg_pool3x3", [1, 0, 1], channels=4).eval()  # eval: BN divides by sqrt(1 + eps)
    outputs = [torch.randn(2, 4, 5, 5) for _ in range(4)]
    expected = (layer.op(outputs[3]) + outputs[0] + outputs[2]) / np.sqrt(1 + layer.norm.eps)
    assert layer.skips == (0, 2)
    assert torch.allclose(layer(outputs), expected, atol=1e-6)


def test_enas_skip_bits_wire_the_network() -> None:
    space = get_space("enas-macro", num_layers=6)
    layers = [[0], [1, 0], [2, 1, 0], [3, 0, 1, 1], [4, 1, 0, 0, 1], [5, 0, 0, 1, 0, 1]]
    arch = space.from_native(layers)
    model = build_network(space, arch, preset="small")
    assert isinstance(model, EnasMacroNetwork)
    for k, layer in enumerate(model.layers):
        assert layer.skips == tuple(j for j in range(k) if arch.matrix[j, k + 1])  # bit j: DAG edge j -> k+1
    assert [len(model.reductions[k]) for k in ("1", "3")] == [3, 5]
    # one skip bit flipped, same weights (skips hold none): the output changes
    flipped = [list(layer) for layer in layers]
    flipped[4][2] = 1
    other = build_network(space, space.from_native(flipped), preset="small")
    other.load_state_dict(model.state_dict())
    assert other.layers[4].skips == (0, 1, 3) and model.layers[4].skips == (0, 3)
    x = torch.randn(2, 3, 16, 16)
    model.eval(), other.eval()
    with torch.no_grad():
        assert not torch.allclose(model(x), other(x))
        same = build_network(space, arch, preset="small").eval()
        same.load_state_dict(model.state_dict())
        assert torch.equal(same(x), model(x))


def test_enas_network_takes_the_layer_list_directly() -> None:
    model = EnasMacroNetwork(ENAS_DENSE, num_classes=3, in_channels=1, channels=8)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    with pytest.raises(InvalidArchitecture, match=r"layer 2 must be \[op, 2 skip bits of 0/1\]"):
        EnasMacroNetwork([[0], [1, 0], [2, 0]])


# ---------------------------------------------------------------------------------- RandWire
def test_randwire_stage_wiring() -> None:
    space = get_space("randwire", num_nodes=8)
    generated = space.sample_prior("watts_strogatz", 0, k=4, p=0.75)  # input feeds the sources only
    stage = RandWireStage(generated, 16, 32)
    assert stage.projection is None
    for v, node in enumerate(stage.nodes, start=1):
        assert node.edge_weights.numel() == len(generated.predecessors(v))
        entry = generated.predecessors(v) == [0]
        assert node.conv[1].stride == ((2, 2) if entry else (1, 1))
        assert node.conv[1].in_channels == (16 if entry else 32) and node.conv[2].out_channels == 32
    assert stage(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    uniform = space.sample(0)  # node 0 feeds the output and nodes with other inputs: they read a projection
    assert RandWireStage(uniform, 16, 32).projection is not None


# ---------------------------------------------------------------------------------- options and errors
def test_options_resolve_and_rebuild_the_same_network() -> None:
    options = network_options("enas-macro", "small", dropout=0.0)
    assert options == {"channels": 16, "dropout": 0.0}
    options["channels"] = 99
    assert PRESETS["enas-macro"]["small"]["channels"] == 16  # a copy
    arch = _arch("enas-macro")
    torch.manual_seed(0)
    first = build_network("enas-macro", arch, preset="small", dropout=0.0)
    torch.manual_seed(0)
    again = build_network(get_space("enas-macro", num_layers=6), arch, **network_options("enas-macro", "small", dropout=0.0))
    assert first.state_dict().keys() == again.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    narrow = build_network("nasbench201", _arch("nasbench201"), channels=8, cells_per_stage=1)
    assert narrow.classifier.in_features == 32 and len(narrow.cells) == 5


def test_unknown_preset_option_or_space_is_named() -> None:
    arch = _arch("nasbench201")
    with pytest.raises(ValueError, match="nasbench101: unknown network preset 'huge'; presets: default, full, small"):
        network_options("nasbench101", "huge")
    with pytest.raises(ValueError, match="unknown network option.s. width; options: channels, cells_per_stage"):
        build_network("nasbench201", arch, width=8)
    with pytest.raises(ValueError, match="randwire: unknown network preset 'tiny'; presets: default, base, cifar, small"):
        build_network("randwire", _arch("randwire"), preset="tiny")
    with pytest.raises(ValueError, match="no network for space 'darts'; networks exist for: nasbench101, "):
        build_network("darts", arch)
    with pytest.raises(ValueError, match="nasbench201: channels must be an int >= 1, got 0"):
        build_network("nasbench201", arch, channels=0)
    with pytest.raises(ValueError, match="randwire: channels must be a sequence of 5 ints"):
        build_network("randwire", _arch("randwire"), channels=(8, 16))
    with pytest.raises(ValueError, match="nasbench201: num_classes must be an int >= 1, got 0"):
        build_network("nasbench201", arch, num_classes=0)


def test_invalid_architectures_are_refused() -> None:
    small = Architecture(["input", "conv3x3-bn-relu", "output"], [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    with pytest.raises(InvalidArchitecture, match="nasbench201: a cell has 8 nodes in node-labelled form, got 3"):
        build_network("nasbench201", small)
    cut = Architecture(["input", "conv3x3-bn-relu", "output"], [[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    with pytest.raises(InvalidArchitecture, match="nasbench101: the input does not reach the output"):
        build_network("nasbench101", cut)
    with pytest.raises(InvalidArchitecture, match="enas-macro: 12 layers make 14 nodes, got 8"):
        build_network(get_space("enas-macro", num_layers=12), _arch("enas-macro"))
    with pytest.raises(InvalidArchitecture, match="expected an Architecture or its dict form, got str"):
        build_network("randwire", "input -> output")
    with pytest.raises(InvalidArchitecture, match="architecture JSON lacks the key"):
        build_network("nasbench201", {"ops": ["input", "output"]})

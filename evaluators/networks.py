"""PyTorch networks of architectures, one family per built-in search space.

``build_network(space, arch)`` is the network an architecture stands for: NAS-Bench-101's CIFAR
network (nasbench-pytorch), NAS-Bench-201's cell network, the ENAS macro network and a RandWire
network. ``PRESETS`` holds named option sets per space and ``network_options`` resolves them, so a
caller can store the resolved options and rebuild the same network later::

    options = network_options("nasbench201", preset="default", channels=8)
    model = build_network("nasbench201", arch, num_classes=100, **options)

A space of your own gets networks (and with them the ``train:<dataset>`` evaluators) with
``register_network(space_name, builder, presets)``: ``builder(space, arch, num_classes=...,
in_channels=..., **options)`` returns an ``nn.Module`` for images ``[B, in_channels, H, W]``,
``presets`` maps names to option dicts (one named "default"), ``dataset_presets`` the preset a dataset
gets where the default does not fit (``{"digits": "small"}`` for 8x8 images).

This module imports torch at the top: ``nas_ray.evaluators`` does not import it eagerly.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas_ray.errors import ConfigError, ConfigTypeError, InvalidArchitecture
from nas_ray.graph import Architecture
from nas_ray.spaces import SearchSpace, get_space
from nas_ray.spaces.enas import OPS as ENAS_OPS
from nas_ray.spaces.nasbench201 import CELL_EDGES as NB201_EDGES
from nas_ray.spaces.nasbench201 import OPS as NB201_OPS

__all__ = [
    "PRESETS",
    "register_network",
    "network_preset_for",
    "build_network",
    "network_options",
    "parameter_count",
    "NasBench201Network",
    "NasBench201Cell",
    "nasbench201_op",
    "EnasMacroNetwork",
    "EnasLayer",
    "EnasReduction",
    "enas_op",
    "enas_reduction_layers",
    "RandWireNetwork",
    "RandWireStage",
    "RandWireNode",
]

#: space name -> preset name -> network options; every space has a "default" preset.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "nasbench101": {
        # NB101's CIFAR network: stem 128 channels, 3 stacks of 3 modules (128/256/512 channels)
        "default": {"stem_channels": 128, "num_stacks": 3, "modules_per_stack": 3, "bn_momentum": 0.1},
        "full": {"stem_channels": 128, "num_stacks": 3, "modules_per_stack": 3, "bn_momentum": 0.1},
        # the digits evaluator's network: stem 16 channels, 3 stacks of 1 module
        "small": {"stem_channels": 16, "num_stacks": 3, "modules_per_stack": 1, "bn_momentum": 0.1},
    },
    "nasbench201": {
        # NB201's network: C = 16 channels, N = 5 cells per stage (16/32/64 channels)
        "default": {"channels": 16, "cells_per_stage": 5},
    },
    "enas-macro": {
        # ENAS's macro search: 36 channels in every layer
        "default": {"channels": 36, "dropout": 0.1},
        "search": {"channels": 36, "dropout": 0.1},
        "small": {"channels": 16, "dropout": 0.1},
    },
    "randwire": {
        # GraphPNAS Table 7 (224x224 inputs): conv1..conv5 channels, head channels, strides of conv1 and conv2
        "default": {"channels": (32, 64, 64, 128, 256), "head_channels": 1280, "stem_strides": (2, 2)},
        "base": {"channels": (32, 64, 64, 128, 256), "head_channels": 1280, "stem_strides": (2, 2)},
        # 32x32 inputs: conv1 and conv2 keep the resolution, the three stages reduce 32 -> 4
        "cifar": {"channels": (32, 64, 64, 128, 256), "head_channels": 1280, "stem_strides": (1, 1)},
        # tests and CPU runs
        "small": {"channels": (8, 16, 16, 32, 64), "head_channels": 256, "stem_strides": (1, 1)},
    },
}


#: space name -> (builder(space, arch, num_classes=, in_channels=, **options), the space an architecture
#: implies or None, dataset -> preset)
_NETWORKS: dict[str, tuple[Callable[..., nn.Module], Callable[[Architecture], SearchSpace] | None, dict[str, str]]] = {}


def register_network(
    space: str | SearchSpace,
    builder: Callable[..., nn.Module],
    presets: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    dataset_presets: Mapping[str, str] | None = None,
    space_for: Callable[[Architecture], SearchSpace] | None = None,
    overwrite: bool = False,
) -> None:
    """Give the space named ``space`` networks: ``builder(space, arch, num_classes=..., in_channels=...,
    **options)`` builds one; ``presets`` name option sets (default: one empty "default" preset; every
    preset needs the same keys, which are the options a user may set); ``dataset_presets`` maps a
    dataset to the preset it gets by default; ``space_for(arch)`` builds the space an architecture
    implies when only the space's name is given (default: ``get_space(name)``)."""
    name = space.name if isinstance(space, SearchSpace) else space
    if not isinstance(name, str) or not name:
        raise ConfigError(f"register_network: space must be a space name or a SearchSpace, got {space!r}")
    if not callable(builder):
        raise ConfigTypeError(f"register_network({name!r}): builder must be callable, got {builder!r}")
    if name in _NETWORKS and not overwrite:
        raise ConfigError(f"space {name!r} already has networks (pass overwrite=True to replace them)")
    presets = {k: dict(v) for k, v in (presets or {"default": {}}).items()}
    if "default" not in presets:
        raise ConfigError(f"register_network({name!r}): presets need one named 'default', got {', '.join(presets)}")
    for preset, values in presets.items():
        if set(values) != set(presets["default"]):
            raise ConfigError(f"register_network({name!r}): preset {preset!r} has options {sorted(values)}, "
                              f"the default has {sorted(presets['default'])}")
    for dataset, preset in (dataset_presets or {}).items():
        if preset not in presets:
            raise ConfigError(f"register_network({name!r}): dataset {dataset!r} names an unknown preset {preset!r}")
    PRESETS[name] = presets
    _NETWORKS[name] = (builder, space_for, dict(dataset_presets or {}))


def network_preset_for(space_name: str, dataset: str | None) -> str | None:
    """The preset ``dataset`` gets by default on ``space_name`` (None: the "default" preset)."""
    entry = _NETWORKS.get(space_name)
    return None if entry is None or dataset is None else entry[2].get(dataset)


# ---------------------------------------------------------------------------------- public entry points
def network_options(space_name: str, preset: str | None = None, **options: Any) -> dict[str, Any]:
    """The options of ``preset`` (None: "default") of ``space_name``, with ``options`` replacing single
    fields; ValueError naming the valid presets or options for an unknown one."""
    if space_name not in PRESETS:
        raise ConfigError(f"no network for space {space_name!r}; networks exist for: {', '.join(PRESETS)} "
                          "(register_network gives a space networks)")
    presets = PRESETS[space_name]
    name = "default" if preset is None else preset
    if name not in presets:
        raise ConfigError(f"{space_name}: unknown network preset {preset!r}; presets: {', '.join(presets)}")
    resolved = dict(presets[name])
    unknown = [k for k in options if k not in resolved]
    if unknown:
        raise ConfigError(
            f"{space_name}: unknown network option(s) {', '.join(unknown)}; options: {', '.join(resolved)}"
        )
    resolved.update(options)
    return resolved


def build_network(
    space: str | SearchSpace,
    arch: Architecture | Mapping[str, Any],
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    preset: str | None = None,
    **options: Any,
) -> nn.Module:
    """The network of ``arch`` in ``space`` (a space name or instance), freshly initialised from torch's
    global RNG, in training mode on the CPU.

    ``arch`` (an Architecture or its dict form) is validated and canonicalised by the space
    (``InvalidArchitecture`` otherwise); for a space name the space's own options (ENAS ``num_layers``,
    RandWire ``num_nodes``) follow from the architecture's size. ``preset`` and ``options`` are resolved
    by ``network_options``. Building inside ``with torch.device(...)`` puts the parameters there, except
    for nasbench101 (nasbench-pytorch's spec then breaks); on a CPU "meta" saves no build time.
    """
    if isinstance(space, SearchSpace):
        name = space.name
    elif isinstance(space, str):
        name = space
    else:
        raise ConfigTypeError(f"space must be a space name or a SearchSpace, got {type(space).__name__}")
    resolved = network_options(name, preset, **options)
    _check_int(name, "num_classes", num_classes)
    _check_int(name, "in_channels", in_channels)
    arch = _as_architecture(name, arch)
    builder, space_for, _ = _NETWORKS[name]
    if not isinstance(space, SearchSpace):
        space = space_for(arch) if space_for is not None else get_space(name)
    arch = space.canonicalize(arch)
    model = builder(space, arch, num_classes=num_classes, in_channels=in_channels, **resolved)
    if not isinstance(model, nn.Module):
        raise ConfigTypeError(f"the network builder of {name} returned {type(model).__name__}, not a torch nn.Module")
    return model


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters of ``model``, without nasbench-pytorch's unused ``Placeholder`` scalars:
    NB101's ``trainable_parameters`` for its networks, and NB201's parameter counts for its networks."""
    placeholder = getattr(sys.modules.get("nasbench_pytorch.model.model"), "Placeholder", None)
    skip: set[int] = set()
    if placeholder is not None:  # only a model of nasbench-pytorch, which imported that module, holds them
        skip = {id(p) for m in model.modules() if isinstance(m, placeholder) for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in skip)


# ---------------------------------------------------------------------------------- helpers
def _check_int(space: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{space}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_ints(space: str, name: str, value: Any, length: int, minimum: int = 1) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != length:
        raise ConfigError(f"{space}: {name} must be a sequence of {length} ints >= {minimum}, got {value!r}")
    return tuple(_check_int(space, name, v, minimum) for v in value)


def _as_architecture(space: str, arch: Any) -> Architecture:
    if isinstance(arch, Mapping):
        return Architecture.from_dict(arch)
    if not isinstance(arch, Architecture):
        raise InvalidArchitecture(f"{space}: expected an Architecture or its dict form, got {type(arch).__name__}")
    return arch


def _sized_space(name: str, option: str) -> Callable[[Architecture], SearchSpace]:
    """``space_for`` of a space whose size option (``option``) follows from an architecture's inner nodes."""

    def space_for(arch: Architecture) -> SearchSpace:
        inner = arch.num_nodes - 2
        if inner < 1:
            raise InvalidArchitecture(f"{name}: an architecture needs an input, an inner node and an output, "
                                      f"got {arch.num_nodes} nodes")
        return get_space(name, **{option: inner})

    return space_for


def _separable_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> list[nn.Module]:
    """A depthwise ``kernel_size`` conv followed by a pointwise 1x1 conv, both without bias."""
    return [
        nn.Conv2d(in_channels, in_channels, kernel_size, stride, kernel_size // 2, groups=in_channels, bias=False),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
    ]


# ---------------------------------------------------------------------------------- NAS-Bench-101
def _build_nasbench101(space: SearchSpace, arch: Architecture, num_classes: int, in_channels: int,
                       options: dict[str, Any]) -> nn.Module:
    from nas_ray.evaluators.training import nasbench101_network

    momentum = options["bn_momentum"]
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
        raise ConfigError(f"nasbench101: bn_momentum must be a number in [0, 1], got {momentum!r}")
    return nasbench101_network(
        arch, num_labels=num_classes, in_channels=in_channels,
        stem_channels=_check_int(space.name, "stem_channels", options["stem_channels"]),
        num_stacks=_check_int(space.name, "num_stacks", options["num_stacks"]),
        modules_per_stack=_check_int(space.name, "modules_per_stack", options["modules_per_stack"]),
        bn_momentum=float(momentum),
    )


# ---------------------------------------------------------------------------------- NAS-Bench-201
class _Zero(nn.Module):
    """NB201's "none" op: the input times zero (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _relu_conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """ReLU - Conv (no bias, 'same' padding) - BatchNorm, NB201's ``ReLUConvBN``."""
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


def nasbench201_op(name: str, channels: int) -> nn.Module:
    """The NB201 edge op ``name`` on ``channels`` channels (stride 1)."""
    if name == "none":
        return _Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return _relu_conv_bn(channels, channels, 1)
    if name == "nor_conv_3x3":
        return _relu_conv_bn(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ConfigError(f"nasbench201: unknown edge op {name!r}; ops: {', '.join(NB201_OPS)}")


class NasBench201Cell(nn.Module):
    """An NB201 cell: node j is the sum of op_{i->j}(node i) over i < j; node 0 is the input, node 3
    the output. ``edge_ops`` are in arch-string order e(0->1), e(0->2), e(1->2), e(0->3), e(1->3), e(2->3);
    every edge keeps its op, also one that "none" edges disconnect (NB201 counts its parameters)."""

    def __init__(self, edge_ops: Sequence[str], channels: int) -> None:
        super().__init__()
        if len(edge_ops) != len(NB201_EDGES):
            raise ConfigError(f"nasbench201: a cell has {len(NB201_EDGES)} edge ops, got {len(edge_ops)}")
        self.edges = nn.ModuleList(nasbench201_op(op, channels) for op in edge_ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            nodes.append(sum(op(nodes[i]) for op, (i, k) in zip(self.edges, NB201_EDGES) if k == j))
        return nodes[3]


class NasBench201Reduction(nn.Module):
    """NB201's residual reduction between stages (a ResNet basic block of stride 2): ReLU-Conv3x3/2-BN,
    ReLU-Conv3x3-BN, plus a shortcut AvgPool2d(2, 2) - Conv1x1."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(in_channels, out_channels, 3, stride=2)
        self.conv_b = _relu_conv_bn(out_channels, out_channels, 3)
        # ceil_mode: equal to NB201's pooling on even sizes, and matches conv_a's output on odd ones
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, ceil_mode=True), nn.Conv2d(in_channels, out_channels, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class NasBench201Network(nn.Module):
    """NAS-Bench-201's network of one cell: a 3x3 conv-BN stem, three stages of ``cells_per_stage``
    cells with C, 2C and 4C channels joined by residual reductions, then BN-ReLU, global average
    pooling and a linear classifier. Its parameter count is the benchmark's for every cell."""

    def __init__(self, edge_ops: Sequence[str], *, num_classes: int = 10, in_channels: int = 3, channels: int = 16,
                 cells_per_stage: int = 5) -> None:
        super().__init__()
        for name, value in {"num_classes": num_classes, "in_channels": in_channels, "channels": channels,
                            "cells_per_stage": cells_per_stage}.items():
            _check_int("nasbench201", name, value)
        self.edge_ops = tuple(edge_ops)
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        layers: list[nn.Module] = []
        for stage in range(3):
            if stage:
                layers.append(NasBench201Reduction(c, 2 * c))
                c *= 2
            layers.extend(NasBench201Cell(self.edge_ops, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU())
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(x.mean(dim=(2, 3)))


def _build_nasbench201(space: SearchSpace, arch: Architecture, num_classes: int, in_channels: int,
                       options: dict[str, Any]) -> nn.Module:
    decisions = space.to_decisions(arch)
    edge_ops = [decisions[f"edge_{i}_{j}"] for i, j in NB201_EDGES]
    return NasBench201Network(edge_ops, num_classes=num_classes, in_channels=in_channels, **options)


# ---------------------------------------------------------------------------------- ENAS macro
def _enas_op_name(op: str | int) -> str:
    if isinstance(op, str) and op in ENAS_OPS:
        return op
    if not isinstance(op, bool) and isinstance(op, (int, np.integer)) and 0 <= op < len(ENAS_OPS):
        return ENAS_OPS[int(op)]
    raise ConfigError(f"enas-macro: unknown op {op!r}; ops: 0..{len(ENAS_OPS) - 1} or {', '.join(ENAS_OPS)}")


def enas_op(op: str | int, channels: int) -> nn.Module:
    """The ENAS macro layer op ``op`` (an index into, or a name of, ``nas_ray.spaces.enas.OPS``) on
    ``channels`` channels, stride 1: a 1x1 Conv-BN-ReLU, then a kxk conv (separable: depthwise kxk +
    pointwise 1x1) - BN - ReLU, or a 3x3 average / max pool."""
    name = _enas_op_name(op)
    c = _check_int("enas-macro", "channels", channels)
    layers: list[tuple[str, nn.Module]] = [
        ("inp_conv", nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())),
    ]
    if name.startswith("conv"):
        k = int(name[-1])
        layers.append(("conv", nn.Conv2d(c, c, k, padding=k // 2, bias=False)))
    elif name.startswith("sep_conv"):
        depthwise, pointwise = _separable_conv(c, c, int(name[-1]))
        layers += [("depthwise", depthwise), ("pointwise", pointwise)]
    elif name == "avg_pool3x3":
        layers.append(("pool", nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)))
    else:
        layers.append(("pool", nn.MaxPool2d(3, stride=1, padding=1)))
    if "conv" in name:
        layers += [("bn", nn.BatchNorm2d(c)), ("relu", nn.ReLU())]
    return nn.Sequential(OrderedDict(layers))


class EnasReduction(nn.Module):
    """ENAS's factorized reduction (stride 2, ``channels`` in and out): ReLU, then two 1x1 stride-2
    convs of ``channels / 2`` channels, on the input and on the input shifted by one pixel, concatenated
    and batch-normalised."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        c = _check_int("enas-macro", "channels", channels)
        if c % 2:
            raise ConfigError(f"enas-macro: a factorized reduction needs an even channel count, got {c}")
        self.conv_a = nn.Conv2d(c, c // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c, c // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        # shift by one pixel; padding the far edges keeps both paths at ceil(H / 2) x ceil(W / 2)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(shifted)], dim=1))


def enas_reduction_layers(num_layers: int) -> tuple[int, ...]:
    """The layers after which an ENAS macro network of ``num_layers`` layers halves the resolution:
    ``pool_distance - 1`` and ``2 * pool_distance - 1`` with ``pool_distance = num_layers // 3``
    (none below 3 layers)."""
    distance = _check_int("enas-macro", "num_layers", num_layers) // 3
    return tuple(k for k in (distance - 1, 2 * distance - 1) if 0 <= k < num_layers)


class EnasLayer(nn.Module):
    """Layer k of an ENAS macro network: ``op`` on the previous output, plus the outputs that the skip
    bits select (bit j: output j, 0 being the stem's), then BatchNorm without affine parameters."""

    def __init__(self, op: str | int, skip_bits: Sequence[int], channels: int) -> None:
        super().__init__()
        self.op = enas_op(op, channels)
        self.skips = tuple(j for j, bit in enumerate(skip_bits) if bit)
        self.norm = nn.BatchNorm2d(channels, affine=False)

    def forward(self, outputs: Sequence[torch.Tensor]) -> torch.Tensor:
        out = self.op(outputs[-1])
        for j in self.skips:
            out = out + outputs[j]
        return self.norm(out)

    def extra_repr(self) -> str:
        return f"skips={self.skips}"


class EnasMacroNetwork(nn.Module):
    """The ENAS macro network of a layer list ``[[t0], [t1, b0], [t2, b0, b1], ...]`` (op index t_k
    and skip bits of layer k): a 3x3 conv-BN stem, the layers at ``channels`` channels, a factorized
    reduction of every output so far after each layer of ``enas_reduction_layers``, and a head of
    ReLU, global average pooling, dropout and a linear classifier."""

    def __init__(self, layers: Sequence[Sequence[int]], *, num_classes: int = 10, in_channels: int = 3,
                 channels: int = 36, dropout: float = 0.1) -> None:
        super().__init__()
        _check_int("enas-macro", "num_classes", num_classes)
        _check_int("enas-macro", "in_channels", in_channels)
        _check_int("enas-macro", "channels", channels)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ConfigError(f"enas-macro: dropout must be a number in [0, 1), got {dropout!r}")
        layers = [list(layer) for layer in layers]
        if not layers:
            raise InvalidArchitecture("enas-macro: a network needs at least one layer")
        for k, layer in enumerate(layers):
            if len(layer) != k + 1 or any(bit not in (0, 1) for bit in layer[1:]):
                raise InvalidArchitecture(f"enas-macro: layer {k} must be [op, {k} skip bits of 0/1], got {layer!r}")
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.layers = nn.ModuleList(EnasLayer(layer[0], layer[1:], c) for layer in layers)
        self.reduce_after = enas_reduction_layers(len(layers))
        # after layer k the stem and layers 0..k are reduced: k + 2 outputs
        self.reductions = nn.ModuleDict(
            {str(k): nn.ModuleList(EnasReduction(c) for _ in range(k + 2)) for k in self.reduce_after}
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [self.stem(x)]
        for k, layer in enumerate(self.layers):
            outputs.append(layer(outputs))
            if k in self.reduce_after:
                outputs = [reduce(out) for reduce, out in zip(self.reductions[str(k)], outputs)]
        pooled = F.relu(outputs[-1]).mean(dim=(2, 3))
        return self.head(self.dropout(pooled))


def _build_enas(space: SearchSpace, arch: Architecture, num_classes: int, in_channels: int,
                options: dict[str, Any]) -> nn.Module:
    return EnasMacroNetwork(space.to_native(arch), num_classes=num_classes, in_channels=in_channels, **options)


# ---------------------------------------------------------------------------------- RandWire
class RandWireNode(nn.Module):
    """A RandWire node: the sum of its inputs weighted by sigmoid(w) (one learnable w per in-edge),
    then ReLU - separable 3x3 conv (depthwise + pointwise) - BN."""

    def __init__(self, num_inputs: int, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.edge_weights = nn.Parameter(torch.zeros(_check_int("randwire", "num_inputs", num_inputs)))
        self.conv = nn.Sequential(
            nn.ReLU(), *_separable_conv(in_channels, out_channels, 3, stride), nn.BatchNorm2d(out_channels)
        )

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        weights = torch.sigmoid(self.edge_weights)
        x = inputs[0] * weights[0]
        for i in range(1, len(inputs)):
            x = x + inputs[i] * weights[i]
        return self.conv(x)


class RandWireStage(nn.Module):
    """One RandWire stage of the graph ``arch`` (node 0 the stage's input, the last node its output,
    nodes in topological order), from ``in_channels`` to ``out_channels`` channels at half the resolution.

    A node whose only input is the stage's input is an entry node: its conv has stride 2 and changes
    the channel count. The other nodes run at the output shape; where such a node, or the output,
    also reads the stage's input, it reads it through one shared projection (ReLU - Conv1x1/2 - BN),
    built only for graphs that have such edges (RandWire's generators never do). The output is the
    mean of its in-nodes."""

    def __init__(self, arch: Architecture, in_channels: int, out_channels: int, stride: int = 2) -> None:
        super().__init__()
        n = arch.num_nodes
        self.inputs = tuple(tuple(arch.predecessors(v)) for v in range(n))
        missing = [v for v in range(1, n) if not self.inputs[v]]
        if missing:
            raise InvalidArchitecture(f"randwire: node {missing[0]} has no in-edge")
        nodes = []
        for v in range(1, n - 1):
            if self.inputs[v] == (0,):
                nodes.append(RandWireNode(1, in_channels, out_channels, stride))
            else:
                nodes.append(RandWireNode(len(self.inputs[v]), out_channels, out_channels))
        self.nodes = nn.ModuleList(nodes)
        projected = any(0 in self.inputs[v] and self.inputs[v] != (0,) for v in range(1, n - 1)) or 0 in self.inputs[-1]
        self.projection = nn.Sequential(
            nn.ReLU(), nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
        ) if projected else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # values[0] is what a non-entry node or the output reads from the input: its projection
        values: list[torch.Tensor] = [x if self.projection is None else self.projection(x)]
        for v, node in enumerate(self.nodes, start=1):
            preds = self.inputs[v]
            values.append(node([x]) if preds == (0,) else node([values[u] for u in preds]))
        outs = [values[u] for u in self.inputs[-1]]
        return outs[0] if len(outs) == 1 else torch.stack(outs).mean(dim=0)


class RandWireNetwork(nn.Module):
    """A RandWire network (GraphPNAS Table 7, one graph for all three stages): conv1 = Conv3x3-BN,
    conv2 = ReLU-SepConv3x3-BN, conv3..conv5 = ``RandWireStage`` s of ``arch``, then ReLU-Conv1x1-BN-ReLU
    to ``head_channels``, global average pooling and a linear classifier. ``channels`` are the
    channels of conv1..conv5, ``stem_strides`` the strides of conv1 and conv2."""

    def __init__(self, arch: Architecture, *, num_classes: int = 10, in_channels: int = 3,
                 channels: Sequence[int] = (32, 64, 64, 128, 256), head_channels: int = 1280,
                 stem_strides: Sequence[int] = (2, 2)) -> None:
        super().__init__()
        _check_int("randwire", "num_classes", num_classes)
        _check_int("randwire", "in_channels", in_channels)
        _check_int("randwire", "head_channels", head_channels)
        c1, c2, c3, c4, c5 = _check_ints("randwire", "channels", channels, 5)
        s1, s2 = _check_ints("randwire", "stem_strides", stem_strides, 2)
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, c1, 3, s1, 1, bias=False), nn.BatchNorm2d(c1))
        self.conv2 = nn.Sequential(nn.ReLU(), *_separable_conv(c1, c2, 3, s2), nn.BatchNorm2d(c2))
        self.conv3 = RandWireStage(arch, c2, c3)
        self.conv4 = RandWireStage(arch, c3, c4)
        self.conv5 = RandWireStage(arch, c4, c5)
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(c5, head_channels, 1, bias=False), nn.BatchNorm2d(head_channels), nn.ReLU()
        )
        self.classifier = nn.Linear(head_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))
        return self.classifier(self.head(x).mean(dim=(2, 3)))


def _build_randwire(space: SearchSpace, arch: Architecture, num_classes: int, in_channels: int,
                    options: dict[str, Any]) -> nn.Module:
    return RandWireNetwork(arch, num_classes=num_classes, in_channels=in_channels, **options)


def _keywords(build: Callable[[SearchSpace, Architecture, int, int, dict[str, Any]], nn.Module]) -> Callable[..., nn.Module]:
    def builder(space: SearchSpace, arch: Architecture, *, num_classes: int, in_channels: int, **options: Any) -> nn.Module:
        return build(space, arch, num_classes, in_channels, options)

    return builder


# the built-in spaces' networks, registered as a user's would be (8x8 digits get small networks)
register_network("nasbench101", _keywords(_build_nasbench101), PRESETS["nasbench101"], dataset_presets={"digits": "small"},
                 overwrite=True)
register_network("nasbench201", _keywords(_build_nasbench201), PRESETS["nasbench201"], overwrite=True)
register_network("enas-macro", _keywords(_build_enas), PRESETS["enas-macro"], dataset_presets={"digits": "small"},
                 space_for=_sized_space("enas-macro", "num_layers"), overwrite=True)
register_network("randwire", _keywords(_build_randwire), PRESETS["randwire"],
                 dataset_presets={"digits": "small", "cifar10": "cifar", "cifar100": "cifar"},
                 space_for=_sized_space("randwire", "num_nodes"), overwrite=True)

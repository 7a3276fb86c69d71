from __future__ import annotations

import numpy as np
import pytest

import nas_ray
from nas_ray import Architecture, InvalidArchitecture, UnknownName, get_space, register_space
from nas_ray.spaces import NodeMasks, SearchSpace, available_spaces


def test_builtin_spaces_are_registered() -> None:
    assert {"nasbench101", "nasbench201", "enas-macro", "randwire"} <= set(available_spaces())
    assert get_space("enas-macro").num_layers == 6
    assert get_space("enas-macro", num_layers=12).max_nodes == 14
    assert get_space("randwire", num_nodes=8).max_nodes == 10
    assert repr(get_space("randwire", num_nodes=8)) == "RandWire(num_nodes=8)"


def test_unknown_space_and_options() -> None:
    with pytest.raises(UnknownName, match=r"unknown search space 'nasbench301'; available: .*nasbench101"):
        get_space("nasbench301")
    with pytest.raises(ValueError, match=r"search space 'nasbench201' has no option 'num_layers'; its options: none"):
        get_space("nasbench201", num_layers=3)
    with pytest.raises(ValueError, match=r"search space 'enas-macro' has no option 'layers'; its options: num_layers"):
        get_space("enas-macro", layers=3)


class Chains(SearchSpace):
    """A user's space: chains of 1-3 'dense' nodes."""

    name = "chains"
    ops = ("dense",)

    def validate(self, arch: Architecture) -> None:
        self._check_ops(arch)
        if arch.num_edges != arch.num_nodes - 1 or not (3 <= arch.num_nodes <= 5):
            raise InvalidArchitecture("chains: not a chain of 1-3 nodes")

    def hash(self, arch: Architecture) -> str:
        self.validate(arch)
        return str(arch.num_nodes)

    def sample(self, rng=None) -> Architecture:  # noqa: ANN001
        n = int(nas_ray.spaces.as_rng(rng).integers(3, 6))
        return Architecture(["input", *["dense"] * (n - 2), "output"], np.eye(n, k=1, dtype=int))

    def mutate(self, arch: Architecture, rng=None) -> Architecture:  # noqa: ANN001
        n = 3 + (arch.num_nodes - 2) % 3
        return Architecture(["input", *["dense"] * (n - 2), "output"], np.eye(n, k=1, dtype=int))

    def next_node_masks(self, ops, matrix, op=None) -> NodeMasks:  # noqa: ANN001
        n = len(ops)
        required = np.zeros(n, bool)
        if n:
            required[-1] = True
        return NodeMasks(self._op_mask("input") if n == 0 else self._op_mask("dense", "output"), required, required, int(n > 0), int(n > 0))


def test_user_space_registers_without_touching_the_package() -> None:
    register_space("chains", Chains, overwrite=True)
    space = get_space("chains")
    arch = space.sample(0)
    assert space.is_valid(arch) and space.hash(space.mutate(arch)) != space.hash(arch)
    assert "chains" in available_spaces()
    with pytest.raises(ValueError, match=r"already registered"):
        register_space("chains", Chains)
    with pytest.raises(TypeError, match=r"needs a SearchSpace subclass"):
        register_space("bad", dict)
    # native form defaults to the JSON dict
    assert space.from_native(space.to_native(arch)) == arch

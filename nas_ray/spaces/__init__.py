"""Search spaces, found by name through one registry.

>>> from nas_ray.spaces import get_space
>>> space = get_space("enas-macro", num_layers=12)
>>> space.max_nodes
14

A user's own space is a ``SearchSpace`` subclass registered from user code::

    register_space("my-space", MySpace)          # or "my_package.module:MySpace"
"""

from __future__ import annotations

from typing import Any

from nas_ray.registry import Registry
from nas_ray.spaces.base import NodeMasks, SearchSpace, StepMasks, as_rng, wl_hash
from nas_ray.spaces.table import TableDefinedSpace

__all__ = [
    "SearchSpace",
    "TableDefinedSpace",
    "NodeMasks",
    "StepMasks",
    "get_space",
    "register_space",
    "available_spaces",
    "as_rng",
    "wl_hash",
]

SPACES: Registry[SearchSpace] = Registry(
    "search space",
    SearchSpace,
    {
        "nasbench101": "nas_ray.spaces.nasbench101:NasBench101",
        "nasbench201": "nas_ray.spaces.nasbench201:NasBench201",
        "enas-macro": "nas_ray.spaces.enas:EnasMacro",
        "randwire": "nas_ray.spaces.randwire:RandWire",
        # table-defined: the architectures a benchmark table scores
        "enas6": "nas_ray.spaces.enas:Enas6",
        "nasbench101-subset": "nas_ray.spaces.nasbench101:NasBench101Subset",
    },
)


def register_space(name: str, space: type[SearchSpace] | str, *, overwrite: bool = False) -> None:
    """Register a ``SearchSpace`` subclass (or a ``"module:Class"`` path) under ``name``."""
    SPACES.register(name, space, overwrite=overwrite)


def available_spaces() -> list[str]:
    return SPACES.names()


def get_space(name: str, **options: Any) -> SearchSpace:
    """The space registered as ``name``, built with ``options`` (e.g. ``num_layers=12``)."""
    return SPACES.create(name, **options)

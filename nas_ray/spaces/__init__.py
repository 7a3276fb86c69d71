"""Search spaces, found by name through one registry.

>>> from nas_ray.spaces import get_space
>>> space = get_space("enas-macro", num_layers=12)
>>> space.max_nodes
14

A user's own space is a ``SearchSpace`` subclass registered from user code::

    register_space("my-space", MySpace)          # or "my_package.module:MySpace"
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from nas_ray.errors import UnknownName
from nas_ray.spaces.base import NodeMasks, SearchSpace, as_rng, wl_hash

__all__ = ["SearchSpace", "NodeMasks", "get_space", "register_space", "available_spaces", "as_rng", "wl_hash"]

# name -> class, or "module:Class" imported on first use (keeps `import nas_ray` light)
_REGISTRY: dict[str, type[SearchSpace] | str] = {
    "nasbench101": "nas_ray.spaces.nasbench101:NasBench101",
    "nasbench201": "nas_ray.spaces.nasbench201:NasBench201",
    "enas-macro": "nas_ray.spaces.enas:EnasMacro",
    "randwire": "nas_ray.spaces.randwire:RandWire",
}


def register_space(name: str, space: type[SearchSpace] | str, *, overwrite: bool = False) -> None:
    """Register a ``SearchSpace`` subclass (or a ``"module:Class"`` path) under ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a space name must be a non-empty string, got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"a space named {name!r} is already registered (pass overwrite=True to replace it)")
    if not isinstance(space, str) and not (inspect.isclass(space) and issubclass(space, SearchSpace)):
        raise TypeError(f"register_space({name!r}, ...) needs a SearchSpace subclass or 'module:Class', got {space!r}")
    _REGISTRY[name] = space


def available_spaces() -> list[str]:
    return sorted(_REGISTRY)


def _resolve(name: str) -> type[SearchSpace]:
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
        _REGISTRY[name] = entry
    return entry


def get_space(name: str, **options: Any) -> SearchSpace:
    """The space registered as ``name``, built with ``options`` (e.g. ``num_layers=12``)."""
    if name not in _REGISTRY:
        raise UnknownName(f"unknown search space {name!r}; available: {', '.join(available_spaces())}")
    cls = _resolve(name)
    signature = inspect.signature(cls)
    try:
        signature.bind(**options)
    except TypeError:
        takes = [p.name for p in signature.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = [k for k in options if k not in takes]
        raise ValueError(
            f"space {name!r} has no option {unknown[0]!r}; its options: {', '.join(takes) or 'none'}"
            if unknown
            else f"space {name!r}: bad options {options!r}"
        ) from None
    return cls(**options)

"""Ray Tune searchers over architectures (``nas_ray.searchers``), found by name.

>>> from nas_ray.searchers import get_searcher, available_searchers
>>> searcher = get_searcher("evolution", "nasbench201", seed=0, population_size=10)

A user's searcher subclasses ``ArchitectureSearcher`` and is registered from user code::

    register_searcher("my-searcher", MySearcher)     # or "my_package.module:MySearcher"

Importing this package imports Ray Tune's search module (about a second); the registry itself is
available without it as ``nas_ray.searchers.SEARCHERS.names()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas_ray.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from nas_ray.searchers.base import ArchitectureSearcher
    from nas_ray.spaces import SearchSpace

__all__ = [
    "ArchitectureSearcher",
    "RandomSearch",
    "RegularizedEvolution",
    "TPESearch",
    "GraphPNASSearcher",
    "REINFORCE",
    "REINFORCEConfig",
    "LatentBOSearcher",
    "NASGEMSearcher",
    "TuneRandomReference",
    "TuneOptunaReference",
    "get_searcher",
    "register_searcher",
    "available_searchers",
    "SEARCHERS",
]

_BUILTINS = {
    "random": "nas_ray.searchers.random_search:RandomSearch",
    "evolution": "nas_ray.searchers.evolution:RegularizedEvolution",
    "tpe": "nas_ray.searchers.tpe:TPESearch",
    "graphpnas": "nas_ray.searchers.graphpnas:GraphPNASSearcher",
    "latent-bo": "nas_ray.searchers.latent_bo:LatentBOSearcher",
    "nasgem": "nas_ray.searchers.nasgem:NASGEMSearcher",
    # reference rows: Ray Tune's own algorithms over the space's decisions, as a Tune user would run them
    "tune-random": "nas_ray.searchers.tune_reference:TuneRandomReference",
    "tune-optuna": "nas_ray.searchers.tune_reference:TuneOptunaReference",
}
_LAZY = {
    "ArchitectureSearcher": "nas_ray.searchers.base",
    "RandomSearch": "nas_ray.searchers.random_search",
    "RegularizedEvolution": "nas_ray.searchers.evolution",
    "TPESearch": "nas_ray.searchers.tpe",
    "GraphPNASSearcher": "nas_ray.searchers.graphpnas",
    "REINFORCE": "nas_ray.searchers.reinforce",
    "REINFORCEConfig": "nas_ray.searchers.reinforce",
    "LatentBOSearcher": "nas_ray.searchers.latent_bo",
    "NASGEMSearcher": "nas_ray.searchers.nasgem",
    "TuneRandomReference": "nas_ray.searchers.tune_reference",
    "TuneOptunaReference": "nas_ray.searchers.tune_reference",
}


class _SearcherRegistry(Registry):
    """Checks the base class lazily: it lives in a module that imports Ray."""

    def register(self, name: str, cls: Any, *, overwrite: bool = False) -> None:
        if self.base is object:
            from nas_ray.searchers.base import ArchitectureSearcher

            self.base = ArchitectureSearcher
        super().register(name, cls, overwrite=overwrite)


SEARCHERS = _SearcherRegistry("searcher", object, _BUILTINS)


def register_searcher(name: str, searcher: type[ArchitectureSearcher] | str, *, overwrite: bool = False) -> None:
    """Register an ``ArchitectureSearcher`` subclass (or a ``"module:Class"`` path) under ``name``."""
    SEARCHERS.register(name, searcher, overwrite=overwrite)


def available_searchers() -> list[str]:
    return SEARCHERS.names()


def get_searcher(name: str, space: SearchSpace | str, **options: Any) -> ArchitectureSearcher:
    """The searcher registered as ``name`` over ``space``, with ``options`` (seed, metric, mode, ...)."""
    return SEARCHERS.create(name, space, **options)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nas_ray.searchers' has no attribute {name!r}")

"""nas-ray: graph-based neural architecture search on Ray Tune and RLlib.

>>> import nas_ray
>>> space = nas_ray.get_space("nasbench201")
>>> arch = space.sample(0)
>>> nas_ray.Architecture.from_json(arch.to_json()) == arch
True
"""

from nas_ray.errors import (
    ArchitectureNotInTable,
    ConfigError,
    DataFileError,
    InvalidArchitecture,
    NasRayError,
    UnknownName,
)
from nas_ray.graph import Architecture
from nas_ray.spaces import SearchSpace, TableDefinedSpace, available_spaces, get_space, register_space

__version__ = "0.1.0"


def __getattr__(name: str):  # noqa: ANN202 - the evaluator registry loads on first use (it imports numpy and the tables)
    if name in ("register_evaluator", "get_evaluator"):
        from nas_ray.evaluators import specs

        return getattr(specs, name)
    raise AttributeError(f"module 'nas_ray' has no attribute {name!r}")


__all__ = [
    "Architecture",
    "SearchSpace",
    "TableDefinedSpace",
    "get_space",
    "register_space",
    "available_spaces",
    "register_evaluator",
    "get_evaluator",
    "InvalidArchitecture",
    "ArchitectureNotInTable",
    "DataFileError",
    "UnknownName",
    "ConfigError",
    "NasRayError",
    "__version__",
]

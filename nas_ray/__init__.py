"""nas-ray: graph-based neural architecture search on Ray Tune and RLlib.

>>> import nas_ray
>>> space = nas_ray.get_space("nasbench201")
>>> arch = space.sample(0)
>>> nas_ray.Architecture.from_json(arch.to_json()) == arch
True
"""

from nas_ray.errors import (
    ArchitectureNotInTable,
    DataFileError,
    InvalidArchitecture,
    NasRayError,
    UnknownName,
)
from nas_ray.graph import Architecture
from nas_ray.spaces import SearchSpace, available_spaces, get_space, register_space

__version__ = "0.1.0"

__all__ = [
    "Architecture",
    "SearchSpace",
    "get_space",
    "register_space",
    "available_spaces",
    "InvalidArchitecture",
    "ArchitectureNotInTable",
    "DataFileError",
    "UnknownName",
    "NasRayError",
    "__version__",
]

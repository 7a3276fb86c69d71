"""Random search: uniform draws from the space (``space.sample``), never repeating an architecture."""

from __future__ import annotations

from nas_ray.graph import Architecture
from nas_ray.searchers.base import ArchitectureSearcher


class RandomSearch(ArchitectureSearcher):
    """Uniform random search over the space (see each space's ``sample`` for what uniform means there).

    >>> from nas_ray.searchers import RandomSearch
    >>> RandomSearch("nasbench201", seed=1).suggest("t0")["arch"]["ops"][0]
    'input'
    """

    name = "random"

    def _propose(self) -> Architecture:
        return self.space.sample(self.rng)

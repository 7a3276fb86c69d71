"""Regularized evolution (Real et al. 2019, "Regularized Evolution for Image Classifier Architecture
Search", Algorithm 1): tournament selection and aging."""

from __future__ import annotations

from collections import deque
from typing import Any

from nas_ray.graph import Architecture
from nas_ray.searchers.base import ArchitectureSearcher
from nas_ray.spaces import SearchSpace
from nas_ray.errors import ConfigError


class RegularizedEvolution(ArchitectureSearcher):
    """Regularized (aging) evolution.

    The first ``population_size`` proposals are uniform samples. After that each proposal samples
    ``sample_size`` members of the population uniformly (the tournament), mutates the best of them
    with the space's ``mutate``, and each completed child joins the population while its oldest
    member dies. Failed children never join. Running trials do not count as population members, so
    with many trials in flight the search acts on the evaluations that have come back.

    >>> from nas_ray.searchers import RegularizedEvolution
    >>> s = RegularizedEvolution("nasbench201", population_size=10, sample_size=3, seed=0)
    """

    name = "evolution"

    @classmethod
    def defaults_for(cls, space: SearchSpace, *, budget: int | None = None, dataset: str | None = None) -> dict[str, Any]:
        """A population of 20 needs ~100 evaluations to evolve at all: smaller budgets get a quarter of
        the budget (at least 4) and a tournament of a quarter of that (at least 2)."""
        if budget is None or budget >= 100:
            return {}
        population = max(4, budget // 4)
        return {"population_size": population, "sample_size": max(2, population // 4)}

    def __init__(
        self,
        space: SearchSpace | str,
        *,
        population_size: int = 20,  # P: about a fifth of a 100-query budget, so evolution runs 80 cycles
        sample_size: int = 5,  # S: tournament size; S/P = 1/4 keeps selection pressure moderate
        **kwargs,  # noqa: ANN003 - metric, mode, seed, max_retries of the base
    ) -> None:
        super().__init__(space, **kwargs)
        if population_size < 1 or not 1 <= sample_size <= population_size:
            raise ConfigError(
                f"evolution needs population_size >= 1 and 1 <= sample_size <= population_size, "
                f"got {population_size} and {sample_size}"
            )
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.population: deque[tuple[Architecture, float]] = deque()  # oldest first

    def _propose(self) -> Architecture:
        if len(self.proposed) < self.population_size or not self.population:
            return self.space.sample(self.rng)
        members = self.rng.choice(len(self.population), size=min(self.sample_size, len(self.population)), replace=False)
        parent = max((self.population[int(i)] for i in members), key=lambda m: m[1])[0]
        return self.space.mutate(parent, self.rng)

    def _observe(self, arch: Architecture, arch_hash: str, score: float) -> None:
        self.population.append((arch, score))
        if len(self.population) > self.population_size:
            self.population.popleft()  # aging: the oldest dies, not the worst

"""A user's own searcher, registered from user code: greedy local search.

Run it with the CLI (the module registers the searcher when imported):

    nas-ray bench --import examples/my_searcher.py --searcher greedy --searcher random --seeds 5 --data-dir DATA
    nas-ray search --import examples/my_searcher.py --searcher greedy --evaluator table:nasbench201:cifar10 \
        --backend local --budget 50 --data-dir DATA
"""

from __future__ import annotations

from nas_ray import Architecture
from nas_ray.searchers import ArchitectureSearcher, register_searcher


class GreedyMutation(ArchitectureSearcher):
    """Greedy local search: mutate the best architecture found so far (random until ``warmup`` results)."""

    name = "greedy"

    def __init__(self, space, *, warmup: int = 10, **kwargs) -> None:  # noqa: ANN001, ANN003
        super().__init__(space, **kwargs)
        self.warmup = warmup
        self.incumbent: tuple[Architecture, float] | None = None

    def _propose(self) -> Architecture:
        if self.incumbent is None or len(self.history) < self.warmup:
            return self.space.sample(self.rng)
        return self.space.mutate(self.incumbent[0], self.rng)

    def _observe(self, arch: Architecture, arch_hash: str, score: float) -> None:
        if self.incumbent is None or score > self.incumbent[1]:
            self.incumbent = (arch, score)


register_searcher("greedy", GreedyMutation, overwrite=True)

"""Reference rows: what a Ray Tune user gets without nas-ray.

A Tune user who searches architectures without nas-ray writes the space's choices as a Tune param
space (one ``tune.choice`` per decision: NB201's six edge ops, ENAS's layer choices, NB101's ops and
upper-triangle bits) and hands it to one of Tune's own search algorithms. These two searchers do
exactly that, so ``nas-ray bench`` can show those numbers beside ours in the same run:

- ``tune-random``: the variants of Tune's ``BasicVariantGenerator`` (its ``generate_variants``
  resolving the ``tune.choice`` domains, seeded).
- ``tune-optuna``: Tune's ``OptunaSearch`` with its defaults (Optuna's ``TPESampler(seed=seed)``).

They go through the same loop as every searcher: the same budget of distinct architectures, the
same deduplication (a repeated or invalid decision vector is drawn again; ``OptunaSearch`` is told
the trial errored, as Tune tells it of a failed trial) and the same results. Nothing of nas-ray's
models is used. A uniform draw of the base class after ``max_retries`` repeats in a row is not told
to Optuna: a Tune user's Optuna would not know of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nas_ray.errors import InvalidArchitecture
from nas_ray.graph import Architecture
from nas_ray.searchers.base import ArchitectureSearcher
from nas_ray.spaces import SearchSpace

#: invalid decision vectors in a row before a uniform draw of a valid architecture
MAX_INVALID = 1000


def tune_param_space(space: SearchSpace) -> dict[str, Any]:
    """The space's decisions as a Ray Tune param space: one ``tune.choice`` per decision."""
    from ray import tune

    return {name: tune.choice(list(choices)) for name, choices in space.decisions()}


class TuneRandomReference(ArchitectureSearcher):
    """Ray Tune's ``BasicVariantGenerator`` over ``tune_param_space(space)`` (see the module doc).

    >>> from nas_ray.searchers.tune_reference import TuneRandomReference
    >>> TuneRandomReference("nasbench201", seed=0).suggest("t0")["arch"]["ops"][0]
    'input'
    """

    name = "tune-random"

    def __init__(self, space: SearchSpace | str, *, max_retries: int = 20, **kwargs: Any) -> None:
        super().__init__(space, max_retries=max_retries, **kwargs)
        self.param_space = tune_param_space(self.space)
        self.random_state = np.random.RandomState(self.seed)
        self.invalid_draws = 0

    def _propose(self) -> Architecture:
        from ray.tune.search.variant_generator import generate_variants

        for _ in range(MAX_INVALID):
            ((_, config),) = list(generate_variants(self.param_space, random_state=self.random_state))
            try:
                return self.space.from_decisions(config)
            except InvalidArchitecture:
                self.invalid_draws += 1
        return self.space.sample(self.rng)


class TuneOptunaReference(ArchitectureSearcher):
    """Ray Tune's ``OptunaSearch`` with its defaults over ``tune_param_space(space)`` (see the module doc).

    >>> from nas_ray.searchers.tune_reference import TuneOptunaReference
    >>> TuneOptunaReference("nasbench201", seed=0).suggest("t0")["arch"]["ops"][-1]
    'output'
    """

    name = "tune-optuna"

    def __init__(self, space: SearchSpace | str, *, max_retries: int = 20, **kwargs: Any) -> None:
        super().__init__(space, max_retries=max_retries, **kwargs)
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # as under tune.Tuner(param_space=...): Tune hands the param space to the searcher, which converts it
        self.inner = OptunaSearch(seed=self.seed)
        self.inner.set_search_properties("score", "max", tune_param_space(self.space))
        self.inner_trials = 0
        self.pending: tuple[str, Architecture] | None = None  # the inner trial behind the last proposal
        self.asked: dict[str, str] = {}  # arch hash -> inner trial id awaiting its score
        self.invalid_asks = 0

    def _ask(self) -> tuple[str, dict[str, Any]]:
        trial_id = f"reference-{self.inner_trials}"
        self.inner_trials += 1
        return trial_id, self.inner.suggest(trial_id)

    def _propose(self) -> Architecture:
        for _ in range(MAX_INVALID):
            trial_id, config = self._ask()
            try:
                arch = self.space.from_decisions(config)
            except InvalidArchitecture:
                self.invalid_asks += 1
                self.inner.on_trial_complete(trial_id, None, error=True)
                continue
            self.pending = (trial_id, arch)
            return arch
        self.pending = None
        return self.space.sample(self.rng)

    def _on_duplicate(self, arch: Architecture, arch_hash: str) -> None:
        if self.pending is not None:
            self.inner.on_trial_complete(self.pending[0], None, error=True)
            self.pending = None

    def _accepted(self, arch: Architecture, arch_hash: str) -> None:
        if self.pending is not None:
            self.asked[arch_hash] = self.pending[0]
            self.pending = None

    def _observe(self, arch: Architecture, arch_hash: str, score: float) -> None:
        trial_id = self.asked.pop(arch_hash, None)
        if trial_id is not None:
            self.inner.on_trial_complete(trial_id, {"score": score})

    def _observe_failure(self, arch: Architecture, arch_hash: str) -> None:
        trial_id = self.asked.pop(arch_hash, None)
        if trial_id is not None:
            self.inner.on_trial_complete(trial_id, None, error=True)

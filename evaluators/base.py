"""The Evaluator contract: architecture in, metrics out."""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from nas_ray.graph import Architecture
from nas_ray.spaces import SearchSpace


class Step(NamedTuple):
    """One reported step of an evaluation: its metrics, and (for resumable evaluators) a state dict
    of tensors / plain values from which ``iterate(arch, restore=state)`` continues."""

    metrics: dict[str, float]
    state: dict[str, Any] | None = None


class Evaluator(abc.ABC):
    """Scores architectures of one search space.

    ``evaluate(arch)`` returns a dict of metrics that always holds ``metric`` (the value searchers
    optimise, in direction ``mode``); ``resources`` is what one evaluation needs, in Ray's terms.

    Subclasses set ``space`` and implement ``evaluate``::

        class ParamCount(Evaluator):
            metric, mode = "neg_params", "max"
            def evaluate(self, arch):
                return {"neg_params": -float(arch.num_edges)}
    """

    #: name of the metric searchers optimise
    metric: str = "reward"
    #: "max" or "min"
    mode: str = "max"
    #: the metric divided by this is a fraction (100 for an accuracy in percent); the efficiency
    #: score acc - lambda * ln(cost) of ``nas_ray.objectives`` takes the accuracy as a fraction
    metric_scale: float = 1.0
    space: SearchSpace

    @property
    def max_steps(self) -> int:
        """How many steps ``iterate`` yields (epochs for a training evaluator): a scheduler's horizon."""
        return 1

    @property
    def resources(self) -> dict[str, float]:
        """Per-evaluation resources, as Ray counts them."""
        return {"cpu": 1.0, "gpu": 0.0}

    def on_space(self, space: SearchSpace) -> Evaluator:
        """This evaluator scoring ``space``, a table-defined space whose base is this evaluator's space
        (a shallow copy; its architectures are the base space's, so nothing else changes)."""
        import copy

        if space is self.space:
            return self
        if not (getattr(space, "table_defined", False) and space.scores_with(self.space)):
            from nas_ray.errors import ConfigError

            raise ConfigError(f"the evaluator scores {self.space!r} architectures, not {space!r}")
        other = copy.copy(self)
        other.space = space
        return other

    @abc.abstractmethod
    def evaluate(self, arch: Architecture) -> dict[str, float]:
        """Metrics of ``arch``; must include ``self.metric``."""

    def iterate(self, arch: Architecture, *, restore: Mapping[str, Any] | None = None) -> Iterator[Step]:
        """Metrics as they become available (a training evaluator yields once per epoch, so Tune
        schedulers can stop bad trials early); the last step's metrics are the final ones.
        ``restore`` is a ``Step.state`` from an earlier run of the same architecture."""
        yield Step(self.evaluate(arch))

    def describe(self) -> dict[str, Any]:
        """What this evaluator is, for results files and logs."""
        return {"evaluator": type(self).__name__, "space": self.space.name, "metric": self.metric, "mode": self.mode}

    def __call__(self, arch: Architecture) -> dict[str, float]:
        return self.evaluate(arch)

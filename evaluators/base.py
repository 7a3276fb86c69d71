"""The Evaluator contract (DESIGN §3): architecture in, metrics out."""

from __future__ import annotations

import abc
from typing import Any

from nas_ray.graph import Architecture
from nas_ray.spaces import SearchSpace


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
    space: SearchSpace

    @property
    def resources(self) -> dict[str, float]:
        """Per-evaluation resources, as Ray counts them."""
        return {"cpu": 1.0, "gpu": 0.0}

    @abc.abstractmethod
    def evaluate(self, arch: Architecture) -> dict[str, float]:
        """Metrics of ``arch``; must include ``self.metric``."""

    def describe(self) -> dict[str, Any]:
        """What this evaluator is, for results files and logs."""
        return {"evaluator": type(self).__name__, "space": self.space.name, "metric": self.metric, "mode": self.mode}

    def __call__(self, arch: Architecture) -> dict[str, float]:
        return self.evaluate(arch)

"""``REINFORCEConfig``: the ``AlgorithmConfig`` builder of ``REINFORCE``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from nas_ray.errors import ConfigError
from nas_ray.evaluators.base import Evaluator
from nas_ray.models.learning import GraphPNASConfig, option_names, preset_for
from nas_ray.searchers.reinforce.env import SearchDesignEnv
from nas_ray.searchers.reinforce.learner import GraphPNASLearner
from nas_ray.searchers.reinforce.rl_module import GraphPNASRLModule
from nas_ray.spaces import SearchSpace, get_space

EVALUATION_MODES = ("auto", "local", "remote")


class REINFORCEConfig(AlgorithmConfig):
    """Configuration of ``REINFORCE``, RLlib's builder style::

        config = (
            REINFORCEConfig()
            .search(space="nasbench201", evaluator="table:nasbench201:cifar10", budget=100, data_dir=DATA)
            .training(preset="nb201-cifar10", epochs=70)      # GraphPNAS settings
            .env_runners(num_env_runners=2)                    # evaluations at a time
            .debugging(seed=0)
        )
        algo = config.build_algo()

    ``search``: the space, the evaluator (an ``Evaluator`` or a spec such as
    ``"table:nasbench201:cifar10"``), the budget of unique evaluated architectures, and where
    evaluations run (``evaluation``: ``"auto"`` runs them in the env runner unless the evaluator
    needs a GPU or more CPUs than an env runner holds, then as Ray tasks; ``"local"`` / ``"remote"``
    force either). ``training``: ``preset`` (``nas_ray.models.learning.PRESETS``; default: the
    space's) and any GraphPNAS option (``epochs``, ``batch_size``, ``keep_top``, ``epsilon_steps``,
    ``objective``, ``beta``, ``reset``, ``hidden``, ...; see ``option_names()``), besides RLlib's own.
    GraphPNAS's ``lr`` and ``grad_clip`` are the optimizer's.
    """

    def __init__(self, algo_class: type | None = None) -> None:
        if algo_class is None:
            from nas_ray.searchers.reinforce.reinforce import REINFORCE  # the algorithm imports this module

            algo_class = REINFORCE
        super().__init__(algo_class=algo_class)
        self.search_space: str = "nasbench201"
        self.search_space_options: dict[str, Any] = {}
        self.search_evaluator: Any = None
        self.search_data_dir: str | None = None
        self.search_budget: int | None = None
        self.search_evaluation: str = "auto"
        self.search_invalid_reward: float = 0.0
        self.graphpnas_preset: str | None = None
        self.graphpnas_options: dict[str, Any] = {}
        self.batch_mode = "complete_episodes"
        self.grad_clip_by = "global_norm"
        self.sample_timeout_s = 3600.0

    # ------------------------------------------------------------------ builder methods
    def search(
        self,
        *,
        space: str | SearchSpace = NotProvided,
        evaluator: str | Evaluator | None = NotProvided,
        budget: int | None = NotProvided,
        data_dir: str | None = NotProvided,
        space_options: Mapping[str, Any] | None = NotProvided,
        evaluation: str = NotProvided,
        invalid_reward: float = NotProvided,
    ) -> REINFORCEConfig:
        """What to search and how to score it (see the class doc)."""
        if space is not NotProvided:
            if isinstance(space, SearchSpace):
                self.search_space, self.search_space_options = space.name, dict(space.options())
            else:
                self.search_space = str(space)
        if space_options is not NotProvided:
            self.search_space_options = dict(space_options or {})
        if evaluator is not NotProvided:
            self.search_evaluator = evaluator
        if budget is not NotProvided:
            if budget is not None and (not isinstance(budget, int) or budget <= 0):
                raise ConfigError(f"budget must be a positive number of architectures, got {budget!r}")
            self.search_budget = budget
        if data_dir is not NotProvided:
            self.search_data_dir = None if data_dir is None else str(data_dir)
        if evaluation is not NotProvided:
            if evaluation not in EVALUATION_MODES:
                raise ConfigError(f"evaluation must be one of {', '.join(EVALUATION_MODES)}, got {evaluation!r}")
            self.search_evaluation = evaluation
        if invalid_reward is not NotProvided:
            self.search_invalid_reward = float(invalid_reward)
        return self

    def training(self, *, preset: str | None = NotProvided, **kwargs: Any) -> REINFORCEConfig:
        """RLlib's training settings plus GraphPNAS's (``preset`` and any option of ``option_names()``)."""
        graphpnas = {k: kwargs.pop(k) for k in list(kwargs) if k in _GRAPHPNAS_ONLY}
        for shared in ("lr", "grad_clip"):  # both RLlib's and GraphPNAS's
            if shared in kwargs:
                graphpnas[shared] = kwargs[shared]
        super().training(**kwargs)
        if preset is not NotProvided:
            self.graphpnas_preset = preset
        if graphpnas:
            self.graphpnas_options = {**self.graphpnas_options, **graphpnas}
        if preset is not NotProvided or graphpnas:
            self.graphpnas_config()  # fail early on a bad preset or option
        return self

    # ------------------------------------------------------------------ derived
    def space(self) -> SearchSpace:
        return get_space(self.search_space, **self.search_space_options)

    def graphpnas_config(self) -> GraphPNASConfig:
        """The GraphPNAS settings in force (the preset with the options applied)."""
        return preset_for(self.space(), self.graphpnas_preset).with_options(**self.graphpnas_options)

    def evaluator(self) -> Evaluator | None:
        ev = self.search_evaluator
        if ev is None or isinstance(ev, Evaluator):
            return ev
        from nas_ray.evaluators.specs import get_evaluator

        return get_evaluator(ev, data_dir=self.search_data_dir)

    def remote_resources(self, evaluator: Evaluator | None) -> dict[str, float] | None:
        """The Ray resources of one evaluation task, or None to evaluate inside the env runner."""
        if evaluator is None or self.search_evaluation == "local":
            return None
        need = dict(evaluator.resources)
        runner_cpus = float(self.num_cpus_per_env_runner or 0)
        cpus, gpus = float(need.pop("cpu", 1.0)), float(need.pop("gpu", 0.0))
        custom = {k: float(v) for k, v in need.items() if v}
        if self.search_evaluation == "auto" and gpus <= 0 and not custom and cpus <= max(runner_cpus, 1.0):
            return None
        return {"cpu": max(0.0, cpus - runner_cpus), "gpu": gpus, **custom}

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        space = self.space()
        gp = self.graphpnas_config()
        return RLModuleSpec(
            module_class=GraphPNASRLModule,
            model_config={
                "max_nodes": int(space.max_nodes),
                "num_types": len(space.node_types),
                "generator": gp.generator.to_dict(),
                "temperature": gp.temperature,
                "seed": self.seed,
            },
        )

    def get_default_learner_class(self) -> type:
        return GraphPNASLearner

    def validate(self) -> None:
        gp = self.graphpnas_config()
        self.lr = gp.lr
        self.grad_clip = gp.grad_clip
        if self.num_learners > 1:
            raise ConfigError("REINFORCE needs whole graphs per update: use num_learners 0 or 1")
        if self.gym_env_vectorize_mode not in ("sync", gym.VectorizeMode.SYNC, "SYNC"):
            raise ConfigError("REINFORCE evaluates architectures inside the environments: use gym_env_vectorize_mode='sync'")
        space = self.space()
        ev = self.evaluator()
        if ev is not None and (ev.space.name, ev.space.options()) != (space.name, space.options()):
            raise ConfigError(f"the evaluator scores {ev.space!r} architectures, not {space!r}")
        self.env = SearchDesignEnv
        self.env_config = {
            "space": space,
            "evaluator": ev,
            "invalid_reward": self.search_invalid_reward,
            "remote_resources": self.remote_resources(ev),
        }
        super().validate()


_GRAPHPNAS_ONLY = set(option_names()) - {"lr", "grad_clip"}

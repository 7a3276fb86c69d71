"""The GraphPNAS generator as an RLlib ``TorchRLModule``."""

from __future__ import annotations

from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule

from nas_ray.construction import OBS_KEYS
from nas_ray.models.graphpnas import GeneratorConfig, GraphPNASGenerator
from nas_ray.searchers.reinforce.distribution import GraphPNASActionDistribution, pack_distribution


class GraphPNASRLModule(TorchRLModule):
    """The GraphPNAS generator as an RLlib module. ``model_config``: ``max_nodes``, ``num_types``,
    ``generator`` (``GeneratorConfig`` fields), ``temperature`` and ``seed`` (initial weights)."""

    def setup(self) -> None:
        cfg = dict(self.model_config or {})
        if "max_nodes" not in cfg or "num_types" not in cfg:
            space = self.observation_space
            cfg.setdefault("max_nodes", space["adjacency"].shape[0])
            cfg.setdefault("num_types", space["op_mask"].n)
        self.generator_config = GeneratorConfig(**dict(cfg.get("generator") or {}))
        self.temperature = float(cfg.get("temperature", 1.0))
        self.max_nodes, self.num_types = int(cfg["max_nodes"]), int(cfg["num_types"])
        seed = cfg.get("seed")
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(int(seed))
            self.generator = GraphPNASGenerator(self.max_nodes, self.num_types, self.generator_config)
        self.action_dist_cls = GraphPNASActionDistribution.get_partial_dist_cls(
            space=self.action_space, num_types=self.num_types, max_nodes=self.max_nodes, mixtures=self.generator_config.mixtures
        )

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Acting (env runners): the distribution at the sampling temperature."""
        return self._distribution_inputs(batch, self.temperature)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Learning: the generator's own likelihood (temperature 1), as the Tune searcher fits it."""
        return self._distribution_inputs(batch, 1.0)

    def _distribution_inputs(self, batch: dict[str, Any], temperature: float) -> dict[str, Any]:
        obs = {k: torch.as_tensor(batch[Columns.OBS][k]) for k in OBS_KEYS}
        # A vectorised env runner also asks for an action on an episode's terminal observation (the
        # complete graph; the action is dropped at the reset). Such rows get a placeholder: the
        # graph cut to its first N - 1 nodes and a uniform op, so nothing indexes past the graph.
        complete = ~obs["op_mask"].bool().any(-1)
        if bool(complete.any()):
            obs["num_nodes"] = torch.where(complete, obs["num_nodes"].clamp(max=self.max_nodes - 1), obs["num_nodes"])
        dist = self.generator.distribution(obs, temperature)
        if bool(complete.any()):
            dist.op_logits = dist.op_logits.masked_fill(complete[:, None], 0.0)
        return {Columns.ACTION_DIST_INPUTS: pack_distribution(dist)}

    def reset_parameters(self, seed: int) -> None:
        """Fresh initial weights (``seed``), written into the existing parameters so optimizers
        keep referring to them."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            fresh = GraphPNASGenerator(self.max_nodes, self.num_types, self.generator_config)
        self.generator.load_state_dict(fresh.state_dict())

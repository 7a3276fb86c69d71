"""What ``REINFORCE`` runs on each env runner (through ``EnvRunnerGroup.foreach_env_runner``):
build architectures with the current policy, or score architectures the explorer proposed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from nas_ray.graph import Architecture
from nas_ray.searchers.reinforce.env import SearchDesignEnv


def design_envs(runner: Any) -> list[SearchDesignEnv]:
    vec = runner.env.unwrapped
    return [e.unwrapped for e in vec.envs]


#: times the explorer's evaluations lost with a dead env runner are sent to the surviving ones
EXPLORER_RETRIES = 3


def runner_sample(runner: Any, counts: Sequence[int], seeds: Sequence[int], gate: Any) -> tuple[list[dict[str, Any]], Any]:
    """On an env runner: build ``counts[i]`` architectures with the current policy (i: this runner's
    position), seeded; returns the final infos of the episodes and the runner's metrics."""
    i = max(int(runner.worker_index) - 1, 0)
    if counts[i] <= 0:
        return [], runner.get_metrics()
    for env in design_envs(runner):
        env.gate = gate
    torch.manual_seed(int(seeds[i]))
    episodes = runner.sample(num_episodes=int(counts[i]), explore=True)
    infos = [dict(ep.get_infos(-1)) for ep in episodes if ep.is_done]
    return infos, runner.get_metrics()


def runner_score(runner: Any, shares: Mapping[int, Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """On an env runner: evaluate its share (``shares[worker index]``) of given (explorer) architectures."""
    env = design_envs(runner)[0]
    out = []
    for item in shares.get(int(runner.worker_index), ()):
        arch = Architecture.from_dict(item["architecture"])
        reward, info = env.score(arch, {"valid": True, "architecture": item["architecture"], "hash": item["hash"]})
        out.append(info)
    return out

"""Gymnasium environments that build architectures step by step (``nas_ray.envs``).

Importing this package registers ``nas_ray/ArchitectureDesign-v0``::

    import gymnasium, nas_ray.envs
    env = gymnasium.make("nas_ray/ArchitectureDesign-v0", space="nasbench201",
                         evaluator="table:nasbench201:cifar10")
"""

from __future__ import annotations

import gymnasium

from nas_ray.construction import Builder, random_legal_action
from nas_ray.envs.design import ArchitectureDesignEnv
from nas_ray.errors import IllegalAction

ENV_ID = "nas_ray/ArchitectureDesign-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(ENV_ID, entry_point="nas_ray.envs.design:ArchitectureDesignEnv")

__all__ = ["ArchitectureDesignEnv", "Builder", "IllegalAction", "random_legal_action", "ENV_ID"]

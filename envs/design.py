"""The architecture-design environment: one step adds one node (its op and its incoming edges)."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces as gspaces

from nas_ray.construction import Builder, PartialGraph, random_legal_action
from nas_ray.errors import ArchitectureNotInTable, ConfigError, ConfigTypeError, IllegalAction, InvalidArchitecture
from nas_ray.evaluators.base import Evaluator
from nas_ray.spaces import SearchSpace, get_space


class ArchitectureDesignEnv(gym.Env):
    """Build an architecture of ``space`` node by node; the reward comes when it is complete.

    ``reset`` places the input node. Each action ``{"op": d, "edges": e}`` adds the next node with
    node type ``space.node_types[d]`` and an edge from every existing node ``j`` with ``e[j] = 1``.
    Placing an ``output`` node ends the episode (in fixed-size spaces the masks allow it only as the
    last node). The observation is a padded ``Dict`` (layout in ``nas_ray.construction``) holding
    the graph so far and the masks of what is legal next; an action the masks forbid raises
    ``IllegalAction`` naming the problem, and the graph is left unchanged.

    At the end the graph is canonicalised, validated and evaluated: the reward is the evaluator's
    metric (negated when its mode is "min"); an invalid graph, or one the evaluator's table does not
    hold, gets ``invalid_reward`` and ``info["invalid_reason"]``. The last ``info`` carries the
    architecture (JSON dict, canonical form), its hash and every metric. Intermediate rewards are 0.

    ``space`` and ``evaluator`` may be names (``"nasbench201"``, ``"table:nasbench201:cifar10"``),
    so ``gymnasium.make("nas_ray/ArchitectureDesign-v0", space=..., evaluator=...)`` works. Without
    an evaluator every complete valid graph gets reward 0 (useful for sampling and tests).

    >>> import gymnasium, nas_ray.envs
    >>> env = gymnasium.make("nas_ray/ArchitectureDesign-v0", space="nasbench201")
    >>> obs, info = env.reset(seed=0)
    >>> int(obs["num_nodes"])
    1
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        space: SearchSpace | str = "nasbench201",
        evaluator: Evaluator | str | None = None,
        *,
        invalid_reward: float = 0.0,
        space_options: dict[str, Any] | None = None,
        data_dir: str | None = None,
        render_mode: str | None = None,
    ) -> None:
        if evaluator is not None and not isinstance(evaluator, Evaluator):
            from nas_ray.evaluators.specs import get_evaluator

            evaluator = get_evaluator(evaluator, data_dir=data_dir)
        if isinstance(space, str):
            space = get_space(space, **(space_options or {}))
        if not isinstance(space, SearchSpace):
            raise ConfigTypeError(f"space must be a SearchSpace or a registered name, got {space!r}")
        if evaluator is not None and evaluator.space.name != space.name:
            raise ConfigError(f"the evaluator scores {evaluator.space.name} architectures, not {space.name}")
        if evaluator is not None and evaluator.space.options() != space.options():
            raise ConfigError(f"the evaluator's space {evaluator.space!r} differs from {space!r}")
        if render_mode not in (None, "ansi"):
            raise ConfigError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        if not math.isfinite(invalid_reward):
            raise ConfigError(f"invalid_reward must be finite, got {invalid_reward}")
        self.space = space
        self.evaluator = evaluator
        self.invalid_reward = float(invalid_reward)
        self.render_mode = render_mode
        self.builder = Builder(space)
        N, D = self.builder.max_nodes, self.builder.num_types
        self.observation_space = gspaces.Dict(
            {
                "adjacency": gspaces.Box(0.0, 1.0, (N, N), dtype=np.float32),
                "ops": gspaces.MultiDiscrete(np.full(N, D + 1)),
                "num_nodes": gspaces.Discrete(N + 1),
                "op_mask": gspaces.MultiBinary(D),
                "edge_mask": gspaces.MultiBinary(N),
                "edge_required": gspaces.MultiBinary(N),
                "min_edges": gspaces.MultiDiscrete(np.full(D, N + 1)),
                "max_edges": gspaces.MultiDiscrete(np.full(D, N + 1)),
            }
        )
        self.action_space = LegalActionSpace(self.builder)
        self._graph: PartialGraph | None = None

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):  # noqa: ANN201
        super().reset(seed=seed)
        self._graph = self.builder.start()
        self.action_space._graph = self._graph
        return self.builder.observe(self._graph), {}

    def step(self, action: dict[str, Any]):  # noqa: ANN201
        g = self._graph
        if g is None:
            raise IllegalAction("call reset() before step()")
        try:
            op = int(action["op"])
            edges = np.asarray(action["edges"]).astype(np.int8, copy=False).reshape(-1)
        except (KeyError, TypeError, ValueError) as exc:
            raise IllegalAction(f"an action is {{'op': int, 'edges': 0/1 array}}, got {action!r} ({exc})") from None
        done = self.builder.apply(g, op, edges)
        self.action_space._graph = g
        obs = self.builder.observe(g)
        if not done:
            return obs, 0.0, False, False, {}
        reward, info = self._finish(g)
        return obs, reward, True, False, info

    def _finish(self, g: PartialGraph) -> tuple[float, dict[str, Any]]:
        try:
            arch = self.builder.architecture(g)
            canonical = self.space.canonicalize(arch)
        except InvalidArchitecture as exc:
            return self.invalid_reward, {"valid": False, "invalid_reason": str(exc), "architecture": _raw(g)}
        info: dict[str, Any] = {"valid": True, "architecture": canonical.to_dict(), "hash": self.space.hash(canonical)}
        return self._evaluate(canonical, info)

    def _evaluate(self, canonical: Any, info: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """Score the finished canonical graph: the reward and the final ``info`` (which holds the
        architecture and its hash on entry). Subclasses change how or where evaluation happens."""
        if self.evaluator is None:
            info["metrics"] = {}
            return 0.0, info
        try:
            metrics = self.evaluator.evaluate(canonical)
        except ArchitectureNotInTable as exc:
            info.update(valid=False, invalid_reason=str(exc), metrics={})
            return self.invalid_reward, info
        info["metrics"] = metrics
        value = float(metrics[self.evaluator.metric])
        return (-value if self.evaluator.mode == "min" else value), info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._graph is None:
            return None
        g = self._graph
        lines = []
        for v, op in enumerate(g.ops):
            preds = np.flatnonzero(g.matrix[:v, v]).tolist()
            lines.append(f"{v}: {op}" + (f" <- {preds}" if preds else ""))
        return "\n".join(lines)

    # ------------------------------------------------------------------ helpers
    @property
    def num_nodes(self) -> int:
        """Nodes placed so far (0 before the first reset)."""
        return 0 if self._graph is None else len(self._graph.ops)

    def architecture(self):  # noqa: ANN201 - nas_ray.Architecture
        """The graph built so far (raw, not canonicalised)."""
        if self._graph is None:
            raise IllegalAction("call reset() first")
        return self.builder.architecture(self._graph)


class LegalActionSpace(gspaces.Dict):
    """``Dict(op=Discrete(D), edges=MultiBinary(N))`` whose ``sample()`` draws a *legal* action.

    It follows its environment: ``sample()`` returns a uniformly random legal op with its required
    edges plus a random number of the other legal edges, for the graph the environment holds now
    (``random_legal_action``). Before the first ``reset``, when the graph is complete, and right after
    ``seed()`` (which starts a new sampling sequence, as at the start of an episode) it samples for
    the start state. ``contains`` checks shapes and types only; legality is the environment's check.
    Pickled copies (RLlib ships spaces to its workers) are plain ``Dict`` spaces.
    """

    def __init__(self, builder: Builder) -> None:
        N, D = builder.max_nodes, builder.num_types
        super().__init__({"op": gspaces.Discrete(D), "edges": gspaces.MultiBinary(N)})
        self._builder: Builder | None = builder
        self._graph: PartialGraph | None = None

    def seed(self, seed: int | None = None):  # noqa: ANN201
        self._graph = None
        return super().seed(seed)

    def sample(self, mask: Any = None, probability: Any = None) -> dict[str, Any]:
        if mask is not None or probability is not None or self._builder is None:
            return super().sample(mask=mask, probability=probability)
        g = self._graph
        if g is None or g.masks is None:
            g = self._builder.start()
        action = random_legal_action(self._builder.observe(g), self.np_random)
        return {"op": np.int64(action["op"]), "edges": action["edges"]}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_builder"] = state["_graph"] = None
        return state


def _raw(g: PartialGraph) -> dict[str, Any]:
    n = len(g.ops)
    return {"ops": list(g.ops), "matrix": g.matrix[:n, :n].tolist()}

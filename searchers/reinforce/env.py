"""The design environment as the env runners build it, with the search's evaluation rules, and the
gate that keeps every architecture to one evaluation."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from nas_ray.envs.design import ArchitectureDesignEnv
from nas_ray.evaluators.base import Evaluator
from nas_ray.graph import Architecture


class EvaluationGate:
    """Which finished graphs get evaluated: never one seen before (evaluated, failed or claimed by
    another env runner), and at most ``quota`` per round. A Ray actor when env runners are remote."""

    def __init__(self, seen: Sequence[str] = ()) -> None:
        self.seen: set[str] = set(seen)
        self.quota = 0

    def open(self, quota: int, seen: Sequence[str] = ()) -> None:
        self.seen.update(seen)
        self.quota = int(quota)

    def claim(self, arch_hash: str) -> str | None:
        """None: evaluate it; else why not ("duplicate" or "quota")."""
        if arch_hash in self.seen:
            return "duplicate"
        if self.quota <= 0:
            return "quota"
        self.seen.add(arch_hash)
        self.quota -= 1
        return None

    def remaining(self) -> int:
        return self.quota


def _evaluate_task(evaluator: Evaluator, arch_json: dict[str, Any]) -> dict[str, float]:
    return evaluator.evaluate(Architecture.from_dict(arch_json))


class SearchDesignEnv(ArchitectureDesignEnv):
    """The design environment as RLlib builds it (one ``env_config`` dict), with the search's
    evaluation rules: the gate decides whether a finished graph is evaluated (if not, the episode
    ends with reward 0 and ``info["skipped"]``); an evaluation that raises ends the episode with
    ``invalid_reward`` and ``info["error"]`` instead of killing the env runner; with
    ``remote_resources`` each evaluation is a Ray task asking for them."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        cfg = dict(config or {})
        self.remote_resources: dict[str, float] | None = cfg.pop("remote_resources", None)
        super().__init__(**cfg)
        self.gate: Any = None
        self._remote_fn: Any = None
        self._evaluator_ref: Any = None

    def _evaluate(self, canonical: Architecture, info: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        if self.gate is not None:
            import ray

            why = self.gate.claim(info["hash"]) if isinstance(self.gate, EvaluationGate) else ray.get(self.gate.claim.remote(info["hash"]))
            if why is not None:
                info.update(skipped=why, metrics={})
                return 0.0, info
        return self.score(canonical, info)

    def score(self, canonical: Architecture, info: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """Evaluate (no gate): reward and info with ``metrics``, ``eval_s`` and ``error`` on failure."""
        start = time.perf_counter()
        try:
            if self.remote_resources is None or self.evaluator is None:
                reward, info = super()._evaluate(canonical, info)
            else:
                reward, info = self._evaluate_remote(canonical, info)
        except Exception as exc:  # noqa: BLE001 - a failed evaluation is a failed trial, not a dead env runner
            info.update(error=f"{type(exc).__name__}: {exc}", metrics={})
            reward = self.invalid_reward
        info["eval_s"] = time.perf_counter() - start
        return reward, info

    def _evaluate_remote(self, canonical: Architecture, info: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        import ray

        from nas_ray.errors import ArchitectureNotInTable

        if self._remote_fn is None:
            r = dict(self.remote_resources)
            cpus, gpus = r.pop("cpu", 0.0), r.pop("gpu", 0.0)
            self._remote_fn = ray.remote(_evaluate_task).options(
                num_cpus=cpus, num_gpus=gpus, resources=r or None, scheduling_strategy="DEFAULT", max_retries=0
            )
            self._evaluator_ref = ray.put(self.evaluator)
        try:
            metrics = ray.get(self._remote_fn.remote(self._evaluator_ref, canonical.to_dict()))
        except ray.exceptions.RayTaskError as exc:
            cause = exc.as_instanceof_cause()
            if isinstance(cause, ArchitectureNotInTable):
                info.update(valid=False, invalid_reason=str(cause), metrics={})
                return self.invalid_reward, info
            raise
        info["metrics"] = metrics
        value = float(metrics[self.evaluator.metric])
        return (-value if self.evaluator.mode == "min" else value), info

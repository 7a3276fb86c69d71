"""``REINFORCE``: GraphPNAS's search as an RLlib ``Algorithm``, one search step per ``train()``."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.algorithm import Algorithm
from torch import Tensor

from nas_ray.construction import Builder
from nas_ray.errors import ConfigError
from nas_ray.graph import Architecture
from nas_ray.models.learning import (
    Explorer,
    ReplayBuffer,
    explore_this_step,
    explorer_fill,
    rejection_round_sizes,
    training_set,
)
from nas_ray.search.results import make_row
from nas_ray.searchers.reinforce.env import EvaluationGate
from nas_ray.searchers.reinforce.env_runner import EXPLORER_RETRIES, runner_sample, runner_score
from nas_ray.searchers.reinforce.learner import buffer_episode
from nas_ray.searchers.reinforce.reinforce_config import REINFORCEConfig

logger = logging.getLogger(__name__)


class REINFORCE(Algorithm):
    """GraphPNAS's search on RLlib: one ``train()`` iteration is one search step (see the module
    doc). Results hold ``num_evaluations``, ``best_reward``, the step's ``source`` (explorer or
    generator), timers, and ``done`` once the budget is spent; ``rows()`` is the results table
    (one row per evaluation, as every search writes it). Checkpoints carry the generator and its
    optimizer (the learner group), the replay buffer, the evaluated hashes, the table, the explorer
    and the random state."""

    @classmethod
    def get_default_config(cls) -> REINFORCEConfig:
        return REINFORCEConfig()

    def setup(self, config: Any) -> None:
        evaluator = config.get("search_evaluator") if isinstance(config, dict) else getattr(config, "search_evaluator", None)
        if evaluator is None:
            raise ConfigError("REINFORCE needs an evaluator: REINFORCEConfig().search(evaluator=...)")
        super().setup(config)
        cfg = self.config
        self.search_space = cfg.space()
        self.graphpnas = cfg.graphpnas_config()
        self.explorer = Explorer(self.search_space, self.graphpnas.explorer, self.graphpnas.explorer_params)
        self.builder = Builder(self.search_space)
        self.buffer = ReplayBuffer()
        self.seen: set[str] = set()
        self.results_rows: list[dict[str, Any]] = []
        self.search_step = 0
        self.stale = True
        self.ewma_baseline: float | None = None
        self.rng = np.random.default_rng(cfg.seed)
        self._gate: Any = None
        self._gate_synced: set[str] = set()
        metric = cfg.evaluator()
        self.metric, self.mode = (metric.metric, metric.mode) if metric is not None else ("reward", "max")

    # ------------------------------------------------------------------ one search step
    def training_step(self) -> None:
        gp = self.graphpnas
        budget = self.config.search_budget
        left = gp.samples_per_step if budget is None else min(gp.samples_per_step, budget - len(self.results_rows))
        if left <= 0:
            self.metrics.log_value("num_evaluations", len(self.results_rows), window=1)
            return
        eps, from_explorer = explore_this_step(gp, self.search_step, len(self.buffer), self.rng)
        infos: list[dict[str, Any]] = []
        source = "explorer"
        fit_s = sample_s = 0.0
        start = time.perf_counter()
        if not from_explorer:
            if self.stale:
                t0 = time.perf_counter()
                self._refit()
                fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            infos = self._sample_generator(left)
            sample_s = time.perf_counter() - t0
            source = "generator" if len(infos) >= left else "generator+explorer"
        if len(infos) < left:
            infos += self._evaluate_explorer(left - len(infos))
        self._record(infos)
        self.search_step += 1
        self.stale = True
        m = self.metrics
        m.log_value("num_evaluations", len(self.results_rows), window=1)
        m.log_value("search_step", self.search_step, window=1)
        m.log_value("epsilon", eps, window=1)
        m.log_value("source_generator", 0.0 if source == "explorer" else 1.0, window=1)
        ok = [r["reward"] for r in self.results_rows if r["status"] == "ok"]
        if ok:
            m.log_value("best_reward", max(ok) if self.mode == "max" else min(ok), window=1)
        m.log_value("buffer_size", len(self.buffer), window=1)
        m.log_value(("timers", "generator_fit_s"), fit_s, window=1)
        m.log_value(("timers", "generator_sample_s"), sample_s, window=1)
        m.log_value(("timers", "search_step_s"), time.perf_counter() - start, window=1)
        m.log_value(("timers", "evaluation_s_sum"), sum(i.get("eval_s", 0.0) for i in infos), window=1)

    def step(self) -> dict[str, Any]:
        results = super().step()
        budget = self.config.search_budget
        results["done"] = bool(budget is not None and len(self.results_rows) >= budget)
        return results

    # ------------------------------------------------------------------ generator side
    def _refit(self) -> None:
        gp = self.graphpnas
        self.stale = False
        entries, adv, self.ewma_baseline = training_set(gp, self.buffer, self.search_step, self.ewma_baseline)
        if gp.reset:
            seed = int(self.rng.integers(2**31))
            self.learner_group.foreach_learner(lambda learner: learner.reset_generator(seed))
        episodes = [buffer_episode(self.builder, e, i, float(a)) for i, (e, a) in enumerate(zip(entries, adv))]
        learner_results = self.learner_group.update(
            episodes=episodes,
            timesteps={"num_env_steps_sampled_lifetime": sum(len(e) for e in episodes)},
            num_epochs=gp.epochs,
            minibatch_size=None,
            episodes_per_minibatch=gp.batch_size,
            shuffle_seed=int(self.rng.integers(2**31)),
        )
        self.metrics.aggregate(learner_results, key="learners")
        self.env_runner_group.sync_weights(
            from_worker_or_learner_group=self.learner_group, inference_only=True, timeout_seconds=self.config.sample_timeout_s
        )

    def _remote(self) -> bool:
        return self.env_runner_group.num_remote_env_runners() > 0

    def _runners(self) -> int:
        return max(self.env_runner_group.num_remote_env_runners(), 1)

    def _gate_open(self, quota: int) -> Any:
        """Open a sampling round: the gate learns the hashes seen since last time and the quota."""
        new = list(self.seen - self._gate_synced)
        self._gate_synced |= set(new)
        if not self._remote():
            if self._gate is None:
                self._gate = EvaluationGate()
            self._gate.open(quota, new)
            return self._gate
        import ray

        if self._gate is None:
            self._gate = ray.remote(num_cpus=0)(EvaluationGate).remote()
        ray.get(self._gate.open.remote(quota, new))
        return self._gate

    def _sample_generator(self, need: int) -> list[dict[str, Any]]:
        """Rejection sampling through the env runners: round r builds need * (5r + 1) graphs in all,
        the gate lets the first ``need`` unseen ones be evaluated."""
        out: list[dict[str, Any]] = []
        runners = self._runners()
        for r in range(self.graphpnas.max_tries):
            missing = need - len(out)
            if missing <= 0:
                break
            gate = self._gate_open(missing)
            total = rejection_round_sizes(missing, r + 1)[r]
            counts = [total // runners + (1 if i < total % runners else 0) for i in range(runners)]
            seeds = [int(s) for s in self.rng.integers(2**31, size=runners)]
            results = self.env_runner_group.foreach_env_runner(
                lambda runner, c=counts, s=seeds, g=gate: runner_sample(runner, c, s, g),
                local_env_runner=not self._remote(),
            )
            metrics = []
            for infos, runner_metrics in results:
                metrics.append(runner_metrics)
                for info in infos:
                    if "skipped" not in info and "hash" in info:
                        out.append(info)
                        self.seen.add(info["hash"])
                    elif info.get("valid") is False and "hash" not in info:
                        logger.warning("generator built an invalid graph: %s", info.get("invalid_reason"))
            self.metrics.aggregate(metrics, key="env_runners")
        return out

    # ------------------------------------------------------------------ explorer side
    def _evaluate_explorer(self, need: int) -> list[dict[str, Any]]:
        """``need`` unseen architectures from the explorer, evaluated on the env runners."""
        fill = explorer_fill(self.explorer, self.search_space, need, self.rng, self.seen.__contains__)
        items = [{"architecture": canonical.to_dict(), "hash": h} for _, canonical, h in fill]
        taken = {h for _, _, h in fill}
        if not items:
            return []
        self.seen |= taken
        if not self._remote():
            return runner_score(self.env_runner_group.local_env_runner, {0: items})
        # Each healthy runner scores its share, keyed by its worker index; the share of a runner that
        # dies (its node lost) comes back missing and goes to the runners alive on the next try
        # (RLlib restarts dead runners: ``fault_tolerance(restart_failed_env_runners=True)``).
        done: dict[str, dict[str, Any]] = {}
        for attempt in range(EXPLORER_RETRIES + 1):
            todo = [item for item in items if item["hash"] not in done]
            if not todo:
                break
            if attempt:
                self.restore_env_runners(self.env_runner_group)
            # none healthy right now: try them all (RLlib numbers remote env runners 1..n), the restart above revives them
            ids = self.env_runner_group.healthy_env_runner_ids() or list(range(1, self.env_runner_group.num_remote_env_runners() + 1))
            shares = {i: todo[k::len(ids)] for k, i in enumerate(ids)}
            results = self.env_runner_group.foreach_env_runner(
                lambda runner, s=shares: runner_score(runner, s), local_env_runner=False, remote_worker_ids=ids
            )
            for infos in results:
                for info in infos:
                    done[info["hash"]] = info
            if len(done) < len(items):
                logger.warning("graphpnas@rllib: %d of %d explorer evaluations were lost with their env runner; retrying",
                               len(items) - len(done), len(items))
        lost = [item for item in items if item["hash"] not in done]
        self.seen -= {item["hash"] for item in lost}  # never evaluated: may be proposed again
        return [done[item["hash"]] for item in items if item["hash"] in done]

    # ------------------------------------------------------------------ bookkeeping
    def _record(self, infos: Sequence[dict[str, Any]]) -> None:
        name = "graphpnas@rllib"  # the searcher column: GraphPNAS under the RLlib driver
        for info in infos:
            arch = Architecture.from_dict(info["architecture"])
            error = info.get("error") or (None if info.get("valid", True) else info.get("invalid_reason", "invalid"))
            metrics = info.get("metrics") or {}
            q = len(self.results_rows)
            row = make_row(
                query=q, trial_id=f"{self.search_step:05d}-{q:05d}", searcher=name, seed=self.config.seed,
                space=self.search_space.name, arch_hash=info["hash"], arch=arch, metric=self.metric,
                metrics=None if error else metrics, wall_s=float(info.get("eval_s", 0.0)), error=error,
            )
            self.results_rows.append(row)
            if row["status"] == "ok":
                reward = row["reward"] if self.mode == "max" else -row["reward"]
                self.buffer.add(arch, info["hash"], reward, self.search_step)

    def rows(self) -> list[dict[str, Any]]:
        """The results table so far: one row per evaluation (``nas_ray.search.results`` columns)."""
        return list(self.results_rows)

    def generator_state(self) -> dict[str, Tensor]:
        """The generator's current weights (from the learner)."""
        module = self.learner_group.get_state(components="learner/rl_module")["learner"]["rl_module"]
        (state,) = module.values()
        return {k[len("generator."):]: torch.as_tensor(v) for k, v in state.items() if k.startswith("generator.")}

    # ------------------------------------------------------------------ checkpoints
    def get_state(self, components: Any = None, *, not_components: Any = None, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component("graphpnas_search", components, not_components):
            state["graphpnas_search"] = {
                "buffer": [(e.arch.to_dict(), e.arch_hash, e.reward, e.step) for e in self.buffer.entries.values()],
                "seen": sorted(self.seen),
                "rows": list(self.results_rows),
                "search_step": self.search_step,
                "stale": self.stale,
                "ewma_baseline": self.ewma_baseline,
                "rng": self.rng.bit_generator.state,
            }
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        s = state.get("graphpnas_search")
        if s is None:
            return
        self.buffer = ReplayBuffer()
        for arch, h, reward, step in s["buffer"]:
            self.buffer.add(Architecture.from_dict(arch), h, reward, step)
        self.seen = set(s["seen"])
        self._gate_synced = set()
        if self._gate is not None and not isinstance(self._gate, EvaluationGate):
            import ray

            ray.kill(self._gate)
        self._gate = None
        self.results_rows = list(s["rows"])
        self.search_step = int(s["search_step"])
        self.stale = bool(s["stale"])
        self.ewma_baseline = s["ewma_baseline"]
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = s["rng"]

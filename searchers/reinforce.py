"""GraphPNAS trained by REINFORCE as an RLlib algorithm (new API stack).

The pieces, each a standard RLlib extension point:

- ``GraphPNASActionDistribution``: the next node's op and its mixture-of-Bernoulli incoming edges.
  It wraps the generator's ``NodeDistribution``, so sampling and log-probabilities are the model's
  own (masks and edge-count conditioning included).
- ``GraphPNASRLModule``: a ``TorchRLModule`` holding the ``GraphPNASGenerator``; it reads the
  architecture-design environment's padded ``Dict`` observations.
- ``GraphPNASLearner``: a ``TorchLearner`` whose loss is GraphPNAS's REINFORCE loss
  (``nas_ray.models.learning.reinforce_loss``) on the normalised likelihood of whole graphs, with
  the per-graph advantage from the replay buffer (rank-CDF, standardised with the beta term, or an
  EWMA baseline). Minibatches are whole episodes.
- ``REINFORCEConfig`` / ``REINFORCE``: the ``AlgorithmConfig`` builder and the ``Algorithm``. One
  ``train()`` iteration is one GraphPNAS search step: with probability epsilon(step) the step's
  architectures come from the explorer (a random-graph prior of the space), otherwise the generator
  is refit on the buffer's best and the env runners build architectures with it (repeating with
  more episodes while they only rebuild graphs already evaluated, as GraphPNAS's rejection
  sampling does). Every architecture is evaluated once: a shared gate (a Ray actor when there are
  remote env runners) lets an environment evaluate a graph only if nobody has, and only as many as
  the step asks for.

Architectures are evaluated where the episodes end, in the env runners' environments, so
``num_env_runners`` evaluations run at once. An evaluator that needs a GPU (or more CPUs than an env
runner holds) runs each evaluation as a Ray task that asks for those resources, so env runners stay
CPU-only; the env runner waits for the task and lends it its own CPU.

>>> from nas_ray.searchers import REINFORCEConfig
>>> config = REINFORCEConfig().search(space="nasbench201", evaluator="table:nasbench201:cifar10", budget=100)
>>> algo = config.build_algo()          # doctest: +SKIP
>>> result = algo.train()               # one search step
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import tree
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.distribution import Distribution
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from torch import Tensor

from nas_ray.construction import OBS_KEYS, Builder, PartialGraph
from nas_ray.envs.design import ArchitectureDesignEnv
from nas_ray.errors import ConfigError, InvalidArchitecture
from nas_ray.evaluators.base import Evaluator
from nas_ray.graph import Architecture
from nas_ray.models.graphpnas import GeneratorConfig, GraphPNASGenerator, NodeDistribution, graph_log_likelihood
from nas_ray.models.learning import (
    BufferEntry,
    Explorer,
    GraphPNASConfig,
    ReplayBuffer,
    explore_this_step,
    explorer_fill,
    option_names,
    preset_for,
    reinforce_loss,
    rejection_round_sizes,
    training_set,
    trajectory_of,
)
from nas_ray.search.results import make_row
from nas_ray.spaces import SearchSpace, get_space

logger = logging.getLogger(__name__)

#: batch columns the learner connector adds from each episode's ``custom_data``
EPISODE_INDEX, EPISODE_ADVANTAGE = "episode_index", "episode_advantage"
EVALUATION_MODES = ("auto", "local", "remote")


# =============================================================================================== distribution
def pack_distribution(dist: NodeDistribution) -> Tensor:
    """The distribution's parameters as one row per step (RLlib's ``action_dist_inputs``):
    ``[op logits D | mixture logits K | edge logits K*N | edge mask N | required N | min D | max D]``."""
    R = dist.op_logits.shape[0]
    return torch.cat(
        [
            dist.op_logits,
            dist.mix_logits,
            dist.edge_logits.reshape(R, -1),
            (dist.free | dist.required).to(dist.op_logits.dtype),
            dist.required.to(dist.op_logits.dtype),
            dist.min_edges.to(dist.op_logits.dtype),
            dist.max_edges.to(dist.op_logits.dtype),
        ],
        -1,
    )


def unpack_distribution(inputs: Tensor, num_types: int, max_nodes: int, mixtures: int) -> NodeDistribution:
    D, N, K = num_types, max_nodes, mixtures
    sizes = [D, K, K * N, N, N, D, D]
    if inputs.shape[-1] != sum(sizes):
        raise ConfigError(f"action_dist_inputs has {inputs.shape[-1]} columns, expected {sum(sizes)} (D={D}, N={N}, K={K})")
    op, mix, edge, mask, req, lo, hi = inputs.split(sizes, -1)
    return NodeDistribution(
        op, mix, edge.reshape(-1, K, N), mask > 0.5, req > 0.5, lo.round().long(), hi.round().long()
    )


class GraphPNASActionDistribution(Distribution):
    """The joint distribution of one construction step's action ``{"op", "edges"}``: the op from a
    masked softmax, the edges from a mixture of ``K`` products of Bernoullis over the legal
    predecessors (conditioned on the op's edge-count limits). ``logp`` is exact under the masks and
    equals the generator's likelihood of the step; ``entropy`` is the op entropy plus the mixture's
    lower bound sum_k pi_k H(row k). Bind the sizes with ``get_partial_dist_cls(space=action_space,
    num_types=D, max_nodes=N, mixtures=K)``."""

    def __init__(self, dist: NodeDistribution) -> None:
        self.dist = dist

    @classmethod
    def from_logits(cls, logits: Tensor, *, num_types: int, max_nodes: int, mixtures: int, space: Any = None, **kw: Any):  # noqa: ANN206
        return cls(unpack_distribution(logits, num_types, max_nodes, mixtures))

    @staticmethod
    def required_input_dim(space: gym.Space, *, num_types: int, max_nodes: int, mixtures: int, **kw: Any) -> int:
        return 3 * num_types + mixtures + mixtures * max_nodes + 2 * max_nodes

    def sample(self, *, sample_shape: Any = None, return_logp: bool = False, **kw: Any):  # noqa: ANN201
        op, edges = self.dist.sample()
        action = {"op": op, "edges": edges}
        return (action, self.logp(action)) if return_logp else action

    def rsample(self, *, sample_shape: Any = None, return_logp: bool = False, **kw: Any):  # noqa: ANN201
        raise NotImplementedError("the graph distribution is discrete: no reparameterised samples")

    def logp_parts(self, value: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(log p(op), log p(edges | op))`` per step."""
        return self.dist.log_prob(torch.as_tensor(value["op"]).long(), torch.as_tensor(value["edges"]).long())

    def logp(self, value: Mapping[str, Tensor], **kw: Any) -> Tensor:
        lp_op, lp_edges = self.logp_parts(value)
        return lp_op + lp_edges

    def kl(self, other: Distribution, **kw: Any) -> Tensor:
        raise NotImplementedError("REINFORCE needs no KL between graph distributions")

    def entropy(self, **kw: Any) -> Tensor:
        d = self.dist
        pi = torch.softmax(d.mix_logits, -1)
        theta = torch.sigmoid(d.edge_logits)
        h_rows = -(theta * torch.log(theta.clamp_min(1e-12)) + (1 - theta) * torch.log((1 - theta).clamp_min(1e-12)))
        h_edges = (pi * (h_rows * d.free[:, None, :]).sum(-1)).sum(-1)
        return d.entropy_op() + h_edges

    def to_deterministic(self) -> GraphPNASActionDistribution:
        return _GreedyDistribution(self.dist)


class _GreedyDistribution(GraphPNASActionDistribution):
    """``to_deterministic()``: the most likely op, component and edges (display and evaluation of
    the greedy graph; its ``logp`` is still the stochastic policy's)."""

    def sample(self, *, sample_shape: Any = None, return_logp: bool = False, **kw: Any):  # noqa: ANN201
        op, edges = self.dist.greedy()
        action = {"op": op, "edges": edges}
        return (action, self.logp(action)) if return_logp else action


# =============================================================================================== RLModule
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


# =============================================================================================== Learner
class AddEpisodeColumns(ConnectorV2):
    """Learner connector piece: each episode's index in the update and its advantage (from
    ``episode.custom_data``), as constant per-step columns, so the loss can sum over whole graphs."""

    def __call__(
        self, *, rl_module: Any, batch: dict[str, Any], episodes: list[Any], explore: Any = None, shared_data: Any = None, **kwargs: Any
    ) -> Any:
        for ep in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            n = len(ep)
            index = ep.custom_data.get(EPISODE_INDEX)
            advantage = ep.custom_data.get(EPISODE_ADVANTAGE)
            if index is None or advantage is None:
                raise ConfigError("GraphPNAS learner: an episode without episode_index / episode_advantage in custom_data")
            self.add_n_batch_items(batch, EPISODE_INDEX, items_to_add=[np.int64(index)] * n, num_items=n, single_agent_episode=ep)
            self.add_n_batch_items(
                batch, EPISODE_ADVANTAGE, items_to_add=[np.float32(advantage)] * n, num_items=n, single_agent_episode=ep
            )
        return batch


class _EpisodeMinibatches:
    """``num_epochs`` passes over the episodes of ``batch`` in shuffled minibatches of
    ``episodes_per_minibatch`` whole episodes (GraphPNAS's batch size counts graphs, not steps)."""

    def __init__(self, batch: MultiAgentBatch, num_epochs: int, episodes_per_minibatch: int, seed: int | None) -> None:
        self.batch, self.num_epochs, self.size = batch, num_epochs, episodes_per_minibatch
        self.rng = np.random.default_rng(seed)

    def __iter__(self):  # noqa: ANN204
        (module_id, sb), = self.batch.policy_batches.items()
        index = sb[EPISODE_INDEX]
        episodes = torch.unique(index)
        rows = {int(e): torch.nonzero(index == e)[:, 0] for e in episodes}
        data = {k: v for k, v in sb.items()}
        order = [int(e) for e in episodes]
        cache: dict[tuple[int, ...], MultiAgentBatch] = {}
        for _ in range(self.num_epochs):
            perm = self.rng.permutation(len(order))
            for start in range(0, len(order), self.size):
                chosen = tuple(sorted(order[i] for i in perm[start : start + self.size]))
                mb = cache.get(chosen)
                if mb is None:
                    idx = torch.cat([rows[e] for e in chosen])
                    part = tree.map_structure(lambda x, rows=idx: x[rows] if isinstance(x, Tensor) else x, data)
                    mb = cache[chosen] = MultiAgentBatch({module_id: SampleBatch(part)}, env_steps=len(idx))
                yield mb


class GraphPNASLearner(TorchLearner):
    """REINFORCE on whole graphs: loss = ``reinforce_loss(nll, A, objective, beta)`` where nll is
    the normalised negative log-likelihood of each episode's graph and A its advantage (set by the
    algorithm from the replay buffer). ``update(..., episodes_per_minibatch=b, shuffle_seed=s)``
    iterates whole-episode minibatches."""

    def build(self) -> None:
        super().build()
        if self._learner_connector is not None:
            self._learner_connector.prepend(AddEpisodeColumns())
        self.graphpnas = self.config.graphpnas_config()

    def _create_iterator_if_necessary(self, *, training_data: Any, num_epochs: int = 1, episodes_per_minibatch: int | None = None,
                                      shuffle_seed: int | None = None, **kwargs: Any):  # noqa: ANN202
        if episodes_per_minibatch is None:
            return super()._create_iterator_if_necessary(training_data=training_data, num_epochs=num_epochs, **kwargs)
        batch = self._make_batch_if_necessary(training_data=training_data)
        return _EpisodeMinibatches(batch, num_epochs, episodes_per_minibatch, shuffle_seed)

    def compute_loss_for_module(self, *, module_id: str, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]) -> Tensor:
        module = self.module[module_id]
        dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        lp_op, lp_edges = dist.logp_parts(batch[Columns.ACTIONS])
        graphs, graph = torch.unique(batch[EPISODE_INDEX], return_inverse=True)
        G = len(graphs)
        ll = graph_log_likelihood(lp_op, lp_edges, graph, G, num_nodes=batch[Columns.OBS]["num_nodes"])
        adv = torch.zeros(G, dtype=ll["nll_normalised"].dtype).index_put((graph,), batch[EPISODE_ADVANTAGE].to(ll["nll_normalised"].dtype))
        gp = self.graphpnas
        loss = reinforce_loss(ll["nll_normalised"], adv, gp.objective, gp.beta)
        self.metrics.log_value((module_id, "nll_normalised"), ll["nll_normalised"].mean().item(), window=1)
        self.metrics.log_value((module_id, "log_prob"), ll["log_prob"].mean().item(), window=1)
        return loss

    # The generator has ~200 small parameter tensors and a GraphPNAS refit takes hundreds of tiny
    # steps, so per-tensor Python loops dominate: one fused Adam, one foreach norm clip, and one
    # finiteness check (on the global norm) instead of RLlib's per-tensor defaults.
    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        params = self.get_parameters(self.module[module_id])
        lr = (config or self.config).lr
        optimizer = torch.optim.Adam(params, lr=lr, fused=True)
        self.register_optimizer(module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=lr)

    def postprocess_gradients_for_module(
        self, *, module_id: str, config: Any = None, module_gradients_dict: dict[str, Any]
    ) -> dict[str, Any]:
        grads = [g for g in module_gradients_dict.values() if g is not None]
        clip = self.config.grad_clip
        norm = torch.nn.utils.get_total_norm(grads, foreach=True) if grads else torch.tensor(0.0)
        if clip is not None and grads:
            torch.nn.utils.clip_grads_with_norm_(grads, clip, norm, foreach=True)
        self._grad_finite = bool(torch.isfinite(norm))
        self.metrics.log_value((module_id, "gradients_global_norm"), float(norm), window=1)
        return module_gradients_dict

    def apply_gradients(self, gradients_dict: dict[str, Any]) -> None:
        if not getattr(self, "_grad_finite", True):
            logger.warning("GraphPNAS learner: a gradient is NaN or infinite; this update is skipped")
            return
        for optim in self._named_optimizers.values():
            optim.step()

    def reset_generator(self, seed: int) -> None:
        """Fresh generator weights and optimizer state (GraphPNAS's code refits from scratch)."""
        for module in self.module.values():
            module.reset_parameters(seed)
        for optim in self._named_optimizers.values():
            optim.state.clear()


# =============================================================================================== environment side
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


def _design_envs(runner: Any) -> list[SearchDesignEnv]:
    vec = runner.env.unwrapped
    return [e.unwrapped for e in vec.envs]


#: times the explorer's evaluations lost with a dead env runner are sent to the surviving ones
EXPLORER_RETRIES = 3


def _runner_sample(runner: Any, counts: Sequence[int], seeds: Sequence[int], gate: Any) -> tuple[list[dict[str, Any]], Any]:
    """On an env runner: build ``counts[i]`` architectures with the current policy (i: this runner's
    position), seeded; returns the final infos of the episodes and the runner's metrics."""
    i = max(int(runner.worker_index) - 1, 0)
    if counts[i] <= 0:
        return [], runner.get_metrics()
    for env in _design_envs(runner):
        env.gate = gate
    torch.manual_seed(int(seeds[i]))
    episodes = runner.sample(num_episodes=int(counts[i]), explore=True)
    infos = [dict(ep.get_infos(-1)) for ep in episodes if ep.is_done]
    return infos, runner.get_metrics()


def _runner_score(runner: Any, shares: Mapping[int, Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """On an env runner: evaluate its share (``shares[worker index]``) of given (explorer) architectures."""
    env = _design_envs(runner)[0]
    out = []
    for item in shares.get(int(runner.worker_index), ()):
        arch = Architecture.from_dict(item["architecture"])
        reward, info = env.score(arch, {"valid": True, "architecture": item["architecture"], "hash": item["hash"]})
        out.append(info)
    return out


def buffer_episode(builder: Builder, entry: BufferEntry, index: int, advantage: float) -> SingleAgentEpisode:
    """A buffered graph's construction as an RLlib episode (its canonical form, the graph the Tune
    searcher trains on too), tagged with its index in the update and its advantage for the loss."""
    t = trajectory_of(builder, entry)
    T = len(t)
    obs = [{k: t.obs[k][s] for k in OBS_KEYS} for s in range(T)]
    final = PartialGraph(np.zeros((builder.max_nodes,) * 2, dtype=np.int8), list(entry.arch.ops))
    n = entry.arch.num_nodes
    final.matrix[:n, :n] = entry.arch.matrix
    obs.append(builder.observe(final))
    ep = SingleAgentEpisode(
        observations=obs,
        actions=[{"op": np.int64(t.op[s]), "edges": t.edges[s]} for s in range(T)],
        rewards=[0.0] * (T - 1) + [entry.reward],
        terminated=True,
        len_lookback_buffer=0,
    )
    ep.custom_data[EPISODE_INDEX] = index
    ep.custom_data[EPISODE_ADVANTAGE] = advantage
    return ep


# =============================================================================================== config
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
        super().__init__(algo_class=algo_class or REINFORCE)
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


# =============================================================================================== algorithm
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
                lambda runner, c=counts, s=seeds, g=gate: _runner_sample(runner, c, s, g),
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
            return _runner_score(self.env_runner_group.local_env_runner, {0: items})
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
                lambda runner, s=shares: _runner_score(runner, s), local_env_runner=False, remote_worker_ids=ids
            )
            for infos in results:
                for info in infos:
                    done[info["hash"]] = info
            if len(done) < len(items):
                logger.warning("graphpnas-rllib: %d of %d explorer evaluations were lost with their env runner; retrying",
                               len(items) - len(done), len(items))
        lost = [item for item in items if item["hash"] not in done]
        self.seen -= {item["hash"] for item in lost}  # never evaluated: may be proposed again
        return [done[item["hash"]] for item in items if item["hash"] in done]

    # ------------------------------------------------------------------ bookkeeping
    def _record(self, infos: Sequence[dict[str, Any]]) -> None:
        name = "graphpnas-rllib"
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


__all__ = [
    "REINFORCE",
    "REINFORCEConfig",
    "GraphPNASRLModule",
    "GraphPNASLearner",
    "GraphPNASActionDistribution",
    "SearchDesignEnv",
    "EvaluationGate",
    "buffer_episode",
    "pack_distribution",
    "unpack_distribution",
]

"""REINFORCE on whole graphs as an RLlib ``TorchLearner``, and the episodes it learns from (the
replay buffer's graphs, each tagged with its advantage)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import tree
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from torch import Tensor

from nas_ray.construction import OBS_KEYS, Builder, PartialGraph
from nas_ray.errors import ConfigError
from nas_ray.models.graphpnas import graph_log_likelihood
from nas_ray.models.learning import BufferEntry, reinforce_loss, trajectory_of

logger = logging.getLogger(__name__)

#: batch columns the learner connector adds from each episode's ``custom_data``
EPISODE_INDEX, EPISODE_ADVANTAGE = "episode_index", "episode_advantage"


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

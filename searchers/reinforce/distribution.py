"""The action distribution of one construction step (RLlib's ``Distribution``): the next node's op
and its incoming edges, as the GraphPNAS generator's ``NodeDistribution`` defines them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import torch
from ray.rllib.core.distribution.distribution import Distribution
from torch import Tensor

from nas_ray.errors import ConfigError
from nas_ray.models.graphpnas import NodeDistribution


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

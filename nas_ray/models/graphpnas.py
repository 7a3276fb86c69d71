"""The GraphPNAS graph generator (Li et al., "GraphPNAS: Learning Distribution of Good Neural
Architectures via Deep Graph Generative Models"): a GRAN-style GNN that adds one node per step.

One implementation of the maths serves three views:

- **policy view** — ``generator.distribution(obs)`` on a batch of the architecture-design
  environment's observations (``nas_ray.construction``): the joint distribution of the next node's
  op and incoming edges, as ``NodeDistribution``;
- **sampling** — ``generator.sample(space, n)``: many graphs at once, one GNN pass per node index;
- **likelihood view** — ``generator.log_likelihood(batch)`` on whole graphs (every construction step
  of every graph in one GNN pass), exact and normalised.

For the step that adds node ``i``: the propagation graph is the graph so far plus node ``i``
connected to every earlier node, symmetrised; ``S`` attention message-passing layers
(``AttentionMessagePassing``) give node states ``h``. Then

- op: ``p(x_i) = softmax(MLP_beta(h_i))`` over the legal node types;
- edges: a mixture of ``K`` products of Bernoullis, ``theta_kij = sigmoid(MLP_theta(h_i - h_j))_k``,
  ``alpha = softmax(mean_j MLP_alpha(h_i - h_j))`` (mean over the candidate pairs, self-pair
  included, as in the official code).

The environment's masks make the distribution exact on the space: illegal ops get probability 0,
forbidden edges are 0 and required edges 1, and when the op's edge-count limits bind, the mixture
is conditioned on the count (each component's count distribution by dynamic programming; sampling
draws the component from its posterior and then the edges one by one from the conditional). So
the probabilities of all constructible graphs sum to one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

from nas_ray.construction import OBS_KEYS, BatchBuild, Builder, Trajectory
from nas_ray.errors import ConfigError, UnknownName
from nas_ray.graph import Architecture
from nas_ray.spaces.base import SearchSpace


@dataclass(frozen=True)
class GeneratorConfig:
    """Sizes of the generator (defaults: the official code's NB101 / NB201 configs)."""

    hidden: int = 24  # node state and message size H (code: 24 for NB101/NB201; paper: 128)
    layers: int = 7  # message-passing layers S, each with its own weights
    attention_hidden: int = 128  # hidden width of the attention gate MLP
    mixtures: int = 10  # K Bernoulli mixture components per edge row
    op_features: bool = True  # append the one-hot op to existing nodes' input features (paper)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: named generator sizes: the official code's configs and the paper's
GENERATOR_PRESETS = {
    "code": GeneratorConfig(hidden=24),
    "paper": GeneratorConfig(hidden=128),
}


def generator_preset(name: str) -> GeneratorConfig:
    """The named generator sizes (``GENERATOR_PRESETS``)."""
    if name not in GENERATOR_PRESETS:
        raise UnknownName(f"unknown generator preset {name!r}; presets: {', '.join(GENERATOR_PRESETS)}")
    return GENERATOR_PRESETS[name]


class AttentionMessagePassing(MessagePassing):
    """GraphPNAS's gated message passing (paper Eqs. 7-10), one propagation with a GRU update::

        z_ij = [h_i - h_j ; e_ij]
        m_ij = MLP_f(z_ij)        a_ij = sigmoid(MLP_g(z_ij))   (a vector gate)
        h_i <- GRUCell(sum_j a_ij * m_ij, h_i)

    ``e_ij`` is the code's edge feature: the one-hot "existing / new" kind of both endpoints, then
    the node-position vector with -1 at the source's position and +1 at the target's.
    The first layers of MLP_f and MLP_g are one ``Linear(H + 4 + N, A + H)`` on ``z_ij``, held as its
    row blocks and evaluated exactly without forming ``z_ij``: the state and position blocks are
    applied per node and differenced along the edge, the kind blocks (and the bias) are 2-row tables. Inputs: node states
    ``h`` [V, H], ``edge_index`` [2, E] (messages flow source -> target), node ``position`` [V] and
    ``is_new`` [V] (bool).
    """

    def __init__(self, hidden: int, max_nodes: int, attention_hidden: int = 128) -> None:
        super().__init__(aggr="add")
        self.hidden, self.attention_hidden, self.max_nodes = hidden, attention_hidden, max_nodes
        first = nn.Linear(hidden + 4 + max_nodes, attention_hidden + hidden)  # its initialisation, kept in column blocks
        w = first.weight.detach().t()
        self.w_state = nn.Parameter(w[:hidden].contiguous())  # rows of h_i - h_j
        self.w_kind_source = nn.Parameter(w[hidden : hidden + 2].contiguous())  # source existing / new
        self.w_kind_target = nn.Parameter(w[hidden + 2 : hidden + 4].contiguous())  # target existing / new
        self.w_position = nn.Parameter(w[hidden + 4 :].contiguous())  # the -1 / +1 position vector
        self.bias = nn.Parameter(first.bias.detach().clone())
        self.gate_out = nn.Linear(attention_hidden, hidden)
        self.message_out = nn.Linear(hidden, hidden)
        self.gru = nn.GRUCell(hidden, hidden)

    def first_layer(self, z: Tensor) -> Tensor:
        """The shared first layer ``Linear(H + 4 + N, A + H)`` applied to explicit ``z_ij`` (for tests)."""
        w = torch.cat([self.w_state, self.w_kind_source, self.w_kind_target, self.w_position])
        return z @ w + self.bias

    def forward(self, h: Tensor, edge_index: Tensor, position: Tensor, is_new: Tensor) -> Tensor:
        p = torch.addmm(self.w_position.index_select(0, position), h, self.w_state)
        new = is_new.long()
        # z_ij = target_i - source_j: the target's kind rows and the bias go with the target, the
        # source's kind rows (negated) with the source
        target = p + (self.w_kind_target + self.bias).index_select(0, new)
        source = p - self.w_kind_source.index_select(0, new)
        # = self.propagate(edge_index, target=target, source=source), without its per-call introspection
        src, dst = edge_index
        msg = self.message(target.index_select(0, dst), source.index_select(0, src))
        return self.gru(self.aggregate(msg, dst, dim_size=h.shape[0]), h)

    def message(self, target_i: Tensor, source_j: Tensor) -> Tensor:
        z = target_i.sub_(source_j).relu_()
        gate, msg = z.split([self.attention_hidden, self.hidden], dim=-1)
        return torch.sigmoid(self.gate_out(gate)) * self.message_out(msg)

    @staticmethod
    def edge_features(edge_index: Tensor, position: Tensor, is_new: Tensor, max_nodes: int) -> Tensor:
        """The explicit ``e_ij`` [E, 4 + N] (for inspection and tests; ``forward`` never forms it)."""
        src_new, dst_new = is_new[edge_index[0]], is_new[edge_index[1]]
        src, dst = position[edge_index[0]], position[edge_index[1]]
        onehot = nn.functional.one_hot
        return torch.cat(
            [torch.stack([~src_new, src_new, ~dst_new, dst_new], -1).float(), onehot(dst, max_nodes).float() - onehot(src, max_nodes).float()], -1
        )


def _head(inp: int, hidden: int, out: int) -> nn.Sequential:
    """The code's output heads: Linear-ReLU-Linear-ReLU-Linear."""
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))


class PropagationGraph(NamedTuple):
    """The propagation graphs of a batch of steps (see ``GraphPNASGenerator.propagation_graph``)."""

    preds: Tensor  # [V, N] predecessor indicator of each node (0 for new nodes)
    fixed_features: Tensor  # [V, N (+D)] one-hot position (and op), 0 for new nodes
    existing: Tensor  # [V, 1] 1 for existing nodes, 0 for new ones
    edge_index: Tensor  # [2, E]
    position: Tensor  # [V] node index within its step's graph
    is_new: Tensor  # [V] bool
    new_index: Tensor  # [R] the new node of each step
    pair_node: Tensor  # [P] existing node of each (step, candidate predecessor) pair
    pair_step: Tensor  # [P] its step
    num_nodes: Tensor  # [R] existing nodes per step


class NodeDistribution:
    """The joint distribution of the next node's op and incoming edges, for a batch of ``R`` steps.

    ``op_logits`` [R, D] (illegal ops at -inf), ``mix_logits`` [R, K], ``edge_logits`` [R, K, N],
    and the masks ``edge_mask`` / ``edge_required`` [R, N] (bool), ``min_edges`` / ``max_edges``
    [R, D] (long). ``log_prob`` returns the op and edge parts separately; ``sample`` draws
    ``(op [R], edges [R, N])``. Everything is exact under the masks (see the module doc).
    """

    def __init__(
        self,
        op_logits: Tensor,
        mix_logits: Tensor,
        edge_logits: Tensor,
        edge_mask: Tensor,
        edge_required: Tensor,
        min_edges: Tensor,
        max_edges: Tensor,
        temperature: float = 1.0,
    ) -> None:
        if temperature != 1.0:
            op_logits, mix_logits, edge_logits = op_logits / temperature, mix_logits / temperature, edge_logits / temperature
        self.op_logits = op_logits
        self.mix_logits = mix_logits
        self.edge_logits = edge_logits
        self.required = edge_required.bool()
        self.free = edge_mask.bool() & ~self.required
        self.min_edges = min_edges.long()
        self.max_edges = max_edges.long()

    @property
    def batch_size(self) -> int:
        return self.op_logits.shape[0]

    # ------------------------------------------------------------------ pieces
    def _count_limits(self, op: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per step: the free-edge count range [lo, hi] for op, and whether it excludes any count."""
        n_req = self.required.sum(-1)
        n_free = self.free.sum(-1)
        lo = (self.min_edges.gather(1, op[:, None])[:, 0] - n_req).clamp(min=0)
        hi = self.max_edges.gather(1, op[:, None])[:, 0] - n_req
        return lo, hi, (lo > 0) | (hi < n_free)

    def _log_count_prob(self, lo: Tensor, hi: Tensor) -> Tensor:
        """log P_k(lo <= #free edges <= hi) per component [R, K], by dynamic programming over the
        free edges (float64 probabilities)."""
        R, K, N = self.edge_logits.shape
        p = torch.sigmoid(self.edge_logits.double()) * self.free[:, None, :]
        counts = torch.zeros(R, K, N + 1, dtype=torch.float64)
        counts[:, :, 0] = 1.0
        for j in range(N):
            pj = p[:, :, j : j + 1]
            shifted = torch.nn.functional.pad(counts[:, :, :-1], (1, 0))
            counts = counts * (1 - pj) + shifted * pj
        c = torch.arange(N + 1)
        inside = (c[None, :] >= lo[:, None]) & (c[None, :] <= hi[:, None])
        return torch.log((counts * inside[:, None, :]).sum(-1).clamp_min(1e-300)).to(self.edge_logits.dtype)

    # ------------------------------------------------------------------ log-probability
    def log_prob(self, op: Tensor, edges: Tensor) -> tuple[Tensor, Tensor]:
        """``(log p(op), log p(edges | op))`` per step [R] each, for legal actions."""
        op = op.long()
        edges = edges.to(self.edge_logits.dtype)
        lp_op = torch.log_softmax(self.op_logits, -1).gather(1, op[:, None])[:, 0]
        if not bool(self.free.any()):  # every edge fixed by the masks: the row has probability 1
            return lp_op, torch.zeros_like(lp_op)
        log_alpha = torch.log_softmax(self.mix_logits, -1)
        free = self.free[:, None, :].to(edges.dtype)
        e = edges[:, None, :]
        ll = (free * (e * nn.functional.logsigmoid(self.edge_logits) + (1 - e) * nn.functional.logsigmoid(-self.edge_logits))).sum(-1)
        lp_edges = torch.logsumexp(log_alpha + ll, -1)
        lo, hi, active = self._count_limits(op)
        if bool(active.any()):
            log_z = torch.logsumexp(log_alpha + self._log_count_prob(lo, hi), -1)
            lp_edges = lp_edges - torch.where(active, log_z, torch.zeros_like(log_z))
        return lp_op, lp_edges

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``(op [R], edges [R, N] int8)``: the op, then the mixture component (from its
        posterior under the count limits), then the edges."""
        R, K, N = self.edge_logits.shape
        op = torch.multinomial(torch.softmax(self.op_logits.float(), -1), 1, generator=generator)[:, 0]
        log_alpha = torch.log_softmax(self.mix_logits.float(), -1)
        lo, hi, active = self._count_limits(op)
        any_active = bool(active.any())
        if any_active:
            log_alpha = log_alpha + torch.where(active[:, None], self._log_count_prob(lo, hi).float(), torch.zeros_like(log_alpha))
        k = torch.multinomial(torch.softmax(log_alpha, -1), 1, generator=generator)[:, 0]
        theta = torch.sigmoid(self.edge_logits.float()[torch.arange(R), k]) * self.free
        u = torch.rand(R, N, generator=generator)
        if not any_active:
            bits = u < theta
        else:
            bits = self._sample_counted(theta.double(), lo, hi, u.double())
        edges = (bits & self.free) | self.required
        return op, edges.to(torch.int8)

    @staticmethod
    def _sample_counted(theta: Tensor, lo: Tensor, hi: Tensor, u: Tensor) -> Tensor:
        """Independent Bernoulli(theta) bits conditioned on lo <= sum <= hi, drawn edge by edge
        from the exact conditional (backward table of completion probabilities)."""
        R, N = theta.shape
        c = torch.arange(N + 2)
        ok = ((c[None, :] >= lo[:, None]) & (c[None, :] <= hi[:, None])).double()
        ok[:, N + 1] = 0.0
        tables = [ok]  # tables[t][r, c]: P(bits j.. bring count c into range), j = N - t
        for j in range(N - 1, -1, -1):
            nxt = tables[-1]
            up = torch.nn.functional.pad(nxt[:, 1:], (0, 1))
            tables.append(theta[:, j : j + 1] * up + (1 - theta[:, j : j + 1]) * nxt)
        tables.reverse()  # tables[j] for j = 0..N
        count = torch.zeros(R, dtype=torch.long)
        bits = torch.zeros(R, N, dtype=torch.bool)
        rows = torch.arange(R)
        for j in range(N):
            here = tables[j][rows, count].clamp_min(1e-300)
            p1 = theta[:, j] * tables[j + 1][rows, (count + 1).clamp(max=N + 1)] / here
            b = u[:, j] < p1
            bits[:, j] = b
            count = count + b.long()
        return bits

    def greedy(self) -> tuple[Tensor, Tensor]:
        """The most likely op, the most likely component, its edges above 1/2 (ignoring the count
        limits; for display, not for building)."""
        op = self.op_logits.argmax(-1)
        k = self.mix_logits.argmax(-1)
        theta = torch.sigmoid(self.edge_logits[torch.arange(self.batch_size), k])
        return op, (((theta > 0.5) & self.free) | self.required).to(torch.int8)

    def entropy_op(self) -> Tensor:
        logp = torch.log_softmax(self.op_logits, -1)
        return -(logp.exp() * torch.where(torch.isfinite(logp), logp, torch.zeros_like(logp))).sum(-1)


class GraphPNASGenerator(nn.Module):
    """The generator for graphs of at most ``max_nodes`` nodes over ``num_types`` node types.

    >>> from nas_ray.spaces import get_space
    >>> space = get_space("nasbench201")
    >>> gen = GraphPNASGenerator.for_space(space, seed=0)
    >>> archs = gen.sample(space, 4, generator=torch.Generator().manual_seed(0))
    >>> all(space.is_valid(a) for a in archs)
    True
    """

    def __init__(self, max_nodes: int, num_types: int, config: GeneratorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or GeneratorConfig()
        self.max_nodes, self.num_types = int(max_nodes), int(num_types)
        N, D, H = self.max_nodes, self.num_types, config.hidden
        extra = N + (D if config.op_features else 0)
        if H - extra < 1:
            raise ConfigError(
                f"hidden={H} leaves no room for the node features of {N} nodes and {D} node types "
                f"(needs hidden > {extra}); raise hidden or set op_features=False"
            )
        self.predecessor_proj = nn.Linear(N, H - extra)
        self.layers = nn.ModuleList(
            AttentionMessagePassing(H, N, config.attention_hidden) for _ in range(config.layers)
        )
        K = config.mixtures
        self.theta_head = _head(H, H, K)
        self.alpha_head = _head(H, H, K)
        self.op_head = _head(H, H, D)

    @classmethod
    def for_space(cls, space: SearchSpace, config: GeneratorConfig | str | None = None, *, seed: int | None = None) -> GraphPNASGenerator:
        """A generator sized for ``space`` (config: a ``GeneratorConfig`` or a preset name); ``seed``
        fixes the initial weights."""
        if isinstance(config, str):
            config = generator_preset(config)
        if seed is None:
            return cls(space.max_nodes, len(space.node_types), config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(space.max_nodes, len(space.node_types), config)

    # ------------------------------------------------------------------ the GNN pass
    def propagation_graph(self, adjacency: Tensor, ops: Tensor, num_nodes: Tensor) -> PropagationGraph:
        """Every step's propagation graph as one disjoint union (no parameters involved, so the
        likelihood view computes it once per batch): existing nodes 0..n-1 of each step plus its new
        node n; the graph so far plus the new node joined to every existing node, both directions."""
        R, N = num_nodes.shape[0], self.max_nodes
        n = num_nodes.long()
        sizes = n + 1
        offsets = torch.cumsum(sizes, 0) - sizes
        step_of = torch.repeat_interleave(torch.arange(R), sizes)
        local = torch.arange(int(sizes.sum())) - offsets[step_of]
        is_new = local == n[step_of]
        existing = (~is_new)[:, None].float()
        local_c = local.clamp(max=N - 1)
        preds = adjacency[step_of, :, local_c].float() * existing
        fixed = [nn.functional.one_hot(local_c, N).float()]
        if self.config.op_features:
            op_ids = ops[step_of, local_c].long().clamp(max=self.num_types - 1)
            fixed.append(nn.functional.one_hot(op_ids, self.num_types).float())
        r_e, u_e, v_e = (adjacency > 0).nonzero(as_tuple=True)
        r_n, j_n = (torch.arange(N)[None, :] < n[:, None]).nonzero(as_tuple=True)
        src_l = torch.cat([u_e, j_n])
        dst_l = torch.cat([v_e, n[r_n]])
        steps = torch.cat([r_e, r_n])
        src = torch.cat([src_l, dst_l])
        dst = torch.cat([dst_l, src_l])
        steps = torch.cat([steps, steps])
        edge_index = torch.stack([src + offsets[steps], dst + offsets[steps]])  # messages flow src -> dst
        return PropagationGraph(
            preds, torch.cat(fixed, -1) * existing, existing, edge_index, local, is_new, offsets + n, offsets[r_n] + j_n, r_n, n
        )

    def forward(
        self, adjacency: Tensor, ops: Tensor, num_nodes: Tensor, graph: PropagationGraph | None = None, *, edges: bool = True
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Raw logits for the node added at each step: op [R, D], mixture [R, K], edges [R, K, N].
        With ``edges=False`` (no step has a free edge, as in NB201) the edge heads are skipped and
        their logits are zeros."""
        g = graph if graph is not None else self.propagation_graph(adjacency, ops, num_nodes)
        # node features: [proj(predecessor indicator); one-hot(position); one-hot(op)], zero for new nodes
        h = torch.cat([self.predecessor_proj(g.preds) * g.existing, g.fixed_features], -1)
        for i, layer in enumerate(self.layers):
            if i:
                h = torch.relu(h)
            h = layer(h, g.edge_index, g.position, g.is_new)
        n = g.num_nodes
        R, N, K = n.shape[0], self.max_nodes, self.config.mixtures
        h_new = h.index_select(0, g.new_index)
        if not edges:
            return self.op_head(h_new), torch.zeros(R, K, dtype=h.dtype), torch.zeros(R, K, N, dtype=h.dtype)
        diff = h_new.index_select(0, g.pair_step) - h.index_select(0, g.pair_node)
        j_p = g.pair_node - (g.new_index - n).index_select(0, g.pair_step)
        edge_logits = torch.zeros(R, N, K, dtype=h.dtype)
        edge_logits = edge_logits.index_put((g.pair_step, j_p), self.theta_head(diff))
        alpha_sum = torch.zeros(R, K, dtype=h.dtype).index_add(0, g.pair_step, self.alpha_head(diff))
        alpha_self = self.alpha_head(torch.zeros(1, h.shape[1], dtype=h.dtype))  # the self-pair (diff 0)
        mix_logits = (alpha_sum + alpha_self) / (n[:, None] + 1).to(h.dtype)
        return self.op_head(h_new), mix_logits, edge_logits.transpose(1, 2)

    def distribution(
        self, obs: dict[str, Tensor], temperature: float = 1.0, *, dedupe: bool = False, graph: PropagationGraph | None = None
    ) -> NodeDistribution:
        """The policy view: the next node's distribution for a batch of observations (tensors with a
        leading batch dimension, keys as in ``nas_ray.construction``). With ``dedupe`` the GNN runs
        once per distinct partial graph (exact; sampling many graphs shares most prefixes)."""
        adjacency, ops, num_nodes = obs["adjacency"], obs["ops"], obs["num_nodes"]
        inverse = None
        if dedupe and len(num_nodes) > 1:
            key = torch.cat([adjacency.flatten(1).to(torch.int8), ops.to(torch.int8), num_nodes.to(torch.int8)[:, None]], 1)
            key = key.numpy() if self.max_nodes < 127 and self.num_types < 127 else None
            if key is not None:
                seen: dict[bytes, int] = {}
                inverse = np.fromiter((seen.setdefault(row.tobytes(), len(seen)) for row in key), np.int64, len(key))
                if len(seen) < len(key):
                    idx = torch.from_numpy(np.unique(inverse, return_index=True)[1])
                    adjacency, ops, num_nodes = adjacency[idx], ops[idx], num_nodes[idx]
                else:
                    inverse = None
        free = bool((obs["edge_mask"].bool() & ~obs["edge_required"].bool()).any())
        op_logits, mix_logits, edge_logits = self(adjacency, ops, num_nodes, None if inverse is not None else graph, edges=free)
        if inverse is not None:
            inv = torch.from_numpy(inverse.reshape(-1))
            op_logits, mix_logits, edge_logits = op_logits[inv], mix_logits[inv], edge_logits[inv]
        op_logits = op_logits.masked_fill(~obs["op_mask"].bool(), float("-inf"))
        return NodeDistribution(
            op_logits, mix_logits, edge_logits, obs["edge_mask"], obs["edge_required"], obs["min_edges"], obs["max_edges"], temperature
        )

    # ------------------------------------------------------------------ likelihood view
    def log_likelihood(self, batch: TrajectoryBatch) -> dict[str, Tensor]:
        """Per graph: ``log_prob`` (exact log P(G)), ``edge`` and ``op`` parts, and ``nll_normalised``
        (the official code's loss: edge NLL / sum_i (i+1) + 0.5 * op NLL / #nodes generated)."""
        if batch.graph_cache is None or batch.graph_cache[0] != (self.max_nodes, self.num_types, self.config.op_features):
            o = batch.obs
            key = (self.max_nodes, self.num_types, self.config.op_features)
            batch.graph_cache = (key, self.propagation_graph(o["adjacency"], o["ops"], o["num_nodes"]))
        dist = self.distribution(batch.obs, graph=batch.graph_cache[1])
        lp_op, lp_edges = dist.log_prob(batch.op, batch.edges)
        return graph_log_likelihood(lp_op, lp_edges, batch.graph, batch.num_graphs, batch.edge_norm, batch.op_norm)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(
        self,
        space: SearchSpace,
        num: int,
        *,
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
        builder: Builder | None = None,
    ) -> list[Architecture]:
        """``num`` graphs of ``space``, built together: one GNN pass per node index."""
        builder = builder or Builder(space)
        if (builder.max_nodes, builder.num_types) != (self.max_nodes, self.num_types):
            raise ConfigError(
                f"this generator builds graphs of {self.max_nodes} nodes over {self.num_types} node types; "
                f"space {space.name} has {builder.max_nodes} and {builder.num_types}"
            )
        build = BatchBuild(builder, num)
        while len(build.live):
            obs = {k: torch.from_numpy(v) for k, v in build.observation().items()}
            op, edges = self.distribution(obs, temperature, dedupe=True).sample(generator)
            build.apply(op.numpy(), edges.numpy())
        return build.architectures()


def graph_log_likelihood(
    lp_op: Tensor,
    lp_edges: Tensor,
    graph: Tensor,
    num_graphs: int,
    edge_norm: Tensor | None = None,
    op_norm: Tensor | None = None,
    num_nodes: Tensor | None = None,
) -> dict[str, Tensor]:
    """Per-step log-probabilities (``NodeDistribution.log_prob``) summed per graph (``graph``: the
    graph index of each step), and the official code's normalised NLL: edge NLL / sum_i (i + 1) +
    0.5 * op NLL / #steps. The norms are per graph; without them they are computed from the steps'
    ``num_nodes`` (nodes before the step)."""
    if edge_norm is None or op_norm is None:
        if num_nodes is None:
            raise ConfigError("graph_log_likelihood needs the norms or the steps' num_nodes")
        ones = torch.ones_like(lp_op)
        op_norm = torch.zeros(num_graphs, dtype=lp_op.dtype).index_add_(0, graph, ones)
        edge_norm = torch.zeros(num_graphs, dtype=lp_op.dtype).index_add_(0, graph, num_nodes.to(lp_op.dtype) + 1)
    op_sum = torch.zeros(num_graphs, dtype=lp_op.dtype).index_add(0, graph, lp_op)
    edge_sum = torch.zeros(num_graphs, dtype=lp_op.dtype).index_add(0, graph, lp_edges)
    return {
        "log_prob": op_sum + edge_sum,
        "op": op_sum,
        "edge": edge_sum,
        "nll_normalised": -edge_sum / edge_norm - 0.5 * op_sum / op_norm,
    }


@dataclass
class TrajectoryBatch:
    """The construction steps of ``num_graphs`` graphs, concatenated (the likelihood view's input)."""

    obs: dict[str, Tensor]
    op: Tensor
    edges: Tensor
    graph: Tensor  # step -> graph index
    edge_norm: Tensor  # per graph: sum over its steps of (new node index + 1)
    op_norm: Tensor  # per graph: number of steps
    num_graphs: int
    graph_cache: tuple[Any, PropagationGraph] | None = None  # the propagation graphs, built on first use

    @classmethod
    def from_trajectories(cls, trajectories: Sequence[Trajectory]) -> TrajectoryBatch:
        obs = {k: torch.from_numpy(np.concatenate([t.obs[k] for t in trajectories])) for k in OBS_KEYS}
        lengths = torch.tensor([len(t) for t in trajectories])
        graph = torch.repeat_interleave(torch.arange(len(trajectories)), lengths)
        n = obs["num_nodes"].to(torch.float32)
        edge_norm = torch.zeros(len(trajectories)).index_add_(0, graph, n + 1)
        return cls(
            obs,
            torch.from_numpy(np.concatenate([t.op for t in trajectories])),
            torch.from_numpy(np.concatenate([t.edges for t in trajectories])),
            graph,
            edge_norm,
            lengths.to(torch.float32),
            len(trajectories),
        )

    @classmethod
    def from_architectures(cls, space: SearchSpace, archs: Sequence[Architecture], builder: Builder | None = None) -> TrajectoryBatch:
        builder = builder or Builder(space)
        return cls.from_trajectories([builder.trajectory(a) for a in archs])


__all__ = [
    "AttentionMessagePassing",
    "GeneratorConfig",
    "GENERATOR_PRESETS",
    "GraphPNASGenerator",
    "NodeDistribution",
    "graph_log_likelihood",
    "TrajectoryBatch",
]

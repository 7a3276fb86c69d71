"""SVGe / VS-GAE: a GNN encoder and a DGMG-style sequential GNN decoder (Lukasik et al., "Smooth
Variational Graph Embeddings for Efficient Neural Architecture Search").

Encoder: node-type embeddings, ``num_layers`` rounds of ``BidirectionalGRUConv`` (separate
weights per round), then two gated-sum readouts, one for the posterior mean and one for the
log-variance.

Decoder: a node at a time. With node states ``h`` of the graph built so far:

1. GraphProp: ``num_layers`` rounds of the decoder's own ``BidirectionalGRUConv`` update all ``h``
   (the states persist across steps) and two gated-sum readouts give ``h_G`` and ``h_G^init``; a
   single-node graph is not propagated and both readouts are the ungated projection of its state;
2. AddNode: ``logits = MLP([h_G; z])`` over the node types;
3. InitNode: ``h_new = MLP([E_d(type); h_G^init; z])``;
4. AddEdges: ``s_v = MLP([h_v; h_new; h_G; z])`` for every existing node ``v``, edge ``v -> new`` with
   probability ``sigmoid(s_v)``; the first created node is joined to the input without a decision.

Generation stops when the output type is drawn, or at ``max_nodes`` nodes. The start state is
``h_0 = MLP([E_d(input); z])``. Every MLP is Linear-ReLU-Linear with the widths of the official code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import scatter

from nas_ray.models.graph_vae import GraphBatch, GraphVAE, split_counts

__all__ = ["SVGe", "BidirectionalGRUConv", "GatedSumReadout"]

EDGE_WEIGHT = 0.5  # a: weight of the edge loss against the node loss per step (code: alpha = .5)


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))


class BidirectionalGRUConv(MessagePassing):
    """One round of VS-GAE message passing over the edges and their reverses::

        m_v = sum_{u -> v} W_f [h_u; h_v] + sum_{v -> w} W_r [h_w; h_v]
        h_v <- GRUCell(m_v, h_v)

    with ``W_f``, ``W_r`` Linear(2d -> 2d) (bias included) and a GRUCell(2d -> d). The sums are taken
    before the linear maps, which is the same by linearity and cheaper:
    ``sum_{u -> v} W [h_u; h_v] + b = W [sum_u h_u; indeg_v h_v] + indeg_v b``.

    >>> conv = BidirectionalGRUConv(16)
    >>> conv(torch.randn(3, 16), torch.tensor([[0, 1], [1, 2]])).shape
    torch.Size([3, 16])
    """

    def __init__(self, node_dim: int) -> None:
        super().__init__(aggr="add")
        self.msg = nn.Linear(2 * node_dim, 2 * node_dim)
        self.msg_rev = nn.Linear(2 * node_dim, 2 * node_dim)
        self.gru = nn.GRUCell(2 * node_dim, node_dim)

    def forward(self, h: Tensor, edge_index: Tensor) -> Tensor:
        x = torch.cat([h, h.new_ones(h.shape[0], 1)], dim=-1)  # the ones column counts the edges
        incoming = self.propagate(edge_index, x=x)  # [sum_{u -> v} h_u; indeg_v]
        outgoing = self.propagate(edge_index.flip(0), x=x)  # [sum_{v -> w} h_w; outdeg_v]
        return self.gru(self._summed_messages(self.msg, incoming, h) + self._summed_messages(self.msg_rev, outgoing, h), h)

    def dense(self, h: Tensor, adj: Tensor) -> Tensor:
        """The same round on a dense batch: states ``h`` [B, k, d], adjacency ``adj`` [B, k, k]
        (``adj[b, u, v] = 1``: edge u -> v). For graphs of a few nodes a batched matrix product is
        much cheaper than building an edge list and scattering."""
        b, k, d = h.shape
        x = torch.cat([h, h.new_ones(b, k, 1)], dim=-1)
        incoming = torch.bmm(adj.transpose(1, 2), x).reshape(b * k, d + 1)
        outgoing = torch.bmm(adj, x).reshape(b * k, d + 1)
        flat = h.reshape(b * k, d)
        m = self._summed_messages(self.msg, incoming, flat) + self._summed_messages(self.msg_rev, outgoing, flat)
        return self.gru(m, flat).view(b, k, d)

    @staticmethod
    def _summed_messages(linear: nn.Linear, aggregated: Tensor, h: Tensor) -> Tensor:
        total, count = aggregated[:, :-1], aggregated[:, -1:]
        return F.linear(torch.cat([total, count * h], dim=-1), linear.weight) + count * linear.bias


class GatedSumReadout(nn.Module):
    """``h_G = sum_v Linear(h_v) * sigmoid(Linear'(h_v))`` (the gated-sum graph readout)."""

    def __init__(self, node_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(node_dim, out_dim)
        self.gate = nn.Linear(node_dim, 1)

    def node_terms(self, h: Tensor) -> Tensor:
        return self.proj(h) * torch.sigmoid(self.gate(h))

    def forward(self, h: Tensor, graph: Tensor, num_graphs: int) -> Tensor:
        """Readout of the nodes ``h`` [V, d] of graphs ``graph`` [V] (sparse form)."""
        return scatter(self.node_terms(h), graph, dim=0, dim_size=num_graphs, reduce="sum")


class _GNN(nn.Module):
    """``num_layers`` rounds of ``BidirectionalGRUConv``, each with its own weights (dropout before each)."""

    def __init__(self, node_dim: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(BidirectionalGRUConv(node_dim) for _ in range(num_layers))
        self.dropout = dropout

    def forward(self, h: Tensor, edge_index: Tensor) -> Tensor:
        for layer in self.layers:
            h = layer(F.dropout(h, p=self.dropout, training=self.training), edge_index)
        return h

    def dense(self, h: Tensor, adj: Tensor) -> Tensor:
        for layer in self.layers:
            h = layer.dense(F.dropout(h, p=self.dropout, training=self.training), adj)
        return h


class _Decoder(nn.Module):
    """The decoder's modules (its own GNN, type table E_d, f_start, AddNode, InitNode, AddEdges) and
    the operations of one generation step on a dense batch of equally large partial graphs."""

    def __init__(self, num_types: int, node_dim: int, latent_dim: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        d, g = node_dim, latent_dim
        self.type_embedding = nn.Embedding(num_types, d)  # E_d
        self.gnn = _GNN(d, num_layers, dropout)
        self.readout = GatedSumReadout(d, g)  # h_G
        self.readout_init = GatedSumReadout(d, g)  # h_G^init
        self.start = _mlp(d + g, d + g, d)  # f_start([E_d(input); z])
        self.add_node = _mlp(2 * g, g, num_types)  # [h_G; z]
        self.init_node = _mlp(d + 2 * g, d + g, d)  # [E_d(type); h_G^init; z]
        self.add_edges = _mlp(2 * d + 2 * g, d + g, 1)  # [h_v; h_new; h_G; z]

    def initial_state(self, z: Tensor) -> Tensor:
        """[B, 1, d]: the input node's state."""
        inp = self.type_embedding(torch.zeros(z.shape[0], dtype=torch.long, device=z.device))
        return self.start(torch.cat([inp, z], dim=-1)).unsqueeze(1)

    def graph_prop(self, h: Tensor, adj: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Propagate the states ``h`` [B, k, d] over the partial graphs ``adj`` [B, k, k]; returns the
        new states and the readouts ``h_G``, ``h_G^init`` [B, g]."""
        if h.shape[1] == 1:  # nothing to propagate; ungated readouts
            return h, self.readout.proj(h[:, 0]), self.readout_init.proj(h[:, 0])
        h = self.gnn.dense(h, adj)
        return h, self.readout.node_terms(h).sum(1), self.readout_init.node_terms(h).sum(1)

    def new_node(self, types: Tensor, h_G_init: Tensor, z: Tensor) -> Tensor:
        return self.init_node(torch.cat([self.type_embedding(types), h_G_init, z], dim=-1))

    def edge_logits(self, h: Tensor, h_new: Tensor, h_G: Tensor, z: Tensor) -> Tensor:
        """[B, k]: logit of the edge from each existing node into the new one."""
        k = h.shape[1]
        rest = torch.cat([h_new, h_G, z], dim=-1).unsqueeze(1).expand(-1, k, -1)
        return self.add_edges(torch.cat([h, rest], dim=-1)).squeeze(-1)


class SVGe(GraphVAE):
    """The SVGe (= VS-GAE) graph VAE: bidirectional GNN encoder, sequential GNN decoder.

    Sizes default to the paper's (node states 250, latent 56, 2 GNN rounds, no dropout).

    >>> from nas_ray import get_space
    >>> from nas_ray.models.graph_vae import GraphCodec
    >>> space = get_space("enas-macro")
    >>> codec = GraphCodec(space)
    >>> model = SVGe(codec.num_types, codec.max_nodes, latent_dim=8, node_dim=16)
    >>> batch = codec.batch([space.sample(np.random.default_rng(0)) for _ in range(4)])
    >>> model.loss(batch)["loss"].shape, len(model.decode(torch.zeros(3, 8)))
    (torch.Size([]), 3)
    """

    name = "svge"
    recon_reduction = "mean"

    def __init__(
        self, num_types: int, max_nodes: int, latent_dim: int = 56, node_dim: int = 250, num_layers: int = 2, dropout: float = 0.0
    ) -> None:
        super().__init__(num_types, max_nodes, latent_dim)
        self.node_dim = int(node_dim)
        self.num_layers = int(num_layers)
        self.dropout = float(dropout)
        d, g = self.node_dim, self.latent_dim
        # encoder
        self.type_embedding = nn.Embedding(num_types, d)
        self.encoder_gnn = _GNN(d, self.num_layers, self.dropout)
        self.readout_mu = GatedSumReadout(d, g)
        self.readout_logvar = GatedSumReadout(d, g)
        # decoder
        self.decoder = _Decoder(num_types, d, g, self.num_layers, self.dropout)

    def hyperparameters(self) -> dict[str, Any]:
        return {"num_types": self.num_types, "max_nodes": self.max_nodes, "latent_dim": self.latent_dim,
                "node_dim": self.node_dim, "num_layers": self.num_layers, "dropout": self.dropout}

    def encode(self, batch: GraphBatch) -> tuple[Tensor, Tensor]:
        # dense: padding nodes have no edges, so they never reach a real node, and the readouts skip them
        mask = batch.node_mask.unsqueeze(-1).to(batch.adj.dtype)
        h = self.encoder_gnn.dense(self.type_embedding(batch.types.clamp(min=0)), batch.adj)
        return (self.readout_mu.node_terms(h) * mask).sum(1), (self.readout_logvar.node_terms(h) * mask).sum(1)

    def reconstruction_nll(self, batch: GraphBatch, z: Tensor) -> Tensor:
        """Teacher-forced loss per graph: for the step that creates node ``k`` (``k >= 1``),
        ``2 [(1 - a) CE(type_k) + a mean_{v<k} BCE(edge v -> k)]`` (the first step only
        ``2 (1 - a) CE``), summed over the steps ``k < num_nodes``. The graphs still growing take
        each step together; a graph leaves the batch once its last node is made."""
        dec, a = self.decoder, EDGE_WEIGHT
        adj = batch.adj.to(z.dtype)
        h = dec.initial_state(z)
        nll = z.new_zeros(len(batch))
        active = torch.arange(len(batch), device=z.device)
        for k in range(1, int(batch.num_nodes.max())):
            growing = batch.num_nodes[active] > k
            if not bool(growing.all()):
                active, h = active[growing], h[growing]
            za, target = z[active], batch.types[active, k]
            h, h_G, h_G_init = dec.graph_prop(h, adj[active, :k, :k])
            node_logits = dec.add_node(torch.cat([h_G, za], dim=-1))
            step = 2 * (1 - a) * F.cross_entropy(node_logits, target, reduction="none")
            h_new = dec.new_node(target, h_G_init, za)
            if k > 1:  # the first node's edge from the input is given
                s = dec.edge_logits(h, h_new, h_G, za)
                step = step + 2 * a * F.binary_cross_entropy_with_logits(s, adj[active, :k, k], reduction="none").mean(1)
            nll = nll.index_add(0, active, step)
            h = torch.cat([h, h_new.unsqueeze(1)], dim=1)
        return nll

    @torch.no_grad()
    def decode(
        self, z: Tensor, *, stochastic: bool = True, generator: torch.Generator | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Generate one graph per row of ``z``, all rows stepping together until each draws the output
        type (or reaches ``max_nodes`` nodes). Stochastic: types ~ Categorical, edges ~ Bernoulli, drawn
        with ``generator``; otherwise argmax types and edges with probability > 0.5."""
        dec, n_max = self.decoder, self.max_nodes
        b = z.shape[0]
        types = torch.zeros(b, n_max, dtype=torch.long, device=z.device)
        adj = torch.zeros(b, n_max, n_max, dtype=z.dtype, device=z.device)
        sizes = torch.ones(b, dtype=torch.long, device=z.device)
        active = torch.arange(b, device=z.device)
        h = dec.initial_state(z)
        for k in range(1, n_max):
            if active.numel() == 0:
                break
            za = z[active]
            h, h_G, h_G_init = dec.graph_prop(h, adj[active, :k, :k])
            logits = dec.add_node(torch.cat([h_G, za], dim=-1))
            if stochastic:
                new_types = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator).squeeze(1)
            else:
                new_types = logits.argmax(dim=-1)
            h_new = dec.new_node(new_types, h_G_init, za)
            if k == 1:
                edges = torch.ones(active.numel(), 1, dtype=z.dtype, device=z.device)
            else:
                p = torch.sigmoid(dec.edge_logits(h, h_new, h_G, za))
                edges = torch.bernoulli(p, generator=generator) if stochastic else (p > 0.5).to(z.dtype)
            types[active, k] = new_types
            adj[active, :k, k] = edges
            sizes[active] = k + 1
            h = torch.cat([h, h_new.unsqueeze(1)], dim=1)
            going = new_types != self.output_type
            active, h = active[going], h[going]
        types_np, adj_np, sizes_np = types.cpu().numpy(), adj.cpu().numpy().astype(np.int8), sizes.cpu().numpy()
        return [(types_np[i, :n].copy(), adj_np[i, :n, :n].copy()) for i, n in enumerate(sizes_np)]

    @torch.no_grad()
    def decode_counts(
        self, z: Tensor, counts: int | Tensor, *, generator: torch.Generator | None = None
    ) -> list[list[tuple[np.ndarray, np.ndarray, int]]]:
        """``decode(stochastic=True)`` run ``counts`` times per row of ``z``, with one row per distinct
        partial graph: the new node's type splits a row's count multinomially, then each edge into it
        splits the count binomially (the edge probabilities of a step do not depend on each other)."""
        dec, n_max, dev = self.decoder, self.max_nodes, z.device
        p = z.shape[0]
        origin = torch.arange(p, device=dev)
        cnt = torch.as_tensor(counts, dtype=torch.long, device=dev).expand(p).clone()
        types = torch.zeros(p, n_max, dtype=torch.long, device=dev)
        adj = torch.zeros(p, n_max, n_max, dtype=z.dtype, device=dev)
        h = dec.initial_state(z)
        out: list[list[tuple[np.ndarray, np.ndarray, int]]] = [[] for _ in range(p)]

        def finish(rows: Tensor, size: int) -> None:
            t, a = types[rows].cpu().numpy(), adj[rows].to(torch.int8).cpu().numpy()
            for i, o, c in zip(range(len(rows)), origin[rows].tolist(), cnt[rows].tolist()):
                out[o].append((t[i, :size].copy(), a[i, :size, :size].copy(), int(c)))

        for k in range(1, n_max):
            if origin.numel() == 0:
                break
            za = z[origin]
            h, h_G, h_G_init = dec.graph_prop(h, adj[:, :k, :k])
            split = split_counts(cnt, torch.softmax(dec.add_node(torch.cat([h_G, za], dim=-1)), dim=-1), generator)
            rows, new_types = split.nonzero(as_tuple=True)
            origin, cnt, h, types, adj = origin[rows], split[rows, new_types], h[rows], types[rows], adj[rows]
            h_G, h_G_init, za = h_G[rows], h_G_init[rows], za[rows]
            h_new = dec.new_node(new_types, h_G_init, za)
            types[:, k] = new_types
            if k == 1:  # the first node's edge from the input is given
                adj[:, 0, 1] = 1.0
            else:
                probs = torch.sigmoid(dec.edge_logits(h, h_new, h_G, za))  # [R, k]
                for v in range(k):
                    yes = split_counts(cnt, torch.stack([probs[:, v], 1 - probs[:, v]], dim=1), generator)
                    rows, outcome = yes.nonzero(as_tuple=True)
                    origin, cnt, probs, h, h_new = origin[rows], yes[rows, outcome], probs[rows], h[rows], h_new[rows]
                    types, adj, new_types = types[rows], adj[rows], new_types[rows]
                    adj[:, v, k] = (outcome == 0).to(adj.dtype)
            h = torch.cat([h, h_new.unsqueeze(1)], dim=1)
            ended = new_types == self.output_type
            if k == n_max - 1:
                ended = torch.ones_like(ended)
            if bool(ended.any()):
                finish(ended.nonzero(as_tuple=True)[0], k + 1)
                keep = ~ended
                origin, cnt, h, types, adj = origin[keep], cnt[keep], h[keep], types[keep], adj[keep]
        return out


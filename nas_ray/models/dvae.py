"""D-VAE (Zhang et al. 2019) and DVAE-EMB (D-VAE with learnable operation embeddings).

Asynchronous message passing: a vertex's state is computed only after all its predecessors', by a
GRU whose input is the vertex's type (one-hot, or a learned embedding in DVAE-EMB) and whose hidden
state is the gated sum of its predecessors' states, each with a one-hot of the predecessor's index
appended. Sizes and the code's behaviour follow the D-VAE and DVAE-EMB papers and their official code: hidden 501, latent 56,
bidirectional encoder, a decoder GRU of its own that shares the forward gate and mapper, types
predicted from the last vertex's state, edges decided from the newest vertex back to vertex 0 with
the new vertex's state recomputed after every decision, and the output vertex wired to every loose
end.

All graphs of a batch are processed together, one vertex index at a time (the graphs are in
topological order, so vertex ``v`` of every graph only depends on lower indices).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas_ray.models.graph_vae import PAD, GraphBatch, GraphVAE, split_counts

__all__ = ["DVAE", "DVAEEmb"]


class DVAE(GraphVAE):
    """D-VAE over graphs of ``num_types`` node types (0 = input, last = output) and at most
    ``max_nodes`` vertices.

    ``embedding_dim=None`` feeds one-hot types to the GRUs (D-VAE); an int feeds a learned
    ``nn.Embedding(num_types, embedding_dim)`` shared by both encoder directions and the decoder
    (DVAE-EMB, d_op = 3). The type head of the decoder still predicts ``num_types`` logits.
    """

    name = "dvae"
    recon_reduction = "sum"

    def __init__(
        self,
        num_types: int,
        max_nodes: int,
        latent_dim: int = 56,
        hidden_dim: int = 501,
        *,
        bidirectional: bool = True,
        vertex_ids: bool = True,
        embedding_dim: int | None = None,
    ) -> None:
        super().__init__(num_types, max_nodes, latent_dim)
        self.hidden_dim = hs = int(hidden_dim)
        self.bidirectional = bool(bidirectional)
        self.vertex_ids = bool(vertex_ids)
        self.embedding_dim = None if embedding_dim is None else int(embedding_dim)
        if self.embedding_dim is None:
            self.embedding = None
            xs = num_types
        else:
            self.embedding = nn.Embedding(num_types, self.embedding_dim)
            nn.init.normal_(self.embedding.weight)  # O ~ N(0, 1) at the first iteration
            xs = self.embedding_dim
        vs = hs + (max_nodes if self.vertex_ids else 0)
        self.gru_forward = nn.GRUCell(xs, hs)
        self.gate_forward = nn.Linear(vs, hs)
        self.mapper_forward = nn.Linear(vs, hs, bias=False)
        if self.bidirectional:
            self.gru_backward = nn.GRUCell(xs, hs)
            self.gate_backward = nn.Linear(vs, hs)
            self.mapper_backward = nn.Linear(vs, hs, bias=False)
            self.unify = nn.Linear(2 * hs, hs)
        self.fc_mu = nn.Linear(hs, latent_dim)
        self.fc_logvar = nn.Linear(hs, latent_dim)
        self.fc_init = nn.Linear(latent_dim, hs)
        self.gru_decoder = nn.GRUCell(xs, hs)
        self.add_vertex = nn.Sequential(nn.Linear(hs, 2 * hs), nn.ReLU(), nn.Linear(2 * hs, num_types))
        self.add_edge = nn.Sequential(nn.Linear(2 * hs, 4 * hs), nn.ReLU(), nn.Linear(4 * hs, 1))
        self.register_buffer("_ids", torch.eye(max_nodes), persistent=False)

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "num_types": self.num_types,
            "max_nodes": self.max_nodes,
            "latent_dim": self.latent_dim,
            "hidden_dim": self.hidden_dim,
            "bidirectional": self.bidirectional,
            "vertex_ids": self.vertex_ids,
            "embedding_dim": self.embedding_dim,
        }

    # ------------------------------------------------------------------ pieces
    def _x(self, types: Tensor) -> Tensor:
        """GRU input of vertices of ``types`` (padding gets the input type's, and is masked later)."""
        types = types.clamp(min=0)
        if self.embedding is None:
            return F.one_hot(types, self.num_types).to(self._ids.dtype)
        return self.embedding(types)

    @staticmethod
    def _gru(cell: nn.GRUCell, gi: Tensor, h: Tensor) -> Tensor:
        """``cell(x, h)`` given the input projection ``gi = W_ih x + b_ih`` (torch's GRUCell equations).

        A vertex's input is fixed while its hidden state (the predecessors' gated sum) changes with
        every edge decision, so the input side is projected once per vertex instead of once per call."""
        gh = F.linear(h, cell.weight_hh, cell.bias_hh)
        i_r, i_z, i_n = gi.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(i_r + h_r)
        u = torch.sigmoid(i_z + h_z)
        return torch.lerp(torch.tanh(i_n + r * h_n), h, u)  # (1 - u) * n + u * h

    @staticmethod
    def _input_projection(cell: nn.GRUCell, x: Tensor) -> Tensor:
        return F.linear(x, cell.weight_ih, cell.bias_ih)

    def _message(self, state: Tensor, index: int, gate: nn.Linear, mapper: nn.Linear) -> Tensor:
        """The gated message [B, hs] that vertex ``index`` (state [B, hs]) sends its neighbours.

        ``W [h; onehot(index)] = W_h h + W[:, hs + index]``: the vertex-id one-hot is a column of the
        weight, added instead of concatenated."""
        g = F.linear(state, gate.weight[:, :self.hidden_dim], gate.bias)
        m = F.linear(state, mapper.weight[:, :self.hidden_dim])
        if self.vertex_ids:
            g = g + gate.weight[:, self.hidden_dim + index]
            m = m + mapper.weight[:, self.hidden_dim + index]
        return torch.sigmoid(g) * m

    def _edge_parts(self, state: Tensor) -> Tensor:
        """The edge head's first layer applied to a candidate source's state (computed once per vertex)."""
        return F.linear(state, self.add_edge[0].weight[:, :self.hidden_dim], self.add_edge[0].bias)

    def _edge_logit(self, source_part: Tensor, h_new: Tensor) -> Tensor:
        hidden = torch.relu(source_part + F.linear(h_new, self.add_edge[0].weight[:, self.hidden_dim:]))
        return self.add_edge[2](hidden).squeeze(-1)

    # ------------------------------------------------------------------ encoder
    def encode(self, batch: GraphBatch) -> tuple[Tensor, Tensor]:
        types, adj = batch.types, batch.adj
        b, n = types.shape
        x = self._x(types)
        zero = x.new_zeros(b, self.hidden_dim)
        gi = self._input_projection(self.gru_forward, x)  # [B, n, 3hs], every vertex at once
        fwd: list[Tensor] = []
        msgs: list[Tensor] = []  # each vertex's gated message, computed once its state is final
        for v in range(n):
            h_in = torch.bmm(adj[:, None, :v, v], torch.stack(msgs, 1)).squeeze(1) if v else zero
            fwd.append(self._gru(self.gru_forward, gi[:, v], h_in))
            msgs.append(self._message(fwd[v], v, self.gate_forward, self.mapper_forward))
        last = (batch.num_nodes - 1).clamp(min=0)
        h_graph = torch.stack(fwd, 1)[torch.arange(b, device=types.device), last]
        if self.bidirectional:
            gi = self._input_projection(self.gru_backward, x)
            back: list[Tensor] = []  # messages of vertices n-1, n-2, ... (reverse order)
            for v in range(n - 1, -1, -1):
                if v == n - 1:
                    h_in = zero
                else:
                    h_in = torch.bmm(adj[:, None, v, v + 1:].flip(-1), torch.stack(back, 1)).squeeze(1)
                state = self._gru(self.gru_backward, gi[:, v], h_in)
                back.append(self._message(state, v, self.gate_backward, self.mapper_backward))
            h_graph = self.unify(torch.cat([h_graph, state], dim=-1))  # state: vertex 0's backward state
        return self.fc_mu(h_graph), self.fc_logvar(h_graph)

    # ------------------------------------------------------------------ decoder, teacher forcing
    def reconstruction_nll(self, batch: GraphBatch, z: Tensor) -> Tensor:
        """Teacher-forced NLL per graph (the published decoder's likelihood, computed in bulk).

        Vertex ``v``'s state before its decision on the edge from ``vi`` (deciding ``v-1`` down to 0)
        is ``GRU(x_v, sum_{u > vi} A[u, v] m_u)``; under teacher forcing every one of these partial
        sums is known, so the ``v + 1`` GRU states of a vertex (``v`` for the edge decisions, the
        last one its final state) come from one GRU call on a suffix cumulative sum. Only the
        vertex-to-vertex recursion (a vertex's message needs its final state) stays sequential; the
        type and edge heads then run once over every step of every graph."""
        types, adj = batch.types, batch.adj
        b, n = types.shape
        hs = self.hidden_dim
        gi = self._input_projection(self.gru_decoder, self._x(types))  # [B, n, 3hs]
        h0 = torch.tanh(self.fc_init(z))
        states = [self._gru(self.gru_decoder, gi[:, 0], h0)]
        msgs = [self._message(states[0], 0, self.gate_forward, self.mapper_forward)]
        deciding: list[Tensor] = []  # per v: [B, v, hs], the states before the decisions on vi = 0..v-1
        for v in range(1, n):
            weighted = adj[:, :v, v, None] * torch.stack(msgs, 1)  # [B, v, hs]
            # partial[:, k] = sum_{u >= k} A[u, v] m_u for k = 0..v (partial[:, v] = 0)
            partial = torch.cat([weighted.flip(1).cumsum(1).flip(1), weighted.new_zeros(b, 1, hs)], dim=1)
            h = self._gru(self.gru_decoder, gi[:, v, None].expand(b, v + 1, 3 * hs), partial)
            deciding.append(h[:, 1:])  # the decision on vi sees the sum over u > vi
            states.append(h[:, 0])
            msgs.append(self._message(h[:, 0], v, self.gate_forward, self.mapper_forward))
        stacked = torch.stack(states, 1)  # [B, n, hs]
        active = (torch.arange(1, n, device=z.device)[None, :] < batch.num_nodes[:, None]).to(z.dtype)  # [B, n-1]
        logits = self.add_vertex(stacked[:, :-1])  # vertex v's type from vertex v-1's state
        type_nll = F.cross_entropy(logits.reshape(-1, self.num_types), types[:, 1:].clamp(min=0).reshape(-1),
                                   reduction="none").view(b, n - 1)
        # edges: every pair (vi < v), source part from vi's final state, new part from the deciding state
        src, dst = torch.triu_indices(n, n, 1, device=z.device)
        pair_new = torch.cat(deciding, dim=1)  # [B, n(n-1)/2], ordered by v then vi: same as (dst, src) sorted
        order = torch.argsort(dst * n + src)
        src, dst = src[order], dst[order]
        parts = self._edge_parts(stacked)  # [B, n, 4hs]
        w_new = self.add_edge[0].weight[:, hs:]
        hidden = torch.relu(parts[:, src] + F.linear(pair_new, w_new))
        scores = self.add_edge[2](hidden).squeeze(-1)  # [B, pairs]
        edge_nll = F.binary_cross_entropy_with_logits(scores, adj[:, src, dst], reduction="none")
        edge_active = active[:, dst - 1]
        return (type_nll * active).sum(1) + (edge_nll * edge_active).sum(1)

    # ------------------------------------------------------------------ decoder, generation
    @torch.no_grad()
    def decode(self, z: Tensor, *, stochastic: bool = True, generator: torch.Generator | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        dev = z.device
        r, n, out = z.shape[0], self.max_nodes, self.output_type

        def uniform(*shape: int) -> Tensor:
            gdev = generator.device if generator is not None else dev
            return torch.rand(*shape, generator=generator, device=gdev).to(dev)

        types = torch.full((r, n), PAD, dtype=torch.long, device=dev)
        adj = torch.zeros((r, n, n), device=dev)
        types[:, 0] = 0
        sizes = torch.ones(r, dtype=torch.long, device=dev)
        done = torch.zeros(r, dtype=torch.bool, device=dev)
        h0 = torch.tanh(self.fc_init(z))
        cell = self.gru_decoder
        states = [self._gru(cell, self._input_projection(cell, self._x(types[:, 0])), h0)]
        msgs = [self._message(states[0], 0, self.gate_forward, self.mapper_forward)]
        parts = [self._edge_parts(states[0])]
        w_new = self.add_edge[0].weight[:, self.hidden_dim:]
        for v in range(1, n):
            if bool(done.all()):
                break
            if v == n - 1:
                new = torch.full((r,), out, dtype=torch.long, device=dev)
            else:
                probs = torch.softmax(self.add_vertex(states[v - 1]), dim=-1)
                if stochastic:
                    new = (probs.cumsum(-1) < uniform(r, 1)).sum(-1).clamp(max=self.num_types - 1)
                else:
                    new = probs.argmax(-1)
            live = ~done
            types[live, v] = new[live]
            sizes[live] = v + 1
            ends = live & (new == out)
            if bool(ends.any()):  # the output vertex takes every loose end and finishes the graph
                loose = (adj[:, :v, :v].sum(-1) == 0) & ends[:, None]
                adj[:, :v, v] = torch.where(loose, 1.0, adj[:, :v, v])
            deciding = live & ~ends
            gi = self._input_projection(cell, self._x(new))
            h_in = z.new_zeros(r, self.hidden_dim)
            h_new = self._gru(cell, gi, h_in)
            for vi in range(v - 1, -1, -1):
                hidden = torch.relu(parts[vi] + F.linear(h_new, w_new))
                p = torch.sigmoid(self.add_edge[2](hidden).squeeze(-1))
                edge = (uniform(r) < p) if stochastic else (p > 0.5)
                edge = edge & deciding
                adj[:, vi, v] = torch.where(edge, 1.0, adj[:, vi, v])
                if bool(edge.any()):  # no edge anywhere: the sum, and so the state, is unchanged
                    h_in = h_in + edge[:, None].to(h_in.dtype) * msgs[vi]
                    h_new = self._gru(cell, gi, h_in)
            states.append(h_new)
            msgs.append(self._message(h_new, v, self.gate_forward, self.mapper_forward))
            parts.append(self._edge_parts(h_new))
            done = done | ends
        types_np = types.cpu().numpy()
        adj_np = adj.to(torch.int8).cpu().numpy()
        sizes_np = sizes.cpu().numpy()
        return [(types_np[i, :k].copy(), adj_np[i, :k, :k].copy()) for i, k in enumerate(sizes_np)]


    @torch.no_grad()
    def decode_counts(self, z: Tensor, counts: int | Tensor, *, generator: torch.Generator | None = None) -> list[list[tuple[np.ndarray, np.ndarray, int]]]:
        """``decode(stochastic=True)`` run ``counts`` times per row of ``z``, with one row per distinct
        partial graph: a vertex type splits a row's count multinomially, every edge decision (newest
        source first, the vertex's state recomputed after each) binomially."""
        dev, n, out_type, hs = z.device, self.max_nodes, self.output_type, self.hidden_dim
        p = z.shape[0]
        cell = self.gru_decoder
        origin = torch.arange(p, device=dev)
        cnt = torch.as_tensor(counts, dtype=torch.long, device=dev).expand(p).clone()
        types = torch.full((p, n), PAD, dtype=torch.long, device=dev)
        types[:, 0] = 0
        adj = torch.zeros((p, n, n), device=dev)
        first = self._gru(cell, self._input_projection(cell, self._x(types[:, 0])), torch.tanh(self.fc_init(z)))
        states = first[:, None]
        msgs = self._message(first, 0, self.gate_forward, self.mapper_forward)[:, None]
        parts = self._edge_parts(first)[:, None]
        w_new = self.add_edge[0].weight[:, hs:]
        result: list[list[tuple[np.ndarray, np.ndarray, int]]] = [[] for _ in range(p)]
        for v in range(1, n):
            if origin.numel() == 0:
                break
            if v == n - 1:
                new = torch.full((origin.numel(),), out_type, dtype=torch.long, device=dev)
            else:
                split = split_counts(cnt, torch.softmax(self.add_vertex(states[:, v - 1]), dim=-1), generator)
                rows, new = split.nonzero(as_tuple=True)
                cnt = split[rows, new]
                origin, types, adj, states, msgs, parts = origin[rows], types[rows], adj[rows], states[rows], msgs[rows], parts[rows]
            types[:, v] = new
            ends = new == out_type
            if bool(ends.any()):  # the output vertex takes every loose end and finishes the graph
                loose = (adj[:, :v, :v].sum(-1) == 0) & ends[:, None]
                adj[:, :v, v] = torch.where(loose, 1.0, adj[:, :v, v])
            gi = self._input_projection(cell, self._x(new))
            h_in = z.new_zeros(origin.numel(), hs)
            h_new = self._gru(cell, gi, h_in)
            for vi in range(v - 1, -1, -1):
                prob = torch.sigmoid(self.add_edge[2](torch.relu(parts[:, vi] + F.linear(h_new, w_new))).squeeze(-1))
                prob = torch.where(ends, 0.0, prob)  # the output vertex decides nothing
                split = split_counts(cnt, torch.stack([prob, 1 - prob], dim=1), generator)
                rows, outcome = split.nonzero(as_tuple=True)
                cnt = split[rows, outcome]
                origin, types, adj, states, msgs, parts = origin[rows], types[rows], adj[rows], states[rows], msgs[rows], parts[rows]
                gi, h_in, h_new, ends = gi[rows], h_in[rows], h_new[rows], ends[rows]
                edge = outcome == 0
                if bool(edge.any()):
                    adj[:, vi, v] = torch.where(edge, 1.0, adj[:, vi, v])
                    h_in = h_in + edge[:, None].to(h_in.dtype) * msgs[:, vi]
                    h_new = torch.where(edge[:, None], self._gru(cell, gi, h_in), h_new)
            states = torch.cat([states, h_new[:, None]], 1)
            msgs = torch.cat([msgs, self._message(h_new, v, self.gate_forward, self.mapper_forward)[:, None]], 1)
            parts = torch.cat([parts, self._edge_parts(h_new)[:, None]], 1)
            if bool(ends.any()):
                idx = ends.nonzero(as_tuple=True)[0]
                t_np, a_np = types[idx].cpu().numpy(), adj[idx].to(torch.int8).cpu().numpy()
                for i, (o, c) in enumerate(zip(origin[idx].tolist(), cnt[idx].tolist())):
                    result[o].append((t_np[i, :v + 1].copy(), a_np[i, :v + 1, :v + 1].copy(), int(c)))
                keep = ~ends
                origin, cnt, types, adj, states, msgs, parts = (origin[keep], cnt[keep], types[keep], adj[keep], states[keep],
                                                                 msgs[keep], parts[keep])
        return result


class DVAEEmb(DVAE):
    """DVAE-EMB: D-VAE with a learned 3-dimensional operation embedding (Chatzianastasis et al. 2021)."""

    name = "dvae-emb"

    def __init__(self, num_types: int, max_nodes: int, latent_dim: int = 56, hidden_dim: int = 501, *,
                 bidirectional: bool = True, vertex_ids: bool = True, embedding_dim: int | None = 3) -> None:
        super().__init__(num_types, max_nodes, latent_dim, hidden_dim, bidirectional=bidirectional,
                         vertex_ids=vertex_ids, embedding_dim=3 if embedding_dim is None else embedding_dim)

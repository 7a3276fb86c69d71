"""D-VAE (Zhang et al. 2019) and DVAE-EMB (D-VAE with learnable operation embeddings).

Asynchronous message passing: a vertex's state is computed only after all its predecessors', by a
GRU whose input is the vertex's type (one-hot, or a learned embedding in DVAE-EMB) and whose hidden
state is the gated sum of its predecessors' states, each with a one-hot of the predecessor's index
appended. Sizes and the code's behaviour follow METHODS.md §1.2–1.3: hidden 501, latent 56,
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

from nas_ray.models.graph_vae import PAD, GraphBatch, GraphVAE

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

    def _message(self, state: Tensor, index: int, gate: nn.Linear, mapper: nn.Linear) -> Tensor:
        """The gated message [B, hs] that vertex ``index`` (state [B, hs]) sends its neighbours."""
        if self.vertex_ids:
            state = torch.cat([state, self._ids[index].expand(state.shape[0], self.max_nodes)], dim=-1)
        return torch.sigmoid(gate(state)) * mapper(state)

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
        fwd: list[Tensor] = []
        msgs: list[Tensor] = []  # each vertex's gated message, computed once its state is final
        for v in range(n):
            h_in = torch.einsum("bu,buh->bh", adj[:, :v, v], torch.stack(msgs, 1)) if v else zero
            fwd.append(self.gru_forward(x[:, v], h_in))
            msgs.append(self._message(fwd[v], v, self.gate_forward, self.mapper_forward))
        last = (batch.num_nodes - 1).clamp(min=0)
        h_graph = torch.stack(fwd, 1)[torch.arange(b, device=types.device), last]
        if self.bidirectional:
            bwd: list[Tensor] = [zero] * n
            back: list[Tensor] = []  # messages of vertices n-1, n-2, ... (reverse order)
            for v in range(n - 1, -1, -1):
                if v == n - 1:
                    h_in = zero
                else:
                    h_in = torch.einsum("bu,buh->bh", adj[:, v, v + 1:].flip(-1), torch.stack(back, 1))
                bwd[v] = self.gru_backward(x[:, v], h_in)
                back.append(self._message(bwd[v], v, self.gate_backward, self.mapper_backward))
            h_graph = self.unify(torch.cat([h_graph, bwd[0]], dim=-1))
        return self.fc_mu(h_graph), self.fc_logvar(h_graph)

    # ------------------------------------------------------------------ decoder, teacher forcing
    def reconstruction_nll(self, batch: GraphBatch, z: Tensor) -> Tensor:
        types, adj = batch.types, batch.adj
        b, n = types.shape
        x = self._x(types)
        nll = z.new_zeros(b)
        h0 = torch.tanh(self.fc_init(z))
        states = [self.gru_decoder(x[:, 0], h0)]
        msgs = [self._message(states[0], 0, self.gate_forward, self.mapper_forward)]
        parts = [self._edge_parts(states[0])]
        w_new = self.add_edge[0].weight[:, self.hidden_dim:]
        for v in range(1, n):
            active = (batch.num_nodes > v).to(z.dtype)
            logits = self.add_vertex(states[v - 1])
            nll = nll + active * F.cross_entropy(logits, types[:, v].clamp(min=0), reduction="none")
            h_in = z.new_zeros(b, self.hidden_dim)
            h_new = self.gru_decoder(x[:, v], h_in)
            for vi in range(v - 1, -1, -1):
                target = adj[:, vi, v]
                score = self.add_edge[2](torch.relu(parts[vi] + F.linear(h_new, w_new))).squeeze(-1)
                nll = nll + active * F.binary_cross_entropy_with_logits(score, target, reduction="none")
                h_in = h_in + target[:, None] * msgs[vi]
                h_new = self.gru_decoder(x[:, v], h_in)
            states.append(h_new)
            msgs.append(self._message(h_new, v, self.gate_forward, self.mapper_forward))
            parts.append(self._edge_parts(h_new))
        return nll

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
        states = [self.gru_decoder(self._x(types[:, 0]), h0)]
        msgs = [self._message(states[0], 0, self.gate_forward, self.mapper_forward)]
        parts = [self._edge_parts(states[0])]
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
            xv = self._x(new)
            h_in = z.new_zeros(r, self.hidden_dim)
            h_new = self.gru_decoder(xv, h_in)
            for vi in range(v - 1, -1, -1):
                p = torch.sigmoid(self._edge_logit(parts[vi], h_new))
                edge = (uniform(r) < p) if stochastic else (p > 0.5)
                edge = edge & deciding
                adj[:, vi, v] = torch.where(edge, 1.0, adj[:, vi, v])
                h_in = h_in + edge[:, None].to(h_in.dtype) * msgs[vi]
                h_new = self.gru_decoder(xv, h_in)
            states.append(h_new)
            msgs.append(self._message(h_new, v, self.gate_forward, self.mapper_forward))
            parts.append(self._edge_parts(h_new))
            done = done | ends
        types_np = types.cpu().numpy()
        adj_np = adj.to(torch.int8).cpu().numpy()
        sizes_np = sizes.cpu().numpy()
        return [(types_np[i, :k].copy(), adj_np[i, :k, :k].copy()) for i, k in enumerate(sizes_np)]


class DVAEEmb(DVAE):
    """DVAE-EMB: D-VAE with a learned 3-dimensional operation embedding (METHODS.md §1.3)."""

    name = "dvae-emb"

    def __init__(self, num_types: int, max_nodes: int, latent_dim: int = 56, hidden_dim: int = 501, *,
                 bidirectional: bool = True, vertex_ids: bool = True, embedding_dim: int | None = 3) -> None:
        super().__init__(num_types, max_nodes, latent_dim, hidden_dim, bidirectional=bidirectional,
                         vertex_ids=vertex_ids, embedding_dim=3 if embedding_dim is None else embedding_dim)

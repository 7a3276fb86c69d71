"""What every graph variational autoencoder shares: the tensor form of a batch of architectures,
the codec between a search space and that form, the validity rules of the published code, and the
model interface (encode, teacher-forced loss, stochastic decode) that training, metrics and the
latent-space searcher rely on.

Node types are the space's ``node_types`` in order: index 0 is ``input``, the last index is
``output`` and the interior operations lie between. A batch is dense and padded to the space's
``max_nodes`` (padding type ``PAD``), with ``adj[b, src, dst] = 1`` for an edge ``src -> dst``.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from nas_ray.errors import ConfigError, InvalidArchitecture
from nas_ray.graph import Architecture
from nas_ray.spaces.base import SearchSpace

PAD = -1  # type index of padding nodes

__all__ = ["PAD", "GraphBatch", "GraphCodec", "GraphVAE", "is_valid_dag", "graph_key", "split_counts"]


@dataclass
class GraphBatch:
    """Architectures as padded tensors: ``types`` [B, N] (``PAD`` beyond ``num_nodes``), ``adj``
    [B, N, N] float (``adj[b, i, j] = 1``: edge i -> j, strictly upper-triangular) and ``num_nodes`` [B]."""

    types: Tensor
    adj: Tensor
    num_nodes: Tensor

    def __len__(self) -> int:
        return int(self.types.shape[0])

    @property
    def max_nodes(self) -> int:
        return int(self.types.shape[1])

    def to(self, device: torch.device | str) -> GraphBatch:
        return GraphBatch(self.types.to(device), self.adj.to(device), self.num_nodes.to(device))

    def index(self, idx: Tensor | Sequence[int]) -> GraphBatch:
        idx = torch.as_tensor(idx, dtype=torch.long, device=self.types.device)
        return GraphBatch(self.types[idx], self.adj[idx], self.num_nodes[idx])

    @property
    def node_mask(self) -> Tensor:
        """[B, N] bool: which positions hold a real node."""
        n = self.types.shape[1]
        return torch.arange(n, device=self.types.device)[None, :] < self.num_nodes[:, None]


def is_valid_dag(types: Sequence[int], adj: np.ndarray, num_types: int) -> bool:
    """D-VAE's ``is_valid_DAG`` on index-typed graphs: acyclic (guaranteed by the upper-triangular
    form, checked anyway), exactly one input-type and one output-type node, no node but the input
    without in-edges and none but the output without out-edges."""
    types = np.asarray(types)
    adj = np.asarray(adj)
    n = len(types)
    if n < 2 or adj.shape != (n, n) or np.any(np.tril(adj)):
        return False
    if np.any(types < 0) or np.any(types >= num_types):
        return False
    out_type = num_types - 1
    if (types == 0).sum() != 1 or (types == out_type).sum() != 1:
        return False
    indeg, outdeg = adj.sum(0), adj.sum(1)
    for v in range(n):
        if indeg[v] == 0 and types[v] != 0:
            return False
        if outdeg[v] == 0 and types[v] != out_type:
            return False
    return True


def split_counts(counts: Tensor, probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """[R, K] multinomial draws: row ``r`` splits ``counts[r]`` samples over ``K`` outcomes with
    probabilities ``probs[r]`` (conditional binomials, so it runs batched on any device)."""
    probs = probs.to(torch.float64)
    remaining = counts.to(torch.float64)
    left = torch.ones_like(remaining)
    out = torch.zeros(probs.shape, dtype=torch.float64, device=probs.device)
    for j in range(probs.shape[1] - 1):
        p = (probs[:, j] / left.clamp_min(1e-300)).clamp(0.0, 1.0)
        gdev = generator.device if generator is not None else probs.device
        draw = torch.binomial(remaining.to(gdev), p.to(gdev), generator=generator).to(probs.device)
        out[:, j] = draw
        remaining = remaining - draw
        left = left - probs[:, j]
    out[:, -1] = remaining
    return out.round().to(torch.long)


def graph_key(types: Sequence[int], adj: np.ndarray) -> str:
    """An index-based string of a graph (the metrics' notion of "the same DAG": same size, same type
    at every index, same predecessor set at every index), not an isomorphism class."""
    types = [int(t) for t in types]
    adj = np.asarray(adj)
    preds = ";".join(",".join(str(j) for j in np.flatnonzero(adj[:, i])) for i in range(len(types)))
    return " ".join(map(str, types)) + "|" + preds


class GraphCodec:
    """Converts a space's architectures to and from the index-typed, padded form of the models.

    >>> from nas_ray import get_space
    >>> codec = GraphCodec(get_space("nasbench201"))
    >>> codec.num_types, codec.max_nodes
    (7, 8)
    """

    def __init__(self, space: SearchSpace) -> None:
        if space.max_nodes is None:
            raise ConfigError(f"{space.name}: a graph VAE needs a space with a node limit (max_nodes)")
        self.space = space
        self.node_types = tuple(space.node_types)
        self.num_types = len(self.node_types)
        self.max_nodes = int(space.max_nodes)
        self._index = {t: i for i, t in enumerate(self.node_types)}

    @property
    def output_type(self) -> int:
        return self.num_types - 1

    def types_of(self, arch: Architecture) -> list[int]:
        try:
            return [self._index[op] for op in arch.ops]
        except KeyError as exc:
            raise InvalidArchitecture(f"{self.space.name}: unknown op {exc.args[0]!r}; this space has {', '.join(self.space.ops)}") from None

    def batch(self, archs: Sequence[Architecture], device: torch.device | str = "cpu") -> GraphBatch:
        b, n = len(archs), self.max_nodes
        types = torch.full((b, n), PAD, dtype=torch.long)
        adj = torch.zeros((b, n, n), dtype=torch.float32)
        sizes = torch.zeros(b, dtype=torch.long)
        for i, arch in enumerate(archs):
            k = arch.num_nodes
            if k > n:
                raise InvalidArchitecture(f"{self.space.name}: {k} nodes exceed the space's {n}")
            types[i, :k] = torch.tensor(self.types_of(arch))
            adj[i, :k, :k] = torch.from_numpy(arch.matrix.astype(np.float32))
            sizes[i] = k
        return GraphBatch(types.to(device), adj.to(device), sizes.to(device))

    def key(self, arch: Architecture) -> str:
        return graph_key(self.types_of(arch), arch.matrix)

    def is_valid_dag(self, types: Sequence[int], adj: np.ndarray) -> bool:
        return is_valid_dag(types, adj, self.num_types)

    def to_arch(self, types: Sequence[int], adj: np.ndarray) -> Architecture | None:
        """The architecture of a decoded graph, or None when it is not a valid DAG of this space."""
        if not self.is_valid_dag(types, adj):
            return None
        try:
            arch = Architecture([self.node_types[int(t)] for t in types], np.asarray(adj, dtype=np.int8))
        except InvalidArchitecture:
            return None
        return arch if self.space.is_valid(arch) else None


class GraphVAE(nn.Module, abc.ABC):
    """The interface of nas-ray's graph VAEs.

    Subclasses implement ``encode`` (posterior mean and log-variance), ``reconstruction_nll``
    (per-graph negative log-likelihood under teacher forcing) and ``decode`` (a graph per latent
    row, sampled or greedy), and set ``recon_reduction``: ``"sum"`` over the batch (D-VAE's code) or
    ``"mean"`` (VS-GAE/SVGe's code). The KL term is summed over the batch in both, as in the code.
    """

    #: registry name (``dvae``, ``dvae-emb``, ``svge``, ...)
    name: ClassVar[str] = ""
    recon_reduction: ClassVar[str] = "sum"

    def __init__(self, num_types: int, max_nodes: int, latent_dim: int) -> None:
        super().__init__()
        if num_types < 3:
            raise ConfigError(f"a graph VAE needs at least 3 node types (input, an op, output), got {num_types}")
        if max_nodes < 2:
            raise ConfigError(f"max_nodes must be at least 2, got {max_nodes}")
        self.num_types = int(num_types)
        self.max_nodes = int(max_nodes)
        self.latent_dim = int(latent_dim)

    @property
    def output_type(self) -> int:
        return self.num_types - 1

    @abc.abstractmethod
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's keyword arguments (plain JSON values): ``type(self)(**hp)`` rebuilds it."""

    @abc.abstractmethod
    def encode(self, batch: GraphBatch) -> tuple[Tensor, Tensor]:
        """Posterior mean and log-variance, each [B, latent_dim]."""

    @abc.abstractmethod
    def reconstruction_nll(self, batch: GraphBatch, z: Tensor) -> Tensor:
        """Per-graph negative log-likelihood [B] of ``batch`` decoded from ``z`` (teacher forcing)."""

    @abc.abstractmethod
    def decode(self, z: Tensor, *, stochastic: bool = True, generator: torch.Generator | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """One graph per row of ``z``: (types [n] int64, adjacency [n, n] int8)."""

    def decode_counts(self, z: Tensor, counts: int | Tensor, *, generator: torch.Generator | None = None) -> list[list[tuple[np.ndarray, np.ndarray, int]]]:
        """``counts`` stochastic decodes of every row of ``z``, as the distinct graphs of each row with
        their multiplicities: ``out[i] = [(types, adj, count), ...]`` with the counts summing to
        ``counts[i]``.

        The default repeats each row and decodes every copy. Subclasses override it with a decoder
        that keeps one row per distinct partial graph and splits its count at every sampled decision
        (a multinomial over the types, a binomial per edge): the same distribution, with work that
        grows with the number of distinct graphs instead of the number of decodes, which is what makes
        the 500 decodes per point of latent-space BO cheap once the decoder is confident."""
        counts = torch.as_tensor(counts, dtype=torch.long).expand(z.shape[0]).cpu()
        decoded = self.decode(z.repeat_interleave(counts.to(z.device), dim=0), stochastic=True, generator=generator)
        out: list[list[tuple[np.ndarray, np.ndarray, int]]] = []
        start = 0
        for c in counts.tolist():
            seen: dict[str, list] = {}
            for types, adj in decoded[start:start + c]:
                key = graph_key(types, adj)
                if key in seen:
                    seen[key][2] += 1
                else:
                    seen[key] = [types, adj, 1]
            out.append([(t, a, n) for t, a, n in seen.values()])
            start += c
        return out

    def reparameterize(self, mu: Tensor, logvar: Tensor, eps_scale: float = 0.01) -> Tensor:
        """``mu + eps_scale * eps * sigma`` in training mode, ``mu`` in eval mode (the code's behaviour)."""
        if not self.training:
            return mu
        return mu + eps_scale * torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def loss(self, batch: GraphBatch, *, beta: float = 0.005, eps_scale: float = 0.01, reduction: str = "code") -> dict[str, Tensor]:
        """The VAE objective: ``loss`` (to minimise), ``recon`` and ``kl`` (both as reduced into
        ``loss``), and the posterior ``mu``, ``logvar`` and sample ``z``.

        ``reduction="code"``: the published codes' reductions (KL summed over the batch, the
        reconstruction as ``recon_reduction``); ``"mean"``: both averaged over the graphs of the batch."""
        if reduction not in ("code", "mean"):
            raise ConfigError(f"reduction must be 'code' or 'mean', got {reduction!r}")
        mu, logvar = self.encode(batch)
        z = self.reparameterize(mu, logvar, eps_scale)
        nll = self.reconstruction_nll(batch, z)
        kl_graph = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1)
        if reduction == "mean":
            recon, kl = nll.mean(), kl_graph.mean()
        else:
            recon, kl = (nll.sum() if self.recon_reduction == "sum" else nll.mean()), kl_graph.sum()
        return {"loss": recon + beta * kl, "recon": recon, "kl": kl, "mu": mu, "logvar": logvar, "z": z}

"""NASGEM's kernel-guided graph encoder and its efficiency-score predictor (Cheng et al., NASGEM).

An architecture enters as a flat vector: the strict upper triangle of its adjacency matrix (padded to
the space's node limit) followed by the one-hot op of every node (``AdjacencyFeatures``). The
encoder E is an MLP to a ``d``-dimensional embedding and the decoder D mirrors it; both are trained on
pairs of graphs so that the cosine similarity of two embeddings matches the Weisfeiler-Lehman kernel
similarity of the two graphs (``nas_ray.models.wl_kernel``), plus a reconstruction term:

    L = (cos(E(x_i), E(x_j)) - S_wl(G_i, G_j))^2 + BCE(D(E(x_i)), x_i) + BCE(D(E(x_j)), x_j)

With ``similarity_weight=0`` the same network is a plain MLP autoencoder (the paper's MLP-AE
baseline). The encoder is trained once per space, then frozen; ``ScorePredictor`` (d -> 64 -> 32 ->
1, MSE) maps embeddings to scores, and the ``nasgem`` searcher picks the best-predicted of many
sampled, unevaluated cells ("bootstrap optimisation").

Defaults where the paper is silent: d = 32, hidden 256/128, WL
h = 3 (normalised, directed), BCE reconstruction with weight 1, batch 256, Adam 1e-3, 50,000 pairs
and 10,000 iterations. Pairs: the paper draws random graphs of equal size; in a search space random
pairs are almost all dissimilar, so half the pairs here are a graph and a 1-3-step mutation of it
(``mutation_pairs``), which covers the high-similarity range the search actually ranks in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nas_ray.errors import CheckpointError, ConfigError
from nas_ray.graph import Architecture
from nas_ray.models.numerics import flush_denormals
from nas_ray.spaces import SearchSpace

logger = logging.getLogger(__name__)

FORMAT = "nas-ray-nasgem-encoder"
VERSION = 1


class AdjacencyFeatures:
    """Architectures as flat float vectors: strict upper triangle of the padded adjacency, then the
    one-hot op of each node (all zeros for padding). ``dim`` = n(n-1)/2 + n * num_types.

    >>> from nas_ray import get_space
    >>> AdjacencyFeatures(get_space("nasbench201")).dim
    84
    """

    def __init__(self, space: SearchSpace) -> None:
        if space.max_nodes is None:
            raise ConfigError(f"{space.name}: NASGEM's encoder needs a space with a node limit (max_nodes)")
        self.space = space
        self.node_types = tuple(space.node_types)
        self.max_nodes = int(space.max_nodes)
        self._index = {t: i for i, t in enumerate(self.node_types)}
        self._rows, self._cols = np.triu_indices(self.max_nodes, 1)
        self.num_edges = len(self._rows)
        self.dim = self.num_edges + self.max_nodes * len(self.node_types)

    def __call__(self, archs: Sequence[Architecture]) -> np.ndarray:
        n, t = self.max_nodes, len(self.node_types)
        mats = np.zeros((len(archs), n, n), dtype=np.float32)
        types = np.full((len(archs), n), t, dtype=np.int64)  # t = padding -> the extra, dropped column
        index = self._index
        for i, arch in enumerate(archs):
            k = arch.num_nodes
            if k > n:
                raise ConfigError(f"{self.space.name}: {k} nodes exceed the space's {n}")
            mats[i, :k, :k] = arch.matrix
            try:
                types[i, :k] = [index[op] for op in arch.ops]
            except KeyError as exc:
                raise ConfigError(f"{self.space.name}: unknown op {exc.args[0]!r}; this space has {', '.join(self.node_types)}") from None
        onehot = np.eye(t + 1, dtype=np.float32)[types][:, :, :t].reshape(len(archs), n * t)
        return np.concatenate([mats[:, self._rows, self._cols], onehot], axis=1)


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class KernelGuidedEncoder(nn.Module):
    """E: input -> hidden... -> d (ReLU MLP); D mirrors it and outputs logits (sigmoid = probabilities)."""

    def __init__(self, input_dim: int, embed_dim: int = 32, hidden: Sequence[int] = (256, 128)) -> None:
        super().__init__()
        self.input_dim, self.embed_dim, self.hidden = int(input_dim), int(embed_dim), tuple(int(h) for h in hidden)
        self.encoder = _mlp([self.input_dim, *self.hidden, self.embed_dim])
        self.decoder = _mlp([self.embed_dim, *reversed(self.hidden), self.input_dim])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings: cosine similarity is then a dot product, and the reconstruction term
        cannot grow the norm (a large norm shrinks the cosine's gradient, and the similarity stops
        training: RMSE 0.16 instead of 0.08 on NB201 after 10k iterations with the raw output)."""
        return F.normalize(self.encoder(x), dim=1)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def hyperparameters(self) -> dict[str, Any]:
        return {"input_dim": self.input_dim, "embed_dim": self.embed_dim, "hidden": list(self.hidden)}

    def losses(self, xa: torch.Tensor, xb: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(similarity loss, reconstruction loss, cosine similarities) of a batch of pairs."""
        za, zb = self(xa), self(xb)
        cos = (za * zb).sum(dim=1)
        sim = ((cos - target) ** 2).mean()
        rec = F.binary_cross_entropy_with_logits(self.decoder(za), xa) + F.binary_cross_entropy_with_logits(self.decoder(zb), xb)
        return sim, rec, cos


@dataclass
class EncoderConfig:
    """How a NASGEM encoder is trained (see the module doc for the defaults' sources)."""

    embed_dim: int = 32
    hidden: tuple[int, ...] = (256, 128)
    wl_iterations: int = 3
    graphs: int = 20_000
    pairs: int = 50_000
    mutation_pairs: float = 0.5
    iterations: int = 10_000
    batch_size: int = 256
    lr: float = 1e-3
    similarity_weight: float = 1.0
    reconstruction_weight: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        for name in ("embed_dim", "graphs", "pairs", "iterations", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"EncoderConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0.0 <= self.mutation_pairs <= 1.0:
            raise ConfigError(f"EncoderConfig.mutation_pairs must be in [0, 1], got {self.mutation_pairs!r}")
        if self.similarity_weight < 0 or self.reconstruction_weight < 0 or self.similarity_weight + self.reconstruction_weight == 0:
            raise ConfigError("EncoderConfig: the loss weights must be >= 0 and not both 0")
        if self.wl_iterations < 0:
            raise ConfigError(f"EncoderConfig.wl_iterations must be >= 0, got {self.wl_iterations!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EncoderConfig:
        from nas_ray.models.vae_training import config_from_dict

        return config_from_dict(cls, values, "NASGEM encoder")


@dataclass
class PairData:
    """Training pairs: two feature matrices and the WL similarity of each pair."""

    a: np.ndarray
    b: np.ndarray
    similarity: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)


def _mutated(space: SearchSpace, arch: Architecture, steps: int, rng: np.random.Generator) -> Architecture:
    for _ in range(steps):
        arch = space.mutate(arch, rng)
    return space.canonicalize(arch)


def make_pairs(space: SearchSpace, config: EncoderConfig, *, graphs: Sequence[Architecture] | None = None,
               progress: bool = False) -> PairData:
    """``config.pairs`` pairs of graphs of equal size from ``graphs`` (default: the space's
    pretraining graphs) and their WL similarity. A fraction ``mutation_pairs`` pairs a graph with a
    1-3-step mutation of itself; the rest pair it with a random graph of the same size."""
    from nas_ray.models.vae_training import space_graphs
    from nas_ray.models.wl_kernel import WLKernel

    rng = np.random.default_rng(config.seed)
    started = time.perf_counter()
    pool = list(graphs) if graphs is not None else space_graphs(space, config.graphs, seed=config.seed)
    if len(pool) < 2:
        raise ConfigError(f"{space.name}: need at least 2 graphs to make pairs, got {len(pool)}")
    by_size: dict[int, list[int]] = {}
    for i, arch in enumerate(pool):
        by_size.setdefault(arch.num_nodes, []).append(i)
    left: list[Architecture] = []
    right: list[Architecture] = []
    firsts = rng.integers(len(pool), size=config.pairs)
    mutate = rng.random(config.pairs) < config.mutation_pairs
    for i, m in zip(firsts.tolist(), mutate.tolist()):
        a = pool[i]
        b = None
        if m:
            b = _mutated(space, a, int(rng.integers(1, 4)), rng)
            if b.num_nodes != a.num_nodes:
                b = None
        if b is None:
            same = by_size[a.num_nodes]
            b = pool[same[int(rng.integers(len(same)))]]
        left.append(a)
        right.append(b)
    sampled = time.perf_counter()
    kernel = WLKernel(h=config.wl_iterations)
    similarity = kernel.pairs(left, right).astype(np.float32)
    kernelled = time.perf_counter()
    feats = AdjacencyFeatures(space)
    data = PairData(feats(left), feats(right), similarity)
    data.seconds = {"sample_s": sampled - started, "wl_s": kernelled - sampled, "features_s": time.perf_counter() - kernelled}
    if progress:
        logger.info("NASGEM pairs: %d pairs in %.1f s (WL kernel %.1f s)", config.pairs, time.perf_counter() - started,
                    data.seconds["wl_s"])
    return data


@dataclass
class EncoderResult:
    model: KernelGuidedEncoder
    config: EncoderConfig
    history: list[dict[str, float]]
    seconds: dict[str, float]
    checkpoint: Path | None = None


@flush_denormals()
def train_encoder(
    space: SearchSpace,
    config: EncoderConfig | None = None,
    *,
    pairs: PairData | None = None,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    log_every: int = 100,
    callback: Callable[[dict[str, float]], None] | None = None,
) -> EncoderResult:
    """Train a kernel-guided encoder for ``space`` (a progress bar shows the similarity RMSE and the
    share of exactly reconstructed graphs); with ``checkpoint``, save it there (weights only)."""
    from nas_ray.models.vae_training import default_device

    config = config or EncoderConfig()
    dev = default_device(device)
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    data = pairs if pairs is not None else make_pairs(space, config)
    prepared = time.perf_counter()
    xa = torch.from_numpy(data.a).to(dev)
    xb = torch.from_numpy(data.b).to(dev)
    target = torch.from_numpy(data.similarity).to(dev)
    model = KernelGuidedEncoder(xa.shape[1], config.embed_dim, config.hidden).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    history: list[dict[str, float]] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.iterations, desc=f"NASGEM encoder ({space.name})", unit="it", leave=False)
    sums = np.zeros(4)
    model.train()
    for it in range(1, config.iterations + 1):
        idx = torch.randint(len(target), (config.batch_size,), generator=gen).to(dev)
        a, b = xa[idx], xb[idx]
        sim, rec, _ = model.losses(a, b, target[idx])
        loss = config.similarity_weight * sim + config.reconstruction_weight * rec
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sums += [loss.item(), sim.item(), rec.item(), 1]
        if it % log_every == 0 or it == config.iterations:
            with torch.no_grad():
                exact = ((model.decode_logits(model(a)) > 0).float() == a).all(dim=1).float().mean().item()
            row = {"iteration": it, "loss": float(sums[0] / sums[3]), "similarity_rmse": float(np.sqrt(sums[1] / sums[3])),
                   "reconstruction": float(sums[2] / sums[3]), "exact_reconstruction": float(exact)}
            history.append(row)
            sums[:] = 0
            if bar is not None:
                bar.set_postfix(sim_rmse=f"{row['similarity_rmse']:.3f}", exact=f"{100 * exact:.0f}%")
            if callback is not None:
                callback(row)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    model.eval()
    seconds = {**{k: float(v) for k, v in data.seconds.items()}, "pairs_s": prepared - started, "train_s": time.perf_counter() - prepared,
               "total_s": time.perf_counter() - started}
    result = EncoderResult(model.cpu(), config, history, seconds)
    if checkpoint is not None:
        result.checkpoint = save_encoder(checkpoint, result, space)
    return result


def save_encoder(path: str | Path, result: EncoderResult, space: SearchSpace) -> Path:
    from nas_ray.models.vae_training import _space_record, save_checkpoint

    payload = {"format": FORMAT, "version": VERSION, "space": _space_record(space), "config": _config_record(result.config),
               "hyperparameters": result.model.hyperparameters(), "state_dict": result.model.state_dict(),
               "history": result.history, "seconds": result.seconds}
    return save_checkpoint(path, payload)


def _config_record(config: EncoderConfig) -> dict[str, Any]:
    record = asdict(config)
    record["hidden"] = list(record["hidden"])
    return record


def load_encoder(path: str | Path, *, space: SearchSpace | None = None) -> tuple[KernelGuidedEncoder, SearchSpace, dict[str, Any]]:
    """The frozen encoder of a ``nas-ray train-encoder`` checkpoint, its space and the checkpoint dict."""
    from nas_ray.models.vae_training import checkpoint_space, read_checkpoint

    ckpt = read_checkpoint(path, "NASGEM encoder")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a NASGEM encoder checkpoint (nas-ray train-encoder writes them)")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: written by an incompatible nas-ray version ({ckpt.get('version')})")
    the_space = checkpoint_space(path, ckpt["space"], space)
    hp = ckpt["hyperparameters"]
    model = KernelGuidedEncoder(hp["input_dim"], hp["embed_dim"], hp["hidden"])
    if hp["input_dim"] != AdjacencyFeatures(the_space).dim:
        raise CheckpointError(f"{path}: input size {hp['input_dim']} does not fit {the_space.name}'s {AdjacencyFeatures(the_space).dim}")
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit a NASGEM encoder {hp}: {str(exc).splitlines()[0]}") from None
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, the_space, ckpt


@torch.no_grad()
def embed(model: KernelGuidedEncoder, x: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Embeddings [len(x), d] of feature rows ``x`` (float32 numpy)."""
    out = [model(torch.from_numpy(x[i:i + chunk])).numpy() for i in range(0, len(x), chunk)]
    return np.concatenate(out) if out else np.zeros((0, model.embed_dim), dtype=np.float32)


# ---------------------------------------------------------------------------------------------- predictor
class ScorePredictor(nn.Module):
    """P: R^d -> R^outputs, a ReLU MLP (d -> 64 -> 32 -> outputs), trained with MSE."""

    def __init__(self, input_dim: int, outputs: int = 1, hidden: Sequence[int] = (64, 32)) -> None:
        super().__init__()
        self.net = _mlp([int(input_dim), *hidden, int(outputs)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@flush_denormals()
def fit_scores(net: ScorePredictor, x: np.ndarray, y: np.ndarray, *, steps: int = 300, lr: float = 1e-3,
               batch_size: int = 64, seed: int = 0, optimizer: torch.optim.Optimizer | None = None) -> torch.optim.Optimizer:
    """Train ``net`` on (x, y) for ``steps`` Adam steps of minibatches (the whole set when smaller);
    ``y`` is [n] or [n, outputs] and should be standardised. Returns the optimiser so fine-tuning can
    continue with its moments."""
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32).reshape(len(xt), -1)
    opt = optimizer or torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    n = len(xt)
    for _ in range(steps):
        if n > batch_size:
            idx = torch.randint(n, (batch_size,), generator=gen)
            xb, yb = xt[idx], yt[idx]
        else:
            xb, yb = xt, yt
        loss = F.mse_loss(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    return opt


@torch.no_grad()
def predict_scores(net: ScorePredictor, x: np.ndarray) -> np.ndarray:
    """Predictions [n, outputs] for rows ``x``."""
    net.eval()
    return net(torch.as_tensor(x, dtype=torch.float32)).numpy()

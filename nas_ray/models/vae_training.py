"""Unsupervised pretraining of the graph VAEs, and their checkpoints.

``pretrain(space, archs, PretrainConfig(model="dvae-emb"))`` trains a model on a list of
architectures (no accuracy labels). Two recipes:

- ``recipe="fast"`` (the default): Adam at lr 1e-3 with a per-step cosine decay to zero over
  ``epochs`` (20), batch 32, the loss averaged per graph (reconstruction NLL + 0.005 KL), gradients
  clipped to norm 5, DVAE-EMB in one iteration. On NAS-Bench-201 a DVAE-EMB of hidden size 128
  reconstructs every held-out cell after a few epochs on one CPU core (docs: graph VAEs).
- ``recipe="paper"``: the published recipe, exactly: Adam (lr 1e-4), ReduceLROnPlateau (factor 0.1,
  patience 10) stepped on the epoch-summed training loss, 300 epochs, batch 32 (128 for SVGe outside
  ENAS), KL weight 0.005 with the published reductions (KL summed over the batch; reconstruction
  summed for D-VAE, averaged for SVGe), no clipping, DVAE-EMB in 4 iterations that each
  re-initialise every weight except the operation embedding (Zhang et al. 2019; Chatzianastasis et
  al. 2021; Lukasik et al. 2020, 2021).

Both use training noise 0.01 (the codes' ``eps_scale``); ``svge-triplet`` adds SVGe's edit-distance
triplet loss. Any field given explicitly overrides the recipe's value.

A checkpoint is a plain dict of tensors and JSON values, written atomically after every epoch and
read with ``torch.load(weights_only=True)``; ``pretrain(..., checkpoint=path, resume=True)`` goes on
from the last finished epoch with the same batches and noise it would have had.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_ray.errors import CheckpointError, ConfigError, UnknownName
from nas_ray.graph import Architecture
from nas_ray.models.graph_vae import GraphBatch, GraphCodec, GraphVAE, graph_key
from nas_ray.models.numerics import flush_denormals
from nas_ray.spaces import get_space
from nas_ray.spaces.base import SearchSpace

logger = logging.getLogger(__name__)

__all__ = [
    "MODELS",
    "PretrainConfig",
    "PretrainResult",
    "build_model",
    "pretrain",
    "estimate_pretrain_seconds",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "space_graphs",
    "encode_archs",
    "default_device",
]

FORMAT = "nas-ray-graph-vae"
VERSION = 1

#: model name -> (class path, trained with the triplet loss)
MODELS: dict[str, tuple[str, bool]] = {
    "dvae": ("nas_ray.models.dvae:DVAE", False),
    "dvae-emb": ("nas_ray.models.dvae:DVAEEmb", False),
    "svge": ("nas_ray.models.svge:SVGe", False),
    "svge-triplet": ("nas_ray.models.svge:SVGe", True),
}


def _model_class(name: str) -> type[GraphVAE]:
    if name not in MODELS:
        raise UnknownName(f"unknown graph VAE {name!r}; choose one of {', '.join(MODELS)}")
    module, cls = MODELS[name][0].split(":")
    return getattr(importlib.import_module(module), cls)


def build_model(name: str, space: SearchSpace | GraphCodec, **options: Any) -> GraphVAE:
    """A fresh model ``name`` sized for ``space`` (``options``: latent_dim, hidden_dim, node_dim, ...)."""
    codec = space if isinstance(space, GraphCodec) else GraphCodec(space)
    cls = _model_class(name)
    try:
        return cls(codec.num_types, codec.max_nodes, **options)
    except TypeError as exc:
        raise ConfigError(f"{name}: bad model option: {exc}") from None


def default_device(device: str | torch.device | None = None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


#: the recipes' settings (a field left at None takes its recipe's value)
RECIPES: dict[str, dict[str, Any]] = {
    # the published recipe (D-VAE/DVAE-EMB code and papers; VS-GAE/SVGe code and papers)
    "paper": {"epochs": 300, "lr": 1e-4, "schedule": "plateau", "reduction": "code", "grad_clip": 0.0},
    # measured on NB201 and ENAS-6 (docs/graph-vaes.md): lr 1e-3 makes the decoders learn in a few
    # epochs instead of hundreds; the cosine decay and the clipping remove the loss spikes that lr
    # 1e-3 alone shows; the per-graph average keeps SVGe's KL weight from growing with the batch size
    "fast": {"epochs": 20, "lr": 1e-3, "schedule": "cosine", "reduction": "mean", "grad_clip": 5.0},
}


@dataclass
class PretrainConfig:
    """How a graph VAE is pretrained: a ``recipe`` (``fast``, the default, or ``paper``), and any
    field given explicitly instead of the recipe's value."""

    model: str = "dvae"
    recipe: str = "fast"
    #: per iteration (fast 20, paper 300)
    epochs: int | None = None
    #: None: 32 for the D-VAE family and for SVGe on ENAS, 128 for SVGe elsewhere in the paper
    #: recipe; 32 in the fast recipe
    batch_size: int | None = None
    #: Adam's learning rate (fast 1e-3, paper 1e-4)
    lr: float | None = None
    #: "cosine" (per-step decay to zero over all epochs) or "plateau" (ReduceLROnPlateau on the epoch loss)
    schedule: str | None = None
    #: "mean" (per-graph NLL + beta KL, averaged over the batch) or "code" (the published reductions)
    reduction: str | None = None
    #: gradient-norm clipping (0: none)
    grad_clip: float | None = None
    beta: float = 0.005
    eps_scale: float = 0.01
    #: DVAE-EMB's iterative schedule (None: 4 for dvae-emb in the paper recipe, else 1)
    iterations: int | None = None
    #: what a new DVAE-EMB iteration keeps: "embedding" (the paper) or "all"
    carry: str = "embedding"
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    triplet_fraction: float = 0.1
    triplet_weight: float = 0.9
    #: (epsilon, delta) of the triplets; None: the space's default
    triplet_thresholds: tuple[int, int] | None = None
    seed: int = 0
    #: graphs whose greedy reconstruction the progress bar reports after each epoch
    monitor: int = 256
    model_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _model_class(self.model)
        if self.recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {self.recipe!r}; choose one of {', '.join(RECIPES)}")
        for key, value in RECIPES[self.recipe].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.schedule not in ("cosine", "plateau"):
            raise ConfigError(f"schedule must be 'cosine' or 'plateau', got {self.schedule!r}")
        if self.reduction not in ("mean", "code"):
            raise ConfigError(f"reduction must be 'mean' or 'code', got {self.reduction!r}")
        if not self.grad_clip >= 0:
            raise ConfigError(f"grad_clip must be >= 0 (0: no clipping), got {self.grad_clip}")
        if self.carry not in ("embedding", "all"):
            raise ConfigError(f"carry must be 'embedding' or 'all', got {self.carry!r}")
        if self.iterations is not None and self.iterations < 1:
            raise ConfigError(f"iterations must be at least 1, got {self.iterations}")
        if self.triplet_thresholds is not None:
            self.triplet_thresholds = tuple(int(t) for t in self.triplet_thresholds)

    @property
    def triplet(self) -> bool:
        return MODELS[self.model][1]

    def resolved_iterations(self) -> int:
        return self.iterations or (4 if self.model == "dvae-emb" and self.recipe == "paper" else 1)

    def resolved_batch_size(self, space: SearchSpace) -> int:
        if self.batch_size:
            return self.batch_size
        if self.recipe == "paper" and self.model.startswith("svge"):
            return space.svge_paper_batch_size
        return 32

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PretrainConfig:
        return config_from_dict(cls, values, "pretraining")

    @classmethod
    def from_checkpoint(cls, values: dict[str, Any]) -> PretrainConfig:
        """The config a checkpoint records (checkpoints written before recipes existed used the paper's)."""
        return cls.from_dict({"recipe": "paper", **values})


def config_from_dict(cls: Any, values: dict[str, Any], what: str) -> Any:
    """A config dataclass from a dict, naming unknown keys in one line."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {what} option(s) {', '.join(unknown)}; options: {', '.join(sorted(known))}")
    return cls(**values)


@dataclass
class PretrainResult:
    model: GraphVAE
    space: SearchSpace
    config: PretrainConfig
    history: list[dict[str, float]]
    checkpoint: Path | None
    #: epochs trained in all, and whether that is the whole recipe (``max_seconds`` may stop it early)
    epochs_done: int = 0
    complete: bool = True


# ---------------------------------------------------------------------------------------------- data
def space_graphs(space: SearchSpace, num: int = 20_000, seed: int = 0) -> list[Architecture]:
    """Unlabelled pretraining graphs of a space: every cell where the space can enumerate them
    (NAS-Bench-201's 15,625), else ``num`` distinct random samples (fewer if the space is smaller),
    in canonical form (NB101 cells pruned: the decoders never emit dangling vertices)."""
    enumerate_ = getattr(space, "enumerate", None)
    if callable(enumerate_) and space.size is not None and space.size <= num:
        return list(enumerate_())
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: list[Architecture] = []
    limit = space.size if space.size is not None else num
    for _ in range(50 * num):
        if len(out) >= min(num, limit):
            break
        arch = space.canonicalize(space.sample(rng))
        h = space.hash(arch)
        if h not in seen:
            seen.add(h)
            out.append(arch)
    return out


@torch.no_grad()
def encode_archs(model: GraphVAE, codec: GraphCodec, archs: Sequence[Architecture], batch_size: int = 512) -> torch.Tensor:
    """Posterior means of ``archs`` [len, latent] on the CPU (the model is put in eval mode)."""
    model.eval()
    dev = next(model.parameters()).device
    out = [model.encode(codec.batch(archs[i:i + batch_size], dev))[0].cpu() for i in range(0, len(archs), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, model.latent_dim)


# ---------------------------------------------------------------------------------------------- checkpoints
def _space_record(space: SearchSpace) -> dict[str, Any]:
    return {"name": space.name, "options": dict(space.options()), "node_types": list(space.node_types)}


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write atomically (a crash mid-write leaves the previous checkpoint intact)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | os.PathLike[str], what: str = "checkpoint") -> Any:
    """The object in a checkpoint file (``weights_only``), or a one-line ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what} file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds on a damaged file
        raise CheckpointError(f"{path}: not a readable nas-ray checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None


def checkpoint_space(path: str | os.PathLike[str], record: dict[str, Any], space: SearchSpace | None = None) -> SearchSpace:
    """The space a checkpoint was trained on, checked against ``space`` when one is given."""
    def describe(name: str, options: dict) -> str:
        return name + (f" {options}" if options else "")

    if space is not None and (record["name"], record["options"]) != (space.name, dict(space.options())):
        raise CheckpointError(f"{path}: trained on space {describe(record['name'], record['options'])}, "
                              f"not {describe(space.name, dict(space.options()))}")
    the_space = space or get_space(record["name"], **record["options"])
    if list(the_space.node_types) != list(record["node_types"]):
        raise CheckpointError(f"{path}: node types {record['node_types']} differ from the space's {list(the_space.node_types)}")
    return the_space


def load_checkpoint(path: str | os.PathLike[str], *, space: SearchSpace | None = None, model: str | None = None,
                    latent_dim: int | None = None) -> dict[str, Any]:
    """A checkpoint's dict, checked: readable, ours, and (when given) for ``space``/``model``/``latent_dim``."""
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a nas-ray graph-VAE checkpoint")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: written by an incompatible nas-ray version ({ckpt.get('version')})")
    checkpoint_space(path, ckpt["space"], space)
    if model is not None and ckpt["model"] != model:
        raise CheckpointError(f"{path}: holds a {ckpt['model']} model, not {model}")
    if latent_dim is not None and ckpt["hyperparameters"]["latent_dim"] != latent_dim:
        raise CheckpointError(f"{path}: latent size is {ckpt['hyperparameters']['latent_dim']}, not {latent_dim}")
    return ckpt


def load_model(path: str | os.PathLike[str], *, space: SearchSpace | None = None, model: str | None = None,
               latent_dim: int | None = None, device: str | torch.device | None = "cpu") -> tuple[GraphVAE, SearchSpace, dict[str, Any]]:
    """The model of a checkpoint (in eval mode), its space and the checkpoint dict."""
    ckpt = load_checkpoint(path, space=space, model=model, latent_dim=latent_dim)
    the_space = checkpoint_space(path, ckpt["space"], space)
    net = _model_class(ckpt["model"])(**ckpt["hyperparameters"])
    try:
        net.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit a {ckpt['model']} {ckpt['hyperparameters']}: {str(exc).splitlines()[0]}") from None
    net.to(default_device(device)).eval()
    return net, the_space, ckpt


# ---------------------------------------------------------------------------------------------- training
def _reconstructed(model: GraphVAE, codec: GraphCodec, batch: GraphBatch, keys: list[str]) -> float:
    model.eval()
    with torch.no_grad():
        mu, _ = model.encode(batch)
        decoded = model.decode(mu, stochastic=False)
    return float(np.mean([graph_key(t, a) == k for (t, a), k in zip(decoded, keys)]))


def _prior_validity(model: GraphVAE, codec: GraphCodec, reference: GraphBatch, samples: int, seed: int) -> float:
    """Fraction of valid stochastic decodes of ``samples`` prior draws scaled to the latent range of
    the ``reference`` graphs (D-VAE's scaled prior, with the reference batch standing in for the whole
    training set)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        mu, _ = model.encode(reference)
        z = torch.randn(samples, model.latent_dim, generator=gen) * mu.std(0).cpu() + mu.mean(0).cpu()
        decoded = model.decode(z.to(mu.device), stochastic=True, generator=torch.Generator(mu.device).manual_seed(seed))
    return float(np.mean([codec.to_arch(t, a) is not None for t, a in decoded]))


class _Progress:
    def __init__(self, total: int, enabled: bool, desc: str) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="epoch", file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        if self.bar is not None:
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@flush_denormals()
def pretrain(
    space: SearchSpace | str,
    archs: Sequence[Architecture],
    config: PretrainConfig | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    callback: Callable[[dict[str, float]], None] | None = None,
    validation: Sequence[Architecture] | None = None,
    max_seconds: float | None = None,
) -> PretrainResult:
    """Train a graph VAE on ``archs`` (unlabelled) and return it in eval mode.

    ``checkpoint``: written after every epoch (and at the end, with the training latents' range that
    the latent-space searcher uses as its box). ``resume=True`` continues from it when it exists.
    Every epoch's record (``history``, ``callback``) has the epoch's summed ``loss``/``recon``/``kl``,
    the learning rate, seconds, and the greedy reconstruction of ``monitor`` training graphs
    (``recon_acc``); with ``validation`` graphs also their greedy reconstruction (``val_recon_acc``,
    up to ``monitor`` of them) and the valid fraction of ``monitor`` stochastic decodes of the
    scaled prior (``prior_validity``).

    ``max_seconds`` bounds the wall time: training stops after the epoch that passes it (at least
    one epoch runs), the checkpoint is finalised all the same, and ``resume=True`` later continues
    from there; the result says ``complete=False``.
    """
    if max_seconds is not None and not max_seconds > 0:
        raise ConfigError(f"pretraining: max_seconds must be positive, got {max_seconds!r}")
    started = time.perf_counter()
    space, config, codec, archs, dev = _setup(space, archs, config, device)
    data = codec.batch(archs)  # validates the ops of every graph
    n = len(archs)
    batch_size = config.resolved_batch_size(space)
    iterations = config.resolved_iterations()
    total_epochs = iterations * config.epochs

    torch.manual_seed(config.seed)
    model = build_model(config.model, codec, **config.model_options).to(dev)
    steps_per_epoch = math.ceil(n / batch_size)
    optimizer, scheduler = _optimizer(model, config, steps_per_epoch)
    history: list[dict[str, float]] = []
    start = 0  # epochs done, over all iterations
    if resume and checkpoint is not None and Path(checkpoint).exists():
        ckpt = load_checkpoint(checkpoint, space=space, model=config.model)
        saved = PretrainConfig.from_checkpoint(ckpt["config"])
        if asdict(saved) != asdict(config):
            raise CheckpointError(f"{checkpoint}: was trained with other settings; resume needs the same ones ({_diff(saved, config)})")
        if ckpt["train"]["num_graphs"] != n:
            raise CheckpointError(f"{checkpoint}: was trained on {ckpt['train']['num_graphs']} graphs, not {n}")
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["train"]["optimizer"])
        scheduler.load_state_dict(ckpt["train"]["scheduler"])
        torch.set_rng_state(ckpt["train"]["rng"])
        history = list(ckpt["history"])
        start = int(ckpt["train"]["epochs_done"])

    triplets = _triplets(space, codec, data, config) if config.triplet else None
    monitor_idx = torch.arange(min(config.monitor, n))
    monitor_batch = data.index(monitor_idx).to(dev)
    monitor_keys = [codec.key(archs[i]) for i in monitor_idx.tolist()]
    val_batch, val_keys = None, []
    if validation:
        val = list(validation)[:config.monitor]
        val_batch, val_keys = codec.batch(val).to(dev), [codec.key(a) for a in val]
    bar = _Progress(total_epochs, progress, f"pretrain {config.model} on {space.name}")
    bar.update(start)
    epochs_done = start
    for done in range(start, total_epochs):
        iteration, epoch = divmod(done, config.epochs)
        if epoch == 0 and iteration > 0:  # DVAE-EMB: the next iteration (deterministic, so resuming here is exact)
            model = _next_iteration(model, codec, config, iteration).to(dev)
            optimizer, scheduler = _optimizer(model, config, steps_per_epoch)
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed * 1_000_003 + done))
        sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "triplet": 0.0}
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            batch = data.index(idx).to(dev)
            out = model.loss(batch, beta=config.beta, eps_scale=config.eps_scale, reduction=config.reduction)
            loss = out["loss"]
            if triplets is not None:
                tl = _triplet_term(model, data, idx, triplets, config, dev)
                if tl is not None:
                    loss = config.triplet_weight * loss + (1 - config.triplet_weight) * tl
                    sums["triplet"] += tl.item()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            if config.schedule == "cosine":
                scheduler.step()
            sums["loss"] += loss.item()
            sums["recon"] += out["recon"].item()
            sums["kl"] += out["kl"].item()
        if not math.isfinite(sums["loss"]):
            raise FloatingPointError(f"pretraining {config.model}: the loss became {sums['loss']} at epoch {epoch + 1}; lower the learning rate")
        if config.schedule == "plateau":
            scheduler.step(sums["loss"])
        record = {
            "iteration": iteration,
            "epoch": epoch + 1,
            "loss": sums["loss"],
            "recon": sums["recon"],
            "kl": sums["kl"],
            "triplet": sums["triplet"],
            "lr": optimizer.param_groups[0]["lr"],
            "recon_acc": _reconstructed(model, codec, monitor_batch, monitor_keys),
            "seconds": time.perf_counter() - t0,
        }
        if val_batch is not None:
            record["val_recon_acc"] = _reconstructed(model, codec, val_batch, val_keys)
            record["prior_validity"] = _prior_validity(model, codec, monitor_batch, config.monitor, config.seed + done)
        history.append(record)
        shown = {"val_recon": f"{record['val_recon_acc']:.3f}", "valid": f"{record['prior_validity']:.3f}"} if val_batch is not None else {}
        bar.update(1, it=iteration + 1, loss=f"{sums['loss'] / n:.3f}", kl=f"{sums['kl'] / n:.2f}", recon_acc=f"{record['recon_acc']:.3f}", **shown)
        if checkpoint is not None:
            save_checkpoint(checkpoint, _payload(model, space, config, history, optimizer, scheduler, done + 1, n))
        if callback is not None:  # after the save: an interruption here loses nothing
            callback(record)
        epochs_done = done + 1
        if max_seconds is not None and time.perf_counter() - started >= max_seconds and epochs_done < total_epochs:
            logger.warning("pretraining %s: stopped at the time budget (%.0f s) after %d of %d epochs; resume to continue",
                           config.model, max_seconds, epochs_done, total_epochs)
            break
    bar.close()
    model.eval()
    if checkpoint is not None:
        save_checkpoint(checkpoint, _payload(model, space, config, history, optimizer, scheduler, epochs_done, n,
                                             latents=encode_archs(model, codec, archs)))
    return PretrainResult(model, space, config, history, Path(checkpoint) if checkpoint is not None else None,
                          epochs_done=epochs_done, complete=epochs_done >= total_epochs)


def _setup(space: SearchSpace | str, archs: Sequence[Architecture], config: PretrainConfig | None,
           device: str | torch.device | None) -> tuple[SearchSpace, PretrainConfig, GraphCodec, list[Architecture], torch.device]:
    space = get_space(space) if isinstance(space, str) else space
    archs = list(archs)
    if not archs:
        raise ConfigError("pretraining needs at least one architecture")
    return space, config or PretrainConfig(), GraphCodec(space), archs, default_device(device)


def estimate_pretrain_seconds(space: SearchSpace, archs: Sequence[Architecture], config: PretrainConfig | None = None, *,
                              epochs: int | None = None, device: str | torch.device | None = None, steps: int = 3) -> float:
    """Seconds ``pretrain`` is expected to take on this machine: a few training steps of a throwaway
    model are timed (after one warm-up step) and scaled to the recipe's epochs (or ``epochs``).
    Costs a second or two; the global torch RNG is left as it was."""
    space, config, codec, archs, dev = _setup(space, archs, config, device)
    batch_size = config.resolved_batch_size(space)
    rng_state = torch.get_rng_state()
    try:
        model = build_model(config.model, codec, **config.model_options).to(dev)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        batch = codec.batch(archs[:batch_size]).to(dev)
        timed = 0.0
        for i in range(steps + 1):
            t0 = time.perf_counter()
            loss = model.loss(batch, beta=config.beta, eps_scale=config.eps_scale, reduction=config.reduction)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if i:
                timed += time.perf_counter() - t0
    finally:
        torch.set_rng_state(rng_state)
    total = epochs if epochs is not None else config.epochs * config.resolved_iterations()
    return timed / steps * math.ceil(len(archs) / batch_size) * total


def _diff(a: PretrainConfig, b: PretrainConfig) -> str:
    da, db = asdict(a), asdict(b)
    return ", ".join(f"{k}: {da[k]!r} vs {db[k]!r}" for k in da if da[k] != db[k])


def _optimizer(model: GraphVAE, config: PretrainConfig, steps_per_epoch: int) -> tuple[torch.optim.Optimizer, Any]:
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    if config.schedule == "cosine":  # per step, to zero at the end of the iteration
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs * steps_per_epoch))
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=config.plateau_factor,
                                                               patience=config.plateau_patience)
    return optimizer, scheduler


def _next_iteration(model: GraphVAE, codec: GraphCodec, config: PretrainConfig, iteration: int) -> GraphVAE:
    """DVAE-EMB: a fresh model that keeps the operation embedding (or everything, ``carry="all"``)."""
    if config.carry == "all":
        return model
    torch.manual_seed(config.seed + 7919 * iteration)
    fresh = build_model(config.model, codec, **config.model_options).to(next(model.parameters()).device)
    emb = getattr(model, "embedding", None)
    if emb is not None:
        fresh.embedding.weight.data.copy_(emb.weight.data)
    return fresh


def _payload(model: GraphVAE, space: SearchSpace, config: PretrainConfig, history: list[dict[str, float]],
             optimizer: torch.optim.Optimizer, scheduler: Any, epochs_done: int, num_graphs: int,
             latents: torch.Tensor | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model": config.model,
        "hyperparameters": model.hyperparameters(),
        "space": _space_record(space),
        "config": asdict(config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history,
        "train": {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "epochs_done": epochs_done,
            "num_graphs": num_graphs,
        },
    }
    if latents is not None and len(latents):
        payload["latents"] = {
            "min": latents.min(0).values,
            "max": latents.max(0).values,
            "mean": latents.mean(0),
            "std": latents.std(0) if len(latents) > 1 else torch.ones(latents.shape[1]),
            "count": len(latents),
        }
    return payload


# ---------------------------------------------------------------------------------------------- triplets
def _triplets(space: SearchSpace, codec: GraphCodec, data: GraphBatch, config: PretrainConfig) -> dict[int, tuple[int, int]]:
    from nas_ray.models import triplets as tri

    eps, delta = config.triplet_thresholds or space.triplet_thresholds()
    rows = tri.sample_triplets(data.types.numpy(), data.adj.numpy().astype(np.int8), data.num_nodes.numpy(),
                               fraction=config.triplet_fraction, positive_below=eps, negative_above=delta,
                               rng=np.random.default_rng(config.seed))
    return {int(a): (int(p), int(q)) for a, p, q in rows}


def _triplet_term(model: GraphVAE, data: GraphBatch, idx: torch.Tensor, triplets: dict[int, tuple[int, int]],
                  config: PretrainConfig, dev: torch.device) -> torch.Tensor | None:
    from nas_ray.models.triplets import MARGIN, triplet_loss

    anchors = [int(i) for i in idx.tolist() if int(i) in triplets]
    if not anchors:
        return None
    pos = [triplets[a][0] for a in anchors]
    neg = [triplets[a][1] for a in anchors]
    both = data.index(anchors + pos + neg).to(dev)
    mu, logvar = model.encode(both)
    t = model.reparameterize(mu, logvar, config.eps_scale)
    k = len(anchors)
    return triplet_loss(t[:k], t[k:2 * k], t[2 * k:], margin=MARGIN).mean()

"""The ENAS macro weight-sharing supernet (``supernet:enas-macro``).

One network holds every op of every layer (the ENAS macro ops of ``nas_ray.evaluators.networks``); an
architecture is a single path through it: per layer one op, plus the skip connections its bits select.
Training samples a uniformly random path per minibatch (every op and skip is trained equally, as ENAS's
shared weights before the controller learns); an architecture's score is the validation accuracy of its
path with the shared weights, no training of its own. BatchNorm normalises with the statistics of the
batch at hand (there are no running statistics: they would mix every path's activations), so scores
use large validation batches.

``SupernetTrainer`` does the work in one process; ``SupernetEvaluator`` gives it to a named Ray actor
that every Tune trial (and every GraphPNAS environment) of the job queries, or keeps it in process when
Ray is not running. The actor serialises calls, so interleaving training with the search is safe: every
``train_every`` scores it trains ``epochs_per_round`` more epochs before the next score.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_ray.evaluators.base import Evaluator
from nas_ray.graph import Architecture
from nas_ray.spaces import get_space
from nas_ray.errors import ConfigError, UnknownName

if TYPE_CHECKING:
    import torch

LayerList = Sequence[Sequence[int]]  # ENAS native form: [[t0], [t1, b0], [t2, b0, b1], ...]


@dataclasses.dataclass(frozen=True)
class SupernetConfig:
    """Supernet size, data and training; one field per choice."""

    #: ENAS layers (6: the D-VAE ENAS-6 space; 12: the original ENAS macro space)
    num_layers: int = 6
    #: channels of every layer (ENAS's macro search used 36; 16 keeps CPU training short)
    channels: int = 16
    #: "digits" (bundled, CPU-sized), "cifar10" or "cifar100" (binary files under ``data_dir``)
    dataset: str = "digits"
    data_dir: str | None = None
    #: held-out validation images of the training set that scores use (None: the dataset's default)
    val_size: int | None = None
    split_seed: int = 0
    #: epochs trained before the first score
    warmup_epochs: int = 20
    #: after every ``train_every`` scores, train ``epochs_per_round`` more epochs (0: never)
    train_every: int = 0
    epochs_per_round: int = 1
    batch_size: int = 64
    #: SGD with Nesterov momentum 0.9 and cosine annealing with warm restarts (first period
    #: ``restart_epochs``, doubling), as ENAS trained its shared weights
    lr: float = 0.05
    lr_min: float = 0.001
    restart_epochs: int = 10
    weight_decay: float = 1e-4
    #: validation images per scoring batch (BatchNorm uses each batch's statistics)
    eval_batch_size: int = 1000
    seed: int = 0
    #: "auto" = CUDA when this process sees a GPU
    device: str = "auto"
    num_threads: int = 1
    #: CPUs the Ray actor reserves; 0 lets it run on the CPUs of the trials / env runners waiting on it
    #: (a 2-core machine with two env runners has none left over)
    actor_cpus: float = 1.0

    def __post_init__(self) -> None:
        for name in ("num_layers", "channels", "batch_size", "eval_batch_size", "restart_epochs", "epochs_per_round",
                     "num_threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"SupernetConfig.{name} must be a positive integer, got {value!r}")
        for name in ("warmup_epochs", "train_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"SupernetConfig.{name} must be a non-negative integer, got {value!r}")
        if not isinstance(self.actor_cpus, (int, float)) or self.actor_cpus < 0:
            raise ConfigError(f"SupernetConfig.actor_cpus must be a number >= 0, got {self.actor_cpus!r}")
        if not self.lr > 0 or not 0 <= self.lr_min <= self.lr or self.weight_decay < 0:
            raise ConfigError(f"SupernetConfig needs lr > 0, 0 <= lr_min <= lr and weight_decay >= 0, got "
                             f"lr={self.lr}, lr_min={self.lr_min}, weight_decay={self.weight_decay}")


def _supernet_module(cfg: SupernetConfig, num_classes: int, in_channels: int) -> torch.nn.Module:
    import torch
    from torch import nn

    from nas_ray.evaluators.networks import EnasReduction, enas_op, enas_reduction_layers
    from nas_ray.spaces.enas import OPS as ENAS_OPS

    class EnasSupernet(nn.Module):
        """Every ENAS macro op of every layer; ``forward(x, layers)`` runs one path."""

        def __init__(self) -> None:
            super().__init__()
            c, n = cfg.channels, cfg.num_layers
            self.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
            self.ops = nn.ModuleList(nn.ModuleList(enas_op(i, c) for i in range(len(ENAS_OPS))) for _ in range(n))
            self.layer_norms = nn.ModuleList(nn.BatchNorm2d(c, affine=False) for _ in range(n))
            self.pool_after = enas_reduction_layers(n)  # the standalone network's reductions
            # after layer k, the stem and layers 0..k are reduced: k + 2 outputs
            self.reductions = nn.ModuleDict(
                {str(k): nn.ModuleList(EnasReduction(c) for _ in range(k + 2)) for k in self.pool_after}
            )
            self.head = nn.Linear(c, num_classes)
            for module in self.modules():  # batch statistics only: running ones would mix all paths
                if isinstance(module, nn.BatchNorm2d):
                    module.track_running_stats = False
                    module.running_mean = module.running_var = module.num_batches_tracked = None

        def forward(self, x: torch.Tensor, layers: LayerList) -> torch.Tensor:
            outputs = [self.stem(x)]
            for k, (op, *bits) in enumerate(layers):
                out = self.ops[k][op](outputs[-1])
                for j, bit in enumerate(bits):
                    if bit:
                        out = out + outputs[j]
                outputs.append(self.layer_norms[k](out))
                if str(k) in self.reductions:
                    outputs = [r(o) for r, o in zip(self.reductions[str(k)], outputs)]
            pooled = torch.relu(outputs[-1]).mean(dim=(2, 3))
            return self.head(pooled)

    return EnasSupernet()


class SupernetTrainer:
    """Trains the supernet and scores paths, in this process. ``train(epochs)``, ``score(layer_lists)``,
    ``state()`` / ``load_state(state)``; as a Ray actor, the same methods via ``.remote``."""

    def __init__(self, config: SupernetConfig | None = None, **overrides: Any) -> None:
        import torch

        from nas_ray.evaluators.datasets import load_dataset

        self.config = cfg = dataclasses.replace(config or SupernetConfig(), **overrides)
        self.space = get_space("enas-macro", num_layers=cfg.num_layers)
        torch.set_num_threads(cfg.num_threads)
        if cfg.device == "auto":
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            self.device = torch.device(cfg.device)
        self.data = load_dataset(cfg.dataset, cfg.data_dir, val_size=cfg.val_size, split_seed=cfg.split_seed)
        torch.manual_seed(cfg.seed)
        self.model = _supernet_module(cfg, self.data.num_classes, self.data.in_channels).to(self.device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                                         weight_decay=cfg.weight_decay)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            self.optimizer, T_0=cfg.restart_epochs, T_mult=2, eta_min=cfg.lr_min)
        self.rng = np.random.default_rng(cfg.seed)
        self.epochs_trained = 0
        self.scored = 0
        self.train_seconds = 0.0
        self._train = tuple(t.to(self.device) for t in self.data.train)
        self._val = tuple(t.to(self.device) for t in self.data.val)

    # ------------------------------------------------------------------ training
    def sample_path(self) -> list[list[int]]:
        """A uniformly random architecture in ENAS layer-list form."""
        return [[int(self.rng.integers(6))] + [int(b) for b in self.rng.integers(0, 2, size=k)]
                for k in range(self.config.num_layers)]

    def train(self, epochs: int = 1) -> dict[str, float]:
        """``epochs`` passes over the training images, one random path per minibatch."""
        import torch
        import torch.nn.functional as F

        from nas_ray.evaluators.datasets import augment_batch

        cfg = self.config
        x, y = self._train
        start, loss_sum, seen = time.perf_counter(), torch.zeros((), device=self.device), 0
        self.model.train()
        for _ in range(epochs):
            generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.epochs_trained)
            order = torch.randperm(len(y), generator=generator).to(self.device)
            steps = math.ceil(len(y) / cfg.batch_size)
            for i in range(steps):
                idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                if len(idx) < 2:
                    continue
                inputs = x[idx]
                if self.data.augment == "crop_flip":
                    inputs = augment_batch(inputs, generator)
                loss = F.cross_entropy(self.model(inputs, self.sample_path()), y[idx])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
                self.optimizer.step()
                self.schedule.step(self.epochs_trained + (i + 1) / steps)
                loss_sum += loss.detach() * len(idx)
                seen += len(idx)
            self.epochs_trained += 1
        elapsed = time.perf_counter() - start
        self.train_seconds += elapsed
        return {"train_loss": float(loss_sum) / max(seen, 1), "epochs_trained": self.epochs_trained, "seconds": elapsed}

    # ------------------------------------------------------------------ scoring
    def score(self, layer_lists: Sequence[LayerList]) -> list[float]:
        """Validation accuracy (%) of each architecture with the shared weights. Trains the warm-up
        epochs first, and ``epochs_per_round`` more after every ``train_every`` scores."""
        import torch

        cfg = self.config
        if self.epochs_trained < cfg.warmup_epochs:
            self.train(cfg.warmup_epochs - self.epochs_trained)
        x, y = self._val
        scores = []
        for layers in layer_lists:
            if cfg.train_every and self.scored and self.scored % cfg.train_every == 0:
                self.train(cfg.epochs_per_round)
            layers = [list(map(int, layer)) for layer in layers]
            self.model.train()  # batch statistics; no parameter changes under no_grad
            correct = 0
            with torch.no_grad():
                for i in range(0, len(y), cfg.eval_batch_size):
                    logits = self.model(x[i:i + cfg.eval_batch_size], layers)
                    correct += int((logits.argmax(1) == y[i:i + cfg.eval_batch_size]).sum())
            scores.append(100.0 * correct / len(y))
            self.scored += 1
        return scores

    def info(self) -> dict[str, Any]:
        return {"epochs_trained": self.epochs_trained, "scored": self.scored, "train_seconds": self.train_seconds,
                "device": str(self.device), "dataset": self.data.name}

    def state(self) -> dict[str, Any]:
        """A snapshot of weights, optimiser, schedule and counters (CPU tensors and plain values:
        ``torch.save`` them)."""
        from nas_ray.evaluators.training import _cpu_copy

        # copies: the optimizer would otherwise share its momentum tensors with whoever loads the state
        return _cpu_copy({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                          "schedule": self.schedule.state_dict(), "epochs_trained": self.epochs_trained,
                          "scored": self.scored, "rng": self.rng.bit_generator.state})

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.epochs_trained, self.scored = int(state["epochs_trained"]), int(state["scored"])
        self.rng.bit_generator.state = state["rng"]


class SupernetEvaluator(Evaluator):
    """Scores ENAS macro architectures with the shared weights of one supernet.

    ``backend="auto"`` puts the supernet in a named Ray actor when Ray is running (every trial and
    environment of the job then shares it; the actor asks for a GPU when ``device`` is CUDA or, with
    ``device="auto"``, when the cluster has one), else in this process. The actor lives as long as the
    evaluator object that created it in the driver (a copy shipped to a trial finds it by name).
    Options are ``SupernetConfig`` fields::

        ev = SupernetEvaluator(num_layers=6, dataset="digits", warmup_epochs=20, train_every=50)
        ev.evaluate(ev.space.sample(0))["val_accuracy"]
    """

    metric = "val_accuracy"
    mode = "max"
    metric_scale = 100.0

    #: the space whose networks the supernet holds
    SPACE = "enas-macro"

    @classmethod
    def from_spec(cls, argument: str, **options: Any) -> SupernetEvaluator:
        """``supernet:<space>``: the supernet of ``<space>`` (the ENAS macro space is the one there is)."""
        if argument != cls.SPACE:
            raise UnknownName(f"unknown evaluator 'supernet:{argument}': the weight-sharing supernet covers {cls.SPACE} only")
        return cls(**options)

    def __init__(self, config: SupernetConfig | None = None, *, backend: str = "auto", actor_name: str | None = None,
                 data_dir: str | os.PathLike[str] | None = None, **overrides: Any) -> None:
        if backend not in ("auto", "actor", "local"):
            raise ConfigError(f"SupernetEvaluator backend must be auto, actor or local, got {backend!r}")
        if data_dir is not None:
            overrides["data_dir"] = str(data_dir)
        self.config = dataclasses.replace(config or SupernetConfig(), **overrides)
        self.space = get_space("enas-macro", num_layers=self.config.num_layers)
        self.backend = backend
        # one actor per configuration: evaluators with equal settings share it, others get their own
        digest = hashlib.sha1(repr(sorted(dataclasses.asdict(self.config).items())).encode()).hexdigest()[:12]
        self.actor_name = actor_name or f"nas-ray-supernet-{digest}"

    @property
    def resources(self) -> dict[str, float]:
        """A trial only waits for the actor, which holds the CPUs (``num_threads``) and the GPU itself."""
        return {"cpu": 0.1, "gpu": 0.0}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "supernet": dataclasses.asdict(self.config), "dataset": self.config.dataset}

    def trainer(self) -> Any:
        """The ``SupernetTrainer`` (local backend) or the handle of its actor (created on first use)."""
        cached = self.__dict__.get("_cache_trainer")
        if cached is not None:
            return cached
        import ray

        if self.backend == "local" or (self.backend == "auto" and not ray.is_initialized()):
            cached = SupernetTrainer(self.config)
        else:
            if not ray.is_initialized():
                ray.init(logging_level="WARNING")
            gpus = 0.0
            if self.config.device.startswith("cuda") or (
                    self.config.device == "auto" and ray.cluster_resources().get("GPU", 0) >= 1):
                gpus = 1.0
            # "DEFAULT": outside the placement group of the trial that may be creating it
            cached = ray.remote(SupernetTrainer).options(
                name=self.actor_name, get_if_exists=True, num_cpus=self.config.actor_cpus, num_gpus=gpus,
                scheduling_strategy="DEFAULT",
            ).remote(self.config)
        self._cache_trainer = cached
        return cached

    def _call(self, method: str, *args: Any) -> Any:
        trainer = self.trainer()
        if isinstance(trainer, SupernetTrainer):
            return getattr(trainer, method)(*args)
        import ray

        return ray.get(getattr(trainer, method).remote(*args))

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        if isinstance(arch, dict):
            arch = Architecture.from_dict(arch)
        layers = self.space.to_native(self.space.canonicalize(arch))
        (accuracy,) = self._call("score", [layers])
        info = self._call("info")
        return {"val_accuracy": accuracy, "supernet_epochs": float(info["epochs_trained"])}

    def score_many(self, archs: Sequence[Architecture]) -> list[float]:
        """Scores of many architectures in one call (one round trip to the actor)."""
        return self._call("score", [self.space.to_native(self.space.canonicalize(a)) for a in archs])

    def train(self, epochs: int = 1) -> dict[str, float]:
        """Train the shared supernet ``epochs`` more epochs (interleave this with a search as you like)."""
        return self._call("train", epochs)

    def __getstate__(self) -> dict[str, Any]:
        """Ships without the trainer; a copy finds the actor by name. Pickled by a Ray driver (Tune and
        RLlib ship evaluators from there), the actor is created first, so that the driver owns it and it
        lives as long as the search, not as long as the first trial that asked for it."""
        if self.backend != "local" and _in_ray_driver():
            self.trainer()
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cache")}


def _in_ray_driver() -> bool:
    import ray

    if not ray.is_initialized():
        return False
    return ray.get_runtime_context().worker.mode == ray.SCRIPT_MODE

"""Bayesian optimisation in a graph VAE's latent space (D-VAE / DVAE-EMB / SVGe; Zhang et al. 2019 §4.3,
Lukasik et al. 2021).

A pretrained graph VAE maps architectures to a continuous latent space. Each round a sparse GP
(500 inducing points, ARD-RBF) is fit to the latent points evaluated so far and expected
improvement picks a batch greedily with the kriging believer. Two ways to turn EI into
architectures (``acquisition``):

- ``"pool"`` (default): EI is maximised over the latent means of a pool of architectures (every
  cell of a space small enough to enumerate, such as NB201's 15,625; else ``pool_size`` random
  ones), and the picked architectures are proposed directly. No decoding, so no invalid or
  mis-decoded points; measured on NB201 it finds better cells in 100 queries than decoding does.
- ``"decode"``: the published protocol. The first point by L-BFGS-B from the best of a uniform grid
  over the training latents' box, the rest greedily over the grid; every picked point is decoded
  many times and the most frequent valid architecture not yet proposed becomes a trial. A point
  with no valid decode enters the GP with the worst score seen (the protocol's rule) and costs no
  evaluation; a round in which no point decodes to a new valid architecture is followed by a batch
  of uniform samples of the space (counted in ``fallbacks``).

Without a checkpoint the searcher pretrains the default model for the space (a small SVGe, the
fast recipe) on unlabelled graphs of the space (all 15,625 NB201 cells; random samples elsewhere)
and caches it under ``$NAS_RAY_CACHE`` (default ``~/.cache/nas-ray``) for the next run. Nothing
is trained when the searcher is built: the first ``suggest`` does it, after a warning with the
estimated time, under a progress bar. ``pretrain_budget_s`` bounds it (a model stopped at the budget
is used as it is, and the next run with the same settings continues its training, within its own
budget);
``auto_pretrain=False`` turns it off (an uncached model is then an error that says how to make one).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_ray.data import cache_dir
from nas_ray.errors import CheckpointError, ConfigError
from nas_ray.graph import Architecture
from nas_ray.models.graph_vae import GraphCodec
from nas_ray.models.vae_training import (MODELS, PretrainConfig, encode_archs, estimate_pretrain_seconds, load_model, pretrain,
                                         space_graphs)
from nas_ray.searchers.base import ArchitectureSearcher
from nas_ray.searchers.graphpnas import _threads
from nas_ray.searchers.updates import resolve_mode
from nas_ray.spaces import SearchSpace

logger = logging.getLogger(__name__)

#: the model pretrained when none is given: on NB201 a small SVGe with the fast recipe
#: reconstructs every held-out cell within minutes on one core, where D-VAE / DVAE-EMB of the same
#: size are still near zero (benchmarks/vae_curves.py)
DEFAULT_MODEL = "svge"
#: auto-pretraining: the fast recipe (10 epochs) on a laptop-sized model (pass a checkpoint, or
#: pretrain={"recipe": "paper", "model_options": {}} for the papers' recipe and sizes)
AUTO_PRETRAIN: dict[str, Any] = {"recipe": "fast", "epochs": 10}
AUTO_MODEL_OPTIONS: dict[str, dict[str, int]] = {
    "dvae": {"hidden_dim": 128, "latent_dim": 16},
    "dvae-emb": {"hidden_dim": 128, "latent_dim": 16},
    "svge": {"node_dim": 64, "latent_dim": 16},
    "svge-triplet": {"node_dim": 64, "latent_dim": 16},
}
_EXCLUDED_STATE = ("model", "codec", "_pool", "_pool_z", "_pool_index")


class LatentBOSearcher(ArchitectureSearcher):
    """Latent-space BO over a pretrained graph VAE.

    Options:
        model: a model name (``svge`` (default), ``svge-triplet``, ``dvae``, ``dvae-emb``; pretrained
            and cached on first use) or the path of a ``nas-ray pretrain`` checkpoint.
        acquisition: ``"pool"`` (EI over the encoded architectures of a pool; default) or
            ``"decode"`` (EI over the latent box, points decoded: the published protocol);
            ``pool_size``: the pool's size where the space is too large to enumerate (20,000).
        target: what the GP fits: ``"copula"`` (the scores' ranks mapped to normal quantiles, so
            a few failed cells do not dominate the fit; default) or ``"raw"`` (the scores, as the
            published protocol).
        pretrain: overrides of the automatic pretraining (``PretrainConfig`` fields, e.g.
            ``{"epochs": 300}``); ``pretrain_graphs``: how many unlabelled graphs it samples;
            ``pretrain_budget_s``: wall-time bound of the automatic pretraining (None: the whole
            recipe); ``auto_pretrain``: False to never pretrain implicitly.
        batch_size: points per BO round (the protocol's 50; default 10 for 100-query budgets).
        initial: ``"random"`` (uniform samples of the space) or ``"bins"`` (VS-GAE's latent-bin
            sampling of the pretraining graphs); ``num_initial`` of them before the first GP.
        decodes: stochastic decodes per selected point (500); ``decode_choice``: ``"most-frequent"``
            valid architecture (intended) or ``"first-valid"`` (the published code's behaviour).
        grid_size, grid (``"uniform"`` in the box or ``"normal"``), num_inducing, gp_epochs, gp_lr,
            lbfgs_maxiter (the first point's L-BFGS-B iterations, 150).
        threads: torch threads while suggesting (1 keeps runs reproducible across machines).
        updates: where a BO round runs (``"auto"``: a Ray task under Tune, the next round starting
            when half a batch is left; inline otherwise; see ``nas_ray.searchers.updates``).
    """

    name = "latent-bo"

    def __init__(
        self,
        space: SearchSpace | str,
        *,
        model: str = DEFAULT_MODEL,
        pretrain: Mapping[str, Any] | None = None,
        pretrain_graphs: int = 20_000,
        pretrain_budget_s: float | None = None,
        auto_pretrain: bool = True,
        batch_size: int = 10,
        initial: str = "random",
        num_initial: int = 20,
        decodes: int = 500,
        decode_choice: str = "most-frequent",
        acquisition: str = "pool",
        target: str = "copula",
        local_fraction: float = 0.5,
        local_top: int = 5,
        local_samples: int = 100,
        pool_size: int = 20_000,
        grid_size: int = 10_000,
        grid: str = "uniform",
        num_inducing: int = 500,
        gp_epochs: int = 100,
        gp_lr: float | None = None,
        lbfgs_maxiter: int = 150,
        device: str | None = None,
        threads: int | None = 1,
        progress: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(space, **options)
        if initial not in ("random", "bins"):
            raise ConfigError(f"latent-bo: initial must be 'random' or 'bins', got {initial!r}")
        if decode_choice not in ("most-frequent", "first-valid"):
            raise ConfigError(f"latent-bo: decode_choice must be 'most-frequent' or 'first-valid', got {decode_choice!r}")
        if target not in ("copula", "raw"):
            raise ConfigError(f"latent-bo: target must be 'copula' or 'raw', got {target!r}")
        if acquisition not in ("pool", "decode"):
            raise ConfigError(f"latent-bo: acquisition must be 'pool' or 'decode', got {acquisition!r}")
        if grid not in ("uniform", "normal"):
            raise ConfigError(f"latent-bo: grid must be 'uniform' or 'normal', got {grid!r}")
        for key, value in (("batch_size", batch_size), ("num_initial", num_initial), ("decodes", decodes), ("grid_size", grid_size),
                           ("pool_size", pool_size)):
            if int(value) < 1:
                raise ConfigError(f"latent-bo: {key} must be at least 1, got {value}")
        self.model_spec = str(model)
        self.pretrain_options = dict(pretrain or {})
        self.pretrain_graphs = int(pretrain_graphs)
        if pretrain_budget_s is not None and not float(pretrain_budget_s) > 0:
            raise ConfigError(f"latent-bo: pretrain_budget_s must be a positive number of seconds, got {pretrain_budget_s!r}")
        self.pretrain_budget_s = None if pretrain_budget_s is None else float(pretrain_budget_s)
        self.auto_pretrain = bool(auto_pretrain)
        self.batch_size = int(batch_size)
        self.initial = initial
        self.num_initial = int(num_initial)
        self.decodes = int(decodes)
        self.decode_choice = decode_choice
        self.acquisition = acquisition
        self.target = target
        if not 0 <= local_fraction <= 1:
            raise ConfigError(f"latent-bo: local_fraction must be in [0, 1], got {local_fraction}")
        self.local_fraction, self.local_top, self.local_samples = float(local_fraction), int(local_top), int(local_samples)
        self.pool_size = int(pool_size)
        self.pool_seed = int(self.rng.integers(2**31))
        self.pool_extra: list[Architecture] = []  # mutants the pool did not have, in the order added
        self.grid_size = int(grid_size)
        self.grid = grid
        self.num_inducing = int(num_inducing)
        self.gp_epochs = int(gp_epochs)
        self.gp_lr = gp_lr
        self.lbfgs_maxiter = int(lbfgs_maxiter)
        self.device = device
        self.threads = threads
        self.progress = progress
        self.queue: list[tuple[Architecture, np.ndarray]] = []  # proposals waiting, with their latent point
        self.z_of: dict[str, np.ndarray] = {}  # hash -> the latent point it stands for
        self.obs_z: list[np.ndarray] = []
        self.obs_y: list[float] = []  # higher is better
        self.invalid_z: list[np.ndarray] = []  # selected points without a valid decode
        self.initial_done = False
        self.rounds = 0
        self.fallbacks = 0
        self.log: list[dict[str, Any]] = []  # one record per BO round: its seconds, where it ran, points queued
        self._last_z: np.ndarray | None = None
        self.model_path = ""
        self.model = None
        path = self._resolve_model(train=False)  # a checkpoint or a finished cached model loads now (cheap)
        if path is not None:
            self._load(path)

    # ------------------------------------------------------------------ the model
    def _ensure_model(self) -> None:
        """Load the model, pretraining it first when it is not cached (the first ``suggest``)."""
        if self.model is None:
            self._load(self._resolve_model(train=True))

    def _load(self, path: Path) -> None:
        with _threads(self.threads):
            self.model, _, ckpt = load_model(path, space=self.space, device=self.device or "cpu")
        self.model_path = str(path)
        self.codec = GraphCodec(self.space)
        lat = ckpt.get("latents")
        if lat is None:
            raise CheckpointError(f"{path}: pretraining did not finish (no training latents); resume it with nas-ray pretrain --resume")
        self.box = (lat["min"].numpy().astype(np.float64), lat["max"].numpy().astype(np.float64))
        self.latent_mean = lat["mean"].numpy().astype(np.float64)
        self.latent_std = lat["std"].numpy().astype(np.float64)
        self._pool: list[Architecture] | None = None  # acquisition="pool": built at the first BO round
        self._pool_z: np.ndarray | None = None
        self._pool_index: dict[str, int] = {}

    def _resolve_model(self, train: bool = True) -> Path | None:
        """The checkpoint to use: ``model`` itself when it is a file, else the cached auto-pretrained
        model, trained (or its training continued) now when ``train`` (else None when it needs any)."""
        spec = self.model_spec
        if spec not in MODELS:
            path = Path(spec).expanduser()
            if not path.is_file():
                raise CheckpointError(f"latent-bo: model {spec!r} is neither a checkpoint file nor one of {', '.join(MODELS)}")
            return path
        config = PretrainConfig.from_dict({"model": spec, **AUTO_PRETRAIN, "model_options": AUTO_MODEL_OPTIONS[spec],
                                           **self.pretrain_options})
        key = json.dumps({"space": [self.space.name, self.space.options()], "config": _jsonable(config), "graphs": self.pretrain_graphs},
                         sort_keys=True, default=str)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        path = cache_dir() / "graph-vae" / f"{self.space.name}-{spec}-{digest}.pt"
        total = config.epochs * config.resolved_iterations()
        done = 0
        if path.is_file():
            try:
                cached = torch.load(path, map_location="cpu", weights_only=True)
                done = int(cached["train"]["epochs_done"])
                if "latents" in cached and done >= total:
                    return path
            except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt below
                logger.warning("latent-bo: cached model %s is unreadable; pretraining again", path)
                path.unlink(missing_ok=True)
                done = 0
        if not train:
            return None
        if not self.auto_pretrain:
            raise ConfigError(f"latent-bo: no pretrained {spec} model for {self.space.name} in the cache and auto_pretrain is off; "
                              f"train one with `nas-ray pretrain --space {self.space.name} --model {spec}` and pass its path as model")
        graphs = space_graphs(self.space, self.pretrain_graphs, seed=0)
        with _threads(self.threads):
            estimate = estimate_pretrain_seconds(self.space, graphs, config, epochs=total - done, device=self.device)
        bound = "" if self.pretrain_budget_s is None else f", bounded at {self.pretrain_budget_s:.0f} s"
        logger.warning("latent-bo: pretraining the %s model for %s now (%d graphs, %d of %d epochs left, about %.0f minutes "
                       "here%s); it is cached at %s. Pass model=PATH, pretrain_budget_s or auto_pretrain=False to avoid this.",
                       spec, self.space.name, len(graphs), total - done, total, estimate / 60, bound, path)
        with _threads(self.threads):
            pretrain(self.space, graphs, config, checkpoint=path, resume=True, device=self.device, progress=self.progress,
                     max_seconds=self.pretrain_budget_s)
        return path

    # ------------------------------------------------------------------ proposals
    def _propose(self) -> Architecture | None:
        self._ensure_model()
        background = resolve_mode(self.updates) != "sync"
        with _threads(self.threads):
            if not self.initial_done and not self.queue:
                self._initial_design()
            elif self.initial_done and len(self.obs_y) >= 2 and not self.updating:
                # inline, a round when the queue is empty; in the background, the next round starts
                # when half a batch is left, so it is ready before the queue runs dry
                if len(self.queue) <= (self.batch_size // 2 if background else 0):
                    self._bo_round()
            if self.queue:
                arch, z = self.queue.pop(0)
                self._last_z = z
                return arch
            if self.live and len(self.obs_y) < 2:
                return None  # wait for the first results
            self._last_z = None
            if background:  # the round is still running (or found nothing new): one uniform sample
                self.fallbacks += 1
                return self.space.sample(self.rng)
            # no GP yet, or a round whose points all decoded to invalid or known graphs: a batch of
            # uniform samples of the space (encoded when accepted), so the next round has new data
            self.fallbacks += self.batch_size
            self.queue.extend((self.space.sample(self.rng), None) for _ in range(self.batch_size - 1))
            return self.space.sample(self.rng)

    def _accepted(self, arch: Architecture, arch_hash: str) -> None:
        self._ensure_model()
        z = self._last_z
        if z is None:
            z = encode_archs(self.model, self.codec, [arch])[0].numpy().astype(np.float64)
        self.z_of[arch_hash] = z

    def _observe(self, arch: Architecture, arch_hash: str, score: float) -> None:
        self.obs_z.append(self.z_of[arch_hash])
        self.obs_y.append(float(score))

    def _initial_design(self) -> None:
        self.initial_done = True
        if self.initial == "random":
            archs = [self.space.sample(self.rng) for _ in range(self.num_initial)]
        else:
            from nas_ray.models.sgp import latent_bin_sample

            pool = space_graphs(self.space, self.pretrain_graphs, seed=int(self.rng.integers(2**31)))
            z = encode_archs(self.model, self.codec, pool).numpy()
            idx = latent_bin_sample(z, self.num_initial, seed=int(self.rng.integers(2**31)))
            archs = [pool[i] for i in idx]
        self.queue.extend((a, None) for a in archs)

    def _gp_inputs(self, seed: int) -> dict[str, Any]:
        """What a round's GP is fit to: the evaluated latent points (invalid decodes at the worst
        score), and the running and queued proposals, believed at their predicted means."""
        worst = min(self.obs_y) if self.obs_y else 0.0
        pending = [self.z_of[h] for _, h in self.live.values() if h in self.z_of]
        pending += [z for _, z in self.queue if z is not None]
        return {"x": np.array(self.obs_z + self.invalid_z, dtype=np.float64),
                "y": np.array(self.obs_y + [worst] * len(self.invalid_z)), "pending": np.array(pending, dtype=np.float64),
                "target": self.target, "num_inducing": self.num_inducing, "epochs": self.gp_epochs, "lr": self.gp_lr,
                "seed": seed}

    def _ensure_pool(self) -> None:
        """The candidate architectures and their latent means: every cell of a space small enough to
        enumerate (NB201's 15,625), else ``pool_size`` distinct random ones (drawn with ``pool_seed``)."""
        if self._pool is not None:
            return
        self._pool = space_graphs(self.space, self.pool_size, seed=self.pool_seed) + list(self.pool_extra)
        self._pool_index = {self.space.hash(a): i for i, a in enumerate(self._pool)}
        self._pool_z = encode_archs(self.model, self.codec, self._pool).numpy().astype(np.float64)

    def _bo_round(self) -> None:
        """Start a BO round (inline or in the background, as ``updates`` says); its batch joins the
        queue when ``_install_update`` gets it."""
        self.rounds += 1
        if self.acquisition == "pool":
            self._ensure_pool()
            seed = int(self.rng.integers(2**31))
            inputs = self._gp_inputs(seed)
            n_local = min(self.batch_size, int(round(self.batch_size * self.local_fraction)))
            near = self._neighbourhood() if n_local and self.obs_y else []  # may add mutants to the pool
            queued = {self.space.hash(a) for a, _ in self.queue}
            taken = {self._pool_index[h] for h in self.proposed.keys() | queued if h in self._pool_index}
            available = np.ones(len(self._pool), dtype=bool)
            available[list(taken)] = False
            self._start_update(_pool_round, inputs, self._pool_z, np.asarray(near, dtype=np.int64), available, n_local,
                               self.batch_size, self.threads, tag="pool")
        else:
            seed = int(self.rng.integers(2**31))
            select = {"lower": self.box[0], "upper": self.box[1], "batch_size": self.batch_size, "grid_size": self.grid_size,
                      "grid": self.grid, "mean": self.latent_mean, "std": self.latent_std, "lbfgs_maxiter": self.lbfgs_maxiter}
            self._start_update(_decode_round, self._gp_inputs(seed), select, self.model, self.decodes,
                               self.decode_choice == "first-valid", self.threads, tag="decode")

    def _install_update(self, value: Any, seconds: float, tag: Any) -> None:
        queued = {self.space.hash(a) for a, _ in self.queue}
        before = len(self.queue)
        if tag == "pool":
            for i in value:
                h = self.space.hash(self._pool[i])
                if h not in self.proposed and h not in queued:  # proposed meanwhile: skipped
                    queued.add(h)
                    self.queue.append((self._pool[i], self._pool_z[i]))
        else:
            points, decoded = value
            for k, point in enumerate(points):
                arch = self._choose(decoded[k], queued)
                if arch is None:
                    self.invalid_z.append(point)
                    continue
                queued.add(self.space.hash(arch))
                self.queue.append((arch, point))
        self.log.append({"round": self.rounds, "fit_s": seconds, "where": resolve_mode(self.updates), "queued": len(self.queue) - before,
                         "observations": len(self.obs_y)})

    def _neighbourhood(self) -> list[int]:
        """Pool indices of random one- and two-step mutations of the ``local_top`` best observed
        architectures (mutants the pool lacks are encoded and added to it)."""
        order = sorted(self.history, key=lambda h: h[2], reverse=self.mode != "min")[: self.local_top]
        found: dict[str, Architecture] = {}
        for arch, _, _ in order:
            for _ in range(self.local_samples):
                child = self.space.mutate(arch, self.rng)
                if self.rng.random() < 0.5:
                    child = self.space.mutate(child, self.rng)
                found.setdefault(self.space.hash(child), child)
        new = [(h, a) for h, a in found.items() if h not in self._pool_index]
        if new:
            z = encode_archs(self.model, self.codec, [a for _, a in new]).numpy().astype(np.float64)
            for (h, a), row in zip(new, z):
                self._pool_index[h] = len(self._pool)
                self._pool.append(a)
                self.pool_extra.append(a)  # in the saved state, so a restored pool is the same
            self._pool_z = np.concatenate([self._pool_z, z])
        return [self._pool_index[h] for h in found]

    def _choose(self, decodes: list[tuple[np.ndarray, np.ndarray, int]], queued: set[str]) -> Architecture | None:
        """The most frequent valid decode (or the first valid one) not proposed or queued yet."""
        counts: Counter[str] = Counter()
        first: dict[str, Architecture] = {}
        for types, adj, count in decodes:
            arch = self.codec.to_arch(types, adj)
            if arch is None:
                continue
            h = self.space.hash(arch)
            counts[h] += count
            first.setdefault(h, arch)
            if self.decode_choice == "first-valid" and h not in self.proposed and h not in queued:
                return arch
        order = {h: i for i, h in enumerate(first)}
        for h, _ in sorted(counts.items(), key=lambda kv: (-kv[1], order[kv[0]])):
            if h not in self.proposed and h not in queued:
                return first[h]
        return None

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        for key in _EXCLUDED_STATE:
            state.pop(key, None)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        path = state.get("model_path")
        before = getattr(self, "model_path", None)
        super().set_state(state)
        if path and (before != path or getattr(self, "model", None) is None):
            self.model_spec = path
            self._load(Path(path))


def _fit_gp(x: np.ndarray, y: np.ndarray, pending: np.ndarray, target: str, num_inducing: int, epochs: int,
            lr: float | None, seed: int):  # noqa: ANN202 - a SparseGP, imported lazily
    """The round's sparse GP on (latent point, score), with pending points believed at its mean."""
    from nas_ray.models.sgp import SparseGP

    y = -y  # the GP minimises
    if target == "copula":  # ranks -> normal quantiles: a few broken cells (10 % accuracy) no longer set the scale
        from scipy.stats import norm, rankdata

        y = norm.ppf((rankdata(y) - 0.5) / len(y))
    gp = SparseGP(num_inducing=num_inducing, epochs=epochs, seed=seed, **({} if lr is None else {"lr": float(lr)})).fit(x, y)
    if len(pending):  # asynchronous batches: running trials count as their predicted mean (kriging believer)
        gp = gp.with_points(pending, gp.predict(pending)[0], standardized=True)
    return gp


def _pool_round(inputs: dict[str, Any], pool_z: np.ndarray, near: np.ndarray, available: np.ndarray, n_local: int,
                batch_size: int, threads: int | None) -> list[int]:
    """A pool round (a model update: see ``nas_ray.searchers.updates``): EI picks of pool indices,
    ``n_local`` of them among the neighbourhood ``near`` of the best results."""
    from nas_ray.models.sgp import select_from_pool

    available = available.copy()  # a Ray task's arrays are read-only views of the object store
    with _threads(threads):
        gp = _fit_gp(**inputs)
        picked: list[int] = []
        if len(near):
            mask = np.zeros(len(pool_z), dtype=bool)
            mask[near] = available[near]
            picked = select_from_pool(gp, pool_z, n_local, available=mask)
            if picked:  # the rest of the batch believes these at their predicted means
                zp = pool_z[picked]
                gp = gp.with_points(zp, gp.predict(zp)[0], standardized=True)
                available[picked] = False
        if len(picked) < batch_size:
            picked += select_from_pool(gp, pool_z, batch_size - len(picked), available=available)
    return picked


def _decode_round(inputs: dict[str, Any], select: dict[str, Any], model: Any, decodes: int, first_valid: bool,
                  threads: int | None) -> tuple[np.ndarray, list[list[tuple[np.ndarray, np.ndarray, int]]]]:
    """A decode round (a model update): EI over the latent box, then every picked point decoded
    ``decodes`` times; returns the points and, per point, its decodes as (types, adjacency, count)."""
    from nas_ray.models.sgp import select_batch

    seed = inputs["seed"]
    with _threads(threads):
        gp = _fit_gp(**inputs)
        lower, upper = select.pop("lower"), select.pop("upper")
        points = np.asarray(select_batch(gp, lower, upper, seed=seed, **select), dtype=np.float64)
        gen = torch.Generator().manual_seed(seed)
        dev = next(model.parameters()).device
        z = torch.as_tensor(points, dtype=torch.float32).to(dev)
        if first_valid:  # the published code's order-dependent choice needs every decode in order
            flat = model.decode(z.repeat_interleave(decodes, dim=0), stochastic=True, generator=gen)
            decoded = [[(t, a, 1) for t, a in flat[k * decodes:(k + 1) * decodes]] for k in range(len(points))]
        else:
            decoded = model.decode_counts(z, decodes, generator=gen)
    return points, decoded


def _jsonable(config: PretrainConfig) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(config)

"""``nasgem``: NASGEM's bootstrap optimisation on a kernel-guided graph embedding (Cheng et al., NASGEM, AAAI 2021).

A frozen encoder (trained once per space so that embedding cosine similarity matches the
Weisfeiler-Lehman kernel; auto-trained and cached under ``$NAS_RAY_CACHE`` unless a checkpoint of
``nas-ray train-encoder`` is given) embeds architectures. After a random initial design, a small MLP
predictor is fitted on (embedding, score) and fine-tuned after every ``batch_size`` new results;
each suggestion is the best-predicted of ``candidates`` cells sampled from the space and not yet
proposed. The candidate pool is kept between suggestions (its embeddings cached) and a ``refresh``
fraction of it is resampled after each refit, so a suggestion costs a prediction pass, not 10,000
encodings.

Multi-objective: with ``objective=Objective(metric, cost=..., pareto=True)`` (what ``nas-ray search
--cost COL --pareto`` passes) the predictor has two heads, accuracy and log-cost, and a suggestion
maximises the predicted hypervolume improvement over the front of the results so far (predictions
for running trials count as results, the "kriging believer"); without ``pareto`` it optimises the
evaluator's scalar score S = acc − λ·ln(cost) like any other searcher.

>>> from nas_ray.searchers import get_searcher
>>> s = get_searcher("nasgem", "nasbench201", seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_ray.data import cache_dir
from nas_ray.errors import CheckpointError, ConfigError, ConfigTypeError, UnknownName
from nas_ray.graph import Architecture
from nas_ray.models.nasgem import (
    AdjacencyFeatures,
    EncoderConfig,
    ScorePredictor,
    embed,
    fit_scores,
    load_encoder,
    predict_scores,
    train_encoder,
)
from nas_ray.objectives import Objective, hypervolume_improvement, pareto_mask, reference_point
from nas_ray.searchers.base import ArchitectureSearcher
from nas_ray.searchers.graphpnas import _threads
from nas_ray.spaces import SearchSpace

logger = logging.getLogger(__name__)

#: the encoder trained when none is given: the paper's defaults, with fewer iterations for a laptop
AUTO_ENCODER: dict[str, Any] = {"pairs": 50_000, "iterations": 5_000}
_EXCLUDED_STATE = ("encoder", "features")


class NASGEMSearcher(ArchitectureSearcher):
    """NASGEM: WL-kernel-guided embedding + MLP score predictor + bootstrap optimisation.

    Args:
        encoder: a ``nas-ray train-encoder`` checkpoint; None trains one with ``AUTO_ENCODER`` updated
            by ``encoder_options`` and caches it. The training happens when the encoder is first
            needed (the first embedding), never while the searcher is built, and is announced with
            a warning; ``auto_train=False`` makes an uncached encoder an error instead.
        num_initial: random architectures before the predictor is first fitted.
        candidates: M, the cells sampled per bootstrap step (the paper: 50,000 on NB101).
        refresh: fraction of the candidate pool resampled after each refit (1.0 = a fresh pool).
        batch_size: results between predictor refits.
        fit_steps / finetune_steps: Adam steps of the first fit and of each fine-tune (lr ``lr``).
        objective: an ``Objective`` (or its fields as a dict); with ``pareto=True`` the searcher
            reads the accuracy and cost of each result and maximises hypervolume improvement.
        threads: torch threads while fitting/predicting (None = leave torch's setting).
        updates: where the predictor is fine-tuned and the pool predicted (``"auto"``: a Ray task
            under Tune, the latest predictor ranking the pool meanwhile; inline otherwise; see
            ``nas_ray.searchers.updates``).
    """

    name = "nasgem"
    supports_pareto = True

    def __init__(
        self,
        space: SearchSpace | str,
        *,
        encoder: str | None = None,
        encoder_options: Mapping[str, Any] | None = None,
        auto_train: bool = True,
        num_initial: int = 10,
        candidates: int = 10_000,
        refresh: float = 0.2,
        batch_size: int = 1,
        fit_steps: int = 500,
        finetune_steps: int = 100,
        lr: float = 1e-3,
        objective: Objective | Mapping[str, Any] | None = None,
        threads: int | None = None,
        device: str | None = None,
        progress: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(space, **kwargs)
        for key, value in (("num_initial", num_initial), ("candidates", candidates), ("batch_size", batch_size),
                           ("fit_steps", fit_steps)):
            if int(value) < 1:
                raise ConfigError(f"nasgem: {key} must be >= 1, got {value!r}")
        if not 0.0 < float(refresh) <= 1.0:
            raise ConfigError(f"nasgem: refresh must be in (0, 1], got {refresh!r}")
        if isinstance(objective, Mapping):
            objective = Objective(**objective)
        if objective is not None and not isinstance(objective, Objective):
            raise ConfigTypeError(f"nasgem: objective must be an Objective or a dict of its fields, got {objective!r}")
        self.objective = objective
        self.pareto = bool(objective is not None and objective.pareto)
        self.encoder_spec = encoder
        self.encoder_options = dict(encoder_options or {})
        self.auto_train = bool(auto_train)
        EncoderConfig.from_dict({**AUTO_ENCODER, **self.encoder_options})  # unknown options fail here, not later
        self.num_initial = int(num_initial)
        self.num_candidates = int(candidates)
        self.refresh = float(refresh)
        self.batch_size = int(batch_size)
        self.fit_steps, self.finetune_steps, self.lr = int(fit_steps), int(finetune_steps), float(lr)
        self.threads, self.device, self.progress = threads, device, progress
        # observations: embeddings and targets (score, or accuracy and log-cost in Pareto mode)
        self.obs_x: list[np.ndarray] = []
        self.obs_y: list[list[float]] = []
        self.pending_x: dict[str, np.ndarray] = {}  # hash -> embedding of a proposed, unfinished architecture
        self.new_results = 0
        self.predictor: ScorePredictor | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.x_mean: np.ndarray | None = None
        self.x_std: np.ndarray | None = None
        self.pool: list[Architecture] = []
        self.pool_hash: list[str] = []
        self.pool_x = np.zeros((0, 0), dtype=np.float32)
        self.pool_pred = np.zeros((0, 0), dtype=np.float32)
        self.y_stats = (np.zeros(1), np.ones(1))
        self.fits = 0
        self.log: list[dict[str, float]] = []
        self._result: Mapping[str, Any] | None = None
        self.encoder = None
        self.encoder_path = ""
        self.features = AdjacencyFeatures(self.space)
        path = self._resolve_encoder(train=False)  # a given or cached encoder loads now (cheap)
        if path is not None:
            self._load(path)

    # ------------------------------------------------------------------ the encoder
    def _ensure_encoder(self) -> None:
        if self.encoder is None:
            self._load(self._resolve_encoder(train=True))

    def _load(self, path: Path) -> None:
        with _threads(self.threads):
            self.encoder, _, _ = load_encoder(path, space=self.space)
        self.encoder_path = str(path)
        self.features = AdjacencyFeatures(self.space)

    def _resolve_encoder(self, train: bool = True) -> Path | None:
        if self.encoder_spec is not None:
            path = Path(self.encoder_spec).expanduser()
            if not path.is_file():
                raise CheckpointError(f"nasgem: encoder {self.encoder_spec!r} is not a file (nas-ray train-encoder writes one)")
            return path
        config = EncoderConfig.from_dict({**AUTO_ENCODER, **self.encoder_options})
        key = json.dumps({"space": [self.space.name, self.space.options()], "config": _record(config)}, sort_keys=True, default=str)
        path = cache_dir() / "nasgem" / f"{self.space.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.pt"
        if path.is_file():
            try:
                load_encoder(path, space=self.space)
                return path
            except CheckpointError:
                logger.warning("nasgem: cached encoder %s is unreadable; training again", path)
        if not train:
            return None
        if not self.auto_train:
            raise ConfigError(f"nasgem: no trained encoder for {self.space.name} in the cache and auto_train is off; "
                              f"train one with `nas-ray train-encoder --space {self.space.name}` and pass its path as encoder")
        logger.warning("nasgem: training the kernel-guided encoder for %s now (%d pairs, %d iterations; cached at %s). "
                       "Pass encoder=PATH or auto_train=False to avoid this.", self.space.name, config.pairs, config.iterations, path)
        with _threads(self.threads):
            train_encoder(self.space, config, checkpoint=path, device=self.device, progress=self.progress)
        return path

    def embed(self, archs: list[Architecture]) -> np.ndarray:
        """Encoder embeddings of ``archs`` [len, d]."""
        self._ensure_encoder()
        with _threads(self.threads):
            return embed(self.encoder, self.features(archs))

    # ------------------------------------------------------------------ Tune hooks
    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self._result = result
        try:
            super().on_trial_complete(trial_id, result, error)
        finally:
            self._result = None

    def _targets(self, score: float) -> list[float]:
        if not self.pareto:
            return [score]
        result, obj = self._result or {}, self.objective
        missing = [k for k in (obj.metric, obj.cost) if k not in result]
        if missing:
            raise UnknownName(f"nasgem (pareto): the result has no {', '.join(map(repr, missing))}; it reports {', '.join(sorted(result))}")
        acc, cost = float(result[obj.metric]), float(result[obj.cost])
        if not (math.isfinite(cost) and cost > 0):
            raise ConfigError(f"nasgem (pareto): cost {obj.cost} must be positive and finite, got {cost}")
        return [acc, math.log(cost)]

    def _observe(self, arch: Architecture, arch_hash: str, score: float) -> None:
        x = self.pending_x.pop(arch_hash, None)
        if x is None:
            x = self.embed([arch])[0]
        self.obs_x.append(x)
        self.obs_y.append(self._targets(score))
        self.new_results += 1

    def _observe_failure(self, arch: Architecture, arch_hash: str) -> None:
        self.pending_x.pop(arch_hash, None)

    def _accepted(self, arch: Architecture, arch_hash: str) -> None:
        if self.predictor is not None:  # the believer needs running trials' embeddings
            self.pending_x[arch_hash] = self.embed([arch])[0]

    # ------------------------------------------------------------------ proposals
    def _propose(self) -> Architecture | None:
        if len(self.proposed) < self.num_initial or len(self.obs_y) < 2:
            if len(self.proposed) >= self.num_initial and self.live:
                return None  # wait for the initial design's results
            return self.space.sample(self.rng)
        self._ensure_encoder()
        with _threads(self.threads):
            due = self.predictor is None or self.new_results >= self.batch_size or (self.new_results and not self.live)
            if due and not self.updating:
                self._refit()
            if self.predictor is None:  # the first fit runs in the background: a uniform draw meanwhile
                return self.space.sample(self.rng)
            return self._best_candidate()

    def _refit(self) -> None:
        """Fine-tune the predictor on every result, refresh part of the pool and predict it: inline
        or in the background, as ``updates`` says (the data and the new pool cells are taken now)."""
        x = np.stack(self.obs_x)
        y = np.asarray(self.obs_y, dtype=np.float64)
        if self.x_mean is None:
            self._apply_pool(*self._pool_changes(1.0))  # the first pool fixes the embedding standardisation
            self.x_mean = self.pool_x.mean(0)
            self.x_std = np.where(self.pool_x.std(0) > 1e-6, self.pool_x.std(0), 1.0)
        mean, std = y.mean(0), y.std(0)
        std = np.where(std > 1e-12, std, 1.0)
        first = self.predictor is None
        predictor, optimizer = self.predictor, self.optimizer
        if first:
            torch.manual_seed(int(self.rng.integers(2**31)))
            predictor, optimizer = ScorePredictor(x.shape[1], outputs=y.shape[1]), None
        fit = {"steps": self.fit_steps if first else self.finetune_steps, "lr": self.lr, "seed": int(self.rng.integers(2**31))}
        replace, new = (np.zeros(0, dtype=np.int64), []) if first else self._pool_changes(self.refresh)
        self.new_results = 0  # results from now on go to the next fit
        self._start_update(_refit_predictor, (predictor, optimizer), self._scaled(x), (y - mean) / std, fit, self.encoder,
                           self.features(new) if new else None, replace, self.pool_x, (self.x_mean, self.x_std), (mean, std),
                           self.threads, tag={"replace": replace, "new": new, "y_stats": (mean, std), "observations": len(y)})

    def _install_update(self, value: Any, seconds: float, tag: Any) -> None:
        (self.predictor, self.optimizer), self.pool_x, self.pool_pred = value
        for i, arch in zip(tag["replace"].tolist(), tag["new"]):
            self.pool[i] = arch
            self.pool_hash[i] = self.space.hash(arch)
        self.y_stats = tag["y_stats"]
        self.fits += 1
        self.log.append({"fit": self.fits, "observations": tag["observations"], "fit_s": seconds})

    def _state_while_updating(self, state: dict[str, Any]) -> None:
        state["new_results"] = max(1, state["new_results"])  # the restored searcher fits again

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        return _scale(x, self.x_mean, self.x_std)

    def _pool_changes(self, fraction: float) -> tuple[np.ndarray, list[Architecture]]:
        """Which pool rows to resample (``fraction`` of them, and every pool cell proposed since) and
        their new cells; the first call makes the whole pool."""
        m = self.num_candidates
        if len(self.pool) != m:
            replace = np.arange(m)
            self.pool, self.pool_hash = [None] * m, [""] * m  # type: ignore[list-item]
            self.pool_x = np.zeros((m, self.encoder.embed_dim), dtype=np.float32)
        else:
            stale = np.flatnonzero([h in self.proposed for h in self.pool_hash])
            fresh = self.rng.choice(m, size=int(round(fraction * m)), replace=False) if fraction < 1.0 else np.arange(m)
            replace = np.union1d(stale, fresh)
        return replace, [self.space.sample(self.rng) for _ in replace]

    def _apply_pool(self, replace: np.ndarray, new: list[Architecture]) -> None:
        for i, arch in zip(replace.tolist(), new):
            self.pool[i] = arch
            self.pool_hash[i] = self.space.hash(arch)
        if len(new):
            self.pool_x[replace] = embed(self.encoder, self.features(new))

    def _best_candidate(self) -> Architecture | None:
        taken = np.fromiter((h in self.proposed for h in self.pool_hash), dtype=bool, count=len(self.pool_hash))
        if taken.all():  # every pooled cell was proposed: a uniform draw (the base skips repeats)
            return self.space.sample(self.rng)
        if self.pareto:
            value = self._hypervolume_gain()
        else:
            value = self.pool_pred[:, 0].astype(np.float64)
        value = np.where(taken, -np.inf, value)
        # duplicates inside the pool share a hash: the first best one is taken, the base skips repeats
        return self.pool[int(np.argmax(value))]

    def _hypervolume_gain(self) -> np.ndarray:
        """Predicted hypervolume improvement of each pool cell over the front of the results, with
        running trials counted at their predicted values; dominated cells are ranked by how close
        their predicted score comes (a small negative value), so a choice is always made."""
        obs = np.asarray(self.obs_y, dtype=np.float64)
        acc, logc = obs[:, 0], obs[:, 1]
        if self.pending_x:
            mean, std = self.y_stats
            p = predict_scores(self.predictor, self._scaled(np.stack(list(self.pending_x.values())))) * std + mean
            acc, logc = np.concatenate([acc, p[:, 0]]), np.concatenate([logc, p[:, 1]])
        front = pareto_mask(acc, logc)
        ref_acc, ref_cost = reference_point(obs[:, 0], obs[:, 1])
        cand_acc, cand_cost = self.pool_pred[:, 0].astype(np.float64), self.pool_pred[:, 1].astype(np.float64)
        gain = hypervolume_improvement(acc[front], logc[front], cand_acc, cand_cost, ref_acc, ref_cost)
        if gain.max() > 0:
            return gain
        scalar = cand_acc / self.objective.scale - self.objective.lam * cand_cost  # Pareto mode always has an objective
        return scalar - scalar.max() - 1.0  # all negative: the best scalar score wins

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        for key in (*_EXCLUDED_STATE, "_result"):
            state.pop(key, None)
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        path = state.get("encoder_path")
        before = getattr(self, "encoder_path", None)
        super().set_state(state)
        if path and (before != path or getattr(self, "encoder", None) is None):
            self.encoder_spec = path
            self._load(Path(path))


def _scale(x: np.ndarray, x_mean: np.ndarray, x_std: np.ndarray) -> np.ndarray:
    return ((x - x_mean) / x_std).astype(np.float32)


def _refit_predictor(model: tuple[ScorePredictor, Any], x: np.ndarray, y: np.ndarray, fit: dict[str, Any], encoder: Any,
                     new_features: np.ndarray | None, replace: np.ndarray, pool_x: np.ndarray,
                     x_stats: tuple[np.ndarray, np.ndarray], y_stats: tuple[np.ndarray, np.ndarray],
                     threads: int | None) -> tuple[tuple[ScorePredictor, Any], np.ndarray, np.ndarray]:
    """NASGEM's model update (see ``nas_ray.searchers.updates``): fine-tune the predictor (with its
    optimiser's moments) on standardised (x, y), embed the pool's new cells and predict the pool."""
    predictor, optimizer = model
    with _threads(threads):
        optimizer = fit_scores(predictor, x, y, optimizer=optimizer, **fit)
        if new_features is not None:
            if not pool_x.flags.writeable:  # a Ray task's arrays are read-only views of the object store
                pool_x = pool_x.copy()
            pool_x[replace] = embed(encoder, new_features)
        mean, std = y_stats
        pool_pred = predict_scores(predictor, _scale(pool_x, *x_stats)) * std + mean
    return (predictor, optimizer), pool_x, pool_pred


def _record(config: EncoderConfig) -> dict[str, Any]:
    from nas_ray.models.nasgem import _config_record

    return _config_record(config)

"""What every nas-ray searcher shares, implemented once."""

from __future__ import annotations

import abc
import logging
import math
import pickle
import time
from collections import deque
from typing import Any, ClassVar

import numpy as np
from ray.tune.search import Searcher

from nas_ray.graph import Architecture
from nas_ray.spaces import SearchSpace, get_space
from nas_ray.errors import ConfigError, ConfigTypeError
from nas_ray.searchers.updates import ModelUpdate, check_mode, resolve_mode

logger = logging.getLogger(__name__)

ARCH_KEY = "arch"  # the trial config carries the architecture's JSON dict under this key
_WAIT, _EXHAUSTED = "wait", "exhausted"  # why _next_unique has no architecture
_STATE_VERSION = 1


class ArchitectureSearcher(Searcher, metaclass=abc.ABCMeta):
    """Base of nas-ray's Tune searchers: proposes architectures of one search space.

    Subclasses implement ``_propose()`` (an Architecture, or None to wait for running trials) and
    ``_observe(arch, hash, score)`` (``score`` is always "higher is better": the metric, negated when
    ``mode="min"``). The base gives every searcher:

    - seeding: ``self.rng`` is a ``numpy.random.Generator`` seeded with ``seed``;
    - the trial config ``{"arch": arch.to_dict()}``;
    - no repeats: an architecture whose ``space.hash`` was already proposed is never proposed again
      (after ``max_retries`` duplicate proposals in a row the base draws unseen architectures
      uniformly; when the space is exhausted ``suggest`` returns ``Searcher.FINISHED``);
    - pending-trial bookkeeping, failed trials (``error=True``, a missing or non-finite metric) kept
      apart from the history and never counted as successes; unknown trial ids ignored;
    - ``save`` / ``restore`` of the whole state (RNG, history, pending trials, models);
    - metric and mode from the constructor or from Tune's ``set_search_properties``;
    - model updates off the driver: a searcher with an expensive update hands it to
      ``_start_update`` and installs its value in ``_install_update``; ``updates`` says where it runs
      (``"auto"``: a Ray task when Ray is initialized, as under Tune, else inline; ``"sync"``: always
      inline, exactly reproducible; ``"ray"``; ``"thread"``; see ``nas_ray.searchers.updates``).

    >>> from nas_ray.searchers import get_searcher
    >>> s = get_searcher("random", "nasbench201", seed=0)
    >>> config = s.suggest("trial-1")
    >>> sorted(config)
    ['arch']
    >>> s.on_trial_complete("trial-1", {"reward": 91.0})
    """

    #: registry name, set by subclasses
    name: ClassVar[str] = ""
    #: the drivers that can run this searcher: "tune" (it proposes through Tune's Searcher API) and,
    #: for a method that also exists as an RLlib algorithm, "rllib"
    drivers: ClassVar[tuple[str, ...]] = ("tune",)

    @classmethod
    def defaults_for(cls, space: SearchSpace, *, budget: int | None = None, dataset: str | None = None) -> dict[str, Any]:
        """Options this searcher should get for a run on ``space`` with ``budget`` evaluations (and the
        evaluator's ``dataset`` where known); the user's explicit options override them. Default: none."""
        return {}

    def __init__(
        self,
        space: SearchSpace | str,
        *,
        metric: str | None = "reward",
        mode: str | None = "max",
        seed: int | None = 0,
        max_retries: int = 20,
        updates: str = "auto",
    ) -> None:
        if mode not in (None, "max", "min"):
            raise ConfigError(f"mode must be 'max' or 'min', got {mode!r}")
        super().__init__(metric=metric, mode=mode)
        self.space = get_space(space) if isinstance(space, str) else space
        if not isinstance(self.space, SearchSpace):
            raise ConfigTypeError(f"space must be a SearchSpace or a registered name, got {space!r}")
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.max_retries = int(max_retries)
        self.proposed: dict[str, int] = {}  # hash -> query index, in proposal order
        self.live: dict[str, tuple[Architecture, str]] = {}  # trial id -> (arch, hash)
        self.errored: dict[str, tuple[Architecture, str]] = {}  # failed trial ids (a later success still counts)
        self.history: list[tuple[Architecture, str, float]] = []  # completed: (arch, hash, metric as reported)
        self.failed: list[str] = []  # hashes of failed evaluations
        self.exhausted = False
        self.updates = check_mode(updates)
        self._update: ModelUpdate | None = None  # the background model update running now (not state)
        #: seconds each recent ``suggest`` took (drained by the search's metrics; not part of the state)
        self.suggest_latencies: deque[float] = deque(maxlen=1000)

    # ------------------------------------------------------------------ subclass hooks
    @abc.abstractmethod
    def _propose(self) -> Architecture | None:
        """The next architecture to evaluate (duplicates are filtered by the base), or None to wait."""

    def _observe(self, arch: Architecture, arch_hash: str, score: float) -> None:
        """A successful evaluation; ``score`` is higher-is-better."""

    def _observe_failure(self, arch: Architecture, arch_hash: str) -> None:
        """A failed evaluation."""

    def _on_duplicate(self, arch: Architecture, arch_hash: str) -> None:
        """``_propose`` returned an architecture already proposed (it will not be evaluated)."""

    def _accepted(self, arch: Architecture, arch_hash: str) -> None:
        """``_propose``'s architecture is new and becomes a trial."""

    def _install_update(self, value: Any, seconds: float, tag: Any) -> None:
        """A model update started by ``_start_update`` has returned ``value`` (it took ``seconds``)."""
        raise NotImplementedError(f"{type(self).__name__} starts model updates but does not install them")

    def _state_while_updating(self, state: dict[str, Any]) -> None:
        """``get_state`` during a background update (whose result the state cannot hold): mark in
        ``state`` what the restored searcher must update again."""

    # ------------------------------------------------------------------ model updates
    def _start_update(self, fn: Any, *args: Any, tag: Any = None) -> None:
        """Run the model update ``fn(*args)`` (a module-level function of picklable arguments that
        returns the new model) where ``updates`` says; inline, its value is installed before this
        returns. One update runs at a time: a searcher starts one only when ``updating`` is False."""
        if self._update is not None:
            raise RuntimeError(f"{type(self).__name__}: a model update is already running")
        update = ModelUpdate(resolve_mode(self.updates), fn, args, tag=tag)
        if update.mode == "sync":
            self._finish(update)
        else:
            self._update = update

    @property
    def updating(self) -> bool:
        """Whether a background model update is running."""
        return getattr(self, "_update", None) is not None

    def _poll_update(self, wait: bool = False) -> bool:
        """Install the background update's value if it is ready (or, with ``wait``, once it is)."""
        update = getattr(self, "_update", None)
        if update is None or not (wait or update.done()):
            return False
        self._update = None
        self._finish(update)
        return True

    def _finish(self, update: ModelUpdate) -> None:
        value, seconds = update.result()
        self._install_update(value, seconds, update.tag)

    # ------------------------------------------------------------------ Tune API
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        if metric:
            self._metric = metric
        if mode:
            if mode not in ("max", "min"):
                raise ConfigError(f"mode must be 'max' or 'min', got {mode!r}")
            self._mode = mode
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.exhausted:
            return Searcher.FINISHED
        started = time.perf_counter()
        try:
            return self._suggest(trial_id)
        finally:
            self.suggest_latencies.append(time.perf_counter() - started)

    def _suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        self._poll_update()
        arch, arch_hash = self._next_unique()
        if arch is None:
            if arch_hash == _WAIT:
                return None
            self.exhausted = True
            logger.info("%s: every architecture of %s has been proposed", type(self).__name__, self.space.name)
            return Searcher.FINISHED
        self.proposed[arch_hash] = len(self.proposed)
        self.live[trial_id] = (arch, arch_hash)
        return {ARCH_KEY: arch.to_dict()}

    def _next_unique(self) -> tuple[Architecture | None, str]:
        for _ in range(self.max_retries):
            arch = self._propose()
            if arch is None:
                if self.live:
                    return None, _WAIT
                break  # waiting with nothing running would hang Tune: fall back to uniform draws
            arch_hash = self.space.hash(arch)
            if arch_hash not in self.proposed:
                self._accepted(arch, arch_hash)
                return arch, arch_hash
            self._on_duplicate(arch, arch_hash)
        return self._unseen_sample()

    def _unseen_sample(self) -> tuple[Architecture | None, str]:
        if self.space.size is not None and len(self.proposed) >= self.space.size:
            return None, _EXHAUSTED
        for _ in range(100_000):
            arch = self.space.sample(self.rng)
            arch_hash = self.space.hash(arch)
            if arch_hash not in self.proposed:
                return arch, arch_hash
        return None, _EXHAUSTED

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Intermediate results are provisional (a retried trial reports again); decisions wait for
        ``on_trial_complete``."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        entry = self.live.pop(trial_id, None)
        late = entry is None and trial_id in self.errored and not error
        if late:  # resume_errored: an errored trial completes again, this time with a result
            entry = self.errored.pop(trial_id)
            self.failed.remove(entry[1])
        if entry is None:
            logger.debug("%s: ignoring completion of unknown trial %s", type(self).__name__, trial_id)
            return
        arch, arch_hash = entry
        value = None if error or not result else result.get(self.metric)
        if value is None or not math.isfinite(float(value)):
            if not error and result is not None and self.metric not in result:
                logger.warning("trial %s reported no %r; counted as failed", trial_id, self.metric)
            self.failed.append(arch_hash)
            self.errored[trial_id] = entry
            self._observe_failure(arch, arch_hash)
            return
        value = float(value)
        self.history.append((arch, arch_hash, value))
        self._observe(arch, arch_hash, value if self.mode != "min" else -value)

    # ------------------------------------------------------------------ state
    def get_state(self) -> dict[str, Any]:
        """Everything that determines future proposals (restored exactly by ``set_state``)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("space", "suggest_latencies", "_update")}
        if self.updating:
            self._state_while_updating(state)
        state["__version__"] = _STATE_VERSION
        state["space"] = (self.space.name, self.space.options())
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if state.pop("__version__", None) != _STATE_VERSION:
            raise ConfigError("searcher state was written by an incompatible nas-ray version")
        name, options = state.pop("space")
        if (name, options) != (self.space.name, self.space.options()):
            self.space = get_space(name, **options)
        self.__dict__.update(state)
        self._update = None  # a background update of the replaced state is dropped
        if not hasattr(self, "suggest_latencies"):
            self.suggest_latencies = deque(maxlen=1000)
        if not hasattr(self, "updates"):
            self.updates = "auto"

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles the searcher into tuner.pkl
        return {k: v for k, v in self.__dict__.items() if k != "_update"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._update = None

    def save(self, checkpoint_path: str) -> None:
        # A pickle of our own state, read back only by ``restore`` from the run directory that this
        # searcher wrote (Tune itself keeps the experiment in pickles there too).
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))  # noqa: S301 - our own file, see save()

    # ------------------------------------------------------------------ conveniences
    def best(self) -> tuple[Architecture, float] | None:
        """The best completed architecture and its metric (by ``mode``)."""
        if not self.history:
            return None
        pick = min if self.mode == "min" else max
        arch, _, value = pick(self.history, key=lambda h: h[2])
        return arch, value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space!r}, seed={self.seed}, metric={self.metric!r}, mode={self.mode!r})"

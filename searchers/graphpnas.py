"""GraphPNAS (Li et al.) as a Ray Tune searcher: a GNN graph generator refit, after every search
step, on the best architectures evaluated so far."""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from nas_ray.construction import Builder
from nas_ray.errors import InvalidArchitecture, UnknownName
from nas_ray.graph import Architecture
from nas_ray.models.graphpnas import GraphPNASGenerator
from nas_ray.models.learning import (
    Explorer,
    GraphPNASConfig,
    ReplayBuffer,
    explore_this_step,
    explorer_fill,
    fit_generator,
    option_names,
    preset_for,
    rejection_round_sizes,
    training_set,
    trajectory_of,
)
from nas_ray.models.numerics import flush_denormals
from nas_ray.searchers.base import ArchitectureSearcher
from nas_ray.searchers.updates import resolve_mode
from nas_ray.spaces import SearchSpace

logger = logging.getLogger(__name__)


class GraphPNASSearcher(ArchitectureSearcher):
    """GraphPNAS's search loop behind Tune's ``Searcher`` API.

    A search step proposes ``samples_per_step`` (B) architectures: with probability epsilon(step)
    from the explorer (a random-graph prior of the space), else from the generator by rejection
    sampling (B * (5 * try + 1) candidates on try 0..max_tries-1, keeping unseen ones; the explorer
    fills in if too few survive). A step ends when B of its results are back (failures count, and
    are not buffered). Before a step draws from the generator, the generator (fresh weights, or
    warm-started with ``reset=False``) is fit for ``epochs`` epochs on the buffer's best (``keep``),
    weighted by the objective; explorer steps skip the fit, which changes nothing since the fit only
    depends on the buffer.

    ``preset`` picks the settings (``nas_ray.models.learning.PRESETS``; by default the space's: the
    official code's NB201 CIFAR-10 and NB101 settings, the paper's RandWire and ENAS settings);
    keyword options override single settings, e.g. ``epochs=10``, ``hidden=64``, ``epsilon_steps=20``,
    ``keep_top=10``, ``objective="standardized"``. The refit takes seconds on a CPU (the NB201 preset:
    560 small gradient steps). Under Tune (``updates="auto"`` with Ray up) it runs in a Ray task
    beside the driver: the step's proposals come from the latest fitted generator (from the explorer
    before the first fit lands) and the rest of the step from the new one once it is installed;
    results that arrive meanwhile enter the next fit. With ``updates="sync"`` (the local backend)
    the refit runs inside ``suggest`` and a seeded run reproduces exactly.
    ``threads`` is the number of torch threads for sampling and fitting (default 1: the tensors are
    small, and trials running beside the searcher keep the other cores busy; None leaves torch's
    setting).

    >>> from nas_ray.searchers import get_searcher
    >>> s = get_searcher("graphpnas", "nasbench201", seed=0, epochs=1)
    >>> "arch" in s.suggest("t0")
    True
    """

    name = "graphpnas"
    drivers = ("tune", "rllib")  # the RLlib algorithm is nas_ray.searchers.REINFORCE
    extra_options = option_names()

    @classmethod
    def defaults_for(cls, space: SearchSpace, *, budget: int | None = None, dataset: str | None = None) -> dict[str, Any]:
        """The space's preset for the evaluator's dataset (NB201: the official code's per-dataset settings)."""
        if dataset is None:
            return {}
        try:
            preset = space.graphpnas_preset(dataset)
        except UnknownName:  # a dataset the space's presets do not know: its default preset
            return {}
        return {} if preset is None else {"preset": preset}

    def __init__(self, space: SearchSpace | str, *, preset: str | None = None, threads: int | None = 1, **options: Any) -> None:
        base_keys = ("metric", "mode", "seed", "max_retries", "updates")
        base = {k: options.pop(k) for k in base_keys if k in options}
        super().__init__(space, **base)
        self.preset = preset
        self.config: GraphPNASConfig = preset_for(self.space, preset).with_options(**options)
        self.explorer = Explorer(self.space, self.config.explorer, self.config.explorer_params)
        self.builder = Builder(self.space)
        self.threads = threads
        self.buffer = ReplayBuffer()
        self.step = 0  # search steps completed (generator refits attempted)
        self.step_results = 0  # results (successes and failures) of the current step
        self.queue: deque[Architecture] = deque()
        self.generator: GraphPNASGenerator | None = None  # None until the first refit
        self.stale = True  # results have come in since the last refit
        self.ewma_baseline: float | None = None
        self.log: list[dict[str, Any]] = []  # one record per step: source, epsilon, fit loss, seconds

    # ------------------------------------------------------------------ proposals
    def _propose(self) -> Architecture | None:
        if not self.queue:
            self.queue.extend(self._step_proposals())
        return self.queue.popleft() if self.queue else None

    def _step_proposals(self) -> list[Architecture]:
        B = self.config.samples_per_step
        eps, from_explorer = explore_this_step(self.config, self.step, len(self.buffer), self.rng)
        archs: list[Architecture] = []
        taken: set[str] = set()
        source = "explorer"
        if not from_explorer:
            if (self.stale or self.generator is None) and not self.updating:
                self._refit()  # lazily: explorer steps never need the generator
            if self.generator is not None:  # in the background, the latest generator serves while the next one fits
                archs = self._generate(B, taken)
                source = "generator" if len(archs) == B else "generator+explorer"
            else:
                source = "explorer (first generator fitting)"
        fill = explorer_fill(self.explorer, self.space, B - len(archs), self.rng, lambda h: h in self.proposed or h in taken)
        archs += [arch for arch, _, _ in fill]
        record = {"step": self.step, "epsilon": eps, "source": source, "proposed": len(archs)}
        if self.log and self.log[-1]["step"] == self.step:
            self.log[-1].update(record)
        else:
            self.log.append(record)
        return archs

    def _generate(self, num: int, taken: set[str]) -> list[Architecture]:
        """Rejection sampling from the generator: B * (5 * try + 1) candidates per try."""
        out: list[Architecture] = []
        gen = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        with _threads(self.threads):
            for size in rejection_round_sizes(num, self.config.max_tries):
                for arch in self.generator.sample(
                    self.space, size, generator=gen, temperature=self.config.temperature, builder=self.builder
                ):
                    try:
                        h = self.space.hash(arch)
                    except InvalidArchitecture:
                        continue
                    if h in self.proposed or h in taken:
                        continue
                    taken.add(h)
                    out.append(arch)
                    if len(out) == num:
                        return out
        return out

    # ------------------------------------------------------------------ results
    def _observe(self, arch: Architecture, arch_hash: str, score: float) -> None:
        self.buffer.add(self.space.canonicalize(arch), arch_hash, score, self.step)
        self._count_result()

    def _observe_failure(self, arch: Architecture, arch_hash: str) -> None:
        self._count_result()

    def _count_result(self) -> None:
        self.step_results += 1
        if self.step_results >= self.config.samples_per_step:
            self.step_results = 0
            self.step += 1
            self.stale = True

    def _refit(self) -> None:
        """Fit the generator on the buffer's best (the step's training set): inline or in the
        background, as ``updates`` says (the training set is taken now)."""
        cfg = self.config
        self.stale = False
        entries, adv, self.ewma_baseline = training_set(cfg, self.buffer, self.step, self.ewma_baseline)
        generator = self.generator
        if generator is None or cfg.reset:
            generator = GraphPNASGenerator.for_space(self.space, cfg.generator, seed=int(self.rng.integers(2**31)))
        trajectories = [trajectory_of(self.builder, e) for e in entries]
        # inline, the fit draws from the searcher's own RNG (seeded runs reproduce exactly); in the
        # background, from a child RNG seeded now
        rng = self.rng if resolve_mode(self.updates) == "sync" else np.random.default_rng(int(self.rng.integers(2**63)))
        self._start_update(_fit_step, generator, trajectories, adv, cfg, rng, self.threads,
                           tag={"step": self.step, "train_size": len(entries)})

    def _install_update(self, value: Any, seconds: float, tag: Any) -> None:
        self.generator, stats = value
        self.log.append({**tag, **stats, "fit_s": seconds, "installed_at_step": self.step, "where": resolve_mode(self.updates)})
        logger.debug("graphpnas step %d: %s", self.step, self.log[-1])
        self.queue.clear()  # proposals drawn from the previous generator give way to the new one's

    def _state_while_updating(self, state: dict[str, Any]) -> None:
        state["stale"] = True  # the restored searcher fits again

    def generator_state(self) -> dict[str, torch.Tensor] | None:
        """The current generator's weights (a ``state_dict``), or None before the first refit."""
        return None if self.generator is None else self.generator.state_dict()


def _fit_step(generator: GraphPNASGenerator, trajectories: list[Any], adv: Any, cfg: GraphPNASConfig,
              rng: np.random.Generator, threads: int | None) -> tuple[GraphPNASGenerator, dict[str, Any]]:
    """One search step's generator fit (a model update: see ``nas_ray.searchers.updates``)."""
    with _threads(threads):
        stats = fit_generator(generator, trajectories, adv, cfg, rng)
    return generator, stats


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads (None: leave as is) and subnormal floats flushed to zero
    (``nas_ray.models.numerics``) inside the block: every searcher's model work runs in one."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        with flush_denormals():
            yield
    finally:
        if n is not None:
            torch.set_num_threads(before)

"""GraphPNAS's learning pieces, independent of any RL library: the replay buffer
of evaluated architectures, the epsilon-explorer over the space's random-graph priors, the REINFORCE
objectives, the generator fit, and the named presets of the paper and the official code."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nas_ray.construction import Builder, Trajectory
from nas_ray.errors import ConfigError, ConfigTypeError, InvalidArchitecture, UnknownName
from nas_ray.graph import Architecture
from nas_ray.models.graphpnas import (
    GENERATOR_PRESETS,
    GeneratorConfig,
    GraphPNASGenerator,
    TrajectoryBatch,
    generator_preset,
)
from nas_ray.models.numerics import flush_denormals
from nas_ray.spaces.base import SearchSpace

OBJECTIVES = ("cdf", "standardized", "ewma")


# ---------------------------------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class EpsilonSchedule:
    """The probability that a search step draws from the explorer instead of the generator.

    - ``warmup``: ``start`` for the first ``steps`` steps, then 0 (official code: NB201 ``steps`` =
      30 / 15 / 10; NB101 ``three`` = 3 steps);
    - ``subtractive``: ``max(0, start - rate * floor(t / every))`` (RandWire: 0.6, 0.2, 10);
    - ``multiplicative``: ``start * rate ** floor(t / every)`` (the literal "decayed by a factor");
    - ``linear``: from ``start`` to 0 over ``steps`` steps (ENAS: 1 -> 0 over 100).
    """

    kind: str = "warmup"
    start: float = 1.0
    steps: int = 30
    rate: float = 0.2
    every: int = 10

    def __post_init__(self) -> None:
        if self.kind not in ("warmup", "subtractive", "multiplicative", "linear"):
            raise ConfigError(f"epsilon schedule kind must be warmup, subtractive, multiplicative or linear, got {self.kind!r}")
        if not 0.0 <= self.start <= 1.0:
            raise ConfigError(f"epsilon start must be in [0, 1], got {self.start}")

    def __call__(self, step: int) -> float:
        if self.kind == "warmup":
            return self.start if step < self.steps else 0.0
        if self.kind == "subtractive":
            return max(0.0, self.start - self.rate * (step // self.every))
        if self.kind == "multiplicative":
            return self.start * self.rate ** (step // self.every)
        return max(0.0, self.start * (1.0 - step / max(self.steps, 1)))


@dataclass(frozen=True)
class KeepSchedule:
    """How many of the buffer's best architectures form the training set at step ``t``.

    ``top`` (an int): a fixed top-k (code: NB201 15 / 10 / 5, NB101 15). Otherwise a fraction of
    everything evaluated, linear from ``start`` to ``end`` over ``steps`` steps (RandWire: 0.3 -> 0.1;
    ENAS: 0.2 throughout)."""

    top: int | None = 15
    start: float = 0.3
    end: float = 0.1
    steps: int = 40

    def __call__(self, step: int, buffered: int) -> int:
        if self.top is not None:
            return min(self.top, buffered)
        frac = self.start + (self.end - self.start) * min(step / max(self.steps - 1, 1), 1.0)
        return min(buffered, max(1, math.ceil(frac * buffered)))


# ---------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class GraphPNASConfig:
    """Everything GraphPNAS's search loop needs, with the official code's NB201
    CIFAR-10 settings as defaults. ``PRESETS`` holds the paper's and the code's per-space settings."""

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    samples_per_step: int = 1  # B: graphs proposed per search step; the generator is refit after B results
    epsilon: EpsilonSchedule = field(default_factory=EpsilonSchedule)
    explorer: str = "uniform"  # "uniform" (space.sample) or a prior of the space (space.priors)
    explorer_params: Mapping[str, Any] = field(default_factory=dict)  # fixed values or [low, high] ranges
    keep: KeepSchedule = field(default_factory=KeepSchedule)
    epochs: int = 70  # passes over the training set per refit
    batch_size: int = 2
    lr: float = 1e-3
    grad_clip: float | None = 1.0  # paper Table 8 (absent in the code)
    objective: str = "cdf"  # "cdf" (code: rank / |buffer|, no baseline), "standardized" (paper), "ewma" (code baseline)
    beta: float = 0.05  # weight of the negative term of the "standardized" objective
    reset: bool = True  # fresh generator weights at every refit (code); False warm-starts
    max_tries: int = 20  # rejection-sampling rounds before falling back to the explorer
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        for name in ("samples_per_step", "epochs", "batch_size", "max_tries"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.temperature <= 0:
            raise ConfigError("lr and temperature must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_options(self, **options: Any) -> GraphPNASConfig:
        """A copy with options changed; ``hidden=...`` and the other generator sizes, ``epsilon_steps=...``
        (``epsilon_<field>``), ``keep_top=...`` (``keep_<field>``) reach the nested settings."""
        gen, eps, keep, top = {}, {}, {}, {}
        gen_fields = set(GeneratorConfig.__dataclass_fields__)
        for key, value in options.items():
            if key in gen_fields:
                gen[key] = value
            elif key.startswith("epsilon_") and key[8:] in EpsilonSchedule.__dataclass_fields__:
                eps[key[8:]] = value
            elif key.startswith("keep_") and key[5:] in KeepSchedule.__dataclass_fields__:
                keep[key[5:]] = value
            elif key in GraphPNASConfig.__dataclass_fields__:
                top[key] = value
            else:
                raise ConfigTypeError(f"GraphPNAS has no option {key!r}")
        if isinstance(top.get("generator"), str):
            top["generator"] = generator_preset(top["generator"])
        cfg = replace(self, **top)
        if gen:
            cfg = replace(cfg, generator=replace(cfg.generator, **gen))
        if eps:
            cfg = replace(cfg, epsilon=replace(cfg.epsilon, **eps))
        if keep:
            cfg = replace(cfg, keep=replace(cfg.keep, **keep))
        return cfg


def option_names() -> tuple[str, ...]:
    """Every keyword ``GraphPNASConfig.with_options`` accepts."""
    return (
        *(f for f in GraphPNASConfig.__dataclass_fields__),
        *GeneratorConfig.__dataclass_fields__,
        *(f"epsilon_{f}" for f in EpsilonSchedule.__dataclass_fields__),
        *(f"keep_{f}" for f in KeepSchedule.__dataclass_fields__),
    )


_CODE, _PAPER = GENERATOR_PRESETS["code"], GENERATOR_PRESETS["paper"]


def _nb201(warmup: int, epochs: int, top: int) -> GraphPNASConfig:
    return GraphPNASConfig(
        generator=_CODE, samples_per_step=1, epsilon=EpsilonSchedule("warmup", 1.0, warmup), explorer="no_none",
        keep=KeepSchedule(top=top), epochs=epochs, batch_size=2, lr=1e-3, objective="cdf",
    )


#: per-space settings of the official code (NB101 / NB201) and the paper (RandWire / ENAS)
PRESETS: dict[str, GraphPNASConfig] = {
    "nb201-cifar10": _nb201(30, 70, 15),
    "nb201-cifar100": _nb201(15, 60, 10),
    "nb201-imagenet16-120": _nb201(10, 50, 5),
    "nb101": GraphPNASConfig(
        generator=_CODE, samples_per_step=10, epsilon=EpsilonSchedule("warmup", 1.0, 3), explorer="erdos_renyi",
        explorer_params={"p": 0.25, "min_nodes": 3}, keep=KeepSchedule(top=15), epochs=70, batch_size=2, lr=1e-3,
        objective="cdf",
    ),
    "nb101-paper": GraphPNASConfig(
        generator=_CODE, samples_per_step=10, epsilon=EpsilonSchedule("warmup", 1.0, 3), explorer="erdos_renyi",
        explorer_params={"p": 0.25, "min_nodes": 3}, keep=KeepSchedule(top=30), epochs=70, batch_size=2, lr=1e-3,
        objective="cdf",
    ),
    "randwire": GraphPNASConfig(
        generator=_PAPER, samples_per_step=8, epsilon=EpsilonSchedule("subtractive", 0.6, rate=0.2, every=10),
        explorer="watts_strogatz", explorer_params={"k": [2, 6], "p": [0.2, 0.8]},
        keep=KeepSchedule(top=None, start=0.3, end=0.1, steps=40), epochs=2000, batch_size=16, lr=1e-4,
        objective="standardized", beta=0.05,
    ),
    "enas": GraphPNASConfig(
        generator=_PAPER, samples_per_step=100, epsilon=EpsilonSchedule("linear", 1.0, 100), explorer="erdos_renyi",
        explorer_params={"p": 0.4}, keep=KeepSchedule(top=None, start=0.2, end=0.2, steps=1), epochs=2000,
        batch_size=32, lr=1e-4, objective="standardized", beta=0.05,
    ),
}
def preset_for(space: SearchSpace, preset: str | None = None) -> GraphPNASConfig:
    """The named preset, or the space's (``space.graphpnas_preset()``); a space without one gets the
    paper's RandWire settings with uniform exploration. A preset whose explorer prior the space does
    not have (a table-defined space has none: its members are all it can draw) explores uniformly."""
    if preset is None:
        preset = space.graphpnas_preset()
        if preset is None:
            return replace(PRESETS["randwire"], explorer="uniform", explorer_params={})
    if preset not in PRESETS:
        raise UnknownName(f"unknown GraphPNAS preset {preset!r}; presets: {', '.join(PRESETS)}")
    config = PRESETS[preset]
    if config.explorer != "uniform" and config.explorer not in space.priors:
        return replace(config, explorer="uniform", explorer_params={})
    return config


# ---------------------------------------------------------------------------------------------- explorer
class Explorer:
    """Draws architectures from one of the space's priors; parameters given as ``[low, high]`` are
    drawn per graph (ints uniformly among the even values for Watts-Strogatz ``k``, else uniformly).

    >>> from nas_ray.spaces import get_space
    >>> ex = Explorer(get_space("randwire", num_nodes=8), "watts_strogatz", {"k": [2, 6], "p": [0.2, 0.8]})
    >>> ex.sample(np.random.default_rng(0)).num_nodes
    10
    """

    def __init__(self, space: SearchSpace, kind: str = "uniform", params: Mapping[str, Any] | None = None) -> None:
        if kind != "uniform" and kind not in space.priors:
            have = ", ".join(["uniform", *sorted(space.priors)])
            raise UnknownName(f"space {space.name} has no explorer prior {kind!r}; choose from {have}")
        self.space, self.kind, self.params = space, kind, dict(params or {})

    def _params(self, rng: np.random.Generator) -> dict[str, Any]:
        out = {}
        for name, value in self.params.items():
            if isinstance(value, (list, tuple)) and len(value) == 2:
                low, high = value
                if isinstance(low, int) and isinstance(high, int):
                    choices = np.arange(low, high + 1)
                    if self.kind == "watts_strogatz" and name == "k":  # even, and below the node count
                        limit = getattr(self.space, "num_nodes", None)
                        choices = choices[(choices % 2 == 0) & (choices < (limit or high + 1))]
                    out[name] = int(rng.choice(choices))
                else:
                    out[name] = float(rng.uniform(low, high))
            else:
                out[name] = value
        return out

    def sample(self, rng: np.random.Generator) -> Architecture:
        if self.kind == "uniform":
            return self.space.sample(rng)
        return self.space.sample_prior(self.kind, rng, **self._params(rng))


# ---------------------------------------------------------------------------------------------- buffer
@dataclass
class BufferEntry:
    arch: Architecture  # canonical form (what the generator learns to build)
    arch_hash: str
    reward: float  # higher is better
    step: int
    trajectory: Trajectory | None = None


class ReplayBuffer:
    """Every evaluated architecture, keyed by the space's hash (duplicates are rejected); the
    training set is the best ones."""

    def __init__(self) -> None:
        self.entries: dict[str, BufferEntry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, arch_hash: str) -> bool:
        return arch_hash in self.entries

    def add(self, arch: Architecture, arch_hash: str, reward: float, step: int) -> bool:
        """Add an evaluated architecture; False (and nothing changes) if its hash is already here."""
        if arch_hash in self.entries:
            return False
        if not math.isfinite(reward):
            raise ConfigError(f"reward of {arch_hash} is not finite: {reward}")
        self.entries[arch_hash] = BufferEntry(arch, arch_hash, float(reward), step)
        return True

    def rewards(self) -> np.ndarray:
        return np.array([e.reward for e in self.entries.values()], dtype=np.float64)

    def top(self, k: int) -> list[BufferEntry]:
        """The ``k`` best entries, best first (ties: earlier first)."""
        order = sorted(self.entries.values(), key=lambda e: -e.reward)
        return order[:k]

    def cdf(self, rewards: Sequence[float]) -> np.ndarray:
        """rank / |buffer| in (0, 1] of each reward among the buffer's rewards (the best gets 1)."""
        allr = np.sort(self.rewards())
        return np.searchsorted(allr, np.asarray(rewards, dtype=np.float64), side="right") / max(len(allr), 1)

    def stats(self) -> tuple[float, float]:
        r = self.rewards()
        return float(r.mean()), float(r.std())


# ---------------------------------------------------------------------------------------------- objective
def advantages(buffer: ReplayBuffer, entries: Sequence[BufferEntry], objective: str, baseline: float | None = None) -> np.ndarray:
    """The per-graph weight A of the loss: ``cdf`` rank / |buffer|; ``standardized`` (R - mean) / std
    over the buffer; ``ewma`` R - baseline."""
    rewards = np.array([e.reward for e in entries], dtype=np.float64)
    if objective == "cdf":
        return buffer.cdf(rewards)
    if objective == "standardized":
        mean, std = buffer.stats()
        return (rewards - mean) / (std if std > 0 else 1.0)
    if objective == "ewma":
        return rewards - (baseline if baseline is not None else rewards.mean())
    raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def reinforce_loss(nll: Tensor, advantage: Tensor, objective: str = "cdf", beta: float = 0.05) -> Tensor:
    """Mean over graphs of the GraphPNAS loss on the normalised likelihood P~ = exp(-nll).

    ``cdf`` / ``ewma``: ``A * nll`` (= -A log P~; REINFORCE, rank-weighted maximum likelihood for cdf).
    ``standardized`` (paper Eqs. 11-12): ``A * nll`` where A > 0, and ``beta |A| (-log(1 - P~ + 1e-6))``
    where A < 0, which pushes the probability of below-average graphs down without diverging.
    """
    if objective in ("cdf", "ewma"):
        return (advantage * nll).mean()
    if objective != "standardized":
        raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    p_tilde = torch.exp(-nll)
    positive = advantage * nll
    negative = beta * advantage.abs() * -torch.log1p(-p_tilde + 1e-6)
    return torch.where(advantage > 0, positive, torch.where(advantage < 0, negative, torch.zeros_like(nll))).mean()


# ---------------------------------------------------------------------------------------------- the step policy
# What one GraphPNAS search step decides, shared by the Tune searcher and the RLlib algorithm so that
# both make the same draws in the same order.

def explore_this_step(config: GraphPNASConfig, step: int, buffer_size: int, rng: np.random.Generator) -> tuple[float, bool]:
    """epsilon(step), and whether this step's graphs come from the explorer: always while the buffer
    is empty or epsilon is 1, else with probability epsilon (one draw from ``rng``)."""
    eps = config.epsilon(step)
    return eps, bool(not buffer_size or eps >= 1.0 or rng.random() < eps)


def training_set(config: GraphPNASConfig, buffer: ReplayBuffer, step: int,
                 baseline: float | None) -> tuple[list[BufferEntry], np.ndarray, float | None]:
    """The step's training set (the buffer's best ``keep(step)``), its advantages, and the EWMA
    baseline after this step (updated with the set's mean reward for ``objective="ewma"``)."""
    entries = buffer.top(config.keep(step, len(buffer)))
    adv = advantages(buffer, entries, config.objective, baseline)
    if config.objective == "ewma":
        mean = float(np.mean([e.reward for e in entries]))
        baseline = mean if baseline is None else 0.5 * baseline + 0.5 * mean
    return entries, adv, baseline


def rejection_round_sizes(num: int, max_tries: int) -> list[int]:
    """How many graphs each rejection-sampling round draws for ``num`` wanted: num * (5t + 1)."""
    return [num * (5 * t + 1) for t in range(max_tries)]


def explorer_fill(explorer: Explorer, space: SearchSpace, need: int, rng: np.random.Generator,
                  seen: Callable[[str], bool]) -> list[tuple[Architecture, Architecture, str]]:
    """Up to ``need`` explorer graphs whose hash is neither ``seen`` nor drawn already, as (graph,
    canonical form, hash); at most 100 draws per graph wanted (a small space may run out)."""
    out: list[tuple[Architecture, Architecture, str]] = []
    taken: set[str] = set()
    tries = 0
    while len(out) < need and tries < 100 * need:
        tries += 1
        arch = explorer.sample(rng)
        try:
            canonical = space.canonicalize(arch)
            h = space.hash(canonical)
        except InvalidArchitecture:
            continue
        if seen(h) or h in taken:
            continue
        taken.add(h)
        out.append((arch, canonical, h))
    return out


@flush_denormals()
def fit_generator(
    generator: GraphPNASGenerator,
    trajectories: Sequence[Trajectory],
    advantage: np.ndarray,
    config: GraphPNASConfig,
    rng: np.random.Generator,
) -> dict[str, float]:
    """``config.epochs`` passes of Adam over the training graphs in shuffled minibatches of
    ``config.batch_size`` (gradient norm clipped to ``config.grad_clip``). Returns the last epoch's
    mean loss and the number of gradient steps."""
    generator.train()
    flat, grad = _flat_parameters(generator)
    opt = torch.optim.Adam([flat], lr=config.lr, fused=True)
    adv = torch.from_numpy(np.array(advantage, dtype=np.float32))  # a copy: Ray hands read-only arrays
    n = len(trajectories)
    batches_cache: dict[tuple[int, ...], TrajectoryBatch] = {}
    steps, last = 0, 0.0
    for _ in range(config.epochs):
        perm = rng.permutation(n)
        total = 0.0
        for start in range(0, n, config.batch_size):
            idx = tuple(sorted(perm[start : start + config.batch_size].tolist()))
            batch = batches_cache.get(idx)
            if batch is None:
                batch = batches_cache[idx] = TrajectoryBatch.from_trajectories([trajectories[i] for i in idx])
            nll = generator.log_likelihood(batch)["nll_normalised"]
            loss = reinforce_loss(nll, adv[list(idx)], config.objective, config.beta)
            grad.zero_()
            loss.backward()
            if steps == 0:
                _check_flat_gradients(generator, grad)
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_([flat], config.grad_clip)
            opt.step()
            total += loss.item() * len(idx)
            steps += 1
        last = total / n
    generator.eval()
    _own_storage(generator)
    return {"loss": last, "gradient_steps": steps}


def _flat_parameters(module: torch.nn.Module) -> tuple[torch.nn.Parameter, Tensor]:
    """Make every parameter of ``module`` (and its gradient) a view into one flat tensor, so that
    Adam and the gradient clip are one operation each instead of one per parameter tensor."""
    params = [p for p in module.parameters() if p.requires_grad]
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        k = p.numel()
        p.data = flat[offset : offset + k].view_as(p)
        p.grad = grad[offset : offset + k].view_as(p)
        offset += k
    param = torch.nn.Parameter(flat)
    param.grad = grad
    return param, grad


def _own_storage(module: torch.nn.Module) -> None:
    """Undo ``_flat_parameters`` after a fit: each parameter gets its own storage again and no
    gradient, so the module pickles at its own size (a view pickles the whole flat buffer)."""
    for p in module.parameters():
        p.data = p.data.clone()
        p.grad = None


def _check_flat_gradients(module: torch.nn.Module, grad: Tensor) -> None:
    start, end = grad.data_ptr(), grad.data_ptr() + grad.numel() * grad.element_size()
    for name, p in module.named_parameters():
        if p.grad is None or not start <= p.grad.data_ptr() < end:
            raise RuntimeError(f"the gradient of {name} left the flat buffer; this torch version accumulates out of place")


def trajectory_of(builder: Builder, entry: BufferEntry) -> Trajectory:
    if entry.trajectory is None:
        entry.trajectory = builder.trajectory(entry.arch)
    return entry.trajectory


__all__ = [
    "explore_this_step",
    "training_set",
    "rejection_round_sizes",
    "explorer_fill",
    "EpsilonSchedule",
    "KeepSchedule",
    "GraphPNASConfig",
    "PRESETS",
    "preset_for",
    "Explorer",
    "ReplayBuffer",
    "BufferEntry",
    "advantages",
    "reinforce_loss",
    "fit_generator",
]

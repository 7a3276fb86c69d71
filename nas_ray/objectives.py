"""The one scoring function every searcher shares, and two-objective Pareto utilities.

An :class:`Objective` turns an evaluator's metrics into the value a searcher maximises. With a cost it
is NASGEM's efficiency score ``S = metric/scale - lam * ln(cost)`` (the metric as a fraction, natural
log); without one it is the plain metric. :class:`ObjectiveEvaluator` wraps any evaluator so that every
step it reports carries that ``"score"`` (and a copy of the ``"cost"``).

For multi-objective search (maximise accuracy, minimise cost) there are :func:`pareto_mask`,
:func:`pareto_front`, the exact 2-D :func:`hypervolume`, the vectorised
:func:`hypervolume_improvement` of many candidates at once and a data-derived :func:`reference_point`.

>>> from nas_ray.objectives import Objective
>>> obj = Objective(metric="acc", cost="lat_ms", scale=100)
>>> round(obj.score({"acc": 94.0, "lat_ms": 1.0}), 6)
0.94
>>> obj.label()
'acc/100 − 0.02·ln(lat_ms)'
>>> ev = ObjectiveEvaluator(TabularEvaluator.nasbench201("cifar10", data_dir="../shared/data"),
...                         Objective(cost="params", scale=100))  # doctest: +SKIP
>>> ev.evaluate(ev.space.sample(0))["score"]  # doctest: +SKIP
>>> idx, front_acc, front_cost = pareto_front(acc, cost)  # doctest: +SKIP
>>> ref = reference_point(acc, cost)  # doctest: +SKIP
>>> hypervolume(acc, cost, *ref)  # doctest: +SKIP
>>> gain = hypervolume_improvement(front_acc, front_cost, cand_acc, cand_cost, *ref)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nas_ray.errors import ConfigError, UnknownName
from nas_ray.evaluators.base import Evaluator, Step
from nas_ray.graph import Architecture

__all__ = [
    "Objective",
    "ObjectiveEvaluator",
    "pareto_mask",
    "pareto_front",
    "hypervolume",
    "hypervolume_improvement",
    "reference_point",
]


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Objective:
    """What a searcher maximises: ``metric`` alone, or ``metric/scale - lam * ln(cost)``.

    ``metric`` is higher-is-better (accuracy-like); ``scale`` turns it into a fraction (100 for
    percentages); ``cost`` names the cost column of the evaluator's results (parameters, MACs, a
    measured latency), ``None`` for a single objective. ``pareto`` marks a multi-objective search
    (accuracy up, cost down) and needs a cost.
    """

    metric: str = "reward"
    cost: str | None = None
    lam: float = 0.02
    pareto: bool = False
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.lam, (int, float)) or not math.isfinite(self.lam) or self.lam < 0:
            raise ConfigError(f"objective lam must be a finite number >= 0, got {self.lam!r}")
        if not isinstance(self.scale, (int, float)) or not math.isfinite(self.scale) or self.scale <= 0:
            raise ConfigError(f"objective scale must be a finite number > 0, got {self.scale!r}")
        if self.pareto and self.cost is None:
            raise ConfigError("a pareto objective needs a cost metric (cost=None given)")
        if not self.metric:
            raise ConfigError("objective metric must be a non-empty name")
        if self.cost is not None and not self.cost:
            raise ConfigError("objective cost must be a non-empty name or None")

    @staticmethod
    def _get(metrics: Mapping[str, float], key: str, what: str) -> float:
        if key not in metrics:
            have = ", ".join(sorted(map(str, metrics))) or "none"
            raise UnknownName(f"objective {what} {key!r} is not in the evaluator's metrics; available: {have}")
        return float(metrics[key])

    def score(self, metrics: Mapping[str, float]) -> float:
        """The score of one evaluation's metrics (the plain metric when there is no cost)."""
        value = self._get(metrics, self.metric, "metric")
        if self.cost is None:
            return value
        cost = self._get(metrics, self.cost, "cost")
        if not math.isfinite(cost) or cost <= 0:
            raise ConfigError(f"objective cost {self.cost!r} must be finite and > 0 for ln(cost), got {cost!r}")
        return value / self.scale - self.lam * math.log(cost)

    def scores(self, acc: np.ndarray, cost: np.ndarray | None = None) -> np.ndarray:
        """Vectorised :meth:`score` of arrays of metric values and costs (``cost`` unused without a
        cost). NaN entries (failed evaluations) give NaN scores; a cost <= 0 or infinite is an error."""
        a = np.asarray(acc, dtype=np.float64)
        if self.cost is None:
            return a.copy()
        if cost is None:
            raise ConfigError(f"objective {self.label()} needs the cost array, got None")
        c = np.asarray(cost, dtype=np.float64)
        present = ~np.isnan(c)
        bad = present & ~((c > 0) & np.isfinite(c))
        if bad.any():
            raise ConfigError(f"objective cost {self.cost!r} must be finite and > 0 for ln(cost), got {c[bad][0]!r}")
        with np.errstate(invalid="ignore"):
            return a / self.scale - self.lam * np.log(c)

    def label(self) -> str:
        """The formula, e.g. ``'reward/100 − 0.02·ln(lat_pixel3_ms)'``."""
        if self.cost is None:
            return self.metric
        head = self.metric if self.scale == 1 else f"{self.metric}/{_fmt(self.scale)}"
        return f"{head} − {_fmt(self.lam)}·ln({self.cost})"

    def describe(self) -> dict[str, Any]:
        """The fields and the formula, for results files and logs."""
        return {**asdict(self), "label": self.label()}


class ObjectiveEvaluator(Evaluator):
    """An evaluator whose steps also carry the objective's ``"score"`` (and ``"cost"``, a copy of the
    cost column); with a cost it optimises ``"score"`` upwards, without one it is a transparent
    pass-through (the inner evaluator's metric and mode). Unknown attributes come from ``inner``."""

    def __init__(self, inner: Evaluator, objective: Objective | None = None) -> None:
        objective = Objective(metric=inner.metric) if objective is None else objective
        if objective.cost is not None:
            if inner.mode != "max":
                raise ConfigError(
                    f"objective {objective.label()} needs a higher-is-better metric, but {type(inner).__name__} "
                    f"optimises {inner.metric!r} with mode {inner.mode!r}"
                )
            if "score" in (objective.metric, objective.cost):
                raise ConfigError(f"objective {objective.label()} cannot read a metric named 'score': it writes that key")
        self.inner = inner
        self.objective = objective
        # ``metric_scale``: what the optimised metric is divided by to be a fraction (the score already is one)
        if objective.cost is None:
            self.metric, self.mode = inner.metric, inner.mode
            self.metric_scale = float(getattr(inner, "metric_scale", 1.0))
        else:
            self.metric, self.mode = "score", "max"
            self.metric_scale = 1.0

    def __getattr__(self, name: str) -> Any:
        # only reached when normal lookup fails; no delegation before __init__ set ``inner`` (unpickling,
        # copying) nor for dunders (copy / pickle protocols must see the wrapper's own behaviour)
        if name.startswith("__") or "inner" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["inner"], name)

    @property
    def space(self):  # noqa: ANN201
        return self.inner.space

    @property
    def max_steps(self) -> int:
        return self.inner.max_steps

    @property
    def resources(self) -> dict[str, float]:
        return self.inner.resources

    def _scored(self, metrics: Mapping[str, float]) -> dict[str, float]:
        out = dict(metrics)
        out["score"] = self.objective.score(metrics)
        out["cost"] = float(metrics[self.objective.cost])  # type: ignore[index]
        return out

    def iterate(self, arch: Architecture, *, restore: Mapping[str, Any] | None = None) -> Iterator[Step]:
        """The inner steps, each with ``"score"`` and ``"cost"`` added where it holds both the metric and
        the cost; steps without them pass unchanged, but the final one must have them."""
        if self.objective.cost is None:
            yield from self.inner.iterate(arch, restore=restore)
            return
        need = (self.objective.metric, self.objective.cost)
        last: Step | None = None
        for step in self.inner.iterate(arch, restore=restore):
            if all(k in step.metrics for k in need):
                step = Step(self._scored(step.metrics), step.state)
            last = step
            yield step
        if last is None:
            raise ConfigError(f"{type(self.inner).__name__} reported no step for {arch}")
        if "score" not in last.metrics:
            self.objective.score(last.metrics)  # raises the error naming the missing key

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        if self.objective.cost is None:
            return self.inner.evaluate(arch)
        last: Step | None = None
        for last in self.iterate(arch):  # noqa: B007
            pass
        assert last is not None  # iterate raises otherwise
        return last.metrics

    def describe(self) -> dict[str, Any]:
        out = dict(self.inner.describe())
        out["objective"] = self.objective.describe()
        if self.objective.cost is not None:
            out["metric"], out["mode"] = self.metric, self.mode
        return out


# ---------------------------------------------------------------------------------------------------
# Pareto utilities: two objectives, accuracy maximised, cost minimised


def _pair(acc: Any, cost: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(acc, dtype=np.float64).reshape(-1)
    c = np.asarray(cost, dtype=np.float64).reshape(-1)
    if a.shape != c.shape:
        raise ConfigError(f"accuracy and cost arrays differ in length: {a.size} vs {c.size}")
    return a, c


def pareto_mask(acc: Any, cost: Any) -> np.ndarray:
    """Boolean mask of the non-dominated points (accuracy up, cost down). Of identical points only the
    first is kept (botorch's ``deduplicate=True``); rows with a non-finite value are never on the front."""
    a, c = _pair(acc, cost)
    mask = np.zeros(a.size, dtype=bool)
    ok = np.isfinite(a) & np.isfinite(c)
    if not ok.any():
        return mask
    import torch
    from botorch.utils.multi_objective.pareto import is_non_dominated

    y = torch.from_numpy(np.stack([a[ok], -c[ok]], axis=1))
    mask[np.flatnonzero(ok)] = is_non_dominated(y, maximize=True, deduplicate=True).numpy()
    return mask


def pareto_front(acc: Any, cost: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices, accuracies and costs of the non-dominated points, sorted by cost ascending (so the
    accuracy rises too)."""
    a, c = _pair(acc, cost)
    idx = np.flatnonzero(pareto_mask(a, c))
    idx = idx[np.lexsort((a[idx], c[idx]))]
    return idx, a[idx], c[idx]


def _staircase(acc: np.ndarray, cost: np.ndarray, ref_acc: float, ref_cost: float) -> tuple[np.ndarray, np.ndarray]:
    """Costs (ascending) and heights above ``ref_acc`` (running maximum, non-decreasing) of the points
    that dominate the reference point: the step function bounding the dominated region."""
    keep = np.isfinite(acc) & np.isfinite(cost) & (acc > ref_acc) & (cost < ref_cost)
    a, c = acc[keep], cost[keep]
    order = np.argsort(c, kind="stable")
    return c[order], np.maximum.accumulate(a[order] - ref_acc)


def hypervolume(acc: Any, cost: Any, ref_acc: float, ref_cost: float) -> float:
    """Exact area dominated by the points (accuracy up, cost down) and bounded by the reference point;
    points with ``acc <= ref_acc`` or ``cost >= ref_cost`` (or a non-finite value) add nothing."""
    a, c = _pair(acc, cost)
    xs, hs = _staircase(a, c, float(ref_acc), float(ref_cost))
    if xs.size == 0:
        return 0.0
    widths = np.diff(np.append(xs, float(ref_cost)))
    return float(np.dot(widths, hs))


def hypervolume_improvement(
    front_acc: Any, front_cost: Any, cand_acc: Any, cand_cost: Any, ref_acc: float, ref_cost: float
) -> np.ndarray:
    """For each candidate, the hypervolume gained by adding it alone to the front:
    ``hypervolume(front + [c]) - hypervolume(front)``. Vectorised, O((n + k) log k) for n candidates
    and k front points (the "front" need not be non-dominated); dominated, non-finite or
    reference-violating candidates gain 0."""
    fa, fc = _pair(front_acc, front_cost)
    ca, cc = _pair(cand_acc, cand_cost)
    ra, rc = float(ref_acc), float(ref_cost)
    xs, hs = _staircase(fa, fc, ra, rc)
    # area under the front's step function h from -inf to x: G(x) = G(xs[j]) + hs[j] * (x - xs[j])
    g_at = np.concatenate([[0.0], np.cumsum(np.diff(xs) * hs[:-1])]) if xs.size else xs

    def area_below(x: np.ndarray) -> np.ndarray:
        if xs.size == 0:
            return np.zeros_like(x)
        j = np.searchsorted(xs, x, side="right") - 1
        jj = np.maximum(j, 0)
        return np.where(j >= 0, g_at[jj] + hs[jj] * (x - xs[jj]), 0.0)

    gain = np.zeros(ca.size, dtype=np.float64)
    ok = np.isfinite(ca) & np.isfinite(cc) & (ca > ra) & (cc < rc)
    if not ok.any():
        return gain
    height = ca[ok] - ra
    start = cc[ok]
    # the candidate beats the front (h < height) for cost below the first front step at least as high
    stop = np.full(height.shape, rc)
    if xs.size:
        m = np.searchsorted(hs, height, side="left")
        stop = np.where(m < xs.size, xs[np.minimum(m, xs.size - 1)], rc)
    width = np.maximum(stop - start, 0.0)
    stop = np.maximum(stop, start)
    value = height * width - (area_below(stop) - area_below(start))
    gain[ok] = np.maximum(value, 0.0)
    return gain


def reference_point(acc: Any, cost: Any, margin: float = 0.1) -> tuple[float, float]:
    """A reference point from the data: the worst accuracy minus ``margin`` times the accuracy range and
    the worst cost plus ``margin`` times the cost range (a zero range uses the value's magnitude, or 1)."""
    if not math.isfinite(margin) or margin < 0:
        raise ConfigError(f"reference_point margin must be finite and >= 0, got {margin!r}")
    a, c = _pair(acc, cost)
    ok = np.isfinite(a) & np.isfinite(c)
    if not ok.any():
        raise ConfigError("reference_point needs at least one point with finite accuracy and cost")
    a, c = a[ok], c[ok]

    def span(x: np.ndarray, worst: float) -> float:
        r = float(x.max() - x.min())
        return r if r > 0 else (abs(worst) or 1.0)

    lo, hi = float(a.min()), float(c.max())
    return lo - margin * span(a, lo), hi + margin * span(c, hi)

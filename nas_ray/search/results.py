"""The results table: one row per evaluation, and what is derived from it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nas_ray.graph import Architecture

#: leading columns, in this order; every reported metric follows
COLUMNS = ("query", "trial_id", "searcher", "seed", "space", "hash", "arch", "status", "reward", "wall_s")


def make_row(
    *,
    query: int,
    trial_id: str,
    searcher: str,
    seed: int | None,
    space: str,
    arch_hash: str,
    arch: Architecture,
    metric: str,
    metrics: Mapping[str, Any] | None,
    wall_s: float,
    error: str | None = None,
) -> dict[str, Any]:
    """One results row; ``reward`` is the value of the searched ``metric`` (NaN for a failure)."""
    metrics = dict(metrics or {})
    value = metrics.get(metric)
    row = {
        "query": query,
        "trial_id": trial_id,
        "searcher": searcher,
        "seed": seed,
        "space": space,
        "hash": arch_hash,
        "arch": arch.to_json(),
        "status": "error" if error or value is None else "ok",
        "reward": float(value) if value is not None else float("nan"),
        "wall_s": float(wall_s),
    }
    if error:
        row["error"] = error
    for k, v in metrics.items():
        if k not in row and isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            row[k] = float(v)
    return row


def best_so_far(rewards: Sequence[float], mode: str = "max") -> np.ndarray:
    """Running best of ``rewards`` (NaN = failed evaluations are skipped; NaN until the first success)."""
    r = np.asarray(rewards, dtype=np.float64)
    filled = np.where(np.isnan(r), -np.inf if mode == "max" else np.inf, r)
    best = np.maximum.accumulate(filled) if mode == "max" else np.minimum.accumulate(filled)
    return np.where(np.isinf(best), np.nan, best)


def reported_of_best(rewards: Sequence[float], reported: Sequence[float], mode: str = "max") -> np.ndarray:
    """After each query, the ``reported`` value of the architecture with the best reward so far
    (the NB201 protocol: search on a validation signal, report test accuracy)."""
    out = np.full(len(rewards), np.nan)
    best, value = None, np.nan
    for i, (r, v) in enumerate(zip(rewards, reported)):
        if not np.isnan(r) and (best is None or (r > best if mode == "max" else r < best)):
            best, value = r, v
        out[i] = value
    return out


@dataclass
class SearchResult:
    """What a search returns: the results table, the best architecture and where files went."""

    table: Any  # pandas.DataFrame
    metric: str
    mode: str
    output: Path | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    space: Any = None  # the SearchSpace searched
    objective: Any = None  # the nas_ray.objectives.Objective of a multi-objective search

    def pareto_front(self) -> Any:
        """The non-dominated successful rows (highest ``objective.metric``, lowest ``objective.cost``),
        sorted by cost; None for a single-objective search."""
        if self.objective is None or self.objective.cost is None:
            return None
        from nas_ray.objectives import pareto_mask

        obj = self.objective
        ok = self.table[self.table["status"] == "ok"] if len(self.table) else self.table
        if ok.empty or obj.metric not in ok or obj.cost not in ok:
            return ok.iloc[0:0]
        mask = pareto_mask(ok[obj.metric].to_numpy(dtype=float), ok[obj.cost].to_numpy(dtype=float))
        return ok[mask].sort_values(obj.cost, kind="stable")

    @property
    def best_row(self) -> Mapping[str, Any] | None:
        ok = self.table[self.table["status"] == "ok"]
        if ok.empty:
            return None
        idx = ok["reward"].idxmax() if self.mode == "max" else ok["reward"].idxmin()
        return ok.loc[idx].to_dict()

    @property
    def best_arch(self) -> Architecture | None:
        row = self.best_row
        return None if row is None else Architecture.from_json(row["arch"])

    def best_so_far(self) -> np.ndarray:
        return best_so_far(self.table["reward"].to_numpy(), self.mode)


def summarize(result: SearchResult, extra: Mapping[str, Any]) -> dict[str, Any]:
    best = result.best_row
    t = result.table
    multi: dict[str, Any] = {}
    front = result.pareto_front()
    if front is not None:
        obj = result.objective
        multi = {"objective": obj.describe(), "pareto_front": [
            {"query": int(r["query"]), "hash": r["hash"], obj.metric: float(r[obj.metric]), obj.cost: float(r[obj.cost]),
             "score": float(r["reward"])} for r in front.to_dict("records")]}
    return {
        **multi,
        **extra,
        "metric": result.metric,
        "mode": result.mode,
        "evaluations": int(len(t)),
        "failed": int((t["status"] != "ok").sum()) if len(t) else 0,
        "stopped_early": int(t["stopped_early"].fillna(False).astype(bool).sum()) if "stopped_early" in t else 0,
        "best": None
        if best is None
        else {
            "query": int(best["query"]),
            "hash": best["hash"],
            "reward": float(best["reward"]),
            "arch": json.loads(best["arch"]),
            "metrics": {k: v for k, v in best.items() if k not in ("arch", "hash", "query") and isinstance(v, float)},
        },
    }

"""A search's own Ray metrics, exported with Ray's at every node's metrics port (Prometheus format;
the dashboard's Metrics view and Grafana read them there).

========================================  =========  ==============================================
metric (Prometheus name, Ray adds ray_)   kind       meaning
========================================  =========  ==============================================
``nas_ray_evaluations``                   counter    finished evaluations; tag ``status`` ok / error
``nas_ray_best_reward``                   gauge      the best searched metric so far (higher or lower
                                                     is better as the search's mode says)
``nas_ray_suggest_seconds``               histogram  how long the searcher took to propose a trial
``nas_ray_replay_buffer_size``            gauge      evaluated architectures in the searcher's replay
                                                     buffer (GraphPNAS), else in its history
========================================  =========  ==============================================

Every series carries the tags ``searcher`` and ``search`` (the run's name).
"""

from __future__ import annotations

import math
from typing import Any

TAGS = ("searcher", "search")
SUGGEST_BOUNDARIES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]


class SearchMetrics:
    """Records a search's metrics; created in the driver once Ray is up."""

    def __init__(self, searcher: str, search: str, mode: str = "max") -> None:
        from ray.util.metrics import Counter, Gauge, Histogram

        self.tags = {"searcher": searcher, "search": search}
        self.mode = mode
        self.best: float | None = None
        self.evaluations = Counter("nas_ray_evaluations", description="Finished architecture evaluations.",
                                   tag_keys=(*TAGS, "status"))
        self.best_reward = Gauge("nas_ray_best_reward", description="Best searched metric so far.", tag_keys=TAGS)
        self.suggest_seconds = Histogram("nas_ray_suggest_seconds", description="Seconds the searcher took to propose a trial.",
                                         boundaries=SUGGEST_BOUNDARIES, tag_keys=TAGS)
        self.replay_size = Gauge("nas_ray_replay_buffer_size", description="Evaluated architectures the searcher learns from.",
                                 tag_keys=TAGS)

    def row(self, row: dict[str, Any], search_alg: Any = None) -> None:
        """A finished trial's results row (and the searcher, for its latencies and buffer)."""
        ok = row.get("status") == "ok"
        self.evaluations.inc(1.0, tags={**self.tags, "status": "ok" if ok else "error"})
        value = row.get("reward")
        if ok and value is not None and math.isfinite(value):
            if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
                self.best = float(value)
            self.best_reward.set(self.best, tags=self.tags)
        if search_alg is not None:
            self.searcher(search_alg)

    def searcher(self, search_alg: Any) -> None:
        for seconds in drain_suggest_latencies(search_alg):
            self.suggest_seconds.observe(seconds, tags=self.tags)
        inner = getattr(search_alg, "searcher", search_alg)  # a ConcurrencyLimiter wraps ours
        buffer = getattr(inner, "buffer", None)
        size = len(buffer) if buffer is not None else len(getattr(inner, "history", ()))
        self.replay_size.set(float(size), tags=self.tags)


def drain_suggest_latencies(search_alg: Any) -> list[float]:
    inner = getattr(search_alg, "searcher", search_alg)
    pending = getattr(inner, "suggest_latencies", None)
    if not pending:
        return []
    out = list(pending)
    pending.clear()
    return out

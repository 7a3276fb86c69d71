"""``nas-ray bench``: searchers x seeds on a benchmark table, in-process (BENCHMARKS.md protocol)."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Published 100-query anchors on NB201 test accuracy (BENCHMARKS.md): GraphPNAS paper, and random
# search reproduced on this table over 500 seeds.
NB201_ANCHORS = {
    "cifar10": {"GraphPNAS (paper)": 94.34, "REINFORCE (paper)": 93.90, "random (paper)": 93.86, "random (reproduced, 500 seeds)": 93.75},
    "cifar100": {"GraphPNAS (paper)": 73.35, "REINFORCE (paper)": 71.86, "random (paper)": 71.55, "random (reproduced, 500 seeds)": 71.50},
    "imagenet16-120": {"GraphPNAS (paper)": 46.50, "REINFORCE (paper)": 45.64, "random (paper)": 45.28, "random (reproduced, 500 seeds)": 45.49},
}


def _evaluator_for(space: str, dataset: str | None, evaluator: str | None, data_dir: Any):  # noqa: ANN202
    from nas_ray.evaluators.specs import get_evaluator

    if evaluator is None:
        tables = {"nasbench201": f"table:nasbench201:{dataset or 'cifar10'}", "enas-macro": "table:enas6",
                  "nasbench101": "table:nasbench101"}
        if space not in tables:
            raise ValueError(f"no benchmark table for space {space!r}; pass --evaluator table:...")
        evaluator = tables[space]
    return get_evaluator(evaluator, data_dir=data_dir)


def run_bench(
    *,
    space: str = "nasbench201",
    dataset: str | None = "cifar10",
    evaluator: str | None = None,
    searchers: Sequence[str] = ("random", "evolution", "tpe"),
    seeds: int = 10,
    budget: int = 100,
    data_dir: Any = None,
    searcher_options: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every searcher with seeds 0..seeds-1; the number reported per run is the reported column
    (e.g. NB201 test accuracy) of the architecture with the best reward after ``budget`` queries."""
    from nas_ray.search.loop import run_local
    from nas_ray.search.results import reported_of_best
    from nas_ray.searchers import get_searcher

    ev = _evaluator_for(space, dataset, evaluator, data_dir)
    reported = ev.report[0] if getattr(ev, "report", ()) else ev.metric
    runs, curves, timing = [], {}, {}
    for name in searchers:
        curves[name] = []
        timing[name] = {"searcher_s": 0.0, "evaluator_s": 0.0}
        for seed in range(seeds):
            rows: list[dict[str, Any]] = []
            searcher = get_searcher(name, ev.space, seed=seed, metric=ev.metric, mode=ev.mode, **dict(searcher_options or {}))
            start = time.perf_counter()
            run_local(searcher, ev, budget, on_row=rows.append, searcher=name, seed=seed, space=ev.space.name,
                      metric=ev.metric)
            total = time.perf_counter() - start
            evaluating = sum(r["wall_s"] for r in rows)
            timing[name]["searcher_s"] += total - evaluating
            timing[name]["evaluator_s"] += evaluating
            rewards = [r["reward"] for r in rows]
            curve = reported_of_best(rewards, [r.get(reported, np.nan) for r in rows], ev.mode)
            curves[name].append(curve)
            runs.append({"searcher": name, "seed": seed, "final": float(curve[-1]), "curve": curve.tolist()})
            if progress:
                print(f"  {name:<12} seed {seed:>2}: {reported} {curve[-1]:.2f}  ({total:.2f} s)", file=sys.stderr, flush=True)
    summary = {}
    for name in searchers:
        finals = np.array([r["final"] for r in runs if r["searcher"] == name])
        summary[name] = {"mean": float(finals.mean()), "std": float(finals.std()), "n": int(len(finals))}
    anchors = NB201_ANCHORS.get(dataset, {}) if ev.space.name == "nasbench201" and evaluator is None else {}
    return {
        "json": {"summary": summary, "runs": runs, "space": ev.space.name, "dataset": dataset, "budget": budget,
                 "reported": reported, "reward": getattr(ev, "reward", ev.metric), "timing": timing},
        "curves": {k: np.array(v) for k, v in curves.items()},
        "anchors": anchors,
    }


def print_bench(report: Mapping[str, Any]) -> None:
    data = report["json"]
    print(f"\n{data['space']}" + (f" / {data['dataset']}" if data["dataset"] else "")
          + f": {data['reported']} of the best-{data['reward']} architecture after {data['budget']} queries")
    print(f"{'searcher':<14}{'mean':>9}{'std':>8}{'n':>5}{'searcher s':>12}")
    for name, s in data["summary"].items():
        print(f"{name:<14}{s['mean']:>9.2f}{s['std']:>8.2f}{s['n']:>5}{data['timing'][name]['searcher_s']:>12.2f}")
    for label, value in report["anchors"].items():
        print(f"{label:<34}{value:>7.2f}")


def plot_bench(report: Mapping[str, Any], path: str) -> None:
    from nas_ray.plots import plot_curves

    data = report["json"]
    plot_curves(report["curves"], path, ylabel=data["reported"], anchors=report["anchors"],
                title=f"{data['space']} {data['dataset'] or ''}: best-{data['reward']} architecture's {data['reported']}")

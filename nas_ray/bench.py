"""``nas-ray bench``: searchers x seeds on a benchmark table, in-process."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from nas_ray.errors import ConfigError

from nas_ray.spaces.nasbench201 import NB201_ANCHORS  # noqa: F401 - kept importable from here


#: rows ``nas-ray bench`` adds by default: what Ray Tune's own algorithms reach over the space's decisions
REFERENCE_ROWS = ("tune-random", "tune-optuna")


def _evaluator_for(space: str, dataset: str | None, evaluator: str | None, data_dir: Any):  # noqa: ANN202
    from nas_ray.evaluators.specs import get_evaluator

    if evaluator is None:
        from nas_ray.search.loop import resolve_evaluator
        from nas_ray.spaces.table import build_space

        space_obj = build_space(space, data_dir=data_dir)
        spec = space_obj.benchmark(dataset)
        if spec is None:
            hint = "; the spaces with a table: " + ", ".join(_benchmarked_spaces())
            raise ConfigError(f"space {space!r} has no benchmark table of its own; pass --evaluator{hint}")
        return resolve_evaluator(spec, space_obj, data_dir=data_dir)[0]  # a table-defined space scores on its table
    return get_evaluator(evaluator, data_dir=data_dir)


def _benchmarked_spaces() -> list[str]:
    from nas_ray.spaces import SPACES, get_space

    out = []
    for name in SPACES.names():
        try:
            if get_space(name).benchmark() is not None:
                out.append(name)
        except Exception:  # noqa: BLE001 - a space that needs options is not listed
            continue
    return out


def options_for(name: str, options: Mapping[str, Any] | None, space: Any, dataset: str | None,
                budget: int | None = None) -> dict[str, Any]:
    """The options one searcher gets: the searcher's own defaults for this space, dataset and budget
    (``defaults_for``; e.g. GraphPNAS's preset for the NB201 dataset), then the user's: unprefixed
    ones go to every searcher, ``name.key`` only to ``name``."""
    from nas_ray.search.config import split_label
    from nas_ray.searchers import SEARCHERS
    from nas_ray.spaces import get_space

    base, _ = split_label(name)
    out: dict[str, Any] = {}
    for key, value in (options or {}).items():
        target, dot, rest = key.partition(".")
        if not dot:
            out[key] = value
        elif target in (name, base):  # "graphpnas.epochs" reaches graphpnas under either driver
            out[rest] = value
    cls = SEARCHERS.get(base)
    defaults = cls.defaults_for(get_space(space) if isinstance(space, str) else space, budget=budget, dataset=dataset)
    if "population_size" in out:
        defaults.pop("sample_size", None)
    return {**defaults, **out}


def _run_one(job: tuple[Any, ...]) -> dict[str, Any]:
    """One searcher x seed run (a top-level function so worker processes can run it)."""
    name, seed, space, dataset, evaluator, budget, data_dir, options, reported, threads, multi, imports = job
    if imports:  # a spawned worker: the user's spaces, searchers and evaluators register again here
        from nas_ray.plugins import import_plugins

        import_plugins(imports)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    from nas_ray.search.loop import run_local, searcher_supports_pareto, with_objective
    from nas_ray.search.config import split_label
    from nas_ray.search.results import reported_of_best
    from nas_ray.searchers import get_searcher

    base, driver = split_label(name)
    ev = _evaluator_for(space, dataset, evaluator, data_dir)
    objective = None
    if multi is not None:
        ev, objective = with_objective(ev, cost=multi["cost"], lam=multi["lam"], pareto=multi["pareto"])
        if objective.pareto and searcher_supports_pareto(base):
            options = {**options, "objective": objective}
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    if driver == "rllib":  # the method's RLlib algorithm, no env runners
        from nas_ray.search.rl import run_rllib

        rows = run_rllib(evaluator=ev, budget=budget, seed=seed, options=options, progress=False).table.to_dict("records")
    else:
        searcher = get_searcher(base, ev.space, seed=seed, metric=ev.metric, mode=ev.mode, **options)
        run_local(searcher, ev, budget, on_row=rows.append, searcher=name, seed=seed, space=ev.space.name, metric=ev.metric)
    total = time.perf_counter() - start
    evaluating = sum(r["wall_s"] for r in rows)
    rewards = [r["reward"] for r in rows]
    out = {"searcher": name, "seed": seed, "searcher_s": total - evaluating, "evaluator_s": evaluating, "wall_s": total}
    if objective is not None:  # the hypervolume of (reported accuracy, cost) after each query
        from nas_ray.objectives import hypervolume

        acc = np.array([r.get(reported, np.nan) for r in rows], dtype=float)
        cost = np.array([r.get(objective.cost, np.nan) for r in rows], dtype=float)
        ref_acc, ref_cost = multi["reference"]
        curve = np.array([hypervolume(acc[:i + 1], cost[:i + 1], ref_acc, ref_cost) for i in range(len(rows))])
        out["points"] = np.stack([acc, cost], axis=1).tolist()
    else:
        curve = reported_of_best(rewards, [r.get(reported, np.nan) for r in rows], ev.mode)
    return {**out, "final": float(curve[-1]), "curve": curve.tolist()}


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
    workers: int = 1,
    partial: str | None = None,
    cost: str | None = None,
    lam: float = 0.02,
    pareto: bool = False,
    imports: Sequence[str] | None = None,
    reference: bool = True,
) -> dict[str, Any]:
    """Run every searcher with seeds 0..seeds-1; the number reported per run is the reported column
    (e.g. NB201 test accuracy) of the architecture with the best reward after ``budget`` queries.
    ``workers`` > 1 runs that many (searcher, seed) runs at once in worker processes (one torch
    thread each); the results do not depend on it. ``partial``: a JSON-lines file that gets each run
    as it finishes (so a long benchmark that is stopped keeps what it measured).

    ``cost`` (a column of the table, e.g. ``lat_pixel3_ms``) makes it a multi-objective benchmark: the
    searchers optimise the efficiency score (``pareto``: nasgem models both objectives), and the
    number per run is the hypervolume of the (reported accuracy, cost) points it evaluated, against
    the table's worst accuracy and highest cost.

    ``imports``: modules (or ``.py`` files) that register your own spaces, searchers or evaluators;
    imported here and in every worker process (default: whatever ``import_plugins`` loaded so far).

    ``reference`` adds the reference rows (``REFERENCE_ROWS``: Ray Tune's own random variants and
    ``OptunaSearch`` over the space's decisions, what a Tune user gets without nas-ray) after the
    searchers, unless listed already or the space has no decisions."""
    from nas_ray.plugins import import_plugins, loaded_plugins

    imports = list(imports) if imports is not None else loaded_plugins()
    import_plugins(imports)
    ev = _evaluator_for(space, dataset, evaluator, data_dir)
    if evaluator is not None:  # the evaluator names the space (and, for a table, its dataset)
        space, dataset = ev.space.name, getattr(ev, "dataset", None)
    reported = getattr(ev, "benchmark_column", None) or (ev.report[0] if getattr(ev, "report", ()) else ev.metric)
    multi = None
    if cost is not None or pareto:
        table = getattr(ev, "table", None)
        if table is None:
            raise ConfigError("a multi-objective benchmark needs a table evaluator (its worst point is the reference)")
        if cost is None or cost not in table.columns:
            raise ConfigError(f"cost must be a column of table {table.name}: {', '.join(table.columns)}")
        multi = {"cost": cost, "lam": float(lam), "pareto": bool(pareto),
                 "reference": (float(np.nanmin(table.column(reported))), float(np.nanmax(table.column(cost))))}
    from nas_ray.search.config import check_driver, split_label

    searchers = list(searchers)
    if reference:
        try:
            ev.space.decisions()
        except NotImplementedError:
            print(f"note: no reference rows: space {ev.space.name} has no decisions()", file=sys.stderr)
        else:
            searchers += [name for name in REFERENCE_ROWS if name not in searchers]
    for label in searchers:  # every label names a searcher and a driver that runs it, before any run starts
        base, driver = split_label(label)
        check_driver(base, driver)
        if driver != "tune" and multi is not None:
            raise ConfigError(f"{label}: driver {driver!r} takes no cost (benchmark it without --cost)")
    data_dir = str(data_dir) if data_dir is not None else None
    jobs = [
        (name, seed, space, dataset, evaluator, budget, data_dir, options_for(name, searcher_options, ev.space, dataset, budget),
         reported, 1 if workers > 1 else None, multi, imports)
        for name in searchers
        for seed in range(seeds)
    ]
    if partial:  # a missing folder would otherwise fail only when the first run is done
        Path(partial).parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    runs: list[dict[str, Any]] = []

    def done(run: dict[str, Any]) -> None:
        runs.append(run)
        if partial:
            with open(partial, "a") as f:
                f.write(json.dumps(run) + "\n")
        if progress:
            what = "hypervolume" if multi else reported
            print(f"  {run['searcher']:<12} seed {run['seed']:>2}: {what} {run['final']:.4g}  ({run['wall_s']:.2f} s)",
                  file=sys.stderr, flush=True)

    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for fut in as_completed([pool.submit(_run_one, job) for job in jobs]):
                done(fut.result())
    else:
        for job in jobs:
            done(_run_one(job))
    wall = time.perf_counter() - start
    runs.sort(key=lambda r: (list(searchers).index(r["searcher"]), r["seed"]))
    summary, timing, curves = {}, {}, {}
    for name in searchers:
        mine = [r for r in runs if r["searcher"] == name]
        finals = np.array([r["final"] for r in mine])
        summary[name] = {"mean": float(finals.mean()), "std": float(finals.std()), "n": int(len(finals))}
        timing[name] = {k: float(sum(r[k] for r in mine)) for k in ("searcher_s", "evaluator_s", "wall_s")}
        curves[name] = np.array([r["curve"] for r in mine])
    anchors = ev.space.published("bench", dataset) if evaluator is None and multi is None else {}
    out = {
        "json": {"summary": summary, "runs": runs, "space": ev.space.name, "dataset": dataset, "budget": budget,
                 "reported": reported, "reward": getattr(ev, "reward", ev.metric), "timing": timing,
                 "wall_s": wall, "workers": workers},
        "curves": curves,
        "anchors": anchors,
    }
    if multi is not None:
        from nas_ray.objectives import hypervolume

        table = ev.table
        ceiling = hypervolume(table.column(reported), table.column(cost), *multi["reference"])
        out["json"]["multi_objective"] = {"cost": cost, "lam": float(lam), "pareto": bool(pareto), "reference": list(multi["reference"]),
                                          "searched": "efficiency score" + (" (nasgem: both objectives)" if pareto else ""),
                                          "table_hypervolume": ceiling}
        out["table_points"] = (table.column(reported), table.column(cost))
    return out


def print_bench(report: Mapping[str, Any]) -> None:
    data = report["json"]
    multi = data.get("multi_objective")
    where = f"\n{data['space']}" + (f" / {data['dataset']}" if data["dataset"] else "")
    if multi:
        ref = multi["reference"]
        print(where + f": hypervolume of ({data['reported']}, {multi['cost']}) after {data['budget']} queries "
              f"(reference {ref[0]:.4g}, {ref[1]:.4g}; searched: {multi['searched']}, lambda {multi['lam']})")
    else:
        print(where + f": {data['reported']} of the best-{data['reward']} architecture after {data['budget']} queries")
    gap = multi.get("table_hypervolume") if multi else None
    print(f"{'searcher':<14}{'mean':>9}{'std':>8}{'n':>5}{'searcher s':>12}" + (f"{'gap to the table front':>24}" if gap else ""))
    fractions = all(abs(v["mean"]) <= 1.0 for v in data["summary"].values())  # e.g. ENAS-6's accuracies
    number = "{:>9.5g}{:>8.3g}" if multi else ("{:>9.4f}{:>8.4f}" if fractions else "{:>9.2f}{:>8.2f}")
    first_reference = next((n for n in data["summary"] if n in REFERENCE_ROWS), None)
    for name, s in data["summary"].items():
        if name == first_reference:
            print("reference: Ray Tune's own algorithms over the space's decisions, without nas-ray")
        print(f"{name:<14}" + number.format(s["mean"], s["std"]) + f"{s['n']:>5}{data['timing'][name]['searcher_s']:>12.2f}"
              + (f"{gap - s['mean']:>24.4g}" if gap else ""))
    if gap:
        print(f"the whole table's front: {gap:.5g} (the gap is the area between it and the front found)")
    if "wall_s" in data:
        print(f"wall time {data['wall_s']:.1f} s with {data.get('workers', 1)} worker process(es)")
    for label, value in report["anchors"].items():
        print(f"{label:<34}{value:>7.2f}")


def plot_bench(report: Mapping[str, Any], path: str) -> None:
    from nas_ray.plots import plot_curves

    data = report["json"]
    multi = data.get("multi_objective")
    if multi:
        from pathlib import Path

        from nas_ray.plots import plot_pareto

        plot_curves(report["curves"], path, ylabel="hypervolume",
                    title=f"{data['space']} {data['dataset'] or ''}: hypervolume of ({data['reported']}, {multi['cost']})")
        seed0 = {r["searcher"]: np.asarray(r["points"]).reshape(-1, 2) for r in data["runs"] if r["seed"] == 0}
        front_path = Path(path).with_name(Path(path).stem + "_pareto.png")
        plot_pareto({k: (v[:, 0], v[:, 1]) for k, v in seed0.items()}, front_path, xlabel=multi["cost"], ylabel=data["reported"],
                    reference={"whole table": report["table_points"]} if "table_points" in report else None, log_x=True,
                    title=f"{data['space']} {data['dataset'] or ''}: fronts found in {data['budget']} queries (seed 0)")
        return
    plot_curves(report["curves"], path, ylabel=data["reported"], anchors=report["anchors"],
                title=f"{data['space']} {data['dataset'] or ''}: best-{data['reward']} architecture's {data['reported']}")

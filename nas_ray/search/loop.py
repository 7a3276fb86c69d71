"""The search loop: a searcher proposes, an evaluator scores, on Ray Tune or in this process."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nas_ray.errors import ConfigError, UnknownName
from nas_ray.evaluators.base import Evaluator
from nas_ray.graph import Architecture
from nas_ray.search.config import BACKENDS, SearchConfig  # BACKENDS: re-exported by nas_ray.search
from nas_ray.search.results import SearchResult, make_row, summarize
from nas_ray.spaces import SearchSpace

RowCallback = Callable[[dict[str, Any]], None]


def run(config: SearchConfig | None = None, /, *, progress: bool | RowCallback = True, **options: Any) -> SearchResult:
    """Search ``budget`` unique architectures and return the results table.

    The settings are a ``SearchConfig`` (``nas_ray.search.config``), given as the object, as keyword
    options, or both (the keywords replace its fields); an unknown option is a one-line error.
    ``evaluator`` is an Evaluator or a spec such as ``"table:nasbench201:cifar10"`` or
    ``"train:digits"``; ``searcher`` a registered name (``"random"``, ``"evolution"``, ``"tpe"``, ...)
    or an ``ArchitectureSearcher``; ``space`` defaults to the evaluator's. ``backend="tune"`` runs
    each evaluation as a Ray Tune trial (a local Ray unless ``address`` names a cluster), ``"local"``
    in this process without Ray. With one trial at a time and the same seed both produce the same
    sequence of architectures. ``scheduler="asha"`` (Tune backend) stops trials whose per-epoch
    ``metric`` trails the others' at the same epoch (their rows say ``stopped_early``);
    ``evaluator_options`` go to the evaluator named by a spec (``{"epochs": 4, "space": "nasbench201"}``).
    A failed trial is retried ``max_failures`` times, from its last per-epoch checkpoint.
    ``cost`` (a metric of the evaluator or a table column: ``params``, ``macs``, ``lat_pixel3_ms``, ...)
    makes the search multi-objective: searchers optimise the efficiency score ``metric/scale -
    lam * ln(cost)`` (reported as ``score``), and ``pareto=True`` also gives searchers that support it
    (``nasgem``) the two objectives; either way the results hold the non-dominated set. With
    ``output``, writes ``results.csv``, ``summary.json``, ``best_so_far.png`` and
    ``best_architecture.png`` there (and Tune's run directory, or the local backend's trained
    weights, under it).
    """
    from nas_ray.plugins import import_plugins
    from nas_ray.searchers import get_searcher
    from nas_ray.searchers.base import ArchitectureSearcher

    config = (config or SearchConfig()).replace(**options).validate()
    import_plugins(config.imports)
    # what `nas-ray resume` needs to rebuild this run (only specs: objects cannot be written down)
    try:
        recipe: dict[str, Any] | None = {**config.to_record(), "imports": _plugin_paths()}
    except TypeError:
        recipe = None
    evaluator, searcher, space, budget, seed = config.evaluator, config.searcher, config.space, config.budget, config.seed
    backend, max_concurrent, output, data_dir = config.backend, config.max_concurrent, config.output, config.data_dir
    address, cpus_per_trial, gpus_per_trial = config.address, config.cpus_per_trial, config.gpus_per_trial
    max_failures, scheduler, name = config.max_failures, config.scheduler, config.name
    evaluator_options, searcher_options, space_options = config.evaluator_options, config.searcher_options, config.space_options
    cost, lam, pareto = config.cost, float(config.lam), config.pareto
    if config.driver == "rllib":  # GraphPNAS as an RLlib algorithm, with the same inputs and results
        from nas_ray.search.rl import run_rllib

        graphpnas = dict(searcher_options)
        return run_rllib(evaluator=evaluator, space=space, budget=budget, seed=seed, preset=graphpnas.pop("preset", None),
                         options=graphpnas, data_dir=data_dir, space_options=space_options, output=output, address=address,
                         progress=progress, evaluator_options=evaluator_options)
    evaluator, space_obj = resolve_evaluator(evaluator, space, data_dir=data_dir, evaluator_options=evaluator_options,
                                             space_options=space_options)
    evaluator, objective = with_objective(evaluator, cost=cost, lam=lam, pareto=pareto)
    if isinstance(searcher, ArchitectureSearcher):
        search_alg = searcher
        search_alg.set_search_properties(evaluator.metric, evaluator.mode, {})
    else:
        from nas_ray.searchers import SEARCHERS

        user = dict(searcher_options or {})
        clash = sorted({"seed", "metric", "mode"} & set(user))
        if clash:
            raise ConfigError(f"searcher option {clash[0]!r} is set by the search itself (seed: --seed / seed=; metric and mode: "
                              "the evaluator's); remove it from the searcher options")
        defaults = SEARCHERS.get(searcher).defaults_for(space_obj, budget=budget, dataset=getattr(evaluator, "dataset", None))
        if "population_size" in user:  # evolution's tournament follows an explicit population (defaults_for sized both)
            defaults.pop("sample_size", None)
        options = {**defaults, **user}
        if objective is not None and objective.pareto and searcher_supports_pareto(searcher):
            options.setdefault("objective", objective)
        search_alg = get_searcher(searcher, space_obj, seed=seed, metric=evaluator.metric, mode=evaluator.mode, **options)
    searcher_name = search_alg.name or type(search_alg).__name__
    out = Path(output) if output is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        if backend == "tune":
            _write_recipe(out, recipe)

    report = _progress_printer(budget, evaluator, searcher_name) if progress is True else (progress or None)
    rows: list[dict[str, Any]] = []

    def on_row(row: dict[str, Any]) -> None:
        rows.append(row)
        if report:
            report(row)

    common = {"searcher": searcher_name, "seed": seed, "space": space_obj.name, "metric": evaluator.metric}
    started = time.perf_counter()
    if backend == "local":
        run_local(search_alg, evaluator, budget, max_concurrent=max_concurrent, on_row=on_row,
                  weights_dir=None if out is None else out / "weights", **common)
    else:
        from nas_ray.search.tune_backend import run_tune

        run_tune(
            search_alg, evaluator, budget, max_concurrent=max_concurrent, on_row=on_row, storage=out, name=name,
            address=address, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
            max_failures=max_failures, scheduler=scheduler, **common,
        )
    elapsed = time.perf_counter() - started
    result = _search_result(rows, evaluator, out, space_obj, objective, {
        **common, "budget": budget, "backend": backend, "max_concurrent": max_concurrent, "scheduler": scheduler,
        "evaluator": evaluator.describe(), "wall_s": elapsed})
    if out is not None:
        write_outputs(result)
    return result


def _search_result(rows: list[dict[str, Any]], evaluator: Evaluator, out: Path | None, space: SearchSpace, objective: Any,
                   extra: dict[str, Any]) -> SearchResult:
    """The results table of ``rows`` (in query order) with its summary."""
    import pandas as pd

    table = pd.DataFrame(rows)
    if len(table):
        table = table.sort_values("query", kind="stable").reset_index(drop=True)
    result = SearchResult(table, evaluator.metric, evaluator.mode, out, space=space, objective=objective)
    result.summary = summarize(result, extra)
    return result


RECIPE_FILE = "run.json"


def _write_recipe(out: Path, recipe: dict[str, Any] | None) -> None:
    try:
        if recipe is None:
            raise TypeError("objects")
        text = json.dumps({"format": "nas-ray-run", "version": 1, **recipe}, indent=2)
    except TypeError:  # an Evaluator / searcher object or options that are not plain data
        text = json.dumps({"format": "nas-ray-run", "version": 1, "resumable": False})
    (out / RECIPE_FILE).write_text(text)


def _plugin_paths() -> list[str]:
    """The plugins loaded so far, files as absolute paths (resume may run from another folder)."""
    from nas_ray.plugins import loaded_plugins

    return [str(Path(p).resolve()) if p.endswith(".py") else p for p in loaded_plugins()]


def resume(results_dir: str | os.PathLike[str], *, address: str | None = None, progress: bool | RowCallback = True) -> SearchResult:
    """Continue a Tune search whose driver died (``nas-ray resume RESULTS_DIR``): the Tuner and the
    searcher come back from Tune's last snapshot in ``results_dir`` (trials running then are rerun
    from their last checkpoint; trials started after it are proposed again by the restored searcher,
    so with a deterministic evaluator and one trial at a time the results equal an uninterrupted
    run's). Writes the same files as ``run`` and returns the whole results table."""
    from nas_ray.errors import CheckpointError

    out = Path(results_dir)
    try:
        recipe = json.loads((out / RECIPE_FILE).read_text())
    except OSError:
        raise CheckpointError(f"{out}: no {RECIPE_FILE}; only Tune-backend searches with an output folder can be resumed") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{out / RECIPE_FILE}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    if recipe.get("format") != "nas-ray-run":
        raise CheckpointError(f"{out / RECIPE_FILE}: not a nas-ray run recipe")
    if recipe.get("resumable") is False:
        raise CheckpointError(f"{out}: the search was started with Python objects (an Evaluator or searcher instance), "
                              "which cannot be rebuilt; resume it from Python with ray.tune.Tuner.restore")
    config = SearchConfig.from_record(recipe)
    if recipe.get("imports"):  # the user's spaces, searchers and evaluators register again
        from nas_ray.plugins import import_plugins

        import_plugins(recipe["imports"])
    experiment = out / config.name
    if not (experiment / "tuner.pkl").is_file():
        raise CheckpointError(f"{experiment}: no Tune experiment to resume (tuner.pkl is missing)")
    evaluator, space_obj = resolve_evaluator(config.evaluator, config.space, data_dir=config.data_dir,
                                             evaluator_options=config.evaluator_options, space_options=config.space_options)
    evaluator, objective = with_objective(evaluator, cost=config.cost, lam=config.lam, pareto=config.pareto)
    from nas_ray.search.tune_backend import resume_tune

    searcher_name = config.searcher if isinstance(config.searcher, str) else "searcher"
    common = {"searcher": searcher_name, "seed": config.seed, "space": space_obj.name, "metric": evaluator.metric}
    started = time.perf_counter()
    rows = resume_tune(experiment, evaluator, address=address, cpus_per_trial=config.cpus_per_trial,
                       gpus_per_trial=config.gpus_per_trial, **common)
    elapsed = time.perf_counter() - started
    result = _search_result(rows, evaluator, out, space_obj, objective, {
        **common, "budget": config.budget, "backend": "tune", "max_concurrent": config.max_concurrent,
        "scheduler": config.scheduler, "evaluator": evaluator.describe(), "wall_s": elapsed, "resumed": True})
    if progress is True:
        print(f"resumed {experiment}: {len(result.table)} trials in the results", file=sys.stderr)
    write_outputs(result)
    return result


def searcher_supports_pareto(name: str) -> bool:
    """Whether the searcher registered as ``name`` takes a two-objective ``objective`` option."""
    from nas_ray.searchers import SEARCHERS

    return bool(getattr(SEARCHERS.get(name), "supports_pareto", False)) if name in SEARCHERS else False


def with_objective(evaluator: Evaluator, *, cost: str | None = None, lam: float = 0.02,
                   pareto: bool = False) -> tuple[Evaluator, Any]:
    """``evaluator`` scored by the efficiency objective when a ``cost`` is named (a table evaluator is
    made to report that column), and the ``Objective``; unchanged and None without a cost."""
    if cost is None:
        if pareto:
            raise ConfigError("a Pareto search needs a cost metric to trade accuracy against (cost=..., CLI --cost)")
        return evaluator, None
    from nas_ray.evaluators.tabular import TabularEvaluator
    from nas_ray.objectives import Objective, ObjectiveEvaluator

    # the accuracy under its own name: the results' "reward" column holds the searched metric (the score)
    accuracy = evaluator.metric
    if isinstance(evaluator, TabularEvaluator):
        accuracy = evaluator.reward
        if cost not in (evaluator.reward, *evaluator.report):
            evaluator = evaluator.with_report(cost)
    elif accuracy == "reward" and getattr(evaluator, "target", None) is not None:  # a surrogate's prediction
        accuracy = "predicted_accuracy"
    objective = Objective(metric=accuracy, cost=cost, lam=lam, pareto=pareto, scale=evaluator.metric_scale)
    return ObjectiveEvaluator(evaluator, objective), objective


def resolve_evaluator(
    evaluator: Evaluator | str,
    space: SearchSpace | str | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    evaluator_options: Mapping[str, Any] | None = None,
    space_options: Mapping[str, Any] | None = None,
) -> tuple[Evaluator, SearchSpace]:
    """The evaluator (a spec string is built with ``evaluator_options``) and the space searched, which
    must be the evaluator's: a training evaluator named by a spec builds the networks of ``space``."""
    from nas_ray.evaluators.specs import get_evaluator
    from nas_ray.spaces.table import build_space

    space_obj = None
    if space is not None:
        space_obj = build_space(space, space_options, data_dir=data_dir) if isinstance(space, str) else space
    if isinstance(evaluator, str):
        options = dict(evaluator_options or {})
        if evaluator.startswith("train:") and space_obj is not None and "space" not in options:
            options["space"] = space_obj
        evaluator = get_evaluator(evaluator, data_dir=data_dir, **options)
    elif evaluator_options:
        raise ConfigError("evaluator_options apply to an evaluator spec string, not to an Evaluator object")
    if space_obj is None:
        return evaluator, evaluator.space
    if getattr(space_obj, "table_defined", False) and space_obj.scores_with(evaluator.space):
        return evaluator.on_space(space_obj), space_obj  # the table's part of the evaluator's space
    if (space_obj.name, space_obj.options()) != (evaluator.space.name, evaluator.space.options()):
        raise ConfigError(
            f"the evaluator scores {evaluator.space!r} architectures, not {space_obj!r}: "
            "pick an evaluator of that space or leave the space out"
        )
    return evaluator, space_obj


def run_local(
    search_alg: Any,
    evaluator: Evaluator,
    budget: int,
    *,
    max_concurrent: int = 1,
    on_row: RowCallback,
    weights_dir: Path | None = None,
    searcher: str,
    seed: int | None,
    space: str,
    metric: str,
) -> None:
    """In-process loop: up to ``max_concurrent`` proposals are outstanding, evaluated oldest first
    (so a concurrency limit affects the searcher as it would on Tune). A trained network's final
    weights go to ``weights_dir/<trial_id>.pt`` (``nas-ray export`` reads them). A searcher left at
    ``updates="auto"`` fits its models inline here, even when Ray is up: a seeded local run
    reproduces exactly."""
    from ray.tune.search import Searcher

    if getattr(search_alg, "updates", None) == "auto":
        search_alg.updates = "sync"

    queue: deque[tuple[str, dict[str, Any]]] = deque()
    proposed, finished = 0, False
    while queue or (proposed < budget and not finished):
        while not finished and proposed < budget and len(queue) < max_concurrent:
            trial_id = f"{proposed:05d}"
            config = search_alg.suggest(trial_id)
            if config is Searcher.FINISHED:
                finished = True
            elif config is None:
                if not queue:
                    raise RuntimeError(f"{searcher}: suggest() returned None with no trial running")
                break
            else:
                queue.append((trial_id, config))
                proposed += 1
        if not queue:
            break
        trial_id, config = queue.popleft()
        arch = Architecture.from_dict(config["arch"])
        start = time.perf_counter()
        metrics: dict[str, Any] | None = None
        error, state = None, None
        try:
            evaluator.space.validate(arch)  # a user's searcher may propose anything
            for step in evaluator.iterate(arch):
                metrics, state = step.metrics, step.state
                search_alg.on_trial_result(trial_id, metrics)
            if weights_dir is not None and state is not None and "model" in state:
                import torch

                weights_dir.mkdir(parents=True, exist_ok=True)
                torch.save({"hash": state.get("hash"), "model": state["model"]}, weights_dir / f"{trial_id}.pt")
        except UnknownName:
            raise  # a misnamed metric or cost column is the search's configuration, not this trial
        except Exception as exc:  # noqa: BLE001 - a failed evaluation is a failed trial, as on Tune
            error = f"{type(exc).__name__}: {exc}"
        if error is None and metrics is not None:
            search_alg.on_trial_complete(trial_id, metrics)
        else:
            search_alg.on_trial_complete(trial_id, None, error=True)
        on_row(
            make_row(
                query=int(trial_id), trial_id=trial_id, searcher=searcher, seed=seed, space=space,
                arch_hash=evaluator.space.hash(arch), arch=arch, metric=metric,
                metrics=metrics if error is None else None, wall_s=time.perf_counter() - start, error=error,
            )
        )


def write_outputs(result: SearchResult) -> None:
    """results.csv, summary.json and the PNGs (best so far, best architecture, and the Pareto front of a
    multi-objective search) into ``result.output``."""
    from nas_ray.plots import draw_architecture, plot_best_so_far

    out = result.output
    result.table.to_csv(out / "results.csv", index=False)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2, default=float))
    if len(result.table):
        s = result.summary
        plot_best_so_far(
            result.table["reward"].to_numpy(), out / "best_so_far.png", mode=result.mode, metric=result.metric,
            title=f"{s['searcher']} on {s['space']} (seed {s['seed']})",
        )
        obj = result.objective
        ok = result.table[result.table["status"] == "ok"]
        if obj is not None and obj.cost is not None and not ok.empty and obj.cost in ok and obj.metric in ok:
            from nas_ray.plots import plot_pareto

            plot_pareto({s["searcher"]: (ok[obj.metric].to_numpy(float), ok[obj.cost].to_numpy(float))}, out / "pareto.png",
                        xlabel=obj.cost, ylabel=obj.metric, log_x=True,
                        title=f"{s['searcher']} on {s['space']}: non-dominated set of {len(ok)} evaluations")
    best = result.best_arch
    if best is not None:
        if result.space is not None:  # draw what is built: e.g. an NB101 cell without its pruned nodes
            best = result.space.canonicalize(best)
        draw_architecture(best, out / "best_architecture.png",
                          title=f"best: {result.metric} = {result.best_row['reward']:.4g}")


def _progress_printer(budget: int, evaluator: Evaluator, searcher: str) -> RowCallback:
    """A line per finished evaluation with the best so far, on stderr."""
    best: list[float] = []
    width = len(str(budget))

    def report(row: dict[str, Any]) -> None:
        value = row["reward"]
        if row["status"] == "ok" and (not best or (value > best[0] if evaluator.mode == "max" else value < best[0])):
            best[:] = [value]
        shown = f"{value:.4g}" if row["status"] == "ok" else "failed"
        top = f"{best[0]:.4g}" if best else "-"
        print(
            f"[{row['query'] + 1:>{width}}/{budget}] {searcher}: {evaluator.metric} {shown:>8}   best {top:>8}   "
            f"({row['wall_s']:.2f} s)",
            file=sys.stderr,
            flush=True,
        )

    return report

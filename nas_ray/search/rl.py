"""GraphPNAS searches driven by RLlib (``nas_ray.searchers.REINFORCE``), with the same results
files as every other search."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nas_ray.evaluators.base import Evaluator
from nas_ray.search.results import SearchResult, summarize
from nas_ray.spaces import SearchSpace
from nas_ray.errors import ConfigError, ConfigTypeError

#: the searcher column of the results of GraphPNAS under the RLlib driver
NAME = "graphpnas@rllib"


def rllib_config(
    *,
    evaluator: Evaluator | str,
    space: SearchSpace | str | None = None,
    budget: int = 100,
    seed: int = 0,
    num_env_runners: int = 0,
    preset: str | None = None,
    options: Mapping[str, Any] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    space_options: Mapping[str, Any] | None = None,
    evaluation: str = "auto",
    evaluator_options: Mapping[str, Any] | None = None,
) -> Any:
    """A ``REINFORCEConfig`` for a search of ``budget`` unique architectures (``options``: GraphPNAS
    options, as for the ``graphpnas`` searcher; ``evaluator_options`` build an evaluator spec)."""
    from nas_ray.search.loop import resolve_evaluator
    from nas_ray.searchers.reinforce import REINFORCEConfig

    if not isinstance(budget, int) or budget <= 0:
        raise ConfigError(f"budget must be a positive number of architectures, got {budget!r}")
    if not isinstance(num_env_runners, int) or num_env_runners < 0:
        raise ConfigError(f"num_env_runners must be a non-negative int, got {num_env_runners!r}")
    ev, space_obj = resolve_evaluator(evaluator, space, data_dir=data_dir, evaluator_options=evaluator_options,
                                      space_options=space_options)
    from nas_ray.models.learning import option_names

    options = dict(options or {})
    preset = options.pop("preset", preset)
    unknown = sorted(set(options) - set(option_names()))
    if unknown:
        raise ConfigTypeError(f"GraphPNAS has no option {unknown[0]!r}; options: {', '.join(option_names())}")
    return (
        REINFORCEConfig()
        .search(space=space_obj, evaluator=ev, budget=budget, evaluation=evaluation)
        .training(preset=preset, **options)
        .env_runners(num_env_runners=num_env_runners)
        # a runner lost with its node is restarted elsewhere; its evaluations are retried (see REINFORCE)
        .fault_tolerance(restart_failed_env_runners=True, max_num_env_runner_restarts=100,
                         delay_between_env_runner_restarts_s=1.0)
        .debugging(seed=seed)
    )


def run_rllib(
    *,
    evaluator: Evaluator | str,
    space: SearchSpace | str | None = None,
    budget: int = 100,
    seed: int = 0,
    num_env_runners: int = 0,
    preset: str | None = None,
    options: Mapping[str, Any] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    space_options: Mapping[str, Any] | None = None,
    evaluation: str = "auto",
    output: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 0,
    restore: str | os.PathLike[str] | None = None,
    address: str | None = None,
    progress: bool | Callable[[dict[str, Any]], None] = True,
    evaluator_options: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Run GraphPNAS under RLlib until ``budget`` unique architectures are evaluated and return the
    results table. ``output`` gets ``results.csv``, ``summary.json``, the two plots and the final
    checkpoint (``checkpoint/``, plus ``checkpoint-<iteration>/`` every ``checkpoint_every``
    iterations); ``restore`` continues a search from such a checkpoint (its settings win)."""
    import ray

    from nas_ray.search.loop import _progress_printer, write_outputs
    from nas_ray.searchers.reinforce import REINFORCE

    config = rllib_config(
        evaluator=evaluator, space=space, budget=budget, seed=seed, num_env_runners=num_env_runners, preset=preset,
        options=options, data_dir=data_dir, space_options=space_options, evaluation=evaluation,
        evaluator_options=evaluator_options,
    )
    ev = config.evaluator()
    if not ray.is_initialized():
        if address:
            ray.init(address=address)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    out = Path(output) if output is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if restore is not None:
        path = Path(restore)
        if not (path / "rllib_checkpoint.json").is_file():
            raise ConfigError(f"{restore} is not an RLlib checkpoint folder (no rllib_checkpoint.json)")
        algo = REINFORCE.from_checkpoint(str(path.resolve()))
        budget, seed, num_env_runners = algo.config.search_budget, algo.config.seed, algo.config.num_env_runners
        ev = algo.config.evaluator()
    else:
        algo = config.build_algo()
    report = _progress_printer(budget, ev, NAME) if progress is True else (progress or None)
    shown = len(algo.rows())
    started = time.perf_counter()
    try:
        while True:
            result = algo.train()
            rows = algo.rows()
            if report:
                for row in rows[shown:]:
                    report(row)
            shown = len(rows)
            it = int(result.get("training_iteration", 0))
            if out is not None and checkpoint_every and it % checkpoint_every == 0 and not result["done"]:
                algo.save_to_path(str((out / f"checkpoint-{it:05d}").resolve()))
            if result["done"]:
                break
            if it > 100 * budget:  # every step evaluates at least one architecture unless the space is exhausted
                print(f"{NAME}: stopped after {it} iterations without new architectures", file=sys.stderr)
                break
        if out is not None:
            algo.save_to_path(str((out / "checkpoint").resolve()))
        rows = algo.rows()
        space_obj = algo.search_space
        metric, mode = algo.metric, algo.mode
    finally:
        algo.stop()
    elapsed = time.perf_counter() - started

    import pandas as pd

    table = pd.DataFrame(rows)
    result = SearchResult(table, metric, mode, out, space=space_obj)
    result.summary = summarize(
        result,
        {"searcher": NAME, "seed": seed, "space": space_obj.name, "metric": metric, "budget": budget,
         "backend": "rllib", "num_env_runners": num_env_runners, "evaluator": ev.describe(), "wall_s": elapsed},
    )
    if out is not None:
        write_outputs(result)
    return result

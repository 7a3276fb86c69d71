"""Running a search on Ray Tune: one trial per architecture."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from nas_ray.evaluators.base import Evaluator
from nas_ray.graph import Architecture
from nas_ray.search.results import make_row

STATE_FILE = "evaluator_state.pt"
# what Tune adds to every result; the results table keeps only what the evaluator reported
TUNE_KEYS = frozenset({
    "timestamp", "training_iteration", "time_this_iter_s", "time_total_s", "pid", "time_since_restore",
    "iterations_since_restore", "done", "trial_id", "date", "hostname", "node_ip", "experiment_tag",
    "checkpoint_dir_name", "should_checkpoint", "config", "node_id",
})


def evaluate_trial(config: dict[str, Any], evaluator: Evaluator) -> None:
    """The Tune function trainable: evaluates ``config["arch"]``, reporting every step (so
    schedulers such as ASHA can stop it early) with a checkpoint when the evaluator can resume."""
    from ray import tune

    # Ray logs a line per registered checkpoint (one per epoch here); the results table says it all
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    arch = Architecture.from_dict(config["arch"])
    evaluator.space.validate(arch)  # a config from outside (a user's searcher or Tuner) is checked before any work
    restore = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # a retry or a resumed run: continue from the last registered step
        import torch

        with checkpoint.as_directory() as d:
            restore = torch.load(os.path.join(d, STATE_FILE), weights_only=True)
    import ray

    node = ray.get_runtime_context().get_node_id()  # which raylet ran it (several share an IP on one machine)
    start = time.perf_counter()
    for step in evaluator.iterate(arch, restore=restore):
        metrics = {**step.metrics, "eval_seconds": time.perf_counter() - start, "node_id": node}
        if step.state is None:
            tune.report(metrics)
            continue
        import torch

        with tempfile.TemporaryDirectory() as d:
            torch.save(step.state, os.path.join(d, STATE_FILE))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


def ensure_ray(address: str | None, *, announce: bool = False) -> None:
    """Join ``address`` (``"auto"`` inside ``ray submit`` / a Ray job, ``ray://host:10001``) or start
    a local Ray whose dashboard listens on 127.0.0.1 only (Ray's token authentication stays on)."""
    import ray

    if ray.is_initialized():
        return
    if address:
        context = ray.init(address=address, logging_level="WARNING")
    else:
        context = ray.init(dashboard_host="127.0.0.1", logging_level="WARNING")
    url = getattr(context, "dashboard_url", None)
    if announce and url:
        print(f"Ray dashboard: http://{url}", file=sys.stderr, flush=True)


def make_trainable(evaluator: Evaluator, cpus_per_trial: float | None = None, gpus_per_trial: float | None = None) -> Any:
    """The Tune trainable of ``evaluator`` with its per-trial resources (overridable)."""
    from ray import tune

    resources = dict(evaluator.resources)
    if cpus_per_trial is not None:
        resources["cpu"] = float(cpus_per_trial)
    if gpus_per_trial is not None:
        resources["gpu"] = float(gpus_per_trial)
    return tune.with_resources(tune.with_parameters(evaluate_trial, evaluator=evaluator), resources)


def trial_row(trial_id: str, config: dict[str, Any], last: dict[str, Any] | None, error: str | None, *, query: int,
              evaluator: Evaluator, searcher: str, seed: int | None, space: str, metric: str) -> dict[str, Any]:
    """The results row of a finished trial (``last``: its last reported result, Tune's keys included)."""
    arch = Architecture.from_dict(config["arch"])
    last = last or {}
    result = {k: v for k, v in last.items() if k not in TUNE_KEYS}
    row = make_row(
        query=query, trial_id=trial_id, searcher=searcher, seed=seed, space=space, arch_hash=evaluator.space.hash(arch),
        arch=arch, metric=metric, metrics=None if error else result, wall_s=float(result.get("eval_seconds", 0.0)), error=error,
    )
    if last.get("node_id") or last.get("node_ip"):
        row["node"] = str(last.get("node_id") or last["node_ip"])  # the Ray node that ran it
        row["node_ip"] = str(last.get("node_ip", ""))
    return row


def short_hash(arch_hash: str) -> str:
    """12 hex digits naming an architecture: its hash's own when it is hex, else a digest of it
    (NAS-Bench-201's hash is the cell string)."""
    if len(arch_hash) >= 12 and all(c in "0123456789abcdef" for c in arch_hash[:12]):
        return arch_hash[:12]
    import hashlib

    return hashlib.blake2b(arch_hash.encode(), digest_size=6).hexdigest()


def trial_name(searcher: str, space: Any) -> Any:
    """Tune trial names ``<searcher>-<short architecture hash>``, as the dashboard and logs show them."""
    def name(trial: Any) -> str:
        try:
            return f"{searcher}-{short_hash(space.hash(Architecture.from_dict(trial.config['arch'])))}"
        except Exception:  # noqa: BLE001 - a name must never fail a trial
            return f"{searcher}-{trial.trial_id}"
    return name


def run_tune(
    search_alg: Any,
    evaluator: Evaluator,
    budget: int,
    *,
    max_concurrent: int,
    on_row: Any,
    storage: Path | None,
    name: str,
    address: str | None,
    cpus_per_trial: float | None,
    gpus_per_trial: float | None,
    max_failures: int,
    scheduler: str | None = None,
    searcher: str,
    seed: int | None,
    space: str,
    metric: str,
) -> None:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no banner; nas-ray prints its own progress
    # one checkpoint kept per trial forces a snapshot per checkpoint, which Tune warns about each time
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    from ray import tune

    ensure_ray(address, announce=True)
    trainable = make_trainable(evaluator, cpus_per_trial, gpus_per_trial)

    max_steps = max(1, int(evaluator.max_steps))
    trial_scheduler = None
    if scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        # rungs at epochs 1, 3, 9, ... of max_steps: a trial continues past a rung only if its metric is
        # in the top third of the trials that reached that rung
        trial_scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_steps, grace_period=1,
                                        reduction_factor=3)

    order: dict[str, int] = {}

    class Rows(tune.Callback):
        """Turns finished trials into results rows, in the order the searcher proposed them, and
        records the search's Ray metrics (``nas_ray.search.metrics``)."""

        metrics = None  # created at the first row (metric objects do not pickle into tuner.pkl)

        def on_trial_start(self, iteration, trials, trial, **info):  # noqa: ANN001, ANN201
            order.setdefault(trial.trial_id, len(order))

        def _row(self, trial, error: str | None) -> None:  # noqa: ANN001
            last = trial.last_result or {}
            row = trial_row(trial.trial_id, trial.config, last, error, query=order.setdefault(trial.trial_id, len(order)),
                            evaluator=evaluator, searcher=searcher, seed=seed, space=space, metric=metric)
            if trial_scheduler is not None:
                row["stopped_early"] = error is None and int(last.get("epoch", last.get("training_iteration", max_steps))) < max_steps
            on_row(row)
            try:
                if self.metrics is None:
                    from nas_ray.search.metrics import SearchMetrics

                    self.metrics = SearchMetrics(searcher, name, evaluator.mode)
                self.metrics.row(row, search_alg)
            except Exception as exc:  # noqa: BLE001 - metrics must never stop a search
                logging.getLogger(__name__).debug("search metrics not recorded: %s", exc)

        def on_trial_complete(self, iteration, trials, trial, **info):  # noqa: ANN001, ANN201
            self._row(trial, None)

        def on_trial_error(self, iteration, trials, trial, **info):  # noqa: ANN001, ANN201
            self._row(trial, f"trial failed: see {trial.local_path or trial.trial_id}/error.txt")

    storage_path = str((storage or Path(tempfile.mkdtemp(prefix="nas-ray-"))).resolve())
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=search_alg,
            num_samples=budget,
            max_concurrent_trials=max_concurrent,
            metric=metric,
            mode=evaluator.mode,
            scheduler=trial_scheduler,
            reuse_actors=True,  # ~50x less per-trial overhead
            trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",  # not the whole matrix
            trial_name_creator=trial_name(searcher, evaluator.space),
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage_path,
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[Rows()],
            verbose=0,
        ),
    )
    tuner.fit()


def searcher_proposals(experiment: Path) -> dict[str, int]:
    """hash -> query index, from the searcher state of Tune's newest snapshot in ``experiment``."""
    import pickle

    states = sorted(Path(experiment).glob("searcher-state-*.pkl"))
    if not states:
        return {}
    with open(states[-1], "rb") as f:
        state = pickle.load(f)  # noqa: S301 - the searcher's own save() wrote it into this run folder
    while isinstance(state, dict) and "proposed" not in state and "searcher" in state:  # a wrapper's state
        state = state["searcher"]
    return dict(state.get("proposed", {})) if isinstance(state, dict) else {}


def resume_tune(experiment: Path, evaluator: Evaluator, *, address: str | None, cpus_per_trial: float | None,
                gpus_per_trial: float | None, searcher: str, seed: int | None, space: str, metric: str) -> list[dict[str, Any]]:
    """Restore the Tune experiment at ``experiment`` (tuner and searcher from its last snapshot),
    finish it, and return one results row per trial it holds, numbered in proposal order."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    from ray import tune

    ensure_ray(address, announce=True)
    tuner = tune.Tuner.restore(str(experiment), trainable=make_trainable(evaluator, cpus_per_trial, gpus_per_trial),
                               resume_unfinished=True)
    grid = tuner.fit()
    proposed = searcher_proposals(experiment)
    rows = []
    extra = len(proposed)
    for result in grid:
        config = result.config or {}
        if "arch" not in config:
            continue
        last = dict(result.metrics or {})
        trial_id = str(last.get("trial_id") or Path(result.path).name.removeprefix("trial_"))
        error = None
        if result.error is not None:
            error = f"trial failed: {type(result.error).__name__}: {str(result.error).splitlines()[0][:200] if str(result.error) else ''}"
        h = evaluator.space.hash(Architecture.from_dict(config["arch"]))
        query = proposed.get(h)
        if query is None:
            query, extra = extra, extra + 1
        rows.append(trial_row(trial_id, config, last, error, query=query, evaluator=evaluator, searcher=searcher, seed=seed,
                              space=space, metric=metric))
    return rows

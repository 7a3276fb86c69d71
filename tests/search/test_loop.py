from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nas_ray import Architecture
from nas_ray.evaluators import Evaluator, TabularEvaluator
from nas_ray.search import best_so_far, reported_of_best, run
from nas_ray.searchers import get_searcher


class Flaky(Evaluator):
    """Scores NB201 cells from the table, but fails on every cell whose first edge is 'none'."""

    def __init__(self, inner: TabularEvaluator) -> None:
        self.inner = inner
        self.space = inner.space

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        if arch.ops[1] == "none":
            raise RuntimeError("simulated training crash")
        return self.inner.evaluate(arch)


@pytest.fixture(scope="module")
def nb201(data_dir: Path) -> TabularEvaluator:
    return TabularEvaluator.nasbench201("cifar10", data_dir=data_dir)


def test_local_run_writes_results_and_plots(nb201: TabularEvaluator, tmp_path: Path) -> None:
    result = run(evaluator=nb201, searcher="evolution", budget=40, seed=1, backend="local", output=tmp_path, progress=False)
    t = result.table
    assert len(t) == 40 and t["hash"].is_unique and list(t["query"]) == list(range(40))
    assert {"query", "trial_id", "searcher", "seed", "space", "hash", "arch", "reward", "wall_s", "c10_test200"} <= set(t.columns)
    for name in ("results.csv", "summary.json", "best_so_far.png", "best_architecture.png"):
        assert (tmp_path / name).stat().st_size > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["best"]["reward"] == pytest.approx(t["reward"].max())
    assert Architecture.from_dict(summary["best"]["arch"]) == result.best_arch
    assert np.all(np.diff(result.best_so_far()) >= 0)


def test_failed_evaluations_are_rows_and_not_successes(nb201: TabularEvaluator) -> None:
    searcher = get_searcher("random", nb201.space, seed=0)
    result = run(evaluator=Flaky(nb201), searcher=searcher, budget=60, backend="local", progress=False)
    t = result.table
    failed = t[t["status"] == "error"]
    assert len(failed) > 0 and failed["error"].str.contains("simulated training crash").all()
    assert np.isnan(failed["reward"]).all()
    assert len(searcher.failed) == len(failed) and len(searcher.history) == 60 - len(failed)


def test_local_concurrency_delays_feedback(nb201: TabularEvaluator) -> None:
    serial = run(evaluator=nb201, searcher="evolution", budget=40, backend="local", progress=False)
    batched = run(evaluator=nb201, searcher="evolution", budget=40, backend="local", max_concurrent=8, progress=False)
    assert len(batched.table) == 40 and batched.table["hash"].is_unique
    assert list(serial.table["hash"][:10]) == list(batched.table["hash"][:10])  # the random start (population 10)
    assert list(serial.table["hash"]) != list(batched.table["hash"])


def test_bad_arguments(nb201: TabularEvaluator) -> None:
    with pytest.raises(ValueError, match=r"budget must be a positive integer"):
        run(evaluator=nb201, budget=0)
    with pytest.raises(ValueError, match=r"unknown backend 'ray'"):
        run(evaluator=nb201, backend="ray")
    with pytest.raises(ValueError, match=r"scores NasBench201\(\) architectures, not NasBench101\(\)"):
        run(evaluator=nb201, space="nasbench101", budget=3)
    with pytest.raises(KeyError, match=r"unknown evaluator 'table'"):
        run(evaluator="table", budget=3)


def test_best_so_far_helpers() -> None:
    assert best_so_far([1.0, np.nan, 3.0, 2.0]).tolist() == [1.0, 1.0, 3.0, 3.0]
    assert np.isnan(best_so_far([np.nan, 2.0])[0])
    assert best_so_far([3.0, 1.0, 2.0], mode="min").tolist() == [3.0, 1.0, 1.0]
    assert reported_of_best([1.0, 3.0, 2.0], [10.0, 30.0, 99.0]).tolist() == [10.0, 30.0, 30.0]


@pytest.mark.slow
def test_tune_backend_matches_local_and_handles_failures(nb201: TabularEvaluator, tmp_path: Path) -> None:
    """One Ray session: the Tune run proposes the same sequence as the local loop (one trial at a
    time, same seed); failing trials become error rows and failures of the searcher."""
    import sys

    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Flaky lives in this test module
    try:
        local = run(evaluator=nb201, searcher="tpe", budget=12, seed=3, backend="local", progress=False)
        tuned = run(evaluator=nb201, searcher="tpe", budget=12, seed=3, backend="tune", output=tmp_path / "a", progress=False)
        assert list(tuned.table["hash"]) == list(local.table["hash"])
        assert tuned.table["reward"].tolist() == local.table["reward"].tolist()
        assert "training_iteration" not in tuned.table.columns and "c10_test200" in tuned.table.columns
        assert (tmp_path / "a" / "search").is_dir() and (tmp_path / "a" / "results.csv").is_file()

        searcher = get_searcher("random", nb201.space, seed=0, metric="reward", mode="max")
        flaky = run(evaluator=Flaky(nb201), searcher=searcher, budget=16, backend="tune", max_concurrent=2,
                    output=tmp_path / "b", progress=False)
        errors = flaky.table[flaky.table["status"] == "error"]
        assert len(flaky.table) == 16 and len(errors) > 0
        expected = sum(Architecture.from_json(a).ops[1] == "none" for a in flaky.table["arch"])
        assert len(errors) == expected
    finally:
        ray.shutdown()

"""Training searches on Ray Tune: a killed trial resumes from its last epoch; ASHA stops trials early."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from nas_ray.evaluators import DigitsEvaluator, Step
from nas_ray.graph import Architecture
from nas_ray.search import run
from nas_ray.searchers import get_searcher

pytestmark = pytest.mark.slow


class DiesOnce(DigitsEvaluator):
    """Digits training that kills its own worker process after reporting epoch ``die_after``, once
    (a marker file remembers); every start and every epoch is logged to ``log``."""

    def __init__(self, log: str, marker: str, die_after: int, **options: Any) -> None:
        super().__init__(**options)
        self.log, self.marker, self.die_after = log, marker, die_after

    def iterate(self, arch: Architecture, *, restore: Mapping[str, Any] | None = None) -> Iterator[Step]:
        with open(self.log, "a") as f:
            f.write(f"start {0 if restore is None else restore['epoch']}\n")
        for step in super().iterate(arch, restore=restore):
            with open(self.log, "a") as f:
                f.write(f"epoch {step.metrics['epoch']}\n")
            yield step
            if step.metrics["epoch"] == self.die_after and not os.path.exists(self.marker):
                Path(self.marker).touch()
                os._exit(1)  # the worker dies as on a lost node: no exception, no cleanup


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    """One local Ray for the module's searches (each search would otherwise start its own)."""
    import ray
    from ray import cloudpickle

    from nas_ray.search.tune_backend import ensure_ray

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # remote workers cannot import test modules
    ensure_ray(None)
    try:
        yield
    finally:
        ray.shutdown()


def test_killed_trial_resumes_from_its_last_epoch(tmp_path: Path, ray_session: None) -> None:
    options = {"epochs": 4, "max_train_samples": 256}
    evaluator = DiesOnce(str(tmp_path / "log"), str(tmp_path / "died"), die_after=2, **options)
    searcher = get_searcher("random", evaluator.space, seed=0, metric=evaluator.metric, mode=evaluator.mode)
    result = run(evaluator=evaluator, searcher=searcher, budget=1, backend="tune", max_failures=1,
                 output=tmp_path / "out", progress=False)
    assert (tmp_path / "died").exists()
    log = (tmp_path / "log").read_text().split("\n")[:-1]
    assert log == ["start 0", "epoch 1", "epoch 2", "start 2", "epoch 3", "epoch 4"]
    row = result.table.iloc[0]
    assert row["status"] == "ok" and row["epoch"] == 4
    # the resumed trial ends exactly where an uninterrupted training ends
    uninterrupted = DigitsEvaluator(**options).evaluate(Architecture.from_json(row["arch"]))
    assert row["val_accuracy"] == uninterrupted["val_accuracy"]
    assert row["train_loss"] == pytest.approx(uninterrupted["train_loss"], rel=1e-6)


def test_asha_stops_trailing_trials(tmp_path: Path, ray_session: None) -> None:
    evaluator = DigitsEvaluator(epochs=3, max_train_samples=256)
    result = run(evaluator=evaluator, searcher="random", budget=9, backend="tune", max_concurrent=2,
                 scheduler="asha", output=tmp_path, progress=False)
    t = result.table
    assert len(t) == 9 and (t["status"] == "ok").all()
    stopped = t[t["stopped_early"].astype(bool)]
    assert 0 < len(stopped) < 9
    assert (stopped["epoch"] < 3).all() and (t.loc[~t["stopped_early"].astype(bool), "epoch"] == 3).all()
    assert result.summary["stopped_early"] == len(stopped) and result.summary["scheduler"] == "asha"
    # the best trial's last Tune checkpoint exports as a model that reproduces its validation accuracy
    import torch

    from nas_ray.export import export_model, load_model

    info = export_model(tmp_path, tmp_path / "best.pt")
    assert info.trained and info.weights_from.name == "evaluator_state.pt" and info.reward == t["reward"].max()
    x, y = evaluator.data().val
    with torch.no_grad():
        assert 100.0 * float((load_model(info.path)(x).argmax(1) == y).sum()) / len(y) == pytest.approx(info.reward)


def test_scheduler_needs_tune() -> None:
    with pytest.raises(ValueError, match="needs backend='tune'"):
        run(evaluator=DigitsEvaluator(epochs=1), budget=1, backend="local", scheduler="asha")
    with pytest.raises(ValueError, match="unknown scheduler 'hyperband'"):
        run(evaluator=DigitsEvaluator(epochs=1), budget=1, backend="tune", scheduler="hyperband")

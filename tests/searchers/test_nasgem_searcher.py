"""The nasgem searcher beyond the shared suite: bootstrap choice, Pareto mode, options."""

from __future__ import annotations

import numpy as np
import pytest

from nas_ray import Architecture, get_space
from nas_ray.errors import UnknownName
from nas_ray.evaluators.base import Evaluator
from nas_ray.objectives import Objective, hypervolume
from nas_ray.searchers import get_searcher

# the suite's tiny encoder (trained once per test session and cached)
FAST = {"encoder_options": {"graphs": 200, "pairs": 400, "iterations": 40, "batch_size": 64},
        "num_initial": 5, "candidates": 300, "fit_steps": 30, "finetune_steps": 5, "threads": 1}


def make(**options):  # noqa: ANN003, ANN201
    return get_searcher("nasgem", "nasbench201", **{**FAST, **options})


class ConvsAndLatency(Evaluator):
    """A deterministic two-objective stand-in for a table: accuracy grows with convolutions, and so
    does the latency (a real trade-off)."""

    metric, mode, metric_scale = "acc", "max", 100.0

    def __init__(self) -> None:
        self.space = get_space("nasbench201")

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        c3 = sum(op == "nor_conv_3x3" for op in arch.ops)
        c1 = sum(op == "nor_conv_1x1" for op in arch.ops)
        return {"acc": 60.0 + 5 * c3 + 3 * c1 + arch.num_edges * 0.1, "lat": 1.0 + 2 * c3 + c1}


def test_suggestions_are_the_best_predicted_candidates() -> None:
    s = make(seed=0)
    ev = ConvsAndLatency()
    for i in range(12):
        config = s.suggest(f"t{i}")
        s.on_trial_complete(f"t{i}", {"reward": ev.evaluate(Architecture.from_dict(config["arch"]))["acc"]})
    config = s.suggest("next")
    arch = Architecture.from_dict(config["arch"])
    chosen = s.pool_hash.index(s.space.hash(arch))
    unproposed = [i for i, h in enumerate(s.pool_hash) if h not in s.proposed or i == chosen]
    assert s.pool_pred[chosen, 0] == pytest.approx(s.pool_pred[unproposed, 0].max())
    assert s.fits >= 1 and len(s.obs_y) == 12


def test_waits_for_initial_results_under_concurrency() -> None:
    s = make(seed=1)
    configs = [s.suggest(f"t{i}") for i in range(5)]
    assert all(isinstance(c, dict) for c in configs)
    assert s.suggest("t5") is None  # the initial design is out: wait for results
    s.on_trial_complete("t0", {"reward": 1.0})
    s.on_trial_complete("t1", {"reward": 2.0})
    assert isinstance(s.suggest("t5"), dict)


def test_pareto_mode_reads_accuracy_and_cost() -> None:
    objective = Objective(metric="acc", cost="lat", pareto=True, scale=100.0)
    s = make(seed=0, objective=objective, metric="score")
    assert s.pareto and s.predictor is None
    ev = ConvsAndLatency()
    points = []
    for i in range(25):
        config = s.suggest(f"t{i}")
        m = ev.evaluate(Architecture.from_dict(config["arch"]))
        points.append((m["acc"], m["lat"]))
        s.on_trial_complete(f"t{i}", {**m, "score": objective.score(m)})
    assert s.predictor is not None and s.pool_pred.shape[1] == 2  # accuracy and log-cost heads
    np.testing.assert_allclose(np.asarray(s.obs_y)[:, 1], np.log([p[1] for p in points]))
    acc, lat = np.array(points).T
    assert hypervolume(acc, lat, 50.0, 40.0) > 0


def test_pareto_mode_names_a_missing_cost() -> None:
    s = make(seed=0, objective={"metric": "acc", "cost": "lat", "pareto": True}, metric="score")
    config = s.suggest("t0")
    assert config is not None
    with pytest.raises(KeyError, match="the result has no 'lat'"):
        s.on_trial_complete("t0", {"acc": 90.0, "score": 0.9})


@pytest.mark.parametrize(("options", "message"), [({"candidates": 0}, "candidates must be >= 1"),
                                                  ({"refresh": 0.0}, "refresh must be in"),
                                                  ({"encoder_options": {"pair": 3}}, "unknown NASGEM encoder option"),
                                                  ({"objective": 3}, "objective must be an Objective")])
def test_bad_options(options: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        make(**options)


def test_missing_encoder_file(tmp_path) -> None:  # noqa: ANN001
    from nas_ray.errors import CheckpointError

    with pytest.raises(CheckpointError, match="is not a file"):
        make(encoder=str(tmp_path / "none.pt"))


def test_search_with_a_cost_writes_the_front(tmp_path) -> None:  # noqa: ANN001
    """run(cost=..., pareto=True): every searcher sees the score; nasgem gets both objectives; the
    results hold the non-dominated set and draw it."""
    from nas_ray.search import run

    for name, options in (("nasgem", FAST), ("random", {})):
        out = tmp_path / name
        result = run(evaluator=ConvsAndLatency(), searcher=name, searcher_options=options, budget=15, seed=0,
                     cost="lat", lam=0.02, pareto=True, output=out, progress=False)
        assert result.metric == "score"
        ok = result.table
        expected = ok["acc"] / 100 - 0.02 * np.log(ok["lat"])
        np.testing.assert_allclose(ok["reward"], expected)
        front = result.pareto_front()
        assert 0 < len(front) <= len(ok)
        for _, row in front.iterrows():  # nothing evaluated dominates a front row
            better = (ok["acc"] >= row["acc"]) & (ok["lat"] <= row["lat"]) & ((ok["acc"] > row["acc"]) | (ok["lat"] < row["lat"]))
            assert not better.any()
        assert [p["query"] for p in result.summary["pareto_front"]] == front["query"].tolist()
        assert (out / "pareto.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="needs a cost metric"):
        run(evaluator=ConvsAndLatency(), searcher="random", budget=3, pareto=True, progress=False)
    with pytest.raises(UnknownName, match="lat_ms"):  # a misnamed cost stops the search, not each trial
        run(evaluator=ConvsAndLatency(), searcher="random", budget=3, cost="lat_ms", progress=False)


def test_building_trains_nothing_and_auto_train_can_be_off(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("NAS_RAY_CACHE", str(tmp_path / "cache"))
    searcher = make(auto_train=False, num_initial=2)
    assert searcher.encoder is None and not (tmp_path / "cache").exists()
    for q in range(2):  # the random initial design needs no encoder
        searcher.suggest(str(q))
    with pytest.raises(ValueError, match="auto_train is off; train one with `nas-ray train-encoder --space nasbench201`"):
        searcher.on_trial_complete("0", {"reward": 1.0})

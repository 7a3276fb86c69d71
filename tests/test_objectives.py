"""The shared objective (NASGEM score), its evaluator wrapper, and the 2-D Pareto utilities."""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest

import nas_ray
from nas_ray.errors import NasRayError, UnknownName
from nas_ray.evaluators.base import Evaluator, Step
from nas_ray.objectives import (
    Objective,
    ObjectiveEvaluator,
    hypervolume,
    hypervolume_improvement,
    pareto_front,
    pareto_mask,
    reference_point,
)

# ---------------------------------------------------------------------------------------- Objective


def test_score_formula_on_known_numbers() -> None:
    obj = Objective(metric="acc", cost="lat", scale=100)
    assert obj.score({"acc": 94.0, "lat": math.e**2}) == pytest.approx(0.94 - 0.04, abs=1e-12)
    assert Objective(metric="acc", cost="lat", lam=0.5).score({"acc": 0.9, "lat": math.e}) == pytest.approx(0.4)
    # no cost: the plain metric, not even divided by scale
    assert Objective(metric="acc", scale=100).score({"acc": 94.0, "lat": 5.0}) == 94.0


def test_vectorised_scores_equal_scalar(rng: np.random.Generator) -> None:
    obj = Objective(metric="acc", cost="params", scale=100, lam=0.03)
    acc, cost = rng.uniform(50, 95, 30), rng.uniform(0.1, 1e6, 30)
    got = obj.scores(acc, cost)
    want = [obj.score({"acc": a, "params": c}) for a, c in zip(acc, cost)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # NaN (a failed evaluation) gives NaN, without error
    acc[3], cost[5] = np.nan, np.nan
    got = obj.scores(acc, cost)
    assert np.isnan(got[[3, 5]]).all() and np.isfinite(np.delete(got, [3, 5])).all()
    np.testing.assert_array_equal(Objective(metric="acc").scores(acc), acc)
    with pytest.raises(ValueError, match="-1"):
        obj.scores([1.0, 2.0], [3.0, -1.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lam": -0.1}, "lam"),
        ({"lam": float("nan")}, "lam"),
        ({"scale": 0.0}, "scale"),
        ({"pareto": True}, "pareto"),
    ],
)
def test_objective_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        Objective(metric="acc", **kwargs)
    assert "\n" not in str(info.value)


def test_bad_cost_and_missing_keys() -> None:
    obj = Objective(metric="acc", cost="lat", scale=100)
    for bad in (0.0, -2.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="lat"):
            obj.score({"acc": 90.0, "lat": bad})
    with pytest.raises(UnknownName) as info:
        obj.score({"acc": 90.0, "latency": 3.0})
    text = str(info.value)
    assert "'lat'" in text and "latency" in text and "acc" in text
    assert isinstance(info.value, NasRayError)
    with pytest.raises(UnknownName, match="'acc'"):
        obj.score({"top1": 90.0, "lat": 3.0})


def test_label_and_describe() -> None:
    obj = Objective(metric="reward", cost="lat_pixel3_ms", scale=100)
    assert obj.label() == "reward/100 − 0.02·ln(lat_pixel3_ms)"
    assert Objective(metric="acc", cost="params").label() == "acc − 0.02·ln(params)"
    assert Objective(metric="acc").label() == "acc"
    d = obj.describe()
    assert d["metric"] == "reward" and d["cost"] == "lat_pixel3_ms" and d["lam"] == 0.02 and d["scale"] == 100
    assert d["pareto"] is False and d["label"] == obj.label()


# ------------------------------------------------------------------------------ ObjectiveEvaluator


class FakeEvaluator(Evaluator):
    """Accuracy and latency from the number of edges; optionally reports several steps."""

    metric, mode = "acc", "max"

    def __init__(self, steps: int = 1, cost_from: int = 0, mode: str = "max") -> None:
        self.space = nas_ray.get_space("nasbench201")
        self.steps = steps
        self.cost_from = cost_from  # the first step index that reports the latency
        self.mode = mode
        self.calls = 0

    @property
    def max_steps(self) -> int:
        return self.steps

    @property
    def resources(self) -> dict[str, float]:
        return {"cpu": 2.0, "gpu": 0.0}

    def evaluate(self, arch: nas_ray.Architecture) -> dict[str, float]:
        return list(self.iterate(arch))[-1].metrics

    def iterate(self, arch, *, restore=None):  # noqa: ANN001, ANN201
        self.calls += 1
        for k in range(self.steps):
            m = {"acc": 50.0 + 10 * k + arch.num_edges, "epoch": float(k)}
            if k >= self.cost_from:
                m["lat"] = float(arch.num_edges + 1)
            yield Step(m, {"epoch": k})

    def helper(self) -> str:
        return "inner-helper"


def test_objective_evaluator_adds_score_and_cost() -> None:
    inner = FakeEvaluator()
    obj = Objective(metric="acc", cost="lat", scale=100)
    ev = ObjectiveEvaluator(inner, obj)
    assert ev.inner is inner and ev.objective is obj
    assert (ev.metric, ev.mode, ev.metric_scale) == ("score", "max", 1.0)
    assert ev.space is inner.space and ev.max_steps == 1 and ev.resources == {"cpu": 2.0, "gpu": 0.0}
    arch = ev.space.sample(0)
    out = ev.evaluate(arch)
    assert out["cost"] == arch.num_edges + 1
    assert out["score"] == pytest.approx((50.0 + arch.num_edges) / 100 - 0.02 * math.log(arch.num_edges + 1))
    assert out["acc"] == 50.0 + arch.num_edges and ev(arch) == out
    d = ev.describe()
    assert d["objective"] == obj.describe() and d["metric"] == "score" and d["evaluator"] == "FakeEvaluator"
    assert ev.helper() == "inner-helper"  # unknown attributes delegate
    with pytest.raises(AttributeError):
        ev.no_such_attribute  # noqa: B018


def test_objective_evaluator_steps() -> None:
    ev = ObjectiveEvaluator(FakeEvaluator(steps=3, cost_from=1), Objective(metric="acc", cost="lat", scale=100))
    arch = ev.space.sample(1)
    steps = list(ev.iterate(arch))
    assert len(steps) == 3 and ev.max_steps == 3
    assert "score" not in steps[0].metrics and "cost" not in steps[0].metrics  # lacks the cost: unchanged
    assert all("score" in s.metrics and s.metrics["cost"] == s.metrics["lat"] for s in steps[1:])
    assert [s.state for s in steps] == [{"epoch": 0}, {"epoch": 1}, {"epoch": 2}]
    # a final step without the cost is an error naming the key
    bad = ObjectiveEvaluator(FakeEvaluator(steps=2, cost_from=5), Objective(metric="acc", cost="lat"))
    with pytest.raises(UnknownName, match="'lat'"):
        list(bad.iterate(arch))
    with pytest.raises(UnknownName, match="'lat'"):
        bad.evaluate(arch)


def test_objective_evaluator_pass_through_and_errors() -> None:
    inner = FakeEvaluator(mode="min")
    ev = ObjectiveEvaluator(inner, Objective(metric="acc"))
    assert (ev.metric, ev.mode) == ("acc", "min")
    inner.metric_scale = 100.0
    assert ObjectiveEvaluator(inner, Objective(metric="acc")).metric_scale == 100.0  # the inner's, passed through
    arch = ev.space.sample(2)
    assert ev.evaluate(arch) == inner.evaluate(arch)
    assert [s.metrics for s in ev.iterate(arch)] == [s.metrics for s in inner.iterate(arch)]
    assert "score" not in ev.evaluate(arch)
    assert ev.describe()["objective"]["cost"] is None
    with pytest.raises(ValueError, match="min"):
        ObjectiveEvaluator(inner, Objective(metric="acc", cost="lat"))


def test_objective_evaluator_pickles_and_copies() -> None:
    ev = ObjectiveEvaluator(FakeEvaluator(), Objective(metric="acc", cost="lat", scale=100))
    arch = ev.space.sample(3)
    for other in (pickle.loads(pickle.dumps(ev)), copy.deepcopy(ev), copy.copy(ev)):
        assert type(other) is ObjectiveEvaluator and other.objective == ev.objective
        assert other.evaluate(arch) == ev.evaluate(arch)
    blank = ObjectiveEvaluator.__new__(ObjectiveEvaluator)  # no ``inner`` yet: no recursion
    with pytest.raises(AttributeError):
        blank.anything  # noqa: B018


# ------------------------------------------------------------------------------------------ Pareto


def test_pareto_mask_hand_example() -> None:
    acc = np.array([0.90, 0.80, 0.95, 0.85, 0.90, np.nan, 0.99, 0.70])
    cost = np.array([10.0, 5.0, 20.0, 12.0, 10.0, 1.0, np.inf, 5.0])
    # 0: front; 1: front (cheapest); 2: front (best); 3: dominated by 0; 4: duplicate of 0 (dropped);
    # 5, 6: non-finite; 7: dominated by 1 (same cost, lower accuracy)
    np.testing.assert_array_equal(pareto_mask(acc, cost), [True, True, True, False, False, False, False, False])
    idx, a, c = pareto_front(acc, cost)
    np.testing.assert_array_equal(idx, [1, 0, 2])
    np.testing.assert_array_equal(c, [5.0, 10.0, 20.0])
    np.testing.assert_array_equal(a, [0.80, 0.90, 0.95])
    assert pareto_mask([], []).shape == (0,) and pareto_mask([], []).dtype == bool
    assert pareto_front([], [])[0].size == 0
    assert not pareto_mask([np.nan], [1.0]).any()


def test_hypervolume_hand_example() -> None:
    acc, cost = [0.8, 0.9, 0.95, 0.85, 0.5], [5.0, 10.0, 20.0, 12.0, 30.0]
    # reference (0.6, 25): steps 5..10 at 0.2, 10..20 at 0.3, 20..25 at 0.35; the last point is outside
    assert hypervolume(acc, cost, 0.6, 25.0) == pytest.approx(5 * 0.2 + 10 * 0.3 + 5 * 0.35)
    assert hypervolume([], [], 0.0, 1.0) == 0.0
    assert hypervolume([0.5, np.nan], [0.5, 0.1], 0.5, 1.0) == 0.0  # on the reference / non-finite: nothing
    assert hypervolume([0.5], [0.5], 0.0, 1.0) == pytest.approx(0.25)


def test_hypervolume_matches_botorch(rng: np.random.Generator) -> None:
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    for k in range(20):
        n = int(rng.integers(1, 60))
        acc, cost = rng.uniform(0.3, 1.0, n), rng.lognormal(0.0, 1.0, n)
        if k % 4 == 0:  # ties
            acc, cost = np.round(acc, 1), np.round(cost, 0)
        ref_acc, ref_cost = 0.4, float(np.quantile(cost, 0.8))
        inside = (acc > ref_acc) & (cost < ref_cost)
        y = torch.tensor(np.stack([acc[inside], -cost[inside]], axis=1))
        want = Hypervolume(torch.tensor([ref_acc, -ref_cost], dtype=torch.float64)).compute(y) if inside.any() else 0.0
        assert hypervolume(acc, cost, ref_acc, ref_cost) == pytest.approx(want, rel=1e-12, abs=1e-12)
        # dominated points do not change it
        m = pareto_mask(acc, cost)
        assert hypervolume(acc[m], cost[m], ref_acc, ref_cost) == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_hypervolume_improvement_matches_brute_force(rng: np.random.Generator) -> None:
    ref_acc, ref_cost = 0.2, 0.9
    for k in range(30):
        n = int(rng.integers(0, 20))
        fa, fc = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
        ca, cc = rng.uniform(-0.1, 1.1, 40), rng.uniform(-0.1, 1.1, 40)
        if k % 3 == 0:  # ties between the front and candidates
            fa, fc, ca, cc = (np.round(x, 1) for x in (fa, fc, ca, cc))
        base = hypervolume(fa, fc, ref_acc, ref_cost)
        brute = np.array([hypervolume(np.append(fa, a), np.append(fc, c), ref_acc, ref_cost) - base for a, c in zip(ca, cc)])
        got = hypervolume_improvement(fa, fc, ca, cc, ref_acc, ref_cost)
        np.testing.assert_allclose(got, brute, rtol=0, atol=1e-12)
    # explicit zeros: dominated by the front, worse than the reference, non-finite; and a known gain
    fa, fc = np.array([0.5, 0.8]), np.array([0.2, 0.6])
    got = hypervolume_improvement(fa, fc, [0.45, 0.8, 0.1, 0.9, np.nan, 0.9, 0.6], [0.3, 0.7, 0.1, 0.95, 0.1, 0.6, 0.1],
                                  ref_acc, ref_cost)
    np.testing.assert_allclose(got[:6], [0, 0, 0, 0, 0, 0.1 * 0.3], atol=1e-12)
    assert got[6] == pytest.approx(0.1 * 0.4 + 0.4 * 0.1)  # cost 0.1..0.2: 0.6 - ref 0.2; 0.2..0.6: 0.6 - 0.5
    assert hypervolume_improvement(fa, fc, [], [], ref_acc, ref_cost).shape == (0,)
    np.testing.assert_allclose(hypervolume_improvement([], [], [0.7], [0.4], ref_acc, ref_cost), [0.5 * 0.5])


def test_reference_point() -> None:
    ra, rc = reference_point([0.5, 0.9, np.nan], [10.0, 30.0, 1.0], margin=0.1)
    assert (ra, rc) == (pytest.approx(0.46), pytest.approx(32.0))
    assert hypervolume([0.5, 0.9], [10.0, 30.0], ra, rc) > 0
    assert reference_point([0.5], [2.0]) == (pytest.approx(0.45), pytest.approx(2.2))
    with pytest.raises(ValueError, match="margin"):
        reference_point([0.5], [1.0], margin=-1)
    with pytest.raises(ValueError, match="finite"):
        reference_point([np.nan], [1.0])


# -------------------------------------------------------------------------------------------- plot


def test_plot_pareto_writes_png(tmp_path, rng: np.random.Generator) -> None:  # noqa: ANN001
    from nas_ray.plots import plot_pareto

    points = {
        "random": (rng.uniform(0.5, 0.95, 50), rng.lognormal(0, 1, 50)),
        "evolution": (np.append(rng.uniform(0.6, 0.95, 40), np.nan), np.append(rng.lognormal(0, 1, 40), 1.0)),
    }
    reference = {"NB201 table": (rng.uniform(0.1, 0.95, 500), rng.lognormal(0, 1, 500))}
    out = plot_pareto(points, tmp_path / "front.png", xlabel="latency (ms)", reference=reference, log_x=True)
    assert out == tmp_path / "front.png" and out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

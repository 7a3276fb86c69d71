"""GraphPNAS's learning pieces: buffer, schedules, explorer, objectives, the fit, the searcher loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_ray import get_space
from nas_ray.construction import Builder
from nas_ray.errors import UnknownName
from nas_ray.models.graphpnas import GraphPNASGenerator, TrajectoryBatch
from nas_ray.models.learning import (
    PRESETS,
    EpsilonSchedule,
    Explorer,
    GraphPNASConfig,
    KeepSchedule,
    ReplayBuffer,
    advantages,
    fit_generator,
    preset_for,
    reinforce_loss,
)
from nas_ray.searchers import get_searcher


def test_epsilon_schedules() -> None:
    assert [EpsilonSchedule("warmup", 1.0, 30)(t) for t in (0, 29, 30)] == [1.0, 1.0, 0.0]
    sub = EpsilonSchedule("subtractive", 0.6, rate=0.2, every=10)
    assert [round(sub(t), 6) for t in (0, 9, 10, 20, 30, 45)] == [0.6, 0.6, 0.4, 0.2, 0.0, 0.0]
    mul = EpsilonSchedule("multiplicative", 0.6, rate=0.2, every=10)
    assert mul(10) == pytest.approx(0.12) and mul(25) == pytest.approx(0.6 * 0.04)
    lin = EpsilonSchedule("linear", 1.0, 100)
    assert (lin(0), lin(50), lin(100), lin(150)) == (1.0, 0.5, 0.0, 0.0)
    with pytest.raises(ValueError, match="kind must be warmup"):
        EpsilonSchedule("cosine")


def test_keep_schedules() -> None:
    assert KeepSchedule(top=15)(0, 7) == 7 and KeepSchedule(top=15)(3, 40) == 15
    frac = KeepSchedule(top=None, start=0.3, end=0.1, steps=40)
    assert frac(0, 100) == 30 and frac(39, 100) == 10 and frac(80, 100) == 10 and frac(0, 2) == 1


def test_buffer_rejects_duplicates_and_ranks() -> None:
    space = get_space("nasbench201")
    buf = ReplayBuffer()
    archs = [space.sample(i) for i in range(5)]
    for i, (a, r) in enumerate(zip(archs, [3.0, 1.0, 5.0, 2.0, 4.0])):
        assert buf.add(a, space.hash(a), r, step=i)
    assert not buf.add(archs[0], space.hash(archs[0]), 99.0, step=9)
    assert len(buf) == 5 and buf.entries[space.hash(archs[0])].reward == 3.0
    top = buf.top(3)
    assert [e.reward for e in top] == [5.0, 4.0, 3.0]
    assert advantages(buf, top, "cdf").tolist() == [1.0, 0.8, 0.6]
    std = advantages(buf, top, "standardized")
    assert std == pytest.approx((np.array([5.0, 4.0, 3.0]) - 3.0) / np.std([1, 2, 3, 4, 5]))
    assert advantages(buf, top, "ewma", baseline=4.5).tolist() == [0.5, -0.5, -1.5]
    with pytest.raises(ValueError, match="not finite"):
        buf.add(archs[1], "new", float("nan"), step=0)


def test_reinforce_loss_pushes_the_right_way() -> None:
    nll = torch.tensor([0.5, 0.5, 0.5], requires_grad=True)
    adv = torch.tensor([1.0, -1.0, 0.0])
    reinforce_loss(nll, adv, "standardized", beta=0.05).backward()
    # A > 0: lower the NLL (raise P~); A < 0: raise it, weighted by beta; A = 0: no push
    assert nll.grad[0] > 0 and nll.grad[1] < 0 and nll.grad[2] == 0
    assert abs(nll.grad[1]) < abs(nll.grad[0])
    nll.grad = None
    reinforce_loss(nll, torch.tensor([1.0, 0.5, 0.2]), "cdf").backward()
    assert torch.allclose(nll.grad, torch.tensor([1.0, 0.5, 0.2]) / 3)
    with pytest.raises(ValueError, match="objective must be one of"):
        reinforce_loss(nll, adv, "ppo")


def test_explorer_priors_and_ranges() -> None:
    rng = np.random.default_rng(0)
    ws = Explorer(get_space("randwire", num_nodes=8), "watts_strogatz", {"k": [2, 6], "p": [0.2, 0.8]})
    assert {ws._params(rng)["k"] for _ in range(50)} == {2, 4, 6}
    nb201 = Explorer(get_space("nasbench201"), "no_none")
    assert all("none" not in nb201.sample(rng).ops for _ in range(20))
    nb101 = Explorer(get_space("nasbench101"), "erdos_renyi", {"p": 0.25, "min_nodes": 3})
    assert {nb101.sample(rng).num_nodes for _ in range(200)} == {3, 4, 5, 6, 7}
    with pytest.raises(UnknownName, match="space nasbench201 has no explorer prior 'watts_strogatz'; choose from uniform, no_none"):
        Explorer(get_space("nasbench201"), "watts_strogatz")


def test_presets_and_options() -> None:
    assert preset_for(get_space("nasbench201")) is PRESETS["nb201-cifar10"]
    assert preset_for(get_space("nasbench101")).samples_per_step == 10
    c = PRESETS["nb201-cifar100"]
    assert (c.epochs, c.keep.top, c.epsilon.steps, c.objective) == (60, 10, 15, "cdf")
    r = PRESETS["randwire"]
    assert (r.generator.hidden, r.objective, r.beta, r.lr, r.batch_size) == (128, "standardized", 0.05, 1e-4, 16)
    changed = GraphPNASConfig().with_options(hidden=32, epsilon_steps=5, keep_top=3, epochs=2)
    assert (changed.generator.hidden, changed.epsilon.steps, changed.keep.top, changed.epochs) == (32, 5, 3, 2)
    with pytest.raises(TypeError, match="GraphPNAS has no option 'hiden'"):
        GraphPNASConfig().with_options(hiden=3)
    with pytest.raises(UnknownName, match="unknown GraphPNAS preset 'nb202'"):
        preset_for(get_space("nasbench201"), "nb202")
    with pytest.raises(ValueError, match="objective must be one of"):
        GraphPNASConfig(objective="acc")


def test_fit_learns_the_training_set() -> None:
    """Fitting on 10 cells made only of 3x3 convolutions and skips raises their likelihood, and the
    generator's samples then use those ops far more often than uniform sampling does."""
    space = get_space("nasbench201")
    rng = np.random.default_rng(0)
    good_ops = ("nor_conv_3x3", "skip_connect")
    train = [space.from_decisions({n: good_ops[int(b)] for n, b in zip((d for d, _ in space.decisions()), rng.integers(2, size=6))})
             for _ in range(10)]
    builder = Builder(space)
    gen = GraphPNASGenerator.for_space(space, seed=0)
    batch = TrajectoryBatch.from_architectures(space, train)
    with torch.no_grad():
        before = gen.log_likelihood(batch)["log_prob"].mean()
    cfg = GraphPNASConfig(epochs=15)
    stats = fit_generator(gen, [builder.trajectory(a) for a in train], np.ones(10), cfg, rng)
    with torch.no_grad():
        after = gen.log_likelihood(batch)["log_prob"].mean()
    assert stats["gradient_steps"] == 15 * 5 and after > before + 2.0
    samples = gen.sample(space, 300, generator=torch.Generator().manual_seed(0))
    share = np.mean([op in good_ops for a in samples for op in a.ops[1:7]])
    assert share > 0.8  # uniform sampling: 0.4


def test_searcher_uses_the_generator_after_the_warmup(data_dir) -> None:  # noqa: ANN001
    from nas_ray.evaluators.tabular import TabularEvaluator
    from nas_ray.search.loop import run_local

    ev = TabularEvaluator.nasbench201("cifar10", data_dir=data_dir)
    s = get_searcher("graphpnas", ev.space, seed=0, epochs=3, epsilon_steps=10)
    run_local(s, ev, 20, on_row=lambda row: None, searcher="graphpnas", seed=0, space="nasbench201", metric="reward")
    sources = [r.get("source") for r in s.log if "source" in r]
    assert sources[:10] == ["explorer"] * 10 and set(sources[10:]) == {"generator"}
    fits = [r for r in s.log if "gradient_steps" in r]
    assert len(fits) == 10 and all(f["gradient_steps"] == 3 * 8 or f["train_size"] < 15 for f in fits)
    assert len(s.buffer) == 20 and s.generator_state() is not None
    # explorer steps drew cells without 'none' (the official NB201 explorer)
    assert all("none" not in a.ops for a, _, _ in s.history[:10])

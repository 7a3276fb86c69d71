"""GraphPNAS under RLlib: the action distribution, the learner's loss against the shared maths, the
algorithm's search loop, checkpoint/restore, Tune, and evaluation on env runners."""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np
import pytest
import torch

from nas_ray.construction import Builder
from nas_ray.evaluators.base import Evaluator
from nas_ray.models.graphpnas import GraphPNASGenerator, TrajectoryBatch
from nas_ray.models.learning import ReplayBuffer, advantages, fit_generator, reinforce_loss
from nas_ray.spaces import get_space

ray = pytest.importorskip("ray")
warnings.filterwarnings("ignore", category=DeprecationWarning)

from nas_ray.searchers.reinforce import (  # noqa: E402
    REINFORCE,
    EvaluationGate,
    GraphPNASActionDistribution,
    REINFORCEConfig,
    SearchDesignEnv,
    buffer_episode,
    pack_distribution,
)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def _dist_cls(space, module_generator):
    env = SearchDesignEnv({"space": space})
    return GraphPNASActionDistribution.get_partial_dist_cls(
        space=env.action_space, num_types=len(space.node_types), max_nodes=space.max_nodes,
        mixtures=module_generator.config.mixtures,
    )


# ---------------------------------------------------------------------------------------------- distribution
@pytest.mark.parametrize("name,options", [("nasbench101", {}), ("randwire", {"num_nodes": 5}), ("nasbench201", {})])
def test_distribution_logp_is_the_generators_likelihood(name, options):
    space = get_space(name, **options)
    gen = GraphPNASGenerator.for_space(space, seed=1)
    archs = gen.sample(space, 6, generator=torch.Generator().manual_seed(0))
    batch = TrajectoryBatch.from_architectures(space, archs)
    inputs = pack_distribution(gen.distribution(batch.obs))
    cls = _dist_cls(space, gen)
    assert inputs.shape[1] == cls.required_input_dim(space=SearchDesignEnv({"space": space}).action_space)
    dist = cls.from_logits(inputs)
    lp = dist.logp({"op": batch.op.int(), "edges": batch.edges.int()})  # RLlib hands actions over as int32
    per_graph = torch.zeros(batch.num_graphs).index_add(0, batch.graph, lp)
    assert torch.allclose(per_graph, gen.log_likelihood(batch)["log_prob"], atol=1e-5)
    assert torch.isfinite(dist.entropy()).all()
    with pytest.raises(NotImplementedError):
        dist.kl(dist)
    with pytest.raises(NotImplementedError):
        dist.rsample()


def test_distribution_samples_are_legal_and_greedy_is_deterministic():
    space = get_space("nasbench101")
    gen = GraphPNASGenerator.for_space(space, seed=0)
    env = SearchDesignEnv({"space": space})
    cls = _dist_cls(space, gen)
    torch.manual_seed(0)
    for _ in range(12):
        obs, _ = env.reset()
        done = False
        while not done:
            t = {k: torch.as_tensor(v)[None] for k, v in obs.items()}
            dist = cls.from_logits(pack_distribution(gen.distribution(t)))
            action = dist.sample()
            assert torch.isfinite(dist.logp(action)).all()
            obs, _, done, _, info = env.step({"op": int(action["op"][0]), "edges": action["edges"][0].numpy()})
        assert info["valid"], info  # every sampled episode builds a valid NB101 cell
    greedy = dist.to_deterministic()
    a, b = greedy.sample(), greedy.sample()
    assert torch.equal(a["op"], b["op"]) and torch.equal(a["edges"], b["edges"])


def test_distribution_rejects_wrong_input_width():
    space = get_space("nasbench201")
    gen = GraphPNASGenerator.for_space(space, seed=0)
    with pytest.raises(ValueError, match="action_dist_inputs has 3 columns"):
        _dist_cls(space, gen).from_logits(torch.zeros(2, 3))


# ---------------------------------------------------------------------------------------------- learner
def _buffer(space, n, seed=0):
    rng = np.random.default_rng(seed)
    buf = ReplayBuffer()
    while len(buf) < n:
        a = space.canonicalize(space.sample(rng))
        buf.add(a, space.hash(a), float(rng.normal()), 0)
    return buf


@pytest.mark.parametrize("objective", ["cdf", "standardized"])
def test_learner_update_equals_the_shared_fit(objective):
    """One learner update (RLlib: connector, episode minibatch, loss, clip, Adam) moves the weights
    exactly as ``fit_generator`` does from the same start: the maths is shared, not copied."""
    config = (REINFORCEConfig().search(space="nasbench101")
              .training(epochs=1, batch_size=4, objective=objective, lr=1e-2).debugging(seed=0))
    config.validate()
    space = config.space()
    learner = config.build_learner(env=SearchDesignEnv(config.env_config))
    module = learner.module["default_policy"]
    module.reset_parameters(7)
    reference = GraphPNASGenerator.for_space(space, config.graphpnas_config().generator)
    reference.load_state_dict(module.generator.state_dict())
    initial = [p.detach().clone() for p in module.generator.parameters()]

    buf = _buffer(space, 4)
    entries = buf.top(4)
    adv = advantages(buf, entries, objective)
    builder = Builder(space)
    episodes = [buffer_episode(builder, e, i, float(a)) for i, (e, a) in enumerate(zip(entries, adv))]
    results = learner.update(episodes=episodes, num_epochs=1, episodes_per_minibatch=4, shuffle_seed=0)
    stats = fit_generator(reference, [builder.trajectory(e.arch) for e in entries], adv, config.graphpnas_config(),
                          np.random.default_rng(0))
    assert stats["gradient_steps"] == 1
    loss = results["default_policy"]["total_loss"].peek()
    assert loss == pytest.approx(stats["loss"], rel=1e-5)
    changed = False
    for (name, p), q, p0 in zip(module.generator.named_parameters(), reference.parameters(), initial):
        assert torch.allclose(p, q, atol=1e-6), name
        changed |= not torch.equal(p, p0)
    assert changed  # the update did move the weights


def test_learner_minibatches_hold_whole_episodes():
    config = REINFORCEConfig().search(space="nasbench101").training(epochs=2, batch_size=2).debugging(seed=0)
    config.validate()
    space = config.space()
    learner = config.build_learner(env=SearchDesignEnv(config.env_config))
    seen: list[list[int]] = []
    original = learner.compute_loss_for_module

    def spy(**kw):
        idx = kw["batch"]["episode_index"]
        seen.append(sorted(set(idx.tolist())))
        # every step of each episode present: NB101 episode length = nodes - 1
        for e in set(idx.tolist()):
            assert int((idx == e).sum()) == lengths[e]
        return original(**kw)

    learner.compute_loss_for_module = spy
    buf = _buffer(space, 5, seed=1)
    entries = buf.top(5)
    builder = Builder(space)
    lengths = {i: e.arch.num_nodes - 1 for i, e in enumerate(entries)}
    episodes = [buffer_episode(builder, e, i, 0.5) for i, e in enumerate(entries)]
    learner.update(episodes=episodes, num_epochs=2, episodes_per_minibatch=2, shuffle_seed=0)
    assert len(seen) == 2 * 3  # ceil(5 / 2) minibatches per epoch
    for epoch in range(2):
        assert sorted(sum(seen[3 * epoch : 3 * epoch + 3], [])) == [0, 1, 2, 3, 4]


def test_reinforce_loss_reads_the_buffer_advantage():
    """The standardised objective's negative term (beta |A| log(1 - P~)) is in the learner's loss."""
    nll = torch.tensor([3.0, 4.0])
    adv = torch.tensor([1.0, -2.0])
    expected = (1.0 * 3.0 + 0.05 * 2.0 * -torch.log1p(-torch.exp(torch.tensor(-4.0)) + 1e-6)) / 2
    assert float(reinforce_loss(nll, adv, "standardized", 0.05)) == pytest.approx(float(expected), rel=1e-6)


# ---------------------------------------------------------------------------------------------- gate, env
def test_gate_dedupes_and_caps():
    gate = EvaluationGate(["a"])
    gate.open(2)
    assert gate.claim("a") == "duplicate"
    assert gate.claim("b") is None
    assert gate.claim("b") == "duplicate"
    assert gate.claim("c") is None
    assert gate.claim("d") == "quota"
    gate.open(1, ["d"])
    assert gate.claim("d") == "duplicate" and gate.claim("e") is None


class _Flaky(Evaluator):
    """Fails on about half the architectures (by the parity of the hash's byte sum); sleeps ``delay``."""

    metric, mode = "score", "max"

    def __init__(self, space_name="nasbench201", delay=0.0):
        self.space = get_space(space_name)
        self.delay = delay

    def evaluate(self, arch):
        time.sleep(self.delay)
        if sum(self.space.hash(arch).encode()) % 2 == 0:
            raise RuntimeError("simulated out-of-memory")
        return {"score": float(arch.num_edges)}


def test_env_reports_failed_evaluations_and_skips_gated_graphs():
    env = SearchDesignEnv({"space": "nasbench201", "evaluator": _Flaky(), "invalid_reward": -1.0})
    env.gate = EvaluationGate()
    outcomes = set()
    for _ in range(30):
        env.gate.open(1)
        env.reset()
        done = False
        while not done:
            _, reward, done, _, info = env.step(env.action_space.sample())
        if "error" in info:
            assert reward == -1.0 and "simulated out-of-memory" in info["error"]
            outcomes.add("error")
        else:
            outcomes.add("ok")
        env.gate.open(0)
        assert env.gate.claim(info["hash"]) == "duplicate"
    assert outcomes == {"error", "ok"}


# ---------------------------------------------------------------------------------------------- algorithm
def _config(budget=8, runners=0, seed=0, **training):
    settings = {"epochs": 3, "epsilon_steps": 3, "keep_top": 4, **training}
    return (
        REINFORCEConfig()
        .search(space="nasbench201", evaluator="table:nasbench201:cifar10", budget=budget)
        .training(**settings)
        .env_runners(num_env_runners=runners)
        .debugging(seed=seed)
    )


@pytest.mark.slow
def test_algorithm_searches_unique_architectures_within_budget(local_ray, data_dir):
    algo = _config(budget=9, samples_per_step=2).search(data_dir=str(data_dir)).build_algo()
    try:
        results = []
        while True:
            r = algo.train()
            results.append(r)
            if r["done"]:
                break
        rows = algo.rows()
        assert len(rows) == 9 and len({r["hash"] for r in rows}) == 9
        assert [r["query"] for r in rows] == list(range(9))
        assert all(r["searcher"] == "graphpnas@rllib" and r["status"] == "ok" for r in rows)
        assert len(results) == 5  # 2 per step, the last step takes the one left
        assert results[-1]["best_reward"] == max(r["reward"] for r in rows)
        assert any(r["source_generator"] == 1.0 for r in results)  # epsilon warm-up of 3 steps, then the generator
        losses = [r["learners"]["default_policy"]["total_loss"] for r in results if "default_policy" in r.get("learners", {})]
        assert losses and all(np.isfinite(losses))  # the learner ran on the generator steps
        assert algo.train()["num_evaluations"] == 9  # past the budget: nothing more
    finally:
        algo.stop()


@pytest.mark.slow
def test_checkpoint_restore_continues_to_the_same_result(local_ray, data_dir, tmp_path):
    """Same seed, one env runner, tabular evaluator: a checkpoint taken mid-search and restored
    ends where the uninterrupted run ends (generator, Adam state, buffer, explorer and RNG)."""
    config = _config(budget=10, runners=1, reset=False).search(data_dir=str(data_dir))
    algo = config.build_algo()
    try:
        for _ in range(5):
            algo.train()
        algo.save_to_path(str(tmp_path / "ckpt"))
        while not algo.train()["done"]:
            pass
        full = [(r["hash"], r["reward"]) for r in algo.rows()]
        weights = algo.generator_state()
    finally:
        algo.stop()
    restored = REINFORCE.from_checkpoint(str(tmp_path / "ckpt"))
    try:
        assert len(restored.rows()) == 5 and restored.search_step == 5
        while not restored.train()["done"]:
            pass
        assert [(r["hash"], r["reward"]) for r in restored.rows()] == full
        for k, v in restored.generator_state().items():
            assert torch.allclose(v, weights[k]), k
    finally:
        restored.stop()


@pytest.mark.slow
def test_failed_evaluations_on_remote_runners_are_rows_not_crashes(local_ray):
    import sys

    ray.cloudpickle.register_pickle_by_value(sys.modules[_Flaky.__module__])  # remote runners cannot import tests
    evaluator = _Flaky()
    config = (REINFORCEConfig().search(space="nasbench201", evaluator=evaluator, budget=6, evaluation="remote")
              .training(epochs=1, epsilon_steps=2, samples_per_step=3).env_runners(num_env_runners=2).debugging(seed=0))
    algo = config.build_algo()
    try:
        while not algo.train()["done"]:
            pass
        rows = algo.rows()
        assert len(rows) == 6 and len({r["hash"] for r in rows}) == 6
        errors = [r for r in rows if r["status"] == "error"]
        assert errors and all("simulated out-of-memory" in r["error"] for r in errors)
        assert len(algo.buffer) == 6 - len(errors)
    finally:
        algo.stop()


@pytest.mark.slow
def test_runs_under_tune(local_ray, data_dir, tmp_path):
    from ray import tune

    config = _config(budget=6).search(data_dir=str(data_dir))
    tuner = tune.Tuner(
        REINFORCE,
        param_space=config,
        run_config=tune.RunConfig(
            stop={"num_evaluations": 6}, storage_path=str(tmp_path), verbose=0,
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
        ),
    )
    result = tuner.fit()[0]
    assert result.error is None
    assert result.metrics["num_evaluations"] == 6
    restored = REINFORCE.from_checkpoint(result.checkpoint.path)
    try:
        assert len(restored.rows()) == 6
    finally:
        restored.stop()


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="budget must be a positive number"):
        REINFORCEConfig().search(budget=0)
    with pytest.raises(ValueError, match="evaluation must be one of"):
        REINFORCEConfig().search(evaluation="gpu")
    with pytest.raises(TypeError, match="epoch"):
        REINFORCEConfig().training(epoch=1)
    with pytest.raises(ValueError, match=r"REINFORCE needs an evaluator: REINFORCEConfig\(\).search\(evaluator=...\)"):
        REINFORCEConfig().search(space="nasbench201").build_algo()
    with pytest.raises(Exception, match="unknown GraphPNAS preset"):
        REINFORCEConfig().training(preset="nb999")
    bad = copy.deepcopy(REINFORCEConfig().search(space="nasbench101", evaluator=_Flaky()))
    with pytest.raises(ValueError, match=r"scores NasBench201\(\) architectures, not NasBench101"):
        bad.validate()

"""The ENAS macro weight-sharing supernet: training, scoring, interleaving, state, the shared Ray actor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_ray.errors import InvalidArchitecture
from nas_ray.evaluators.specs import get_evaluator
from nas_ray.evaluators.supernet import SupernetConfig, SupernetEvaluator, SupernetTrainer
from nas_ray.graph import Architecture
from nas_ray.spaces import get_space

SMALL = {"channels": 8, "batch_size": 64, "num_threads": 1}
SPACE = get_space("enas-macro", num_layers=6)
ARCHS = [SPACE.sample(seed) for seed in range(6)]
PATHS = [SPACE.to_native(a) for a in ARCHS]


@pytest.fixture(scope="module")
def trained() -> SupernetTrainer:
    trainer = SupernetTrainer(warmup_epochs=0, **SMALL)
    trainer.train(5)
    return trainer


def test_training_learns_and_scores_differ_by_path(trained: SupernetTrainer) -> None:
    untrained = SupernetTrainer(warmup_epochs=0, **SMALL).score(PATHS)
    scores = trained.score(PATHS)
    assert all(0.0 <= s <= 100.0 for s in scores)
    assert np.mean(scores) > np.mean(untrained) + 10.0  # 5 epochs on digits lift the paths well above chance
    assert len(set(scores)) > 1  # paths share weights but are different networks
    # scoring changes nothing: no gradients, no running statistics
    assert trained.score(PATHS) == scores


def test_same_seed_same_supernet_and_state_round_trip(trained: SupernetTrainer) -> None:
    restored = SupernetTrainer(warmup_epochs=0, **SMALL)
    restored.load_state(trained.state())
    assert restored.score(PATHS) == trained.score(PATHS)
    a, again = SupernetTrainer(warmup_epochs=0, **SMALL), SupernetTrainer(warmup_epochs=0, **SMALL)
    a.train(1)
    again.train(1)
    assert again.score(PATHS) == a.score(PATHS)  # same seed, same supernet
    # training continues identically from a state: same paths sampled, same schedule position
    b = SupernetTrainer(warmup_epochs=0, **SMALL)
    b.load_state(a.state())
    a.train(1)
    b.train(1)
    assert a.score(PATHS[:2]) == b.score(PATHS[:2])


def test_warmup_and_interleaved_training() -> None:
    trainer = SupernetTrainer(warmup_epochs=1, train_every=2, epochs_per_round=1, **SMALL)
    assert trainer.epochs_trained == 0
    trainer.score(PATHS[:1])
    assert trainer.epochs_trained == 1  # the warm-up runs before the first score
    trainer.score(PATHS[1:2])
    assert trainer.epochs_trained == 1
    trainer.score(PATHS[2:5])  # one round before the 3rd score and one before the 5th
    assert trainer.epochs_trained == 3 and trainer.scored == 5


def test_supernet_path_matches_the_standalone_network_structure() -> None:
    """A path uses the same op modules as build_network's ENAS network: equal parameter counts per layer op."""
    from nas_ray.evaluators.networks import enas_op

    trainer = SupernetTrainer(warmup_epochs=0, **SMALL)
    for ops in trainer.model.ops:
        assert len(ops) == 6
        for i, op in enumerate(ops):
            assert sum(p.numel() for p in op.parameters()) == sum(p.numel() for p in enas_op(i, 8).parameters())
    assert not any(m.track_running_stats for m in trainer.model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_evaluator_contract_and_errors() -> None:
    ev = get_evaluator("supernet:enas-macro", backend="local", warmup_epochs=1, **SMALL)
    assert isinstance(ev, SupernetEvaluator) and ev.space.name == "enas-macro" and ev.metric == "val_accuracy"
    metrics = ev.evaluate(ARCHS[0])
    assert set(metrics) == {"val_accuracy", "supernet_epochs"} and metrics["supernet_epochs"] == 1.0
    assert ev.score_many(ARCHS[:2])[0] == metrics["val_accuracy"]
    assert ev.describe()["supernet"]["channels"] == 8
    bad = Architecture(["input", "conv3x3", "output"], [[0, 0, 1], [0, 0, 0], [0, 0, 0]])
    with pytest.raises(InvalidArchitecture):
        ev.evaluate(bad)
    with pytest.raises(ValueError, match="backend must be auto, actor or local"):
        SupernetEvaluator(backend="gpu")
    with pytest.raises(ValueError, match="SupernetConfig.channels must be a positive integer"):
        SupernetConfig(channels=0)
    with pytest.raises(ValueError, match="lr_min <= lr"):
        SupernetConfig(lr=0.01, lr_min=0.1)
    assert "_cache_trainer" not in ev.__getstate__()


@pytest.mark.slow
def test_trials_and_tasks_share_one_supernet_actor(tmp_path) -> None:  # noqa: ANN001
    import ray

    from nas_ray.search import run

    try:
        ev = get_evaluator("supernet:enas-macro", warmup_epochs=1, **SMALL)  # the driver's copy owns the actor
        result = run(evaluator=ev, budget=4, backend="tune", max_concurrent=2, output=tmp_path, progress=False)
        assert (result.table["status"] == "ok").all() and len(result.table) == 4
        actor = ray.get_actor(ev.actor_name)
        assert ray.get(actor.info.remote())["scored"] == 4  # all four trials scored on the one actor

        @ray.remote
        def score(evaluator: SupernetEvaluator, arch: Architecture) -> float:
            return evaluator.evaluate(arch)["val_accuracy"]

        assert ray.get(score.remote(ev, ARCHS[0])) == ev.evaluate(ARCHS[0])["val_accuracy"]
        assert ray.get(actor.info.remote())["scored"] == 6 and ray.get(actor.info.remote())["epochs_trained"] == 1

        # the GraphPNAS environments of an RLlib search (on an env runner) score on the same actor
        from nas_ray.search.rl import run_rllib

        rl = run_rllib(evaluator=ev, budget=3, num_env_runners=1, options={"epochs": 1}, progress=False)
        assert (rl.table["status"] == "ok").all() and len(rl.table) == 3
        assert ray.get(actor.info.remote())["scored"] == 9
    finally:
        ray.shutdown()

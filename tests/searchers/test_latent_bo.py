"""latent-bo beyond the shared searcher suite: proposals come from the encoded pool (default) or
from decoded latent points, running trials enter the GP, checkpoints are checked, and the options
behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
from ray.tune.search import ConcurrencyLimiter

from nas_ray import Architecture, get_space
from nas_ray.errors import CheckpointError
from nas_ray.models.vae_training import PretrainConfig, pretrain, space_graphs
from nas_ray.searchers import get_searcher

SMALL = {"batch_size": 5, "num_initial": 6, "decodes": 30, "grid_size": 128, "gp_epochs": 5, "lbfgs_maxiter": 5,
         "num_inducing": 50, "progress": False, "acquisition": "decode"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):  # noqa: ANN001, ANN201
    """A small D-VAE that decodes valid NB201 cells (trained on all of them, briefly)."""
    space = get_space("nasbench201")
    path = tmp_path_factory.mktemp("vae") / "nb201-dvae.pt"
    config = PretrainConfig(model="dvae", epochs=4, lr=3e-3, batch_size=64, model_options={"hidden_dim": 32, "latent_dim": 6})
    pretrain(space, space_graphs(space)[::10], config, checkpoint=path, progress=False)
    return path


def score(arch: Architecture) -> float:
    return float(sum(op == "nor_conv_3x3" for op in arch.ops) - sum(op == "none" for op in arch.ops))


def test_proposals_come_from_decoded_points(checkpoint) -> None:  # noqa: ANN001
    searcher = get_searcher("latent-bo", "nasbench201", model=str(checkpoint), seed=0, **SMALL)
    for q in range(30):
        config = searcher.suggest(str(q))
        searcher.on_trial_complete(str(q), {"reward": score(Architecture.from_dict(config["arch"]))})
    assert searcher.rounds >= 2
    decoded = 30 - searcher.num_initial - searcher.fallbacks
    assert decoded >= 10, (searcher.rounds, searcher.fallbacks, len(searcher.invalid_z))
    # every observation carries the latent point the GP saw (decoded trials: the selected point itself)
    assert len(searcher.obs_z) == len(searcher.obs_y) == 30 and searcher.obs_z[0].shape == (6,)


def test_pool_proposals_follow_expected_improvement(checkpoint) -> None:  # noqa: ANN001
    searcher = get_searcher("latent-bo", "nasbench201", model=str(checkpoint), seed=0, **{**SMALL, "acquisition": "pool"})
    archs = []
    for q in range(31):
        arch = Architecture.from_dict(searcher.suggest(str(q))["arch"])
        archs.append(arch)
        searcher.on_trial_complete(str(q), {"reward": score(arch)})
    assert searcher.rounds == 5 and searcher.fallbacks == 0 and len(searcher._pool) == 15_625  # NB201: every cell
    assert len({searcher.space.hash(a) for a in archs}) == 31
    # the BO proposals score far above the random initial design on this smooth signal
    assert np.mean([score(a) for a in archs[6:]]) > np.mean([score(a) for a in archs[:6]]) + 1
    state = searcher.get_state()
    assert "_pool" not in state and "_pool_z" not in state
    with pytest.raises(ValueError, match="acquisition must be 'pool' or 'decode'"):
        get_searcher("latent-bo", "nasbench201", model=str(checkpoint), acquisition="grid")
    with pytest.raises(ValueError, match="target must be 'copula' or 'raw'"):
        get_searcher("latent-bo", "nasbench201", model=str(checkpoint), target="log")
    with pytest.raises(ValueError, match=r"local_fraction must be in \[0, 1\]"):
        get_searcher("latent-bo", "nasbench201", model=str(checkpoint), local_fraction=2)


def test_local_candidates_are_neighbours_of_the_best_cells(checkpoint) -> None:  # noqa: ANN001
    """With local_fraction=1 every BO proposal is one or two mutations from one of the best cells."""
    space = get_space("nasbench201")
    searcher = get_searcher("latent-bo", "nasbench201", model=str(checkpoint), seed=3,
                            **{**SMALL, "acquisition": "pool", "local_fraction": 1.0, "local_top": 2})
    archs = []
    for q in range(16):
        arch = Architecture.from_dict(searcher.suggest(str(q))["arch"])
        if q >= 6:  # a BO proposal (rounds of 5 after 6 initial cells): near the two best cells seen before its round
            seen = archs[:6 + 5 * ((q - 6) // 5)]
            best = sorted(seen, key=score, reverse=True)[:2]
            assert min(sum(x != y for x, y in zip(arch.ops, b.ops)) for b in best) <= 2
        archs.append(arch)
        searcher.on_trial_complete(str(q), {"reward": score(arch)})
    assert searcher.rounds == 2 and space.size == len(searcher._pool)


def test_pool_selection_respects_availability_and_spreads_the_batch() -> None:
    from nas_ray.models.sgp import SparseGP, select_from_pool

    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(40, 2))
    gp = SparseGP(num_inducing=40, epochs=30, seed=0).fit(x, (x ** 2).sum(1))  # minimum at the origin
    pool = np.array([[0.0, 0.0], [0.01, 0.0], [1.5, 1.5], [-1.9, 1.9], [0.0, 0.02]])
    available = np.array([False, True, True, True, True])
    picks = select_from_pool(gp, pool, 3, available=available)
    assert 0 not in picks and picks[0] in (1, 4) and len(set(picks)) == 3
    assert select_from_pool(gp, pool, 10, available=available) and len(select_from_pool(gp, pool, 10, available=available)) == 4


def test_running_trials_enter_the_gp_and_restore_reloads_the_model(checkpoint, tmp_path) -> None:  # noqa: ANN001
    searcher = get_searcher("latent-bo", "nasbench201", model=str(checkpoint), seed=1, **SMALL)
    limited = ConcurrencyLimiter(searcher, max_concurrent=4)
    live = []
    for q in range(24):
        config = limited.suggest(str(q))
        if config is None:
            tid, arch = live.pop(0)
            limited.on_trial_complete(tid, {"reward": score(arch)})
            config = limited.suggest(str(q))
        live.append((str(q), Architecture.from_dict(config["arch"])))
    assert searcher.rounds >= 1 and len(searcher.live) == 4
    searcher.save(str(tmp_path / "s.pkl"))
    state = searcher.get_state()
    assert "model" not in state and state["model_path"] == str(checkpoint)
    fresh = get_searcher("latent-bo", "nasbench201", model="dvae", seed=5,
                         **{**SMALL, "pretrain": {"epochs": 1, "model_options": {"hidden_dim": 8, "latent_dim": 2}}, "pretrain_graphs": 20})
    fresh.restore(str(tmp_path / "s.pkl"))
    assert fresh.model.latent_dim == 6 and fresh.model_path == str(checkpoint)
    assert fresh.suggest("next") == searcher.suggest("next")


def test_initial_bins_and_options(checkpoint) -> None:  # noqa: ANN001
    searcher = get_searcher("latent-bo", "nasbench201", model=str(checkpoint), seed=2, **{**SMALL, "initial": "bins", "num_initial": 8})
    first = [Architecture.from_dict(searcher.suggest(str(q))["arch"]) for q in range(8)]
    assert len({searcher.space.hash(a) for a in first}) == 8
    with pytest.raises(ValueError, match="initial must be 'random' or 'bins'"):
        get_searcher("latent-bo", "nasbench201", model=str(checkpoint), initial="grid")
    with pytest.raises(ValueError, match="decode_choice must be"):
        get_searcher("latent-bo", "nasbench201", model=str(checkpoint), decode_choice="best")


def test_bad_checkpoints(checkpoint, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(CheckpointError, match="trained on space nasbench201, not enas-macro"):
        get_searcher("latent-bo", "enas-macro", model=str(checkpoint))
    with pytest.raises(CheckpointError, match="neither a checkpoint file nor one of dvae"):
        get_searcher("latent-bo", "nasbench201", model=str(tmp_path / "nope.pt"))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a readable nas-ray checkpoint"):
        get_searcher("latent-bo", "nasbench201", model=str(broken))
    # an unfinished pretraining (no training latents yet) is refused with the way out
    space = get_space("nasbench201")
    partial = tmp_path / "partial.pt"

    class Stop(Exception):
        pass

    def stop(row):  # noqa: ANN001, ANN202
        raise Stop

    with pytest.raises(Stop):
        pretrain(space, space_graphs(space)[:64], PretrainConfig(model="dvae", epochs=2, model_options={"hidden_dim": 8, "latent_dim": 2}),
                 checkpoint=partial, progress=False, callback=stop)
    with pytest.raises(CheckpointError, match="did not finish"):
        get_searcher("latent-bo", "nasbench201", model=str(partial))
    assert np.isfinite(score(space.sample(0)))


def test_pretraining_waits_for_the_first_suggest_is_announced_and_bounded(tmp_path, monkeypatch, caplog) -> None:  # noqa: ANN001
    import logging

    import torch

    monkeypatch.setenv("NAS_RAY_CACHE", str(tmp_path / "cache"))
    space = get_space("enas-macro", num_layers=4)
    tiny = {"model": "dvae", "pretrain": {"epochs": 3, "model_options": {"hidden_dim": 8, "latent_dim": 2}}, "pretrain_graphs": 64,
            **SMALL, "acquisition": "pool", "pool_size": 64}
    searcher = get_searcher("latent-bo", space, seed=0, pretrain_budget_s=1e-3, **tiny)
    assert searcher.model is None and not (tmp_path / "cache").exists()  # building it trained nothing
    with caplog.at_level(logging.WARNING):
        searcher.suggest("0")
    assert "pretraining the dvae model for enas-macro now" in caplog.text and "about" in caplog.text
    assert "stopped at the time budget" in caplog.text
    (cached,) = (tmp_path / "cache" / "graph-vae").glob("*.pt")
    assert torch.load(cached, weights_only=True)["train"]["epochs_done"] == 1  # the budget cut it after one epoch
    # the next run with no budget continues that training at its first suggest, then it is simply loaded
    again = get_searcher("latent-bo", space, seed=0, **tiny)
    assert again.model is None
    again.suggest("0")
    assert torch.load(cached, weights_only=True)["train"]["epochs_done"] == 3
    assert get_searcher("latent-bo", space, seed=0, **tiny).model is not None
    # auto_pretrain off: an uncached model is an error that says how to make one
    monkeypatch.setenv("NAS_RAY_CACHE", str(tmp_path / "empty"))
    off = get_searcher("latent-bo", space, seed=0, auto_pretrain=False, **tiny)
    with pytest.raises(ValueError, match="auto_pretrain is off; train one with `nas-ray pretrain"):
        off.suggest("0")
    with pytest.raises(ValueError, match="pretrain_budget_s must be a positive"):
        get_searcher("latent-bo", space, pretrain_budget_s=0, **tiny)


def test_bo_rounds_run_beside_the_driver(checkpoint, monkeypatch) -> None:  # noqa: ANN001
    """In the background the next round starts when half a batch is left; while it runs the queue
    keeps serving, and a round still running when the queue is empty costs one uniform draw."""
    import threading

    import nas_ray.searchers.latent_bo as module

    gate, real = threading.Event(), module._pool_round
    monkeypatch.setattr(module, "_pool_round", lambda *a: (gate.wait(120), real(*a))[1])
    s = get_searcher("latent-bo", "nasbench201", model=str(checkpoint), seed=0, updates="thread",
                     **{**SMALL, "acquisition": "pool", "batch_size": 4})
    for q in range(9):  # 6 initial, then the held first round: 3 uniform draws
        config = s.suggest(str(q))
        s.on_trial_complete(str(q), {"reward": score(Architecture.from_dict(config["arch"]))})
    assert s.updating and s.rounds == 1 and s.fallbacks == 3 and not s.queue
    gate.set()
    s._poll_update(wait=True)
    assert len(s.queue) == 4  # the round's batch
    for q in range(9, 12):  # at 2 left (half a batch) the next round starts, and the queue still serves
        s.suggest(str(q))
    assert s.updating and s.rounds == 2 and len(s.queue) == 1
    s._poll_update(wait=True)
    assert len(s.queue) == 5 and s.fallbacks == 3
    hashes = [s.space.hash(a) for a, _ in s.queue]
    assert len(set(hashes)) == 5 and not set(hashes) & set(s.proposed)  # the second round believed the queued points

"""One suite that every registered searcher passes (present and future ones)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from ray.tune.search import ConcurrencyLimiter, Searcher

from nas_ray import Architecture, get_space
from nas_ray.searchers import available_searchers, get_searcher

SEARCHERS = available_searchers()
# Settings that keep model-based searchers fast here; their behaviour under test is the same.
FAST = {
    "graphpnas": {"epochs": 1, "keep_top": 4, "samples_per_step": 3, "epsilon_steps": 2},
    # a tiny VAE pretrained briefly on 200 graphs (cached for the session), small BO rounds
    "latent-bo": {"model": "dvae", "pretrain": {"epochs": 12, "lr": 5e-3, "batch_size": 32,
                                                "model_options": {"hidden_dim": 32, "latent_dim": 4}},
                  "pretrain_graphs": 128, "pool_size": 300, "batch_size": 10, "num_initial": 5, "decodes": 16, "grid_size": 64,
                  "gp_epochs": 5, "lbfgs_maxiter": 3, "num_inducing": 32, "progress": False},
    # a tiny encoder trained briefly (cached for the session), a small candidate pool
    "nasgem": {"encoder_options": {"graphs": 200, "pairs": 400, "iterations": 40, "batch_size": 64},
               "num_initial": 5, "candidates": 300, "fit_steps": 30, "finetune_steps": 5},
}


def make(name: str, space, **options):  # noqa: ANN001, ANN201
    return get_searcher(name, space, **{**FAST.get(name, {}), **options})


def score(arch: Architecture) -> float:
    """A deterministic, structured objective: rewards convolutions, edges and depth."""
    convs = sum("conv" in op for op in arch.ops)
    return float(convs + 0.3 * arch.num_edges + 0.1 * arch.average_path_length())


def run(searcher, budget: int, start: int = 0, fail_every: int = 0) -> list[str]:  # noqa: ANN001
    """Suggest/complete one trial at a time; returns the proposed hashes."""
    hashes = []
    for q in range(start, start + budget):
        config = searcher.suggest(f"t{q}")
        if config is Searcher.FINISHED:
            break
        arch = Architecture.from_dict(config["arch"])
        hashes.append(searcher.space.hash(arch))
        if fail_every and q % fail_every == fail_every - 1:
            searcher.on_trial_complete(f"t{q}", None, error=True)
        else:
            searcher.on_trial_complete(f"t{q}", {"reward": score(arch)})
    return hashes


@pytest.mark.parametrize("name", SEARCHERS)
def test_same_seed_same_sequence(name: str) -> None:
    a = run(make(name, "nasbench201", seed=3), 40)
    b = run(make(name, "nasbench201", seed=3), 40)
    c = run(make(name, "nasbench201", seed=4), 40)
    assert a == b and a != c


@pytest.mark.parametrize("name", SEARCHERS)
def test_same_sequence_in_a_fresh_process(name: str) -> None:
    code = (
        "import json, sys; sys.path.insert(0, {tests!r}); from test_searchers import run; "
        "from test_searchers import make; "
        "print(json.dumps(run(make({name!r}, 'nasbench201', seed=5), 25)))"
    ).format(tests=str(__import__("pathlib").Path(__file__).parent), name=name)
    env = {**__import__("os").environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert json.loads(out.strip().splitlines()[-1]) == run(make(name, "nasbench201", seed=5), 25)


@pytest.mark.parametrize("name", SEARCHERS)
def test_no_duplicates_and_finished_when_exhausted(name: str) -> None:
    space = get_space("enas-macro", num_layers=2)  # 6^2 * 2 = 72 architectures
    assert space.size == 72
    searcher = make(name, space, seed=0)
    hashes = run(searcher, 100)
    assert len(hashes) == 72 == len(set(hashes))
    assert searcher.suggest("again") is Searcher.FINISHED


@pytest.mark.parametrize("name", SEARCHERS)
def test_no_duplicates_over_a_budget(name: str) -> None:
    hashes = run(make(name, "nasbench201", seed=1), 150)
    assert len(hashes) == 150 == len(set(hashes))


@pytest.mark.parametrize("name", SEARCHERS)
def test_failed_trials(name: str) -> None:
    searcher = make(name, "nasbench201", seed=2)
    hashes = run(searcher, 60, fail_every=4)
    assert len(set(hashes)) == 60
    assert len(searcher.failed) == 15 and len(searcher.history) == 45
    # a result without the metric and a NaN metric are failures too, and never successes
    for tid, result in [("m1", {"other": 1.0}), ("m2", {"reward": math.nan})]:
        searcher.suggest(tid)
        searcher.on_trial_complete(tid, result)
    assert len(searcher.failed) == 17 and len(searcher.history) == 45
    # unknown ids and repeated completions are ignored
    searcher.on_trial_complete("never-suggested", {"reward": 1.0})
    searcher.on_trial_complete("t1", {"reward": 1.0})
    assert len(searcher.history) == 45
    assert len(set(run(searcher, 20, start=100))) == 20


@pytest.mark.parametrize("name", SEARCHERS)
def test_errored_trial_that_completes_later_counts(name: str) -> None:
    searcher = make(name, "nasbench201", seed=2)
    config = searcher.suggest("x")
    searcher.on_trial_complete("x", None, error=True)
    assert len(searcher.failed) == 1
    searcher.on_trial_complete("x", {"reward": 5.0})  # Tune's resume_errored
    assert len(searcher.failed) == 0 and searcher.history[0][2] == 5.0
    assert searcher.history[0][0] == Architecture.from_dict(config["arch"])


@pytest.mark.parametrize("name", SEARCHERS)
def test_save_restore_continues_exactly(name: str, tmp_path) -> None:  # noqa: ANN001
    def start(searcher):  # noqa: ANN001, ANN202 - 30 trials, then two left running
        return run(searcher, 30), [searcher.suggest("p0"), searcher.suggest("p1")]

    def finish(searcher, pending):  # noqa: ANN001, ANN202 - the two running trials end, 30 more
        for tid, config in zip(("p0", "p1"), pending):
            searcher.on_trial_complete(tid, {"reward": score(Architecture.from_dict(config["arch"]))})
        return run(searcher, 30, start=100)

    reference = make(name, "nasbench201", seed=7)
    first, pending = start(reference)
    expected = finish(reference, pending)

    interrupted = make(name, "nasbench201", seed=7)
    assert start(interrupted) == (first, pending)
    interrupted.save(str(tmp_path / "state.pkl"))
    restored = make(name, "nasbench201", seed=999)  # a fresh object with another seed
    restored.restore(str(tmp_path / "state.pkl"))
    assert set(restored.live) == {"p0", "p1"} and restored.seed == 7
    assert finish(restored, pending) == expected


@pytest.mark.parametrize("name", SEARCHERS)
def test_works_under_concurrency_limiter(name: str) -> None:
    searcher = make(name, "nasbench201", seed=0)
    limited = ConcurrencyLimiter(searcher, max_concurrent=3)
    live, seen, q = [], set(), 0
    while q < 60:
        config = limited.suggest(f"c{q}")
        if config is None:  # the limit is reached: finish the oldest trial
            assert len(live) == 3
            tid, arch = live.pop(0)
            limited.on_trial_complete(tid, {"reward": score(arch)})
            continue
        arch = Architecture.from_dict(config["arch"])
        h = searcher.space.hash(arch)
        assert h not in seen
        seen.add(h)
        live.append((f"c{q}", arch))
        q += 1
    assert len(seen) == 60 and len(searcher.history) == 57


@pytest.mark.parametrize("name", SEARCHERS)
@pytest.mark.parametrize(
    ("space", "options"),
    [("nasbench101", {}), ("nasbench201", {}), ("enas-macro", {}), ("enas-macro", {"num_layers": 12}), ("randwire", {"num_nodes": 6})],
)
def test_proposals_are_valid_in_every_space(name: str, space: str, options: dict) -> None:
    s = get_space(space, **options)
    searcher = make(name, s, seed=0)
    for q in range(12):
        config = searcher.suggest(str(q))
        arch = Architecture.from_dict(config["arch"])
        s.validate(arch)
        searcher.on_trial_complete(str(q), {"reward": score(arch)})


@pytest.mark.parametrize("name", SEARCHERS)
def test_metric_and_mode(name: str) -> None:
    searcher = make(name, "nasbench201", seed=0, metric="loss", mode="min")
    for q in range(5):
        searcher.suggest(str(q))
        searcher.on_trial_complete(str(q), {"loss": float(q)})
    assert searcher.best()[1] == 0.0
    # Tune's set_search_properties overrides metric / mode
    searcher.set_search_properties("acc", "max", {})
    assert (searcher.metric, searcher.mode) == ("acc", "max")
    with pytest.raises(ValueError, match=r"mode must be 'max' or 'min', got 'up'"):
        make(name, "nasbench201", mode="up")

"""The architecture-design environment: gymnasium conformance, masks, errors, rewards."""

from __future__ import annotations

import pickle

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import nas_ray.envs
from nas_ray import Architecture, get_space
from nas_ray.construction import Builder
from nas_ray.envs import ArchitectureDesignEnv, IllegalAction, random_legal_action
from nas_ray.evaluators.tabular import TabularEvaluator

SPACES = [("nasbench201", {}), ("nasbench101", {}), ("enas-macro", {}), ("enas-macro", {"num_layers": 12}), ("randwire", {"num_nodes": 5})]


def episode(env, rng, seed=None):  # noqa: ANN001, ANN201 - (final info, reward, actions)
    obs, _ = env.reset(seed=seed)
    done, actions = False, []
    while not done:
        action = random_legal_action(obs, rng)
        actions.append(action)
        obs, reward, done, truncated, info = env.step(action)
        assert not truncated
    return info, reward, actions


@pytest.mark.parametrize(("space", "options"), SPACES)
def test_check_env(space: str, options: dict) -> None:
    check_env(ArchitectureDesignEnv(space, space_options=options), skip_render_check=True)


def test_registered_with_gymnasium(data_dir) -> None:  # noqa: ANN001
    env = gymnasium.make(nas_ray.envs.ENV_ID, space="nasbench201", evaluator="table:nasbench201:cifar10", data_dir=str(data_dir))
    check_env(env.unwrapped, skip_render_check=True)
    info, reward, _ = episode(env, np.random.default_rng(0), seed=0)
    assert reward == info["metrics"]["reward"] == info["metrics"]["c10_val12"]


@pytest.mark.parametrize(("space", "options"), SPACES)
def test_random_legal_episodes_build_only_valid_architectures(space: str, options: dict) -> None:
    """2,500 episodes per space with random legal actions (benchmarks/graphpnas_speed.py runs 10,000):
    each one is a valid architecture of the
    space, every step of it is legal under the masks, and each node is what the action asked for."""
    env = ArchitectureDesignEnv(space, space_options=options)
    builder = Builder(env.space)
    rng = np.random.default_rng(0)
    for _ in range(2_500):
        info, reward, actions = episode(env, rng)
        assert info["valid"] and reward == 0.0
        raw = env.architecture()
        env.space.validate(raw)
        builder.trajectory(raw)  # raises if any step was illegal
        assert [builder.node_types[a["op"]] for a in actions] == list(raw.ops[1:])
        for i, a in enumerate(actions, start=1):
            assert np.array_equal(raw.matrix[:i, i], a["edges"][:i])
        assert Architecture.from_dict(info["architecture"]) == env.space.canonicalize(raw)


def test_masked_actions_raise_and_leave_the_graph_unchanged() -> None:
    env = ArchitectureDesignEnv("nasbench201")
    obs, _ = env.reset()
    N = env.builder.max_nodes
    none = env.builder.type_index["none"]
    edges = np.zeros(N, dtype=np.int8)
    edges[0] = 1
    cases = [
        ({"op": env.builder.type_index["output"], "edges": edges}, r"op 'output' is not legal for node 1; legal: none, skip_connect"),
        ({"op": none, "edges": np.zeros(N, dtype=np.int8)}, r"the edge 0->1 is required"),
        ({"op": none, "edges": np.eye(N, dtype=np.int8)[3] + edges}, r"edge from node 3, which does not exist yet"),
        ({"op": none, "edges": edges * 2}, r"edges\[0\] is 2; edges are 0 or 1"),
        ({"op": 99, "edges": edges}, r"op 99 is not legal"),
        ({"edges": edges}, r"an action is \{'op': int, 'edges': 0/1 array\}"),
    ]
    for action, message in cases:
        with pytest.raises(IllegalAction, match=message):
            env.step(action)
        assert env.num_nodes == 1
    obs2, *_ = env.step({"op": none, "edges": edges})
    assert obs2["num_nodes"] == 2
    # NAS-Bench-101: edge count limits (9 edges in all) and forbidden edges
    env = ArchitectureDesignEnv("nasbench101")
    env.reset()
    conv = env.builder.type_index["conv3x3-bn-relu"]
    with pytest.raises(IllegalAction, match=r"takes 1 to 1 incoming edges, got 0"):
        env.step({"op": conv, "edges": np.zeros(7, dtype=np.int8)})


def test_step_before_reset_and_after_the_end() -> None:
    env = ArchitectureDesignEnv("enas-macro", space_options={"num_layers": 1})
    with pytest.raises(IllegalAction, match="call reset"):
        env.step({"op": 1, "edges": np.zeros(3, dtype=np.int8)})
    info, _, _ = episode(env, np.random.default_rng(0))
    with pytest.raises(IllegalAction, match="the architecture is complete"):
        env.step({"op": 1, "edges": np.zeros(3, dtype=np.int8)})


def test_observation_layout_and_reproducibility() -> None:
    env = ArchitectureDesignEnv("nasbench101")
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert obs["num_nodes"] == 1 and obs["ops"][0] == env.builder.type_index["input"] and obs["ops"][1] == 5
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(7)
        env.reset(seed=3)
        trace = []
        done = False
        obs = env.builder.observe(env._graph)
        while not done:
            obs, reward, done, _, info = env.step(random_legal_action(obs, rng))
            trace.append({k: v.copy() for k, v in obs.items()})
        runs.append((trace, info["architecture"]))
    assert runs[0][1] == runs[1][1]
    for a, b in zip(*(r[0] for r in runs)):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    shown = ArchitectureDesignEnv("nasbench201", render_mode="ansi")
    shown.reset()
    shown.step({"op": shown.builder.type_index["none"], "edges": np.eye(8, dtype=np.int8)[0]})
    assert shown.render() == "0: input\n1: none <- [0]"


def test_action_space_samples_legal_actions_and_pickles_plain() -> None:
    env = ArchitectureDesignEnv("randwire", space_options={"num_nodes": 6})
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(300):
        action = env.action_space.sample()
        assert env.action_space.contains(action)
        _, _, done, _, _ = env.step(action)
        if done:
            env.reset()
    copy = pickle.loads(pickle.dumps(env.action_space))
    assert copy._builder is None and copy.contains(copy.sample())


def test_reward_info_and_min_mode(data_dir) -> None:  # noqa: ANN001
    ev = TabularEvaluator.nasbench201("cifar100", data_dir=data_dir)
    env = ArchitectureDesignEnv(ev.space, ev)
    info, reward, _ = episode(env, np.random.default_rng(1))
    arch = Architecture.from_dict(info["architecture"])
    assert info["hash"] == ev.space.hash(arch) and info["metrics"] == ev.evaluate(arch) and reward == info["metrics"]["reward"]
    ev_min = TabularEvaluator(ev.table, "c100_test200", mode="min")
    info, reward, _ = episode(ArchitectureDesignEnv(ev.space, ev_min), np.random.default_rng(1))
    assert reward == -info["metrics"]["reward"]
    with pytest.raises(ValueError, match="scores nasbench201 architectures, not nasbench101"):
        ArchitectureDesignEnv("nasbench101", ev)


def test_architectures_missing_from_the_table_get_the_invalid_reward(data_dir) -> None:  # noqa: ANN001
    env = ArchitectureDesignEnv("enas-macro", TabularEvaluator.enas6(data_dir=data_dir), invalid_reward=-1.0)
    rng = np.random.default_rng(0)
    rewards = [episode(env, rng) for _ in range(200)]
    missing = [(info, r) for info, r, _ in rewards if not info["valid"]]
    found = [(info, r) for info, r, _ in rewards if info["valid"]]
    assert missing and all(r == -1.0 and "is not in the table" in info["invalid_reason"] for info, r in missing)
    assert all(0.0 < r < 1.0 for _, r in found)


def test_a_space_whose_masks_allow_invalid_graphs_gets_the_invalid_reward() -> None:
    space = get_space("nasbench101")

    class Loose(type(space)):
        name = "nasbench101"

        def step_masks(self, ops, matrix):  # noqa: ANN001, ANN201 - every node may take no edges at all
            m = super().step_masks(ops, matrix)
            return type(m)(m.ops, m.edges, m.required, np.zeros_like(m.min_edges), m.max_edges)

    env = ArchitectureDesignEnv(Loose(), invalid_reward=-5.0)
    env.reset()
    out = env.builder.type_index["output"]
    _, reward, done, _, info = env.step({"op": out, "edges": np.zeros(7, dtype=np.int8)})
    assert done and reward == -5.0 and not info["valid"]
    assert info["invalid_reason"] == "nasbench101: the input does not reach the output"

"""The space contract, over every registered space and one defined only here; and every searcher, the
design environment and the RLlib algorithm on that user space (registered from test code, as a user
would)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from nas_ray import Architecture, get_space, register_evaluator, register_space
from nas_ray.errors import InvalidArchitecture
from nas_ray.evaluators import Evaluator
from nas_ray.searchers import available_searchers, get_searcher
from nas_ray.spaces import TableDefinedSpace, available_spaces
from nas_ray.spaces.base import INPUT, OUTPUT, NodeMasks, SearchSpace, as_rng

LAYER_OPS = ("conv3x3", "conv5x5", "maxpool", "identity")


class Chain(SearchSpace):
    """A chain of ``num_layers`` layers, one op each: the fixed-topology kind of space a user writes first."""

    name = "test-chain"
    ops = LAYER_OPS
    edge_limits_depend_on_op = False

    def __init__(self, num_layers: int = 4) -> None:
        self.num_layers = int(num_layers)
        self.max_nodes = self.num_layers + 2
        self.max_edges = self.num_layers + 1
        self.size = len(LAYER_OPS) ** self.num_layers
        self._chain = np.eye(self.max_nodes, k=1, dtype=np.int8)

    def options(self) -> dict[str, Any]:
        return {"num_layers": self.num_layers}

    def validate(self, arch: Architecture) -> None:
        if arch.num_nodes != self.max_nodes:
            raise InvalidArchitecture(f"{self.name}: {self.num_layers} layers make {self.max_nodes} nodes, got {arch.num_nodes}")
        self._check_ops(arch)
        if not np.array_equal(arch.matrix, self._chain):
            raise InvalidArchitecture(f"{self.name}: the layers must form a chain")

    def hash(self, arch: Architecture) -> str:
        self.validate(arch)
        return "-".join(arch.ops[1:-1])

    def _arch(self, layers: Sequence[str]) -> Architecture:
        return Architecture([INPUT, *layers, OUTPUT], self._chain.copy())

    def sample(self, rng: np.random.Generator | int | None = None) -> Architecture:
        rng = as_rng(rng)
        return self._arch([LAYER_OPS[i] for i in rng.integers(len(LAYER_OPS), size=self.num_layers)])

    def mutate(self, arch: Architecture, rng: np.random.Generator | int | None = None) -> Architecture:
        rng = as_rng(rng)
        layers = list(arch.ops[1:-1])
        i = int(rng.integers(self.num_layers))
        layers[i] = str(rng.choice([op for op in LAYER_OPS if op != layers[i]]))
        return self._arch(layers)

    def next_node_masks(self, ops: Sequence[str], matrix: np.ndarray, op: str | None = None) -> NodeMasks:
        k = len(ops)
        edges = np.zeros(k, dtype=bool)
        edges[k - 1] = True
        last = k == self.max_nodes - 1
        return NodeMasks(self._op_mask(OUTPUT) if last else self._op_mask(*LAYER_OPS), edges, edges.copy(), 1, 1)

    # a fixed topology: TPE decides the layers' ops only
    def decisions(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [(f"layer_{i}", LAYER_OPS) for i in range(self.num_layers)]

    def from_decisions(self, values: Mapping[str, Any]) -> Architecture:
        return self._arch([values[f"layer_{i}"] for i in range(self.num_layers)])

    def to_decisions(self, arch: Architecture) -> dict[str, Any] | None:
        return {f"layer_{i}": op for i, op in enumerate(arch.ops[1:-1])}


register_space("test-chain", Chain, overwrite=True)


class ChainScore(Evaluator):
    """Convolutions early and pooling late score best (a deterministic stand-in for a benchmark)."""

    metric, mode = "acc", "max"

    def __init__(self, num_layers: int = 4) -> None:
        self.space = get_space("test-chain", num_layers=num_layers)

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        layers = arch.ops[1:-1]
        n = len(layers)
        acc = sum((n - i) * (op.startswith("conv")) + i * (op == "maxpool") for i, op in enumerate(layers))
        return {"acc": 50.0 + float(acc)}


register_evaluator("test-chain-score", ChainScore, overwrite=True)

class TrainedChains(TableDefinedSpace):
    """The 40 chains a (pretend) lab trained: validity is being in its table."""

    name = "test-trained-chains"
    base = "test-chain"
    calls = 0

    def members(self) -> list[Architecture]:
        TrainedChains.calls += 1
        chain = get_space("test-chain")
        rng = np.random.default_rng(7)
        return [chain.sample(rng) for _ in range(48)]  # 48 draws, about 40 distinct chains


register_space("test-trained-chains", TrainedChains, overwrite=True)

SPACES = [*available_spaces(), "test-chain", "test-trained-chains"]
SPACE_OPTIONS = {"randwire": {"num_nodes": 6}, "enas-macro": {"num_layers": 4}}


def space_of(name: str, request: pytest.FixtureRequest | None = None) -> SearchSpace:
    from nas_ray.spaces import SPACES as REGISTRY

    options = dict(SPACE_OPTIONS.get(name, {}))
    cls = REGISTRY.get(name)
    if getattr(cls, "table_defined", False) and cls.__module__.startswith("nas_ray.") and request is not None:
        options["data_dir"] = request.getfixturevalue("data_dir")  # a built-in table space reads its table
    return get_space(name, **options)


# ---------------------------------------------------------------------------------- the space contract
@pytest.mark.parametrize("name", sorted(set(SPACES)))
def test_space_contract(name: str, request: pytest.FixtureRequest) -> None:
    from nas_ray.construction import Builder, random_legal_action

    space = space_of(name, request)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(20)]
    for arch in archs:
        space.validate(arch)
        assert space.is_valid(arch)
        assert space.hash(space.canonicalize(arch)) == space.hash(arch)
        assert Architecture.from_json(arch.to_json()) == arch
        assert space.hash(space.from_native(space.to_native(arch))) == space.hash(arch)
        child = space.mutate(arch, rng)
        space.validate(child)
        assert space.hash(child) != space.hash(arch)
        values = space.to_decisions(arch) if space.max_nodes is not None else None
        if values is not None:
            assert space.hash(space.from_decisions(values)) == space.hash(arch)
    assert len({space.hash(a) for a in archs}) > 1
    # step-by-step construction (the design environment, GraphPNAS) only ever builds members
    builder = Builder(space)
    for _ in range(5):
        g = builder.start()
        while True:
            action = random_legal_action(builder.observe(g), rng)
            if builder.apply(g, int(action["op"]), action["edges"]):
                break
        arch = builder.architecture(g)
        (space.base_space if space.table_defined else space).validate(arch)
    # the hooks answer for every space (a fallback where the space has nothing to say)
    eps, delta = space.triplet_thresholds()
    assert 0 < eps < delta
    assert space.graphpnas_preset() is None or isinstance(space.graphpnas_preset(), str)
    bad = Architecture([INPUT, "no-such-op", OUTPUT], np.eye(3, k=1, dtype=np.int8))
    with pytest.raises(InvalidArchitecture):
        space.validate(bad)


# ---------------------------------------------------------------------------------- every method on it
@pytest.mark.parametrize("name", available_searchers())
def test_every_searcher_on_the_user_space(name: str) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "searchers"))
    from test_searchers import make

    space = get_space("test-chain")
    evaluator = ChainScore()
    searcher = make(name, space, seed=0, metric="acc", mode="max")
    seen = set()
    for q in range(14):
        config = searcher.suggest(str(q))
        arch = Architecture.from_dict(config["arch"])
        space.validate(arch)
        seen.add(space.hash(arch))
        searcher.on_trial_complete(str(q), evaluator.evaluate(arch))
    assert len(seen) == 14


def test_design_env_on_the_user_space() -> None:
    import gymnasium

    import nas_ray.envs  # noqa: F401 - registers the environment

    env = gymnasium.make("nas_ray/ArchitectureDesign-v0", space="test-chain", evaluator="test-chain-score")
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    from nas_ray.construction import random_legal_action

    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(random_legal_action(obs, rng))
        if terminated or truncated:
            break
    assert terminated and reward >= 50.0


def test_cli_search_and_bench_on_the_user_space(tmp_path) -> None:  # noqa: ANN001
    import json

    from nas_ray.cli import main

    out = tmp_path / "run"
    assert main(["search", "--space", "test-chain", "--evaluator", "test-chain-score", "--searcher", "tpe", "--budget", "10",
                 "--backend", "local", "--output", str(out)]) == 0
    assert main(["bench", "--evaluator", "test-chain-score", "--searcher", "graphpnas", "--searcher", "evolution",
                 "--searcher-option", "graphpnas.epochs=1", "--seeds", "1", "--budget", "12", "--quiet",
                 "--json", str(tmp_path / "b.json")]) == 0
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["space"] == "test-chain" and list(data["summary"]) == ["graphpnas", "evolution", "tune-random", "tune-optuna"]


def test_table_defined_space() -> None:
    TrainedChains.calls = 0
    space = get_space("test-trained-chains")
    assert TrainedChains.calls == 0  # the table is read on first use, not when the space is built
    chain = get_space("test-chain")
    members = space.member_hashes()
    assert TrainedChains.calls == 1 and 30 < space.size == len(members) < chain.size
    outsider = next(a for a in (chain.sample(s) for s in range(1000)) if chain.hash(a) not in members)
    assert not space.is_valid(outsider)
    with pytest.raises(InvalidArchitecture, match="not in the table"):
        space.hash(outsider)
    # a mutation from outside the table still lands inside it; decisions project onto the nearest member
    assert space.hash(space.mutate(outsider, 0)) in members
    near = space.from_decisions(chain.to_decisions(outsider))
    differ = sum(a != b for a, b in zip(near.ops, outsider.ops))
    assert space.hash(near) in members and differ >= 1
    assert all(sum(a != b for a, b in zip(m.ops, outsider.ops)) >= differ for m in space._member_list)
    # every searcher proposes members only, and stops short of nothing: 30 distinct ones
    for name in available_searchers():
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "searchers"))
        from test_searchers import make

        searcher = make(name, space, seed=0, metric="acc", mode="max")
        seen = set()
        for q in range(30):
            arch = Architecture.from_dict(searcher.suggest(str(q))["arch"])
            seen.add(space.hash(arch))
            searcher.on_trial_complete(str(q), ChainScore().evaluate(arch))
        assert len(seen) == 30, name


@pytest.fixture()
def local_ray():  # noqa: ANN201
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_rllib_reinforce_on_the_user_space(local_ray) -> None:  # noqa: ANN001
    from nas_ray.searchers.reinforce import REINFORCEConfig

    algo = (REINFORCEConfig().search(space="test-chain", evaluator="test-chain-score", budget=6)
            .training(samples_per_step=2, epochs=1).env_runners(num_env_runners=0).debugging(seed=0).build_algo())
    try:
        while not algo.train()["done"]:
            pass
        rows = algo.rows()
        assert len(rows) == 6 and len({r["hash"] for r in rows}) == 6 and all(r["status"] == "ok" for r in rows)
    finally:
        algo.stop()

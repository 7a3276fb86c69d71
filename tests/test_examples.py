"""The examples: a user's own searcher run by the CLI, a nas-ray searcher in a user's Tuner, and
GraphPNAS under RLlib with a checkpoint and a restore."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from nas_ray.cli import main

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_own_searcher_through_bench_and_search(capsys, data_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    plugin = str(EXAMPLES / "my_searcher.py")
    out = tmp_path / "bench.json"
    assert main(["bench", "--import", plugin, "--searcher", "greedy", "--searcher", "random", "--seeds", "3",
                 "--budget", "40", "--data-dir", str(data_dir), "--json", str(out), "--quiet"]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["greedy"]["n"] == 3 and 85 < summary["greedy"]["mean"] < 94.4
    assert main(["search", "--import", plugin, "--searcher", "greedy", "--evaluator", "table:nasbench201:cifar10",
                 "--backend", "local", "--budget", "25", "--data-dir", str(data_dir), "--output", str(tmp_path / "s")]) == 0
    results = (tmp_path / "s" / "results.csv").read_text().splitlines()
    assert len(results) == 26 and all(",greedy," in line for line in results[1:])
    capsys.readouterr()


@pytest.mark.slow
def test_nas_ray_searcher_in_a_users_tuner() -> None:
    import ray

    spec = importlib.util.spec_from_file_location("own_tuner", EXAMPLES / "own_tuner.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        grid = module.main(num_samples=10)
        configs = [r.config["arch"] for r in grid]
        assert len(configs) == 10
        assert len({json.dumps(c, sort_keys=True) for c in configs}) == 10  # never the same architecture twice
        assert all(r.metrics["score"] > 0 for r in grid)
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_rllib_example_trains_checkpoints_and_restores(data_dir: Path, tmp_path: Path) -> None:
    import ray

    spec = importlib.util.spec_from_file_location("rllib_search", EXAMPLES / "rllib_search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        rows = module.main(str(data_dir), budget=14, epochs=2, checkpoint_dir=str(tmp_path / "ckpt"))
    finally:
        ray.shutdown()
    assert len(rows) == 14 and len({r["hash"] for r in rows}) == 14
    assert (tmp_path / "ckpt" / "algorithm_state.pkl").is_file()


def test_own_space_with_its_table_networks_and_every_searcher(monkeypatch, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """examples/own_space: a space, its networks and its benchmark table defined in user code, made and
    searched through the CLI with every searcher, benchmarked, trained on digits and searched under RLlib."""
    import importlib.util
    import sys

    from nas_ray.searchers import available_searchers

    table = tmp_path / "my_chain.csv"
    monkeypatch.setenv("MY_CHAIN_TABLE", str(table))
    spec = importlib.util.spec_from_file_location("own_space_make_table", EXAMPLES / "own_space" / "make_table.py")
    make_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_table)
    make_table.main(["--depth", "3", "--epochs", "2"])
    assert len(table.read_text().splitlines()) == 1 + 27
    sys.modules.pop("space", None)
    plugin = str(EXAMPLES / "own_space" / "space.py")
    small = {"nasgem": ["--searcher-option", "encoder_options={graphs: 27, pairs: 400, iterations: 40}"],
             "latent-bo": ["--searcher-option", "pretrain={epochs: 3}"],
             "graphpnas": ["--searcher-option", "epochs=2"]}
    for name in available_searchers():
        out = tmp_path / name
        assert main(["search", "--import", plugin, "--space", "my-chain", "--space-option", "depth=3", "--evaluator", "my-table",
                     "--searcher", name, "--budget", "10", "--backend", "local", "--output", str(out), *small.get(name, [])]) == 0, name
        rows = (out / "results.csv").read_text().splitlines()
        assert len(rows) == 11, name
    report = tmp_path / "bench.json"
    assert main(["bench", "--import", plugin, "--evaluator", "my-table", "--searcher", "random", "--searcher", "evolution",
                 "--seeds", "2", "--budget", "10", "--workers", "2", "--quiet", "--json", str(report)]) == 0
    assert json.loads(report.read_text())["space"] == "my-chain"
    assert main(["search", "--import", plugin, "--space", "my-chain", "--space-option", "depth=3", "--evaluator", "train:digits",
                 "--evaluator-option", "epochs=1", "--searcher", "random", "--budget", "2", "--backend", "local",
                 "--output", str(tmp_path / "trained")]) == 0
    assert main(["rl", "--import", plugin, "--evaluator", "my-table", "--budget", "6", "--option", "epochs=1",
                 "--output", str(tmp_path / "rl")]) == 0
    assert len((tmp_path / "rl" / "results.csv").read_text().splitlines()) == 7
    capsys.readouterr()

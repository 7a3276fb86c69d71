"""The README's examples: a user's own searcher run by the CLI, a nas-ray searcher in a user's Tuner, and
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

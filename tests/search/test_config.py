"""SearchConfig is the one definition of a search's settings: run(), the CLI's flags and YAML keys,
run.json and resume all come from it."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from nas_ray.cli import SEARCH_DEFAULTS, build_parser
from nas_ray.errors import ConfigError
from nas_ray.search import run
from nas_ray.search.config import SearchConfig


def test_flags_and_yaml_keys_are_the_fields() -> None:
    parser = build_parser()
    search = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "search")[1]  # noqa: SLF001
    flags = {s for a in search._actions for s in a.option_strings} - {"-h", "--help", "--config"}  # noqa: SLF001
    cli_fields = [f for f in fields(SearchConfig) if f.metadata.get("cli", True)]
    assert len(flags) == len(cli_fields) == len(SEARCH_DEFAULTS)
    assert {SearchConfig.cli_key(f) for f in cli_fields} == set(SEARCH_DEFAULTS)
    assert SEARCH_DEFAULTS["budget"] == 24 and SEARCH_DEFAULTS["evaluator"] == "train:digits"  # the main job


def test_run_takes_the_config_or_its_fields(data_dir: Path, tmp_path: Path) -> None:
    config = SearchConfig(evaluator="table:nasbench201:cifar10", searcher="random", budget=6, seed=1, data_dir=str(data_dir))
    a = run(config, progress=False)
    b = run(progress=False, evaluator="table:nasbench201:cifar10", searcher="random", budget=6, seed=1, data_dir=str(data_dir))
    c = run(config, progress=False, seed=2)
    assert list(a.table["hash"]) == list(b.table["hash"]) != list(c.table["hash"])
    with pytest.raises(ConfigError, match="search has no option 'budgett'; its options: address, backend, budget"):
        run(config, budgett=3)
    with pytest.raises(ConfigError, match="a search needs an evaluator"):
        run(budget=3)


def test_yaml_values_and_records_round_trip(tmp_path: Path) -> None:
    config = SearchConfig.main_job().with_cli_values({"budget": 7, "searcher_option": ["population_size=4", "sample_size=2"],
                                                      "import": "my_space.py", "pareto": True})
    assert config.searcher_options == {"population_size": 4, "sample_size": 2} and config.imports == ["my_space.py"]
    record = json.loads(json.dumps(config.to_record()))
    assert SearchConfig.from_record({"format": "nas-ray-run", **record}) == config
    with pytest.raises(ConfigError, match="unknown option 'budgett'"):
        config.with_cli_values({"budgett": 1})
    with pytest.raises(ConfigError, match="--searcher-option takes KEY=VALUE, got 'x'"):
        config.with_cli_values({"searcher_option": ["x"]})
    for bad, message in (({"lam": -1}, "lam must be a finite number >= 0"), ({"max_concurrent": 0}, "max_concurrent must be"),
                         ({"backend": "ray"}, "unknown backend 'ray'"), ({"scheduler": "asha"}, "needs backend='tune'"),
                         ({"pareto": "yes"}, "pareto must be true or false")):
        with pytest.raises(ConfigError, match=message):
            SearchConfig(evaluator="train:digits", **bad).validate()


@pytest.mark.slow
def test_driver_rllib_runs_graphpnas_as_an_rllib_algorithm(data_dir: Path, tmp_path: Path) -> None:
    import ray

    try:
        result = run(evaluator="table:nasbench201:cifar10", searcher="graphpnas", driver="rllib", budget=6, seed=0,
                     searcher_options={"epochs": 1, "samples_per_step": 2}, data_dir=str(data_dir), progress=False,
                     output=str(tmp_path / "rl"))
    finally:
        ray.shutdown()
    assert len(result.table) == 6 and set(result.table["searcher"]) == {"graphpnas@rllib"}
    assert (tmp_path / "rl" / "checkpoint").is_dir()
    with pytest.raises(ConfigError, match="searcher 'tpe' runs under driver tune, not 'rllib'; driver 'rllib' runs: graphpnas"):
        run(evaluator="table:nasbench201:cifar10", searcher="tpe", driver="rllib")

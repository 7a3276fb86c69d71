"""Evaluators as plug-ins: the registry of spec kinds, a user's own table without a subclass, and
the CLI taking both through --import (in-process, in bench's worker processes and on Tune)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas_ray import Architecture, get_space
from nas_ray.cli import main
from nas_ray.errors import ArchitectureNotInTable, ConfigError, DataFileError, UnknownName
from nas_ray.evaluators import Evaluator, TabularEvaluator, get_evaluator, register_evaluator
from nas_ray.evaluators.specs import evaluator_kinds


class CountConvs(Evaluator):
    """Convolutions in a NB201 cell (a deterministic stand-in)."""

    metric, mode = "convs", "max"

    def __init__(self, weight: float = 1.0) -> None:
        self.space = get_space("nasbench201")
        self.weight = weight

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        return {"convs": self.weight * sum(op.startswith("nor_conv") for op in arch.ops)}


def test_registry_kinds_classes_and_factories() -> None:
    register_evaluator("test-convs", CountConvs, overwrite=True)
    ev = get_evaluator("test-convs", weight=2.0)
    assert isinstance(ev, CountConvs) and ev.weight == 2.0
    assert "test-convs" in [k.name for k in evaluator_kinds()]
    assert next(k for k in evaluator_kinds() if k.name == "test-convs").help == "Convolutions in a NB201 cell (a deterministic stand-in)."
    with pytest.raises(ConfigError, match="takes no ':ARGUMENT'"):
        get_evaluator("test-convs:x")
    with pytest.raises(ConfigError, match="has no option|unexpected keyword"):
        get_evaluator("test-convs", bogus=1)
    register_evaluator("test-scaled", lambda arg, data_dir=None, **o: CountConvs(weight=float(arg or 1)), argument=None,
                       help="test-scaled[:WEIGHT] - convolutions times a weight", overwrite=True)
    assert get_evaluator("test-scaled:3").weight == 3.0 and get_evaluator("test-scaled").weight == 1.0
    with pytest.raises(ConfigError, match="already registered"):
        register_evaluator("test-convs", CountConvs)
    with pytest.raises(ConfigError, match="without ':'"):
        register_evaluator("a:b", CountConvs)
    with pytest.raises(TypeError, match="needs a factory function or an Evaluator subclass"):
        register_evaluator("test-bad", dict)
    register_evaluator("test-wrong", lambda arg, data_dir=None: 42, overwrite=True)
    with pytest.raises(TypeError, match="returned int, not an Evaluator"):
        get_evaluator("test-wrong")
    with pytest.raises(UnknownName, match="unknown evaluator 'nope'; for example: table:nasbench201:cifar10"):
        get_evaluator("nope")


def nb201_frame() -> pd.DataFrame:
    space = get_space("nasbench201")
    archs = [space.sample(i) for i in range(40)]
    return pd.DataFrame({"cell": [space.to_native(a) for a in archs], "acc": np.linspace(50, 90, 40),
                         "params": np.arange(40.0), "note": ["x"] * 40})


def test_from_table_frames_and_files(tmp_path: Path) -> None:
    space = get_space("nasbench201")
    frame = nb201_frame()
    ev = TabularEvaluator.from_table(frame, space=space, reward="acc", report=["params"], key_column="cell", key=space.to_native)
    arch = space.from_native(frame.cell[5])
    assert ev.evaluate(arch) == {"reward": frame.acc[5], "acc": frame.acc[5], "params": 5.0}
    assert ev.best()[0] == frame.cell[39] and ev.metric_scale == 100.0
    with pytest.raises(ArchitectureNotInTable):
        ev.evaluate(space.sample(10_000))
    # a CSV (first column = key) and both JSON layouts give the same evaluator
    frame.to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "rows.json").write_text(json.dumps(frame.to_dict("records")))
    (tmp_path / "map.json").write_text(json.dumps({r["cell"]: {"acc": r["acc"], "params": r["params"]} for r in frame.to_dict("records")}))
    for data, extra in ((tmp_path / "t.csv", {}), (tmp_path / "rows.json", {"key_column": "cell"}), (tmp_path / "map.json", {})):
        other = TabularEvaluator.from_table(data, space="nasbench201", reward="acc", key=space.to_native, metric_scale=100, **extra)
        assert other.evaluate(arch)["acc"] == frame.acc[5]
    # bad input: one line naming the problem
    with pytest.raises(UnknownName, match="table t has no column 'top1'; its columns: acc, params, note"):
        TabularEvaluator.from_table(tmp_path / "t.csv", space=space, reward="top1")
    with pytest.raises(ConfigError, match="column 'note' is not numeric"):
        TabularEvaluator.from_table(tmp_path / "t.csv", space=space, reward="note")
    with pytest.raises(ConfigError, match="a JSON list of rows needs key_column"):
        TabularEvaluator.from_table(tmp_path / "rows.json", space=space, reward="acc")
    with pytest.raises(DataFileError, match="does not exist"):
        TabularEvaluator.from_table(tmp_path / "none.csv", space=space, reward="acc")
    dup = pd.concat([frame, frame.iloc[:1]])
    with pytest.raises(ConfigError, match="appears more than once"):
        TabularEvaluator.from_table(dup, space=space, reward="acc", key_column="cell")
    (tmp_path / "t.parquet").write_text("x")
    with pytest.raises(ConfigError, match="must be .csv or .json"):
        TabularEvaluator.from_table(tmp_path / "t.parquet", space=space, reward="acc")


PLUGIN = '''
"""A user's benchmark table over every NB201 cell, registered as the evaluator kind my-table."""
import numpy as np
import pandas as pd

from nas_ray import get_space, register_evaluator
from nas_ray.evaluators import TabularEvaluator

SPACE = get_space("nasbench201")
_CELLS = list(SPACE.enumerate())
_FRAME = pd.DataFrame({
    "cell": [SPACE.hash(a) for a in _CELLS],
    "acc": [50.0 + 5 * sum(op == "nor_conv_3x3" for op in a.ops) - 3 * sum(op == "none" for op in a.ops) for a in _CELLS],
    "test_acc": np.linspace(40, 80, len(_CELLS)),
})


def make(argument, data_dir=None, **options):
    return TabularEvaluator.from_table(_FRAME, space=SPACE, reward="acc", report=["test_acc"], key_column="cell", **options)


register_evaluator("my-table", make, help="my-table - a synthetic NB201 table", overwrite=True)
'''


@pytest.fixture()
def plugin(tmp_path: Path) -> Path:
    path = tmp_path / "my_table_plugin.py"
    path.write_text(PLUGIN)
    return path


def test_cli_search_and_bench_take_an_imported_evaluator(plugin: Path, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    assert main(["search", "--import", str(plugin), "--evaluator", "my-table", "--searcher", "evolution", "--budget", "12",
                 "--backend", "local", "--output", str(out)]) == 0
    rows = pd.read_csv(out / "results.csv")
    assert len(rows) == 12 and rows["acc"].max() >= 50
    assert main(["evaluators", "--import", str(plugin)]) == 0
    assert "my-table     my-table - a synthetic NB201 table" in capsys.readouterr().out
    # bench: two worker processes (spawned: they import the plugin again) and the evaluator's own space
    report = tmp_path / "bench.json"
    assert main(["bench", "--import", str(plugin), "--evaluator", "my-table", "--searcher", "random", "--searcher", "tpe",
                 "--seeds", "2", "--budget", "15", "--workers", "2", "--quiet", "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert data["space"] == "nasbench201" and data["reported"] == "test_acc"
    # with the reference rows (Ray Tune's own algorithms) after the searchers asked for
    assert [*data["summary"]] == ["random", "tpe", "tune-random", "tune-optuna"] and len(data["runs"]) == 8


@pytest.mark.slow
def test_tune_search_ships_an_imported_evaluator_to_its_workers(plugin: Path, tmp_path: Path) -> None:
    out = tmp_path / "tune"
    assert main(["search", "--import", str(plugin), "--evaluator", "my-table", "--searcher", "random", "--budget", "4",
                 "--backend", "tune", "--max-concurrent", "2", "--output", str(out)]) == 0
    assert len(pd.read_csv(out / "results.csv")) == 4
    recipe = json.loads((out / "run.json").read_text())
    assert str(plugin.resolve()) in recipe["imports"]  # what nas-ray resume imports again

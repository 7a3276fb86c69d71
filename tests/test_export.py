"""nas-ray export: a searched network as a standalone model file that reproduces the search's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from nas_ray.cli import main
from nas_ray.errors import DataFileError
from nas_ray.evaluators.training import ImageTrainingEvaluator
from nas_ray.export import export_model, load_model
from nas_ray.search import run


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ImageTrainingEvaluator]:
    out = tmp_path_factory.mktemp("search")
    evaluator = ImageTrainingEvaluator("digits", "nasbench201", epochs=1, max_train_samples=256)
    run(evaluator=evaluator, searcher="random", budget=3, seed=0, backend="local", output=out, progress=False)
    return out, evaluator


def _accuracy(model: torch.nn.Module, evaluator: ImageTrainingEvaluator) -> float:
    x, y = evaluator.data().val
    with torch.no_grad():
        return 100.0 * float((model(x).argmax(1) == y).sum()) / len(y)


@pytest.mark.parametrize("rank", [1, 3])
def test_exported_model_reproduces_the_reported_accuracy(searched, tmp_path: Path, rank: int) -> None:  # noqa: ANN001
    out, evaluator = searched
    info = export_model(out, tmp_path / "model.pt", rank=rank)
    assert info.trained and info.weights_from == out / "weights" / f"{info.query:05d}.pt"
    table = json.loads((out / "summary.json").read_text())
    results = pd.read_csv(out / "results.csv")
    rewards = sorted(results["reward"], reverse=True)
    assert info.reward == rewards[rank - 1]
    model = load_model(info.path)
    assert not model.training and model.nas_ray["space"] == "nasbench201" and table["space"] == "nasbench201"
    # the exported network, evaluated on the same validation images, gives the accuracy the search reported
    assert _accuracy(model, evaluator) == pytest.approx(info.reward, abs=1e-9)
    arch = json.loads(info.arch_json.read_text())
    assert arch == json.loads(results["arch"][info.query])


def test_round_trip_outputs_equal_and_untrained_exports(searched, tmp_path: Path, data_dir: Path) -> None:  # noqa: ANN001
    out, _ = searched
    first = load_model(export_model(out, tmp_path / "a.pt").path)
    again = load_model(export_model(out, tmp_path / "b.pt").path)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(first(x), again(x))
    # a table search trained nothing: its export is the untrained network, sized for the table's dataset
    table_out = tmp_path / "table"
    run(evaluator="table:nasbench201:cifar100", budget=2, backend="local", output=table_out, progress=False,
        data_dir=data_dir)
    info = export_model(table_out, tmp_path / "t.pt")
    model = load_model(info.path)
    assert not info.trained and model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_bad_exports_say_what_is_wrong(searched, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:  # noqa: ANN001
    out, _ = searched
    with pytest.raises(ValueError, match="rank 9 asked, but the search has 3 successful evaluations"):
        export_model(out, tmp_path / "m.pt", rank=9)
    with pytest.raises(ValueError, match="apply only to an untrained export"):
        export_model(out, tmp_path / "m.pt", num_classes=100)
    with pytest.raises(DataFileError, match="no such file; RESULTS_DIR must be a search's output folder"):
        export_model(tmp_path, tmp_path / "m.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(DataFileError, match="not a nas-ray model file"):
        load_model(tmp_path / "junk.pt")
    assert main(["export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.pt")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["export", str(out), "--rank", "2", "--out", str(tmp_path / "cli.pt")]) == 0
    assert "rank 2" in capsys.readouterr().out and (tmp_path / "cli.pt").is_file()

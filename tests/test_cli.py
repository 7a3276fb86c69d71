from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nas_ray.cli import main
from nas_ray.objectives import hypervolume


def fails_cleanly(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert message in err, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "--space", "nasbench301", "--backend", "local"], "unknown search space 'nasbench301'"),
        (["search", "--searcher", "hillclimb", "--evaluator", "table:nasbench201:cifar10", "--data-dir", "{data}",
          "--backend", "local"], "unknown searcher 'hillclimb'; available: evolution, graphpnas, latent-bo, nasgem, random, tpe"),
        (["search", "--evaluator", "table:nasbench999", "--backend", "local", "--data-dir", "{data}"],
         "unknown benchmark table 'nasbench999'"),
        (["search", "--evaluator", "magic", "--backend", "local"], "unknown evaluator 'magic'"),
        (["search", "--budget", "0"], "--budget must be a positive integer, got 0"),
        (["search", "--budget", "-3"], "--budget must be a positive integer, got -3"),
        (["search", "--data-dir", "/no/such/folder"], "--data-dir /no/such/folder does not exist"),
        (["search", "--budget", "ten"], "argument --budget: invalid int value: 'ten'"),
        (["search", "--searcher-option", "population_size"], "--searcher-option takes KEY=VALUE"),
        (["search", "--evaluator-option", "epochs"], "--evaluator-option takes KEY=VALUE"),
        (["search", "--scheduler", "hyperband"], "argument --scheduler: invalid choice: 'hyperband'"),
        (["search", "--scheduler", "asha", "--backend", "local"], "scheduler 'asha' needs backend='tune'"),
        (["search", "--evaluator", "train:mnist", "--backend", "local"], "unknown evaluator 'train:mnist'"),
        (["search", "--evaluator", "train:digits", "--evaluator-option", "train_fraction=2", "--backend", "local"],
         "train_fraction must be a number in (0, 1], got 2"),
        (["search", "--evaluator", "train:cifar10", "--evaluator-option", "layers=3", "--backend", "local"],
         "unknown option 'layers': neither a training option (amp, augment, batch_size"),
        (["export", "--out", "m.pt"], "the following arguments are required: results_dir"),
        (["search", "--evaluator", "table:nasbench201:cifar10", "--data-dir", "{data}", "--backend", "local",
          "--searcher-option", "population=3"], "searcher 'evolution' has no option 'population'"),
        (["bench", "--seeds", "0", "--data-dir", "{data}"], "--seeds must be a positive integer"),
        (["bench", "--dataset", "cifar-10", "--data-dir", "{data}"], "unknown NAS-Bench-201 dataset 'cifar-10'"),
        (["bench", "--data-dir", "/no/such/folder"], "--data-dir /no/such/folder does not exist"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["search", "--evaluator", "table:nasbench201:cifar10", "--data-dir", "{data}", "--backend", "local", "--pareto"],
         "a Pareto search needs a cost metric"),
        (["search", "--evaluator", "table:nasbench201:cifar10", "--data-dir", "{data}", "--backend", "local",
          "--cost", "lat_iphone_ms"], "table nasbench201 has no column 'lat_iphone_ms'"),
        (["search", "--cost", "params", "--lam", "-1"], "--lam must be a finite number >= 0"),
        (["bench", "--pareto", "--data-dir", "{data}"], "--pareto needs --cost"),
        (["bench", "--cost", "lat_iphone_ms", "--data-dir", "{data}"], "cost must be a column of table nasbench201"),
        (["train-encoder", "--pairs", "0"], "train-encoder: EncoderConfig.pairs must be >= 1"),
        (["resume", "/no/such/folder"], "resume: /no/such/folder is not a folder"),
        (["resume", "{data}"], "no run.json; only Tune-backend searches with an output folder can be resumed"),
        (["search", "--searcher-option", "p=[1"], "--searcher-option 'p': '[1' is not a valid YAML value"),
        (["rl"], "the following arguments are required: --evaluator"),
        (["rl", "--evaluator", "table:nasbench201:cifar10", "--budget", "0"], "--budget must be a positive integer, got 0"),
        (["rl", "--evaluator", "table:nasbench201:cifar10", "--num-env-runners", "-1"], "--num-env-runners must be 0 or more"),
        (["rl", "--evaluator", "table:nasbench201:cifar10", "--restore", "/no/such"],
         "--restore /no/such is not a checkpoint folder (no rllib_checkpoint.json)"),
        (["rl", "--evaluator", "table:nasbench201:cifar10", "--data-dir", "{data}", "--option", "epoch=3"],
         "GraphPNAS has no option 'epoch'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, data_dir: Path, argv: list[str], message: str) -> None:  # noqa: ANN001
    fails_cleanly(capsys, [a.replace("{data}", str(data_dir)) for a in argv], message)


def test_a_bug_keeps_its_traceback(monkeypatch, capsys) -> None:  # noqa: ANN001
    """Only nas-ray's own errors become a one-line exit 2; a plain ValueError from a bug propagates."""
    import nas_ray.cli as cli

    def broken(args):  # noqa: ANN001, ANN202
        raise ValueError("internal invariant broken")

    monkeypatch.setattr(cli, "cmd_spaces", broken)
    with pytest.raises(ValueError, match="internal invariant broken"):
        main(["spaces"])
    from nas_ray.errors import ConfigError

    def bad_option(args):  # noqa: ANN001, ANN202
        raise ConfigError("spaces: --foo must be positive, got -1")

    monkeypatch.setattr(cli, "cmd_spaces", bad_option)
    assert main(["spaces"]) == 2
    assert capsys.readouterr().err.strip() == "nas-ray: error: spaces: --foo must be positive, got -1"


def test_bad_files(capsys, tmp_path: Path) -> None:  # noqa: ANN001
    bad_json = tmp_path / "arch.json"
    bad_json.write_text('{"ops": ["input", "output"], "matrix": [[0, 1], [0, 0]')
    fails_cleanly(capsys, ["show", str(bad_json)], "is not valid JSON (line 1")
    cyclic = tmp_path / "cyclic.json"
    cyclic.write_text('{"ops": ["input", "output"], "matrix": [[0, 1], [1, 0]]}')
    fails_cleanly(capsys, ["show", str(cyclic)], "graph is cyclic")
    fails_cleanly(capsys, ["show", str(tmp_path / "missing.json")], "cannot read")
    bad_yaml = tmp_path / "c.yaml"
    bad_yaml.write_text("budget: [1, 2\nsearcher: random\n")
    fails_cleanly(capsys, ["search", "--config", str(bad_yaml)], "is not valid YAML")
    unknown = tmp_path / "u.yaml"
    unknown.write_text("budgett: 3\n")
    fails_cleanly(capsys, ["search", "--config", str(unknown)], "unknown option 'budgett'")
    fails_cleanly(capsys, ["search", "--config", str(tmp_path / "none.yaml")], "cannot read")


def test_search_local_writes_results(capsys, data_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "run"
    argv = ["search", "--backend", "local", "--evaluator", "table:nasbench201:cifar100", "--searcher", "random",
            "--budget", "15", "--seed", "2", "--data-dir", str(data_dir), "--output", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err.count("random: reward") == 15  # a progress line per trial
    assert "15 evaluations, 0 failed" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluations"] == 15 and summary["searcher"] == "random" and summary["seed"] == 2
    assert (out / "best_so_far.png").is_file() and (out / "best_architecture.png").is_file()
    # show the best architecture of that folder
    assert main(["show", str(out), "--png", str(tmp_path / "best.png")]) == 0
    shown = capsys.readouterr().out
    assert "space nasbench201: valid, hash |" in shown and (tmp_path / "best.png").is_file()


def test_config_file_equals_flags(capsys, data_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    config = tmp_path / "search.yaml"
    config.write_text(
        f"evaluator: table:nasbench201:cifar10\nsearcher: evolution\nbudget: 12\nseed: 4\nbackend: local\n"
        f"data_dir: {data_dir}\noutput: {tmp_path / 'a'}\nsearcher_option: [population_size=5, sample_size=2]\n"
    )
    assert main(["search", "--config", str(config)]) == 0
    assert main(["search", "--config", str(config), "--output", str(tmp_path / "b"), "--budget", "12"]) == 0
    a = (tmp_path / "a" / "results.csv").read_text().splitlines()
    b = (tmp_path / "b" / "results.csv").read_text().splitlines()
    column = a[0].split(",").index("hash")
    assert [r.split(",")[column] for r in a] == [r.split(",")[column] for r in b]


def test_bench_json_and_plot(capsys, data_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "bench.json"
    assert main(["bench", "--searcher", "random", "--searcher", "evolution", "--seeds", "3", "--budget", "30",
                 "--dataset", "imagenet16-120", "--data-dir", str(data_dir), "--json", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    # the reference rows (Ray Tune's own algorithms) come after the searchers asked for
    assert list(data["summary"]) == ["random", "evolution", "tune-random", "tune-optuna"]
    assert data["summary"]["random"]["n"] == 3 and 30 < data["summary"]["random"]["mean"] < 48
    assert len(data["runs"]) == 12 and all(len(r["curve"]) == 30 for r in data["runs"])
    assert all(r["final"] == r["curve"][-1] for r in data["runs"])
    assert out.with_suffix(".png").is_file()
    printed = capsys.readouterr().out
    assert "random (reproduced, 500 seeds)" in printed and "in16_test200" in printed
    assert "reference: Ray Tune's own algorithms" in printed


def test_train_encoder_then_multi_objective_bench(capsys, data_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    """train-encoder writes an encoder nasgem loads; bench --cost --pareto scores each run by the
    hypervolume of (test accuracy, latency) and draws the fronts."""
    enc = tmp_path / "enc.pt"
    assert main(["train-encoder", "--space", "nasbench201", "--pairs", "300", "--iterations", "30", "--graphs", "200",
                 "--out", str(enc), "--quiet"]) == 0
    assert "similarity RMSE" in capsys.readouterr().out
    fails_cleanly(capsys, ["train-encoder", "--space", "nasbench201", "--out", str(enc)], "exists; pass --force")
    out = tmp_path / "mo.json"
    assert main(["bench", "--searcher", "random", "--searcher", "nasgem", "--seeds", "2", "--budget", "20",
                 "--data-dir", str(data_dir), "--cost", "lat_pixel3_ms", "--pareto", "--json", str(out), "--quiet",
                 "--searcher-option", f"nasgem.encoder={enc}", "--searcher-option", "nasgem.candidates=300",
                 "--searcher-option", "nasgem.num_initial=5", "--searcher-option", "nasgem.fit_steps=30"]) == 0
    data = json.loads(out.read_text())
    ref_acc, ref_cost = data["multi_objective"]["reference"]
    for run in data["runs"]:
        points = np.asarray(run["points"])
        assert len(points) == 20 and run["final"] == pytest.approx(hypervolume(points[:, 0], points[:, 1], ref_acc, ref_cost))
        assert np.all(np.diff(run["curve"]) >= -1e-9)  # the hypervolume never shrinks
    assert out.with_suffix(".png").is_file() and (tmp_path / "mo_pareto.png").is_file()
    assert "hypervolume of (c10_test200, lat_pixel3_ms)" in capsys.readouterr().out


def test_listings(capsys) -> None:  # noqa: ANN001
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("nasbench101", "nasbench201", "enas-macro", "randwire"))
    assert main(["searchers"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("random", "evolution", "tpe"))


def test_console_script_help_and_errors_exit_2() -> None:
    done = subprocess.run(["nas-ray", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "search" in done.stdout and "bench" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "nas_ray.cli", "search", "--budget", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == "nas-ray: error: --budget must be a positive integer, got 0"


@pytest.mark.slow
def test_main_job_defaults_on_tune_with_digits(capsys, tmp_path: Path) -> None:  # noqa: ANN001
    """The default main job (digits training, evolution, local Ray), cut to 3 architectures."""
    import ray

    try:
        assert main(["search", "--budget", "3", "--output", str(tmp_path)]) == 0
    finally:
        ray.shutdown()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["backend"] == "tune" and summary["space"] == "nasbench101" and summary["searcher"] == "evolution"
    assert summary["evaluations"] == 3 and summary["failed"] == 0
    assert summary["metric"] == "val_accuracy" and 50 < summary["best"]["reward"] <= 100
    import pandas as pd

    table = pd.read_csv(tmp_path / "results.csv")
    assert {"val_accuracy", "train_loss", "epoch", "params"} <= set(table.columns)
    assert (table["epoch"] == 8).all()  # the final row is the last of the 8 epochs
    assert (tmp_path / "best_architecture.png").is_file()
    assert list((tmp_path / "search").glob("*/checkpoint_*"))  # per-epoch checkpoints were registered


def test_bench_runs_graphpnas_with_per_searcher_options(data_dir, capsys) -> None:  # noqa: ANN001
    from nas_ray.cli import main

    code = main(["bench", "--data-dir", str(data_dir), "--searcher", "graphpnas", "--searcher", "random", "--seeds", "1",
                 "--budget", "8", "--searcher-option", "graphpnas.epochs=1", "--searcher-option", "graphpnas.epsilon_steps=4",
                 "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "graphpnas" in out and "random" in out


def test_bench_labels_name_a_driver_that_runs_the_searcher(data_dir, capsys) -> None:  # noqa: ANN001
    from nas_ray.cli import main

    for label, why in (("random@rllib", "searcher 'random' runs under driver tune, not 'rllib'"),
                       ("graphpnas@nope", "unknown driver 'nope'")):
        assert main(["bench", "--data-dir", str(data_dir), "--searcher", "random", "--searcher", label, "--seeds", "1",
                     "--budget", "4", "--quiet"]) == 2
        assert why in capsys.readouterr().err
    assert main(["searchers"]) == 0
    assert "(drivers: tune, rllib)" in next(line for line in capsys.readouterr().out.splitlines() if line.startswith("graphpnas "))


@pytest.mark.slow
def test_bench_compares_both_drivers_of_graphpnas(data_dir, tmp_path, capsys) -> None:  # noqa: ANN001
    import json

    import ray

    from nas_ray.cli import main

    try:
        code = main(["bench", "--data-dir", str(data_dir), "--searcher", "graphpnas", "--searcher", "graphpnas@rllib",
                     "--seeds", "1", "--budget", "6", "--searcher-option", "graphpnas.epochs=1",
                     "--searcher-option", "graphpnas.epsilon_steps=3", "--quiet", "--no-reference", "--json", str(tmp_path / "b.json")])
    finally:
        ray.shutdown()
    assert code == 0
    data = json.loads((tmp_path / "b.json").read_text())
    assert set(data["summary"]) == {"graphpnas", "graphpnas@rllib"} and all(s["n"] == 1 for s in data["summary"].values())


@pytest.mark.slow
def test_rl_writes_the_search_results_files(data_dir, tmp_path, capsys) -> None:  # noqa: ANN001
    import ray

    out = tmp_path / "rl"
    try:
        code = main(["rl", "--evaluator", "table:nasbench201:cifar10", "--data-dir", str(data_dir), "--budget", "6",
                     "--option", "epochs=1", "--option", "epsilon_steps=3", "--output", str(out)])
    finally:
        ray.shutdown()
    assert code == 0
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[0].startswith("query,trial_id,searcher,seed,space,hash,arch,status,reward,wall_s")
    assert len(lines) == 7 and all(",graphpnas@rllib," in line for line in lines[1:])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["searcher"] == "graphpnas@rllib" and summary["evaluations"] == 6 and summary["backend"] == "rllib"
    assert (out / "best_so_far.png").is_file() and (out / "checkpoint" / "rllib_checkpoint.json").is_file()
    assert "graphpnas@rllib on nasbench201 (rllib backend): 6 evaluations" in capsys.readouterr().out

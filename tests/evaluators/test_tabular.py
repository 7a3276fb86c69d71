from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from nas_ray import Architecture, ArchitectureNotInTable, DataFileError, UnknownName, get_space
from nas_ray.evaluators import Evaluator, TabularEvaluator, load_enas6, load_nasbench101_subset, load_nasbench201

BEST = {
    "cifar10": ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|", 94.37),
    "cifar100": ("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|", 73.51),
    "imagenet16-120": ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", 47.31),
}
REPORTED = {"cifar10": "c10_test200", "cifar100": "c100_test200", "imagenet16-120": "in16_test200"}


@pytest.mark.parametrize("dataset", list(BEST))
def test_nb201_published_optima(data_dir: Path, dataset: str) -> None:
    ev = TabularEvaluator.nasbench201(dataset, data_dir=data_dir)
    col = REPORTED[dataset]
    values = ev.table.column(col)
    assert round(float(values.max()), 2) == BEST[dataset][1]
    # the optimum, looked up through an Architecture
    best_row = int(values.argmax())
    arch_str = next(k for k, i in ev.table.rows.items() if i == best_row)
    metrics = ev.evaluate(ev.space.from_native(arch_str))
    assert round(metrics[col], 2) == BEST[dataset][1]
    assert set(metrics) == {"reward", ev.reward, col}
    assert metrics["reward"] == metrics[ev.reward]


def test_nb201_reward_and_report_columns(data_dir: Path) -> None:
    ev = TabularEvaluator.nasbench201("cifar10", data_dir=data_dir)
    assert ev.reward == "c10_val12" and ev.report == ("c10_test200",)
    ev = TabularEvaluator.nasbench201(
        "cifar10", data_dir=data_dir, reward="c10_test200", report=["params_c10_M", "lat_pixel3_ms"]
    )
    arch = ev.space.from_native(BEST["cifar10"][0])
    metrics = ev.evaluate(arch)
    assert metrics["reward"] == pytest.approx(94.3733)
    assert 0 < metrics["params_c10_M"] < 2 and metrics["lat_pixel3_ms"] > 0
    with pytest.raises(UnknownName, match=r"table nasbench201 has no column 'c10_top1'; its columns: nb201_index"):
        TabularEvaluator.nasbench201("cifar10", data_dir=data_dir, reward="c10_top1")
    with pytest.raises(UnknownName, match=r"unknown NAS-Bench-201 dataset 'cifar-10'; datasets: cifar10"):
        TabularEvaluator.nasbench201("cifar-10", data_dir=data_dir)


def test_nb201_lookup_matches_the_csv(data_dir: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(data_dir / "nb201" / "nb201_accuracy.csv").sample(200, random_state=0)
    ev = TabularEvaluator.nasbench201("cifar100", data_dir=data_dir)
    for s, val, test in zip(frame["arch_str"], frame["c100_val200_naslib"], frame["c100_test200"]):
        m = ev.evaluate(ev.space.from_native(s))
        assert m["reward"] == val and m["c100_test200"] == test


def test_enas6_lookup(data_dir: Path) -> None:
    ev = TabularEvaluator.enas6(data_dir=data_dir)
    assert len(ev.table) == 19015
    assert ev.table.column("n_entries").sum() == 19020
    import json

    lines = (data_dir / "enas6" / "final_structures6.txt").read_text().splitlines()[1000:]
    entries = [json.loads(f"[{line}]") for line in lines]
    by_key: dict[str, list[float]] = {}
    for layers, acc in entries:
        by_key.setdefault(str(layers), []).append(acc)
    repeated = [k for k, v in by_key.items() if len(v) > 1]
    assert len(repeated) == 5
    for layers, _ in entries[:300] + [(json.loads(k), None) for k in repeated]:
        m = ev.evaluate(ev.space.from_native(layers))
        assert m["ws_val_acc"] == pytest.approx(np.mean(by_key[str(layers)]))
    assert 0.70 <= ev.table.column("ws_val_acc").min() and ev.table.column("ws_val_acc").max() <= 0.7502


def test_not_in_table_names_the_hash(data_dir: Path) -> None:
    ev = TabularEvaluator.enas6(data_dir=data_dir)
    rng = np.random.default_rng(0)
    arch = next(a for a in (ev.space.sample(rng) for _ in range(100)) if ev.space.hash(a) not in ev.table.rows)
    h = ev.space.hash(arch)
    with pytest.raises(ArchitectureNotInTable, match=rf"architecture {h} is not in the table .*final_structures6.txt") as info:
        ev.evaluate(arch)
    assert info.value.hash == h
    with pytest.raises(LookupError):
        ev.lookup("no-such-hash")


def test_nb101_subset(data_dir: Path) -> None:
    table = load_nasbench101_subset(data_dir)
    # 500 raw specs -> 301 distinct pruned graphs (55 rows the trivial input->output cell) -> 292 hashes
    assert len(table) == 292
    assert table.column("n_entries").sum() == 500
    space = get_space("nasbench101")
    trivial = space.hash(Architecture(["input", "output"], [[0, 1], [0, 0]]))
    assert table.column("n_entries")[table.rows[trivial]] == 55
    ev = TabularEvaluator.nasbench101_subset(data_dir=data_dir)
    # the first line of the file, as a raw 7x7 spec
    import pandas as pd

    row = pd.read_csv(data_dir / "nb101" / "nb101_naslib_subset500.csv", dtype=str).iloc[0]
    arch = Architecture(row["ops"].split("|"), np.array(list(row["adjacency_7x7_rowmajor"]), dtype=int).reshape(7, 7))
    m = ev.evaluate(arch)
    assert set(m) == {"reward", "val_acc_108ep_1seed", "params_M", "flops_M"}
    assert m["params_M"] == pytest.approx(float(row["params_M"]))


def test_from_name(data_dir: Path) -> None:
    assert TabularEvaluator.from_name("nasbench201:imagenet16-120", data_dir=data_dir).reward == "in16_val200_naslib"
    assert TabularEvaluator.from_name("enas6", data_dir=data_dir).reward == "ws_val_acc"
    with pytest.raises(UnknownName, match=r"unknown benchmark table 'nasbench301'"):
        TabularEvaluator.from_name("nasbench301", data_dir=data_dir)
    with pytest.raises(UnknownName, match=r"benchmark 'enas6' takes no dataset"):
        TabularEvaluator.from_name("enas6:cifar10", data_dir=data_dir)
    assert isinstance(TabularEvaluator.from_name("enas6", data_dir=data_dir), Evaluator)


# ------------------------------------------------------------------ data location and bad files
def test_data_dir_from_environment(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAS_RAY_DATA", str(data_dir))
    assert len(load_nasbench201()) == 15625
    monkeypatch.delenv("NAS_RAY_DATA")
    with pytest.raises(DataFileError, match=r"no benchmark data folder: pass data_dir \(CLI: --data-dir\) or set NAS_RAY_DATA"):
        load_nasbench201()


def test_missing_data(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"benchmark data folder .*nowhere does not exist"):
        load_nasbench201(tmp_path / "nowhere")
    with pytest.raises(DataFileError, match=r"NAS-Bench-201 table not found: looked for nb201/nb201_accuracy.csv and the NATS-Bench release"):
        load_nasbench201(tmp_path)


def _copy_nb201(data_dir: Path, tmp_path: Path, edit) -> Path:  # noqa: ANN001
    (tmp_path / "nb201").mkdir(parents=True)
    lines = (data_dir / "nb201" / "nb201_accuracy.csv").read_text().splitlines()
    edit(lines)
    (tmp_path / "nb201" / "nb201_accuracy.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_corrupt_nb201_value_names_the_line(data_dir: Path, tmp_path: Path) -> None:
    def corrupt(lines: list[str]) -> None:
        cells = lines[17].split(",")
        cells[3] = "9x.1"
        lines[17] = ",".join(cells)

    root = _copy_nb201(data_dir, tmp_path, corrupt)
    with pytest.raises(DataFileError, match=r"nb201_accuracy.csv line 18: column c10_test200 is not a number: '9x.1'"):
        load_nasbench201(root)


def test_nb201_missing_column_and_duplicates(data_dir: Path, tmp_path: Path) -> None:
    def drop_column(lines: list[str]) -> None:
        for i, line in enumerate(lines):
            lines[i] = ",".join(line.split(",")[:3])

    root = _copy_nb201(data_dir, tmp_path / "a", drop_column)
    with pytest.raises(DataFileError, match=r"missing column\(s\) c10_test200"):
        load_nasbench201(root)

    def duplicate(lines: list[str]) -> None:
        lines.append(lines[1])

    root = _copy_nb201(data_dir, tmp_path / "b", duplicate)
    with pytest.raises(DataFileError, match=r"line 2: arch_str .* appears twice"):
        load_nasbench201(root)


def test_corrupt_enas_line_names_the_line(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "enas6").mkdir()
    lines = (data_dir / "enas6" / "final_structures6.txt").read_text().splitlines()[:1200]
    lines[1104] = "[[1], [4, 0], [5, 0, 0]], 0.73"
    (tmp_path / "enas6" / "final_structures6.txt").write_text("\n".join(lines))
    with pytest.raises(DataFileError, match=r"final_structures6.txt line 1105: .*expected 6 layers, got 3"):
        load_enas6(tmp_path)
    lines[1104] = "__import__('os').system('true')"
    (tmp_path / "enas6" / "final_structures6.txt").write_text("\n".join(lines))
    with pytest.raises(DataFileError, match=r"line 1105: not an ENAS entry"):
        load_enas6(tmp_path)


def test_data_dir_may_point_at_the_file(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "my_nb201.csv"
    shutil.copy(data_dir / "nb201" / "nb201_accuracy.csv", target)
    table = load_nasbench201(target, with_costs=False)
    assert len(table) == 15625 and "zen_c10" not in table.columns


def test_official_nb101_tfrecord_through_the_evaluator(data_dir: Path, tmp_path: Path) -> None:
    """A file in the official format, holding the subset's cells under their NB101 hashes."""
    from test_nb101_records import frame, metric_values, record

    table = load_nasbench101_subset(data_dir)
    space = table.space
    blobs, expected = [], {}
    for c, arch in enumerate(table.archs[:40]):
        h = space.hash(arch)
        for repeat in range(3):
            values = metric_values(c, 108, repeat)
            blobs.append(frame(record(h, 108, np.asarray(arch.matrix), list(arch.ops), 1000 + c, values)))
        expected[h] = (arch, np.mean([metric_values(c, 108, r)[6] for r in range(3)]) * 100)
    path = tmp_path / "nasbench_only108.tfrecord"
    path.write_bytes(b"".join(blobs))
    ev = TabularEvaluator.nasbench101(path, cache_dir=tmp_path / "cache", progress=False)
    assert len(ev.table) == 40 and ev.reward == "val_acc"
    for arch, val in expected.values():
        m = ev.evaluate(arch)
        assert m["reward"] == pytest.approx(val) and m["params"] >= 1000
    # found under the data folder too, and a missing epoch budget is named
    ev2 = TabularEvaluator.from_name("nasbench101", data_dir=tmp_path, cache_dir=tmp_path / "cache", progress=False)
    assert len(ev2.table) == 40
    with pytest.raises(DataFileError, match=r"has no 36-epoch results \(epochs present: \[108\]\)"):
        TabularEvaluator.nasbench101(path, cache_dir=tmp_path / "cache", epochs=36, progress=False)

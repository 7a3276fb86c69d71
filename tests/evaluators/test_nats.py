"""The official NATS-Bench / NAS-Bench-201 release format, read through the ``nats_bench`` package.

The releases are gigabytes; these tests write small archives in the official format with the
package's own classes (``ArchResults``, ``ResultsCount``, ``pickle_save``), holding the numbers of
the CSV table for the cells they contain, and check that both formats give the same table,
evaluations and benchmark figures.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nas_ray.errors import DataFileError, MissingDependency
from nas_ray.evaluators import TabularEvaluator, load_nasbench201
from nas_ray.evaluators import nats, tables

pytest.importorskip("nats_bench", reason="the official-format tests need the nats_bench package (pip install nats_bench)")
from nats_release import write_release  # noqa: E402  (tests/nats_release.py)

OPTIMA = (6111, 9930, 857)  # the cells with the best test accuracy on CIFAR-10 / CIFAR-100 / ImageNet16-120


def _csv(data_dir: Path) -> pd.DataFrame:
    return pd.read_csv(data_dir / "nb201" / "nb201_accuracy.csv")


@pytest.fixture(autouse=True)
def _fresh_tables():  # noqa: ANN202
    tables._CACHE.clear()
    yield
    tables._CACHE.clear()


def _sample(frame: pd.DataFrame, n: int = 40) -> list[int]:
    rng = np.random.default_rng(0)
    return sorted({*OPTIMA, *rng.choice(len(frame), n, replace=False).tolist()})


@pytest.mark.parametrize("single_file", [False, True], ids=["fast-mode-folder", "single-file"])
def test_a_release_gives_the_csv_numbers_for_the_cells_it_holds(data_dir: Path, tmp_path: Path, single_file: bool) -> None:
    frame = _csv(data_dir)
    held = _sample(frame)
    release = write_release(tmp_path, frame, held, single_file=single_file)
    with pytest.warns(UserWarning, match=rf"holds the results of {len(held)} of the 15,625 cells"):
        table = load_nasbench201(path=release, with_costs=False, progress=False)
    reference = load_nasbench201(data_dir, with_costs=False)
    assert len(table) == len(held) and table.source == release
    assert set(table.columns) == set(reference.columns)
    for arch_str, row in table.rows.items():
        for col in table.columns:
            assert table.values[row, table.columns.index(col)] == pytest.approx(
                reference.values[reference.rows[arch_str], reference.columns.index(col)], abs=1e-9), (arch_str, col)


def test_evaluators_read_a_release_given_as_the_data_folder(data_dir: Path, tmp_path: Path) -> None:
    frame = _csv(data_dir)
    held = _sample(frame)
    release = write_release(tmp_path, frame, held)
    for dataset in ("cifar10", "cifar100", "imagenet16-120"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ev = TabularEvaluator.nasbench201(dataset, data_dir=release)  # the folder itself ...
            tables._CACHE.clear()
            beside = TabularEvaluator.nasbench201(dataset, data_dir=tmp_path)  # ... or the folder holding it
        csv = TabularEvaluator.nasbench201(dataset, data_dir=data_dir)
        assert ev.reward == csv.reward and ev.report == csv.report and beside.table.source == release
        for i in held:
            arch = ev.space.from_native(frame.arch_str[i])
            got, want = ev.evaluate(arch), csv.evaluate(arch)
            assert got.keys() == want.keys() and got == pytest.approx(want)


def test_the_conversion_is_cached(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _csv(data_dir)
    release = write_release(tmp_path, frame, OPTIMA)
    with pytest.warns(UserWarning):
        first = load_nasbench201(path=release, with_costs=False, progress=False)
    tables._CACHE.clear()

    def no_second_conversion(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("converted twice")

    monkeypatch.setattr(nats, "_convert", no_second_conversion)
    again = load_nasbench201(path=release, with_costs=False, progress=False)
    assert again.rows == first.rows and np.array_equal(again.values, first.values)


def test_errors_name_the_file(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _csv(data_dir)
    release = write_release(tmp_path / "ok", frame, OPTIMA)

    # a damaged cell file
    broken = write_release(tmp_path / "broken", frame, OPTIMA)
    (broken / "009930.pickle.pbz2").write_bytes(b"not bz2")
    with pytest.raises(DataFileError, match=r"009930\.pickle\.pbz2: cell 9930: "), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        load_nasbench201(path=broken, progress=False)

    # a cell whose accuracy is NaN
    nan_frame = frame.copy()
    nan_frame.loc[6111, "c100_test200"] = float("nan")
    nan_release = write_release(tmp_path / "nan", nan_frame, [6111])
    with pytest.raises(DataFileError, match=r"006111\.pickle\.pbz2: cell 6111: c100_test200 is not a finite number"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        load_nasbench201(path=nan_release, progress=False)

    # a cell list that is not the topology space
    short = write_release(tmp_path / "short", frame.head(100), [0])
    with pytest.raises(DataFileError, match=r"lists 100 cells, the topology space has 15625"):
        load_nasbench201(path=short, progress=False)

    # a folder that is no release, a path that does not exist
    with pytest.raises(DataFileError, match=r"is neither the NAS-Bench-201 CSV nor a NATS-Bench topology release"):
        load_nasbench201(path=tmp_path)
    with pytest.raises(DataFileError, match=r"NAS-Bench-201 table .*nowhere does not exist"):
        load_nasbench201(path=tmp_path / "nowhere")

    # without the package: one line saying what to install
    monkeypatch.setitem(sys.modules, "nats_bench", None)
    monkeypatch.setenv("NAS_RAY_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(MissingDependency, match=r"needs the nats_bench package: pip install 'nas-ray\[nats\]'") as info:
        load_nasbench201(path=release, progress=False)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_a_full_release_gives_the_same_bench_figures_as_the_csv(data_dir: Path, tmp_path: Path) -> None:
    """All 15,625 cells in the fast-mode format (~30 s to write and convert): `nas-ray bench` on the
    release equals `nas-ray bench` on the CSV, run for run."""
    from nas_ray.bench import run_bench

    frame = _csv(data_dir)
    release = write_release(tmp_path, frame, range(len(frame)))
    kwargs = {"dataset": "cifar100", "searchers": ("random", "evolution", "tpe"), "seeds": 3, "budget": 60,
              "progress": False}
    official = run_bench(data_dir=release, **kwargs)["json"]
    csv = run_bench(data_dir=data_dir, **kwargs)["json"]
    assert official["summary"].keys() == csv["summary"].keys()
    for name, row in csv["summary"].items():
        assert official["summary"][name]["mean"] == pytest.approx(row["mean"]), name
    assert [r["final"] for r in official["runs"]] == pytest.approx([r["final"] for r in csv["runs"]])

"""Writes NATS-Bench topology releases in the official format with the ``nats_bench`` package's own
classes, holding the numbers of nas-ray's NB201 CSV (for the format tests; no download)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from nats_bench.api_utils import ArchResults, ResultsCount, pickle_save

from nas_ray.evaluators import nats

SEEDS = (777, 888)  # two training runs per cell, half a point either side of the CSV's mean


def cell_results(row: pd.Series, hp: str, epochs: int = 2) -> ArchResults:
    """One cell's results for one training budget, as the release stores them: per dataset and
    seed a ``ResultsCount`` whose last epoch holds the CSV's accuracy (+-0.5 between the seeds)."""
    by_dataset: dict[str, dict[str, str]] = {
        "cifar10-valid": {"x-valid": "c10_val200_naslib" if hp == "200" else "c10_val12", "ori-test": "c10_test12"},
        "cifar10": {"ori-test": "c10_test200"},
        "cifar100": {"x-valid": "c100_val200_naslib" if hp == "200" else "c100_val12",
                     "x-test": "c100_test200" if hp == "200" else "c100_test12", "ori-test": "c100_test200"},
        "ImageNet16-120": {"x-valid": "in16_val200_naslib" if hp == "200" else "in16_val12",
                           "x-test": "in16_test200" if hp == "200" else "in16_test12", "ori-test": "in16_test200"},
    }
    params = {"cifar10-valid": "params_c10_M", "cifar10": "params_c10_M", "cifar100": "params_c100_M",
              "ImageNet16-120": "params_in16_M"}
    results = ArchResults(int(row.nb201_index), row.arch_str)
    for dataset, sets in by_dataset.items():
        for k, seed in enumerate(SEEDS):
            shift = 0.5 if k else -0.5
            count = ResultsCount(dataset, None, {e: 50.0 for e in range(epochs)}, {e: 1.0 for e in range(epochs)},
                                 float(row[params[dataset]]), 10.0, {"arch_str": row.arch_str, "channel": 16, "num_cells": 5},
                                 seed, epochs, None)
            accs = {f"{name}@{e}": (float(row[col]) + shift if e == epochs - 1 else 10.0) for name, col in sets.items()
                    for e in range(epochs)}
            count.update_eval(accs, {key: 1.0 for key in accs}, {key: 0.1 for key in accs})
            results.update(dataset, seed, count)
    return results


def write_release(folder: Path, frame: pd.DataFrame, indices, *, single_file: bool = False) -> Path:  # noqa: ANN001
    """The release at ``folder``: the fast-mode folder (default) or the single file, listing every
    cell of the space and holding the results of ``indices``."""
    meta_archs = frame.sort_values("nb201_index").arch_str.tolist()
    if single_file:
        infos = {int(i): {hp: cell_results(frame.iloc[int(i)], hp).state_dict() for hp in ("12", "200")} for i in indices}
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / nats.ARCHIVE_FILE
        pickle_save({"meta_archs": meta_archs, "arch2infos": infos, "evaluated_indexes": sorted(infos)},
                    str(path)[: -len(".pbz2")])
        return path
    path = folder / nats.ARCHIVE_DIR
    path.mkdir(parents=True)
    pickle_save({"meta_archs": meta_archs, "arch2infos": {}, "evaluated_indexes": []}, str(path / "meta.pickle"))
    for i in indices:
        pickle_save({hp: cell_results(frame.iloc[int(i)], hp).state_dict() for hp in ("12", "200")},
                    str(path / f"{int(i):06d}.pickle"))
    return path

"""Benchmark tables as ``Table``: one row per architecture hash, numeric columns.

Readers for the files of ``shared/data`` (see its SOURCES.md) and the official NAS-Bench-101
TFRecords. Every reader checks what it reads and raises ``DataFileError`` naming the file and line.
"""

from __future__ import annotations

import ast
import functools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nas_ray.data import find_data_file, resolve_data_dir
from nas_ray.errors import DataFileError, InvalidArchitecture
from nas_ray.graph import Architecture
from nas_ray.spaces import SearchSpace, get_space

NB201_FILE = "nb201/nb201_accuracy.csv"
NB201_COST_FILE = "nb201/nb201_zen_latency.csv"
ENAS6_FILE = "enas6/final_structures6.txt"
NB101_SUBSET_FILE = "nb101/nb101_naslib_subset500.csv"
ENAS6_BURN_IN = 1000  # D-VAE drops the controller's first 1,000 samples


@dataclass(frozen=True)
class Table:
    """A benchmark table: ``values[rows[hash]]`` are the metrics (``columns``) of one architecture.

    ``archs`` holds one representative architecture per row (in row order) where the file gives it.
    """

    name: str
    space: SearchSpace
    columns: tuple[str, ...]
    values: np.ndarray
    rows: dict[str, int]
    source: Path
    archs: list = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]


# ---------------------------------------------------------------------------------- helpers
_CACHE: dict[tuple, Table] = {}


def _memoized(read):  # noqa: ANN001, ANN202
    """Keep each table read once per process, keyed by the file's path, size, mtime and the options:
    evaluators for several datasets or seeds share one copy (its arrays are read-only)."""

    @functools.wraps(read)
    def wrapper(path: Path, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        st = path.stat()
        key = (read.__name__, str(path.resolve()), st.st_size, st.st_mtime_ns, args, tuple(sorted(kwargs.items())))
        if key not in _CACHE:
            table = read(path, *args, **kwargs)
            table.values.setflags(write=False)
            _CACHE[key] = table
        return _CACHE[key]

    return wrapper


def _read_csv(path: Path, required: Sequence[str], key: str):  # noqa: ANN202 - pandas.DataFrame
    """A CSV with numeric columns except ``key`` (and the other str columns in ``required``)."""
    import pandas as pd

    try:
        # keep_default_na=False: an empty or "NA" cell stays a string and is reported, not read as NaN
        frame = pd.read_csv(path, keep_default_na=False, dtype={key: str})
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataFileError(f"{path}: cannot be read as CSV: {str(exc).strip().splitlines()[0]}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataFileError(f"{path}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise DataFileError(f"{path}: has a header but no rows")
    empty = frame[key].astype(str) == ""
    if empty.any():
        raise DataFileError(f"{path} line {int(np.argmax(empty.to_numpy())) + 2}: empty {key}")
    return frame


def _shown(column: object) -> str:
    """A column name for a one-line message: as it is when printable, else quoted (a header can hold a newline)."""
    return column if isinstance(column, str) and column.isprintable() else repr(column)


def _numeric(frame, columns: Sequence[str], path: Path) -> np.ndarray:  # noqa: ANN001
    import pandas as pd

    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        if pd.api.types.is_numeric_dtype(frame[col]):
            out[:, j] = frame[col].to_numpy(dtype=np.float64)
            continue
        try:
            values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
        except OverflowError:  # pandas reads an integer beyond the float range as a Python int, which "coerce" misses
            big = float(np.finfo(np.float64).max)
            i = next((i for i, v in enumerate(frame[col]) if isinstance(v, int) and abs(v) > big), 0)
            raise DataFileError(f"{path} line {i + 2}: column {_shown(col)} holds an integer beyond the float range") from None
        bad = np.isnan(values)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataFileError(f"{path} line {i + 2}: column {_shown(col)} is not a number: {frame[col].iloc[i]!r}")
        out[:, j] = values
    infinite = ~np.isfinite(out)
    if infinite.any():  # "inf", "-inf" and numbers beyond the float range (1e400) parse as infinities
        i, j = np.argwhere(infinite)[0]
        raise DataFileError(f"{path} line {i + 2}: column {_shown(columns[j])} is not a finite number: {frame[columns[j]].iloc[i]!r}")
    return out


def _grouped(keys: Sequence[str], values: np.ndarray) -> tuple[dict[str, int], np.ndarray, np.ndarray, list[int]]:
    """Rows with equal keys merged by their mean; also returns each row's count and first position."""
    rows: dict[str, int] = {}
    first: list[int] = []
    for i, k in enumerate(keys):
        if k not in rows:
            rows[k] = len(rows)
            first.append(i)
    group = np.fromiter((rows[k] for k in keys), dtype=np.int64, count=len(keys))
    sums = np.zeros((len(rows), values.shape[1]))
    np.add.at(sums, group, values)
    counts = np.bincount(group, minlength=len(rows)).astype(np.float64)
    return rows, sums / counts[:, None], counts, first


# ---------------------------------------------------------------------------------- NAS-Bench-201
def load_nasbench201(data_dir: str | os.PathLike[str] | None = None, *, path: str | os.PathLike[str] | None = None,
                     with_costs: bool = True, progress: bool = True) -> Table:
    """All 15,625 NB201 cells, keyed by arch string, from nas-ray's CSV (``nb201/nb201_accuracy.csv``)
    or from the official NATS-Bench topology release (the fast-mode folder ``NATS-tss-v1_0-3ffb9-simple``
    or the file ``NATS-tss-v1_0-3ffb9.pickle.pbz2``; needs the ``nats_bench`` package), with the same
    columns either way. ``path`` names the file or folder; otherwise the data folder (``data_dir``,
    else ``$NAS_RAY_DATA``) may be the release itself, or hold the CSV (preferred) or the release.
    With ``with_costs``, the Zen-score and latency columns of ``nb201_zen_latency.csv`` beside it are
    joined in when that file is there. ``progress``: a bar while a release is converted (once; cached)."""
    from nas_ray.evaluators.nats import find_nats_archive, is_nats_archive

    if path is not None:
        source = Path(path).expanduser()
        if not source.exists():
            raise DataFileError(f"NAS-Bench-201 table {source} does not exist")
        if is_nats_archive(source):
            return _read_nats(source, with_costs, progress)
        if source.is_dir():
            raise DataFileError(f"{source} is neither the NAS-Bench-201 CSV nor a NATS-Bench topology release "
                                f"(a folder holding meta.pickle.pbz2)")
        return _read_nasbench201(source, with_costs)
    root = resolve_data_dir(data_dir)
    if is_nats_archive(root):
        return _read_nats(root, with_costs, progress)
    try:
        csv_path = find_data_file(NB201_FILE, root, what="NAS-Bench-201 table")
    except DataFileError:
        archive = find_nats_archive(root)
        if archive is None:
            raise DataFileError(f"NAS-Bench-201 table not found: looked for {NB201_FILE} and the NATS-Bench release "
                                f"NATS-tss-v1_0-3ffb9-simple under {root}") from None
        return _read_nats(archive, with_costs, progress)
    return _read_nasbench201(csv_path, with_costs)


@_memoized
def _read_nasbench201(path: Path, with_costs: bool) -> Table:
    frame = _read_csv(path, ["nb201_index", "arch_str", "c10_test200"], key="arch_str")
    columns = [c for c in frame.columns if c not in ("arch_str", "ops_naslib")]
    values = _numeric(frame, columns, path)
    keys = frame["arch_str"].tolist()
    space = get_space("nasbench201")
    for i, key in enumerate(keys):  # every key a cell of the space, in its official spelling (the row key)
        try:
            official = space.hash(space.from_native(key))
        except InvalidArchitecture as exc:
            raise DataFileError(f"{path} line {i + 2}: {exc}") from None
        if official != key:
            raise DataFileError(f"{path} line {i + 2}: arch_str {key!r} is not in the official form {official!r}")
    rows = {k: i for i, k in enumerate(keys)}
    if len(rows) != len(keys):
        dup = next(k for i, k in enumerate(keys) if rows[k] != i)
        raise DataFileError(f"{path} line {keys.index(dup) + 2}: arch_str {dup} appears twice")
    if with_costs:
        values, columns = _nb201_costs(values, columns, path.parent)
    return Table("nasbench201", space, tuple(columns), values, rows, path)


@_memoized
def _read_nats(path: Path, with_costs: bool, progress: bool) -> Table:
    from nas_ray.evaluators.nats import read_nats_topology

    keys, columns, values = read_nats_topology(path, progress=progress)
    columns = list(columns)
    space = get_space("nasbench201")
    for key in keys:
        try:
            official = space.hash(space.from_native(key))
        except InvalidArchitecture as exc:
            raise DataFileError(f"{path}: {exc}") from None
        if official != key:
            raise DataFileError(f"{path}: cell {key!r} is not in the official form {official!r}")
    if with_costs:
        values, columns = _nb201_costs(values, columns, path.parent)
    return Table("nasbench201", space, tuple(columns), values, {k: i for i, k in enumerate(keys)}, path)


def _nb201_costs(values: np.ndarray, columns: list[str], folder: Path) -> tuple[np.ndarray, list[str]]:
    """``values`` / ``columns`` with the cost table's columns joined by ``nb201_index``, when
    ``nb201_zen_latency.csv`` is in ``folder`` (or its ``nb201`` folder)."""
    try:
        cost_path = find_data_file(NB201_COST_FILE, folder, what="NAS-Bench-201 cost table")
    except DataFileError:
        return values, columns
    costs = _read_csv(cost_path, ["nb201_index"], key="nb201_index")
    cost_cols = [c for c in costs.columns if c not in ("nb201_index", "ops_naslib")]
    cost_values = _numeric(costs, ["nb201_index", *cost_cols], cost_path)
    order = np.full(len(values), -1, dtype=np.int64)
    position = {int(idx): i for i, idx in enumerate(values[:, columns.index("nb201_index")])}
    for i, idx in enumerate(cost_values[:, 0].astype(np.int64)):
        if int(idx) in position:
            order[position[int(idx)]] = i
    if (order < 0).any():
        raise DataFileError(f"{cost_path}: has no row for nb201_index {int(values[np.argmax(order < 0), columns.index('nb201_index')])}")
    return np.hstack([values, cost_values[order, 1:]]), columns + cost_cols


# ---------------------------------------------------------------------------------- ENAS-6
def parse_enas6(path: Path, space: SearchSpace | None = None) -> list[tuple[Architecture, float]]:
    """``[(arch, acc), ...]`` of D-VAE's ENAS file, every line checked (line numbers from 1).

    A line ``[[t0], [t1, b0], ...], acc`` is a Python literal; wrapped in brackets it is also JSON,
    which parses several times faster (``ast.literal_eval`` remains the fallback, never ``eval``)."""
    space = space or get_space("enas-macro", num_layers=6)
    entries = []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: cannot be read: {exc}") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            try:
                layers, acc = json.loads(f"[{line}]")
            except ValueError:
                layers, acc = ast.literal_eval(line)
            acc = float(acc)
            if not math.isfinite(acc):  # JSON's NaN / Infinity, or a number beyond the float range
                raise ValueError(f"the accuracy {acc} is not a finite number")
            entries.append((space.from_native(layers), acc))
        except (ValueError, SyntaxError, TypeError, OverflowError, MemoryError, RecursionError, InvalidArchitecture) as exc:
            raise DataFileError(f"{path} line {lineno}: not an ENAS entry '[[t0], [t1, b0], ...], acc': {exc}") from None
    if not entries:
        raise DataFileError(f"{path}: contains no entries")
    return entries


def load_enas6(data_dir: str | os.PathLike[str] | None = None, *, burn_in: int = ENAS6_BURN_IN) -> Table:
    """D-VAE's ENAS-6 table of weight-sharing validation accuracy (fraction) after ``burn_in`` lines;
    repeated architectures are merged by their mean (column ``n_entries`` counts them)."""
    path = find_data_file(ENAS6_FILE, data_dir, what="ENAS-6 table")
    return _read_enas6(path, burn_in)


@_memoized
def _read_enas6(path: Path, burn_in: int) -> Table:
    space = get_space("enas-macro", num_layers=6)
    entries = parse_enas6(path, space)[burn_in:]
    if not entries:
        raise DataFileError(f"{path}: no entries after the burn-in of {burn_in} lines")
    archs = [arch for arch, _ in entries]
    keys = [space.hash(a) for a in archs]
    rows, means, counts, first = _grouped(keys, np.array([[acc] for _, acc in entries]))
    values = np.hstack([means, counts[:, None]])
    return Table("enas6", space, ("ws_val_acc", "n_entries"), values, rows, path, [archs[i] for i in first])


def enas6_vae_split(data_dir: str | os.PathLike[str] | None = None, *, burn_in: int = ENAS6_BURN_IN, seed: int = 0,
                    train_fraction: float = 0.9) -> tuple[list[Architecture], np.ndarray, list[Architecture], np.ndarray]:
    """D-VAE's ENAS-6 split for graph-VAE training: every line after the burn-in (repeats kept,
    19,020 graphs), shuffled by ``random.Random(seed)`` as D-VAE does, then the first 90 % for
    training (17,118) and the rest for testing (1,902). Returns (train, train_acc, test, test_acc)."""
    import random

    path = find_data_file(ENAS6_FILE, data_dir, what="ENAS-6 table")
    entries = parse_enas6(path)[burn_in:]
    if not entries:
        raise DataFileError(f"{path}: no entries after the burn-in of {burn_in} lines")
    random.Random(seed).shuffle(entries)
    cut = int(len(entries) * train_fraction)
    train, test = entries[:cut], entries[cut:]
    return ([a for a, _ in train], np.array([y for _, y in train]), [a for a, _ in test], np.array([y for _, y in test]))


# ---------------------------------------------------------------------------------- NB101 subset
def load_nasbench101_subset(data_dir: str | os.PathLike[str] | None = None) -> Table:
    """NASLib's 500-spec NB101 sample, keyed by the official NB101 hash; specs that prune to the same
    cell are merged by their mean (``n_entries`` counts them). One training run per spec."""
    path = find_data_file(NB101_SUBSET_FILE, data_dir, what="NAS-Bench-101 subset table")
    return _read_nasbench101_subset(path)


@_memoized
def _read_nasbench101_subset(path: Path) -> Table:
    cols = ["val_acc_108ep_1seed", "params_M", "flops_M"]
    frame = _read_csv(path, ["adjacency_7x7_rowmajor", "ops", *cols], key="adjacency_7x7_rowmajor")
    values = _numeric(frame, cols, path)
    space = get_space("nasbench101")
    keys, archs = [], []
    for i, (adj, ops) in enumerate(zip(frame["adjacency_7x7_rowmajor"], frame["ops"])):
        try:
            if len(adj) != 49 or set(adj) - {"0", "1"}:
                raise InvalidArchitecture(f"adjacency must be 49 digits 0/1, got {adj!r}")
            if not isinstance(ops, str):  # pandas reads a column of numbers as numbers
                raise InvalidArchitecture(f"ops must be '|'-separated operation names, got {ops!r}")
            arch = space.canonicalize(Architecture(ops.split("|"), np.array(list(adj), dtype=np.int8).reshape(7, 7)))
        except InvalidArchitecture as exc:
            raise DataFileError(f"{path} line {i + 2}: {exc}") from None
        keys.append(space.hash(arch))
        archs.append(arch)
    rows, means, counts, first = _grouped(keys, values)
    return Table(
        "nasbench101-subset", space, (*cols, "n_entries"), np.hstack([means, counts[:, None]]), rows, path,
        [archs[i] for i in first],
    )


# ---------------------------------------------------------------------------------- NB101 official
NB101_COLUMNS = ("val_acc", "test_acc", "train_acc", "train_time_s", "params", "halfway_val_acc", "halfway_test_acc")


def load_nasbench101(
    path: str | os.PathLike[str] | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    epochs: int = 108,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> Table:
    """The official NB101 ``nasbench_only108.tfrecord`` / ``nasbench_full.tfrecord`` (no TensorFlow),
    cached to ``.npz`` on first load. Accuracies in percent, mean over the training repeats."""
    from nas_ray.evaluators.nb101_records import METRIC_FIELDS, read_nb101_tfrecord

    if path is None:
        try:
            file = find_data_file("nb101/nasbench_only108.tfrecord", data_dir, what="NAS-Bench-101 TFRecord")
        except DataFileError:
            file = find_data_file("nb101/nasbench_full.tfrecord", data_dir, what="NAS-Bench-101 TFRecord")
    else:
        file = Path(path)
        if not file.is_file():
            raise DataFileError(f"NAS-Bench-101 TFRecord {file} does not exist")
    records = read_nb101_tfrecord(file, cache_dir=cache_dir, progress=progress)
    where = np.nonzero(records.epochs == epochs)[0]
    if not len(where):
        raise DataFileError(f"{file}: has no {epochs}-epoch results (epochs present: {records.epochs.tolist()})")
    with np.errstate(invalid="ignore"):
        m = np.nanmean(records.metrics[:, int(where[0])], axis=1)  # (N, F): mean over repeats
    f = {name: m[:, i] for i, name in enumerate(METRIC_FIELDS)}
    values = np.stack(
        [
            100 * f["final_validation_accuracy"],
            100 * f["final_test_accuracy"],
            100 * f["final_train_accuracy"],
            f["final_training_time"],
            records.params.astype(np.float64),
            100 * f["halfway_validation_accuracy"],
            100 * f["halfway_test_accuracy"],
        ],
        axis=1,
    )
    bad = ~np.isfinite(values[:, :2])  # every cell needs a finite validation and test accuracy
    if bad.any():
        i = int(np.argwhere(bad)[0, 0])
        raise DataFileError(f"{file}: cell {records.hashes[i]} has no finite {NB101_COLUMNS[int(bad[i].argmax())]} at {epochs} epochs")
    rows = {h: i for i, h in enumerate(records.hashes.tolist())}
    return Table("nasbench101", get_space("nasbench101"), NB101_COLUMNS, values, rows, file)

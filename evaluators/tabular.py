"""Evaluators that look architectures up in a benchmark table: instant and reproducible."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas_ray.errors import ArchitectureNotInTable, ConfigError, DataFileError, UnknownName
from nas_ray.evaluators.base import Evaluator
from nas_ray.evaluators.tables import (
    Table,
    load_enas6,
    load_nasbench101,
    load_nasbench101_subset,
    load_nasbench201,
)
from nas_ray.graph import Architecture

#: built-in tables that cover part of their space -> the table-defined space of what they cover
COVERED_BY_SPACE = {"enas6": "enas6", "nasbench101-subset": "nasbench101-subset"}

# NB201 search protocol: the searcher sees the reward column, the reported number
# is the 200-epoch test accuracy (mean over seeds).
NB201_DATASETS = {
    "cifar10": ("c10_val12", ("c10_test200",)),
    "cifar100": ("c100_val200_naslib", ("c100_test200",)),
    "imagenet16-120": ("in16_val200_naslib", ("in16_test200",)),
}


class TabularEvaluator(Evaluator):
    """Score = a table lookup by the space's hash.

    ``evaluate`` returns ``{"reward": <reward column>, <reward column>: ..., <each reported column>: ...}``;
    an architecture not in the table raises ``ArchitectureNotInTable`` naming its hash.

    >>> ev = TabularEvaluator.nasbench201("cifar10", data_dir="../shared/data")  # doctest: +SKIP
    >>> ev.evaluate(ev.space.from_native("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"))  # doctest: +SKIP
    {'reward': 89.2, 'c10_val12': 89.2, 'c10_test200': 94.37}
    """

    def __init__(self, table: Table, reward: str, report: Sequence[str] = (), *, mode: str = "max",
                 dataset: str | None = None, key: Callable[[Architecture], Hashable] | None = None,
                 metric_scale: float | None = None) -> None:
        for col in (reward, *report):
            if col not in table.columns:
                raise UnknownName(f"table {table.name} has no column {col!r}; its columns: {', '.join(table.columns)}")
        if mode not in ("max", "min"):
            raise ConfigError(f"mode must be 'max' or 'min', got {mode!r}")
        self.table = table
        self.space = table.space
        self.reward = reward
        self.mode = mode
        self.report = tuple(c for c in dict.fromkeys(report) if c != reward)
        #: the image dataset the table's networks were trained on (what an exported network is sized for)
        self.dataset = dataset
        self._cols = [table.columns.index(c) for c in (reward, *self.report)]
        self._names = ("reward", reward, *self.report)
        #: the row key of an architecture (default: the space's hash, which the built-in tables use)
        self.key = key
        #: what 100 % is in the reward's units (percentages: 100; ENAS-6's weight-sharing fractions: 1)
        self.metric_scale = 100.0 if metric_scale is None else float(metric_scale)
        #: the column ``nas-ray bench`` reports for the best-reward architecture (a held-out accuracy;
        #: None: the first reported column, else the reward)
        self.benchmark_column: str | None = None

    def with_report(self, *columns: str) -> TabularEvaluator:
        """The same evaluator reporting ``columns`` too (e.g. a cost column for multi-objective search)."""
        other = TabularEvaluator(self.table, self.reward, (*self.report, *columns), mode=self.mode, dataset=self.dataset,
                                 key=self.key, metric_scale=self.metric_scale)
        other.space, other.benchmark_column = self.space, self.benchmark_column  # a table space it scores stays its space
        return other

    # ------------------------------------------------------------------ your own table
    @classmethod
    def from_table(
        cls,
        data: Any,
        *,
        space: Any,
        reward: str,
        report: Sequence[str] = (),
        key: Callable[[Architecture], Hashable] | None = None,
        key_column: str | None = None,
        mode: str = "max",
        metric_scale: float = 100.0,
        name: str | None = None,
        dataset: str | None = None,
    ) -> TabularEvaluator:
        """An evaluator over your own benchmark table, no subclass needed.

        ``data``: a pandas DataFrame, or the path of a CSV file (a header row) or a JSON file (an
        object ``{key: {column: value}}`` or a list of row objects). The row key is ``key_column``,
        else the DataFrame's index, a CSV's first column, or a JSON object's keys (a JSON list needs
        ``key_column``). ``key(arch)`` gives an architecture's row key (default: ``space.hash(arch)``;
        e.g. ``lambda a: "-".join(a.ops[1:-1])`` for a chain of layers). ``reward`` is the column the
        searchers optimise (``mode`` "max" or "min"), ``report`` columns are recorded beside it, and
        ``metric_scale`` says what 100 % is in the reward's units (100 for percentages, 1 for fractions).
        """
        import pandas as pd

        from nas_ray.evaluators.tables import Table
        from nas_ray.spaces import get_space

        space = get_space(space) if isinstance(space, str) else space
        frame, source = _read_frame(data, key_column)
        label = name or (Path(source).stem if source else "table")
        for col in (reward, *report):
            if col not in frame.columns:
                raise UnknownName(f"table {label} has no column {col!r}; its columns: {', '.join(map(str, frame.columns))}")
        numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
        for col in (reward, *report):
            if col not in numeric:
                raise ConfigError(f"table {label}: column {col!r} is not numeric (dtype {frame[col].dtype})")
        keys = [str(k) for k in frame.index]
        if len(set(keys)) != len(keys):
            seen: set[str] = set()
            dup = next(k for k in keys if k in seen or seen.add(k))
            raise ConfigError(f"table {label}: the row key {dup!r} appears more than once")
        if not keys:
            raise ConfigError(f"table {label} has no rows")
        values = frame[numeric].to_numpy(dtype=float)
        finite = np.isfinite(values[:, numeric.index(reward)])  # a NaN or infinite reward would win or lose every comparison
        if not finite.all():
            i = int(np.argmin(finite))
            what = f"row {keys[i]!r} has a non-finite {reward}: {values[i, numeric.index(reward)]}"
            if source is not None and Path(source).suffix.lower() == ".csv":
                raise DataFileError(f"{source} line {i + 2}: {what}")
            raise ConfigError(f"table {label}: {what}")
        values.setflags(write=False)
        table = Table(name=label, space=space, columns=tuple(map(str, numeric)), values=values,
                      rows={k: i for i, k in enumerate(keys)}, source=Path(source or f"<{label}>"))
        return cls(table, reward, report, mode=mode, dataset=dataset, key=key, metric_scale=metric_scale)

    # ------------------------------------------------------------------ benchmarks
    @classmethod
    def nasbench201(
        cls,
        dataset: str = "cifar10",
        *,
        data_dir: str | os.PathLike[str] | None = None,
        reward: str | None = None,
        report: Sequence[str] | None = None,
    ) -> TabularEvaluator:
        """NB201 on ``cifar10`` / ``cifar100`` / ``imagenet16-120`` with the protocol's reward and
        reported columns unless ``reward`` / ``report`` name others (any column of the table)."""
        if dataset not in NB201_DATASETS:
            raise UnknownName(f"unknown NAS-Bench-201 dataset {dataset!r}; datasets: {', '.join(NB201_DATASETS)}")
        default_reward, default_report = NB201_DATASETS[dataset]
        return cls(load_nasbench201(data_dir), reward or default_reward, default_report if report is None else report,
                   dataset=dataset)

    @classmethod
    def enas6(cls, *, data_dir: str | os.PathLike[str] | None = None, burn_in: int = 1000) -> TabularEvaluator:
        """ENAS-6 weight-sharing validation accuracy (fraction), D-VAE's table after its burn-in."""
        return cls(load_enas6(data_dir, burn_in=burn_in), "ws_val_acc", dataset="cifar10", metric_scale=1.0)

    @classmethod
    def nasbench101_subset(cls, *, data_dir: str | os.PathLike[str] | None = None) -> TabularEvaluator:
        """NASLib's 500-spec NB101 sample (one training run each; for tests, not search claims)."""
        ev = cls(load_nasbench101_subset(data_dir), "val_acc_108ep_1seed", ("params_M", "flops_M"), dataset="cifar10")
        ev.benchmark_column = ev.reward  # one training run, no held-out column: a benchmark reports the reward
        return ev

    @classmethod
    def nasbench101(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        epochs: int = 108,
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
    ) -> TabularEvaluator:
        """The official NB101 TFRecord (``path``, or ``nb101/nasbench_only108.tfrecord`` under the data
        folder): reward = mean validation accuracy over the repeats, test accuracy reported."""
        table = load_nasbench101(path, data_dir=data_dir, epochs=epochs, cache_dir=cache_dir, progress=progress)
        return cls(table, "val_acc", ("test_acc", "params", "train_time_s"), dataset="cifar10")

    @classmethod
    def from_name(cls, spec: str, **kwargs: Any) -> TabularEvaluator:
        """``"nasbench201:cifar100"``, ``"enas6"``, ``"nasbench101"``, ``"nasbench101-subset"``."""
        benchmark, _, dataset = spec.partition(":")
        # the built-in tables; those with a "dataset" parameter take ``table:<name>:<dataset>``
        makers = {"nasbench201": cls.nasbench201, "enas6": cls.enas6, "nasbench101": cls.nasbench101,
                  "nasbench101-subset": cls.nasbench101_subset}
        if benchmark not in makers:
            names = ", ".join(f"{n}[:dataset]" if _takes_dataset(m) else n for n, m in makers.items())
            raise UnknownName(f"unknown benchmark table {benchmark!r}; tables: {names}")
        maker = makers[benchmark]
        if dataset and not _takes_dataset(maker):
            raise UnknownName(f"benchmark {benchmark!r} takes no dataset, got {spec!r}")
        ev = maker(dataset, **kwargs) if dataset else maker(**kwargs)
        if benchmark in COVERED_BY_SPACE:  # a table that covers part of its space scores that part, a space of its own
            from nas_ray.spaces import get_space

            ev = ev.on_space(get_space(COVERED_BY_SPACE[benchmark], data_dir=kwargs.get("data_dir")))
        return ev

    # ------------------------------------------------------------------ evaluation
    def lookup(self, arch_hash: str) -> dict[str, float]:
        """Metrics of the architecture with this hash."""
        row = self.table.rows.get(arch_hash)
        if row is None:
            raise ArchitectureNotInTable(arch_hash, str(self.table.source))
        values = self.table.values[row, self._cols].tolist()
        return dict(zip(self._names, [values[0], *values]))

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        return self.lookup(self.space.hash(arch) if self.key is None else str(self.key(arch)))

    def best(self) -> tuple[str, dict[str, float]]:
        """The table's best entry by reward, with its metrics."""
        col = self.table.column(self.reward)
        row = int(col.argmax() if self.mode == "max" else col.argmin())
        key = next(k for k, i in self.table.rows.items() if i == row)
        return key, self.lookup(key)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "table": str(self.table.source), "reward_column": self.reward, "report": list(self.report),
                "dataset": self.dataset}


def _read_frame(data: Any, key_column: str | None) -> tuple[Any, str | None]:
    """``data`` as a DataFrame indexed by the row key, and the file it came from (None for a frame)."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame, source = data, None
        if key_column is not None:
            if key_column not in frame.columns:
                raise UnknownName(f"the table has no key column {key_column!r}; its columns: {', '.join(map(str, frame.columns))}")
            frame = frame.set_index(key_column)
        return frame, source
    if not isinstance(data, (str, os.PathLike)):
        raise ConfigError(f"a table is a pandas DataFrame or the path of a CSV or JSON file, got {type(data).__name__}")
    path = Path(data).expanduser()
    if not path.is_file():
        raise DataFileError(f"table file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
            column = key_column or str(frame.columns[0])
        elif suffix == ".json":
            raw = json.loads(path.read_text())
            if isinstance(raw, dict):
                frame = pd.DataFrame.from_dict(raw, orient="index")
                column = key_column
            elif isinstance(raw, list):
                frame = pd.DataFrame(raw)
                if key_column is None:
                    raise ConfigError(f"{path}: a JSON list of rows needs key_column (the field that names each row)")
                column = key_column
            else:
                raise ConfigError(f"{path}: JSON table must be an object of rows or a list of rows, got {type(raw).__name__}")
        else:
            raise ConfigError(f"{path}: a table file must be .csv or .json, got {suffix or 'no suffix'}")
    except (json.JSONDecodeError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: not a readable table ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if column is not None:
        if column not in frame.columns:
            raise UnknownName(f"{path} has no key column {column!r}; its columns: {', '.join(map(str, frame.columns))}")
        frame = frame.set_index(column)
    return frame, str(path)


def _takes_dataset(maker: Callable[..., Any]) -> bool:
    import inspect

    return "dataset" in inspect.signature(maker).parameters

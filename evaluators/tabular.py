"""Evaluators that look architectures up in a benchmark table: instant and reproducible."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from nas_ray.errors import ArchitectureNotInTable, ConfigError, UnknownName
from nas_ray.evaluators.base import Evaluator
from nas_ray.evaluators.tables import (
    Table,
    load_enas6,
    load_nasbench101,
    load_nasbench101_subset,
    load_nasbench201,
)
from nas_ray.graph import Architecture

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
                 dataset: str | None = None) -> None:
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
        # every table's accuracies are percentages except ENAS-6's weight-sharing fractions
        self.metric_scale = 1.0 if table.name == "enas6" else 100.0

    def with_report(self, *columns: str) -> TabularEvaluator:
        """The same evaluator reporting ``columns`` too (e.g. a cost column for multi-objective search)."""
        return TabularEvaluator(self.table, self.reward, (*self.report, *columns), mode=self.mode, dataset=self.dataset)

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
        return cls(load_enas6(data_dir, burn_in=burn_in), "ws_val_acc", dataset="cifar10")

    @classmethod
    def nasbench101_subset(cls, *, data_dir: str | os.PathLike[str] | None = None) -> TabularEvaluator:
        """NASLib's 500-spec NB101 sample (one training run each; for tests, not search claims)."""
        return cls(load_nasbench101_subset(data_dir), "val_acc_108ep_1seed", ("params_M", "flops_M"), dataset="cifar10")

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
        if benchmark == "nasbench201":
            return cls.nasbench201(dataset or "cifar10", **kwargs)
        if dataset:
            raise UnknownName(f"benchmark {benchmark!r} takes no dataset, got {spec!r}")
        makers = {"enas6": cls.enas6, "nasbench101": cls.nasbench101, "nasbench101-subset": cls.nasbench101_subset}
        if benchmark not in makers:
            raise UnknownName(
                f"unknown benchmark table {benchmark!r}; tables: nasbench201[:dataset], {', '.join(makers)}"
            )
        return makers[benchmark](**kwargs)

    # ------------------------------------------------------------------ evaluation
    def lookup(self, arch_hash: str) -> dict[str, float]:
        """Metrics of the architecture with this hash."""
        row = self.table.rows.get(arch_hash)
        if row is None:
            raise ArchitectureNotInTable(arch_hash, str(self.table.source))
        values = self.table.values[row, self._cols].tolist()
        return dict(zip(self._names, [values[0], *values]))

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        return self.lookup(self.space.hash(arch))

    def best(self) -> tuple[str, dict[str, float]]:
        """The table's best entry by reward, with its metrics."""
        col = self.table.column(self.reward)
        row = int(col.argmax() if self.mode == "max" else col.argmin())
        key = next(k for k, i in self.table.rows.items() if i == row)
        return key, self.lookup(key)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "table": str(self.table.source), "reward_column": self.reward, "report": list(self.report),
                "dataset": self.dataset}

"""Evaluators named by a short spec string, as the CLI and configs name them.

- ``table:<benchmark>[:<dataset>]`` — a benchmark table, e.g. ``table:nasbench201:cifar100``,
  ``table:enas6``, ``table:nasbench101`` (official TFRecord), ``table:nasbench101-subset``;
- ``train:digits`` — NAS-Bench-101 cells trained on scikit-learn's digits images (CPU or GPU).
"""

from __future__ import annotations

import os
from typing import Any

from nas_ray.errors import UnknownName
from nas_ray.evaluators.base import Evaluator

TRAINING = {"digits": "nas_ray.evaluators.training:DigitsEvaluator"}
EXAMPLES = ("table:nasbench201:cifar10", "table:nasbench201:cifar100", "table:nasbench201:imagenet16-120",
            "table:enas6", "table:nasbench101", "table:nasbench101-subset", "train:digits")


def get_evaluator(spec: str, *, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> Evaluator:
    """The evaluator named by ``spec`` (see the module doc); ``options`` go to its constructor."""
    if isinstance(spec, Evaluator):
        return spec
    kind, _, rest = str(spec).partition(":")
    if kind == "table" and rest:
        from nas_ray.evaluators.tabular import TabularEvaluator

        return TabularEvaluator.from_name(rest, data_dir=data_dir, **options)
    if kind == "train" and rest in TRAINING:
        import importlib

        module, _, attr = TRAINING[rest].partition(":")
        return getattr(importlib.import_module(module), attr)(**options)
    raise UnknownName(f"unknown evaluator {spec!r}; for example: {', '.join(EXAMPLES)}")

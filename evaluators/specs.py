"""Evaluators named by a short spec string, as the CLI and configs name them.

- ``table:<benchmark>[:<dataset>]`` — a benchmark table, e.g. ``table:nasbench201:cifar100``,
  ``table:enas6``, ``table:nasbench101`` (official TFRecord), ``table:nasbench101-subset``;
- ``train:<dataset>`` — the networks of a space trained on ``digits`` (scikit-learn's bundled images),
  ``cifar10`` or ``cifar100`` (their binary files under ``data_dir``); options choose the space
  (``space="nasbench201"``, default NAS-Bench-101), the network (``preset``, its fields), the data
  (``train_fraction`` for low-data training, ``val_size``) and the training (``TrainingConfig`` fields);
- ``supernet:enas-macro`` — ENAS macro architectures scored by a weight-sharing supernet that a Ray
  actor trains (``SupernetConfig`` fields as options);
- ``surrogate:<checkpoint>`` — predicted, not measured: a performance predictor trained by
  ``nas-ray train-predictor`` (its space; ``device`` as an option).
"""

from __future__ import annotations

import os
from typing import Any

from nas_ray.errors import UnknownName
from nas_ray.evaluators.base import Evaluator

TRAINING = ("digits", "cifar10", "cifar100")
EXAMPLES = ("table:nasbench201:cifar10", "table:nasbench201:cifar100", "table:nasbench201:imagenet16-120",
            "table:enas6", "table:nasbench101", "table:nasbench101-subset", "train:digits", "train:cifar10",
            "train:cifar100", "supernet:enas-macro", "surrogate:PREDICTOR.pt")


def get_evaluator(spec: str, *, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> Evaluator:
    """The evaluator named by ``spec`` (see the module doc); ``options`` go to its constructor."""
    if isinstance(spec, Evaluator):
        return spec
    kind, _, rest = str(spec).partition(":")
    if kind == "table" and rest:
        from nas_ray.evaluators.tabular import TabularEvaluator

        return TabularEvaluator.from_name(rest, data_dir=data_dir, **options)
    if kind == "train" and rest in TRAINING:
        from nas_ray.evaluators.training import DigitsEvaluator, ImageTrainingEvaluator

        space = options.get("space", "nasbench101")
        if rest == "digits" and getattr(space, "name", space) == "nasbench101" and "preset" not in options:
            options.pop("space", None)
            return DigitsEvaluator(**options)
        return ImageTrainingEvaluator(rest, data_dir=data_dir, **options)
    if kind == "supernet" and rest == "enas-macro":
        from nas_ray.evaluators.supernet import SupernetEvaluator

        return SupernetEvaluator(data_dir=data_dir, **options)
    if kind == "surrogate" and rest:
        from nas_ray.evaluators.surrogate import SurrogateEvaluator

        return SurrogateEvaluator(rest, **options)
    raise UnknownName(f"unknown evaluator {spec!r}; for example: {', '.join(EXAMPLES)}")

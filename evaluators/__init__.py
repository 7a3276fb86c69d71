"""What scores an architecture (``nas_ray.evaluators``).

>>> from nas_ray.evaluators import TabularEvaluator
>>> ev = TabularEvaluator.nasbench201("cifar100", data_dir="../shared/data")  # doctest: +SKIP
"""

from nas_ray.errors import ArchitectureNotInTable
from nas_ray.evaluators.base import Evaluator, Step
from nas_ray.evaluators.specs import evaluator_kinds, get_evaluator, register_evaluator
from nas_ray.evaluators.tables import Table, load_enas6, load_nasbench101, load_nasbench101_subset, load_nasbench201
from nas_ray.evaluators.tabular import NB201_DATASETS, TabularEvaluator
# training.py imports torch / scikit-learn / nasbench-pytorch only inside its functions
from nas_ray.evaluators.training import (
    DigitsEvaluator,
    ImageTrainingEvaluator,
    TrainingConfig,
    TrainingEvaluator,
    digits_tensors,
    nasbench101_network,
    nasbench101_parameter_count,
)

# modules that import torch at their top are loaded on first use of one of their names
_LAZY = {
    "build_network": "nas_ray.evaluators.networks",
    "network_options": "nas_ray.evaluators.networks",
    "parameter_count": "nas_ray.evaluators.networks",
    "PRESETS": "nas_ray.evaluators.networks",
    "load_dataset": "nas_ray.evaluators.datasets",
    "ImageData": "nas_ray.evaluators.datasets",
    "augment_batch": "nas_ray.evaluators.datasets",
    "SupernetEvaluator": "nas_ray.evaluators.supernet",
    "SupernetTrainer": "nas_ray.evaluators.supernet",
    "SupernetConfig": "nas_ray.evaluators.supernet",
}


def __getattr__(name: str):  # noqa: ANN202
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nas_ray.evaluators' has no attribute {name!r}")


__all__ = [
    *_LAZY,
    "Evaluator",
    "get_evaluator",
    "register_evaluator",
    "evaluator_kinds",
    "ImageTrainingEvaluator",
    "Step",
    "TabularEvaluator",
    "TrainingEvaluator",
    "TrainingConfig",
    "DigitsEvaluator",
    "digits_tensors",
    "nasbench101_network",
    "nasbench101_parameter_count",
    "Table",
    "ArchitectureNotInTable",
    "NB201_DATASETS",
    "load_nasbench201",
    "load_enas6",
    "load_nasbench101_subset",
    "load_nasbench101",
]

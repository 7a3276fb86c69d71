"""What scores an architecture (``nas_ray.evaluators``).

>>> from nas_ray.evaluators import TabularEvaluator
>>> ev = TabularEvaluator.nasbench201("cifar100", data_dir="../shared/data")  # doctest: +SKIP
"""

from nas_ray.errors import ArchitectureNotInTable
from nas_ray.evaluators.base import Evaluator, Step
from nas_ray.evaluators.tables import Table, load_enas6, load_nasbench101, load_nasbench101_subset, load_nasbench201
from nas_ray.evaluators.tabular import NB201_DATASETS, TabularEvaluator
# training.py imports torch / scikit-learn / nasbench-pytorch only inside its functions
from nas_ray.evaluators.training import (
    DigitsEvaluator,
    TrainingConfig,
    TrainingEvaluator,
    digits_tensors,
    nasbench101_network,
    nasbench101_parameter_count,
)

__all__ = [
    "Evaluator",
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

"""Evaluators named by a spec string ``KIND[:ARGUMENT]``, as the CLI and configs name them.

Each kind is registered with a factory that parses its own argument. The built-in kinds:

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

Your own kind, from your code (``nas-ray --import my_module.py`` runs it before the search)::

    from nas_ray import register_evaluator
    from nas_ray.evaluators import TabularEvaluator

    register_evaluator("my-table", lambda arg, data_dir=None, **options: TabularEvaluator.from_table(
        "my_table.csv", space="my-space", reward="val_acc", report=["test_acc"], **options),
        help="my-table: my benchmark's validation accuracy")

An ``Evaluator`` subclass registers directly: ``register_evaluator("my-eval", MyEvaluator)`` builds it
with the spec's options (and ``data_dir`` when its constructor takes one).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas_ray.errors import ConfigError, ConfigTypeError, UnknownName
from nas_ray.evaluators.base import Evaluator

TRAINING = ("digits", "cifar10", "cifar100")

#: ``factory(argument, data_dir=..., **options) -> Evaluator``; ``argument`` is what follows ``KIND:`` ("" if nothing)
Factory = Callable[..., Evaluator]


@dataclass(frozen=True)
class EvaluatorKind:
    """One registered kind of evaluator spec."""

    name: str
    factory: Factory
    help: str
    examples: tuple[str, ...] = ()
    takes_argument: bool | None = None  # True: KIND:ARG required; False: none allowed; None: optional


_KINDS: dict[str, EvaluatorKind] = {}


def register_evaluator(name: str, factory: Factory | type[Evaluator], *, help: str = "", examples: tuple[str, ...] | list[str] = (),  # noqa: A002
                       argument: bool | None = None, overwrite: bool = False) -> None:
    """Register an evaluator kind: ``name`` (no colon) is the spec's ``KIND``; ``factory`` is a callable
    ``factory(argument, data_dir=None, **options)`` or an ``Evaluator`` subclass (built with the
    options; it takes no argument). ``help`` is the line ``nas-ray evaluators`` and the CLI's help
    show; ``argument``: True if ``KIND:ARGUMENT`` needs one, False if it takes none, None if optional."""
    if not isinstance(name, str) or not name or ":" in name or name != name.strip():
        raise ConfigError(f"an evaluator kind must be a non-empty name without ':' or spaces around it, got {name!r}")
    if name in _KINDS and not overwrite:
        raise ConfigError(f"an evaluator kind named {name!r} is already registered (pass overwrite=True to replace it)")
    takes_argument = argument
    if inspect.isclass(factory):
        if not issubclass(factory, Evaluator):
            raise ConfigTypeError(f"registering evaluator {name!r} needs a factory function or an Evaluator subclass, got {factory!r}")
        if argument:
            raise ConfigError(f"evaluator {name!r}: an Evaluator subclass takes no ':ARGUMENT'; register a factory function for one")
        factory, takes_argument = _class_factory(factory), False
    elif not callable(factory):
        raise ConfigTypeError(f"registering evaluator {name!r} needs a factory function or an Evaluator subclass, got {factory!r}")
    line = help or _first_line(factory) or name
    _KINDS[name] = EvaluatorKind(name, factory, line, tuple(examples) or (name,), takes_argument)


def _class_factory(cls: type[Evaluator]) -> Factory:
    from nas_ray.registry import _options

    takes = _options(cls)  # None: unknown (**kwargs all the way up)

    def build(argument: str, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> Evaluator:
        if takes is not None:
            unknown = [k for k in options if k not in takes]
            if unknown:
                raise ConfigError(f"evaluator {cls.__name__} has no option {unknown[0]!r}; its options: {', '.join(takes) or 'none'}")
        if takes is None or "data_dir" in takes:
            options["data_dir"] = data_dir
        return cls(**options)

    build.__doc__ = cls.__doc__
    return build


def _first_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def evaluator_kinds() -> list[EvaluatorKind]:
    """The registered kinds, built-ins first, then the user's in registration order."""
    return list(_KINDS.values())


def evaluator_examples() -> list[str]:
    return [e for kind in _KINDS.values() for e in kind.examples]


def get_evaluator(spec: str | Evaluator, *, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> Evaluator:
    """The evaluator named by ``spec`` (``KIND[:ARGUMENT]``, see the module doc); ``options`` go to its factory."""
    if isinstance(spec, Evaluator):
        return spec
    if not isinstance(spec, str) or not spec:
        raise ConfigTypeError(f"an evaluator is a spec string such as table:nasbench201:cifar10 or an Evaluator, got {spec!r}")
    kind_name, colon, argument = spec.partition(":")
    kind = _KINDS.get(kind_name)
    if kind is None:
        raise UnknownName(f"unknown evaluator {spec!r}; for example: {', '.join(evaluator_examples())}")
    if kind.takes_argument is False and colon:
        raise ConfigError(f"evaluator {kind_name!r} takes no ':ARGUMENT', got {spec!r}")
    if kind.takes_argument and not argument:
        raise UnknownName(f"unknown evaluator {spec!r}: {kind_name} needs an argument, for example: {', '.join(kind.examples)}")
    evaluator = kind.factory(argument, data_dir=data_dir, **options)
    if not isinstance(evaluator, Evaluator):
        raise ConfigTypeError(f"evaluator kind {kind_name!r} returned {type(evaluator).__name__}, not an Evaluator")
    return evaluator


# ---------------------------------------------------------------------------------- built-ins
def _table(argument: str, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> Evaluator:
    from nas_ray.evaluators.tabular import TabularEvaluator

    return TabularEvaluator.from_name(argument, data_dir=data_dir, **options)


def _train(argument: str, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> Evaluator:
    from nas_ray.evaluators.training import ImageTrainingEvaluator

    if argument not in TRAINING:
        raise UnknownName(f"unknown evaluator 'train:{argument}': no training dataset {argument!r}; datasets: {', '.join(TRAINING)}")
    # the space's registered networks, sized for the dataset (register_network's dataset_presets)
    return ImageTrainingEvaluator(argument, data_dir=data_dir, **options)


def _supernet(argument: str, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> Evaluator:
    from nas_ray.evaluators.supernet import SupernetEvaluator

    return SupernetEvaluator.from_spec(argument, data_dir=data_dir, **options)


def _surrogate(argument: str, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> Evaluator:
    from nas_ray.evaluators.surrogate import SurrogateEvaluator

    return SurrogateEvaluator(argument, **options)


register_evaluator("table", _table, argument=True, help="table:<benchmark>[:<dataset>] - a benchmark table (instant, reproducible)",
                   examples=("table:nasbench201:cifar10", "table:nasbench201:cifar100", "table:nasbench201:imagenet16-120",
                             "table:enas6", "table:nasbench101", "table:nasbench101-subset"))
register_evaluator("train", _train, argument=True, help="train:<dataset> - train each network: digits, cifar10 or cifar100",
                   examples=("train:digits", "train:cifar10", "train:cifar100"))
register_evaluator("supernet", _supernet, argument=True, help="supernet:enas-macro - a weight-sharing supernet trained by a Ray actor",
                   examples=("supernet:enas-macro",))
register_evaluator("surrogate", _surrogate, argument=True, help="surrogate:<checkpoint> - a predictor from nas-ray train-predictor (predicted, not measured)",
                   examples=("surrogate:PREDICTOR.pt",))

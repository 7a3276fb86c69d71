"""One definition of a search's settings.

``SearchConfig`` is what ``run()`` takes (as the object or as keywords), what ``nas-ray search``'s
flags and YAML keys set (each field's flag and help come from here), what a Tune search writes to
``run.json`` and what ``nas-ray resume`` rebuilds; ``nas-ray rl`` shares its fields for what the two
have in common. ``SearchConfig.main_job()`` is what ``nas-ray search`` runs with no arguments.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from nas_ray.errors import ConfigError

BACKENDS = ("local", "tune")
#: how the searcher is driven: Ray Tune's Searcher API (on either backend) or an RLlib algorithm
DRIVERS = ("tune", "rllib")
SCHEDULERS = (None, "asha")


def _opt(default: Any, help: str, *, flag: str | None = None, kind: str = "value", type: Any = None,  # noqa: A002
         choices: tuple | None = None, metavar: str | None = None, cli: bool = True) -> Any:
    """A field with its CLI description: ``kind`` "value" (one value), "key_values" (repeatable
    KEY=VALUE into a dict), "append" (repeatable, into a list) or "switch" (a flag without a value)."""
    meta = {"help": help, "flag": flag, "kind": kind, "type": type, "choices": choices, "metavar": metavar, "cli": cli}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda d=default: type_of(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def type_of(value: Any) -> type:
    return dict if isinstance(value, dict) else list


@dataclass
class SearchConfig:
    """The settings of one search (see ``nas_ray.search.run`` for what each does)."""

    evaluator: Any = _opt(None, "KIND[:ARGUMENT] (see `nas-ray evaluators`), or an Evaluator object in Python")
    searcher: Any = _opt("evolution", "registered name or module:Class (see `nas-ray searchers`), or a searcher object")
    space: Any = _opt(None, "search space (default: the evaluator's); see `nas-ray spaces`")
    budget: int = _opt(100, "unique architectures to evaluate", type=int)
    seed: int = _opt(0, "searcher seed", type=int)
    backend: str = _opt("local", "tune (a Ray Tune trial per evaluation) or local (in this process, no Ray)", choices=BACKENDS)
    driver: str = _opt("tune", "tune: the searcher proposes through Ray Tune's Searcher API (either backend); rllib: "
                       "GraphPNAS trained as an RLlib algorithm (searcher graphpnas; evaluations in this process)",
                       choices=DRIVERS)
    max_concurrent: int = _opt(1, "trials at a time", type=int)
    output: str | None = _opt(None, "results folder")
    data_dir: str | None = _opt(None, "benchmark data folder (default $NAS_RAY_DATA)")
    address: str | None = _opt(None, "join a Ray cluster: auto (inside ray submit) or ray://host:10001")
    cpus_per_trial: float | None = _opt(None, "CPUs per Tune trial", type=float)
    gpus_per_trial: float | None = _opt(None, "fractions pack trials onto one card (0.5: two per GPU)", type=float)
    max_failures: int = _opt(0, "retries of a failed trial, from its last epoch", type=int)
    scheduler: str | None = _opt(None, "asha: stop trials that trail at epochs 1, 3, 9, ...", choices=("asha",))
    evaluator_options: dict = _opt({}, "an evaluator option, e.g. epochs=4, space=nasbench201, train_fraction=0.1",
                                   flag="--evaluator-option", kind="key_values", metavar="KEY=VALUE")
    searcher_options: dict = _opt({}, "a searcher option, e.g. population_size=10", flag="--searcher-option",
                                  kind="key_values", metavar="KEY=VALUE")
    space_options: dict = _opt({}, "a space option, e.g. num_layers=12", flag="--space-option", kind="key_values",
                               metavar="KEY=VALUE")
    cost: str | None = _opt(None, "multi-objective: a cost metric to trade against accuracy, e.g. params, macs "
                            "(training evaluators) or a table column such as params_c10_M, lat_pixel3_ms")
    lam: float = _opt(0.02, "the efficiency score's lambda: acc - lam*ln(cost), acc as a fraction", type=float)
    pareto: bool = _opt(False, "search for the non-dominated set (nasgem models both objectives; others use the score)",
                        kind="switch")
    imports: list = _opt([], "import a module or .py file that registers your own spaces, searchers or evaluators",
                         flag="--import", kind="append", metavar="MODULE")
    name: str = _opt("search", "the Tune experiment's name (its folder under output)", cli=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def main_job(cls) -> SearchConfig:
        """What ``nas-ray search`` runs with no arguments: NAS-Bench-101 cells trained on scikit-learn's
        digits, regularized evolution, 24 trainings two at a time on a local Ray (about 3 minutes)."""
        return cls(evaluator="train:digits", budget=24, backend="tune", max_concurrent=2)

    def replace(self, **changes: Any) -> SearchConfig:
        """A copy with ``changes``; an unknown name is a one-line error listing the options."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"search has no option {unknown[0]!r}; its options: {', '.join(sorted(known))}")
        return replace(self, **changes)

    def validate(self) -> SearchConfig:
        """Check every setting (raises ``ConfigError`` naming the first bad one); returns self."""
        if self.evaluator is None:
            raise ConfigError("a search needs an evaluator, e.g. evaluator='table:nasbench201:cifar10'")
        if isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget <= 0:
            raise ConfigError(f"budget must be a positive integer, got {self.budget!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        if self.driver not in DRIVERS:
            raise ConfigError(f"unknown driver {self.driver!r}; drivers: {', '.join(DRIVERS)}")
        if self.driver != "tune":
            check_driver(self.searcher, self.driver)
        if self.driver == "rllib" and (self.scheduler is not None or self.cost is not None):
            raise ConfigError("driver 'rllib' takes no scheduler or cost (run GraphPNAS with driver 'tune' for those)")
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; backends: {', '.join(BACKENDS)}")
        if isinstance(self.max_concurrent, bool) or not isinstance(self.max_concurrent, int) or self.max_concurrent < 1:
            raise ConfigError(f"max_concurrent must be a positive int, got {self.max_concurrent!r}")
        if isinstance(self.max_failures, bool) or not isinstance(self.max_failures, int) or self.max_failures < 0:
            raise ConfigError(f"max_failures must be an int >= 0, got {self.max_failures!r}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"unknown scheduler {self.scheduler!r}; schedulers: {', '.join(str(s) for s in SCHEDULERS)}")
        if self.scheduler is not None and self.backend != "tune":
            raise ConfigError(f"scheduler {self.scheduler!r} needs backend='tune' (the local backend runs every trial to the end)")
        for key in ("cpus_per_trial", "gpus_per_trial"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0):
                raise ConfigError(f"{key} must be a number >= 0, got {value!r}")
        try:
            lam = float(self.lam)
        except (TypeError, ValueError):
            raise ConfigError(f"lam must be a number, got {self.lam!r}") from None
        if isinstance(self.lam, bool) or not (lam >= 0 and math.isfinite(lam)):
            raise ConfigError(f"lam must be a finite number >= 0, got {self.lam!r}")
        if not isinstance(self.pareto, bool):
            raise ConfigError(f"pareto must be true or false, got {self.pareto!r}")
        for key in ("evaluator_options", "searcher_options", "space_options"):
            if not isinstance(getattr(self, key), Mapping):
                raise ConfigError(f"{key} must be a mapping of option names to values, got {getattr(self, key)!r}")
        if not isinstance(self.imports, (list, tuple)) or not all(isinstance(m, str) for m in self.imports):
            raise ConfigError(f"imports must be a list of module names or .py paths, got {self.imports!r}")
        return self

    # ------------------------------------------------------------------ run.json
    def to_record(self) -> dict[str, Any]:
        """The settings as plain data (``run.json``); objects (an Evaluator, a searcher) make it
        raise TypeError: such a search cannot be rebuilt from a file."""
        record = asdict(self)
        for key in ("evaluator", "searcher", "space"):
            if record[key] is not None and not isinstance(record[key], str):
                raise TypeError(f"{key} is a {type(record[key]).__name__} object, not a name")
        if record["data_dir"] is not None:
            record["data_dir"] = str(Path(record["data_dir"]).resolve())
        if record["output"] is not None:
            record["output"] = str(record["output"])
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SearchConfig:
        """The config of a ``run.json`` (keys it does not know are bookkeeping: format, version)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})

    # ------------------------------------------------------------------ the command line and YAML
    @staticmethod
    def cli_key(f: Any) -> str:
        """The field's flag as a YAML key: ``--evaluator-option`` -> ``evaluator_option``."""
        return (f.metadata.get("flag") or f"--{f.name.replace('_', '-')}").lstrip("-").replace("-", "_")

    @classmethod
    def cli_fields(cls, only: Iterable[str] | None = None) -> list[Any]:
        chosen = None if only is None else set(only)
        return [f for f in fields(cls) if f.metadata.get("cli", True) and (chosen is None or f.name in chosen)]

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, only: Iterable[str] | None = None,
                      defaults: SearchConfig | None = None, help_for: Mapping[str, str] | None = None) -> None:
        """Add a flag per field (or per field named in ``only``), help from the field (or ``help_for``),
        the default shown from ``defaults``; every flag defaults to None, so what was not given can be
        told apart."""
        shown = defaults or cls()
        for f in cls.cli_fields(only):
            meta = f.metadata
            flag = meta.get("flag") or f"--{f.name.replace('_', '-')}"
            default = getattr(shown, f.name)
            helptext = (help_for or {}).get(f.name) or meta["help"]
            helptext += "" if default in (None, {}, [], False) or "default" in helptext else f" (default {default})"
            helptext = helptext.replace("%", "%%")
            kwargs: dict[str, Any] = {"help": helptext, "dest": cls.cli_key(f)}
            if meta["kind"] == "switch":
                kwargs.update(action="store_true", default=None)
            elif meta["kind"] in ("key_values", "append"):
                kwargs.update(action="append", metavar=meta.get("metavar"))
            else:
                if meta.get("type") is not None:
                    kwargs["type"] = meta["type"]
                if meta.get("choices"):
                    kwargs["choices"] = list(meta["choices"])
            parser.add_argument(flag, **kwargs)

    @classmethod
    def cli_defaults(cls, base: SearchConfig | None = None) -> dict[str, Any]:
        """Every YAML key with its value in ``base`` (default: the main job), in the keys' own shape
        (KEY=VALUE lists for the option mappings)."""
        base = base or cls.main_job()
        out: dict[str, Any] = {}
        for f in cls.cli_fields():
            value = getattr(base, f.name)
            out[cls.cli_key(f)] = [f"{k}={v}" for k, v in value.items()] if f.metadata["kind"] == "key_values" else value
        return out

    def with_cli_values(self, values: Mapping[str, Any]) -> SearchConfig:
        """A copy with the given YAML keys / flag values (KEY=VALUE lists parsed as YAML scalars)."""
        by_key = {self.cli_key(f): f for f in self.cli_fields()}
        changes: dict[str, Any] = {}
        for key, value in values.items():
            f = by_key.get(key)
            if f is None:
                raise ConfigError(f"unknown option {key!r}; options: {', '.join(by_key)}")
            if f.metadata["kind"] == "key_values":
                value = parse_key_values(value, f.metadata.get("flag") or key)
            elif f.metadata["kind"] == "append":
                value = [value] if isinstance(value, str) else list(value or [])
            changes[f.name] = value
        return self.replace(**changes)


def parse_key_values(items: Any, flag: str) -> dict[str, Any]:
    """``["population_size=10", "p=0.5"]`` (or a mapping) -> dict, values parsed as YAML scalars."""
    import yaml

    if isinstance(items, Mapping):
        return dict(items)
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"{flag} takes KEY=VALUE items, got {items!r}")
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} takes KEY=VALUE, got {item!r}")
        try:
            out[key] = yaml.safe_load(value)
        except RecursionError:
            raise ConfigError(f"{flag} {key!r}: the value is nested too deeply") from None
        except Exception as exc:  # noqa: BLE001 - PyYAML's scanners and value builders raise many kinds
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"{flag} {key!r}: {value!r} is not a valid YAML value ({type(exc).__name__}: {first})") from None
    return out


def check_driver(searcher: Any, driver: str) -> None:
    """Raise ``ConfigError`` unless ``driver`` can run ``searcher`` (a registered name or a searcher)."""
    from nas_ray.searchers import SEARCHERS

    if driver not in DRIVERS:
        raise ConfigError(f"unknown driver {driver!r}; drivers: {', '.join(DRIVERS)}")
    cls = SEARCHERS.get(searcher) if isinstance(searcher, str) else type(searcher)
    drivers = getattr(cls, "drivers", ("tune",))
    if driver not in drivers:
        able = [n for n in SEARCHERS.names() if driver in getattr(SEARCHERS.get(n), "drivers", ())]
        raise ConfigError(f"searcher {getattr(cls, 'name', '') or searcher!r} runs under driver {' or '.join(drivers)}, "
                          f"not {driver!r}; driver {driver!r} runs: {', '.join(able) or 'none'}")


def split_label(label: str) -> tuple[str, str]:
    """``"graphpnas@rllib"`` -> ``("graphpnas", "rllib")``; a plain name runs under the tune driver.
    ``nas-ray bench`` labels its searchers this way, so both drivers of one method compare in one table."""
    name, at, driver = str(label).partition("@")
    return name, (driver if at else "tune")

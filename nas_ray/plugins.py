"""Loading user code that registers its own spaces, searchers, evaluators and network builders.

``import_plugins(["my_package.nas", "path/to/my_space.py"])`` imports each module (a dotted name or
a ``.py`` file) once per process. A module loaded from a file is also registered with cloudpickle
to travel *by value*, so objects defined in it (an evaluator, a space) reach Ray workers that cannot
import the file themselves; worker processes that rebuild things by name import the same list.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path

from nas_ray.errors import ConfigError

_LOADED: dict[str, str] = {}  # spec -> module name


def import_plugins(modules: Iterable[str]) -> list[str]:
    """Import each module name or ``.py`` path (once per process); returns the module names."""
    names = []
    for spec in modules:
        spec = str(spec)
        if spec in _LOADED:
            names.append(_LOADED[spec])
            continue
        if spec.endswith(".py"):
            path = Path(spec).expanduser()
            if not path.is_file():
                raise ConfigError(f"--import: no such file {spec}")
            name = f"nas_ray_plugin_{path.stem}"
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            try:
                module_spec.loader.exec_module(module)
            except Exception:
                del sys.modules[name]
                raise
            try:  # objects of a file module are pickled by value: Ray workers cannot import the file by name
                import cloudpickle

                cloudpickle.register_pickle_by_value(module)
            except (ImportError, ValueError):  # pragma: no cover - cloudpickle ships with Ray
                pass
        else:
            try:
                importlib.import_module(spec)
            except ImportError as exc:
                raise ConfigError(f"--import: cannot import {spec!r}: {exc}") from None
            name = spec
        _LOADED[spec] = name
        names.append(name)
    return names


def loaded_plugins() -> list[str]:
    """The specs imported so far in this process (what a worker process needs to import too)."""
    return list(_LOADED)

"""One name -> class registry type, used for spaces and searchers alike."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Generic, TypeVar

from nas_ray.errors import ConfigError, ConfigTypeError, UnknownName

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to classes; built-ins are ``"module:Class"`` strings imported on first use, so that
    listing names imports nothing heavy. Users register their own classes from their code."""

    def __init__(self, kind: str, base: type, builtins: dict[str, str]) -> None:
        self.kind = kind
        self.base = base
        self._entries: dict[str, type[T] | str] = dict(builtins)

    def register(self, name: str, cls: type[T] | str, *, overwrite: bool = False) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries and not overwrite:
            raise ConfigError(f"a {self.kind} named {name!r} is already registered (pass overwrite=True to replace it)")
        if not isinstance(cls, str) and not (inspect.isclass(cls) and issubclass(cls, self.base)):
            raise ConfigTypeError(
                f"registering {self.kind} {name!r} needs a {self.base.__name__} subclass or 'module:Class', got {cls!r}"
            )
        self._entries[name] = cls

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> type[T]:
        if name not in self._entries:
            raise UnknownName(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module), attr)
            self._entries[name] = entry
        return entry

    def create(self, name: str, *args: Any, **options: Any) -> T:
        """An instance of ``name`` built with ``options``; an option it does not take is named."""
        cls = self.get(name)
        takes = _options(cls)
        if takes is not None:
            unknown = [k for k in options if k not in takes[len(args):]]
            if unknown:
                raise ConfigError(
                    f"{self.kind} {name!r} has no option {unknown[0]!r}; its options: {', '.join(takes[len(args):]) or 'none'}"
                )
        return cls(*args, **options)


def _options(cls: type) -> list[str] | None:
    """Keyword names ``cls(...)`` accepts, following ``**kwargs`` up the base classes' ``__init__``
    (as subclasses forward them); None if that cannot be known."""
    names: list[str] = list(getattr(cls, "extra_options", ()))  # options a class takes through **kwargs
    for klass in cls.__mro__:
        if klass is object:
            return names
        if "__init__" not in klass.__dict__:
            continue
        params = list(inspect.signature(klass.__dict__["__init__"]).parameters.values())[1:]
        names += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in names]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return None

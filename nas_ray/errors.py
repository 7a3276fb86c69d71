"""Exceptions raised across nas-ray.

Every message names the thing that is wrong and what is wrong with it, so the CLI can print it as a
single line.
"""

from __future__ import annotations


class NasRayError(Exception):
    """Base class of nas-ray's own errors."""


class ConfigError(NasRayError, ValueError):
    """An option, setting or argument has a value nas-ray cannot use; the message names it and why."""


class ConfigTypeError(ConfigError, TypeError):
    """An option or argument has the wrong type (or an unknown name) for the call it was given to."""


class InvalidArchitecture(NasRayError, ValueError):
    """An architecture (or its JSON / native form) is malformed or not a member of a search space."""


class UnknownName(NasRayError, KeyError):
    """A name (space, searcher, evaluator, dataset, column) that no registry knows."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain message.
        return str(self.args[0]) if self.args else ""


class IllegalAction(NasRayError, ValueError):
    """An environment action its masks forbid (an illegal op, a forbidden or missing edge, too many edges)."""


class DataFileError(NasRayError, OSError):
    """A benchmark data file is missing, unreadable or corrupt; the message names the file (and line)."""


class ArchitectureNotInTable(NasRayError, LookupError):
    """A tabular evaluator was asked about an architecture its table does not contain."""

    def __init__(self, arch_hash: str, table: str) -> None:
        super().__init__(f"architecture {arch_hash} is not in the table {table}")
        self.hash = arch_hash
        self.table = table


class CheckpointError(NasRayError, ValueError):
    """A model checkpoint is missing, corrupt, or was written for another model, space or size."""


class MissingDependency(NasRayError, ImportError):
    """An optional package that a feature needs is not installed; the message says what to install."""

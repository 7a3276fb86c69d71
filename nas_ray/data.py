"""Where benchmark data lives: an explicit path, else the ``NAS_RAY_DATA`` environment variable."""

from __future__ import annotations

import os
from pathlib import Path

from nas_ray.errors import DataFileError

ENV_VAR = "NAS_RAY_DATA"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The benchmark data folder: ``data_dir`` if given, else ``$NAS_RAY_DATA``."""
    if data_dir is None:
        data_dir = os.environ.get(ENV_VAR)
        if not data_dir:
            raise DataFileError(f"no benchmark data folder: pass data_dir (CLI: --data-dir) or set {ENV_VAR}")
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise DataFileError(f"benchmark data folder {path} does not exist")
    return path


def find_data_file(relative: str, data_dir: str | os.PathLike[str] | None = None, *, what: str) -> Path:
    """Find ``relative`` (e.g. ``"nb201/nb201_accuracy.csv"``) under the data folder.

    ``data_dir`` may be the data folder itself, the sub-folder holding the file, or the file."""
    root = resolve_data_dir(data_dir)
    if root.is_file():
        return root
    name = Path(relative).name
    for candidate in (root / relative, root / name):
        if candidate.is_file():
            return candidate
    raise DataFileError(f"{what} not found: looked for {relative} under {root}")


CACHE_ENV = "NAS_RAY_CACHE"


def cache_dir() -> Path:
    """Where models trained on first use are kept: ``$NAS_RAY_CACHE``, default ``~/.cache/nas-ray``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "nas-ray").expanduser()

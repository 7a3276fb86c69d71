"""The graphs a graph VAE is pretrained and measured on, by space (used by ``nas-ray pretrain`` and
``nas-ray vae-metrics``).

``data`` selects them:

- ``"table"``: the space's benchmark data. ENAS-6: D-VAE's file and split (17,118 train / 1,902
  test, with their weight-sharing accuracies); NAS-Bench-201: all 15,625 cells (a seeded 90/10
  split, CIFAR-10 ``c10_val12`` accuracy as the label for the GP metrics only, never for
  pretraining); NAS-Bench-101: the 500-cell sample (small: say so when you quote it).
- ``"sample:N"``: N distinct random graphs of the space (no labels), split 90/10.
- ``"auto"`` (default): ``table`` where the space has one and the data folder is found, else
  ``sample:20000``.
- a path to a JSON list of architectures (``[{"ops": [...], "matrix": [[...]]}, ...]``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas_ray.errors import ConfigError, DataFileError, InvalidArchitecture
from nas_ray.graph import Architecture
from nas_ray.spaces.base import SearchSpace

__all__ = ["VAEData", "vae_dataset"]


@dataclass
class VAEData:
    train: list[Architecture]
    test: list[Architecture]
    y_train: np.ndarray | None
    y_test: np.ndarray | None
    source: str


def split_graphs(archs: list[Architecture], y: np.ndarray | None, seed: int, test_fraction: float) -> tuple:
    order = np.random.default_rng(seed).permutation(len(archs))
    cut = int(round(len(archs) * (1 - test_fraction)))
    tr, te = order[:cut], order[cut:]
    pick = (lambda idx: y[idx]) if y is not None else (lambda idx: None)  # noqa: E731
    return [archs[i] for i in tr], [archs[i] for i in te], pick(tr), pick(te)


def vae_dataset(space: SearchSpace, data: str = "auto", data_dir: str | os.PathLike[str] | None = None, *, seed: int = 0,
                test_fraction: float = 0.1, num_samples: int = 20_000) -> VAEData:
    from nas_ray.models.vae_training import space_graphs

    if data == "auto":  # the space's benchmark table where it has one and the data is there, else samples
        try:
            table = space.vae_dataset(data_dir, seed=seed, test_fraction=test_fraction)
        except DataFileError:
            table = None
        if table is not None:
            return table
        data = f"sample:{num_samples}"
    if data.startswith("sample:"):
        try:
            n = int(data.split(":", 1)[1])
        except ValueError:
            raise ConfigError(f"--data {data!r}: expected sample:N with an integer N") from None
        if n < 2:
            raise ConfigError(f"--data {data!r}: N must be at least 2")
        archs = space_graphs(space, n, seed=seed)
        return VAEData(*split_graphs(archs, None, seed, test_fraction), source=f"{len(archs)} random graphs of {space.name}")
    if data == "table":
        table = space.vae_dataset(data_dir, seed=seed, test_fraction=test_fraction)
        if table is None:
            raise ConfigError(f"--data table: space {space!r} has no benchmark table of graphs; use sample:N or a JSON file")
        return table
    path = Path(data)
    if not path.is_file():
        raise ConfigError(f"--data {data!r}: not auto, table, sample:N or an existing JSON file")
    try:
        items = json.loads(path.read_text())
        archs = [Architecture.from_dict(d) for d in items]
    except (OSError, ValueError, TypeError, InvalidArchitecture) as exc:
        raise DataFileError(f"{path}: not a JSON list of architectures: {exc}") from None
    for i, a in enumerate(archs):
        try:
            space.validate(a)
        except InvalidArchitecture as exc:
            raise DataFileError(f"{path}: architecture {i}: {exc}") from None
    return VAEData(*split_graphs(archs, None, seed, test_fraction), source=f"{len(archs)} architectures from {path}")

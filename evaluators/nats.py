"""NAS-Bench-201 in its official release format: the NATS-Bench topology search space ("tss").

Reads the files the NATS-Bench authors publish, through their ``nats_bench`` package (``pip install
nas-ray[nats]``), and turns them into the columns of nas-ray's NB201 table, so that the evaluators,
spaces and benchmarks see the same table whichever format a user has:

- the fast-mode folder ``NATS-tss-v1_0-3ffb9-simple`` (one ``NNNNNN.pickle.pbz2`` per cell and
  ``meta.pickle.pbz2``), read cell by cell with ``fast_mode=True``;
- the single file ``NATS-tss-v1_0-3ffb9.pickle.pbz2``, loaded whole.

The conversion reads every cell once (minutes for the full release, with a progress bar) and is
cached as ``.npz`` under the cache folder (``$NAS_RAY_CACHE``), keyed by the archive's path, size
and modification time.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np

from nas_ray.data import cache_dir
from nas_ray.errors import DataFileError, MissingDependency

ARCHIVE_DIR = "NATS-tss-v1_0-3ffb9-simple"
ARCHIVE_FILE = "NATS-tss-v1_0-3ffb9.pickle.pbz2"
META_FILE = "meta.pickle.pbz2"
N_CELLS = 15_625

#: nas-ray's NB201 column -> (the training budget ``hp``, the NATS dataset, the evaluation set).
#: Accuracies are the mean over the training seeds the release holds, after the last epoch.
ACCURACY_COLUMNS: dict[str, tuple[str, str, str]] = {
    "c10_test200": ("200", "cifar10", "ori-test"),
    "c100_test200": ("200", "cifar100", "x-test"),
    "in16_test200": ("200", "ImageNet16-120", "x-test"),
    "c10_val200_naslib": ("200", "cifar10-valid", "x-valid"),
    "c100_val200_naslib": ("200", "cifar100", "x-valid"),
    "in16_val200_naslib": ("200", "ImageNet16-120", "x-valid"),
    "c10_val12": ("12", "cifar10-valid", "x-valid"),
    "c10_test12": ("12", "cifar10-valid", "ori-test"),
    "c100_val12": ("12", "cifar100", "x-valid"),
    "c100_test12": ("12", "cifar100", "x-test"),
    "in16_val12": ("12", "ImageNet16-120", "x-valid"),
    "in16_test12": ("12", "ImageNet16-120", "x-test"),
}
#: parameter counts (millions) of the NB201 network on each dataset
PARAM_COLUMNS: dict[str, str] = {"params_c10_M": "cifar10", "params_c100_M": "cifar100", "params_in16_M": "ImageNet16-120"}
COLUMNS: tuple[str, ...] = ("nb201_index", *ACCURACY_COLUMNS, *PARAM_COLUMNS)
_CACHE_VERSION = 1


def is_nats_archive(path: Path) -> bool:
    """Whether ``path`` is a NATS-Bench topology release: the fast-mode folder or the single file."""
    return (path.is_dir() and (path / META_FILE).is_file()) or (path.is_file() and path.name.endswith(".pickle.pbz2")
                                                                 and path.name.startswith("NATS-tss"))


def find_nats_archive(root: Path) -> Path | None:
    """The NATS-Bench topology release at ``root`` or in it (or in its ``nb201`` folder), if any."""
    for candidate in (root, root / ARCHIVE_DIR, root / "nb201" / ARCHIVE_DIR, root / ARCHIVE_FILE, root / "nb201" / ARCHIVE_FILE):
        if candidate.exists() and is_nats_archive(candidate):
            return candidate
    return None


def _nats_bench():  # noqa: ANN202 - the module
    try:
        import nats_bench
    except ImportError:
        raise MissingDependency("reading the official NATS-Bench / NAS-Bench-201 files needs the nats_bench package: "
                                "pip install 'nas-ray[nats]' (or pip install nats_bench)") from None
    return nats_bench


def read_nats_topology(path: str | os.PathLike[str], *, progress: bool = True,
                       cache: bool = True) -> tuple[list[str], tuple[str, ...], np.ndarray]:
    """``(arch_strs, columns, values)`` of every cell the release at ``path`` holds (``values[i]`` is
    the row of ``arch_strs[i]``), with the columns of nas-ray's NB201 table (``COLUMNS``).

    Raises ``DataFileError`` naming the file (and cell) that is missing, unreadable or incomplete,
    and ``MissingDependency`` without the ``nats_bench`` package."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataFileError(f"NATS-Bench archive {path} does not exist")
    if not is_nats_archive(path):
        raise DataFileError(f"{path} is not a NATS-Bench topology release: expected the folder {ARCHIVE_DIR} "
                            f"(holding {META_FILE}) or the file {ARCHIVE_FILE}")
    fast = path.is_dir()
    cells = sorted(path.glob("*.pickle.pbz2")) if fast else [path]
    st = path.stat()
    key = hashlib.sha1(repr((_CACHE_VERSION, str(path.resolve()), st.st_mtime_ns, len(cells),
                              max((c.stat().st_mtime_ns for c in cells), default=0))).encode()).hexdigest()[:16]
    cached = cache_dir() / "nb201" / f"nats-{key}.npz"
    if cache and cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as z:
                return z["arch_strs"].tolist(), tuple(z["columns"].tolist()), z["values"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is rebuilt
    arch_strs, values = _convert(path, fast, progress)
    if cache:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, arch_strs=np.array(arch_strs), columns=np.array(COLUMNS), values=values)
        os.replace(tmp, cached)
    return arch_strs, COLUMNS, values


def _convert(path: Path, fast: bool, progress: bool) -> tuple[list[str], np.ndarray]:
    nats_bench = _nats_bench()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            api = nats_bench.create(str(path), "tss", fast_mode=fast, verbose=False)
    except Exception as exc:  # noqa: BLE001 - the package raises ValueError, AssertionError, pickle and bz2 errors
        where = path / META_FILE if fast else path
        raise DataFileError(f"{where}: not a readable NATS-Bench topology file ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else 'no message'})") from None
    if len(api.meta_archs) != N_CELLS:
        raise DataFileError(f"{path / META_FILE if fast else path}: lists {len(api.meta_archs)} cells, "
                            f"the topology space has {N_CELLS}")
    if fast:
        indices = []
        for file in path.glob("*.pickle.pbz2"):
            stem = file.name[: -len(".pickle.pbz2")]
            if stem.isdigit():
                indices.append(int(stem))
        indices.sort()
    else:
        indices = sorted(api.evaluated_indexes)
    if not indices:
        raise DataFileError(f"{path}: holds the cell list but no cell's results")
    if len(indices) < N_CELLS:
        warnings.warn(f"{path} holds the results of {len(indices)} of the {N_CELLS:,} cells; the others are not in the table",
                      stacklevel=3)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(indices), desc=f"reading {path.name}", unit="cell", mininterval=1.0)
    values = np.empty((len(indices), len(COLUMNS)), dtype=np.float64)
    arch_strs = []
    try:
        for row, index in enumerate(indices):
            file = path / f"{index:06d}.pickle.pbz2" if fast else path
            if not 0 <= index < N_CELLS:
                raise DataFileError(f"{file}: cell index {index} is outside 0..{N_CELLS - 1}")
            try:
                values[row] = _cell_row(api, index)
            except DataFileError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise DataFileError(f"{file}: cell {index}: {type(exc).__name__}: "
                                    f"{str(exc).splitlines()[0] if str(exc) else 'no message'}") from None
            bad = ~np.isfinite(values[row])
            if bad.any():
                raise DataFileError(f"{file}: cell {index}: {COLUMNS[int(bad.argmax())]} is not a finite number")
            arch_strs.append(api.meta_archs[index])
            if fast:  # keep memory flat: the API holds every cell it has read
                api.arch2infos_dict.pop(index, None)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return arch_strs, values


def _cell_row(api, index: int) -> list[float]:  # noqa: ANN001
    row = [float(index)]
    results = {hp: api.query_meta_info_by_index(index, hp=hp) for hp in ("12", "200")}
    for column, (hp, dataset, split) in ACCURACY_COLUMNS.items():
        if results[hp] is None:
            raise DataFileError(f"no results for {hp} epochs")
        try:
            row.append(float(results[hp].get_metrics(dataset, split, is_random=False)["accuracy"]))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"no {split} accuracy on {dataset} after {hp} epochs ({column})") from exc
    for dataset in PARAM_COLUMNS.values():
        row.append(float(results["200"].get_compute_costs(dataset)["params"]))
    return row

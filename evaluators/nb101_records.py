"""Read the official NAS-Bench-101 TFRecord files without TensorFlow, with a fast ``.npz`` cache.

A record is TFRecord-framed UTF-8 JSON ``[module_hash, epochs, raw_adjacency, raw_operations,
raw_metrics]`` whose last item is a base64 ``nasbench.ModelMetrics`` protobuf.  Parsing the 500 MB
``nasbench_only108.tfrecord`` takes a while, so the result is cached under ``cache_dir`` (else
``$NAS_RAY_CACHE``, else ``~/.cache/nas-ray``) keyed by the file's absolute path, size and mtime.
"""

from __future__ import annotations

import array
import base64
import binascii
import functools
import gc
import hashlib
import json
import mmap
import os
import struct
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas_ray.errors import ConfigError, DataFileError

METRIC_FIELDS = ("halfway_training_time", "halfway_train_accuracy", "halfway_validation_accuracy", "halfway_test_accuracy",
                 "final_training_time", "final_train_accuracy", "final_validation_accuracy", "final_test_accuracy")
NB101_OPS = ("input", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "output")
MAX_VERTICES = 7
CACHE_ENV_VAR = "NAS_RAY_CACHE"
_CACHE_VERSION = 1
_ARRAYS = ("hashes", "matrices", "num_vertices", "ops", "params", "epochs", "metrics")
_NAN8 = (float("nan"),) * 8
_B64DECODE = (functools.partial(binascii.a2b_base64, strict_mode=True) if sys.version_info >= (3, 11)
              else functools.partial(base64.b64decode, validate=True))  # rejects non-base64 characters


@dataclass(frozen=True, eq=False)
class NB101Records:
    """Every cell of an NB101 TFRecord file as column arrays (N cells, E epoch budgets, R repeats).

    Example::

        recs = read_nb101_tfrecord("nasbench_only108.tfrecord")
        i = recs.index_of("00005c142e6f48ac74fdcf73e3439874")
        final_val = recs.metrics[i, -1, :, METRIC_FIELDS.index("final_validation_accuracy")]
    """

    hashes: np.ndarray  # (N,) '<U32' official module hash, sorted ascending
    matrices: np.ndarray  # (N, 7, 7) int8 adjacency, zero-padded
    num_vertices: np.ndarray  # (N,) int8
    ops: np.ndarray  # (N, 7) int8 indices into NB101_OPS, -1 as padding
    params: np.ndarray  # (N,) int64 trainable parameters
    epochs: np.ndarray  # (E,) int64 epoch budgets, ascending
    metrics: np.ndarray  # (N, E, R, F) float64 in METRIC_FIELDS order; NaN where missing

    def index_of(self, module_hash: str) -> int:
        """Position of ``module_hash`` in ``hashes``, or -1 if absent."""
        i = int(np.searchsorted(self.hashes, module_hash))
        return i if i < len(self.hashes) and self.hashes[i] == module_hash else -1

    def __len__(self) -> int:
        return len(self.hashes)


@functools.cache
def _metrics_class() -> Any:
    """The ``nasbench.ModelMetrics`` message class, built from a descriptor (no generated code)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="nasbench/model_metrics.proto", package="nasbench", syntax="proto2")
    F = descriptor_pb2.FieldDescriptorProto
    opt = F.LABEL_OPTIONAL
    ev = fdp.message_type.add(name="EvaluationData")
    for num, name in enumerate(("current_epoch", "training_time", "train_accuracy",
                                "validation_accuracy", "test_accuracy"), start=1):
        ev.field.add(name=name, number=num, type=F.TYPE_DOUBLE, label=opt)
    ev.field.add(name="checkpoint_path", number=6, type=F.TYPE_STRING, label=opt)
    mm = fdp.message_type.add(name="ModelMetrics")
    mm.field.add(name="evaluation_data", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                 type_name=".nasbench.EvaluationData")
    mm.field.add(name="trainable_parameters", number=2, type=F.TYPE_INT32, label=opt)
    mm.field.add(name="total_time", number=3, type=F.TYPE_DOUBLE, label=opt)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics"))


def _masked_crc(data: bytes, crc32c: Any) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _cache_file(path: Path, st: os.stat_result, cache_dir: str | os.PathLike[str] | None) -> Path:
    root = Path(cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV_VAR) or "~/.cache/nas-ray")
    key = f"{path}\0{st.st_size}\0{st.st_mtime_ns}\0v{_CACHE_VERSION}".encode("utf-8", "surrogateescape")
    return root.expanduser() / f"nb101-{path.stem}-{hashlib.blake2b(key, digest_size=12).hexdigest()}.npz"


def _load_cache(cache: Path) -> NB101Records | None:
    try:
        with np.load(cache, allow_pickle=False) as z:
            if int(z["version"]) != _CACHE_VERSION:
                return None
            recs = NB101Records(**{k: z[k] for k in _ARRAYS})
        n = len(recs.hashes)
        if (recs.matrices.shape != (n, 7, 7) or recs.ops.shape != (n, 7) or recs.num_vertices.shape != (n,)
                or recs.params.shape != (n,) or recs.metrics.shape[:2] != (n, len(recs.epochs))):
            return None
        return recs
    except Exception:  # a missing, partial or foreign cache file is simply ignored
        return None


def _save_cache(cache: Path, recs: NB101Records) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=cache.name, suffix=".tmp", dir=cache.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, version=np.int64(_CACHE_VERSION), **{k: getattr(recs, k) for k in _ARRAYS})
            os.replace(tmp, cache)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        warnings.warn(f"cannot write NB101 cache {cache}: {e.strerror or e}; the file will be parsed again next time",
                      stacklevel=3)


def read_nb101_tfrecord(path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None,
                        verify_crc: bool = True, progress: bool = False) -> NB101Records:
    """Parse an official NAS-Bench-101 ``.tfrecord`` file (or load it from the ``.npz`` cache).

    Raises ``DataFileError`` naming the file -- and, for a bad record, its 0-based record number and
    byte offset -- when the file is missing, empty, truncated or corrupt.  ``verify_crc=False`` skips
    the CRC32C checks; ``progress=True`` shows a progress bar over bytes on stderr.

    Example::

        recs = read_nb101_tfrecord("/data/nasbench_only108.tfrecord")
        len(recs), recs.epochs  # (423624, array([108]))
    """
    path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataFileError(f"NB101 record file {path} not found") from None
    except OSError as e:
        raise DataFileError(f"cannot read NB101 record file {path}: {e.strerror or e}") from None
    cache = _cache_file(path, st, cache_dir)
    recs = _load_cache(cache)
    if recs is None:
        recs = _parse(path, st.st_size, verify_crc, progress)
        _save_cache(cache, recs)
    return recs


def _parse(path: Path, size: int, verify_crc: bool, progress: bool) -> NB101Records:
    if size == 0:
        raise DataFileError(f"NB101 record file {path} contains no records")
    import google_crc32c
    from google.protobuf.message import DecodeError

    metrics_from = _metrics_class().FromString
    crc32c = google_crc32c.value
    header = struct.Struct("<QI").unpack_from
    footer = struct.Struct("<I").unpack_from
    raw_decode, b64decode = json.JSONDecoder().raw_decode, _B64DECODE
    length_crcs: dict[bytes, int] = {}  # masked CRC of each distinct 8-byte length field
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=size, unit="B", unit_scale=True, desc=path.name, file=sys.stderr)

    cell_of: dict[str, int] = {}
    cell_hash: list[str] = []
    cell_adj: list[str] = []
    cell_ops, cell_params, cell_nv = array.array("b"), array.array("q"), array.array("b")
    ops_cache: dict[str, tuple[int, ...]] = {}
    op_index = {name: i for i, name in enumerate(NB101_OPS)}
    rec_cell, rec_epoch, rec_metrics = array.array("q"), array.array("q"), array.array("d")

    def fail(n: int, off: int, what: str) -> DataFileError:
        return DataFileError(f"NB101 record file {path}: record {n} at byte offset {off}: {what}")

    n = off = last = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the loop makes millions of short-lived containers and no cycles; collections cost ~30%
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            while off < size:
                if off + 12 > size:
                    raise fail(n, off, f"truncated record header ({size - off} of 12 bytes)")
                length, length_crc = header(mm, off)
                start = off + 12
                end = start + length
                if end + 4 > size:
                    raise fail(n, off, f"truncated record (needs {length + 16} bytes, {size - off} left)")
                data = mm[start:end]
                if verify_crc:
                    raw_len = mm[off:off + 8]
                    expected = length_crcs.get(raw_len)
                    if expected is None:
                        expected = length_crcs[raw_len] = _masked_crc(raw_len, crc32c)
                    if expected != length_crc:
                        raise fail(n, off, "length CRC mismatch (corrupt)")
                    crc = crc32c(data)
                    if (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF != footer(mm, end)[0]:
                        raise fail(n, off, "data CRC mismatch (corrupt)")
                try:
                    text = data.decode("utf-8")
                    try:  # the official writer emits compact JSON; raw_decode skips json.loads' overhead
                        item, stop = raw_decode(text)
                        if stop != len(text):
                            raise ConfigError
                    except ValueError:
                        item = json.loads(text)
                    if type(item) is not list:
                        raise TypeError
                    module_hash, epochs, adj, raw_ops, raw_metrics = item
                    if not (type(module_hash) is str and len(module_hash) == 32 and type(epochs) is int
                            and type(adj) is str and type(raw_ops) is str and type(raw_metrics) is str):
                        raise TypeError
                except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors;
                    # RecursionError: json's C scanner recurses once per nesting level ("[[[[...")
                    raise fail(n, off, "not a JSON list [module_hash, epochs, adjacency, operations, metrics]") from None
                if not -0x8000000000000000 <= epochs <= 0x7FFFFFFFFFFFFFFF:  # stored in an int64 array
                    raise fail(n, off, f"epoch budget {epochs} does not fit in a 64-bit integer")
                try:
                    m = metrics_from(b64decode(raw_metrics))
                except (binascii.Error, DecodeError, ValueError) as e:
                    raise fail(n, off, f"undecodable metrics ({type(e).__name__})") from None
                cell = cell_of.get(module_hash)
                if cell is None:
                    ops = ops_cache.get(raw_ops)
                    if ops is None:
                        names = raw_ops.split(",")
                        bad = [o for o in names if o not in op_index]
                        if bad:
                            raise fail(n, off, f"unknown op {bad[0]!r}")
                        if len(names) > MAX_VERTICES:
                            raise fail(n, off, f"{len(names)} operations, at most {MAX_VERTICES} allowed")
                        ops = ops_cache[raw_ops] = tuple(op_index[o] for o in names)
                    nv = int(len(adj) ** 0.5 + 0.5)
                    if nv * nv != len(adj) or not adj or adj.strip("01"):
                        raise fail(n, off, f"adjacency of length {len(adj)} is not a square 0/1 matrix")
                    if nv != len(ops):
                        raise fail(n, off, f"{nv}x{nv} adjacency but {len(ops)} operations")
                    cell = cell_of[module_hash] = len(cell_hash)
                    cell_hash.append(module_hash)
                    cell_adj.append(adj)
                    cell_nv.append(nv)
                    cell_ops.extend(ops)
                    cell_ops.extend((-1,) * (MAX_VERTICES - nv))
                    cell_params.append(m.trainable_parameters)
                ev = m.evaluation_data
                if len(ev) > 2:
                    a, b = ev[1], ev[2]
                    rec_metrics.extend((a.training_time, a.train_accuracy, a.validation_accuracy, a.test_accuracy,
                                        b.training_time, b.train_accuracy, b.validation_accuracy, b.test_accuracy))
                elif len(ev) == 2:
                    a = ev[1]
                    rec_metrics.extend((a.training_time, a.train_accuracy, a.validation_accuracy, a.test_accuracy)
                                       + _NAN8[:4])
                else:
                    rec_metrics.extend(_NAN8)
                rec_cell.append(cell)
                rec_epoch.append(epochs)
                off = end + 4
                n += 1
                if bar is not None and not n & 4095:
                    bar.update(off - last)
                    last = off
    except OSError as e:
        if isinstance(e, DataFileError):
            raise
        raise DataFileError(f"cannot read NB101 record file {path}: {e.strerror or e}") from None
    finally:
        if gc_was_enabled:
            gc.enable()
        if bar is not None:
            bar.update(off - last)
            bar.close()
    return _assemble(cell_hash, cell_adj, cell_nv, cell_ops, cell_params, rec_cell, rec_epoch, rec_metrics)


def _assemble(cell_hash: list[str], cell_adj: list[str], cell_nv: array.array, cell_ops: array.array,
              cell_params: array.array, rec_cell: array.array, rec_epoch: array.array,
              rec_metrics: array.array) -> NB101Records:
    """Turn per-cell / per-record columns into the sorted, padded arrays of ``NB101Records``."""
    hashes = np.array(cell_hash, dtype="<U32")
    order = np.argsort(hashes, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    n_cells = len(hashes)
    nv = np.frombuffer(cell_nv, dtype=np.int8)
    matrices = np.zeros((n_cells, MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
    for v in np.unique(nv):
        idx = np.flatnonzero(nv == v)
        flat = "".join([cell_adj[i] for i in idx]).encode("ascii")
        matrices[idx, :v, :v] = (np.frombuffer(flat, dtype=np.uint8).reshape(-1, v, v) - ord("0")).astype(np.int8)

    rc = rank[np.frombuffer(rec_cell, dtype=np.int64)]
    epochs, re = np.unique(np.frombuffer(rec_epoch, dtype=np.int64), return_inverse=True)
    # Repeat number = rank of a record among the records of the same (cell, epochs), in file order.
    key = rc * len(epochs) + re
    by_key = np.argsort(key, kind="stable")
    sk = key[by_key]
    first = np.r_[0, np.flatnonzero(sk[1:] != sk[:-1]) + 1]
    counts = np.diff(np.r_[first, len(sk)])
    rep = np.empty_like(key)
    rep[by_key] = np.arange(len(sk)) - np.repeat(first, counts)
    metrics = np.full((n_cells, len(epochs), int(counts.max()), len(METRIC_FIELDS)), np.nan)
    metrics[rc, re, rep] = np.frombuffer(rec_metrics, dtype=np.float64).reshape(-1, len(METRIC_FIELDS))
    return NB101Records(
        hashes=hashes[order],
        matrices=matrices[order],
        num_vertices=nv[order],
        ops=np.frombuffer(cell_ops, dtype=np.int8).reshape(-1, MAX_VERTICES)[order],
        params=np.frombuffer(cell_params, dtype=np.int64)[order],
        epochs=epochs.astype(np.int64),
        metrics=metrics,
    )

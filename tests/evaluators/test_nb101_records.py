"""Tests of the TensorFlow-free NAS-Bench-101 TFRecord reader, on small files written in the official format."""

from __future__ import annotations

import base64
import gc
import json
import os
import struct
import warnings
from pathlib import Path

import google_crc32c
import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from nas_ray.errors import DataFileError
from nas_ray.evaluators import nb101_records as nb
from nas_ray.evaluators.nb101_records import METRIC_FIELDS, NB101_OPS, NB101Records, read_nb101_tfrecord

# --------------------------------------------------------------------------- test-only writer


def _model_metrics_class():
    fdp = descriptor_pb2.FileDescriptorProto(name="test_nasbench.proto", package="nasbench", syntax="proto2")
    F = descriptor_pb2.FieldDescriptorProto
    ev = fdp.message_type.add(name="EvaluationData")
    for num, name in enumerate(("current_epoch", "training_time", "train_accuracy", "validation_accuracy",
                                "test_accuracy"), start=1):
        ev.field.add(name=name, number=num, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    ev.field.add(name="checkpoint_path", number=6, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    mm = fdp.message_type.add(name="ModelMetrics")
    mm.field.add(name="evaluation_data", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                 type_name=".nasbench.EvaluationData")
    mm.field.add(name="trainable_parameters", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    mm.field.add(name="total_time", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics"))


ModelMetrics = _model_metrics_class()


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data))


def metric_values(cell: int, epochs: int, repeat: int) -> tuple[float, ...]:
    """Distinct, reproducible values for every (cell, epochs, repeat), in METRIC_FIELDS order."""
    base = cell * 0.01 + repeat * 0.001 + epochs * 1e-5
    return (10.0 + cell + epochs + repeat, 0.1 + base, 0.2 + base, 0.3 + base,
            20.0 + cell + epochs + repeat, 0.5 + base, 0.6 + base, 0.7 + base)


def record(module_hash, epochs, adjacency: np.ndarray, ops, params: int, values) -> bytes:
    m = ModelMetrics(trainable_parameters=params, total_time=1.0)
    m.evaluation_data.add(current_epoch=0, training_time=0.0, train_accuracy=0.1, validation_accuracy=0.1,
                          test_accuracy=0.1, checkpoint_path="")
    for stage, epoch in ((values[:4], epochs / 2), (values[4:], epochs)):
        m.evaluation_data.add(current_epoch=epoch, training_time=stage[0], train_accuracy=stage[1],
                              validation_accuracy=stage[2], test_accuracy=stage[3], checkpoint_path="x/ckpt")
    raw_adj = "".join(str(int(x)) for x in np.asarray(adjacency).ravel())
    item = [module_hash, epochs, raw_adj, ",".join(ops), base64.b64encode(m.SerializeToString()).decode("ascii")]
    return json.dumps(item).encode("utf-8")


def _chain(v: int) -> np.ndarray:
    return np.eye(v, k=1, dtype=np.int8)


CELLS = [  # (hash, adjacency, ops, params); deliberately not in hash order
    ("f" * 32, _chain(7), ["input"] + ["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"] + ["conv3x3-bn-relu"] * 2
     + ["output"], 3_000_000),
    ("0123456789abcdef0123456789abcdef", _chain(3), ["input", "maxpool3x3", "output"], 12345),
    ("a" * 32, _chain(2), ["input", "output"], 777),
    ("5" * 32, np.triu(np.ones((5, 5), dtype=np.int8), 1), ["input", "conv1x1-bn-relu", "conv3x3-bn-relu",
                                                            "maxpool3x3", "output"], 2_000_000),
]
EPOCHS = (108, 12)  # deliberately not ascending in the file
MISSING = (CELLS[1][0], 12, 2)  # (hash, epochs, repeat) left out of the file


def build_records() -> list[bytes]:
    """Records of every cell x epochs x repeat, repeats interleaved so one cell's records are not adjacent."""
    out = []
    for repeat in range(3):
        for epochs in EPOCHS:
            for c, (h, adj, ops, params) in enumerate(CELLS):
                if (h, epochs, repeat) != MISSING:
                    out.append(record(h, epochs, adj, ops, params, metric_values(c, epochs, repeat)))
    return out


def write(path: Path, records: list[bytes]) -> Path:
    path.write_bytes(b"".join(frame(r) for r in records))
    return path


@pytest.fixture
def good_file(tmp_path) -> Path:
    return write(tmp_path / "nb101_small.tfrecord", build_records())


def read(path: Path, tmp_path: Path, **kw) -> NB101Records:
    return read_nb101_tfrecord(path, cache_dir=tmp_path / "cache", **kw)


# --------------------------------------------------------------------------- round trip


def test_round_trip_every_field(good_file, tmp_path):
    recs = read(good_file, tmp_path)
    assert gc.isenabled()  # the parser pauses the garbage collector and must turn it back on
    assert len(recs) == len(CELLS)
    assert recs.hashes.dtype == np.dtype("<U32")
    assert list(recs.hashes) == sorted(h for h, *_ in CELLS)
    assert recs.matrices.dtype == np.int8 and recs.matrices.shape == (4, 7, 7)
    assert recs.ops.dtype == np.int8 and recs.num_vertices.dtype == np.int8
    assert recs.params.dtype == np.int64
    assert recs.epochs.tolist() == [12, 108]
    assert recs.metrics.shape == (4, 2, 3, len(METRIC_FIELDS)) and recs.metrics.dtype == np.float64
    for c, (h, adj, ops, params) in enumerate(CELLS):
        i = recs.index_of(h)
        v = len(ops)
        assert recs.num_vertices[i] == v
        padded = np.zeros((7, 7), dtype=np.int8)
        padded[:v, :v] = adj
        np.testing.assert_array_equal(recs.matrices[i], padded)
        assert recs.ops[i].tolist() == [NB101_OPS.index(o) for o in ops] + [-1] * (7 - v)
        assert recs.params[i] == params
        for e, epochs in enumerate(recs.epochs.tolist()):
            for repeat in range(3):
                got = recs.metrics[i, e, repeat]
                if (h, epochs, repeat) == MISSING:
                    assert np.isnan(got).all()
                else:
                    np.testing.assert_array_equal(got, metric_values(c, epochs, repeat))
    assert np.isnan(recs.metrics).sum() == len(METRIC_FIELDS)


def test_index_of(good_file, tmp_path):
    recs = read(good_file, tmp_path)
    for i, h in enumerate(recs.hashes):
        assert recs.index_of(str(h)) == i
    assert recs.index_of("0" * 32) == -1  # sorts before every hash
    assert recs.index_of("f" * 31 + "g") == -1  # sorts after every hash
    assert recs.index_of("b" * 32) == -1
    assert recs.index_of("") == -1


def test_single_epoch_file(tmp_path):
    h, adj, ops, params = CELLS[1]
    path = write(tmp_path / "only108.tfrecord", [record(h, 108, adj, ops, params, metric_values(0, 108, r))
                                                  for r in range(3)])
    recs = read(path, tmp_path)
    assert recs.epochs.tolist() == [108] and recs.metrics.shape == (1, 1, 3, 8)
    assert not np.isnan(recs.metrics).any()


def test_missing_evaluations_are_nan(tmp_path):
    m = ModelMetrics(trainable_parameters=5)
    m.evaluation_data.add(current_epoch=0)
    m.evaluation_data.add(current_epoch=54, training_time=1.5, train_accuracy=0.5, validation_accuracy=0.4,
                          test_accuracy=0.3)
    item = ["c" * 32, 108, "0100", "input,output", base64.b64encode(m.SerializeToString()).decode()]
    recs = read(write(tmp_path / "short.tfrecord", [json.dumps(item).encode()]), tmp_path)
    np.testing.assert_array_equal(recs.metrics[0, 0, 0, :4], [1.5, 0.5, 0.4, 0.3])
    assert np.isnan(recs.metrics[0, 0, 0, 4:]).all()


def test_progress_bar_goes_to_stderr(good_file, tmp_path, capsys):
    recs = read(good_file, tmp_path, progress=True)
    out, err = capsys.readouterr()
    assert len(recs) == 4 and out == ""
    assert "nb101_small.tfrecord" in err


# --------------------------------------------------------------------------- cache


def _cache_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache").glob("*.npz"))


def test_cache_written_and_reused(good_file, tmp_path, monkeypatch):
    first = read(good_file, tmp_path)
    files = _cache_files(tmp_path)
    assert len(files) == 1 and "nb101_small" in files[0].name
    with np.load(files[0], allow_pickle=False) as z:  # no pickled objects inside
        assert set(nb._ARRAYS) <= set(z.files)

    def boom(*a, **k):
        raise AssertionError("the source was parsed although a cache exists")

    monkeypatch.setattr(nb, "_parse", boom)
    second = read(good_file, tmp_path)
    for name in nb._ARRAYS:
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name))
    assert second.index_of(CELLS[0][0]) == first.index_of(CELLS[0][0])


def test_modified_source_invalidates_cache(good_file, tmp_path):
    read(good_file, tmp_path)
    recs = build_records()
    write(good_file, recs[: len(recs) // 2])  # a different file, same path
    st = good_file.stat()
    os.utime(good_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = read(good_file, tmp_path)
    assert again.metrics.shape[2] == 2  # only repeats 0 and 1 are left
    assert len(_cache_files(tmp_path)) == 2


def test_cache_dir_from_env(good_file, tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_RAY_CACHE", str(tmp_path / "envcache"))
    read_nb101_tfrecord(good_file)
    assert len(list((tmp_path / "envcache").glob("*.npz"))) == 1


def test_corrupt_cache_is_ignored(good_file, tmp_path):
    read(good_file, tmp_path)
    (cache,) = _cache_files(tmp_path)
    cache.write_bytes(b"not a zip file at all")
    recs = read(good_file, tmp_path)
    assert len(recs) == 4
    with np.load(cache, allow_pickle=False) as z:  # rewritten with a good copy
        assert len(z["hashes"]) == 4


def test_unwritable_cache_dir_warns_and_still_returns(good_file, tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recs = read(good_file, tmp_path)
    assert len(recs) == 4
    assert len(caught) == 1 and "cache" in str(caught[0].message)


# --------------------------------------------------------------------------- errors


def _assert_error(path: Path, tmp_path: Path, *needles: str, **kw) -> str:
    with pytest.raises(DataFileError) as info:
        read(path, tmp_path, **kw)
    msg = str(info.value)
    assert "\n" not in msg and path.name in msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def _offset_of(records: list[bytes], n: int) -> int:
    return sum(len(r) + 16 for r in records[:n])


def test_missing_file(tmp_path):
    _assert_error(tmp_path / "nope.tfrecord", tmp_path, "not found")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.tfrecord"
    path.write_bytes(b"")
    _assert_error(path, tmp_path, "contains no records")


def test_flipped_data_byte_is_a_crc_error(good_file, tmp_path):
    recs = build_records()
    raw = bytearray(good_file.read_bytes())
    off = _offset_of(recs, 3)
    raw[off + 12 + 5] ^= 0x01  # inside the JSON hash string: still valid JSON
    good_file.write_bytes(bytes(raw))
    _assert_error(good_file, tmp_path, "record 3", f"offset {off}", "data CRC", "corrupt")
    # without the CRC check the changed hash is read as a (new) cell
    loose = read(good_file, tmp_path, verify_crc=False)
    assert len(loose) == len(CELLS) + 1


def test_length_crc_error(good_file, tmp_path):
    raw = bytearray(good_file.read_bytes())
    off = _offset_of(build_records(), 2)
    raw[off + 8] ^= 0xFF
    good_file.write_bytes(bytes(raw))
    _assert_error(good_file, tmp_path, "record 2", f"offset {off}", "length CRC", "corrupt")


def test_truncated_file(good_file, tmp_path):
    recs = build_records()
    raw = good_file.read_bytes()
    good_file.write_bytes(raw[:-7])
    _assert_error(good_file, tmp_path, f"record {len(recs) - 1}", "truncated")
    good_file.write_bytes(raw[: _offset_of(recs, 1) + 5])  # cut inside the header of record 1
    _assert_error(good_file, tmp_path, "record 1", "truncated")


@pytest.mark.parametrize("payload, needle", [
    (b"{not json", "JSON list"),
    (b'{"a": 1}', "JSON list"),
    (json.dumps({k * 32: 0 for k in "abcde"}).encode(), "JSON list"),  # a dict with 5 keys is not a list
    (b'["abc", 108, "0100", "input,output"]', "JSON list"),  # 4 items
    (b'["abc", 108, "0100", "input,output", ""]', "JSON list"),  # hash too short
    (b"\xff\xfe", "JSON list"),
    (json.dumps(["c" * 32, 108, "0100", "input,convolution,output", ""]).encode(), "unknown op 'convolution'"),
    (json.dumps(["c" * 32, 108, "010", "input,output", ""]).encode(), "adjacency"),
    (json.dumps(["c" * 32, 108, "0120", "input,output", ""]).encode(), "adjacency"),
    (json.dumps(["c" * 32, 108, "0" * 9, "input,output", ""]).encode(), "operations"),
    (json.dumps(["c" * 32, 108, "0100", "input,output", "%%%not base64"]).encode(), "undecodable metrics"),
    (json.dumps(["c" * 32, 108, "0100", "input,output", base64.b64encode(b"\xff\xff\xff").decode()]).encode(),
     "undecodable metrics"),
])
def test_bad_record_contents(tmp_path, payload, needle):
    good = build_records()[:2]
    path = write(tmp_path / "bad.tfrecord", good + [payload])
    _assert_error(path, tmp_path, "record 2", f"offset {_offset_of(good, 2)}", needle)


def test_verify_crc_false_skips_checks(good_file, tmp_path):
    raw = bytearray(good_file.read_bytes())
    raw[-1] ^= 0xFF  # last data CRC
    raw[8] ^= 0xFF  # first length CRC
    good_file.write_bytes(bytes(raw))
    _assert_error(good_file, tmp_path, "record 0", "CRC")
    recs = read(good_file, tmp_path, verify_crc=False)
    assert len(recs) == len(CELLS)

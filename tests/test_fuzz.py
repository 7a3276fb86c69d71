"""Property-based fuzzing of nas-ray's input parsers (hypothesis).

Every property feeds random and mutated inputs to one parser and requires that it either succeeds
with a sane result or raises only its documented error (``nas_ray.errors`` / ``nas_ray.cli.UsageError``)
with a non-empty one-line message: no TypeError, AttributeError, IndexError, numpy or YAML error leaks.

``NAS_RAY_FUZZ_EXAMPLES`` sets the cases per property (default 100); select these tests with ``-m fuzz``.
"""

from __future__ import annotations

import atexit
import base64
import csv
import datetime
import functools
import io
import itertools
import json
import math
import os
import shutil
import struct
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, currently_in_test_context, event, example, given, settings
from hypothesis import strategies as st

import nas_ray
from nas_ray.cli import SEARCH_DEFAULTS, UsageError, _key_values, _load_config
from nas_ray.errors import DataFileError, InvalidArchitecture, NasRayError
from nas_ray.evaluators import tables
from nas_ray.evaluators.nb101_records import NB101_OPS, _masked_crc, _metrics_class, read_nb101_tfrecord
from nas_ray.graph import Architecture

N_EXAMPLES = int(os.environ.get("NAS_RAY_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=N_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SHARED_DATA = Path(os.environ.get("NAS_RAY_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")

# hypothesis re-runs a test body many times inside one test call: function-scoped fixtures such as
# tmp_path would be shared by all examples, so every example writes into a fresh folder of this one.
_TMP = Path(tempfile.mkdtemp(prefix="nas-ray-fuzz-"))
atexit.register(shutil.rmtree, _TMP, ignore_errors=True)
_COUNTER = itertools.count()


@contextmanager
def fresh_dir() -> Iterator[Path]:
    """A new, unique folder for one example (removed afterwards: paths are never reused)."""
    path = _TMP / f"ex{next(_COUNTER)}"
    path.mkdir()
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def assert_documented(exc: BaseException, allowed: tuple[type[BaseException], ...]) -> None:
    """``exc`` is one of the documented errors and its message is one non-empty line."""
    if currently_in_test_context():
        event(f"raised {type(exc).__name__}")
    assert isinstance(exc, allowed), f"undocumented {type(exc).__name__} leaked: {exc!r}"
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} with an empty message"
    assert "\n" not in message, f"{type(exc).__name__} message spans several lines: {message!r}"


# ---------------------------------------------------------------------------------- shared strategies
# JSON scalars (floats include NaN / inf, which json.dumps writes and json.loads accepts) and containers.
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=25,
)
big_ints = st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 10**400, -(10**400)])


def deep_nesting(open_: str, close: str, max_depth: int = 50_000) -> st.SearchStrategy[str]:
    """Nesting beyond the interpreter's recursion limit (recursive parsers must not crash)."""
    return st.integers(min_value=300, max_value=max_depth).map(lambda d: open_ * d + close * d)


def mutate_text(text: str, data: st.DataObject) -> str:
    """A few random character edits: delete, insert (random text or structural characters), truncate."""
    for _ in range(data.draw(st.integers(0, 4), label="edits")):
        if not text:
            break
        kind = data.draw(st.sampled_from(["delete", "insert", "truncate", "replace"]), label="edit")
        i = data.draw(st.integers(0, len(text) - 1), label="at")
        if kind == "delete":
            j = data.draw(st.integers(i, min(len(text), i + 5)), label="to")
            text = text[:i] + text[j:]
        elif kind == "insert":
            piece = data.draw(st.text(max_size=4) | st.sampled_from(list('[]{},:"\\-0123456789.eE \n\t\x00')), label="ins")
            text = text[:i] + piece + text[i:]
        elif kind == "truncate":
            text = text[:i]
        else:
            piece = data.draw(st.text(min_size=1, max_size=3), label="rep")
            text = text[:i] + piece + text[i + 1:]
    return text


def mutate_bytes(raw: bytes, data: st.DataObject) -> bytes:
    """Byte-level damage: truncation, random bytes, non-UTF-8 bytes, NUL bytes."""
    kind = data.draw(st.sampled_from(["none"] * 6 + ["truncate", "insert", "non-utf8", "overwrite"]), label="bytes")
    if kind == "none" or not raw:
        return raw
    i = data.draw(st.integers(0, len(raw) - 1), label="byte_at")
    if kind == "truncate":
        return raw[:i]
    if kind == "insert":
        return raw[:i] + data.draw(st.binary(min_size=1, max_size=16), label="ins_bytes") + raw[i:]
    if kind == "non-utf8":
        return raw[:i] + data.draw(st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3\x28", b"\x80", b"\xed\xa0\x80"])) + raw[i:]
    piece = data.draw(st.binary(min_size=1, max_size=8), label="over_bytes")
    return raw[:i] + piece + raw[i + len(piece):]


# ---------------------------------------------------------------------------------- 1. Architecture JSON
SPACES = {name: nas_ray.get_space(name) for name in ("nasbench101", "nasbench201", "enas-macro", "randwire")}
# smaller members of the parametrised spaces, so that random graphs hit them more often
SPACES["enas-macro(2)"] = nas_ray.get_space("enas-macro", num_layers=2)
SPACES["randwire(3)"] = nas_ray.get_space("randwire", num_nodes=3)
VOCABULARY = sorted({op for space in SPACES.values() for op in space.node_types})

op_names = st.sampled_from(VOCABULARY) | st.text(max_size=6)
matrix_cells = st.sampled_from([0, 1]) | st.sampled_from([0, 1, -1, 2, 0.5, 1.0, True, False, None, "1", "", float("nan"),
                                                         float("inf")]) | st.integers() | big_ints | json_values


@st.composite
def square_matrices(draw: st.DrawFn) -> list[list[object]]:
    """n x n 0/1 matrices: DAGs in topological order, or with back edges, self-loops and cycles."""
    n = draw(st.integers(0, 10))
    shape = draw(st.sampled_from(["upper", "upper", "any", "cycle"]))
    m = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if shape == "any" or j > i:
                m[i][j] = draw(st.sampled_from([0, 1]))
    if shape == "cycle" and n >= 2:
        i, j = sorted(draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True)))
        m[i][j] = m[j][i] = 1
    return m


@st.composite
def bad_matrices(draw: st.DrawFn) -> object:
    """Ragged, non-square, non-0/1, negative, huge or wrongly typed matrices."""
    kind = draw(st.sampled_from(["ragged", "cells", "rect", "json", "deep"]))
    if kind == "ragged":
        return draw(st.lists(st.lists(st.sampled_from([0, 1]), max_size=6), max_size=6))
    if kind == "cells":
        n = draw(st.integers(1, 6))
        return [[draw(matrix_cells) for _ in range(n)] for _ in range(n)]
    if kind == "rect":
        rows, cols = draw(st.integers(0, 6)), draw(st.integers(0, 6))
        return [[draw(st.sampled_from([0, 1])) for _ in range(cols)] for _ in range(rows)]
    if kind == "deep":
        value: object = [0, 1]
        for _ in range(draw(st.integers(3, 200))):
            value = [value]
        return value
    return draw(json_values)


@st.composite
def space_members(draw: st.DrawFn) -> dict[str, object]:
    """A member of one of the spaces, sampled by the space itself, then maybe damaged slightly."""
    space = SPACES[draw(st.sampled_from(sorted(SPACES)), label="space")]
    d = space.sample(draw(st.integers(0, 2**32 - 1), label="seed")).to_dict()
    ops, m = d["ops"], d["matrix"]
    for _ in range(draw(st.integers(0, 2), label="damage")):
        kind = draw(st.sampled_from(["flip", "op", "drop_op", "drop_row", "cell"]))
        if not ops or not m:
            break
        i, j = draw(st.integers(0, len(m) - 1)), draw(st.integers(0, len(m[0]) - 1))
        if kind == "flip":
            m[i][j] = 0 if m[i][j] else 1
        elif kind == "op":
            ops[draw(st.integers(0, len(ops) - 1))] = draw(op_names)
        elif kind == "drop_op":
            ops.pop(draw(st.integers(0, len(ops) - 1)))
        elif kind == "drop_row":
            m.pop(i)
        else:
            m[i][j] = draw(matrix_cells)
    return d


@st.composite
def arch_dicts(draw: st.DrawFn) -> object:
    """Objects shaped like ``{"ops": [...], "matrix": [[...]]}`` with every part possibly wrong."""
    kind = draw(st.sampled_from(["member", "member", "graph", "graph", "bad_matrix", "wrong_types", "keys"]))
    if kind == "member":
        return draw(space_members())
    if kind == "keys":  # missing / extra keys
        return draw(st.dictionaries(st.sampled_from(["ops", "matrix", "Ops", "edges", ""]), json_values, max_size=3))
    matrix = draw(square_matrices()) if kind != "bad_matrix" else draw(bad_matrices())
    n = len(matrix) if isinstance(matrix, list) else 0
    length = draw(st.sampled_from([n, n, n, max(n - 1, 0), n + 1, 0]))
    ops = draw(st.lists(op_names, min_size=length, max_size=length))
    if kind == "wrong_types":
        if draw(st.booleans()):
            ops = draw(json_values | st.text())
        else:
            matrix = draw(json_values | st.text())
    out: dict[str, object] = {"ops": ops, "matrix": matrix}
    if draw(st.booleans()):
        out.update(draw(st.dictionaries(st.text(max_size=5), json_values, max_size=2)))
    return out


def check_architecture(arch: Architecture) -> None:
    """A parsed architecture is a well-formed DAG, survives a JSON round trip, and every space either
    accepts it (with a non-empty str hash) or rejects it with InvalidArchitecture."""
    assert isinstance(arch, Architecture)
    n = arch.num_nodes
    assert n >= 2 and len(arch.ops) == n and all(isinstance(op, str) and op for op in arch.ops)
    m = arch.matrix
    assert m.shape == (n, n) and m.dtype == np.int8 and not m.flags.writeable
    assert set(np.unique(m).tolist()) <= {0, 1} and not np.tril(m).any()
    assert Architecture.from_json(arch.to_json()) == arch
    for name, space in SPACES.items():
        try:
            space.validate(arch)
            h = space.hash(arch)
        except NasRayError as exc:
            assert_documented(exc, (InvalidArchitecture,))
        else:
            assert isinstance(h, str) and h, f"{name}: empty hash"
            assert space.hash(Architecture.from_json(arch.to_json())) == h


@pytest.mark.fuzz
@FUZZ
@given(obj=arch_dicts() | json_values)
def test_architecture_from_dict(obj: object) -> None:
    try:
        arch = Architecture.from_dict(obj)
    except Exception as exc:  # noqa: BLE001 - the assertion names any undocumented error
        assert_documented(exc, (InvalidArchitecture,))
    else:
        event("parsed")
        check_architecture(arch)
        assert list(arch.ops) == list(obj["ops"])


@st.composite
def arch_texts(draw: st.DrawFn) -> str | bytes:
    kind = draw(st.sampled_from(["json", "json", "mutated", "text", "bytes", "deep", "deep_matrix"]))
    if kind == "json":
        return json.dumps(draw(arch_dicts() | json_values))
    if kind == "mutated":
        return mutate_text(json.dumps(draw(arch_dicts())), draw(st.data()))
    if kind == "bytes":
        return draw(st.binary(max_size=64) | st.builds(lambda d: json.dumps(d).encode("utf-16"), arch_dicts()))
    if kind == "deep":
        return draw(deep_nesting("[", "]") | deep_nesting('{"a":', "}"))
    if kind == "deep_matrix":
        return draw(deep_nesting("[", "]").map(lambda s: '{"ops": ["input", "output"], "matrix": ' + s + "}"))
    return draw(st.text(max_size=80))


@pytest.mark.fuzz
@FUZZ
@given(text=arch_texts())
@example(text="[" * 5000 + "]" * 5000)
def test_architecture_from_json(text: str | bytes) -> None:
    try:
        arch = Architecture.from_json(text)
    except Exception as exc:  # noqa: BLE001
        assert_documented(exc, (InvalidArchitecture,))
    else:
        event("parsed")
        check_architecture(arch)


# ---------------------------------------------------------------------------------- 2. YAML config
CONFIG_KEYS = sorted(SEARCH_DEFAULTS) + [k.replace("_", "-") for k in SEARCH_DEFAULTS if "_" in k]
yaml_keys = st.sampled_from(CONFIG_KEYS) | st.text(max_size=8) | st.integers() | st.none() | st.booleans() | st.floats()
YAML_TOKENS = [":", ": ", "\t", "  ", "\n", "- ", "-", "---", "...", "#", "!!python/object:os.system", "!!python/name:os.system",
               "!!python/object/apply:os.system ['ls']", "!!binary", "!!str", "!!int", "&a ", "*a", "*b", "[", "]", "{", "}",
               ",", "'", '"', "|", ">", "? ", "%YAML 1.1", "%TAG", "\x00", "\x07", "\ufeff", "\u2028", "budget", "seed", "yes",
               "~", "null", ".inf", "0x1F", "1e400", "<<", "=", "\\", "!!int", "!!float", "!!bool", "!!timestamp", "!!set", "!!omap",
               "2020-13-45", "2021-02-30 25:61:00", "1" * 5000, "0x" + "f" * 5000, "!!binary", "x"]


@st.composite
def config_files(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["dump", "dump", "options", "tokens", "text", "bytes", "mutated"]))
    if kind == "dump":  # any YAML document: scalars, lists, mappings with non-string keys
        doc = draw(json_values | st.dictionaries(yaml_keys, json_values, max_size=5))
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=draw(st.booleans())).encode("utf-8")
    if kind == "options":  # well-formed option mappings, values of any type
        doc = draw(st.dictionaries(st.sampled_from(CONFIG_KEYS), json_values, max_size=6))
        return yaml.safe_dump(doc, sort_keys=False).encode("utf-8")
    if kind == "tokens":
        return "".join(draw(st.lists(st.sampled_from(YAML_TOKENS) | st.text(max_size=5), max_size=25))).encode("utf-8", "surrogatepass")
    if kind == "bytes":
        return draw(st.binary(max_size=80))
    if kind == "mutated":
        doc = draw(st.dictionaries(st.sampled_from(CONFIG_KEYS), json_values, max_size=4))
        return mutate_bytes(mutate_text(yaml.safe_dump(doc, sort_keys=False), draw(st.data())).encode("utf-8", "surrogatepass"),
                            draw(st.data()))
    return draw(st.text(max_size=80)).encode("utf-8", "surrogatepass")


@pytest.mark.fuzz
@FUZZ
@given(content=config_files())
@example(content=b"budget: 3\nseed: \xff\n")
@example(content=b"1: 2\n")
@example(content=b"\x00")
@example(content=b"seed: 2020-13-45\n")
@example(content=b"pareto: !!bool maybe\n")
@example(content=b"budget: !!int\n")
@example(content=b"import: &a [*a]\n")
@example(content=b"budget: " + b"1" * 5000 + b"\n")
@example(content=b"!!python/object/apply:os.system ['echo pwned']\n")
def test_load_config(content: bytes) -> None:
    with fresh_dir() as folder:
        path = folder / "config.yaml"
        path.write_bytes(content)
        try:
            config = _load_config(str(path))
        except Exception as exc:  # noqa: BLE001
            assert_documented(exc, (UsageError,))
        else:
            event("parsed")
            assert isinstance(config, dict)
            assert all(isinstance(k, str) for k in config), config
            assert set(config) <= set(SEARCH_DEFAULTS), config
            assert all(plain_yaml(v) for v in config.values()), config  # safe_load built no Python objects


def plain_yaml(value: object, seen: set[int] | None = None) -> bool:
    """Only what yaml.safe_load builds: scalars, dates, bytes and containers of them (anchors may make cycles)."""
    seen = set() if seen is None else seen
    if isinstance(value, (list, tuple, set, dict)):
        if id(value) in seen:
            return True
        seen.add(id(value))
        items = [x for kv in value.items() for x in kv] if isinstance(value, dict) else list(value)
        return all(plain_yaml(v, seen) for v in items)
    return value is None or isinstance(value, (bool, int, float, str, bytes, datetime.date))


# ---------------------------------------------------------------------------------- 3. benchmark tables
def base_lines(relative: str, count: int = 4) -> list[str]:
    """The first ``count`` lines (header + rows) of a real data file, or skip without the data."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"benchmark data {relative} not found under {SHARED_DATA}")
    with path.open(encoding="utf-8") as f:
        return [next(f).rstrip("\n") for _ in range(count)]


cell_values = (
    st.sampled_from(["", " ", "nan", "NaN", "NA", "N/A", "null", "inf", "-inf", "1e400", "-0", "0x10", "1_000", "True",
                     "\"\"", "\"", "'", ",", ";", "|", "#", "\t", "\r", "\x00", "0" * 49, "1" * 49, "2" * 49, "01" * 24,
                     "|input|output|", "input|output", "input|conv3x3-bn-relu|output", "18446744073709551616", "9" * 400,
                     "-" + "9" * 400, "9" * 5000])
    | st.text(max_size=10)
    | st.floats().map(repr)
    | st.integers().map(str)
)


@st.composite
def mutated_csv(draw: st.DrawFn, lines: list[str]) -> bytes:
    """A valid CSV (header + rows) damaged by column, row, cell and byte mutations."""
    rows = [next(csv.reader([line])) for line in lines]
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3, 4]), label="mutations")):
        width = max(len(r) for r in rows) if rows else 0
        kind = draw(st.sampled_from(["cell", "cell", "column_value", "column_value", "drop_col", "dup_col", "swap_col", "rename",
                                     "drop_row", "dup_row", "truncate_row", "extra_field", "header_only"]), label="kind")
        if not rows or not width:
            break
        c = draw(st.integers(0, width - 1), label="col")
        r = draw(st.integers(0, len(rows) - 1), label="row")
        if kind == "cell" and c < len(rows[r]):
            rows[r][c] = draw(cell_values)
        elif kind == "column_value":  # the whole column of another type (e.g. numbers where text belongs)
            values = draw(st.sampled_from(["same", "numbers", "any"]), label="column_kind")
            same = draw(cell_values)
            for row in rows[1:]:
                if c < len(row):
                    row[c] = (same if values == "same" else draw(st.integers(-5, 10**6).map(str) | st.floats(allow_nan=False).map(repr))
                              if values == "numbers" else draw(cell_values))
        elif kind == "drop_col":
            for row in rows:
                del row[c:c + 1]
        elif kind == "dup_col":
            for row in rows:
                if c < len(row):
                    row.insert(c, row[c])
        elif kind == "swap_col":
            d = draw(st.integers(0, width - 1))
            for row in rows:
                if c < len(row) and d < len(row):
                    row[c], row[d] = row[d], row[c]
        elif kind == "rename":
            if c < len(rows[0]):
                rows[0][c] = draw(cell_values)
        elif kind == "drop_row":
            del rows[r]
        elif kind == "dup_row":
            rows.insert(r, list(rows[r]))
        elif kind == "truncate_row":
            rows[r] = rows[r][:c]
        elif kind == "extra_field":
            rows[r].append(draw(cell_values))
        elif kind == "header_only":
            rows = rows[:1]
    if draw(st.booleans(), label="quote"):
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        text = out.getvalue()
    else:
        text = "\n".join(",".join(row) for row in rows) + "\n"
    raw = text.encode("utf-8", "surrogatepass")
    return mutate_bytes(raw, draw(st.data()))


def check_table(table: tables.Table, required: list[str]) -> None:
    n = len(table)
    assert n >= 1 and table.values.shape == (n, len(table.columns))
    assert table.values.dtype == np.float64 and not table.values.flags.writeable
    assert np.isfinite(table.values).all(), "a NaN or an infinity reached the table"
    assert sorted(table.rows.values()) == list(range(n))
    assert all(isinstance(k, str) and k for k in table.rows)
    for col in required:
        assert col in table.columns


@pytest.mark.fuzz
@FUZZ
@given(data=st.data())
def test_load_nasbench201(data: st.DataObject) -> None:
    content = data.draw(mutated_csv(base_lines(tables.NB201_FILE)) | st.binary(max_size=200), label="csv")
    with fresh_dir() as folder:
        (folder / "nb201").mkdir()
        (folder / tables.NB201_FILE).write_bytes(content)
        try:
            table = tables.load_nasbench201(folder, with_costs=False)
        except Exception as exc:  # noqa: BLE001
            assert_documented(exc, (NasRayError,))
        else:
            event("parsed")
            check_table(table, ["nb201_index", "c10_test200"])
            assert "arch_str" not in table.columns
            for key in table.rows:  # every row key a cell of the space, in its official spelling
                assert table.space.hash(table.space.from_native(key)) == key
        finally:
            tables._CACHE.clear()


@pytest.mark.fuzz
@FUZZ
@given(data=st.data())
def test_load_nasbench101_subset(data: st.DataObject) -> None:
    content = data.draw(mutated_csv(base_lines(tables.NB101_SUBSET_FILE)) | st.binary(max_size=200), label="csv")
    with fresh_dir() as folder:
        (folder / "nb101").mkdir()
        (folder / tables.NB101_SUBSET_FILE).write_bytes(content)
        try:
            table = tables.load_nasbench101_subset(folder)
        except Exception as exc:  # noqa: BLE001
            assert_documented(exc, (NasRayError,))
        else:
            event("parsed")
            check_table(table, ["val_acc_108ep_1seed", "params_M", "flops_M", "n_entries"])
            assert table.column("n_entries").sum() >= len(table)
            assert len(table.archs) == len(table)
            for arch in table.archs:
                table.space.validate(arch)
                assert table.rows[table.space.hash(arch)] >= 0
        finally:
            tables._CACHE.clear()


# Bugs the properties found in the CSV loaders, pinned on small synthetic files (no benchmark data needed).
NB201_CSV = "nb201_index,arch_str,c10_test200\n0,|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|,{}\n"
NB101_CSV = ("adjacency_7x7_rowmajor,ops,val_acc_108ep_1seed,params_M,flops_M\n0111101000001100000010000110000001100000000000000,"
             "{},{},4.095778,624.55808\n")
NB101_OPS_ROW = "input|maxpool3x3|maxpool3x3|conv3x3-bn-relu|conv3x3-bn-relu|conv3x3-bn-relu|output"


@pytest.mark.fuzz
@pytest.mark.parametrize(
    ("loader", "relative", "text", "message"),
    [
        ("nb201", tables.NB201_FILE, NB201_CSV.format("85.8633"), None),
        # pandas reads a > 308-digit integer as a Python int and pd.to_numeric(errors="coerce") raised OverflowError
        ("nb201", tables.NB201_FILE, NB201_CSV.format("9" * 400), "line 2: column c10_test200 holds an integer beyond the float range"),
        # infinities parsed as numbers and reached the table; arch strings were not checked against the space
        ("nb201", tables.NB201_FILE, NB201_CSV.format("inf"), "line 2: column c10_test200 is not a finite number"),
        ("nb201", tables.NB201_FILE, NB201_CSV.format("1e400"), "line 2: column c10_test200 is not a finite number"),
        ("nb201", tables.NB201_FILE, NB201_CSV.replace("avg_pool_3x3~0", "max_pool_3x3~0").format("85.8"),
         "line 2: nasbench201: unknown op 'max_pool_3x3'"),
        ("nb201", tables.NB201_FILE, NB201_CSV.replace("|+|nor_conv_1x1~0|skip", "|+|nor_conv_1x1~0 |skip").format("85.8"),
         "line 2: nasbench201:"),
        # an extra header holding a newline put the newline into the message
        ("nb201", tables.NB201_FILE, NB201_CSV.replace("c10_test200\n", 'c10_test200,"\n"\n').format("85.8"),
         "line 2: column '\\n' is not a number: ''"),
        ("nb101", tables.NB101_SUBSET_FILE, NB101_CSV.format(NB101_OPS_ROW, "92.57812"), None),
        ("nb101", tables.NB101_SUBSET_FILE, NB101_CSV.format(NB101_OPS_ROW, "-" + "9" * 400),
         "line 2: column val_acc_108ep_1seed holds an integer beyond the float range"),
        # an ops column of numbers / booleans is read as numbers: ops.split raised AttributeError
        ("nb101", tables.NB101_SUBSET_FILE, NB101_CSV.format("True", "92.5"), "line 2: ops must be '|'-separated operation names, got True"),
        ("nb101", tables.NB101_SUBSET_FILE, NB101_CSV.format("5", "92.5"), "line 2: ops must be '|'-separated operation names, got 5"),
    ],
    ids=["nb201-ok", "nb201-huge-int", "nb201-inf", "nb201-1e400", "nb201-unknown-op", "nb201-bad-arch-str", "nb201-newline-header", "nb101-ok", "nb101-huge-int", "nb101-ops-bool", "nb101-ops-int"],
)
def test_csv_regressions(loader: str, relative: str, text: str, message: str | None) -> None:
    with fresh_dir() as folder:
        (folder / relative).parent.mkdir()
        (folder / relative).write_text(text)
        load = {"nb201": lambda: tables.load_nasbench201(folder, with_costs=False), "nb101": lambda: tables.load_nasbench101_subset(folder)}
        try:
            if message is None:
                assert len(load[loader]()) == 1
            else:
                with pytest.raises(DataFileError) as info:
                    load[loader]()
                assert_documented(info.value, (DataFileError,))
                assert message in str(info.value)
        finally:
            tables._CACHE.clear()


@functools.lru_cache(maxsize=1)
def _nats_release_bytes() -> tuple[bytes, dict]:
    """The meta file of a NATS-Bench topology release (bz2 pickle of the 15,625 cells) and one cell's
    results as the official classes write them (from the CSV's first row), or skip."""
    pytest.importorskip("nats_bench", reason="the NATS-format property needs the nats_bench package")
    import bz2
    import pickle

    import pandas as pd
    from nats_release import cell_results

    path = SHARED_DATA / tables.NB201_FILE
    if not path.is_file():
        pytest.skip(f"benchmark data {tables.NB201_FILE} not found under {SHARED_DATA}")
    frame = pd.read_csv(path)
    meta = bz2.compress(pickle.dumps({"meta_archs": frame.arch_str.tolist(), "arch2infos": {}, "evaluated_indexes": []}))
    return meta, {hp: cell_results(frame.iloc[0], hp).state_dict() for hp in ("12", "200")}


nats_values = (st.floats() | st.integers() | big_ints | st.none() | st.text(max_size=4) | st.booleans()
               | st.sampled_from([[], {}, float("nan"), float("inf"), -1.0]))


@pytest.mark.fuzz
@FUZZ
@given(data=st.data())
def test_load_nasbench201_from_a_nats_release(data: st.DataObject) -> None:
    """A release whose one cell file has a damaged value (an accuracy, a seed list, a parameter
    count, a whole entry) or damaged bytes: a ``DataFileError`` or a finite table of that cell."""
    import bz2
    import copy
    import pickle

    meta, cell = _nats_release_bytes()
    cell = copy.deepcopy(cell)
    hp = data.draw(st.sampled_from(["12", "200"]), label="hp")
    state = cell[hp]
    key = data.draw(st.sampled_from(sorted(state["all_results"], key=str)), label="result")
    result = state["all_results"][key]
    kind = data.draw(st.sampled_from(["accuracy", "params", "seeds", "drop_hp", "drop_result", "bytes"]), label="kind")
    if kind == "accuracy":
        name = data.draw(st.sampled_from(sorted(result["eval_acc1es"])), label="eval")
        result["eval_acc1es"][name] = data.draw(nats_values, label="value")
    elif kind == "params":
        result["params"] = data.draw(nats_values, label="value")
    elif kind == "seeds":
        state["dataset_seed"][key[0]] = data.draw(st.lists(st.integers(0, 1000) | nats_values, max_size=3), label="seeds")
    elif kind == "drop_hp":
        del cell[hp]
    elif kind == "drop_result":
        del state["all_results"][key]
    raw = bz2.compress(pickle.dumps(cell))
    if kind == "bytes":
        raw = mutate_bytes(raw, data)
    with fresh_dir() as folder:
        release = folder / "NATS-tss-v1_0-3ffb9-simple"
        release.mkdir()
        (release / "meta.pickle.pbz2").write_bytes(meta)
        (release / "000000.pickle.pbz2").write_bytes(raw)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # one cell of 15,625
                table = tables.load_nasbench201(path=release, with_costs=False, progress=False)
        except Exception as exc:  # noqa: BLE001
            assert_documented(exc, (DataFileError,))
        else:
            event("parsed")
            check_table(table, ["nb201_index", "c10_test200", "in16_val12", "params_in16_M"])
        finally:
            tables._CACHE.clear()


enas_numbers = st.integers(-2, 7) | big_ints | st.floats() | st.sampled_from([True, False, None, "0", [0], 0.0, 1.0])


@st.composite
def enas_lines(draw: st.DrawFn, base: list[str]) -> str:
    """One ENAS line: a real one, structurally mutated (values, lengths, accuracy) or textually damaged."""
    layers_text, acc_text = draw(st.sampled_from(base)).rsplit(",", 1)
    layers = json.loads(layers_text)
    acc: object = float(acc_text)
    kind = draw(st.sampled_from(["same"] * 4 + ["value", "value", "acc", "length", "layer_length", "text", "random"]))
    if kind == "value":
        k = draw(st.integers(0, len(layers) - 1))
        layers[k][draw(st.integers(0, len(layers[k]) - 1))] = draw(enas_numbers)
    elif kind == "acc":
        acc = draw(enas_numbers | st.text(max_size=6) | json_values)
    elif kind == "length":
        if draw(st.booleans()):
            layers.pop(draw(st.integers(0, len(layers) - 1)))
        else:
            layers.append(list(layers[-1]) + [0])
    elif kind == "layer_length":
        k = draw(st.integers(0, len(layers) - 1))
        if draw(st.booleans()):
            layers[k].pop()
        else:
            layers[k].append(draw(enas_numbers))
    elif kind == "random":
        return draw(st.text(max_size=60))
    line = f"{layers!r}, {acc!r}"
    if kind == "text":
        line = mutate_text(line, draw(st.data()))
    return line


ENAS_OK = "[[0], [1, 0], [2, 0, 1], [3, 1, 0, 0], [4, 0, 0, 0, 1], [5, 1, 1, 1, 1, 1]]"


@st.composite
def enas_files(draw: st.DrawFn) -> bytes:
    base = base_lines(tables.ENAS6_FILE, count=3)
    lines = draw(st.lists(enas_lines(base), min_size=0, max_size=5), label="lines")
    sep = draw(st.sampled_from(["\n", "\r\n", "\r", "\n\n"]), label="sep")
    content = sep.join(lines).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9), label="deep") == 0:
        content += b"\n" + draw(deep_nesting("[", "]")).encode()
    return mutate_bytes(content, draw(st.data()))


@pytest.mark.fuzz
@FUZZ
@given(content=enas_files())
@example(content=f"{ENAS_OK}, {10**400}\n".encode())  # an accuracy too large for a float
@example(content=f"{ENAS_OK}, 0.5\n{'[' * 5000}\n".encode())
@example(content=f"{ENAS_OK}, NaN\n".encode())  # JSON's NaN / Infinity parsed and reached the table
@example(content=f"{ENAS_OK}, -Infinity\n".encode())
def test_parse_enas6(content: bytes) -> None:
    with fresh_dir() as folder:
        path = folder / "final_structures6.txt"
        path.write_bytes(content)
        try:
            entries = tables.parse_enas6(path)
        except Exception as exc:  # noqa: BLE001
            assert_documented(exc, (DataFileError,))
        else:
            event("parsed")
            assert entries
            space = nas_ray.get_space("enas-macro", num_layers=6)
            for arch, acc in entries:
                space.validate(arch)
                assert isinstance(acc, float) and math.isfinite(acc)


def tfrecord(payload: bytes, corrupt_crc: bool = False) -> bytes:
    """One TFRecord frame: length, masked CRC32C of the length, data, masked CRC32C of the data."""
    import google_crc32c

    length = struct.pack("<Q", len(payload))
    data_crc = _masked_crc(payload, google_crc32c.value) ^ (1 if corrupt_crc else 0)
    return length + struct.pack("<I", _masked_crc(length, google_crc32c.value)) + payload + struct.pack("<I", data_crc)


@st.composite
def metrics_blobs(draw: st.DrawFn) -> str:
    """base64 of a ModelMetrics protobuf (0-3 evaluations), or of random bytes, or not base64 at all."""
    kind = draw(st.sampled_from(["proto"] * 8 + ["bytes", "text"]))
    if kind == "text":
        return draw(st.text(max_size=12))
    if kind == "bytes":
        return base64.b64encode(draw(st.binary(max_size=24))).decode()
    msg = _metrics_class()()
    msg.trainable_parameters = draw(st.integers(-(2**31), 2**31 - 1))
    for _ in range(draw(st.integers(0, 3))):
        ev = msg.evaluation_data.add()
        ev.training_time, ev.train_accuracy, ev.validation_accuracy, ev.test_accuracy = (draw(st.floats()) for _ in range(4))
    return base64.b64encode(msg.SerializeToString()).decode()


HASH_POOL = ["0" * 32, "f" * 32, "0123456789abcdef" * 2]


@st.composite
def nb101_records(draw: st.DrawFn) -> bytes:
    """A record file: random bytes, or CRC-correct frames around valid records with at most one field
    damaged (hash, epochs, adjacency, operations, metrics, the list itself), and maybe byte damage."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    out = b""
    for _ in range(draw(st.integers(1, 4))):
        nv = draw(st.integers(2, 7))
        item: list[object] = [
            draw(st.sampled_from(HASH_POOL) | st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)),
            draw(st.sampled_from([4, 12, 36, 108])),
            draw(st.text(alphabet="01", min_size=nv * nv, max_size=nv * nv)),
            ",".join(draw(st.lists(st.sampled_from(NB101_OPS), min_size=nv, max_size=nv))),
            draw(metrics_blobs()),
        ]
        broken = draw(st.sampled_from([None] * 5 + ["hash", "epochs", "adj", "ops", "metrics", "item", "payload"]))
        if broken == "hash":
            item[0] = draw(st.text(max_size=40) | json_values)
        elif broken == "epochs":
            item[1] = draw(st.integers() | big_ints | json_values)
        elif broken == "adj":
            item[2] = draw(st.text(alphabet="01", max_size=70) | st.text(max_size=10) | json_values)
        elif broken == "ops":
            item[3] = ",".join(draw(st.lists(st.sampled_from(NB101_OPS) | st.text(max_size=4), max_size=9)))
        elif broken == "metrics":
            item[4] = draw(st.text(max_size=12) | st.binary(max_size=24).map(lambda b: base64.b64encode(b).decode()))
        elif broken == "item":
            item = draw(st.sampled_from([item[:4], item + [0], [item], []]) | json_values)
        payload = json.dumps(item) if broken != "payload" else draw(json_values.map(json.dumps) | st.text(max_size=20))
        raw = mutate_bytes(payload.encode("utf-8", "surrogatepass"), draw(st.data()))
        out += tfrecord(raw, corrupt_crc=draw(st.integers(0, 19)) == 0)
    return mutate_bytes(out, draw(st.data()))


@pytest.mark.fuzz
@FUZZ
@given(content=nb101_records(), verify_crc=st.booleans())
@example(content=tfrecord(json.dumps(["0" * 32, 2**64, "0110", "input,output", ""]).encode()), verify_crc=True)
@example(content=tfrecord(b"[" * 5000), verify_crc=True)
def test_read_nb101_tfrecord(content: bytes, verify_crc: bool) -> None:
    with fresh_dir() as folder:
        path = folder / "nasbench_only108.tfrecord"
        path.write_bytes(content)
        try:
            recs = read_nb101_tfrecord(path, cache_dir=folder / "cache", verify_crc=verify_crc)
        except Exception as exc:  # noqa: BLE001
            assert_documented(exc, (DataFileError,))
        else:
            event("parsed")
            n = len(recs)
            assert n >= 1 and list(recs.hashes) == sorted(recs.hashes)
            assert recs.matrices.shape == (n, 7, 7) and recs.ops.shape == (n, 7)
            assert recs.metrics.shape[:2] == (n, len(recs.epochs)) and list(recs.epochs) == sorted(recs.epochs)
            assert ((recs.num_vertices >= 1) & (recs.num_vertices <= 7)).all()
            again = read_nb101_tfrecord(path, cache_dir=folder / "cache", verify_crc=verify_crc)  # the .npz cache
            assert np.array_equal(again.hashes, recs.hashes) and np.array_equal(again.matrices, recs.matrices)


# ---------------------------------------------------------------------------------- 4. CLI KEY=VALUE
@st.composite
def kv_items(draw: st.DrawFn) -> str:
    """One --*-option argument: KEY=VALUE with a YAML-ish VALUE, or without '=' / key."""
    if draw(st.integers(0, 6)) == 0:
        return draw(st.text(max_size=20))
    key = draw(st.text(max_size=8))
    sep = draw(st.sampled_from(["=", "=", "=", "", "=="]))
    return key + sep + "".join(draw(st.lists(st.sampled_from(YAML_TOKENS) | st.text(max_size=5), max_size=6)))


@pytest.mark.fuzz
@FUZZ
@given(items=st.lists(kv_items(), max_size=4))
@example(items=["p=[1"])
@example(items=["p=!!python/name:os.system"])
def test_key_values(items: list[str]) -> None:
    try:
        out = _key_values(items, "--searcher-option")
    except Exception as exc:  # noqa: BLE001
        assert_documented(exc, (UsageError,))
    else:
        event("parsed")
        assert isinstance(out, dict)
        assert set(out) == {item.partition("=")[0] for item in items}


# ---------------------------------------------------------------------------------- nesting beyond the recursion limit
# Outside hypothesis, whose test runner raises the recursion limit (to ~2,000 frames): PyYAML's scanner is quadratic in
# the nesting depth, so the YAML parsers are only driven past the limit here, where the default limit (1,000) applies.
def _config_file(text: str) -> str:
    path = _TMP / f"deep{next(_COUNTER)}.yaml"
    path.write_text(text)
    return str(path)


def _enas_file(text: str) -> Path:
    path = _TMP / f"deep{next(_COUNTER)}.txt"
    path.write_text(text)
    return path


def _record_file(payload: bytes) -> Path:
    path = _TMP / f"deep{next(_COUNTER)}.tfrecord"
    path.write_bytes(tfrecord(payload))
    return path


@pytest.mark.fuzz
@pytest.mark.parametrize(
    ("parse", "error"),
    [
        pytest.param(lambda: Architecture.from_json("[" * 100_000), InvalidArchitecture, id="architecture-json"),
        pytest.param(lambda: Architecture.from_json(b'{"ops": ' + b"[" * 100_000), InvalidArchitecture, id="architecture-json-bytes"),
        pytest.param(lambda: _load_config(_config_file("[" * 1_000)), UsageError, id="config-yaml"),
        pytest.param(lambda: _load_config(_config_file("budget: " + "{a: " * 1_000)), UsageError, id="config-yaml-mapping"),
        pytest.param(lambda: tables.parse_enas6(_enas_file("[" * 100_000)), DataFileError, id="enas6"),
        pytest.param(lambda: read_nb101_tfrecord(_record_file(b"[" * 100_000), cache_dir=_TMP / "cache"), DataFileError,
                     id="nb101-tfrecord"),
        pytest.param(lambda: _key_values(["k=" + "[" * 1_000], "--searcher-option"), UsageError, id="key-values"),
    ],
)
def test_nesting_beyond_the_recursion_limit(parse, error: type[Exception]) -> None:  # noqa: ANN001
    with pytest.raises(Exception) as info:  # noqa: B017, PT011 - the assertion below names the leak
        parse()
    assert_documented(info.value, (error,))

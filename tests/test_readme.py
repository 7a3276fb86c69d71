"""The README's Python examples run as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_examples_run(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the own-space block needs the reader's class; the example blocks are checked against examples/
    blocks = [b for b in python_blocks() if "MySpace" not in b and "examples/" not in _context(b)]
    assert len(blocks) >= 3
    monkeypatch.chdir(README.parent)
    monkeypatch.setenv("NAS_RAY_DATA", os.fspath(data_dir))
    namespace: dict = {}
    for block in blocks:
        exec(compile(block.replace('"../shared/data"', repr(os.fspath(data_dir))), str(README), "exec"), namespace)
    assert namespace["arch"] is not None and "ev" in namespace


def _context(block: str) -> str:
    """The README text just before a code block."""
    text = README.read_text()
    start = text.index(block)
    return text[max(0, start - 200) : start]


def test_readme_example_blocks_are_the_example_files() -> None:
    examples = README.parent / "examples"
    sources = {p.name: p.read_text() for p in examples.glob("*.py")}
    shown = [b for b in python_blocks() if "examples/" in _context(b)]
    assert len(shown) == 3
    for block in shown:
        assert any(block.strip() in src for src in sources.values()), block[:80]

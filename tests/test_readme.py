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
    blocks = [b for b in python_blocks() if "MySpace" not in b]  # that one needs the reader's own class
    assert len(blocks) >= 3
    monkeypatch.chdir(README.parent)
    monkeypatch.setenv("NAS_RAY_DATA", os.fspath(data_dir))
    namespace: dict = {}
    for block in blocks:
        exec(compile(block.replace('"../shared/data"', repr(os.fspath(data_dir))), str(README), "exec"), namespace)
    assert namespace["arch"] is not None and "ev" in namespace

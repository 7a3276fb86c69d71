from __future__ import annotations

import subprocess
import sys


def test_import_is_light() -> None:
    code = "import sys, nas_ray; print(sorted(m for m in ('torch', 'ray', 'pandas', 'torch_geometric', 'networkx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"

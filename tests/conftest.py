from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config) -> None:  # noqa: ANN001
    """Models the latent-space searcher pretrains are cached in a folder of this test session only
    (subprocesses started by tests inherit it)."""
    import tempfile

    os.environ["NAS_RAY_CACHE"] = tempfile.mkdtemp(prefix="nas-ray-test-cache-")
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The benchmark tables beside the repository (``../shared/data``), or ``$NAS_RAY_DATA``."""
    path = Path(os.environ.get("NAS_RAY_DATA") or SHARED_DATA)
    if not (path / "nb201" / "nb201_accuracy.csv").is_file():
        pytest.skip(f"benchmark data not found at {path} (expected ../shared/data beside the repository)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)

"""The cluster launcher examples: valid Ray cluster configs, and a submit entry point that joins the cluster."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import yaml

CLUSTER = Path(__file__).resolve().parents[1] / "examples" / "cluster"


@pytest.mark.parametrize("name", ["aws", "gcp", "local"])
def test_cluster_yaml_is_valid_for_ray(name: str) -> None:
    from ray.autoscaler._private.util import fillout_defaults, validate_config

    config = yaml.safe_load((CLUSTER / f"{name}.yaml").read_text())
    validate_config(fillout_defaults(config))  # raises on a config `ray up` would refuse
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head  # the dashboard is not exposed; `ray dashboard` tunnels it


def test_submit_entry_point_runs_nas_ray_search_on_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr("nas_ray.cli.main", lambda argv: calls.append(argv) or 0)
    monkeypatch.setattr(sys, "argv", ["submit_search.py", "--budget", "3"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(CLUSTER / "submit_search.py"), run_name="__main__")
    assert done.value.code == 0
    assert calls == [["search", "--budget", "3", "--address", "auto"]]

"""Cluster behaviour, proven on Ray clusters simulated on this machine (opt-in: several minutes).

Run with ``NAS_RAY_CLUSTER=1 python -m pytest -m cluster tests/search/test_cluster.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from nas_ray.evaluators.tabular import TabularEvaluator

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(os.environ.get("NAS_RAY_CLUSTER") != "1",
                       reason="cluster tests start several Ray clusters (minutes): set NAS_RAY_CLUSTER=1"),
]


class SlowTable(TabularEvaluator):
    """A table evaluator that takes ``delay`` seconds per architecture (so a node can die mid-trial)."""

    def __init__(self, table_evaluator: TabularEvaluator, delay: float) -> None:
        self.__dict__.update(table_evaluator.__dict__)
        self.delay = delay

    def evaluate(self, arch):  # noqa: ANN001, ANN201
        time.sleep(self.delay)
        return super().evaluate(arch)


def test_sigkill_of_the_driver_then_resume_equals_an_uninterrupted_run(data_dir: Path, tmp_path: Path) -> None:
    """nas-ray search on Tune, the driver and its local Ray SIGKILLed mid-search, nas-ray resume:
    with a table and one trial at a time the results equal the in-process run of the same seed."""
    from nas_ray.search import run

    out, log = tmp_path / "s", tmp_path / "search.log"
    budget = 40
    argv = ["nas-ray", "search", "--evaluator", "table:nasbench201:cifar10", "--data-dir", str(data_dir),
            "--searcher", "evolution", "--budget", str(budget), "--max-concurrent", "1", "--seed", "3", "--output", str(out)]
    with open(log, "w") as err:
        proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.time() + 240
        done = 0
        while time.time() < deadline and proc.poll() is None:
            done = sum(1 for line in log.read_text().splitlines() if line.startswith("["))
            if done >= 15:
                break
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started
        proc.wait()
    assert 15 <= done < budget, f"the search was not killed mid-way ({done} trials done)"
    resumed = subprocess.run(["nas-ray", "resume", str(out)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    table = pd.read_csv(out / "results.csv")
    reference = run(evaluator="table:nasbench201:cifar10", data_dir=data_dir, searcher="evolution", budget=budget, seed=3,
                    backend="local", progress=False).table
    assert len(table) == budget and table["hash"].nunique() == budget and (table["status"] == "ok").all()
    assert table["hash"].tolist() == reference["hash"].tolist()
    assert table["reward"].tolist() == pytest.approx(reference["reward"].tolist())
    assert table["query"].tolist() == list(range(budget))


def test_trials_spread_over_nodes_and_a_lost_node_is_retried(data_dir: Path, tmp_path: Path) -> None:
    """Three raylets (a head without CPUs for trials, two workers); one worker is removed mid-search:
    its trials fail, are retried on the survivor, and the search ends with exactly the budget of
    unique architectures, each recorded once, with the node that ran it."""
    import ray
    from ray import cloudpickle
    from ray.cluster_utils import Cluster

    from nas_ray.search import run

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING")
        ev = SlowTable(TabularEvaluator.nasbench201("cifar10", data_dir=data_dir), delay=1.0)
        rows: list[dict] = []

        def remove_after_six_results() -> None:  # while 4 trials run, the second worker goes
            while len(rows) < 6:
                time.sleep(0.05)
            cluster.remove_node(workers[1])

        killer = threading.Thread(target=remove_after_six_results, daemon=True)
        killer.start()

        budget = 24
        result = run(evaluator=ev, searcher="random", budget=budget, seed=0, backend="tune", max_concurrent=4,
                     max_failures=3, cpus_per_trial=1, progress=rows.append, output=tmp_path)
        killer.join()
        table = result.table
        assert len(table) == budget and table["hash"].nunique() == budget
        assert (table["status"] == "ok").all(), table[table["status"] != "ok"]
        nodes = table["node"].value_counts()
        assert len(nodes) == 2, nodes  # both workers ran trials; the head ran none
        survivor = workers[0].node_id
        assert nodes[survivor] > nodes.drop(survivor).iloc[0]
        state = json.loads(sorted((tmp_path / "search").glob("experiment_state-*.json"))[-1].read_text())
        failures = [json.loads(runtime).get("num_failures", 0) for _, runtime in state["trial_data"]]
        assert len(failures) == budget and sum(failures) >= 1  # trials on the lost node failed and were retried
        print(f"retried trials: {sum(f > 0 for f in failures)}, failures: {sum(failures)}; trials per node: {nodes.tolist()}")
    finally:
        ray.shutdown()
        cluster.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_dashboard_lists_the_search_and_exports_its_metrics(data_dir: Path) -> None:
    """A Tune search on a local Ray: the dashboard listens on 127.0.0.1, answers only with Ray's auth
    token, lists the search's driver job, and the node's metrics export carries nas-ray's metrics."""
    import urllib.error
    import urllib.request

    import ray

    from nas_ray.search import run
    from nas_ray.search.tune_backend import ensure_ray

    ensure_ray(None)
    try:
        url = ray._private.worker.get_dashboard_url()
        assert url.startswith("127.0.0.1:"), url
        token = (Path.home() / ".ray" / "auth_token").read_text().strip()
        result = run(evaluator="table:nasbench201:cifar10", data_dir=data_dir, searcher="evolution", budget=12, seed=0,
                     backend="tune", max_concurrent=2, progress=False, name="dashboard-check")
        assert len(result.table) == 12

        def get(address: str, auth: bool = True) -> str:
            request = urllib.request.Request(address, headers={"Authorization": f"Bearer {token}"} if auth else {})
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read().decode()

        with pytest.raises(urllib.error.HTTPError) as refused:
            get(f"http://{url}/api/jobs/", auth=False)
        assert refused.value.code in (401, 403)
        jobs = json.loads(get(f"http://{url}/api/jobs/"))
        mine = [j for j in jobs if j.get("driver_info") and str(j["driver_info"].get("pid")) == str(os.getpid())]
        assert mine and mine[0]["status"] == "RUNNING", jobs
        port = ray.nodes()[0]["MetricsExportPort"]
        deadline, text = time.time() + 60, ""
        while time.time() < deadline and 'ray_nas_ray_evaluations_total' not in text:
            time.sleep(2)
            text = get(f"http://127.0.0.1:{port}/metrics", auth=False)
        lines = [line for line in text.splitlines() if line.startswith("ray_nas_ray_") and 'search="dashboard-check"' in line]
        names = {line.split("{")[0] for line in lines}
        assert {"ray_nas_ray_evaluations_total", "ray_nas_ray_best_reward", "ray_nas_ray_replay_buffer_size"} <= names, names
        assert any(n.startswith("ray_nas_ray_suggest_seconds") for n in names), names
        evaluations = sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("ray_nas_ray_evaluations_total"))
        assert evaluations == 12
        print("metrics:", *lines, sep="\n  ")
    finally:
        ray.shutdown()


def test_ray_up_submit_down_on_loopback(data_dir: Path, tmp_path: Path) -> None:
    """The `ray submit` workflow end to end on this machine: sshd on 127.0.0.1 only with a generated
    key, `ray up` of examples/cluster/local.yaml pointed at 127.0.0.1, `ray submit` of a small search,
    its results checked, `ray down`. Installs openssh-server and rsync from the distribution's
    packages when they are missing (needs root). `ray down` stops every Ray process on the machine:
    run it alone."""
    import getpass
    import shutil

    import yaml

    repo = Path(__file__).resolve().parents[2]
    if not Path("/usr/sbin/sshd").exists() or shutil.which("rsync") is None:
        if os.geteuid() != 0:
            pytest.skip("needs openssh-server and rsync (installing them needs root)")
        done = subprocess.run(["apt-get", "install", "-y", "-q", "openssh-server", "rsync"], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            pytest.skip(f"needs openssh-server and rsync; apt-get install failed: {last}")
    key, host_key = tmp_path / "key", tmp_path / "host_key"
    for path in (key, host_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    ssh_dir = Path.home() / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    authorized = ssh_dir / "authorized_keys"
    before = authorized.read_text() if authorized.exists() else None
    public = key.with_suffix(".pub").read_text()
    authorized.write_text((before or "") + public)
    authorized.chmod(0o600)
    Path("/run/sshd").mkdir(exist_ok=True)
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-p", "22", "-o", "ListenAddress=127.0.0.1", "-h", str(host_key),
                             "-o", f"PidFile={tmp_path / 'sshd.pid'}", "-o", "PermitRootLogin=prohibit-password",
                             "-o", f"AuthorizedKeysFile={authorized}"], stderr=open(tmp_path / "sshd.log", "w"))
    config = yaml.safe_load((repo / "examples" / "cluster" / "local.yaml").read_text())
    config.update({
        "cluster_name": "nas-ray-loopback",
        "provider": {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []},
        "auth": {"ssh_user": getpass.getuser(), "ssh_private_key": str(key)},
        "max_workers": 0,
        "file_mounts": {},  # this machine already has nas-ray and the tables
        "setup_commands": [],
    })
    cluster_yaml = tmp_path / "cluster.yaml"
    cluster_yaml.write_text(yaml.safe_dump(config))
    out = tmp_path / "results"
    env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "token")}
    timings = {}
    try:
        time.sleep(1)
        for step, argv in (
            ("up", ["ray", "up", "-y", "--no-config-cache", str(cluster_yaml)]),
            ("submit", ["ray", "submit", str(cluster_yaml), str(repo / "examples" / "cluster" / "submit_search.py"), "--",
                        "--evaluator", "table:nasbench201:cifar10", "--data-dir", str(data_dir), "--searcher", "evolution",
                        "--budget", "12", "--max-concurrent", "2", "--output", str(out)]),
        ):
            start = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env)
            timings[step] = time.perf_counter() - start
            assert done.returncode == 0, f"ray {step} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        table = pd.read_csv(out / "results.csv")
        assert len(table) == 12 and table["hash"].nunique() == 12 and (table["status"] == "ok").all()
        assert json.loads((out / "summary.json").read_text())["backend"] == "tune"
    finally:
        start = time.perf_counter()
        down = subprocess.run(["ray", "down", "-y", str(cluster_yaml)], capture_output=True, text=True, timeout=600, env=env)
        timings["down"] = time.perf_counter() - start
        sshd.terminate()
        sshd.wait(timeout=30)
        if before is None:
            authorized.unlink()
        else:
            authorized.write_text(before)
    assert down.returncode == 0, down.stderr[-2000:]
    print("ray up / submit / down seconds:", {k: round(v, 1) for k, v in timings.items()})


def test_ray_job_submit_runs_a_search_on_an_existing_cluster(data_dir: Path, tmp_path: Path) -> None:
    """`ray job submit -- nas-ray search --address auto` against a running cluster's job server (token
    authentication on): the job succeeds and writes its results."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": True,
                                                            "dashboard_host": "127.0.0.1", "dashboard_port": 8270})
    out = tmp_path / "results"
    try:
        done = subprocess.run(
            ["ray", "job", "submit", "--address", "http://127.0.0.1:8270", "--", "nas-ray", "search",
             "--evaluator", "table:nasbench201:cifar10", "--data-dir", str(data_dir), "--searcher", "random", "--budget", "6",
             "--max-concurrent", "2", "--address", "auto", "--output", str(out)],
            capture_output=True, text=True, timeout=600, env={**os.environ, "RAY_AUTH_MODE": "token"})
    finally:
        cluster.shutdown()
    assert done.returncode == 0 and "succeeded" in done.stderr + done.stdout, done.stderr[-3000:]
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 6 and (table["status"] == "ok").all()


def test_rllib_env_runners_lost_with_their_node_are_replaced(data_dir: Path) -> None:
    """GraphPNAS under RLlib with two env runners on two worker nodes; one node is removed between
    iterations and a fresh one joins: the lost runner is restarted there, the evaluations it lost are
    retried, and the search ends with exactly the budget of unique architectures."""
    import ray
    from ray import cloudpickle
    from ray.cluster_utils import Cluster

    from nas_ray.search.rl import run_rllib

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING")
        ev = SlowTable(TabularEvaluator.nasbench201("cifar10", data_dir=data_dir), delay=0.2)
        rows: list[dict] = []

        def on_row(row: dict) -> None:
            rows.append(row)
            if len(rows) == 10:  # after the first step: lose a node, a replacement joins
                cluster.remove_node(workers[1])
                cluster.add_node(num_cpus=1)

        budget = 40
        result = run_rllib(evaluator=ev, budget=budget, seed=0, num_env_runners=2, progress=on_row,
                           options={"samples_per_step": 10, "epochs": 1})
        table = result.table
        assert len(table) == budget and table["hash"].nunique() == budget
        assert (table["status"] == "ok").all(), table[table["status"] != "ok"]
    finally:
        ray.shutdown()
        cluster.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])

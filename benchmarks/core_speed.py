"""Speed of the core: import time, hash and sample rates per space, table load times.

    python benchmarks/core_speed.py --data-dir ../shared/data [--json out.json]

Each figure is the median of ``--repeats`` runs in this one process (import times: fresh processes).
Targets: ``import nas_ray`` < 0.3 s, ``nas-ray --help`` < 1 s, >= 20,000 NB201 sample+hash per
second, NB201 table load < 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SPACES = [
    ("nasbench101", {}),
    ("nasbench201", {}),
    ("enas-macro", {"num_layers": 6}),
    ("enas-macro", {"num_layers": 12}),
    ("randwire", {"num_nodes": 32}),
]


def fresh_process_seconds(code: str, repeats: int) -> float:
    """Median wall time of ``python -c code`` minus that of an empty interpreter."""

    def run(c: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", c], check=True)
        return time.perf_counter() - t

    base = statistics.median(run("pass") for _ in range(repeats))
    return statistics.median(run(code) for _ in range(repeats)) - base


def import_time(module: str, repeats: int) -> float:
    """Median in-process import time of ``module`` in fresh interpreters."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(repeats)
    ]
    return statistics.median(out)


def rate(fn, seconds: float = 1.0) -> float:  # noqa: ANN001
    """Calls per second of ``fn`` over about ``seconds``."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(50):
            fn()
        n += 50
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    from nas_ray import get_space

    results: dict[str, object] = {}
    results["import_nas_ray_s"] = import_time("nas_ray", args.repeats)
    print(f"import nas_ray: {results['import_nas_ray_s'] * 1000:.0f} ms (target < 300 ms)")
    help_times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nas_ray.cli", "--help"], check=True, capture_output=True)
        help_times.append(time.perf_counter() - t)
    results["cli_help_s"] = statistics.median(help_times)
    print(f"nas-ray --help: {results['cli_help_s'] * 1000:.0f} ms wall, interpreter start included (target < 1 s)")

    print(f"\n{'space':<26}{'sample/s':>12}{'hash/s':>12}{'sample+hash/s':>16}{'mutate/s':>12}")
    rows = {}
    for name, opts in SPACES:
        space = get_space(name, **opts)
        rng = np.random.default_rng(0)
        pool = [space.sample(rng) for _ in range(200)]
        it = iter(range(10**9))
        figures = {
            "sample": statistics.median(rate(lambda: space.sample(rng), 0.5) for _ in range(args.repeats)),
            "hash": statistics.median(
                rate(lambda: space.hash(pool[next(it) % len(pool)]), 0.5) for _ in range(args.repeats)
            ),
            "sample+hash": statistics.median(
                rate(lambda: space.hash(space.sample(rng)), 0.5) for _ in range(args.repeats)
            ),
            "mutate": statistics.median(
                rate(lambda: space.mutate(pool[next(it) % len(pool)], rng), 0.5) for _ in range(args.repeats)
            ),
        }
        label = name + ("" if not opts else "(" + ",".join(f"{k}={v}" for k, v in opts.items()) + ")")
        rows[label] = figures
        print(
            f"{label:<26}{figures['sample']:>12,.0f}{figures['hash']:>12,.0f}"
            f"{figures['sample+hash']:>16,.0f}{figures['mutate']:>12,.0f}"
        )
    results["spaces"] = rows
    print("(target: nasbench201 sample+hash >= 20,000/s)")

    data = Path(args.data_dir).resolve()
    print("\ntable loads (median; 'cold' = fresh process incl. the pandas import, 'warm' = pandas already imported)")
    loads = {}
    for label, call in [
        ("nasbench201", "load_nasbench201"),
        ("enas6", "load_enas6"),
        ("nasbench101-subset", "load_nasbench101_subset"),
    ]:
        cold = fresh_process_seconds(
            f"import nas_ray.evaluators as e; e.{call}({str(data)!r})", max(3, args.repeats // 2)
        ) - fresh_process_seconds("import nas_ray.evaluators", max(3, args.repeats // 2))
        warm_times = []
        import nas_ray.evaluators.tables as tables

        for _ in range(args.repeats):
            tables._CACHE.clear()  # measure the read, not the in-process memo
            t = time.perf_counter()
            getattr(tables, call)(data)
            warm_times.append(time.perf_counter() - t)
        loads[label] = {"cold_s": cold, "warm_s": statistics.median(warm_times)}
        print(f"  {label:<22} cold {cold * 1000:7.0f} ms   warm {loads[label]['warm_s'] * 1000:7.0f} ms")
    results["table_loads"] = loads
    print("(target: nasbench201 load < 1 s)")

    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

"""Load: many tabular trials through Tune on a local Ray, a few at a time.

Runs ``--trials`` NAS-Bench-201 table lookups as Tune trials (random search, ``--concurrent`` at a
time) and reports: trials completed, unique architectures, failures, trials per second, and the
driver's resident memory (RSS, sampled every second) after the first 10 % of the trials and at the
end. Every trial must complete and be recorded once.

    python benchmarks/tune_load.py --data-dir ../shared/data --trials 2000 --concurrent 4

writes ``bench-out/tune_load.json``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import psutil

from nas_ray.search import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--concurrent", type=int, default=4)
    ap.add_argument("--searcher", default="random")
    ap.add_argument("--out", default="bench-out/tune_load.json")
    args = ap.parse_args()

    proc = psutil.Process()
    samples: list[tuple[float, int, float]] = []  # (seconds, rows so far, RSS MiB)
    rows: list[dict] = []
    stop = threading.Event()
    started = time.perf_counter()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter() - started, len(rows), proc.memory_info().rss / 2**20))
            stop.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = run(evaluator="table:nasbench201:cifar10", data_dir=args.data_dir, searcher=args.searcher, budget=args.trials,
                 seed=0, backend="tune", max_concurrent=args.concurrent, progress=rows.append, output=Path("bench-out") / "tune-load-run")
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    table = result.table
    first = [s for s in samples if s[1] >= args.trials // 10]
    first_ok = [s for s in samples if s[1] > 0]
    rss_early = first[0][2] if first else float("nan")
    rss_end = samples[-1][2]
    t_first = first_ok[0][0] if first_ok else 0.0
    out = {
        "trials": args.trials, "concurrent": args.concurrent, "completed": int(len(table)), "unique": int(table["hash"].nunique()),
        "failed": int((table["status"] != "ok").sum()), "wall_s": wall, "first_result_s": t_first,
        "trials_per_s": len(table) / max(wall - t_first, 1e-9), "rss_mib_at_10pct": rss_early, "rss_mib_end": rss_end,
        "rss_mib_max": max(s[2] for s in samples),
    }
    print(f"{out['completed']} of {args.trials} trials completed ({out['unique']} unique, {out['failed']} failed), "
          f"{args.concurrent} at a time, in {wall:.0f} s: {out['trials_per_s']:.1f} trials/s after the first result "
          f"({t_first:.0f} s of start-up)")
    print(f"driver RSS: {rss_early:.0f} MiB after 10 % of the trials, {rss_end:.0f} MiB at the end (max {out['rss_mib_max']:.0f})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({**out, "samples": samples}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

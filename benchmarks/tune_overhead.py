"""Loop overhead per trial: nas-ray's Tune backend vs bare Ray Tune vs the in-process loop.

    python benchmarks/tune_overhead.py --data-dir ../shared/data [--trials 200] [--concurrency 1]

All three run in one process on one Ray session, alternating, ``--repeats`` times each:
- nas-ray tune: ``nas_ray.search.run(backend="tune")`` with random search on the NB201 table;
- bare Tune: a function trainable that only reports, Tune's default searcher, same trials, same
  concurrency and ``reuse_actors=True`` (what the nas-ray backend uses);
- nas-ray local: the in-process loop, no Ray.
Reported: median milliseconds per trial (fit wall time / trials) and the ratio to bare Tune.
Target: nas-ray tune <= 1.2 x bare Tune.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def bare_tune(trials: int, concurrency: int) -> float:
    from ray import tune

    def trainable(config: dict) -> None:
        tune.report({"reward": config["x"]})

    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(num_samples=trials, max_concurrent_trials=concurrency, metric="reward",
                                    mode="max", reuse_actors=True),
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="bare-tune-"), verbose=0),
    )
    start = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

    import ray

    from nas_ray.evaluators import TabularEvaluator
    from nas_ray.search import run
    from nas_ray.search.tune_backend import ensure_ray

    ev = TabularEvaluator.nasbench201("cifar10", data_dir=args.data_dir)
    ensure_ray(None)
    times: dict[str, list[float]] = {"nas-ray tune": [], "bare Tune": [], "nas-ray local": []}
    for r in range(args.repeats):
        common = dict(evaluator=ev, searcher="random", budget=args.trials, seed=r, max_concurrent=args.concurrency,
                      progress=False)
        times["nas-ray tune"].append(run(backend="tune", output=tempfile.mkdtemp(prefix="nas-ray-tune-"), **common).summary["wall_s"])
        times["bare Tune"].append(bare_tune(args.trials, args.concurrency))
        times["nas-ray local"].append(run(backend="local", **common).summary["wall_s"])
    ray.shutdown()
    ms = {k: 1000 * statistics.median(v) / args.trials for k, v in times.items()}
    print(f"{args.trials} NB201 table trials, concurrency {args.concurrency}, median of {args.repeats} "
          f"(ms per trial; ratio to bare Tune)")
    for k, v in ms.items():
        print(f"  {k:<14}{v:>10.2f} ms {v / ms['bare Tune']:>8.2f}x")
    print("target: nas-ray tune <= 1.2x bare Tune")
    if args.json:
        args.json.write_text(json.dumps({"ms_per_trial": ms, "raw_seconds": times, "trials": args.trials,
                                         "concurrency": args.concurrency}, indent=2))


if __name__ == "__main__":
    main()

"""Searcher overhead: milliseconds per suggest() (and per on_trial_complete()) after 10 / 100 / 1000 results.

    python benchmarks/searcher_latency.py [--space nasbench201] [--searcher random --searcher evolution ...]
        [--updates sync ray]

Each searcher is fed results of a cheap synthetic score up to each level, then timed over the next
``--probe`` suggest/complete pairs (median, mean and max of suggest: searchers that update their
model in some calls only pay there). ``--updates`` lists the model-update modes to time the
searchers that have model updates (graphpnas, latent-bo, nasgem) in: ``sync`` fits inside
``suggest`` (the local backend), ``ray`` in a Ray task as under Tune (a local Ray is started),
``thread`` in a thread. Prints a table and writes ``--json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from nas_ray import Architecture
from nas_ray.searchers import available_searchers, get_searcher


LEARNED = ("graphpnas", "latent-bo", "nasgem")  # the searchers with model updates


def score(arch: Architecture) -> float:
    return float(sum("conv" in op for op in arch.ops) + 0.1 * arch.num_edges)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="nasbench201")
    parser.add_argument("--searcher", action="append")
    parser.add_argument("--levels", default="10,100,1000")
    parser.add_argument("--probe", type=int, default=20)
    parser.add_argument("--updates", nargs="+", default=["sync"], choices=["sync", "ray", "thread"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if "ray" in args.updates:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    levels = [int(x) for x in args.levels.split(",")]
    names = args.searcher or available_searchers()  # GraphPNAS refits inside suggest: minutes to N=100
    table: dict[str, dict[int, dict[str, float]]] = {}
    runs = [(name, mode) for name in names for mode in (args.updates if name in LEARNED else ["sync"])]
    for name, mode in runs:
        label = name if name not in LEARNED or len(args.updates) == 1 and mode == "sync" else f"{name} ({mode})"
        searcher = get_searcher(name, args.space, seed=0, updates=mode)
        done = 0
        table[label] = {}
        for level in levels:
            while done < level:
                config = searcher.suggest(f"w{done}")
                searcher.on_trial_complete(f"w{done}", {"reward": score(Architecture.from_dict(config["arch"]))})
                done += 1
            suggest_s, complete_s = [], []
            for i in range(args.probe):
                t0 = time.perf_counter()
                config = searcher.suggest(f"p{level}-{i}")
                t1 = time.perf_counter()
                searcher.on_trial_complete(f"p{level}-{i}", {"reward": score(Architecture.from_dict(config["arch"]))})
                t2 = time.perf_counter()
                suggest_s.append(t1 - t0)
                complete_s.append(t2 - t1)
            done += args.probe
            # a batch searcher (latent-bo) or a refitting one (graphpnas) pays in some calls only: mean and max too
            table[label][level] = {"suggest_ms": 1000 * statistics.median(suggest_s),
                                  "suggest_mean_ms": 1000 * statistics.fmean(suggest_s),
                                  "suggest_max_ms": 1000 * max(suggest_s),
                                  "complete_ms": 1000 * statistics.median(complete_s)}
    print(f"{args.space}: ms per suggest after N results (median / mean / max over {args.probe} calls; "
          "median ms per on_trial_complete)")
    print(f"{'searcher':<20}" + "".join(f"{f'N={n}':>38}" for n in levels))
    for name, row in table.items():
        print(f"{name:<20}" + "".join(f"{row[n]['suggest_ms']:>10.2f} /{row[n]['suggest_mean_ms']:>9.2f} /{row[n]['suggest_max_ms']:>9.1f}"
                                      f"  {row[n]['complete_ms']:>5.2f}" for n in levels))
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()

"""What ASHA saves on a training search: the same architectures searched with and without the scheduler.

Random search proposes the same architectures whatever the results, so with one seed both runs train
the same cells; the difference is only what ASHA stops early. Prints, per run: best validation
accuracy, wall time, trials stopped early, epochs trained in all (the compute spent), and whether the
best architecture of the run without a scheduler was trained to the end (kept) by ASHA.

    python benchmarks/asha_saving.py --budget 20                     # train:digits, 2 trials at a time

Both runs use one local Ray with the CPUs of this machine (one per trial), started and warmed up by a
two-trial search first.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

from nas_ray.search import run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--evaluator", default="train:digits")
    p.add_argument("--budget", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-concurrent", type=int, default=2)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="evaluator option")
    p.add_argument("--data-dir")
    p.add_argument("--json")
    args = p.parse_args(argv)
    import yaml

    options = {k: yaml.safe_load(v) for k, _, v in (o.partition("=") for o in args.option)}
    # warm-up: Ray's start and its first workers' imports are not charged to the first run
    with tempfile.TemporaryDirectory() as out:
        run(evaluator=args.evaluator, evaluator_options={**options, "epochs": 1}, searcher="random", budget=2,
            seed=args.seed + 1, backend="tune", max_concurrent=args.max_concurrent, data_dir=args.data_dir, output=out,
            progress=False)
    rows = []
    for scheduler in (None, "asha"):
        with tempfile.TemporaryDirectory() as out:
            result = run(evaluator=args.evaluator, evaluator_options=options, searcher="random", budget=args.budget,
                         seed=args.seed, backend="tune", max_concurrent=args.max_concurrent, scheduler=scheduler,
                         data_dir=args.data_dir, output=out, progress=False)
        t = result.table
        ok = t[t["status"] == "ok"]
        best = result.best_row
        rows.append({
            "scheduler": scheduler or "none", "evaluations": len(t), "failed": int((t["status"] != "ok").sum()),
            "best_accuracy": float(best["reward"]), "best_hash": best["hash"], "wall_s": result.summary["wall_s"],
            "stopped_early": int(result.summary["stopped_early"]), "epochs_trained": int(ok["epoch"].sum()),
            "epochs_full": int(len(t) * ok["epoch"].max()),
            "full_hashes": sorted(ok.loc[ok["epoch"] == ok["epoch"].max(), "hash"]),
        })
    base = rows[0]
    print(f"{'scheduler':<10} {'evals':>5} {'best acc':>9} {'wall s':>8} {'stopped':>8} {'epochs':>12} {'best kept':>9}")
    for r in rows:
        print(f"{r['scheduler']:<10} {r['evaluations']:>5} {r['best_accuracy']:>9.2f} {r['wall_s']:>8.1f} "
              f"{r['stopped_early']:>8} {r['epochs_trained']:>5}/{r['epochs_full']:<6} "
              f"{'yes' if base['best_hash'] in r['full_hashes'] else 'no':>9}")
    asha = rows[1]
    print(f"ASHA: {100 * (1 - asha['epochs_trained'] / base['epochs_trained']):.0f} % fewer epochs, "
          f"{100 * (1 - asha['wall_s'] / base['wall_s']):.0f} % less wall time")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Make my-chain's benchmark table: train every network of the space on scikit-learn's digits.

    python examples/own_space/make_table.py             # depth 4: 81 networks, about a minute or two
    python examples/own_space/make_table.py --epochs 2  # quicker, noisier

Writes ``my_chain_digits.csv`` next to this file (or ``$MY_CHAIN_TABLE``): one row per network,
keyed by the space's hash: the validation accuracy (percent) of a training run with seed 0 (what
searchers see), that of a second run with seed 1 (what benchmarks report, as NAS-Bench-201 reports
another split than the one searched), the parameter count and the multiply-accumulates.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import space as my  # noqa: E402 - registers my-chain, its networks and my-table

from nas_ray.evaluators import ImageTrainingEvaluator  # noqa: E402


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--out", default=str(my.table_path()))
    args = p.parse_args(argv)
    space = my.MyChain(args.depth)
    runs = [ImageTrainingEvaluator("digits", space, epochs=args.epochs, seed=seed) for seed in (0, 1)]
    rows = []
    cells = list(itertools.product(my.OPS, repeat=args.depth))
    for i, layers in enumerate(cells, 1):
        arch = space.from_decisions({f"layer{k}": op for k, op in enumerate(layers)})
        first, second = (run.evaluate(arch) for run in runs)
        rows.append({"arch": space.hash(arch), "val_acc": round(first["val_accuracy"], 3),
                     "val_acc_seed1": round(second["val_accuracy"], 3), "params": int(first["params"]),
                     "macs": int(first["macs"])})
        print(f"[{i}/{len(cells)}] {rows[-1]['arch']}: val {rows[-1]['val_acc']:.1f} %", file=sys.stderr, flush=True)
    out = Path(args.out)
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out} ({len(rows)} networks)")
    return out


if __name__ == "__main__":
    main()

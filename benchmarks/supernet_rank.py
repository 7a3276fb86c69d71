"""How well the ENAS macro supernet ranks architectures: Kendall tau between its scores and the ENAS-6
table's weight-sharing accuracies (D-VAE's data, from ENAS's own supernet on CIFAR-10), on a seeded
sample of table architectures, after each of several training budgets. Two supernet seeds are also
ranked against each other (the agreement a supernet has with itself bounds what it can have with the
table), and with ``--standalone N`` against the first N architectures trained alone on the same data.

    python benchmarks/supernet_rank.py --data-dir ../shared/data --archs 200 --epochs 5 20 60

Prints one row per training budget; ``--json`` writes the rows. The digits supernet (the default, the
only dataset that ships with the package) is trained on 8x8 digits, not CIFAR-10, so its ranking
measures how far digits transfers to the table's CIFAR-10 ranking, not the port's fidelity.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from scipy.stats import kendalltau, spearmanr

from nas_ray.evaluators import load_enas6
from nas_ray.evaluators.supernet import SupernetConfig, SupernetTrainer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=None, help="holds enas6/final_structures6.txt (and CIFAR binaries)")
    p.add_argument("--archs", type=int, default=200)
    p.add_argument("--epochs", type=int, nargs="+", default=[5, 20, 60], help="cumulative training budgets")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--standalone", type=int, default=0, metavar="N",
                   help="also train the first N architectures alone (train:<dataset>, 8 epochs) and rank against that")
    p.add_argument("--json")
    args = p.parse_args(argv)

    table = load_enas6(args.data_dir)
    rng = np.random.default_rng(0)
    pick = rng.choice(len(table.archs), size=args.archs, replace=False)
    archs = [table.archs[i] for i in pick]
    truth = np.array([table.values[table.rows[table.space.hash(a)], 0] for a in archs])
    layer_lists = [table.space.to_native(a) for a in archs]
    print(f"{args.archs} ENAS-6 architectures, table accuracy {truth.min():.4f}-{truth.max():.4f}; supernet on "
          f"{args.dataset}, {args.channels} channels, seeds {args.seeds}", file=sys.stderr)

    standalone = None
    if args.standalone:
        from nas_ray.evaluators.training import ImageTrainingEvaluator

        ev = ImageTrainingEvaluator(args.dataset, table.space, data_dir=args.data_dir, preset="small",
                                    num_threads=args.threads)
        start = time.perf_counter()
        standalone = np.array([ev.evaluate(a)["val_accuracy"] for a in archs[:args.standalone]])
        print(f"standalone training of {args.standalone} architectures: {time.perf_counter() - start:.0f} s, "
              f"accuracy {standalone.min():.1f}-{standalone.max():.1f}; tau(table) of standalone "
              f"{kendalltau(standalone, truth[:args.standalone]).statistic:.3f}", flush=True)

    trainers = [SupernetTrainer(SupernetConfig(num_layers=6, channels=args.channels, dataset=args.dataset,
                                               data_dir=args.data_dir, warmup_epochs=0, seed=s,
                                               num_threads=args.threads, device=args.device)) for s in args.seeds]
    rows = []
    print(f"{'epochs':>6} {'tau(table)':>10} {'rho(table)':>10} {'tau(seeds)':>10} {'tau(alone)':>10} {'mean acc':>9} "
          f"{'spread':>7} {'train s':>8} {'score s':>8}")
    for epochs in sorted(args.epochs):
        scores, train_s, score_s = [], 0.0, 0.0
        for t in trainers:
            start = time.perf_counter()
            t.train(epochs - t.epochs_trained)
            train_s += time.perf_counter() - start
            start = time.perf_counter()
            scores.append(np.array(t.score(layer_lists)))
            score_s += time.perf_counter() - start
        taus = [kendalltau(s, truth).statistic for s in scores]
        rhos = [spearmanr(s, truth).statistic for s in scores]
        between = kendalltau(scores[0], scores[1]).statistic if len(scores) > 1 else float("nan")
        alone = float("nan")
        if standalone is not None:
            alone = float(np.mean([kendalltau(s[:len(standalone)], standalone).statistic for s in scores]))
        row = {"epochs": epochs, "tau_table": float(np.mean(taus)), "tau_table_per_seed": [float(x) for x in taus],
               "rho_table": float(np.mean(rhos)), "tau_between_seeds": float(between), "tau_standalone": alone,
               "mean_score": float(np.mean(scores)), "score_spread": float(np.mean([s.std() for s in scores])),
               "train_s": train_s, "score_s": score_s}
        rows.append(row)
        print(f"{epochs:>6} {row['tau_table']:>10.3f} {row['rho_table']:>10.3f} {between:>10.3f} {alone:>10.3f} "
              f"{row['mean_score']:>9.2f} {row['score_spread']:>7.2f} {train_s:>8.1f} {score_s:>8.1f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

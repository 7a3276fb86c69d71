"""NASGEM's predictor claim on NAS-Bench-201 (the design of the paper's Tables 3-4).

1,000 distinct random NB201 cells are split 600 (train pool) / 400 (test). A score predictor (input
-> 64 -> 32 -> 1 ReLU MLP, MSE, Adam 1e-3; the same for every input) is trained on 10 / 20 / 40 / 60 %
of the pool with three inputs:

- ``adj``: the raw flattened upper-triangular adjacency plus one-hot ops (84 numbers);
- ``mlp-ae``: the embedding of a plain MLP autoencoder (``nas-ray train-encoder --autoencoder``);
- ``nasgem``: the WL-kernel-guided embedding (``nas-ray train-encoder``),

and scored by Kendall tau and Pearson r on the 400 test cells, over ``--repeats`` draws of the split
and of the training subset (mean +- std). The paper's numbers (its own 1,000-cell benchmark of
conv3x3-only cells, 30-epoch CIFAR-10 accuracy) print beside ours as context.

    nas-ray train-encoder --space nasbench201 --out bench-out/nasgem/nb201-nasgem.pt
    nas-ray train-encoder --space nasbench201 --autoencoder --out bench-out/nasgem/nb201-ae.pt
    python benchmarks/nasgem_predictor.py --data-dir ../shared/data

writes ``bench-out/nasgem/predictor.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, pearsonr

from nas_ray.evaluators.tabular import TabularEvaluator
from nas_ray.models.nasgem import AdjacencyFeatures, ScorePredictor, embed, fit_scores, load_encoder, predict_scores

#: the paper's NASGEM-Bench at 10 / 20 / 30 / 50 / 70 / 100 % of 600 cells (Kendall tau, Pearson r)
PAPER = {
    "adj": ([.42, .45, .44, .44, .46, .46], [.47, .64, .62, .66, .67, .66]),
    "mlp-ae": ([.45, .47, .44, .45, .46, .47], [.57, .58, .66, .63, .62, .71]),
    "nasgem": ([.48, .53, .53, .55, .54, .55], [.76, .82, .84, .85, .85, .85]),
}
PAPER_FRACTIONS = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0]


def predictor_scores(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                     steps: int, seed: int) -> tuple[float, float]:
    """Kendall tau and Pearson r on the test cells of a predictor trained on standardised inputs/targets."""
    mean, std = x_train.mean(0), x_train.std(0)
    std = np.where(std > 1e-6, std, 1.0)
    ym, ys = y_train.mean(), y_train.std() or 1.0
    torch.manual_seed(seed)
    net = ScorePredictor(x_train.shape[1])
    fit_scores(net, (x_train - mean) / std, (y_train - ym) / ys, steps=steps, batch_size=32, seed=seed)
    pred = predict_scores(net, ((x_test - mean) / std).astype(np.float32))[:, 0]
    return float(kendalltau(pred, y_test)[0]), float(pearsonr(pred, y_test)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--target", default="c10_test200", help="NB201 column to predict (default: CIFAR-10 200-epoch test accuracy)")
    ap.add_argument("--nasgem", default="bench-out/nasgem/nb201-nasgem.pt")
    ap.add_argument("--ae", default="bench-out/nasgem/nb201-ae.pt")
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.2, 0.4, 0.6])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--steps", type=int, default=1000, help="Adam steps per predictor (batch 32)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="bench-out/nasgem/predictor.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ev = TabularEvaluator.nasbench201("cifar10", data_dir=args.data_dir, report=[args.target])
    space = ev.space
    keys = list(ev.table.rows)
    y_all = ev.table.column(args.target)
    encoders = {"mlp-ae": load_encoder(args.ae, space=space)[0], "nasgem": load_encoder(args.nasgem, space=space)[0]}
    feats = AdjacencyFeatures(space)
    results: dict[str, dict[str, list[list[float]]]] = {name: {"tau": [], "r": []} for name in ("adj", "mlp-ae", "nasgem")}
    started = time.perf_counter()
    for rep in range(args.repeats):
        rng = np.random.default_rng(rep)
        pick = rng.choice(len(keys), size=1000, replace=False)
        archs = [space.from_native(keys[i]) for i in pick]
        y = np.array([y_all[ev.table.rows[keys[i]]] for i in pick], dtype=np.float64)
        x = {"adj": feats(archs)}
        for name, enc in encoders.items():
            x[name] = embed(enc, x["adj"])
        pool, test = np.arange(600), np.arange(600, 1000)
        for name in results:
            taus, rs = [], []
            for frac in args.fractions:
                train = rng.permutation(pool)[: int(round(frac * 600))]
                tau, r = predictor_scores(x[name][train], y[train], x[name][test], y[test], steps=args.steps, seed=rep)
                taus.append(tau)
                rs.append(r)
            results[name]["tau"].append(taus)
            results[name]["r"].append(rs)
        print(f"repeat {rep + 1}/{args.repeats} done ({time.perf_counter() - started:.0f} s)", flush=True)

    print(f"\nNB201 predictor quality: target {args.target}, 1,000 random cells = 600 pool / 400 test, "
          f"{args.repeats} repeats (mean +- std)")
    head = "".join(f"{f'{int(100 * f)}%':>14}" for f in args.fractions)
    for metric, label in (("tau", "Kendall tau"), ("r", "Pearson r")):
        print(f"\n{label:<12}{head}")
        for name, res in results.items():
            a = np.array(res[metric])
            print(f"{name:<12}" + "".join(f"{m:>8.3f}+-{s:.3f}" for m, s in zip(a.mean(0), a.std(0))))
        paper_idx = 0 if metric == "tau" else 1
        for name, vals in PAPER.items():
            shown = {f: v for f, v in zip(PAPER_FRACTIONS, vals[paper_idx])}
            print(f"{'paper ' + name:<12}" + "".join(f"{shown[f]:>14.2f}" if f in shown else f"{'-':>14}" for f in args.fractions))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"target": args.target, "fractions": args.fractions, "repeats": args.repeats,
                                          "steps": args.steps, "results": results, "paper": PAPER,
                                          "paper_fractions": PAPER_FRACTIONS,
                                          "encoders": {"nasgem": args.nasgem, "mlp-ae": args.ae}}, indent=1))
    print(f"\nwrote {args.out} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()

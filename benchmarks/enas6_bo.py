"""D-VAE's ENAS-6 latent-space BO setting on a trained graph VAE, scored through ``table:enas6``.

The protocol is D-VAE's (followed by DVAE-EMB and SVGe): the latent means of the 17,118 training
graphs and their weight-sharing accuracies are the initial data; each trial (seed 1, 2, ...) runs
``--rounds`` (10) rounds in which a sparse GP (500 inducing points, 100 epochs, targets
standardised by the initial data) is fitted, a batch of ``--batch`` (50) points is chosen by
kriging-believer expected improvement over a 10,000-point grid in the training latents' box, each
point is decoded ``--decodes`` (500) times, and its most frequent valid decode is scored. A point
without a valid decode gets the worst training score. The chosen latent points (not re-encodings)
join the data; the GP is refitted from scratch. ``--random`` adds the protocol's random baseline in
the same run: uniform points in the same box, decoded and scored the same way.

Scoring. The table holds 19,020 measured graphs of a space of ~1.5e9, and the ENAS supernet that
measured them is not part of nas-ray, so a decode that is in the table gets its measured
weight-sharing accuracy (``table:enas6``) and any other gets a surrogate's prediction: a
gradient-boosted tree ensemble (scikit-learn) on the one-hot node types and the adjacency, fitted
on every table entry; its held-out RMSE and Pearson r (fitted on the training part only, scored on
the test part) are printed first. Predicted scores are labelled as such and are not comparable
with the papers, which fully train the top-5 (D-VAE, DVAE-EMB) or top-15 (SVGe) found
architectures on CIFAR-10 and report test accuracy; that step needs GPUs and is not run here.

    python benchmarks/enas6_bo.py --checkpoint bench-out/curves-enas6-2h/dvae-emb-fast-paper-size.pt \\
        --trials 10 --random --data-dir ../shared/data --out bench-out/enas6-bo

Prints per model the best score after each round (mean over trials), the share of valid decodes
and of valid decodes already in the table (measured, not novel), the mean score of the chosen
points (``batch mean``: invalid points count as the worst training score), and the top-5 architectures
found; writes ``OUT/bo.json`` (after every trial) and ``OUT/bo.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from nas_ray.errors import ArchitectureNotInTable
from nas_ray.evaluators import get_evaluator
from nas_ray.evaluators.tables import enas6_vae_split
from nas_ray.models.graph_vae import GraphCodec
from nas_ray.models.nasgem import AdjacencyFeatures
from nas_ray.models.numerics import flush_denormals
from nas_ray.models.sgp import SparseGP, select_batch
from nas_ray.models.vae_training import encode_archs, load_model

#: fully-trained CIFAR-10 test accuracy (%) of the best BO-found architecture, as published
PUBLISHED_TOP1 = {"dvae": 94.80, "dvae-emb": 95.33, "svge": 95.04, "svge-triplet": 95.13}


class Scorer:
    """Measured weight-sharing accuracy from ``table:enas6`` where the table has the graph, else the surrogate's prediction."""

    def __init__(self, codec: GraphCodec, data_dir: str | None, train: list, ytr: np.ndarray, test: list, yte: np.ndarray) -> None:
        from scipy.stats import pearsonr
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.space = codec.space
        features = self.features = AdjacencyFeatures(codec.space)  # upper-triangular adjacency + one-hot ops
        self.table = get_evaluator("table:enas6", data_dir=data_dir)
        self.metric = self.table.metric

        def fit(x: np.ndarray, y: np.ndarray) -> HistGradientBoostingRegressor:
            return HistGradientBoostingRegressor(max_iter=1000, learning_rate=0.05, max_leaf_nodes=31,
                                                 l2_regularization=1.0, random_state=0).fit(x, y)

        pred = fit(features(train), ytr).predict(features(test))
        self.held_out = {"rmse": float(np.sqrt(np.mean((pred - yte) ** 2))), "pearson_r": float(pearsonr(pred, yte)[0]),
                         "test_std": float(np.std(yte))}
        x_all = features(train + test)
        self.model = fit(x_all, np.concatenate([ytr, yte]))
        # a tree ensemble does not extrapolate: its highest prediction on the table's own graphs bounds what it can score
        self.held_out["max_prediction_on_table"] = float(self.model.predict(x_all).max())
        self.held_out["table_max"] = float(max(ytr.max(), yte.max()))
        self.cache: dict[str, tuple[float, bool]] = {}

    def __call__(self, arch) -> tuple[float, bool]:  # noqa: ANN001
        """(score, measured)."""
        key = self.space.hash(arch)
        if key not in self.cache:
            try:
                self.cache[key] = (float(self.table.lookup(key)[self.metric]), True)
            except ArchitectureNotInTable:
                self.cache[key] = (float(self.model.predict(self.features([arch]))[0]), False)
        return self.cache[key]


def choose(codec: GraphCodec, decodes: list[tuple[np.ndarray, np.ndarray, int]]):  # noqa: ANN201
    """The most frequent valid decode of one point (D-VAE's intended rule), or None."""
    counts: Counter[str] = Counter()
    first: dict[str, object] = {}
    for types, adj, count in decodes:
        arch = codec.to_arch(types, adj)
        if arch is not None:
            key = codec.space.hash(arch)
            counts[key] += count
            first.setdefault(key, arch)
    return first[counts.most_common(1)[0][0]] if counts else None


def run_trial(model, codec: GraphCodec, scorer: Scorer, x0: np.ndarray, y0: np.ndarray, seed: int, args: argparse.Namespace,
              random_points: bool) -> dict:
    """One trial; returns per-round records and every scored architecture."""
    lower, upper = x0.min(0), x0.max(0)
    x, y = x0.copy(), y0.copy()
    worst = float(y0.min())
    rng = np.random.default_rng(seed)
    rounds, found = [], []
    for r in range(args.rounds):
        t0 = time.perf_counter()
        if random_points:
            points = rng.uniform(lower, upper, size=(args.batch, x.shape[1]))
        else:  # the GP minimises: targets are minus the accuracy, standardised by the initial data
            gp = SparseGP(num_inducing=500, epochs=100, seed=seed * 1000 + r, y_mean=float(-y0.mean()),
                          y_std=float(y0.std())).fit(x, -y)
            points = np.asarray(select_batch(gp, lower, upper, args.batch, grid_size=10_000, seed=seed * 1000 + r), dtype=np.float64)
        t1 = time.perf_counter()
        z = torch.as_tensor(points, dtype=torch.float32)
        decoded = model.decode_counts(z, args.decodes, generator=torch.Generator().manual_seed(seed * 1000 + r))
        scores, valid, measured = [], 0, 0
        for per_point in decoded:
            arch = choose(codec, per_point)
            if arch is None:
                scores.append(worst)
                continue
            score, in_table = scorer(arch)
            valid += 1
            measured += in_table
            scores.append(score)
            found.append({"key": scorer.space.hash(arch), "arch": arch.to_dict(), "score": score, "measured": in_table, "round": r + 1, "seed": seed})
        x = np.vstack([x, points])
        y = np.concatenate([y, scores])
        t2 = time.perf_counter()
        best = max((f["score"] for f in found), default=worst)
        best_measured = max((f["score"] for f in found if f["measured"]), default=float("nan"))
        rounds.append({"round": r + 1, "best": best, "best_measured": best_measured, "batch_mean": float(np.mean(scores)),
                       "valid": valid, "in_table": measured, "select_s": t1 - t0, "decode_score_s": t2 - t1})
        print(f"  seed {seed} round {r + 1:>2}: best so far {best:.4f} (measured {best_measured:.4f}), batch mean "
              f"{np.mean(scores):.4f}, valid {valid}/{args.batch}, in the table {measured}; "
              f"{t1 - t0:.0f} s {'sampling' if random_points else 'GP + EI'}, {t2 - t1:.0f} s decoding", flush=True)
    return {"seed": seed, "rounds": rounds, "found": found}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", action="append", required=True, help="a trained ENAS-6 graph VAE (repeatable)")
    p.add_argument("--trials", type=int, default=10, help="seeds 1..N (default 10, the papers')")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--decodes", type=int, default=500)
    p.add_argument("--random", action="store_true", help="also the random baseline (uniform points in the latent box)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir")
    p.add_argument("--out", default="bench-out/enas6-bo")
    args = p.parse_args()
    if min(args.trials, args.rounds, args.batch, args.decodes) < 1:
        p.error("--trials, --rounds, --batch and --decodes must be >= 1")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, ytr, test, yte = enas6_vae_split(args.data_dir)
    results: dict = {"args": vars(args), "models": {}}
    scorer = None
    with flush_denormals():
        for path in args.checkpoint:
            model, space, ckpt = load_model(path)
            if space.name != "enas-macro":
                raise SystemExit(f"{path}: a {space.name} model; this benchmark needs an ENAS-6 (enas-macro) one")
            codec = GraphCodec(space)
            if scorer is None:
                t0 = time.perf_counter()
                scorer = Scorer(codec, args.data_dir, train, ytr, test, yte)
                h = scorer.held_out
                print(f"surrogate for graphs outside the table: held-out RMSE {h['rmse']:.4f} (test std {h['test_std']:.4f}), "
                      f"Pearson r {h['pearson_r']:.3f}; its highest prediction on the table's graphs {h['max_prediction_on_table']:.4f} "
                      f"(the table's best {h['table_max']:.4f}); {time.perf_counter() - t0:.0f} s", flush=True)
                results["surrogate"] = h
            x0 = encode_archs(model, codec, train).numpy().astype(np.float64)
            name = Path(path).stem
            runs = {"bo": False, "random": True} if args.random else {"bo": False}
            for kind, random_points in runs.items():
                print(f"{name} ({ckpt['model']}), {kind}:", flush=True)
                trials = results["models"].setdefault(name, {"model": ckpt["model"]}).setdefault(kind, [])
                for seed in range(1, args.trials + 1):
                    trials.append(run_trial(model, codec, scorer, x0, ytr, seed, args, random_points))
                    (out / "bo.json").write_text(json.dumps(results, indent=1))  # a stopped run keeps its finished trials
    report(results, float(ytr.max()), out)


def report(results: dict, train_best: float, out: Path) -> None:
    print(f"\nbest weight-sharing accuracy in the training data: {train_best:.4f}")
    header = f"{'model':<30} {'run':<7} {'best (mean±std over trials)':<28} {'best measured':<14} {'valid %':>8} {'in table %':>10} {'batch mean':>10}"
    print(header)
    print("-" * len(header))
    for name, runs in results["models"].items():
        for kind in ("bo", "random"):
            if kind not in runs:
                continue
            trials = runs[kind]
            best = np.array([t["rounds"][-1]["best"] for t in trials])
            measured = [t["rounds"][-1]["best_measured"] for t in trials]
            measured = max((m for m in measured if m == m), default=float("nan"))
            total = sum(len(t["rounds"]) for t in trials) * results["args"]["batch"]
            valid = sum(r["valid"] for t in trials for r in t["rounds"])
            in_table = sum(r["in_table"] for t in trials for r in t["rounds"])
            print(f"{name:<30} {kind:<7} {best.mean():.4f} ± {best.std():.4f}{'':<12} {measured:<14.4f} "
                  f"{100 * valid / total:>8.2f} {100 * in_table / max(valid, 1):>10.2f} "
                  f"{np.mean([r['batch_mean'] for t in trials for r in t['rounds']]):>10.4f}")
            curve = np.mean([[r["best"] for r in t["rounds"]] for t in trials], axis=0)
            print(f"{'':<30} {'':<7} best after each round: {' '.join(f'{v:.4f}' for v in curve)}")
        found = sorted((f for t in runs["bo"] for f in t["found"]), key=lambda f: -f["score"])
        seen, top = set(), []
        for f in found:
            if f["key"] not in seen:
                seen.add(f["key"])
                top.append(f)
            if len(top) == 5:
                break
        print(f"  top-5 by BO ({'measured' if all(f['measured'] for f in top) else 'scores marked * are predicted'}); "
              f"published fully-trained top-1 for {runs['model']}: {PUBLISHED_TOP1.get(runs['model'], float('nan')):.2f} % "
              "(CIFAR-10 test, not measurable here)")
        for f in top:
            print(f"    {f['score']:.4f}{'' if f['measured'] else '*'}  {' '.join(f['arch']['ops'][1:-1])}  (D-VAE string: {f['key']})")
    plot(results, train_best, out / "bo.png")


def plot(results: dict, train_best: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, runs in results["models"].items():
        for kind, style in (("bo", "-"), ("random", "--")):
            if kind in runs:
                best = np.array([[r["best"] for r in t["rounds"]] for t in runs[kind]])
                xs = np.arange(1, best.shape[1] + 1)
                ax.plot(xs, best.mean(0), style, marker="o", label=f"{name} {kind}")
                ax.fill_between(xs, best.min(0), best.max(0), alpha=0.15)
    ax.axhline(train_best, color="grey", lw=0.8, ls=":", label="best in training data")
    ax.set_xlabel("BO round (50 points each)")
    ax.set_ylabel("best weight-sharing accuracy found\n(measured in table, else predicted)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

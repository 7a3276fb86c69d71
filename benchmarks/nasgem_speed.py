"""NASGEM speed on NAS-Bench-201: the WL Gram matrix, encoder training, and one suggestion.

- WL kernel: the normalised 1,000 x 1,000 Gram matrix of random NB201 cells (h = 3), cold (a new
  ``WLKernel``, so every graph's labels are computed) and warm (labels memoised);
- encoder training: the seconds recorded in the ``nas-ray train-encoder`` checkpoint (pairs with
  their WL similarities, then the Adam iterations);
- one suggestion with M = 10,000 candidates after a random initial design of 10 table results:
  the first (the candidate pool sampled and embedded, the predictor fitted) and then, per
  completed trial, the next one (predictor fine-tuned, 20 % of the pool resampled, all re-predicted),
  median over ``--suggestions``; single- and two-objective (hypervolume) modes.

    python benchmarks/nasgem_speed.py --data-dir ../shared/data --threads 2

writes ``bench-out/nasgem/speed.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from nas_ray import Architecture
from nas_ray.models.nasgem import load_encoder
from nas_ray.models.wl_kernel import WLKernel
from nas_ray.search.loop import with_objective
from nas_ray.searchers.nasgem import NASGEMSearcher


def suggestion_times(ev, encoder: str, candidates: int, suggestions: int, objective=None) -> dict[str, float]:  # noqa: ANN001
    searcher = NASGEMSearcher(ev.space, encoder=encoder, candidates=candidates, num_initial=10, seed=0,
                              metric=ev.metric, mode=ev.mode, objective=objective)

    def complete(trial: str, config: dict) -> None:
        searcher.on_trial_complete(trial, ev.evaluate(Architecture.from_dict(config["arch"])))

    for i in range(10):
        complete(f"init{i}", searcher.suggest(f"init{i}"))
    times = []
    for i in range(suggestions + 1):
        start = time.perf_counter()
        config = searcher.suggest(f"t{i}")
        times.append(time.perf_counter() - start)
        complete(f"t{i}", config)
    return {"first_s": times[0], "next_median_s": float(np.median(times[1:])), "next_max_s": float(np.max(times[1:]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--encoder", default="bench-out/nasgem/nb201-nasgem.pt")
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--suggestions", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench-out/nasgem/speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from nas_ray.evaluators.tabular import TabularEvaluator

    ev = TabularEvaluator.nasbench201("cifar10", data_dir=args.data_dir)
    rng = np.random.default_rng(0)
    archs = [ev.space.sample(rng) for _ in range(1000)]
    cold, warm = [], []
    for _ in range(3):
        kernel = WLKernel(h=3)
        start = time.perf_counter()
        gram = kernel.gram(archs)
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        kernel.gram(archs)
        warm.append(time.perf_counter() - start)
    _, _, ckpt = load_encoder(args.encoder, space=ev.space)
    enc = ckpt["seconds"]
    out = {
        "threads": args.threads,
        "wl_gram_1000": {"cold_s": float(np.median(cold)), "warm_s": float(np.median(warm)), "shape": list(gram.shape)},
        "encoder_training": {"pairs": ckpt["config"]["pairs"], "iterations": ckpt["config"]["iterations"],
                             "pairs_s": enc["pairs_s"], "wl_s": enc["wl_s"], "train_s": enc["train_s"], "total_s": enc["total_s"]},
        "suggest_scalar": suggestion_times(ev, args.encoder, args.candidates, args.suggestions),
    }
    mo_ev, objective = with_objective(ev, cost="lat_pixel3_ms", pareto=True)
    out["suggest_pareto"] = suggestion_times(mo_ev, args.encoder, args.candidates, args.suggestions, objective)

    g, e = out["wl_gram_1000"], out["encoder_training"]
    print(f"NASGEM speed on NB201 ({args.threads} torch threads)")
    print(f"WL Gram 1,000 x 1,000 (h=3): cold {g['cold_s']:.2f} s, warm {g['warm_s']:.3f} s (median of 3)")
    print(f"encoder training: {e['pairs']} pairs in {e['pairs_s']:.1f} s (WL {e['wl_s']:.1f} s), "
          f"{e['iterations']} iterations in {e['train_s']:.1f} s")
    for mode in ("scalar", "pareto"):
        s = out[f"suggest_{mode}"]
        print(f"suggest, M={args.candidates} ({mode}): first {s['first_s']:.2f} s, next median {s['next_median_s']:.3f} s "
              f"(max {s['next_max_s']:.3f} s) over {args.suggestions}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

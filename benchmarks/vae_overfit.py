"""Overfit check of each graph VAE: can it memorise 256 fixed graphs (greedy reconstruction of those
same graphs) within a few hundred optimiser steps? A model or loss that cannot is broken, whatever
the recipe; one that can but generalises slowly needs more data or epochs.

    python benchmarks/vae_overfit.py --space nasbench201 --steps 400
    python benchmarks/vae_overfit.py --space enas-macro --sizes paper --steps 400

Batch 32 over the 256 graphs (8 steps per pass), Adam at ``--lr``, the fast recipe's loss (per-graph
NLL + 0.005 KL, batch mean, gradient clipping at 5); greedy reconstruction every ``--every`` steps.
"""

from __future__ import annotations

import argparse
import time

import torch

from nas_ray import get_space
from nas_ray.models.graph_vae import GraphCodec
from nas_ray.models.vae_training import _reconstructed, build_model, space_graphs

SMALL = {"dvae": {"hidden_dim": 128, "latent_dim": 16}, "dvae-emb": {"hidden_dim": 128, "latent_dim": 16},
         "svge": {"node_dim": 64, "latent_dim": 16}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="nasbench201")
    p.add_argument("--models", nargs="+", default=["dvae", "dvae-emb", "svge"])
    p.add_argument("--sizes", choices=["small", "paper"], default="small", help="small: latent-bo's sizes; paper: the published")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--every", type=int, default=40)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    space = get_space(args.space)
    codec = GraphCodec(space)
    graphs = space_graphs(space, 256, seed=0)[:256]
    data = codec.batch(graphs)
    keys = [codec.key(a) for a in graphs]
    print(f"{args.space}: {len(graphs)} fixed graphs, batch 32, lr {args.lr}, {args.sizes} sizes")
    print(f"{'model':<10} {'steps to 100 %':>15} {'final recon %':>14} {'seconds':>8}  recon % every {args.every} steps")
    for name in args.models:
        torch.manual_seed(0)
        model = build_model(name, codec, **(SMALL[name] if args.sizes == "small" else {}))
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        gen = torch.Generator().manual_seed(0)
        curve, first, start = [], None, time.perf_counter()
        for step in range(1, args.steps + 1):
            if (step - 1) % 8 == 0:
                order = torch.randperm(len(graphs), generator=gen)
            idx = order[((step - 1) % 8) * 32:((step - 1) % 8 + 1) * 32]
            model.train()
            loss = model.loss(data.index(idx), beta=0.005, reduction="mean")["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            if step % args.every == 0:
                acc = _reconstructed(model, codec, data, keys)
                curve.append(acc)
                if first is None and acc >= 1.0:
                    first = step
        seconds = time.perf_counter() - start
        shown = " ".join(f"{100 * a:.0f}" for a in curve)
        print(f"{name:<10} {first if first else 'not reached':>15} {100 * curve[-1]:>14.1f} {seconds:>8.0f}  {shown}", flush=True)


if __name__ == "__main__":
    main()

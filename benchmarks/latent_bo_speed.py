"""Graph-VAE and latent-BO speed on this machine.

- seconds per training epoch on the 17,118 ENAS-6 training graphs, per model at the published
  sizes (batch 32), extrapolated from ``--batches`` timed batches after one warm-up batch;
- one BO suggestion round (GP fit + kriging-believer batch of 50 by EI) at 100 and 1,000
  observations in a 56-dimensional latent space, and the decoding of those 50 points 500 times each.

    python benchmarks/latent_bo_speed.py --data-dir ../shared/data --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from nas_ray import get_space
from nas_ray.evaluators.tables import enas6_vae_split
from nas_ray.models.graph_vae import GraphCodec
from nas_ray.models.sgp import SparseGP, select_batch
from nas_ray.models.vae_training import build_model


def epoch_seconds(name: str, codec: GraphCodec, train: list, batches: int) -> float:
    torch.manual_seed(0)
    model = build_model(name, codec)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    order = np.random.default_rng(0).permutation(len(train))
    times = []
    for k in range(batches + 1):
        batch = codec.batch([train[i] for i in order[k * 32:(k + 1) * 32]])
        t0 = time.perf_counter()
        loss = model.loss(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if k:
            times.append(time.perf_counter() - t0)
    return float(np.median(times)) * int(np.ceil(len(train) / 32))


def bo_round(n_obs: int, dim: int = 56, batch: int = 50) -> dict[str, float]:
    rng = np.random.default_rng(n_obs)
    x = rng.normal(size=(n_obs, dim))
    y = np.sin(x[:, :3].sum(1)) + 0.1 * rng.normal(size=n_obs)
    t0 = time.perf_counter()
    gp = SparseGP(num_inducing=500, epochs=100, seed=0).fit(x, y)
    t1 = time.perf_counter()
    select_batch(gp, x.min(0), x.max(0), batch, grid_size=10_000, seed=0)
    t2 = time.perf_counter()
    return {"fit_s": t1 - t0, "select_s": t2 - t1, "total_s": t2 - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--models", nargs="+", default=["dvae", "dvae-emb", "svge"])
    p.add_argument("--json", default="bench-out/latent_bo_speed.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    space = get_space("enas-macro")
    codec = GraphCodec(space)
    train, _, _, _ = enas6_vae_split(args.data_dir)
    out: dict[str, dict] = {"threads": args.threads, "epoch_s": {}, "bo": {}, "decode_s": {}}
    for name in args.models:
        out["epoch_s"][name] = epoch_seconds(name, codec, train, args.batches)
        print(f"{name:<10} {out['epoch_s'][name]:8.0f} s per ENAS-6 epoch (17,118 graphs, batch 32)", flush=True)
    for n in (100, 1000):
        out["bo"][str(n)] = bo_round(n)
        r = out["bo"][str(n)]
        print(f"BO round, {n:>5} observations: GP fit {r['fit_s']:.1f} s + batch of 50 by EI {r['select_s']:.1f} s = {r['total_s']:.1f} s", flush=True)
    for name in args.models:
        torch.manual_seed(0)
        model = build_model(name, codec).eval()
        z = torch.randn(50, model.latent_dim).repeat_interleave(500, 0)
        t0 = time.perf_counter()
        for i in range(0, len(z), 4096):
            model.decode(z[i:i + 4096], generator=torch.Generator().manual_seed(0))
        out["decode_s"][name] = time.perf_counter() - t0
        print(f"{name:<10} decoding 50 points x 500: {out['decode_s'][name]:.1f} s", flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

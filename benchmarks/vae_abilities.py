"""ENAS-6 graph-VAE abilities: reconstruction, prior validity, uniqueness, novelty and the sparse-GP
RMSE / Pearson r (D-VAE's protocol), beside the published table.

Two phases, so a long CPU training can run in the background and be stopped at a deadline:

    # train (checkpoint after every epoch; --resume continues; stop it whenever)
    python benchmarks/vae_abilities.py train --model dvae --data-dir ../shared/data --out bench-out/vae
    # evaluate every checkpoint in the folder and print the table
    python benchmarks/vae_abilities.py report --data-dir ../shared/data --out bench-out/vae

``train`` uses the published recipe (300 epochs per iteration, batch 32, Adam 1e-4); ``--epochs``
and ``--iterations`` shorten it. The report states how many epochs each checkpoint had.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from nas_ray import get_space
from nas_ray.evaluators.tables import enas6_vae_split
from nas_ray.models.vae_training import PretrainConfig, pretrain


def cmd_train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    space = get_space("enas-macro", num_layers=6)
    train, _, _, _ = enas6_vae_split(args.data_dir)
    config = PretrainConfig(model=args.model, epochs=args.epochs, iterations=args.iterations, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"{args.model}.history.jsonl"

    def record(row: dict) -> None:
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")

    pretrain(space, train, config, checkpoint=out / f"{args.model}.pt", resume=True, callback=record, device=args.device)


def cmd_report(args: argparse.Namespace) -> None:
    from nas_ray.models.vae_metrics import PUBLISHED_ENAS6, format_abilities, vae_abilities

    torch.set_num_threads(args.threads)
    train, ytrain, test, ytest = enas6_vae_split(args.data_dir)
    rows = {}
    for ckpt in sorted(Path(args.out).glob("*.pt")):
        t0 = time.perf_counter()
        rows[ckpt.stem] = vae_abilities(ckpt, train, test, ytrain, ytest, decodes=args.decodes, prior_samples=args.prior_samples,
                                        sgp_seeds=range(1, args.sgp_seeds + 1), seed=0)
        rows[ckpt.stem]["seconds"] = time.perf_counter() - t0
        print(f"{ckpt.stem}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    table = format_abilities(rows, PUBLISHED_ENAS6)
    print(table)
    (Path(args.out) / "abilities.json").write_text(json.dumps(rows, indent=1))
    (Path(args.out) / "abilities.txt").write_text(table + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--model", default="dvae-emb")
    t.add_argument("--epochs", type=int, default=300)
    t.add_argument("--iterations", type=int, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--device", default=None)
    t.set_defaults(func=cmd_train)
    r = sub.add_parser("report")
    r.add_argument("--decodes", type=int, default=10, help="stochastic decodes per z (protocol: 10 z x 10 decodes)")
    r.add_argument("--prior-samples", type=int, default=1000)
    r.add_argument("--sgp-seeds", type=int, default=10)
    r.add_argument("--threads", type=int, default=2)
    r.set_defaults(func=cmd_report)
    for q in (t, r):
        q.add_argument("--data-dir", default=None)
        q.add_argument("--out", default="bench-out/vae")
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()

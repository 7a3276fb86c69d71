"""Graph-VAE learning curves: per epoch the training loss and KL, the greedy reconstruction of
held-out graphs and the validity of the scaled prior, against epochs and wall time, for any models
and recipes on a space's pretraining data (NB201: all 15,625 cells, 90/10; ENAS-6: D-VAE's split).

    python benchmarks/vae_curves.py --space nasbench201 --run svge:fast --run svge:paper \\
        --run dvae-emb:fast --minutes 15 --data-dir ../shared/data --out bench-out/curves-nb201
    python benchmarks/vae_curves.py --space enas-macro --run dvae:fast:paper-size --minutes 120 ...

A run is ``MODEL:RECIPE[:SIZE]`` with SIZE ``small`` (SVGe node 64 / D-VAE hidden 128, latent 16:
the latent-bo default) or ``paper-size`` (the published 250/501 and latent 56). Each run trains
until its epochs are done or ``--minutes`` of wall time have passed, checkpointing every epoch
(``--resume`` continues); ``--parallel 2`` trains two runs at a time, one thread each. The rows go
to ``OUT/RUN.jsonl``, the table to stdout and ``OUT/curves.json``, the curves to ``OUT/curves.png``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SIZES = {
    "small": {"svge": {"node_dim": 64, "latent_dim": 16}, "dvae": {"hidden_dim": 128, "latent_dim": 16}},
    "paper-size": {"svge": {}, "dvae": {}},
}


class _Deadline(Exception):
    pass


def parse_run(run: str) -> tuple[str, str, str]:
    parts = run.split(":")
    if len(parts) not in (2, 3) or parts[1] not in ("fast", "paper"):
        raise SystemExit(f"--run {run!r}: expected MODEL:RECIPE[:SIZE] with RECIPE fast or paper")
    size = parts[2] if len(parts) == 3 else "small"
    if size not in SIZES:
        raise SystemExit(f"--run {run!r}: SIZE must be one of {', '.join(SIZES)}")
    return parts[0], parts[1], size


def train_one(args: argparse.Namespace, run: str) -> None:
    import torch

    from nas_ray import get_space
    from nas_ray.latent import vae_dataset
    from nas_ray.models.vae_training import PretrainConfig, pretrain

    torch.set_num_threads(args.threads)
    model, recipe, size = parse_run(run)
    space = get_space(args.space)
    data = vae_dataset(space, "table", args.data_dir, seed=0)
    options = SIZES[size]["svge" if model.startswith("svge") else "dvae"]
    config = PretrainConfig(model=model, recipe=recipe, model_options=dict(options), seed=args.seed,
                            **({"epochs": args.epochs} if args.epochs else {}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = run.replace(":", "-")
    log = out / f"{name}.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()] if args.resume and log.exists() else []
    if not args.resume:
        log.unlink(missing_ok=True)
    elapsed = rows[-1]["wall_s"] if rows else 0.0
    start = time.perf_counter() - elapsed

    def record(row: dict) -> None:
        row = {**row, "wall_s": time.perf_counter() - start, "graphs": len(data.train)}
        with log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{run}: epoch {row['epoch']} ({row['wall_s'] / 60:.1f} min) held-out recon {row['val_recon_acc']:.4f} "
              f"prior validity {row['prior_validity']:.4f}", flush=True)
        if row["wall_s"] > 60 * args.minutes:
            raise _Deadline

    try:
        pretrain(space, data.train, config, checkpoint=out / f"{name}.pt", resume=args.resume, progress=False,
                 callback=record, validation=data.test)
    except _Deadline:
        pass


def report(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    curves = {run: [json.loads(line) for line in (out / f"{run.replace(':', '-')}.jsonl").read_text().splitlines()]
              for run in args.run if (out / f"{run.replace(':', '-')}.jsonl").exists()}
    print(f"{'run':<28} {'epochs':>6} {'minutes':>8} {'held-out recon %':>17} {'prior validity %':>17} {'first epoch >= 99 % recon':>26}")
    table = {}
    for run, rows in curves.items():
        last = rows[-1]
        hit = next((r for r in rows if r["val_recon_acc"] >= 0.99), None)
        table[run] = {"epochs": len(rows), "minutes": last["wall_s"] / 60, "val_recon_acc": last["val_recon_acc"],
                      "prior_validity": last["prior_validity"], "best_val_recon_acc": max(r["val_recon_acc"] for r in rows),
                      "epoch_99": hit["epoch"] if hit else None, "minutes_99": hit["wall_s"] / 60 if hit else None}
        first = f"{hit['epoch']} ({hit['wall_s'] / 60:.1f} min)" if hit else "not reached"
        print(f"{run:<28} {len(rows):>6} {last['wall_s'] / 60:>8.1f} {100 * last['val_recon_acc']:>17.2f} "
              f"{100 * last['prior_validity']:>17.2f} {first:>26}")
    (out / "curves.json").write_text(json.dumps({"table": table, "curves": curves}, indent=1))
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for run, rows in curves.items():
        minutes = [r["wall_s"] / 60 for r in rows]
        n = rows[0]["graphs"]
        axes[0, 0].plot(minutes, [100 * r["val_recon_acc"] for r in rows], marker=".", label=run)
        axes[0, 1].plot(minutes, [100 * r["prior_validity"] for r in rows], marker=".", label=run)
        axes[1, 0].plot([r["epoch"] for r in rows], [100 * r["val_recon_acc"] for r in rows], marker=".", label=run)
        # recon/KL per graph: "mean" sums batch means, "code" sums batch sums (D-VAE) or means (SVGe)
        batches = -(-n // 32)
        axes[1, 1].semilogy([r["epoch"] for r in rows], [r["recon"] / batches for r in rows], marker=".", label=run)
    for ax, title, xl in ((axes[0, 0], "held-out greedy reconstruction (%)", "wall minutes"),
                          (axes[0, 1], "scaled-prior validity (%)", "wall minutes"),
                          (axes[1, 0], "held-out greedy reconstruction (%)", "epoch"),
                          (axes[1, 1], "training reconstruction loss per batch", "epoch")):
        ax.set_title(title)
        ax.set_xlabel(xl)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"graph-VAE learning curves on {args.space} ({args.threads} thread(s) per run)")
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    print(f"curves: {out / 'curves.png'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="nasbench201", choices=["nasbench201", "enas-macro"])
    p.add_argument("--run", action="append", required=True, help="MODEL:RECIPE[:SIZE], repeatable")
    p.add_argument("--minutes", type=float, default=15.0, help="wall-time budget per run")
    p.add_argument("--epochs", type=int, help="epochs per run (default: the recipe's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--parallel", type=int, default=1, help="runs trained at a time (subprocesses)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--out", default="bench-out/vae-curves")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--one", help=argparse.SUPPRESS)  # a worker: train this run only
    args = p.parse_args()
    for run in args.run:
        parse_run(run)
    if args.one:
        train_one(args, args.one)
        return
    if not args.report_only:
        base = [sys.executable, __file__, "--space", args.space, "--minutes", str(args.minutes), "--threads", str(args.threads),
                "--seed", str(args.seed), "--out", args.out] + (["--data-dir", args.data_dir] if args.data_dir else []) \
            + (["--epochs", str(args.epochs)] if args.epochs else []) + (["--resume"] if args.resume else [])
        pending, running = list(args.run), []
        while pending or running:
            while pending and len(running) < args.parallel:
                run = pending.pop(0)
                running.append(subprocess.Popen(base + ["--run", run, "--one", run]))
            running[0].wait()
            if running[0].returncode:
                raise SystemExit(f"run failed with exit status {running[0].returncode}")
            running.pop(0)
    report(args)


if __name__ == "__main__":
    main()

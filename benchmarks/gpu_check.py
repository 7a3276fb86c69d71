"""The GPU check of the training evaluator, in one script of under 5 minutes on a CUDA machine.

1. trains one NAS-Bench-101 (full-size network) and one NAS-Bench-201 network with the evaluator and
   with a plain PyTorch loop on the same batches, and prints images/s of both and their ratio;
2. runs a 4-trial Tune search with ``gpus_per_trial=0.5`` (two trials share a card) and prints each
   trial's images/s and peak GPU memory (skipped, with the reason, where Ray is not installed);
3. trains each graph VAE (D-VAE, DVAE-EMB, SVGe) at the published sizes on ENAS-6 graphs (D-VAE's
   file under ``--data-dir``, else random ENAS graphs) and prints training graphs/s and the
   seconds of one 17,118-graph epoch (batch 32, the paper recipe's), plus graphs/s at batch 256;
4. runs the tests marked ``gpu``.

    python benchmarks/gpu_check.py --json gpu_check.json
    python benchmarks/gpu_check.py --device cpu --quick     # the same code paths on a CPU, for a dry run

Data: CIFAR-10 from ``--data-dir`` when its binary files are there, else random CIFAR-shaped images.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_overhead import measure  # noqa: E402


def tune_search(device: str, gpus_per_trial: float, epochs: int, data_dir: str | None) -> dict:
    try:
        import ray  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"Ray is not installed here ({exc})"}
    from nas_ray.search import run

    options = {"space": "nasbench201", "epochs": epochs, "device": device, "batch_size": 256}
    start = time.perf_counter()
    result = run(evaluator="train:digits", evaluator_options=options, searcher="random", budget=4, seed=0,
                 backend="tune", max_concurrent=4, gpus_per_trial=gpus_per_trial if device != "cpu" else None,
                 cpus_per_trial=1, data_dir=data_dir, progress=False)
    t = result.table
    cols = [c for c in ("query", "status", "val_accuracy", "images_per_s", "peak_gpu_memory_mb", "wall_s") if c in t]
    print(t[cols].to_string(index=False), flush=True)
    import ray

    ray.shutdown()
    return {"wall_s": time.perf_counter() - start, "rows": t[cols].to_dict("records"),
            "gpus_per_trial": gpus_per_trial}


def vae_throughput(device: str, data_dir: str | None, quick: bool) -> dict:
    """Graph-VAE training speed at the published sizes: graphs/s and one ENAS-6 epoch, per model."""
    import numpy as np

    from nas_ray import get_space
    from nas_ray.models.graph_vae import GraphCodec
    from nas_ray.models.vae_training import build_model

    space = get_space("enas-macro")
    codec = GraphCodec(space)
    try:
        from nas_ray.evaluators.tables import enas6_vae_split

        graphs = enas6_vae_split(data_dir)[0]
    except Exception as exc:  # noqa: BLE001 - no data folder: the same shapes from random graphs
        print(f"ENAS-6 file not found ({type(exc).__name__}); random ENAS graphs instead", flush=True)
        rng = np.random.default_rng(0)
        graphs = [space.sample(rng) for _ in range(4_096)]
    out: dict = {}
    for name in ("dvae", "dvae-emb", "svge"):
        torch.manual_seed(0)
        model = build_model(name, codec, **({"hidden_dim": 32} if quick and name != "svge" else {})).to(device)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        row: dict = {}
        for batch_size in (32, 256):
            steps = 3 if quick else 20
            batches = [codec.batch(graphs[i * batch_size:(i + 1) * batch_size], device) for i in range(steps + 2)]
            for k, batch in enumerate(batches):
                if k == 2:  # two warm-up steps (allocator, kernels)
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    t0 = time.perf_counter()
                loss = model.loss(batch, reduction="mean")["loss"]
                opt.zero_grad()
                loss.backward()
                opt.step()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            rate = steps * batch_size / (time.perf_counter() - t0)
            row[f"graphs_per_s_batch{batch_size}"] = rate
        row["epoch_s_batch32"] = 17_118 / row["graphs_per_s_batch32"]
        out[name] = row
        print(f"{name:<9} {row['graphs_per_s_batch32']:8.0f} graphs/s at batch 32 (one ENAS-6 epoch {row['epoch_s_batch32']:.0f} s), "
              f"{row['graphs_per_s_batch256']:8.0f} graphs/s at batch 256", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--data-dir")
    p.add_argument("--quick", action="store_true", help="small sizes (a CPU dry run)")
    p.add_argument("--json")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible; use --device cpu --quick for a dry run", file=sys.stderr)
        return 2
    report: dict = {"device": args.device, "torch": torch.__version__}
    if args.device.startswith("cuda"):
        report["card"] = torch.cuda.get_device_name(torch.device(args.device))
    print(f"== 1. evaluator vs plain loop ({report.get('card', args.device)})", flush=True)
    images, batch, threads = (512, 64, 1) if args.quick else (12_800, 256, 4)
    report["overhead"] = measure(args.device, images, batch, 3, threads, args.data_dir,
                                 "small" if args.quick else "full")
    print("== 2. four Tune trials, 0.5 GPU each", flush=True)
    report["tune"] = tune_search(args.device, 0.5, 1 if args.quick else 2, args.data_dir)
    if "skipped" in report["tune"]:
        print(report["tune"]["skipped"], flush=True)
    if args.device.startswith("cuda"):
        report["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
        print(f"peak GPU memory of this process: {report['peak_gpu_memory_mb']:.0f} MiB", flush=True)
    print("== 3. graph-VAE training throughput (published sizes)", flush=True)
    report["vae"] = vae_throughput(args.device, args.data_dir, args.quick)
    print("== 4. tests marked gpu", flush=True)
    root = Path(__file__).resolve().parents[1]
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests"],
                           cwd=root, capture_output=True, text=True, env={**os.environ})
    report["gpu_tests"] = tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else tests.stderr[-500:]
    print(report["gpu_tests"], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

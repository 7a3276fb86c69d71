"""Training evaluator vs a plain PyTorch loop: images/s on the same network and the same batches.

The evaluator's loop adds a per-step learning-rate update, loss bookkeeping, per-epoch validation
(not timed: images/s counts training time only, on both sides), resumable state and metrics. This
measures what that costs against the smallest loop that does the same arithmetic (forward,
cross-entropy, backward, SGD step with the same batch order, autocast and memory format).

    python benchmarks/training_overhead.py                      # CPU, one thread, as Ray trials run
    python benchmarks/training_overhead.py --device cuda --images 25000 --batch 256

Each network is trained ``--epochs`` epochs by each side; the first epoch is warm-up, images/s is the
mean of the others. Data: CIFAR-10 from ``--data-dir`` if its binary files are there, else random
CIFAR-shaped images (the arithmetic, hence the speed, is the same).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F

from nas_ray.evaluators.datasets import ImageData, load_dataset
from nas_ray.evaluators.networks import build_network
from nas_ray.evaluators.training import ImageTrainingEvaluator, TrainingConfig
from nas_ray.spaces import get_space

NB101_CELL = {"ops": ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "output"],
              "matrix": [[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1],
                         [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]]}
NB201_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def networks(preset_101: str) -> list[tuple[str, Any, dict[str, Any]]]:
    from nas_ray.graph import Architecture

    nb201 = get_space("nasbench201")
    return [
        (f"nasbench101 ({preset_101})", get_space("nasbench101").canonicalize(Architecture.from_dict(NB101_CELL)),
         {"space": "nasbench101", "preset": preset_101}),
        ("nasbench201", nb201.from_native(NB201_CELL), {"space": "nasbench201", "preset": "default"}),
    ]


def synthetic(images: int, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(images, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (images,), generator=g)
    val = (x[:512], y[:512])
    return ImageData(train=(x, y), val=val, test=None, num_classes=10, in_channels=3, image_size=32,
                     mean=(0.0,) * 3, std=(1.0,) * 3, augment="none", name="synthetic-cifar")


def plain_loop(model: torch.nn.Module, data: ImageData, cfg: TrainingConfig, device: torch.device) -> list[float]:
    """images/s of each epoch of the smallest equivalent loop."""
    x, y = (t.to(device) for t in data.train)
    dtype = cfg.autocast_dtype(device)
    memory_format = torch.channels_last if cfg.uses_channels_last(device) else torch.contiguous_format
    model = model.to(device, memory_format=memory_format).train()
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    rates = []
    steps = math.ceil(len(y) / cfg.batch_size)
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)).to(device)
        start, seen = time.perf_counter(), 0
        for i in range(steps):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            inputs = x[idx].contiguous(memory_format=memory_format)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = F.cross_entropy(model(inputs), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(idx)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates.append(seen / (time.perf_counter() - start))
    return rates


def measure(device: str, images: int, batch: int, epochs: int, threads: int, data_dir: str | None,
            preset_101: str) -> list[dict[str, Any]]:
    torch.set_num_threads(threads)
    try:
        data = load_dataset("cifar10", data_dir, val_size=512)
        data = ImageData(train=(data.train[0][:images], data.train[1][:images]), val=data.val, test=None,
                         num_classes=10, in_channels=3, image_size=32, mean=data.mean, std=data.std,
                         augment="none", name="cifar10")
    except Exception:  # noqa: BLE001 - no CIFAR-10 here: random images of the same shape
        data = synthetic(images)
    cfg = TrainingConfig(epochs=epochs, batch_size=batch, device=device, num_threads=threads, augment=False)
    rows = []
    for name, arch, net in networks(preset_101):
        evaluator = ImageTrainingEvaluator(data, net["space"], cfg, preset=net["preset"])
        steps = list(evaluator.iterate(arch))
        ours = [s.metrics["images_per_s"] for s in steps[1:]]
        torch.manual_seed(cfg.seed)
        model = build_network(net["space"], arch, num_classes=10, in_channels=3, preset=net["preset"])
        plain = plain_loop(model, data, cfg, evaluator.device)[1:]
        row = {"network": name, "device": str(evaluator.device), "data": data.name, "images": len(data.train[1]),
               "batch": batch, "evaluator_images_per_s": sum(ours) / len(ours),
               "plain_images_per_s": sum(plain) / len(plain),
               "params": steps[-1].metrics["params"], "macs": steps[-1].metrics["macs"],
               "peak_gpu_memory_mb": steps[-1].metrics.get("peak_gpu_memory_mb")}
        row["ratio"] = row["evaluator_images_per_s"] / row["plain_images_per_s"]
        rows.append(row)
        print(f"{name:<24} {row['device']:<7} evaluator {row['evaluator_images_per_s']:>9.1f} img/s   plain "
              f"{row['plain_images_per_s']:>9.1f} img/s   ratio {row['ratio']:.3f}   params {row['params']:,.0f}   "
              f"MACs {row['macs'] / 1e6:,.1f} M" + (f"   peak {row['peak_gpu_memory_mb']:.0f} MiB"
                                                  if row["peak_gpu_memory_mb"] else ""), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=1024, help="training images per epoch")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3, help="the first is warm-up")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--preset-101", default="small", help="NB101 network preset: small or full")
    p.add_argument("--data-dir")
    p.add_argument("--json")
    args = p.parse_args(argv)
    rows = measure(args.device, args.images, args.batch, args.epochs, args.threads, args.data_dir, args.preset_101)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

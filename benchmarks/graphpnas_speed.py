"""GraphPNAS speed: batched sampling, one generator refit per search step,
and the architecture-design environment; plus the 10,000-episode mask check of every space.

    python benchmarks/graphpnas_speed.py --data-dir ../shared/data [--json bench-out/graphpnas_speed.json]

Medians of repeated timings on this machine; the environment is stepped with pre-drawn legal
actions, so the figure is the environment's own cost (masks, checks, the table lookup at the end).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from nas_ray import get_space
from nas_ray.construction import Builder
from nas_ray.envs import ArchitectureDesignEnv, random_legal_action
from nas_ray.evaluators.tabular import TabularEvaluator
from nas_ray.models.graphpnas import GraphPNASGenerator
from nas_ray.models.learning import PRESETS, ReplayBuffer, advantages, fit_generator


def sampling(space_name: str, batch: int, repeats: int, threads: int) -> float:
    torch.set_num_threads(threads)
    space = get_space(space_name)
    gen = GraphPNASGenerator.for_space(space, seed=0)
    g = torch.Generator().manual_seed(0)
    gen.sample(space, batch, generator=g)  # warm-up
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        gen.sample(space, batch, generator=g)
        rates.append(batch / (time.perf_counter() - t))
    return statistics.median(rates)


def refit_seconds(preset: str, ev: TabularEvaluator, repeats: int) -> tuple[float, int]:
    """One refit of the preset on a buffer of 30 evaluated cells (its top-k, cdf weights)."""
    torch.set_num_threads(1)  # what the searcher uses
    cfg = PRESETS[preset]
    space = ev.space
    rng = np.random.default_rng(0)
    buf = ReplayBuffer()
    for i in range(30):
        a = space.sample_prior("no_none", rng)
        buf.add(a, space.hash(a), ev.evaluate(a)["reward"], i)
    entries = buf.top(cfg.keep(30, len(buf)))
    builder = Builder(space)
    trajs = [builder.trajectory(e.arch) for e in entries]
    adv = advantages(buf, entries, cfg.objective)
    times, steps = [], 0
    for r in range(repeats):
        gen = GraphPNASGenerator.for_space(space, cfg.generator, seed=r)
        t = time.perf_counter()
        steps = fit_generator(gen, trajs, adv, cfg, rng)["gradient_steps"]
        times.append(time.perf_counter() - t)
    return statistics.median(times), steps


def env_speed(ev: TabularEvaluator, episodes: int) -> float:
    env = ArchitectureDesignEnv(ev.space, ev)
    rng = np.random.default_rng(0)
    plans = []
    for _ in range(episodes):
        obs, _ = env.reset()
        done, plan = False, []
        while not done:
            a = random_legal_action(obs, rng)
            plan.append(a)
            obs, _, done, _, _ = env.step(a)
        plans.append(plan)
    rates = []
    for _ in range(3):
        t, steps = time.perf_counter(), 0
        for plan in plans:
            env.reset()
            for a in plan:
                env.step(a)
                steps += 1
        rates.append(steps / (time.perf_counter() - t))
    return statistics.median(rates)


def mask_check(space_name: str, options: dict, episodes: int) -> dict:
    env = ArchitectureDesignEnv(space_name, space_options=options)
    builder = Builder(env.space)
    rng = np.random.default_rng(1)
    bad = 0
    for _ in range(episodes):
        obs, _ = env.reset()
        done = False
        while not done:
            obs, _, done, _, info = env.step(random_legal_action(obs, rng))
        raw = env.architecture()
        try:
            env.space.validate(raw)
            builder.trajectory(raw)
        except Exception:  # noqa: BLE001 - counted and reported
            bad += 1
        bad += not info["valid"]
    return {"space": space_name, "options": options, "episodes": episodes, "invalid_or_forbidden": bad}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--episodes", type=int, default=10_000, help="random legal episodes per space for the mask check")
    args = p.parse_args()
    out: dict = {}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available")
    print("\nbatched sampling (batch 2000, 2 threads), graphs/s; target >= 2,000 NB201 and >= 1,000 NB101")
    for name in ("nasbench201", "nasbench101"):
        rate = sampling(name, 2000, 5, 2)
        out[f"sample_per_s_{name}"] = rate
        print(f"  {name:<12} {rate:>9.0f}")
    print("\none generator refit per search step (fresh weights, 1 thread), seconds; target <= 2 s for NB201")
    for preset, dataset in (("nb201-cifar10", "cifar10"), ("nb201-cifar100", "cifar100"), ("nb201-imagenet16-120", "imagenet16-120")):
        ev = TabularEvaluator.nasbench201(dataset, data_dir=args.data_dir)
        seconds, steps = refit_seconds(preset, ev, 1)
        out[f"refit_s_{preset}"] = seconds
        print(f"  {preset:<22} {seconds:>7.2f} s  ({steps} gradient steps, {seconds / steps * 1000:.1f} ms each)")
    print("\nenvironment steps/s with the NB201 table (pre-drawn legal actions); target >= 5,000")
    rate = env_speed(TabularEvaluator.nasbench201("cifar10", data_dir=args.data_dir), 1000)
    out["env_steps_per_s_nb201_table"] = rate
    print(f"  {rate:>9.0f}")
    print(f"\nmask check: {args.episodes} random legal episodes per space")
    out["mask_check"] = []
    for name, options in (("nasbench201", {}), ("nasbench101", {}), ("enas-macro", {}), ("enas-macro", {"num_layers": 12}),
                          ("randwire", {"num_nodes": 5}), ("randwire", {"num_nodes": 8})):
        res = mask_check(name, options, args.episodes)
        out["mask_check"].append(res)
        print(f"  {name:<12} {json.dumps(options):<20} invalid or forbidden: {res['invalid_or_forbidden']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2))
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

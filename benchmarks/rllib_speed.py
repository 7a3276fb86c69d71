"""GraphPNAS under RLlib: evaluation parallelism across env runners, and where an iteration's time goes.

    python benchmarks/rllib_speed.py --data-dir ../shared/data

1. Parallelism: an evaluator that sleeps ``--sleep`` seconds per architecture, ``--per-step``
   architectures per search step, with 1 and 2 env runners (evaluations inside the runners) and
   with 2 runners evaluating through a Ray task each (``evaluation="remote"``): evaluations per
   second over ``--steps`` steps (after one warm-up step).
2. Iteration time on NB201 / CIFAR-10 with the code's preset (70 epochs on the best 15, one
   architecture per step), 0 and 2 env runners: the whole ``train()`` call, the learner update
   (RLlib's), the same update computed by ``fit_generator`` outside RLlib (the generator maths
   alone), the env runners' sampling, and the rest (RLlib's bookkeeping, weight sync, evaluation).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def _sleeper(seconds: float):  # noqa: ANN202
    from nas_ray.evaluators.base import Evaluator
    from nas_ray.spaces import get_space

    class Sleeper(Evaluator):
        metric, mode = "score", "max"
        space = get_space("nasbench201")

        def evaluate(self, arch):  # noqa: ANN001, ANN201
            time.sleep(seconds)
            return {"score": float(arch.num_edges)}

    return Sleeper()


def parallelism(args: argparse.Namespace) -> None:
    from nas_ray.searchers.reinforce import REINFORCEConfig

    print(f"\n1. evaluations per second, evaluator sleeping {args.sleep} s, {args.per_step} architectures per step")
    print(f"{'setting':<34}{'evals':>7}{'seconds':>9}{'evals/s':>9}")
    rates = {}
    for label, runners, evaluation in [("1 env runner", 1, "local"), ("2 env runners", 2, "local"),
                                       ("2 env runners, a Ray task each", 2, "remote")]:
        config = (
            REINFORCEConfig()
            .search(space="nasbench201", evaluator=_sleeper(args.sleep), evaluation=evaluation)
            .training(samples_per_step=args.per_step, epochs=2, epsilon_steps=1)
            .env_runners(num_env_runners=runners)
            .debugging(seed=0)
        )
        algo = config.build_algo()
        try:
            algo.train()  # warm-up: the explorer's step (tables, actors, first weights)
            before = len(algo.rows())
            start = time.perf_counter()
            for _ in range(args.steps):
                algo.train()
            seconds = time.perf_counter() - start
            evals = len(algo.rows()) - before
        finally:
            algo.stop()
        rates[label] = evals / seconds
        print(f"{label:<34}{evals:>7}{seconds:>9.2f}{rates[label]:>9.3f}")
    print(f"speed-up, 2 runners over 1: {rates['2 env runners'] / rates['1 env runner']:.2f}x "
          f"(Ray tasks: {rates['2 env runners, a Ray task each'] / rates['1 env runner']:.2f}x)")


def iteration_time(args: argparse.Namespace) -> None:
    from nas_ray.construction import Builder
    from nas_ray.models.graphpnas import GraphPNASGenerator
    from nas_ray.models.learning import advantages, fit_generator, trajectory_of
    from nas_ray.searchers.reinforce import REINFORCEConfig

    print("\n2. one train() iteration, NB201 CIFAR-10, preset nb201-cifar10 (generator steps only), seconds")
    print(f"{'env runners':<12}{'iteration':>10}{'learner':>9}{'maths':>8}{'sampling':>9}{'other':>8}{'RLlib share':>13}")
    for runners in (0, 2):
        config = (
            REINFORCEConfig()
            .search(space="nasbench201", evaluator="table:nasbench201:cifar10", data_dir=args.data_dir)
            .training(preset="nb201-cifar10", epsilon_steps=args.warmup)
            .env_runners(num_env_runners=runners)
            .debugging(seed=0)
        )
        algo = config.build_algo()
        try:
            for _ in range(args.warmup):
                algo.train()
            rows = []
            for _ in range(args.iterations):
                gp = algo.graphpnas
                entries = algo.buffer.top(gp.keep(algo.search_step, len(algo.buffer)))
                adv = advantages(algo.buffer, entries, gp.objective)
                start = time.perf_counter()
                r = algo.train()
                total = time.perf_counter() - start
                # the same refit, outside RLlib: fresh generator, same data and settings
                gen = GraphPNASGenerator.for_space(algo.search_space, gp.generator, seed=0)
                trajs = [trajectory_of(Builder(algo.search_space), e) for e in entries]
                t0 = time.perf_counter()
                fit_generator(gen, trajs, adv, gp, np.random.default_rng(0))
                maths = time.perf_counter() - t0
                timers = r["timers"]
                rows.append((total, timers["generator_fit_s"], maths, timers["generator_sample_s"]))
            total, learner, maths, sampling = np.mean(rows, axis=0)
            other = total - learner - sampling
            share = (total - maths) / total
            print(f"{runners:<12}{total:>10.2f}{learner:>9.2f}{maths:>8.2f}{sampling:>9.2f}{other:>8.2f}{share:>12.0%}")
        finally:
            algo.stop()
    print("maths: fit_generator on the same training set outside RLlib; RLlib share = 1 - maths / iteration")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--per-step", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=16, help="explorer steps before the timed generator steps")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--skip", choices=["parallelism", "iteration"], action="append", default=[])
    args = parser.parse_args()
    import ray

    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        if "parallelism" not in args.skip:
            parallelism(args)
        if "iteration" not in args.skip:
            iteration_time(args)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()

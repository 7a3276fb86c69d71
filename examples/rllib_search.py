"""GraphPNAS trained by REINFORCE under RLlib: configure, train, checkpoint, restore.

    python examples/rllib_search.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import tempfile

from nas_ray.searchers import REINFORCE, REINFORCEConfig


def main(data_dir: str | None = None, budget: int = 40, epochs: int = 70, checkpoint_dir: str | None = None) -> list[dict]:
    config = (
        REINFORCEConfig()
        .search(space="nasbench201", evaluator="table:nasbench201:cifar10", budget=budget, data_dir=data_dir)
        .training(preset="nb201-cifar10", epochs=epochs, epsilon_steps=10)  # GraphPNAS's settings
        .env_runners(num_env_runners=1)  # env runners build and evaluate architectures, one each at a time
        .debugging(seed=0)
    )
    algo = config.build_algo()
    while algo.train()["num_evaluations"] < budget // 2:  # one iteration = one search step
        pass
    path = algo.save_to_path(checkpoint_dir or tempfile.mkdtemp())  # generator, Adam, buffer, RNG state
    algo.stop()

    algo = REINFORCE.from_checkpoint(path)  # continues exactly where it stopped
    while not algo.train()["done"]:  # "done" once the budget of unique architectures is spent
        pass
    rows = algo.rows()  # one row per evaluation, as every nas-ray search writes them
    algo.stop()
    best = max(rows, key=lambda r: r["reward"])
    print(f"best of {len(rows)}: {best['reward']:.2f} validation, {best['c10_test200']:.2f} test  {best['hash']}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir")
    parser.add_argument("--budget", type=int, default=40)
    args = parser.parse_args()
    main(args.data_dir, args.budget)

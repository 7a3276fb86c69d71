"""A nas-ray searcher inside your own Ray Tune run: your trainable, your Tuner.

    python examples/own_tuner.py
"""

from __future__ import annotations

from ray import tune

from nas_ray import Architecture
from nas_ray.searchers import get_searcher


def my_trainable(config: dict) -> None:
    """Your evaluation: here a cheap proxy score of the cell (convolutions and depth)."""
    arch = Architecture.from_dict(config["arch"])  # the searcher puts the architecture under "arch"
    convs = sum(op.startswith("nor_conv") for op in arch.ops)
    tune.report({"score": convs + arch.average_path_length()})


def main(num_samples: int = 20) -> tune.ResultGrid:
    searcher = get_searcher("evolution", "nasbench201", seed=0, metric="score", mode="max", population_size=8)
    tuner = tune.Tuner(
        my_trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            num_samples=num_samples,  # unique architectures: the searcher never repeats one
            max_concurrent_trials=2,  # keep a limit: with unlimited concurrency any searcher is random search
            reuse_actors=True,
        ),
    )
    results = tuner.fit()
    best = results.get_best_result(metric="score", mode="max")
    print("best score", best.metrics["score"], "ops", best.config["arch"]["ops"])
    return results


if __name__ == "__main__":
    main()

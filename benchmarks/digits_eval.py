"""Seconds per evaluation of the digits training evaluator (the main job's), and what it measures.

    python benchmarks/digits_eval.py [--cells 6] [--epochs 8]

Trains the trivial cell and ``--cells`` random NB101 cells one after another in this process (the
data set is loaded once, before timing) and prints wall seconds, parameters and validation accuracy.
Target (issue "Search loop"): one evaluation <= 15 s on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import time

from nas_ray import Architecture
from nas_ray.evaluators import DigitsEvaluator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    ev = DigitsEvaluator(epochs=args.epochs)
    t = time.perf_counter()
    ev.datasets()
    print(f"data set load (incl. torch / scikit-learn imports): {time.perf_counter() - t:.2f} s")
    cells = [("trivial", Architecture(["input", "output"], [[0, 1], [0, 0]]))]
    cells += [(f"sample({s})", ev.space.sample(s)) for s in range(args.cells)]
    times = []
    print(f"{'cell':<12}{'seconds':>9}{'params':>10}{'val acc %':>11}")
    for name, arch in cells:
        t = time.perf_counter()
        metrics = ev.evaluate(arch)
        times.append(time.perf_counter() - t)
        print(f"{name:<12}{times[-1]:>9.2f}{int(metrics['params']):>10,}{metrics['val_accuracy']:>11.2f}")
    print(f"median {statistics.median(times):.2f} s, max {max(times):.2f} s per evaluation (target <= 15 s)")


if __name__ == "__main__":
    main()

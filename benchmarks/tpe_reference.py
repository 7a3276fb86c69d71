"""nas-ray's ``tpe`` against plain Optuna on NAS-Bench-201, side by side in one run.

    python benchmarks/tpe_reference.py --data-dir ../shared/data [--datasets cifar10 cifar100 imagenet16-120] [--seeds 10]

Rows, each 100 distinct cells per seed (test accuracy of the best-reward cell, mean ± std):

- ``plain Optuna``: a loop that asks ``optuna.samplers.TPESampler(seed=s)`` (its defaults) for the six
  edge ops and scores each new cell from the table; a cell asked for again is told as failed and
  Optuna is asked again (``asks`` counts every ask).
- ``plain Optuna, independent``: the same with ``multivariate=False`` (a cap of 2,000 asks per seed:
  it can repeat one cell indefinitely).
- ``tpe``: nas-ray's searcher with its defaults, through the in-process search loop.
- ``tpe, independent, 3 retries``: ``multivariate=False, max_retries=3``, the defaults before.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def plain_optuna(ev, seed: int, budget: int, *, multivariate: bool | None = None, max_asks: int = 2000) -> tuple[float, int]:  # noqa: ANN001
    import optuna
    from optuna.trial import TrialState

    kw = {} if multivariate is None else {"multivariate": multivariate}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed, **kw))
    space, reported = ev.space, ev.report[0]
    decisions = space.decisions()
    seen: set[str] = set()
    best = (-np.inf, np.nan)
    asks = 0
    while len(seen) < budget and asks < max_asks:
        trial = study.ask()
        asks += 1
        arch = space.from_decisions({name: trial.suggest_categorical(name, choices) for name, choices in decisions})
        h = space.hash(arch)
        if h in seen:
            study.tell(trial, state=TrialState.FAIL)
            continue
        seen.add(h)
        m = ev.evaluate(arch)
        study.tell(trial, m["reward"])
        if m["reward"] > best[0]:
            best = (m["reward"], m[reported])
    return float(best[1]), asks


def nas_ray_tpe(ev, seed: int, budget: int, **options) -> float:  # noqa: ANN001, ANN003
    from nas_ray.search.loop import run_local
    from nas_ray.searchers import get_searcher

    searcher = get_searcher("tpe", ev.space, seed=seed, metric=ev.metric, mode=ev.mode, **options)
    rows: list[dict] = []
    run_local(searcher, ev, budget, on_row=rows.append, searcher="tpe", seed=seed, space=ev.space.name, metric=ev.metric)
    best = max(rows, key=lambda r: r["reward"])
    return float(best[ev.report[0]])


def main() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from nas_ray.evaluators.tabular import TabularEvaluator

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--datasets", nargs="+", default=["cifar10", "cifar100", "imagenet16-120"])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=100)
    args = ap.parse_args()
    rows = [
        ("plain Optuna", lambda ev, s: plain_optuna(ev, s, args.budget)),
        ("plain Optuna, independent", lambda ev, s: plain_optuna(ev, s, args.budget, multivariate=False)),
        ("tpe", lambda ev, s: (nas_ray_tpe(ev, s, args.budget), None)),
        ("tpe, independent, 3 retries", lambda ev, s: (nas_ray_tpe(ev, s, args.budget, multivariate=False, max_retries=3), None)),
    ]
    print(f"{'dataset':<16}{'searcher':<30}{'mean':>7}{'std':>7}{'asks':>8}{'s/seed':>8}")
    for dataset in args.datasets:
        ev = TabularEvaluator.nasbench201(dataset, data_dir=args.data_dir)
        for label, fn in rows:
            start = time.perf_counter()
            results = [fn(ev, seed) for seed in range(args.seeds)]
            took = (time.perf_counter() - start) / args.seeds
            finals = np.array([r[0] for r in results])
            asks = [r[1] for r in results if r[1] is not None]
            ask_text = f"{np.mean(asks):.1f}" if asks else "-"
            print(f"{dataset:<16}{label:<30}{finals.mean():>7.2f}{finals.std():>7.2f}{ask_text:>8}{took:>8.2f}", flush=True)


if __name__ == "__main__":
    main()

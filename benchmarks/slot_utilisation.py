"""Cluster simulation: how much accelerator time a searcher wastes waiting for its own suggestions.

Every trial looks its architecture up in the NAS-Bench-201 table and then sleeps ``T`` seconds (a
stand-in for training on a GPU). A local Ray declares ``--slots`` units of a custom resource
``slot`` and each trial asks for one slot and no CPU, so ``--slots`` trials run at a time, as on a
cluster of that many GPUs. Searchers run through ``nas-ray``'s Tune backend, each run on its own,
one after another.

Reported per searcher, model-update mode and trial time: the **idle fraction**, the share of slot-time
in the steady state (from the moment every slot is first busy to the start of the last trial) in
which a slot held no trial; the searcher's time in ``suggest`` (median, max, total); and the wall
time. A searcher that fits its model inside ``suggest`` (``--updates sync``, as every searcher did
before model updates moved off the driver) leaves slots idle while it fits; with ``auto`` the fits
run in a Ray task. Tune's own per-trial overhead is in every row: ``random``, whose suggestions
cost microseconds, shows that floor.

    python benchmarks/slot_utilisation.py --data-dir ../shared/data \
        --trial-seconds 6 60 --trials 200 40 --updates sync auto

Models that need pretraining (latent-bo's graph VAE, NASGEM's encoder) are trained or loaded before
the clock starts. Writes ``bench-out/slot_utilisation.json`` after every run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import deque
from pathlib import Path
from typing import Any

from nas_ray.evaluators import Evaluator
from nas_ray.evaluators.specs import get_evaluator
from nas_ray.searchers import SEARCHERS, get_searcher

LEARNED = ("graphpnas", "latent-bo", "nasgem")  # the searchers with model updates


class SleepingTable(Evaluator):
    """A table lookup that then sleeps ``seconds``, holding one ``slot`` and no CPU; it reports when
    it started and ended (wall-clock seconds) so the driver can rebuild slot occupancy."""

    def __init__(self, table: Evaluator, seconds: float) -> None:
        self.table, self.seconds = table, float(seconds)
        self.space, self.metric, self.mode = table.space, table.metric, table.mode

    @property
    def resources(self) -> dict[str, float]:
        return {"cpu": 0.0, "slot": 1.0}

    def evaluate(self, arch: Any) -> dict[str, float]:
        start = time.time()
        metrics = self.table.evaluate(arch)
        time.sleep(max(0.0, self.seconds - (time.time() - start)))
        return {**metrics, "slot_start": start, "slot_end": time.time()}


def idle_fraction(intervals: list[tuple[float, float]], slots: int) -> tuple[float, float]:
    """Share of slot-time with no trial between the first moment all ``slots`` are busy and the start
    of the last trial, and that window's length in seconds."""
    starts = sorted(s for s, _ in intervals)
    if len(starts) <= slots:
        return float("nan"), 0.0
    lo, hi = starts[slots - 1], starts[-1]
    busy = sum(max(0.0, min(e, hi) - max(s, lo)) for s, e in intervals)
    window = hi - lo
    return 1.0 - busy / (slots * window), window


class KeptLatencies(deque):
    """``suggest_latencies`` that keeps what the search's metrics drain (for this report)."""

    def __init__(self) -> None:
        super().__init__(maxlen=100_000)
        self.kept: list[float] = []

    def clear(self) -> None:
        self.kept.extend(self)
        super().clear()


def prepare(name: str, searcher: Any) -> None:
    """Pretrain or load what the searcher would otherwise build inside its first ``suggest``."""
    if name == "latent-bo":
        searcher._ensure_model()
    elif name == "nasgem":
        searcher._ensure_encoder()


def one_run(name: str, updates: str, seconds: float, trials: int, args: argparse.Namespace) -> dict[str, Any]:
    from nas_ray.search import run

    table = get_evaluator(f"table:nasbench201:{args.dataset}", data_dir=args.data_dir)
    defaults = SEARCHERS.get(name).defaults_for(table.space, budget=trials, dataset=args.dataset)
    searcher = get_searcher(name, table.space, seed=args.seed, metric=table.metric, mode=table.mode, updates=updates, **defaults)
    prepare(name, searcher)
    searcher.suggest_latencies = latencies = KeptLatencies()
    started = time.perf_counter()
    result = run(evaluator=SleepingTable(table, seconds), searcher=searcher, budget=trials, backend="tune",
                 max_concurrent=args.slots, seed=args.seed, progress=False,
                 output=Path(args.out).parent / "slot-runs" / f"{name}-{updates}-{seconds:g}s")
    wall = time.perf_counter() - started
    rows = result.table[result.table["status"] == "ok"]
    intervals = list(zip(rows["slot_start"].astype(float), rows["slot_end"].astype(float)))
    idle, window = idle_fraction(intervals, args.slots)
    lat = latencies.kept + list(latencies)
    fits = [r["fit_s"] for r in getattr(searcher, "log", []) if isinstance(r, dict) and "fit_s" in r]
    return {"searcher": name, "updates": updates, "trial_s": seconds, "trials": trials, "completed": int(len(rows)),
            "idle": idle, "window_s": window, "wall_s": wall, "suggest_median_ms": 1e3 * statistics.median(lat) if lat else 0.0,
            "suggest_max_ms": 1e3 * max(lat, default=0.0), "suggest_total_s": sum(lat), "model_updates": len(fits),
            "update_total_s": sum(fits), "best": float(rows["reward"].max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--dataset", default="cifar10")
    ap.add_argument("--searchers", nargs="+", default=["random", "evolution", "tpe", "nasgem", "graphpnas", "latent-bo"])
    ap.add_argument("--trial-seconds", nargs="+", type=float, default=[6.0, 60.0])
    ap.add_argument("--trials", nargs="+", type=int, default=[200], help="trials per run, one value or one per --trial-seconds")
    ap.add_argument("--updates", nargs="+", default=["sync", "auto"], help="model-update modes of the learned searchers")
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench-out/slot_utilisation.json")
    args = ap.parse_args()
    trials = args.trials * len(args.trial_seconds) if len(args.trials) == 1 else args.trials
    if len(trials) != len(args.trial_seconds):
        ap.error("--trials takes one value or one per --trial-seconds")

    import ray

    ray.init(num_cpus=2, resources={"slot": args.slots}, include_dashboard=False, logging_level="WARNING")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    try:
        for seconds, n in zip(args.trial_seconds, trials):
            for name in args.searchers:
                for updates in (args.updates if name in LEARNED else ["auto"]):
                    rec = one_run(name, updates, seconds, n, args)
                    records.append(rec)
                    out.write_text(json.dumps(records, indent=1))
                    print(f"{seconds:>4g} s x {n} trials  {name:<10} {updates:<5} idle {100 * rec['idle']:6.2f} %  suggest median "
                          f"{rec['suggest_median_ms']:8.1f} ms, max {rec['suggest_max_ms']:8.0f} ms, total {rec['suggest_total_s']:6.1f} s; "
                          f"{rec['model_updates']} model updates ({rec['update_total_s']:.0f} s); wall {rec['wall_s']:.0f} s", flush=True)
    finally:
        ray.shutdown()
    print("\n| searcher | updates | " + " | ".join(f"idle at {s:g} s ({n} trials)" for s, n in zip(args.trial_seconds, trials)) + " |")
    print("|---|---|" + "---|" * len(trials))
    for name in args.searchers:
        for updates in (args.updates if name in LEARNED else ["auto"]):
            cells = [next((f"{100 * r['idle']:.2f} %" for r in records
                           if r["searcher"] == name and r["updates"] == updates and r["trial_s"] == s), "") for s in args.trial_seconds]
            print(f"| {name} | {updates if name in LEARNED else '-'} | " + " | ".join(cells) + " |")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Model updates that run beside the Tune driver instead of inside ``suggest``.

A searcher whose model update is expensive (GraphPNAS's generator refit, latent-BO's GP fit and
acquisition, NASGEM's predictor fine-tuning) writes the update as a module-level function of
picklable arguments and hands it to :class:`ModelUpdate`. Where it runs is the searcher's
``updates`` option:

- ``"sync"``: inline, before ``suggest`` returns: seeded runs are exactly reproducible;
- ``"ray"``: a Ray task pinned (softly) to the driver's node, reserving no CPU, like the driver
  itself, so it never queues behind trials that hold every CPU;
- ``"thread"``: a thread of the driver process (its arguments deep-copied first);
- ``"auto"`` (the default): ``"ray"`` when Ray is initialized (always the case under Ray Tune),
  else ``"sync"``.

While a background update runs, ``suggest`` keeps serving proposals from the model it has, and
results that arrive meanwhile enter the next update.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any, Callable

from nas_ray.errors import ConfigError

UPDATE_MODES = ("auto", "sync", "ray", "thread")


def check_mode(mode: str) -> str:
    if mode not in UPDATE_MODES:
        raise ConfigError(f"updates must be one of {', '.join(UPDATE_MODES)}; got {mode!r}")
    return mode


def resolve_mode(mode: str) -> str:
    """``"auto"`` made concrete: ``"ray"`` when Ray is initialized, else ``"sync"``."""
    if mode != "auto":
        return mode
    try:
        import ray

        return "ray" if ray.is_initialized() else "sync"
    except ImportError:  # pragma: no cover - Ray is a dependency
        return "sync"


def _timed(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


_remote = None  # the Ray remote function, made once


class ModelUpdate:
    """One model update, ``fn(*args)``, running in ``mode`` (a concrete mode: sync, ray or thread).

    ``done()`` says whether its value is ready; ``result()`` returns it (waiting if needed) and the
    seconds the update itself took; an exception raised by ``fn`` is raised again there.
    """

    def __init__(self, mode: str, fn: Callable[..., Any], args: tuple[Any, ...], *, tag: Any = None) -> None:
        self.mode, self.tag = mode, tag
        self.started = time.perf_counter()
        self._value: tuple[Any, float] | None = None
        self._error: BaseException | None = None
        if mode == "sync":
            self._value = _timed(fn, args)
        elif mode == "thread":
            args = copy.deepcopy(args)  # the driver goes on mutating its own copies
            self._event = threading.Event()
            self._thread = threading.Thread(target=self._work, args=(fn, args), name="nas-ray-model-update")
            self._thread.start()
        elif mode == "ray":
            global _remote
            import ray
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            if _remote is None:
                _remote = ray.remote(num_cpus=0, max_retries=1)(_timed)
            here = ray.get_runtime_context().get_node_id()
            self._ref = _remote.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=True)).remote(fn, args)
        else:
            raise ConfigError(f"update mode must be sync, ray or thread; got {mode!r}")

    def _work(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._value = _timed(fn, args)
        except BaseException as exc:  # noqa: BLE001 - handed to result()
            self._error = exc
        finally:
            self._event.set()

    def done(self) -> bool:
        if self.mode == "sync":
            return True
        if self.mode == "thread":
            return self._event.is_set()
        import ray

        ready, _ = ray.wait([self._ref], timeout=0)
        return bool(ready)

    def result(self) -> tuple[Any, float]:
        if self.mode == "thread":
            self._event.wait()
            if self._error is not None:
                raise self._error
        elif self.mode == "ray":
            import ray

            self._value = ray.get(self._ref)
        assert self._value is not None
        return self._value

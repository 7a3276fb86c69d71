"""The search loop (``nas_ray.search.run``) and its results.

>>> from nas_ray.search import run
>>> result = run(evaluator="table:nasbench201:cifar10", searcher="evolution", budget=50,
...              backend="local", data_dir="../shared/data", progress=False)  # doctest: +SKIP
>>> result.best_arch, result.table[["query", "reward", "c10_test200"]]  # doctest: +SKIP
"""

from nas_ray.search.config import SearchConfig
from nas_ray.search.loop import BACKENDS, resume, run, run_local
from nas_ray.search.results import SearchResult, best_so_far, reported_of_best

__all__ = ["run", "SearchConfig", "resume", "run_local", "SearchResult", "best_so_far", "reported_of_best", "BACKENDS"]

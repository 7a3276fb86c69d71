"""GraphPNAS trained by REINFORCE as an RLlib algorithm (new API stack).

Laid out as RLlib lays out its own algorithms, one extension point per file:

- ``reinforce_config.py`` -- ``REINFORCEConfig``, the ``AlgorithmConfig`` builder: what to search
  (``.search(space=, evaluator=, budget=)``) and GraphPNAS's settings (``.training(preset=, ...)``).
- ``reinforce.py`` -- ``REINFORCE``, the ``Algorithm``. One ``train()`` iteration is one GraphPNAS
  search step: with probability epsilon(step) the step's architectures come from the explorer (a
  random-graph prior of the space), otherwise the generator is refit on the buffer's best and the
  env runners build architectures with it (repeating with more episodes while they only rebuild
  graphs already evaluated, as GraphPNAS's rejection sampling does). The step policy itself
  (epsilon, training set, advantages, baseline, round sizes, explorer fill) is
  ``nas_ray.models.learning``'s, shared with the Tune searcher.
- ``distribution.py`` -- ``GraphPNASActionDistribution``: the next node's op and its
  mixture-of-Bernoulli incoming edges, wrapping the generator's ``NodeDistribution`` so sampling and
  log-probabilities are the model's own (masks and edge-count conditioning included).
- ``rl_module.py`` -- ``GraphPNASRLModule``: a ``TorchRLModule`` holding the ``GraphPNASGenerator``;
  it reads the architecture-design environment's padded ``Dict`` observations.
- ``learner.py`` -- ``GraphPNASLearner``: a ``TorchLearner`` whose loss is GraphPNAS's REINFORCE loss
  on the normalised likelihood of whole graphs, with the per-graph advantage from the replay buffer;
  minibatches are whole episodes. ``buffer_episode`` turns a buffered graph into an episode.
- ``env.py`` -- ``SearchDesignEnv`` (the design environment with the search's evaluation rules) and
  ``EvaluationGate``: every architecture is evaluated once; a shared gate (a Ray actor when there
  are remote env runners) lets an environment evaluate a graph only if nobody has, and only as many
  as the step asks for.
- ``env_runner.py`` -- what the algorithm runs on each env runner (sample with the policy, score
  given architectures).

Architectures are evaluated where the episodes end, in the env runners' environments, so
``num_env_runners`` evaluations run at once. An evaluator that needs a GPU (or more CPUs than an env
runner holds) runs each evaluation as a Ray task that asks for those resources, so env runners stay
CPU-only; the env runner waits for the task and lends it its own CPU.

>>> from nas_ray.searchers import REINFORCEConfig
>>> config = REINFORCEConfig().search(space="nasbench201", evaluator="table:nasbench201:cifar10", budget=100)
>>> algo = config.build_algo()          # doctest: +SKIP
>>> result = algo.train()               # doctest: +SKIP
"""

from nas_ray.searchers.reinforce.distribution import GraphPNASActionDistribution, pack_distribution, unpack_distribution
from nas_ray.searchers.reinforce.env import EvaluationGate, SearchDesignEnv
from nas_ray.searchers.reinforce.learner import GraphPNASLearner, buffer_episode
from nas_ray.searchers.reinforce.reinforce import REINFORCE
from nas_ray.searchers.reinforce.reinforce_config import EVALUATION_MODES, REINFORCEConfig
from nas_ray.searchers.reinforce.rl_module import GraphPNASRLModule

__all__ = [
    "REINFORCE",
    "REINFORCEConfig",
    "EVALUATION_MODES",
    "GraphPNASRLModule",
    "GraphPNASLearner",
    "GraphPNASActionDistribution",
    "SearchDesignEnv",
    "EvaluationGate",
    "buffer_episode",
    "pack_distribution",
    "unpack_distribution",
]

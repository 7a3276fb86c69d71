"""Spaces whose members are the rows of a table: validity is membership.

Many benchmarks cover a part of a larger space (a sample of NAS-Bench-101, the networks a lab has
trained). Searching the larger space wastes queries on architectures the table cannot score; a
``TableDefinedSpace`` is that part as a space of its own. It borrows the rules, moves and step-by-
step construction of its ``base`` space, and accepts only the architectures ``members()`` lists::

    class Sampled(TableDefinedSpace):
        name = "nb101-sample"
        base = "nasbench101"

        def members(self):
            return TabularEvaluator.nasbench101_subset().table.archs

    register_space("nb101-sample", Sampled)

``sample`` draws uniformly from the members; ``mutate`` tries the base space's mutations and keeps
the first that is a member (else a random other member); ``hash`` is the base space's, so a table
keyed by the base space's hash serves this space unchanged. ``from_decisions`` projects a decision
vector (TPE's) onto the nearest member. Construction (the design environment, GraphPNAS) follows
the base space and may build non-members: ``validate`` rejects them, and the searchers treat them as
invalid proposals. The members are read on first use, never when the space is built.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from nas_ray.errors import ConfigError, InvalidArchitecture
from nas_ray.graph import Architecture
from nas_ray.spaces.base import NodeMasks, SearchSpace, StepMasks, as_rng


class TableDefinedSpace(SearchSpace):
    """The architectures of ``base`` that ``members()`` lists, and no others (see the module doc).

    Subclasses set ``name`` and ``base`` (a registered space's name; ``base_options`` its options)
    and implement ``members()``.
    """

    #: the registered space whose rules, moves and hash this space borrows
    base: ClassVar[str]
    base_options: ClassVar[dict[str, Any]] = {}
    #: base-space mutations tried before ``mutate`` falls back to a random other member
    mutation_tries: ClassVar[int] = 64
    table_defined: ClassVar[bool] = True

    def __init__(self, *, data_dir: Any = None) -> None:
        #: where ``members()`` may read its table (None: ``$NAS_RAY_DATA``); not an option of the
        #: space (the same space wherever its table lies), so ``options()`` leaves it out
        self.data_dir = None if data_dir is None else str(data_dir)

    @abc.abstractmethod
    def members(self) -> Iterable[Architecture]:
        """The architectures of the table (any order; isomorphic duplicates are merged). Called once,
        on first use; ``self.data_dir`` says where the data folder is, if it was given."""

    # ------------------------------------------------------------------ the base space and the members
    @functools.cached_property
    def base_space(self) -> SearchSpace:
        from nas_ray.spaces import get_space

        base = getattr(type(self), "base", None)
        if not isinstance(base, str):
            raise ConfigError(f"table-defined space {self.name!r} must set base to a registered space's name")
        space = get_space(base, **dict(self.base_options))
        if getattr(space, "table_defined", False):
            raise ConfigError(f"table-defined space {self.name!r}: its base {base!r} is table-defined too; name the full space")
        return space

    @functools.cached_property
    def _members(self) -> dict[str, Architecture]:
        base = self.base_space
        out: dict[str, Architecture] = {}
        for i, arch in enumerate(self.members()):
            if not isinstance(arch, Architecture):
                raise ConfigError(f"{self.name}: members() must give Architecture objects, item {i} is {type(arch).__name__}")
            try:
                canonical = base.canonicalize(arch)
            except InvalidArchitecture as exc:
                raise ConfigError(f"{self.name}: member {i} is not in the base space {base.name!r}: {exc}") from None
            out.setdefault(base.hash(canonical), canonical)
        if not out:
            raise ConfigError(f"{self.name}: members() gave no architectures")
        return out

    @functools.cached_property
    def _member_list(self) -> list[Architecture]:
        return list(self._members.values())

    def member_hashes(self) -> frozenset[str]:
        """The hashes of the members (the base space's hash)."""
        return frozenset(self._members)

    @property
    def ops(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.base_space.ops

    @property
    def max_nodes(self) -> int | None:  # type: ignore[override]
        return self.base_space.max_nodes

    @property
    def max_edges(self) -> int | None:  # type: ignore[override]
        return self.base_space.max_edges

    @property
    def size(self) -> int:  # type: ignore[override]
        return len(self._members)

    @property
    def edge_limits_depend_on_op(self) -> bool:  # type: ignore[override]
        return self.base_space.edge_limits_depend_on_op

    @property
    def svge_paper_batch_size(self) -> int:  # type: ignore[override]
        return self.base_space.svge_paper_batch_size

    # ------------------------------------------------------------------ membership
    def validate(self, arch: Architecture) -> None:
        base = self.base_space
        h = base.hash(arch)  # validates in the base space first
        if h not in self._members:
            raise InvalidArchitecture(f"{self.name}: not in the table ({len(self._members)} architectures of {base.name}; hash {h})")

    def canonicalize(self, arch: Architecture) -> Architecture:
        self.validate(arch)
        return self.base_space.canonicalize(arch)

    def hash(self, arch: Architecture) -> str:
        self.validate(arch)
        return self.base_space.hash(arch)

    # ------------------------------------------------------------------ sampling and moves
    def sample(self, rng: np.random.Generator | int | None = None) -> Architecture:
        members = self._member_list
        return members[int(as_rng(rng).integers(len(members)))]

    def mutate(self, arch: Architecture, rng: np.random.Generator | int | None = None) -> Architecture:
        rng = as_rng(rng)
        base = self.base_space
        own = base.hash(arch)
        for _ in range(self.mutation_tries):
            child = base.mutate(arch, rng)
            h = base.hash(child)
            if h != own and h in self._members:
                return child
        others = [a for h, a in self._members.items() if h != own]
        if not others:
            raise InvalidArchitecture(f"{self.name}: the table has one architecture; nothing to mutate to")
        return others[int(rng.integers(len(others)))]

    # ------------------------------------------------------------------ construction and decisions: the base space's
    def next_node_masks(self, ops: Sequence[str], matrix: np.ndarray, op: str | None = None) -> NodeMasks:
        return self.base_space.next_node_masks(ops, matrix, op)

    def step_masks(self, ops: Sequence[str], matrix: np.ndarray) -> StepMasks:
        return self.base_space.step_masks(ops, matrix)

    def decisions(self) -> list[tuple[str, tuple[Any, ...]]]:
        return self.base_space.decisions()

    @functools.cached_property
    def _decision_table(self) -> tuple[list[tuple[str, tuple[Any, ...]]], list[dict[Any, int]], np.ndarray, list[Architecture]]:
        """The members' decision values as choice indices (members without a decision form left out)."""
        base = self.base_space
        decisions = base.decisions()
        lookup = [{choice: k for k, choice in enumerate(choices)} for _, choices in decisions]
        rows, archs = [], []
        for arch in self._member_list:
            values = base.to_decisions(arch)
            if values is None:
                continue
            rows.append([lookup[d][values[name]] for d, (name, _) in enumerate(decisions)])
            archs.append(arch)
        return decisions, lookup, np.array(rows, dtype=np.int32).reshape(len(rows), len(decisions)), archs

    def from_decisions(self, values: Mapping[str, Any]) -> Architecture:
        """The member whose decision values differ from ``values`` in the fewest places (the first such
        member on ties): a projection onto the table, so that a decision-based sampler such as TPE
        searches the table rather than a space it almost never hits."""
        decisions, lookup, table, archs = self._decision_table
        if not archs:
            raise InvalidArchitecture(f"{self.name}: no member has the decision form of {self.base_space.name}")
        query = np.array([lookup[d].get(values[name], -1) for d, (name, _) in enumerate(decisions)], dtype=np.int32)
        return archs[int(np.argmin((table != query).sum(1)))]

    def to_decisions(self, arch: Architecture) -> dict[str, Any] | None:
        return self.base_space.to_decisions(arch)

    def from_native(self, native: Any) -> Architecture:
        arch = self.base_space.from_native(native)
        self.validate(arch)
        return arch

    def to_native(self, arch: Architecture) -> Any:
        self.validate(arch)
        return self.base_space.to_native(arch)

    def triplet_thresholds(self) -> tuple[float, float]:
        return self.base_space.triplet_thresholds()

    def graphpnas_preset(self, dataset: str | None = None) -> str | None:
        return self.base_space.graphpnas_preset(dataset)  # explored uniformly: the space has no priors

    def scores_with(self, space: SearchSpace) -> bool:
        """Whether an evaluator of ``space`` scores this space's architectures (it is the base space)."""
        base = self.base_space
        return (space.name, space.options()) == (base.name, base.options())


def build_space(name: str, options: Mapping[str, Any] | None = None, *, data_dir: Any = None) -> SearchSpace:
    """``get_space(name, **options)``, handing ``data_dir`` to a table-defined space (it reads its table there)."""
    from nas_ray.spaces import SPACES, get_space

    options = dict(options or {})
    if data_dir is not None and "data_dir" not in options and getattr(SPACES.get(name), "table_defined", False):
        options["data_dir"] = data_dir
    return get_space(name, **options)


__all__ = ["TableDefinedSpace", "build_space"]

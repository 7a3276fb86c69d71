"""SVGe's triplet loss (Lukasik et al. 2021): graph edit distances on the padded, index-typed
form, triplet sampling with thresholds (epsilon, delta) per space, and the margin loss.

The edit distance between two graphs with the same node count is the number of nodes whose type
differs plus the number of differing upper-triangular adjacency entries (the same node order is
assumed, as in ENAS-6 and the canonical NB101 matrices); graphs of different sizes are infinitely
far apart: never positives, always negatives.

>>> import numpy as np
>>> types = np.array([[0, 1, 2], [0, 2, 2], [0, 1, -1]])
>>> adj = np.zeros((3, 3, 3), dtype=np.int8); adj[:, 0, 1] = 1; adj[:2, 1, 2] = 1; adj[1, 0, 2] = 1
>>> edit_distances(types, adj, np.array([3, 3, 2]), 0)
array([ 0.,  2., inf], dtype=float32)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from nas_ray.spaces.base import as_rng
from nas_ray.errors import ConfigError

__all__ = ["MARGIN", "TRIPLET_WEIGHT", "edit_distances", "sample_triplets", "triplet_loss"]

MARGIN = 1.0328  # m of the triplet loss (paper App. Table 4)
TRIPLET_WEIGHT = 0.9  # lambda: L = lambda * L_VAE + (1 - lambda) * L_TL (paper Eq. 17)

_CHUNK_ELEMENTS = 1 << 22  # anchors x graphs per chunk of the distance matrix


def _features(types: np.ndarray, adj: np.ndarray) -> tuple[np.ndarray, int]:
    """Per graph, one-hot node types (padding is a type of its own) and the upper-triangular adjacency
    bits with their complements, so that the dot product of two rows counts the agreeing entries.
    Returns the features [M, F] (float32) and the number of entries compared."""
    m, n = types.shape
    shifted = types.astype(np.int64) + 1  # PAD (-1) -> 0
    num_classes = int(shifted.max(initial=0)) + 1
    onehot = np.zeros((m, n, num_classes), dtype=np.float32)
    np.put_along_axis(onehot, shifted[:, :, None], 1.0, axis=2)
    rows, cols = np.triu_indices(n, k=1)
    bits = (adj[:, rows, cols] != 0).astype(np.float32)
    return np.concatenate([onehot.reshape(m, -1), bits, 1.0 - bits], axis=1), n + len(rows)


ArrayLike = np.ndarray | Tensor


def _as_arrays(types: ArrayLike, adj: ArrayLike, num_nodes: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    types, adj, num_nodes = (x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x) for x in (types, adj, num_nodes))
    if types.ndim != 2 or adj.shape != (*types.shape, types.shape[1]) or num_nodes.shape != types.shape[:1]:
        raise ConfigError(f"expected types [M, N], adj [M, N, N], num_nodes [M]; got {types.shape}, {adj.shape}, {num_nodes.shape}")
    return types, adj, num_nodes


def _distances(features: np.ndarray, size: int, num_nodes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """[A, M] edit distances from ``anchors`` to every graph (inf across node counts)."""
    dist = size - features[anchors] @ features.T  # exact: small integers in float32
    dist[num_nodes[anchors][:, None] != num_nodes[None, :]] = np.inf
    return dist


def edit_distances(types: ArrayLike, adj: ArrayLike, num_nodes: ArrayLike, anchors: int | np.ndarray) -> np.ndarray:
    """Edit distances between the anchor graph(s) and every graph of a padded collection (``types``
    [M, N] with ``PAD`` = -1 beyond ``num_nodes``, ``adj`` [M, N, N] zero there): [M] for one anchor
    index, [A, M] for an array of them; ``inf`` where the node counts differ."""
    types, adj, num_nodes = _as_arrays(types, adj, num_nodes)
    features, size = _features(types, adj)
    idx = np.atleast_1d(np.asarray(anchors, dtype=np.int64))
    dist = _distances(features, size, num_nodes, idx)
    return dist[0] if np.ndim(anchors) == 0 else dist


def _pick(mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per row, a uniformly random column where ``mask`` holds (the largest of iid uniform keys), and
    whether there was any."""
    keys = rng.random(mask.shape)
    keys[~mask] = -1.0
    return keys.argmax(axis=1), mask.any(axis=1)


def sample_triplets(
    types: ArrayLike,
    adj: ArrayLike,
    num_nodes: ArrayLike,
    *,
    positive_below: float,
    negative_above: float,
    fraction: float = 0.1,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Triplets (anchor, positive, negative) as indices [K, 3] into the collection.

    Anchors are a random ``fraction`` of the graphs (without replacement); each gets a uniformly random
    positive among the *other* graphs at edit distance ``< positive_below`` (epsilon) and a uniformly
    random negative at distance ``> negative_above`` (delta; other node counts included). Anchors
    without a positive or a negative are dropped.

    >>> types = np.array([[0, 1, 2], [0, 2, 2], [0, 1, 2], [0, 1, -1]])
    >>> adj = np.zeros((4, 3, 3)); adj[:, 0, 1] = 1; adj[[0, 1, 2], 1, 2] = 1
    >>> triplets = sample_triplets(types, adj, np.array([3, 3, 3, 2]), positive_below=1, negative_above=1, fraction=1.0, rng=0)
    >>> triplets[:, :2].tolist(), set(triplets[:, 2]) <= {1, 3}
    ([[0, 2], [2, 0]], True)
    """
    types, adj, num_nodes = _as_arrays(types, adj, num_nodes)
    rng = as_rng(rng)
    m = len(types)
    count = min(m, max(1, round(fraction * m))) if m else 0
    anchors = np.sort(rng.choice(m, size=count, replace=False))
    features, size = _features(types, adj)
    chunk = max(1, _CHUNK_ELEMENTS // max(m, 1))
    out = []
    for start in range(0, count, chunk):
        idx = anchors[start : start + chunk]
        dist = _distances(features, size, num_nodes, idx)
        positive = dist < positive_below
        positive[np.arange(len(idx)), idx] = False
        pos, has_pos = _pick(positive, rng)
        neg, has_neg = _pick(dist > negative_above, rng)
        keep = has_pos & has_neg
        out.append(np.stack([idx[keep], pos[keep], neg[keep]], axis=1))
    return np.concatenate(out, axis=0) if out else np.zeros((0, 3), dtype=np.int64)


def triplet_loss(t_anchor: Tensor, t_pos: Tensor, t_neg: Tensor, margin: float = MARGIN) -> Tensor:
    """Per row ``max(0, ||t_a - t_p||_2 - ||t_a - t_n||_2 + margin)`` (non-squared Euclidean distances)."""
    d_pos = torch.linalg.vector_norm(t_anchor - t_pos, dim=-1)
    d_neg = torch.linalg.vector_norm(t_anchor - t_neg, dim=-1)
    return torch.relu(d_pos - d_neg + margin)

"""PNG plots: best-so-far curves and drawings of architectures (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nas_ray.graph import Architecture


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_best_so_far(
    rewards: Sequence[float], path: str | Path, *, mode: str = "max", metric: str = "reward", title: str = ""
) -> Path:
    """Each evaluation's value as a dot and the running best as a line."""
    from nas_ray.search.results import best_so_far

    plt = _pyplot()
    r = np.asarray(rewards, dtype=np.float64)
    x = np.arange(1, len(r) + 1)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ok = ~np.isnan(r)
    ax.scatter(x[ok], r[ok], s=10, alpha=0.45, color="tab:gray", label="evaluation")
    if (~ok).any():
        lo = np.nanmin(r) if ok.any() else 0.0
        ax.scatter(x[~ok], np.full((~ok).sum(), lo), marker="x", color="tab:red", s=18, label="failed")
    ax.step(x, best_so_far(r, mode), where="post", color="tab:blue", linewidth=2, label="best so far")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(metric)
    ax.set_title(title or f"best {metric} so far")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right" if mode == "max" else "upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_curves(
    curves: Mapping[str, np.ndarray], path: str | Path, *, ylabel: str, title: str = "", anchors: Mapping[str, float] | None = None
) -> Path:
    """Mean best-so-far curve per searcher (``curves[name]`` is runs x queries) with a +-1 std band."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    lows, highs = [], []
    for name, runs in curves.items():
        runs = np.asarray(runs, dtype=np.float64)
        x = np.arange(1, runs.shape[1] + 1)
        mean, std = np.nanmean(runs, axis=0), np.nanstd(runs, axis=0)
        (line,) = ax.plot(x, mean, linewidth=2, label=f"{name} (n={runs.shape[0]})")
        ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        start = max(1, runs.shape[1] // 10)  # the first tenth of a search is far below the rest: leave it out of view
        lows.append(np.nanmin((mean - std)[start:]))
        highs.append(np.nanmax((mean + std)[start:]))
    styles = ["--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))]
    for k, (label, value) in enumerate((anchors or {}).items()):
        ax.axhline(value, linestyle=styles[k % len(styles)], linewidth=1.2, color="black", alpha=0.7, label=label)
        lows.append(value)
        highs.append(value)
    if lows:
        span = max(highs) - min(lows) or 1.0
        ax.set_ylim(min(lows) - 0.1 * span, max(highs) + 0.1 * span)
    ax.set_xlabel("queries")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def _layers(arch: Architecture) -> list[int]:
    """Longest-path depth of each node (nodes are in topological order)."""
    depth = [0] * arch.num_nodes
    for v in range(arch.num_nodes):
        preds = arch.predecessors(v)
        depth[v] = 1 + max((depth[u] for u in preds), default=-1)
    return depth


def _label(op: str) -> str:
    """An op name broken to fit a node: 'conv3x3-bn-relu' -> 'conv3x3', 'maxpool3x3' -> 'maxpool\\n3x3'."""
    op = op.replace("-bn-relu", "")
    if "_" in op:
        return op.replace("_", "\n", 1)
    digit = next((i for i, c in enumerate(op) if c.isdigit()), len(op))
    return op if len(op) <= 8 or digit in (0, len(op)) else op[:digit] + "\n" + op[digit:]


def draw_architecture(arch: Architecture, path: str | Path, *, title: str = "") -> Path:
    """The DAG left to right by depth, each node labelled with its op; edges that skip layers arc
    above or below the rest, more the more layers they skip."""
    import networkx as nx

    plt = _pyplot()
    g = arch.to_networkx()
    depth = _layers(arch)
    rows: dict[int, list[int]] = {}
    for v, d in enumerate(depth):
        rows.setdefault(d, []).append(v)
    pos = {}
    for d, nodes in rows.items():
        for k, v in enumerate(nodes):
            pos[v] = (float(d), (len(nodes) - 1) / 2.0 - k)
    height = max(len(n) for n in rows.values())
    fig, ax = plt.subplots(figsize=(min(max(6.0, 1.6 * len(rows)), 30), max(3.5, 1.3 * height + 1.5)), dpi=110)
    colours = ["#9ecae1" if op in ("input", "output") else "#fdd0a2" for op in arch.ops]
    for k, (u, v) in enumerate(g.edges):
        span = depth[v] - depth[u]
        rad = 0.0 if span <= 1 and pos[u][1] == pos[v][1] else (0.15 + 0.1 * (span - 1)) * (1 if k % 2 else -1)
        nx.draw_networkx_edges(g, pos, edgelist=[(u, v)], ax=ax, arrows=True, arrowsize=12, edge_color="#555555",
                               node_size=1600, connectionstyle=f"arc3,rad={rad}")
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colours, node_size=1600, edgecolors="#333333")
    labels = {v: _label(op) for v, op in enumerate(arch.ops)}
    nx.draw_networkx_labels(g, pos, labels=labels, ax=ax, font_size=7)
    ys = [y for _, y in pos.values()]
    ax.set_ylim(min(ys) - 1.0, max(ys) + 1.0)
    ax.set_xlim(-0.6, max(depth) + 0.6)
    ax.set_title(title)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_pareto(
    points: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    xlabel: str = "cost",
    ylabel: str = "accuracy",
    title: str = "",
    reference: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    log_x: bool = False,
) -> Path:
    """Accuracy against cost: per label (``points[label]`` is ``(acc, cost)``) every evaluated point as a
    faint dot and its non-dominated front as a staircase rising to the right; ``reference`` (same form,
    e.g. the whole benchmark table) is drawn in grey behind them with its own front dashed, and the view
    is zoomed to where the fronts are (a table's degenerate cells would squash it otherwise)."""
    from nas_ray.objectives import pareto_front

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    shown_acc: list[np.ndarray] = []
    shown_cost: list[np.ndarray] = []
    for k, (label, (acc, cost)) in enumerate((reference or {}).items()):
        a, c = np.asarray(acc, dtype=np.float64), np.asarray(cost, dtype=np.float64)
        ok = np.isfinite(a) & np.isfinite(c)
        colour = ("0.6", "0.4", "0.8")[k % 3]
        ax.scatter(c[ok], a[ok], s=4, alpha=0.25, color=colour, linewidths=0, label=label, zorder=1)
        _, ref_acc, ref_cost = pareto_front(a, c)
        ax.step(ref_cost, ref_acc, where="post", linestyle="--", linewidth=1.0, color="0.35", label=f"front of {label}", zorder=1.5)
    for label, (acc, cost) in points.items():
        a, c = np.asarray(acc, dtype=np.float64), np.asarray(cost, dtype=np.float64)
        ok = np.isfinite(a) & np.isfinite(c)
        dots = ax.scatter(c[ok], a[ok], s=8, alpha=0.35, linewidths=0, zorder=2)
        _, front_acc, front_cost = pareto_front(a, c)
        ax.step(front_cost, front_acc, where="post", marker="o", markersize=4, linewidth=1.8,
                color=dots.get_facecolor()[0][:3], label=f"{label} (front {len(front_acc)} of {int(ok.sum())})", zorder=3)
        shown_acc.append(front_acc)
        shown_cost.append(front_cost)
    if log_x:
        ax.set_xscale("log")
    if reference and shown_acc and np.concatenate(shown_acc).size:
        fa, fc = np.concatenate(shown_acc), np.concatenate(shown_cost)
        top = max(fa.max(), max(np.nanmax(np.asarray(a, dtype=np.float64)) for a, _ in reference.values()))
        span = max(top - fa.min(), 1e-9)
        ax.set_ylim(fa.min() - 0.15 * span, top + 0.05 * span)
        if log_x and (fc > 0).all():
            ax.set_xlim(fc.min() / 1.5, fc.max() * 1.5)
        else:
            width = max(fc.max() - fc.min(), 1e-9)
            ax.set_xlim(fc.min() - 0.1 * width, fc.max() + 0.1 * width)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{ylabel} against {xlabel}")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)

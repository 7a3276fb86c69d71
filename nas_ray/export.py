"""Model export: one searched architecture as a standalone PyTorch file.

``export_model(results_dir, out, rank=1)`` picks the ``rank``-th best row of a search's ``results.csv``,
rebuilds its network with ``nas_ray.evaluators.build_network`` (the options the evaluator trained it
with, from ``summary.json``) and, where the search trained it, loads the weights of its last checkpoint.
The file holds only tensors and plain values (``torch.load(weights_only=True)`` reads it)::

    {"format": "nas-ray-model", "version": 1, "space": ..., "space_options": {...},
     "arch": {"ops": [...], "matrix": [[...]]}, "network": {"preset": ..., "options": {...},
     "num_classes": ..., "in_channels": ...}, "trained": bool, "state_dict": {...} | None,
     "metrics": {...}, "dataset": "digits" | "cifar10" | ... | None}

``load_model(path)`` rebuilds the module (needs torch and nas-ray only); ``arch.json`` beside the file
is the architecture alone, for ``nas-ray show``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas_ray.errors import ConfigError, DataFileError
from nas_ray.graph import Architecture

if TYPE_CHECKING:
    import torch

FORMAT = "nas-ray-model"
VERSION = 1
STATE_FILE = "evaluator_state.pt"  # what the Tune trainable checkpoints (nas_ray.search.tune_backend)
WEIGHTS_DIR = "weights"  # where the local backend keeps trained weights, one file per trial
#: classes of the datasets a benchmark table was measured on, for exporting an untrained network
TABLE_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16-120": 120}


@dataclass(frozen=True)
class ExportInfo:
    """What ``export_model`` wrote."""

    path: Path
    arch_json: Path
    rank: int
    query: int
    reward: float
    trained: bool
    weights_from: Path | None


def save_model(
    path: str | os.PathLike[str],
    *,
    space: str,
    arch: Architecture,
    network: dict[str, Any],
    space_options: dict[str, Any] | None = None,
    state_dict: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    dataset: str | None = None,
) -> Path:
    """Write a model file (see the module doc) and ``<stem>.arch.json`` beside it."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "space": space,
        "space_options": dict(space_options or {}),
        "arch": arch.to_dict(),
        "network": dict(network),
        "trained": state_dict is not None,
        "state_dict": None if state_dict is None else {k: v.detach().cpu() for k, v in state_dict.items()},
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "dataset": dataset,
    }
    torch.save(payload, path)
    path.with_suffix(".arch.json").write_text(json.dumps(arch.to_dict()))
    return path


def load_model(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> torch.nn.Module:
    """The module of a file ``save_model`` / ``nas-ray export`` wrote, with its weights if it was trained
    (in eval mode). The file's metadata is on the module as ``model.nas_ray`` (a dict)."""
    import torch

    from nas_ray.evaluators.networks import build_network
    from nas_ray.spaces import get_space

    path = Path(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise DataFileError(f"{path}: no such model file") from None
    except Exception as exc:  # noqa: BLE001 - a foreign or corrupt file
        raise DataFileError(f"{path}: not a nas-ray model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataFileError(f"{path}: not a nas-ray model file (no format {FORMAT!r} marker)")
    if payload.get("version", 0) > VERSION:
        raise DataFileError(f"{path}: model format version {payload['version']} is newer than this nas-ray reads ({VERSION})")
    net = payload["network"]
    space = get_space(payload["space"], **payload.get("space_options", {}))
    model = build_network(
        space, Architecture.from_dict(payload["arch"]), num_classes=net["num_classes"],
        in_channels=net["in_channels"], preset=net.get("preset"), **net.get("options", {}),
    )
    if payload["state_dict"] is not None:
        model.load_state_dict(payload["state_dict"])
    model.to(map_location).eval()
    model.nas_ray = {k: v for k, v in payload.items() if k != "state_dict"}
    return model


def export_model(
    results_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    rank: int = 1,
    num_classes: int | None = None,
    in_channels: int | None = None,
    preset: str | None = None,
) -> ExportInfo:
    """Export the ``rank``-th best architecture (1 = best) of the search in ``results_dir``.

    A training search exports the network it trained, with the weights of that trial's last
    checkpoint (Tune) or last epoch (local backend). A table or supernet search exports the untrained
    network: its class count follows the table's dataset unless ``num_classes`` is given."""
    import pandas as pd

    results_dir = Path(results_dir)
    csv, summary_file = results_dir / "results.csv", results_dir / "summary.json"
    for f in (csv, summary_file):
        if not f.is_file():
            raise DataFileError(f"{f}: no such file; RESULTS_DIR must be a search's output folder")
    summary = json.loads(summary_file.read_text())
    table = pd.read_csv(csv, dtype={"trial_id": str, "hash": str})
    ok = table[table["status"] == "ok"]
    if not isinstance(rank, int) or rank < 1:
        raise ConfigError(f"rank must be a positive integer, got {rank!r}")
    if len(ok) < rank:
        raise ConfigError(f"{csv}: rank {rank} asked, but the search has {len(ok)} successful evaluations")
    ok = ok.sort_values(["reward", "query"], ascending=[summary.get("mode", "max") == "min", True], kind="stable")
    row = ok.iloc[rank - 1]
    arch = Architecture.from_json(row["arch"])
    evaluator = summary.get("evaluator") or {}
    space = evaluator.get("space") or summary.get("space")
    network = dict(evaluator.get("network") or {})
    space_options = dict(network.pop("space_options", {}) or {})

    state_dict, weights = None, None
    if network:  # a training evaluator: look for the trial's weights
        weights = _find_weights(results_dir, str(row["trial_id"]))
        if weights is not None:
            state_dict = _trained_weights(weights, str(row["hash"]))
    else:
        network = {"preset": None, "options": {}, "num_classes": TABLE_CLASSES.get(evaluator.get("dataset"), 10),
                   "in_channels": 3}
    if num_classes is not None or in_channels is not None or preset is not None:
        if state_dict is not None:
            raise ConfigError("--num-classes / --in-channels / --preset change the network; they apply only to an "
                             "untrained export (this search trained the network)")
        network.update({k: v for k, v in (("num_classes", num_classes), ("in_channels", in_channels),
                                          ("preset", preset)) if v is not None})
    metrics = {k: float(v) for k, v in row.items()
               if isinstance(v, (int, float)) and k not in ("query", "seed") and pd.notna(v)}
    path = save_model(
        out, space=space, space_options=space_options, arch=arch, network=network, state_dict=state_dict,
        metrics=metrics, dataset=evaluator.get("dataset"),
    )
    load_model(path)  # proves the file rebuilds (and that the weights fit the network) before reporting success
    return ExportInfo(path, path.with_suffix(".arch.json"), rank, int(row["query"]), float(row["reward"]),
                      state_dict is not None, weights)


def _find_weights(results_dir: Path, trial_id: str) -> Path | None:
    local = results_dir / WEIGHTS_DIR / f"{trial_id}.pt"
    if local.is_file():
        return local
    found = list(results_dir.glob(f"**/trial_{trial_id}/checkpoint_*/{STATE_FILE}"))
    if not found:
        return None
    return max(found, key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0))


def _trained_weights(path: Path, arch_hash: str) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise DataFileError(f"{path}: cannot read the trial's weights ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise DataFileError(f"{path}: holds no model weights")
    if state.get("hash") not in (None, arch_hash):
        raise DataFileError(f"{path}: weights of architecture {state['hash']}, not of {arch_hash}")
    return state["model"]

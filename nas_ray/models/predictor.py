"""Performance prediction from a graph-VAE encoder (VS-GAE, Friede et al. 2019; SVGe, Lukasik et al. 2021).

``PerformancePredictor`` is a graph-VAE encoder (any model of ``MODELS``; its posterior mean) followed
by an MLP ``latent -> 28 -> 14 -> 7 -> 1`` (ReLU, linear output), trained end to end on

    L = psi * L_VAE + (1 - psi) * MSE(prediction, target)

with ``psi = 0`` for VS-GAE's supervised predictor and ``psi = 0.1`` for SVGe's fine-tuned surrogate
(Eq. 18). Targets are standardised by the training set's mean and standard deviation (kept in the
model); predictions come back in the original units.

    result = fit_predictor(space, archs, y, model="svge", vae_weight=0.1, val_archs=va, val_y=vy)
    predictor_metrics(result.model, test_archs, test_y)  # {"rmse", "kendall_tau", "pearson", "n"}
    save_predictor("pred.pt", result)  # read back by load_predictor / the "surrogate:pred.pt" evaluator

``table_experiment`` is the protocol the CLI (``nas-ray train-predictor``) and the benchmark share:
a seeded 70/20/10 train/test/val split of a benchmark table, or a split by cell size (zero-shot).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas_ray.errors import CheckpointError, ConfigError, InvalidArchitecture
from nas_ray.graph import Architecture
from nas_ray.models.graph_vae import GraphBatch, GraphCodec, GraphVAE
from nas_ray.models.numerics import flush_denormals
from nas_ray.models.vae_training import FORMAT as VAE_FORMAT
from nas_ray.models.vae_training import (
    checkpoint_space,
    read_checkpoint,
    _model_class,
    _Progress,
    _space_record,
    build_model,
    default_device,
    load_model,
    save_checkpoint,
)
from nas_ray.spaces import get_space
from nas_ray.spaces.base import SearchSpace

__all__ = [
    "PerformancePredictor",
    "PredictorResult",
    "fit_predictor",
    "predictor_metrics",
    "save_predictor",
    "load_predictor",
    "split_by_size",
    "table_data",
    "table_experiment",
    "PUBLISHED_VSGAE",
]

FORMAT = "nas-ray-predictor"
VERSION = 1
HEAD = (28, 14, 7)

#: VS-GAE Table 1: RMSE of NB101 validation accuracy (as a fraction), full NB101
PUBLISHED_VSGAE = {"prediction": 0.0487, "zero-shot 6": 0.0526, "zero-shot 7": 0.0571}


class PerformancePredictor(nn.Module):
    """A graph-VAE encoder (``vae``; the μ branch) and a regression MLP ``hidden`` widths wide.

    ``forward(batch)`` predicts in the target's units; ``standardized(batch)`` is the head's raw output
    (the standardised target); ``predict(archs)`` needs ``codec`` and works in batches, in eval mode.
    """

    def __init__(self, vae: GraphVAE, model_name: str, codec: GraphCodec | None = None, hidden: Sequence[int] = HEAD,
                 y_mean: float = 0.0, y_std: float = 1.0) -> None:
        super().__init__()
        if not y_std > 0:
            raise ConfigError(f"the target's standard deviation must be positive, got {y_std}")
        self.vae = vae
        self.model_name = model_name
        self.codec = codec
        self.hidden = tuple(int(h) for h in hidden)
        layers: list[nn.Module] = []
        width = vae.latent_dim
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.head = nn.Sequential(*layers)
        self.register_buffer("y_mean", torch.tensor(float(y_mean)))
        self.register_buffer("y_std", torch.tensor(float(y_std)))

    def standardized(self, batch: GraphBatch) -> Tensor:
        """[B]: the prediction in standardised units (posterior mean -> MLP)."""
        mu, _ = self.vae.encode(batch)
        return self.head(mu).squeeze(-1)

    def forward(self, batch: GraphBatch) -> Tensor:
        """[B]: the prediction in the target's units."""
        return self.standardized(batch) * self.y_std + self.y_mean

    @torch.no_grad()
    def predict(self, archs: Sequence[Architecture], batch_size: int = 512) -> np.ndarray:
        """Predictions for ``archs`` (float64, target units); puts the model in eval mode."""
        if self.codec is None:
            raise ConfigError("predict() needs the predictor's codec (PerformancePredictor(..., codec=GraphCodec(space)))")
        self.eval()
        dev = self.y_mean.device
        out = [self(self.codec.batch(archs[i:i + batch_size], dev)).cpu() for i in range(0, len(archs), batch_size)]
        return torch.cat(out).double().numpy() if out else np.zeros(0)


@dataclass
class PredictorResult:
    """A trained predictor (eval mode, best-validation weights when a validation set was given)."""

    model: PerformancePredictor
    space: SearchSpace
    config: dict[str, Any]
    #: one row per epoch: epoch, loss, mse (standardised), vae, train_rmse (running, training mode), val_rmse, seconds
    history: list[dict[str, float]]
    #: 1-based epoch whose weights the model holds
    best_epoch: int
    info: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- training
def _as_targets(y: Iterable[float], n: int, what: str) -> np.ndarray:
    arr = np.asarray(list(y) if not isinstance(y, np.ndarray) else y, dtype=np.float64).reshape(-1)
    if len(arr) != n:
        raise ConfigError(f"{what}: {len(arr)} targets for {n} architectures")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{what}: targets must be finite numbers")
    return arr


@flush_denormals()
def fit_predictor(
    space: SearchSpace | str,
    archs: Sequence[Architecture],
    y: Sequence[float] | np.ndarray,
    *,
    model: str | None = None,
    init: str | os.PathLike[str] | None = None,
    vae_weight: float = 0.0,
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    val_archs: Sequence[Architecture] | None = None,
    val_y: Sequence[float] | np.ndarray | None = None,
    model_options: dict[str, Any] | None = None,
    beta: float = 0.005,
    eps_scale: float = 0.01,
    device: str | torch.device | None = "cpu",
    progress: bool = True,
    callback: Callable[[dict[str, float]], None] | None = None,
) -> PredictorResult:
    """Train a ``PerformancePredictor`` on ``archs`` labelled ``y`` and return it in eval mode.

    ``model``: a graph VAE of ``MODELS`` (default ``svge``, or the model of ``init``); ``init``: a
    pretrained graph-VAE checkpoint of this space whose weights start the encoder (and decoder);
    ``model_options`` size a fresh model instead. ``vae_weight`` is ψ: 0 trains the encoder and MLP on
    the MSE alone (VS-GAE), 0.1 is SVGe's surrogate. L_VAE is the model's own loss (KL weight
    ``beta``, noise ``eps_scale``), divided by the batch size for the D-VAE family, whose
    reconstruction term is a batch sum, so ψ weighs per-graph terms for every model. Adam at ``lr``,
    no schedule. With ``val_archs``/``val_y`` the weights of the best validation RMSE are kept.
    Deterministic for a ``seed`` on one device.
    """
    space = get_space(space) if isinstance(space, str) else space
    archs = list(archs)
    if not archs:
        raise ConfigError("fit_predictor needs at least one labelled architecture")
    y_arr = _as_targets(y, len(archs), "training set")
    if (val_archs is None) != (val_y is None):
        raise ConfigError("give both val_archs and val_y, or neither")
    val_archs = list(val_archs) if val_archs is not None else []
    val_arr = _as_targets(val_y, len(val_archs), "validation set") if val_y is not None else np.zeros(0)
    if not 0.0 <= vae_weight <= 1.0:
        raise ConfigError(f"vae_weight (psi) must be in [0, 1], got {vae_weight}")
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    if not lr > 0:
        raise ConfigError(f"lr must be positive, got {lr}")

    dev = default_device(device)
    codec = GraphCodec(space)
    data = codec.batch(archs)  # validates the ops of every graph
    val_batch = codec.batch(val_archs) if val_archs else None
    torch.manual_seed(seed)
    if init is not None:
        if model_options:
            raise ConfigError("model_options size a fresh model; a model started from init has the checkpoint's sizes")
        vae, _, ckpt = load_model(init, space=space, device=dev)
        if model is not None and _model_class(model) is not type(vae):
            raise CheckpointError(f"{init}: holds a {ckpt['model']} model, not {model}")
        model = ckpt["model"]
    else:
        model = model or "svge"
        vae = build_model(model, codec, **(model_options or {}))
    mean = float(y_arr.mean())
    std = float(y_arr.std()) if len(y_arr) > 1 and y_arr.std() > 0 else 1.0
    net = PerformancePredictor(vae, model, codec, y_mean=mean, y_std=std).to(dev)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    targets = torch.as_tensor((y_arr - mean) / std, dtype=torch.float32)
    per_graph = vae.recon_reduction == "sum"

    n = len(archs)
    history: list[dict[str, float]] = []
    best_rmse, best_epoch, best_state = math.inf, epochs, None
    bar = _Progress(epochs, progress, f"predictor {model} (psi={vae_weight:g}) on {space.name}")
    for epoch in range(epochs):
        t0 = time.perf_counter()
        net.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        sums = {"loss": 0.0, "mse": 0.0, "vae": 0.0}
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            batch = data.index(idx).to(dev)
            target = targets[idx].to(dev)
            if vae_weight > 0:
                out = vae.loss(batch, beta=beta, eps_scale=eps_scale)
                l_vae = out["loss"] / len(idx) if per_graph else out["loss"]
                pred = net.head(out["mu"]).squeeze(-1)
            else:
                l_vae = None
                pred = net.head(vae.encode(batch)[0]).squeeze(-1)
            mse = F.mse_loss(pred, target)
            loss = (1 - vae_weight) * mse + (vae_weight * l_vae if l_vae is not None else 0.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            k = len(idx)
            sums["loss"] += loss.item() * k
            sums["mse"] += mse.item() * k
            sums["vae"] += l_vae.item() * k if l_vae is not None else 0.0
        if not math.isfinite(sums["loss"]):
            raise FloatingPointError(f"predictor {model}: the loss became {sums['loss']} at epoch {epoch + 1}; lower the learning rate")
        record = {"epoch": epoch + 1, "loss": sums["loss"] / n, "mse": sums["mse"] / n, "vae": sums["vae"] / n,
                  "train_rmse": math.sqrt(sums["mse"] / n) * std}
        if val_batch is not None:
            rmse = _rmse(_predict_batch(net, val_batch, dev), val_arr)
            record["val_rmse"] = rmse
            if rmse < best_rmse:
                best_rmse, best_epoch = rmse, epoch + 1
                best_state = copy.deepcopy(net.state_dict())
        record["seconds"] = time.perf_counter() - t0
        history.append(record)
        if callback is not None:
            callback(record)
        shown = {"train_rmse": f"{record['train_rmse']:.4g}"}
        if "val_rmse" in record:
            shown["val_rmse"] = f"{record['val_rmse']:.4g}"
        bar.update(1, **shown)
    bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    config = {"model": model, "init": str(init) if init is not None else None, "vae_weight": float(vae_weight), "epochs": epochs,
              "lr": lr, "batch_size": batch_size, "seed": seed, "beta": beta, "eps_scale": eps_scale,
              "model_options": dict(model_options or {}), "num_train": n, "num_val": len(val_archs)}
    return PredictorResult(net, space, config, history, best_epoch)


@torch.no_grad()
def _predict_batch(net: PerformancePredictor, batch: GraphBatch, dev: torch.device, chunk: int = 1024) -> np.ndarray:
    net.eval()
    out = [net(batch.index(torch.arange(i, min(i + chunk, len(batch)))).to(dev)).cpu() for i in range(0, len(batch), chunk)]
    return torch.cat(out).double().numpy()


def _rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(y)) ** 2)))


def predictor_metrics(model: PerformancePredictor, archs: Sequence[Architecture], y: Sequence[float] | np.ndarray) -> dict[str, float]:
    """RMSE (target units), Kendall τ and Pearson r of ``model``'s predictions on ``archs``, and ``n``.
    τ and r are NaN for fewer than two architectures or constant values."""
    from scipy.stats import kendalltau, pearsonr

    archs = list(archs)
    y_arr = _as_targets(y, len(archs), "metrics")
    if not archs:
        raise ConfigError("predictor_metrics needs at least one architecture")
    pred = model.predict(archs)
    tau = r = float("nan")
    if len(archs) > 1 and np.ptp(pred) > 0 and np.ptp(y_arr) > 0:
        tau = float(kendalltau(pred, y_arr).statistic)
        r = float(pearsonr(pred, y_arr).statistic)
    return {"rmse": _rmse(pred, y_arr), "kendall_tau": tau, "pearson": r, "n": len(archs)}


# ---------------------------------------------------------------------------------------------- checkpoints
def save_predictor(path: str | os.PathLike[str], result: PredictorResult, space: SearchSpace | None = None, *,
                   info: dict[str, Any] | None = None) -> Path:
    """Write ``result`` atomically as a ``nas-ray-predictor`` checkpoint (a dict of tensors and JSON
    values; ``info``, e.g. what the target is and the test metrics, is stored beside ``result.info``)."""
    space = space or result.space
    net = result.model
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": net.model_name,
        "hyperparameters": net.vae.hyperparameters(),
        "head": list(net.hidden),
        "space": _space_record(space),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "target": {"mean": float(net.y_mean), "std": float(net.y_std)},
        "config": dict(result.config),
        "history": list(result.history),
        "best_epoch": int(result.best_epoch),
        "info": {**result.info, **(info or {})},
    }
    return save_checkpoint(path, payload)


def load_predictor(path: str | os.PathLike[str], space: SearchSpace | None = None, *,
                   device: str | torch.device | None = "cpu") -> tuple[PerformancePredictor, SearchSpace, dict[str, Any]]:
    """The predictor of a checkpoint (eval mode), its space and the checkpoint dict.

    ``CheckpointError`` for a missing or unreadable file, a graph-VAE (or other) checkpoint, another
    nas-ray version, or a checkpoint of a space other than ``space``."""
    path = Path(path)
    ckpt = read_checkpoint(path, "predictor checkpoint")
    if isinstance(ckpt, dict) and ckpt.get("format") == VAE_FORMAT:
        raise CheckpointError(f"{path}: is a graph-VAE checkpoint, not a performance predictor (train one with "
                              f"nas-ray train-predictor --init {path.name})")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a nas-ray performance-predictor checkpoint")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: written by an incompatible nas-ray version ({ckpt.get('version')})")
    the_space = checkpoint_space(path, ckpt["space"], space)
    try:
        vae = _model_class(ckpt["model"])(**ckpt["hyperparameters"])
        net = PerformancePredictor(vae, ckpt["model"], GraphCodec(the_space), ckpt["head"], ckpt["target"]["mean"], ckpt["target"]["std"])
        net.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: weights do not fit a {ckpt.get('model')} predictor: {str(exc).splitlines()[0]}") from None
    net.to(default_device(device)).eval()
    return net, the_space, ckpt


# ---------------------------------------------------------------------------------------------- data and splits
def split_by_size(archs: Sequence[Architecture], test_sizes: int | Iterable[int]) -> tuple[list[int], list[int]]:
    """Indices (train, test) of the zero-shot experiment: test = the cells with a node count in
    ``test_sizes``, train = all others (VS-GAE: test 6 trains on {2,3,4,5,7}; test 7 on {2..6})."""
    sizes = {int(test_sizes)} if isinstance(test_sizes, (int, np.integer)) else {int(s) for s in test_sizes}
    if not sizes:
        raise ConfigError("split_by_size needs at least one test size")
    train = [i for i, a in enumerate(archs) if a.num_nodes not in sizes]
    test = [i for i, a in enumerate(archs) if a.num_nodes in sizes]
    present = sorted({a.num_nodes for a in archs})
    if not test:
        raise ConfigError(f"no architecture has {'/'.join(map(str, sorted(sizes)))} nodes; sizes present: {present}")
    if not train:
        raise ConfigError(f"every architecture has a test size ({present}); nothing is left to train on")
    return train, test


def table_data(evaluator: Any) -> tuple[list[Architecture], np.ndarray]:
    """Every architecture of a tabular evaluator's table (canonical form, row order) and its reward."""
    table = getattr(evaluator, "table", None)
    if table is None:
        raise ConfigError(f"{type(evaluator).__name__}: predictor data comes from a benchmark table; use a table:... evaluator")
    space = table.space
    keys = sorted(table.rows, key=table.rows.get)
    if table.archs:
        archs = [space.canonicalize(a) for a in table.archs]
    else:  # keyed by the space's native string (NAS-Bench-201), or only by hashes (the official NB101 table)
        try:
            archs = [space.canonicalize(space.from_native(k)) for k in keys]
        except (InvalidArchitecture, NotImplementedError, TypeError, ValueError):
            raise ConfigError(f"table {table.name} lists hashes, not architectures; it cannot train a predictor") from None
    y = np.asarray(table.column(evaluator.reward), dtype=np.float64)
    return archs, y


def table_experiment(
    evaluator: Any,
    *,
    train_size: int | None = None,
    test_sizes: int | Iterable[int] | None = None,
    seed: int = 0,
    progress: bool = False,
    **fit_options: Any,
) -> tuple[PredictorResult, dict[str, Any]]:
    """Train and test a predictor on a tabular evaluator's table (labels: its reward column).

    Split (seeded by ``seed``): the table is shuffled and cut 70/20/10 into a training pool, a test
    set and a validation set (best-epoch selection); with ``test_sizes`` the test set is every cell of
    those node counts and the other cells are cut 90/10 into pool and validation. ``train_size``
    takes the first N of the pool (default: all of it). Returns the result (``info`` holds the split
    and the test metrics) and the test metrics ``{"rmse", "kendall_tau", "pearson", "n"}``. An
    evaluator of a table-defined space trains a predictor of its base space (the table's cells are
    that space's).
    """
    if getattr(evaluator.space, "table_defined", False):
        import copy

        evaluator = copy.copy(evaluator)
        evaluator.space = evaluator.space.base_space
    archs, y = table_data(evaluator)
    rng = np.random.default_rng(seed)
    if test_sizes is None:
        order = rng.permutation(len(archs))
        n_pool, n_test = int(round(0.7 * len(archs))), int(round(0.2 * len(archs)))
        pool, test, val = order[:n_pool], order[n_pool:n_pool + n_test], order[n_pool + n_test:]
        split = "seeded 70/20/10 train-pool/test/val split of the table"
    else:
        rest, test = split_by_size(archs, test_sizes)
        rest = np.asarray(rest)[rng.permutation(len(rest))]
        n_val = max(1, int(round(0.1 * len(rest)))) if len(rest) > 1 else 0
        pool, val, test = rest[n_val:], rest[:n_val], np.asarray(test)
        sizes = sorted({archs[i].num_nodes for i in test})
        split = f"zero-shot: test = every cell of {sizes} nodes, train/val = a seeded 90/10 split of the other sizes"
    if train_size is not None:
        if train_size < 1:
            raise ConfigError(f"train_size must be at least 1, got {train_size}")
        if train_size > len(pool):
            raise ConfigError(f"train_size {train_size} exceeds the {len(pool)} architectures of the training pool ({split})")
        pool = pool[:train_size]
    if len(pool) == 0:
        raise ConfigError(f"no training architectures left ({split})")
    pick = (lambda idx: [archs[i] for i in idx])  # noqa: E731
    result = fit_predictor(evaluator.space, pick(pool), y[pool], seed=seed, progress=progress,
                           val_archs=pick(val) if len(val) else None, val_y=y[val] if len(val) else None, **fit_options)
    metrics = predictor_metrics(result.model, pick(test), y[test])
    table = evaluator.table
    result.info.update({
        "table": table.name, "table_rows": len(archs), "target": evaluator.reward, "mode": getattr(evaluator, "mode", "max"),
        "split": split, "num_train": len(pool), "num_val": len(val), "num_test": len(test), "test_metrics": metrics,
    })
    if test_sizes is not None:
        result.info["test_sizes"] = sorted({archs[i].num_nodes for i in test})
    return result, metrics

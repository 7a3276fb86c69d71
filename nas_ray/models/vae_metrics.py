"""Graph-VAE abilities with D-VAE's protocol (Zhang et al., NeurIPS 2019, section 4).

Primary numbers reproduce what the published code computes: reconstruction decodes the posterior
*mean* (the code is in eval mode, where sampling returns μ) 10 × 10 times stochastically, and the
prior is N(0, I) rescaled to the training latents' per-dimension mean and std. Secondary "true"
variants sample z from the full posterior and from the unscaled prior. "The same graph" is
index-based (same size, same type and same predecessor set at every index), not isomorphism.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from nas_ray.graph import Architecture
from nas_ray.models.graph_vae import GraphCodec, GraphVAE, graph_key
from nas_ray.models.numerics import flush_denormals
from nas_ray.models.vae_training import encode_archs, load_model

__all__ = ["reconstruction_accuracy", "prior_metrics", "vae_abilities", "format_abilities", "PUBLISHED_ENAS6"]

from nas_ray.spaces.enas import PUBLISHED_ENAS6  # noqa: E402 - kept importable from here

_CHUNK = 4096  # latent rows decoded at once


def _decode_counts(model: GraphVAE, z: torch.Tensor, decodes: int, generator: torch.Generator) -> list[list[tuple[np.ndarray, np.ndarray, int]]]:
    """``decodes`` stochastic decodes of every row of ``z``, as distinct graphs with multiplicities."""
    out: list[list[tuple[np.ndarray, np.ndarray, int]]] = []
    dev = next(model.parameters()).device
    for i in range(0, len(z), _CHUNK):
        out.extend(model.decode_counts(z[i:i + _CHUNK].to(dev), decodes, generator=generator))
    return out


@torch.no_grad()
@flush_denormals()
def reconstruction_accuracy(model: GraphVAE, codec: GraphCodec, archs: Sequence[Architecture], *, z_samples: int = 10,
                            decodes: int = 10, true_posterior: bool = False, seed: int = 0, batch_graphs: int = 256) -> float:
    """Fraction of (graph, z, decode) triples whose stochastic decode is the input graph.

    ``true_posterior=False`` (the code's behaviour) uses z = μ for all ``z_samples``; ``True``
    draws z = μ + ε·σ."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    hits, total = 0, 0
    for start in range(0, len(archs), batch_graphs):
        chunk = archs[start:start + batch_graphs]
        mu, logvar = model.encode(codec.batch(chunk, next(model.parameters()).device))
        mu, logvar = mu.cpu(), logvar.cpu()
        if true_posterior:
            z = mu[:, None, :] + torch.randn(len(chunk), z_samples, mu.shape[1], generator=gen) * torch.exp(0.5 * logvar)[:, None, :]
            decoded, per_row = _decode_counts(model, z.reshape(-1, mu.shape[1]), decodes, gen), z_samples
        else:  # every "sample" is the mean: one row decoded z_samples x decodes times
            decoded, per_row = _decode_counts(model, mu, z_samples * decodes, gen), 1
        for i, arch in enumerate(chunk):
            key = codec.key(arch)
            hits += sum(c for row in decoded[i * per_row:(i + 1) * per_row] for t, a, c in row if graph_key(t, a) == key)
        total += len(chunk) * z_samples * decodes
    return hits / total if total else float("nan")


@torch.no_grad()
@flush_denormals()
def prior_metrics(model: GraphVAE, codec: GraphCodec, train_latents: torch.Tensor, train_keys: Iterable[str], *,
                  samples: int = 1000, decodes: int = 10, scale_to_train: bool = True, seed: int = 0) -> dict[str, float]:
    """Validity, uniqueness and novelty of ``samples`` prior draws decoded ``decodes`` times each."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, model.latent_dim, generator=gen)
    if scale_to_train:
        z = z * train_latents.std(0) + train_latents.mean(0)
    valid: dict[str, int] = {}
    for row in _decode_counts(model, z, decodes, gen):
        for t, a, c in row:
            if codec.to_arch(t, a) is not None:
                key = graph_key(t, a)
                valid[key] = valid.get(key, 0) + c
    known = set(train_keys)
    n = sum(valid.values())
    return {
        "validity": n / (samples * decodes),
        "uniqueness": len(valid) / n if n else 0.0,
        "novelty": 1.0 - sum(c for k, c in valid.items() if k in known) / n if n else 0.0,
    }


def vae_abilities(checkpoint: str | os.PathLike[str], train: Sequence[Architecture], test: Sequence[Architecture],
                  y_train: np.ndarray | None = None, y_test: np.ndarray | None = None, *, decodes: int = 10,
                  z_samples: int = 10, prior_samples: int = 1000, sgp_seeds: Iterable[int] = range(1, 11),
                  true_variants: bool = True, seed: int = 0, device: str | None = None) -> dict[str, Any]:
    """Every D-VAE ability metric (percent) of a checkpoint, plus the sparse-GP RMSE / Pearson r (from
    the first BO round's GP, before any acquisition) when accuracies are given. ``y`` are accuracies
    (higher is better); the GP fits ``-y`` as the protocol does."""
    model, space, ckpt = load_model(checkpoint, device=device or "cpu")
    codec = GraphCodec(space)
    z_train = encode_archs(model, codec, train)
    keys = [codec.key(a) for a in train]
    row: dict[str, Any] = {"model": ckpt["model"], "epochs": len(ckpt["history"]),
                           "train_graphs": len(train), "test_graphs": len(test)}
    row["recon"] = 100 * reconstruction_accuracy(model, codec, test, z_samples=z_samples, decodes=decodes, seed=seed)
    prior = prior_metrics(model, codec, z_train, keys, samples=prior_samples, decodes=decodes, seed=seed)
    row.update({k: 100 * v for k, v in prior.items()})
    if true_variants:
        row["recon_true"] = 100 * reconstruction_accuracy(model, codec, test, z_samples=z_samples, decodes=decodes,
                                                          true_posterior=True, seed=seed)
        true_prior = prior_metrics(model, codec, z_train, keys, samples=prior_samples, decodes=decodes, scale_to_train=False, seed=seed)
        row.update({f"{k}_true": 100 * v for k, v in true_prior.items()})
    if y_train is not None and y_test is not None and list(sgp_seeds):
        from nas_ray.models.sgp import sgp_metrics

        z_test = encode_archs(model, codec, test)
        m = sgp_metrics(z_train.numpy(), -np.asarray(y_train), z_test.numpy(), -np.asarray(y_test), seeds=list(sgp_seeds))
        row.update({f"sgp_{k}": m[k] for k in ("rmse_mean", "rmse_std", "pearson_mean", "pearson_std", "rmse", "pearson")})
    return row


_COLUMNS = (("recon", "recon %"), ("validity", "validity %"), ("uniqueness", "unique %"), ("novelty", "novel %"),
            ("sgp_rmse", "SGP RMSE"), ("sgp_pearson", "Pearson r"))


def format_abilities(rows: dict[str, dict[str, Any]], published: dict[str, dict[str, float]] | None = None) -> str:
    """A text table: measured rows (with epochs trained) and, under them, the published ones."""
    def cell(row: dict[str, Any], key: str) -> str:
        v = row.get(f"{key}_mean", row.get(key))
        if v is None:
            return "-"
        std = row.get(f"{key}_std")
        return f"{v:.3f}±{std:.3f}" if std is not None else (f"{v:.2f}" if key not in ("sgp_rmse", "sgp_pearson") else f"{v:.3f}")

    head = ["model", "epochs"] + [h for _, h in _COLUMNS] + ["recon % (true z)", "validity % (N(0,I))"]
    lines = []
    for name, row in rows.items():
        lines.append([f"{name} (measured)", str(row.get("epochs", "-"))] + [cell(row, k) for k, _ in _COLUMNS]
                     + [cell(row, "recon_true"), cell(row, "validity_true")])
    for name, row in (published or {}).items():
        lines.append([f"{name} (published)", "300"] + [cell(row, k) for k, _ in _COLUMNS] + ["-", "-"])
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in lines])

"""Graph-VAE and latent-BO speed on this machine.

- seconds per training epoch on the 17,118 ENAS-6 training graphs, per model at the published
  sizes (batch 32), extrapolated from ``--batches`` timed batches after one warm-up batch; with
  ``--baseline DIR`` (a checkout of an older nas-ray commit, e.g. ``git worktree add /tmp/old REV``)
  the same batches also go through that commit's models, interleaved batch by batch with the
  current ones and starting from the same weights, and the ratio is printed;
- one BO suggestion round (GP fit + kriging-believer batch of 50 by EI) at 100 and 1,000
  observations in a 56-dimensional latent space, and the decoding of those 50 points 500 times
  each, per model (published sizes, and the latent-bo default size), untrained;
- with ``--checkpoint FILE`` (repeatable; trained ENAS-6 models from ``nas-ray pretrain`` or
  ``benchmarks/vae_curves.py``): a whole decode-mode BO round on that model (GP fit on 100 encoded
  graphs + 50 points by EI + 500 decodes each), decoding both per copy (``decode``) and counted
  (``decode_counts``, what latent-bo uses); and the training epoch from that model's weights and
  optimizer state. Both are timed with subnormal floats flushed to zero (what nas-ray does since
  ``nas_ray.models.numerics``) and without (what it did before), interleaved in the same run:
  trained GRUs produce subnormals that an untrained model does not, so only a trained checkpoint
  shows the difference. With ``--baseline DIR`` as well, a third copy runs the older checkout's
  model from the same weights, unflushed as that code ran: the old-vs-new epoch of a model that
  has trained, in one run.

    python benchmarks/latent_bo_speed.py --data-dir ../shared/data --threads 2 --baseline /tmp/old
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from nas_ray import get_space
from nas_ray.evaluators.tables import enas6_vae_split
from nas_ray.models.graph_vae import GraphCodec
from nas_ray.models.numerics import flush_denormals
from nas_ray.models.sgp import SparseGP, select_batch
from nas_ray.models.vae_training import build_model


def _baseline_classes(root: str) -> dict[str, type]:
    """The model classes of another checkout, imported as separate modules."""
    import importlib.util
    import sys

    classes = {}
    for module, names in (("dvae", {"dvae": "DVAE", "dvae-emb": "DVAEEmb"}), ("svge", {"svge": "SVGe"})):
        spec = importlib.util.spec_from_file_location(f"baseline_{module}", Path(root) / "nas_ray" / "models" / f"{module}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # PyG's layer inspection looks modules up by name
        spec.loader.exec_module(mod)
        classes.update({name: getattr(mod, cls) for name, cls in names.items()})
    return classes


def epoch_seconds(name: str, codec: GraphCodec, train: list, batches: int, baseline: type | None = None) -> dict[str, float]:
    """Seconds per epoch (median batch x batches per epoch) of the current model and, given, the baseline's."""
    torch.manual_seed(0)
    models = {"new": build_model(name, codec)}
    if baseline is not None:
        models["old"] = baseline(codec.num_types, codec.max_nodes)
        models["old"].load_state_dict(models["new"].state_dict())
    opts = {k: torch.optim.Adam(m.parameters(), 1e-4) for k, m in models.items()}
    order = np.random.default_rng(0).permutation(len(train))
    times: dict[str, list[float]] = {k: [] for k in models}
    for k in range(batches + 1):
        batch = codec.batch([train[i] for i in order[k * 32:(k + 1) * 32]])
        for key, model in models.items():
            t0 = time.perf_counter()
            loss = model.loss(batch)["loss"]
            opts[key].zero_grad()
            loss.backward()
            opts[key].step()
            if k:
                times[key].append(time.perf_counter() - t0)
    return {key: float(np.median(t)) * int(np.ceil(len(train) / 32)) for key, t in times.items()}


def bo_round(n_obs: int, dim: int = 56, batch: int = 50) -> dict[str, float]:
    rng = np.random.default_rng(n_obs)
    x = rng.normal(size=(n_obs, dim))
    y = np.sin(x[:, :3].sum(1)) + 0.1 * rng.normal(size=n_obs)
    t0 = time.perf_counter()
    gp = SparseGP(num_inducing=500, epochs=100, seed=0).fit(x, y)
    t1 = time.perf_counter()
    select_batch(gp, x.min(0), x.max(0), batch, grid_size=10_000, seed=0)
    t2 = time.perf_counter()
    return {"fit_s": t1 - t0, "select_s": t2 - t1, "total_s": t2 - t0}


def decode_seconds(model: torch.nn.Module, points: int = 50, decodes: int = 500) -> float:
    z = torch.randn(points, model.latent_dim, generator=torch.Generator().manual_seed(0)).repeat_interleave(decodes, 0)
    t0 = time.perf_counter()
    for i in range(0, len(z), 4096):
        model.decode(z[i:i + 4096], generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--models", nargs="+", default=["dvae", "dvae-emb", "svge"])
    p.add_argument("--baseline", help="a checkout of an older commit to time side by side")
    p.add_argument("--checkpoint", action="append", help="a trained ENAS-6 graph-VAE checkpoint: time a whole BO round on it")
    p.add_argument("--skip-untrained", action="store_true", help="only the --checkpoint rounds")
    p.add_argument("--skip-rounds", action="store_true", help="with --checkpoint: time only its training epoch, not a BO round")
    p.add_argument("--json", default="bench-out/latent_bo_speed.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    space = get_space("enas-macro")
    codec = GraphCodec(space)
    train, _, _, _ = enas6_vae_split(args.data_dir)
    baseline = _baseline_classes(args.baseline) if args.baseline else {}
    out: dict[str, dict] = {"threads": args.threads, "epoch_s": {}, "bo": {}, "decode_s": {}}
    for name in [] if args.skip_untrained else args.models:
        t = out["epoch_s"][name] = epoch_seconds(name, codec, train, args.batches, baseline.get(name))
        line = f"{name:<10} {t['new']:8.0f} s per ENAS-6 epoch (17,118 graphs, batch 32, published sizes)"
        if "old" in t:
            line += f"; baseline {t['old']:.0f} s: {t['old'] / t['new']:.2f}x faster"
        print(line, flush=True)
    for n in () if args.skip_untrained else (100, 1000):
        out["bo"][str(n)] = bo_round(n)
        r = out["bo"][str(n)]
        print(f"BO round, {n:>5} observations: GP fit {r['fit_s']:.1f} s + batch of 50 by EI {r['select_s']:.1f} s = {r['total_s']:.1f} s", flush=True)
    from nas_ray.searchers.latent_bo import AUTO_MODEL_OPTIONS  # the searcher's default sizes

    for name in [] if args.skip_untrained else args.models:
        for size, options in (("published", {}), ("latent-bo default", AUTO_MODEL_OPTIONS[name])):
            torch.manual_seed(0)
            model = build_model(name, codec, **options).eval()
            key = f"{name} ({size})"
            out["decode_s"][key] = {"new": decode_seconds(model)}
            line = f"{key:<28} decoding 50 points x 500: {out['decode_s'][key]['new']:.1f} s"
            if name in baseline:
                old = baseline[name](codec.num_types, codec.max_nodes, **options).eval()
                old.load_state_dict(model.state_dict())
                out["decode_s"][key]["old"] = decode_seconds(old)
                line += f"; baseline {out['decode_s'][key]['old']:.1f} s"
            print(line, flush=True)
    for path in args.checkpoint or []:
        t = out.setdefault("trained_epoch_s", {})[path] = trained_epoch_seconds(path, train, args.batches, baseline)
        line = (f"{Path(path).name}: ENAS-6 epoch from its trained weights: {t['flushed']:.0f} s with subnormals flushed, "
                f"{t['unflushed']:.0f} s without: {t['unflushed'] / t['flushed']:.2f}x")
        if "old" in t:
            line += f"; baseline checkout (its code, not flushed) {t['old']:.0f} s: {t['old'] / t['flushed']:.2f}x"
        print(line, flush=True)
        for flush in () if args.skip_rounds else (True, False):
            r = out.setdefault("round", {}).setdefault(path, {})["flushed" if flush else "unflushed"] = trained_round(path, train, flush)
            print(f"{Path(path).name} ({'subnormals flushed' if flush else 'not flushed'}): BO round of 50 points x 500 decodes: "
                  f"GP fit + EI {r['gp_s']:.1f} s, decoding counted {r['counted_s']:.1f} s (per copy {r['per_copy_s']:.1f} s): "
                  f"{r['gp_s'] + r['counted_s']:.1f} s in all; {r['distinct_per_point']:.1f} distinct graphs per point", flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))


def trained_epoch_seconds(path: str, train: list, batches: int, baseline: dict[str, type] | None = None) -> dict[str, float]:
    """Seconds per epoch (median batch x batches per epoch) of training on from a checkpoint's weights
    and optimizer state, with and without subnormals flushed, two copies interleaved batch by batch;
    with ``baseline`` (another checkout's model classes) a third copy runs that checkout's model,
    unflushed as that code ran, from the same weights and optimizer state."""
    import copy

    from nas_ray.models.vae_training import PretrainConfig, load_model

    model, space, ckpt = load_model(path)
    config = PretrainConfig.from_checkpoint(ckpt["config"])
    codec = GraphCodec(space)

    def resumed(net: torch.nn.Module) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        """``net`` in training mode with the checkpoint's optimizer state."""
        opt = torch.optim.Adam(net.parameters(), config.lr)
        if "train" in ckpt:
            opt.load_state_dict(ckpt["train"]["optimizer"])
        return net.train(), opt

    copies = {key: resumed(copy.deepcopy(model)) for key in ("flushed", "unflushed")}
    if baseline and ckpt["model"] in baseline:
        old = baseline[ckpt["model"]](**ckpt["hyperparameters"])
        old.load_state_dict(model.state_dict())
        copies["old"] = resumed(old)
    order = np.random.default_rng(0).permutation(len(train))
    times: dict[str, list[float]] = {key: [] for key in copies}
    for k in range(batches + 1):
        batch = codec.batch([train[i] for i in order[k * 32:(k + 1) * 32]])
        for key, (net, opt) in copies.items():
            with flush_denormals(key == "flushed"):
                t0 = time.perf_counter()
                # an older checkout's loss may lack ``reduction`` (a scalar factor: the same work)
                extra = {} if key == "old" else {"reduction": config.reduction}
                loss = net.loss(batch, beta=config.beta, eps_scale=config.eps_scale, **extra)["loss"]
                opt.zero_grad()
                loss.backward()
                if config.grad_clip:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
                opt.step()
                if k:
                    times[key].append(time.perf_counter() - t0)
    return {key: float(np.median(t)) * int(np.ceil(len(train) / 32)) for key, t in times.items()}


def trained_round(path: str, train: list, flush: bool = True) -> dict[str, float]:
    """A decode-mode BO round on a trained model: GP on 100 encoded training graphs, 50 points by EI inside their box, 500 decodes each."""
    from nas_ray.models.vae_training import encode_archs, load_model

    model, space, _ = load_model(path)
    codec = GraphCodec(space)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(train), 100, replace=False)
    z = encode_archs(model, codec, [train[i] for i in idx]).numpy().astype(np.float64)
    y = rng.normal(size=100) + z[:, 0]
    with flush_denormals(flush):
        t0 = time.perf_counter()
        gp = SparseGP(num_inducing=500, epochs=100, seed=0).fit(z, -y)
        points = select_batch(gp, z.min(0), z.max(0), 50, grid_size=10_000, seed=0)
        t1 = time.perf_counter()
        zt = torch.as_tensor(np.asarray(points), dtype=torch.float32)
        counted = model.decode_counts(zt, 500, generator=torch.Generator().manual_seed(0))
        t2 = time.perf_counter()
        flat = zt.repeat_interleave(500, 0)
        for i in range(0, len(flat), 4096):
            model.decode(flat[i:i + 4096], generator=torch.Generator().manual_seed(0))
        t3 = time.perf_counter()
    return {"gp_s": t1 - t0, "counted_s": t2 - t1, "per_copy_s": t3 - t2, "distinct_per_point": float(np.mean([len(r) for r in counted]))}

if __name__ == "__main__":
    main()

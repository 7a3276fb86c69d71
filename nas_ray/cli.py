"""The ``nas-ray`` command line.

    nas-ray search                  # the offline main job: NB101 cells trained on digits, evolution, local Ray
    nas-ray search --evaluator table:nasbench201:cifar10 --searcher tpe --budget 100 --data-dir DATA
    nas-ray bench --space nasbench201 --dataset cifar10 --searcher random --searcher evolution --seeds 10
    nas-ray rl --evaluator table:nasbench201:cifar10 --budget 100 --num-env-runners 2 --data-dir DATA
    nas-ray pretrain --model dvae-emb --space nasbench201 --out nb201-dvae-emb.pt
    nas-ray vae-metrics nb201-dvae-emb.pt --data-dir DATA
    nas-ray train-predictor --evaluator table:nasbench201:cifar10 --vae-weight 0.1 --train-size 1000 --out pred.pt
    nas-ray show results/search/summary.json
    nas-ray export results/search --rank 1 --out model.pt
    nas-ray spaces | nas-ray searchers

Bad input prints one line naming the problem and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from nas_ray.errors import ConfigError, NasRayError
from nas_ray.search.config import SearchConfig, parse_key_values

EXIT_USAGE = 2

#: every YAML key of `nas-ray search --config` with the main job's value (derived from SearchConfig)
SEARCH_DEFAULTS: dict[str, Any] = SearchConfig.cli_defaults()


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and status 2, like every other bad input
        raise UsageError(f"{self.prog}: {message}")


def _key_values(items: list[str], flag: str) -> dict[str, Any]:
    """``["population_size=10", "p=0.5"]`` -> dict, values parsed as YAML scalars."""
    try:
        return parse_key_values(items, flag)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _import_plugins(modules: list[str]) -> None:
    """Import user modules (names or .py paths) that register their own spaces / searchers / evaluators."""
    from nas_ray.plugins import import_plugins

    import_plugins(modules)


def _searcher_arg(name: str) -> str:
    """``pkg.module:Class`` registers that class under its own ``name`` (or the path)."""
    if ":" not in name:
        return name
    from nas_ray.searchers import register_searcher

    module, _, attr = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"cannot load searcher {name!r}: {exc}") from None
    register_searcher(name, cls, overwrite=True)
    return name


# ---------------------------------------------------------------------------------- search
def _load_config(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"--config: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"--config: {path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        # a ReaderError (e.g. a NUL byte) has no .problem and a multi-line str(): keep its first line
        problem = (str(getattr(exc, "problem", None) or exc).splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"--config: {path}{where} is not valid YAML: {problem}") from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise UsageError(f"--config: {path} is not valid YAML: nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - PyYAML's constructors raise ConfigError, KeyError, IndexError... on bad scalars
        reason = (str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc).splitlines() or [""])[0]
        raise UsageError(f"--config: {path} is not valid YAML: bad scalar value ({type(exc).__name__}: {reason})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config: {path} must hold a mapping of options, got {type(data).__name__}")
    not_str = [k for k in data if not isinstance(k, str)]
    if not_str:
        raise UsageError(f"--config: {path}: option names must be strings, got {type(not_str[0]).__name__} {not_str[0]!r}")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - set(SEARCH_DEFAULTS))
    if unknown:
        raise UsageError(f"--config: {path}: unknown option {unknown[0]!r}; options: {', '.join(SEARCH_DEFAULTS)}")
    return data


def cmd_search(args: argparse.Namespace) -> int:
    values = _load_config(args.config)
    for key in SEARCH_DEFAULTS:  # flags given on the command line win over the file
        value = getattr(args, key, None)
        if value is not None and value != [] and value is not False:
            values[key] = value
    _import_plugins(list(values.get("import") or []))
    try:
        config = SearchConfig.main_job().with_cli_values(values)
        config = config.replace(searcher=_searcher_arg(config.searcher) if isinstance(config.searcher, str) else config.searcher)
        config.validate()
    except ConfigError as exc:
        raise UsageError(_flag_wording(str(exc))) from None
    if config.data_dir is not None and not Path(config.data_dir).exists():
        raise UsageError(f"--data-dir {config.data_dir} does not exist")
    output = Path(config.output or f"results/search-{time.strftime('%Y%m%d-%H%M%S')}")

    from nas_ray.search import run

    result = run(config.replace(output=output))
    _print_summary(result)
    return 0


def _flag_wording(message: str) -> str:
    """A SearchConfig message in the CLI's words: ``budget must ...`` -> ``--budget must ...``."""
    for key in sorted(SEARCH_DEFAULTS, key=len, reverse=True):
        if message.startswith(f"{key} "):
            return f"--{key.replace('_', '-')} {message[len(key) + 1:]}"
    return message


def _lam(value: Any) -> float:
    try:
        lam = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"--lam must be a number, got {value!r}") from None
    if not (lam >= 0 and lam != float("inf")):
        raise UsageError(f"--lam must be a finite number >= 0, got {value!r}")
    return lam


def cmd_resume(args: argparse.Namespace) -> int:
    path = Path(args.results_dir)
    if not path.is_dir():
        raise UsageError(f"resume: {path} is not a folder (pass a search's --output folder)")
    from nas_ray.search import resume

    result = resume(path, address=args.address)
    _print_summary(result)
    return 0


def _print_summary(result: Any) -> None:
    s = result.summary
    t = result.table
    stopped = f", {s['stopped_early']} stopped early by {s['scheduler']}" if s.get("stopped_early") else ""
    print(f"\n{s['searcher']} on {s['space']} ({s['backend']} backend): {s['evaluations']} evaluations, "
          f"{s['failed']} failed{stopped}, {s['wall_s']:.1f} s")
    ok = t[t["status"] == "ok"].sort_values("reward", ascending=result.mode == "min").head(5)
    if len(ok):
        skip = {"query", "trial_id", "searcher", "seed", "space", "hash", "arch", "status", "reward", "wall_s",
                "error", result.metric}
        extra = [c for c in ok.columns if c not in skip and ok[c].notna().all()][:3]
        header = f"{'rank':>4} {'query':>5} {result.metric:>14} " + " ".join(f"{c:>14}" for c in extra) + "  hash"
        print(header)
        for rank, (_, row) in enumerate(ok.iterrows(), start=1):
            cells = " ".join(f"{row[c]:>14.4g}" for c in extra)
            print(f"{rank:>4} {int(row['query']):>5} {row['reward']:>14.4g} {cells}  {row['hash'][:16]}")
    front = result.pareto_front()
    if front is not None and len(front):
        obj = result.objective
        print(f"\nnon-dominated set ({len(front)} of {len(t)}; {obj.label()}):")
        print(f"{'query':>5} {obj.metric:>14} {obj.cost:>14} {'score':>10}  hash")
        for _, row in front.iterrows():
            print(f"{int(row['query']):>5} {row[obj.metric]:>14.4g} {row[obj.cost]:>14.4g} {row['reward']:>10.4g}  {row['hash'][:16]}")
    if result.output is not None:
        pareto = f", {result.output / 'pareto.png'}" if front is not None else ""
        print(f"\nresults: {result.output / 'results.csv'}\nplots:   {result.output / 'best_so_far.png'}, "
              f"{result.output / 'best_architecture.png'}{pareto}")


# ---------------------------------------------------------------------------------- rl
def cmd_rl(args: argparse.Namespace) -> int:
    _import_plugins(getattr(args, "import") or [])
    if args.budget is not None and args.budget <= 0:
        raise UsageError(f"--budget must be a positive integer, got {args.budget}")
    if args.num_env_runners < 0:
        raise UsageError(f"--num-env-runners must be 0 or more, got {args.num_env_runners}")
    if args.checkpoint_every < 0:
        raise UsageError(f"--checkpoint-every must be 0 or more, got {args.checkpoint_every}")
    if args.data_dir is not None and not Path(args.data_dir).exists():
        raise UsageError(f"--data-dir {args.data_dir} does not exist")
    if args.restore is not None and not (Path(args.restore) / "rllib_checkpoint.json").is_file():
        raise UsageError(f"--restore {args.restore} is not a checkpoint folder (no rllib_checkpoint.json)")
    output = Path(args.output or f"results/rl-{time.strftime('%Y%m%d-%H%M%S')}")

    from nas_ray.search.rl import run_rllib

    result = run_rllib(
        evaluator=args.evaluator,
        space=args.space,
        space_options=_key_values(args.space_option or [], "--space-option"),
        budget=args.budget if args.budget is not None else 100,
        seed=args.seed if args.seed is not None else 0,
        num_env_runners=args.num_env_runners,
        preset=args.preset,
        options=_key_values(args.option or [], "--option"),
        data_dir=args.data_dir,
        evaluation=args.evaluation,
        output=output,
        checkpoint_every=args.checkpoint_every,
        restore=args.restore,
        address=args.address,
        evaluator_options=_key_values(args.evaluator_option or [], "--evaluator-option"),
    )
    _print_summary(result)
    print(f"checkpoint: {output / 'checkpoint'}")
    return 0


# ---------------------------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    _import_plugins(args.imports or [])
    if args.budget <= 0:
        raise UsageError(f"--budget must be a positive integer, got {args.budget}")
    if args.seeds <= 0:
        raise UsageError(f"--seeds must be a positive integer, got {args.seeds}")
    if args.workers <= 0:
        raise UsageError(f"--workers must be a positive integer, got {args.workers}")
    if args.pareto and not args.cost:
        raise UsageError("--pareto needs --cost (the cost to trade accuracy against)")
    if args.data_dir is not None and not Path(args.data_dir).exists():
        raise UsageError(f"--data-dir {args.data_dir} does not exist")
    from nas_ray.bench import print_bench, run_bench

    searchers = [_searcher_arg(s) for s in (args.searcher or ["random", "evolution", "tpe"])]
    report = run_bench(
        space=args.space,
        dataset=args.dataset,
        evaluator=args.evaluator,
        searchers=searchers,
        seeds=args.seeds,
        budget=args.budget,
        data_dir=args.data_dir,
        searcher_options=_key_values(args.searcher_option or [], "--searcher-option"),
        progress=not args.quiet,
        workers=args.workers,
        partial=f"{args.json}.partial.jsonl" if args.json else None,
        cost=args.cost,
        lam=_lam(args.lam),
        pareto=args.pareto,
        reference=not args.no_reference,
    )
    print_bench(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report["json"], indent=2))
        print(f"wrote {args.json}")
    plot = args.plot or (str(Path(args.json).with_suffix(".png")) if args.json else None)
    if plot:
        from nas_ray.bench import plot_bench

        plot_bench(report, plot)
        print(f"wrote {plot}")
    return 0


# ---------------------------------------------------------------------------------- show
def cmd_show(args: argparse.Namespace) -> int:
    from nas_ray import Architecture, get_space

    path = Path(args.path)
    if path.is_dir():
        path = path / "summary.json"
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"show: cannot read {args.path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"show: {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    space_name = args.space
    if isinstance(data, dict) and "best" in data and isinstance(data.get("best"), dict):
        space_name = space_name or data.get("space")
        print(f"best of {data.get('searcher')} on {data.get('space')}: {data['metric']} = {data['best']['reward']:.6g}")
        data = data["best"]["arch"]
    arch = Architecture.from_dict(data)
    print(f"{arch.num_nodes} nodes, {arch.num_edges} edges")
    for v, op in enumerate(arch.ops):
        succ = arch.successors(v)
        print(f"  {v:>2} {op:<22} -> {', '.join(map(str, succ)) if succ else '(none)'}")
    if space_name:
        space = get_space(space_name)
        space.validate(arch)
        print(f"space {space.name}: valid, hash {space.hash(arch)}")
        native = space.to_native(arch)
        if not isinstance(native, dict):
            print(f"native form: {native}")
    if args.png:
        from nas_ray.plots import draw_architecture

        draw_architecture(arch, args.png)
        print(f"wrote {args.png}")
    return 0


# ---------------------------------------------------------------------------------- export
def cmd_export(args: argparse.Namespace) -> int:
    from nas_ray.export import export_model

    if not Path(args.results_dir).is_dir():
        raise UsageError(f"export: {args.results_dir} is not a folder (give a search's --output folder)")
    info = export_model(args.results_dir, args.out, rank=args.rank, num_classes=args.num_classes,
                        in_channels=args.in_channels, preset=args.preset)
    weights = f"trained weights from {info.weights_from}" if info.trained else "untrained (the search did not train it)"
    print(f"rank {info.rank} (query {info.query}, reward {info.reward:.6g}): {info.path}, {weights}")
    print(f"architecture: {info.arch_json}\nload it with: nas_ray.export.load_model({str(info.path)!r})")
    return 0


# ---------------------------------------------------------------------------------- graph VAEs
def cmd_pretrain(args: argparse.Namespace) -> int:
    from nas_ray.latent import vae_dataset
    from nas_ray.models.vae_training import PretrainConfig, pretrain
    from nas_ray.spaces import get_space

    space = get_space(args.space, **_key_values(args.space_option or [], "--space-option"))
    model_options = {k: v for k, v in (("latent_dim", args.latent_dim), ("hidden_dim", args.hidden_dim)) if v is not None}
    if args.model.startswith("svge") and "hidden_dim" in model_options:
        model_options["node_dim"] = model_options.pop("hidden_dim")
    config = PretrainConfig(model=args.model, recipe=args.recipe, epochs=args.epochs, iterations=args.iterations,
                            batch_size=args.batch_size, lr=args.lr, seed=args.seed, model_options=model_options)
    data = vae_dataset(space, args.data, args.data_dir, seed=args.seed)
    train = data.train + (data.test if args.all_graphs else [])
    out = Path(args.out or f"{space.name}-{args.model}.pt")
    if out.exists() and not args.resume:
        raise UsageError(f"pretrain: {out} exists; pass --resume to continue it or choose another --out")
    print(f"pretraining {args.model} on {len(train)} graphs: {data.source}", file=sys.stderr)
    result = pretrain(space, train, config, checkpoint=out, resume=args.resume, device=args.device, progress=not args.quiet,
                      validation=None if args.all_graphs else data.test)
    last = result.history[-1] if result.history else {}
    print(f"{out}: {len(result.history)} epochs, last epoch's loss {last.get('loss', float('nan')):.4g}, "
          f"greedy reconstruction of {min(config.monitor, len(train))} training graphs {100 * last.get('recon_acc', float('nan')):.2f}%"
          + (f", of {min(config.monitor, len(data.test))} held-out graphs {100 * last['val_recon_acc']:.2f}%, "
             f"prior validity {100 * last['prior_validity']:.2f}%" if "val_recon_acc" in last else ""))
    return 0


def cmd_train_encoder(args: argparse.Namespace) -> int:
    from nas_ray.models.nasgem import EncoderConfig, train_encoder
    from nas_ray.spaces import get_space

    space = get_space(args.space, **_key_values(args.space_option or [], "--space-option"))
    try:
        config = EncoderConfig(embed_dim=args.dim, pairs=args.pairs, iterations=args.iterations, graphs=args.graphs,
                               wl_iterations=args.wl_iterations, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                               similarity_weight=0.0 if args.autoencoder else 1.0)
    except ValueError as exc:
        raise UsageError(f"train-encoder: {exc}") from None
    out = Path(args.out or f"{space.name}-nasgem{'-ae' if args.autoencoder else ''}.pt")
    if out.exists() and not args.force:
        raise UsageError(f"train-encoder: {out} exists; pass --force to overwrite it or choose another --out")
    kind = "MLP autoencoder" if args.autoencoder else "kernel-guided encoder"
    print(f"training a NASGEM {kind} for {space.name}: {config.pairs} pairs, {config.iterations} iterations", file=sys.stderr)
    result = train_encoder(space, config, checkpoint=out, device=args.device, progress=not args.quiet)
    last = result.history[-1]
    print(f"{out}: similarity RMSE {last['similarity_rmse']:.4f}, exact reconstruction {100 * last['exact_reconstruction']:.1f}% "
          f"(last {min(100, config.iterations)} iterations); pairs {result.seconds['pairs_s']:.1f} s "
          f"(WL kernel {result.seconds['wl_s']:.1f} s), training {result.seconds['train_s']:.1f} s")
    return 0


def cmd_vae_metrics(args: argparse.Namespace) -> int:
    from nas_ray.latent import vae_dataset
    from nas_ray.models.vae_metrics import format_abilities, vae_abilities
    from nas_ray.models.vae_training import load_checkpoint
    from nas_ray.spaces import get_space

    ckpt = load_checkpoint(args.checkpoint)
    space = get_space(ckpt["space"]["name"], **ckpt["space"]["options"])
    data = vae_dataset(space, args.data, args.data_dir, seed=ckpt["config"]["seed"])
    print(f"measuring {ckpt['model']} ({len(ckpt['history'])} epochs) on {len(data.test)} test graphs: {data.source}", file=sys.stderr)
    row = vae_abilities(args.checkpoint, data.train, data.test, data.y_train, data.y_test, decodes=args.decodes,
                        prior_samples=args.prior_samples, sgp_seeds=range(1, args.sgp_seeds + 1), device=args.device)
    published = space.published("vae-abilities")
    print(format_abilities({Path(args.checkpoint).stem: row}, published))
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=1))
    return 0


def cmd_train_predictor(args: argparse.Namespace) -> int:
    from nas_ray.evaluators.specs import get_evaluator
    from nas_ray.models.predictor import save_predictor, table_experiment

    evaluator = get_evaluator(args.evaluator, data_dir=args.data_dir)
    if getattr(evaluator, "table", None) is None:
        raise UsageError(f"train-predictor: --evaluator must be a benchmark table (table:...), got {args.evaluator}")
    # a table-defined space's table trains a predictor of its base space (table_experiment)
    space_name = evaluator.space.base_space.name if getattr(evaluator.space, "table_defined", False) else evaluator.space.name
    if args.space and args.space != space_name:
        raise UsageError(f"train-predictor: --space {args.space} differs from the evaluator's space {space_name}")
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise UsageError(f"train-predictor: {out} exists; pass --overwrite or choose another --out")
    model_options = {k: v for k, v in (("latent_dim", args.latent_dim), ("hidden_dim", args.hidden_dim)) if v is not None}
    if (args.model or "svge").startswith("svge") and "hidden_dim" in model_options:
        model_options["node_dim"] = model_options.pop("hidden_dim")
    table = evaluator.table
    if len(table) < 1000:
        print(f"note: {table.name} is small ({len(table)} distinct architectures): the numbers are indicative, "
              "not comparable to those on a full benchmark", flush=True)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result, metrics = table_experiment(
        evaluator, train_size=args.train_size, test_sizes=args.test_sizes or None, seed=args.seed, progress=not args.quiet,
        model=args.model, init=args.init, vae_weight=args.vae_weight, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, model_options=model_options or None, device=args.device)
    info = result.info
    info["evaluator"] = args.evaluator
    save_predictor(out, result)
    best = result.history[result.best_epoch - 1]
    print(f"{result.config['model']} predictor (psi={args.vae_weight:g}) of {info['target']} on {info['table']}: "
          f"{info['num_train']} train / {info['num_val']} val / {info['num_test']} test cells ({info['split']})")
    print(f"test: RMSE {metrics['rmse']:.4f} ({info['target']} units), Kendall tau {metrics['kendall_tau']:.4f}, "
          f"Pearson r {metrics['pearson']:.4f}, n {metrics['n']}; best val epoch {result.best_epoch}/{len(result.history)} "
          f"(val RMSE {best.get('val_rmse', float('nan')):.4f})")
    print(f"wrote {out} (use it as --evaluator surrogate:{out}: predicted, not measured)")
    if args.json:
        Path(args.json).write_text(json.dumps({"metrics": metrics, "info": info, "config": result.config,
                                               "history": result.history}, indent=1))
    return 0


# ---------------------------------------------------------------------------------- listings
def _first_line(obj: Any) -> str:
    """The first sentence of a docstring (which may wrap over lines)."""
    paragraph = " ".join((obj.__doc__ or "").strip().split("\n\n")[0].split())
    return paragraph.split(". ")[0].rstrip(".").replace("``", "")


def cmd_spaces(args: argparse.Namespace) -> int:
    from nas_ray.spaces import SPACES

    width = max(map(len, SPACES.names())) + 1
    for name in SPACES.names():
        space = SPACES.create(name)
        options = ", ".join(f"{k}={v}" for k, v in space.options().items())
        print(f"{name:<{width}} {_first_line(type(space))}" + (f"  [options: {options}]" if options else ""))
    return 0


def cmd_searchers(args: argparse.Namespace) -> int:
    from nas_ray.searchers import SEARCHERS

    for name in SEARCHERS.names():
        cls = SEARCHERS.get(name)
        drivers = getattr(cls, "drivers", ("tune",))
        also = f"  (drivers: {', '.join(drivers)})" if tuple(drivers) != ("tune",) else ""
        print(f"{name:<12} {_first_line(cls)}{also}")
    return 0


def cmd_evaluators(args: argparse.Namespace) -> int:
    from nas_ray.evaluators.specs import evaluator_kinds

    _import_plugins(args.imports or [])
    for kind in evaluator_kinds():
        print(f"{kind.name:<12} {kind.help}")
        print(f"{'':<12} e.g. {', '.join(kind.examples)}")
    return 0


def _evaluator_help(default: str | None = None) -> str:
    """The --evaluator help, from the registry: its kinds, and where more come from."""
    from nas_ray.evaluators.specs import evaluator_kinds

    kinds = ", ".join(kind.help.split(" ")[0] for kind in evaluator_kinds())
    return (f"KIND[:ARGUMENT]: {kinds}, or a kind that --import registers; see `nas-ray evaluators`"
            + (f" ({default})" if default else ""))


# ---------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nas-ray", description="Graph-based neural architecture search on Ray.")
    parser.add_argument("--version", action="version", version="nas-ray 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("search", help="run a search (defaults: the offline main job)",
                       description="Run a search. With no arguments: NAS-Bench-101 cells trained on scikit-learn's "
                       "digits, regularized evolution, on a local Ray. Flags override --config.")
    s.add_argument("--config", help="YAML file with any of the options below (underscored names)")
    SearchConfig.add_arguments(s, defaults=SearchConfig.main_job(), help_for={  # one flag per SearchConfig field
        "evaluator": _evaluator_help("default train:digits"), "output": "results folder (default results/search-<time>)"})
    s.set_defaults(func=cmd_search)

    rs = sub.add_parser("resume", help="continue a Tune search whose driver died, from its results folder",
                        description="Restores the Tune experiment and the searcher from the last snapshot in RESULTS_DIR "
                        "(what nas-ray search --output wrote) and runs the search to its budget.")
    rs.add_argument("results_dir", help="the search's output folder (holds run.json and the Tune run)")
    rs.add_argument("--address", help="join a Ray cluster: auto (inside ray submit) or ray://host:10001")
    rs.set_defaults(func=cmd_resume)

    r = sub.add_parser("rl", help="GraphPNAS trained by REINFORCE under RLlib",
                       description="GraphPNAS's search as an RLlib algorithm: env runners build architectures with "
                       "the generator and evaluate them (in parallel with --num-env-runners), the learner refits the "
                       "generator on the replay buffer's best. Writes the same results files as `search`.")
    r.add_argument("--evaluator", required=True, help=_evaluator_help())
    # the settings a search and an RLlib run share come from SearchConfig
    SearchConfig.add_arguments(r, only=("evaluator_options", "space", "space_options", "budget", "seed", "data_dir", "output",
                                        "address", "imports"),
                               help_for={"budget": "unique architectures to evaluate (default 100)",
                                         "output": "results folder (default results/rl-<time>)"})
    r.add_argument("--num-env-runners", type=int, default=0, help="evaluations at a time (default 0: in this process)")
    r.add_argument("--preset", help="GraphPNAS settings (default: the space's), e.g. nb201-cifar100")
    r.add_argument("--option", action="append", metavar="KEY=VALUE", help="a GraphPNAS option, e.g. epochs=10")
    r.add_argument("--evaluation", choices=["auto", "local", "remote"], default="auto",
                   help="auto (default): a Ray task per evaluation when the evaluator needs a GPU")
    r.add_argument("--checkpoint-every", type=int, default=0, metavar="N", help="also checkpoint every N iterations")
    r.add_argument("--restore", metavar="CHECKPOINT", help="continue from a checkpoint folder")
    r.set_defaults(func=cmd_rl)

    b = sub.add_parser("bench", help="compare searchers on a benchmark table, in-process",
                       description="Several searchers x seeds on a tabular benchmark; prints mean +- std of the "
                       "reported metric of the best-reward architecture.")
    b.add_argument("--space", default="nasbench201")
    b.add_argument("--dataset", default="cifar10", help="NB201: cifar10, cifar100 or imagenet16-120")
    b.add_argument("--evaluator", help=_evaluator_help("default: the table of --space / --dataset"))
    b.add_argument("--searcher", action="append", help="repeat for several (default: random, evolution, tpe); NAME@rllib runs a searcher under the RLlib driver (graphpnas@rllib)")
    b.add_argument("--searcher-option", action="append", metavar="KEY=VALUE",
                   help="to every searcher, or NAME.KEY=VALUE to one, e.g. graphpnas.epochs=10")
    b.add_argument("--workers", type=int, default=1, help="runs at a time in worker processes (default 1)")
    b.add_argument("--budget", type=int, default=100)
    b.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per searcher")
    b.add_argument("--data-dir")
    b.add_argument("--json", help="write summary and runs here")
    b.add_argument("--plot", help="PNG of the mean best-so-far curves (default: next to --json)")
    b.add_argument("--cost", help="multi-objective: a cost column of the table, e.g. lat_pixel3_ms or params_c10_M; "
                   "each run then scores the hypervolume of what it evaluated")
    b.add_argument("--lam", type=float, default=0.02, help="the efficiency score's lambda (default 0.02)")
    b.add_argument("--pareto", action="store_true", help="searchers that can (nasgem) model both objectives")
    b.add_argument("--quiet", action="store_true", help="no line per run")
    b.add_argument("--no-reference", action="store_true",
                   help="leave out the reference rows (tune-random, tune-optuna: Ray Tune's own algorithms over the space's decisions)")
    b.add_argument("--import", dest="imports", action="append", metavar="MODULE")
    b.set_defaults(func=cmd_bench)

    w = sub.add_parser("show", help="print (and draw) an architecture from a JSON file or a results folder")
    w.add_argument("path", help='architecture JSON {"ops": [...], "matrix": [[...]]}, summary.json or its folder')
    w.add_argument("--space", help="check it against this space and print its hash and native form")
    w.add_argument("--png", help="draw it to this PNG")
    w.set_defaults(func=cmd_show)

    e = sub.add_parser("export", help="write a searched architecture as a PyTorch model file")
    e.add_argument("results_dir", help="a search's output folder (results.csv, summary.json)")
    e.add_argument("--rank", type=int, default=1, help="1 = the best architecture (default), 2 = the second, ...")
    e.add_argument("--out", required=True, help="model file to write, e.g. model.pt (and model.arch.json beside it)")
    e.add_argument("--num-classes", type=int, help="untrained exports: classes of the output layer")
    e.add_argument("--in-channels", type=int, help="untrained exports: input channels (default 3)")
    e.add_argument("--preset", help="untrained exports: network preset, e.g. small")
    e.set_defaults(func=cmd_export)

    pt = sub.add_parser("pretrain", help="train a graph VAE (D-VAE, DVAE-EMB, SVGe) on a space's graphs, without labels",
                        description="Unsupervised graph-VAE pretraining (the fast recipe, or the published one with "
                        "--recipe paper); checkpoints every epoch.")
    pt.add_argument("--model", default="dvae-emb", help="dvae, dvae-emb, svge or svge-triplet (default dvae-emb)")
    pt.add_argument("--space", default="nasbench201")
    pt.add_argument("--space-option", action="append", metavar="KEY=VALUE")
    pt.add_argument("--data", default="auto", help="auto, table, sample:N or a JSON list of architectures (default auto)")
    pt.add_argument("--all-graphs", action="store_true", help="train on the test split too (for search, not for metrics)")
    pt.add_argument("--data-dir")
    pt.add_argument("--recipe", default="fast", choices=["fast", "paper"],
                    help="fast (default: lr 1e-3, cosine decay, 20 epochs, batch 32, per-graph loss) or paper "
                    "(the published recipe: lr 1e-4, plateau schedule, 300 epochs, DVAE-EMB 4 iterations)")
    pt.add_argument("--epochs", type=int, help="per iteration (default: the recipe's, 20 fast / 300 paper)")
    pt.add_argument("--iterations", type=int, help="DVAE-EMB's re-training iterations (default 1; 4 in the paper recipe)")
    pt.add_argument("--batch-size", type=int, help="default 32 (paper recipe: 128 for SVGe outside ENAS)")
    pt.add_argument("--lr", type=float, help="default: the recipe's (1e-3 fast, 1e-4 paper)")
    pt.add_argument("--latent-dim", type=int, help="default 56")
    pt.add_argument("--hidden-dim", type=int, help="D-VAE hidden size (501) or SVGe node size (250)")
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    pt.add_argument("--out", help="checkpoint file (default SPACE-MODEL.pt)")
    pt.add_argument("--resume", action="store_true", help="continue the checkpoint at --out")
    pt.add_argument("--quiet", action="store_true", help="no progress bar")
    pt.set_defaults(func=cmd_pretrain)

    te = sub.add_parser("train-encoder", help="train NASGEM's WL-kernel-guided graph encoder for a space (nasgem uses it)",
                        description="Trains the encoder/decoder MLPs on pairs of graphs so that embedding cosine "
                        "similarity matches the Weisfeiler-Lehman kernel; pass the file to nasgem as "
                        "--searcher-option encoder=FILE.")
    te.add_argument("--space", default="nasbench201")
    te.add_argument("--space-option", action="append", metavar="KEY=VALUE")
    te.add_argument("--dim", type=int, default=32, help="embedding size d (default 32)")
    te.add_argument("--pairs", type=int, default=50_000, help="training pairs (default 50,000)")
    te.add_argument("--iterations", type=int, default=10_000, help="Adam steps (default 10,000)")
    te.add_argument("--graphs", type=int, default=20_000, help="distinct graphs the pairs are drawn from (default 20,000)")
    te.add_argument("--wl-iterations", type=int, default=3, help="WL kernel depth h (default 3)")
    te.add_argument("--batch-size", type=int, default=256)
    te.add_argument("--lr", type=float, default=1e-3)
    te.add_argument("--autoencoder", action="store_true", help="no kernel guidance: a plain MLP autoencoder (a baseline)")
    te.add_argument("--seed", type=int, default=0)
    te.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    te.add_argument("--out", help="checkpoint file (default SPACE-nasgem.pt)")
    te.add_argument("--force", action="store_true", help="overwrite --out")
    te.add_argument("--quiet", action="store_true", help="no progress bar")
    te.set_defaults(func=cmd_train_encoder)

    vm = sub.add_parser("vae-metrics", help="reconstruction, validity, uniqueness, novelty and GP fit of a pretrained VAE",
                        description="D-VAE's protocol (Zhang et al., NeurIPS 2019), printed beside the published table.")
    vm.add_argument("checkpoint")
    vm.add_argument("--data", default="auto", help="the graphs to test on (as for pretrain; default auto)")
    vm.add_argument("--data-dir")
    vm.add_argument("--decodes", type=int, default=10, help="stochastic decodes per z (protocol 10)")
    vm.add_argument("--prior-samples", type=int, default=1000)
    vm.add_argument("--sgp-seeds", type=int, default=10, help="GP fits for RMSE / Pearson r (0: skip)")
    vm.add_argument("--device")
    vm.add_argument("--json", help="write the numbers here")
    vm.set_defaults(func=cmd_vae_metrics)

    tp = sub.add_parser(
        "train-predictor", help="train a graph-VAE performance predictor on a benchmark table (a surrogate evaluator)",
        description="VS-GAE's predictor (--vae-weight 0) or SVGe's fine-tuned surrogate (--vae-weight 0.1): encoder + MLP "
                    "56-28-14-7-1 trained on the table's reward column. Split, seeded by --seed: the table is shuffled and "
                    "cut 70/20/10 into a training pool, a test set and a validation set (best-epoch selection); "
                    "--train-size takes the first N of the pool. With --test-sizes the test set is every cell of those "
                    "node counts (zero-shot; NB101: --evaluator table:nasbench101-subset) and the other cells are split "
                    "90/10 into pool and validation. Prints the test RMSE (in the reward's units), Kendall tau and "
                    "Pearson r; the checkpoint is an evaluator: --evaluator surrogate:OUT.")
    tp.add_argument("--model", help="graph VAE: dvae, dvae-emb, svge, svge-triplet (default svge, or --init's)")
    tp.add_argument("--space", help="the evaluator's space (checked; default: the evaluator's)")
    tp.add_argument("--evaluator", default="table:nasbench201:cifar10", help="a benchmark table (default table:nasbench201:cifar10)")
    tp.add_argument("--data-dir")
    tp.add_argument("--init", help="a pretrained graph-VAE checkpoint (nas-ray pretrain) to start the encoder from")
    tp.add_argument("--vae-weight", type=float, default=0.0, help="psi: 0 VS-GAE (default), 0.1 SVGe's surrogate")
    tp.add_argument("--train-size", type=int, help="training architectures (default: the whole 70%% pool)")
    tp.add_argument("--test-sizes", type=int, nargs="+", metavar="N", help="zero-shot: test on the cells of these node counts")
    tp.add_argument("--epochs", type=int, default=100)
    tp.add_argument("--lr", type=float, default=1e-3)
    tp.add_argument("--batch-size", type=int, default=128)
    tp.add_argument("--latent-dim", type=int, help="fresh models: latent size (default 56)")
    tp.add_argument("--hidden-dim", type=int, help="fresh models: D-VAE hidden size (501) or SVGe node size (250)")
    tp.add_argument("--seed", type=int, default=0)
    tp.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    tp.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    tp.add_argument("--out", required=True, help="predictor checkpoint to write")
    tp.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    tp.add_argument("--json", help="also write the metrics, split and history here")
    tp.add_argument("--quiet", action="store_true", help="no progress bar")
    tp.set_defaults(func=cmd_train_predictor)

    sub.add_parser("spaces", help="list search spaces").set_defaults(func=cmd_spaces)
    sub.add_parser("searchers", help="list searchers").set_defaults(func=cmd_searchers)
    ev = sub.add_parser("evaluators", help="list evaluator kinds (--evaluator KIND[:ARGUMENT])")
    ev.add_argument("--import", dest="imports", action="append", metavar="MODULE", help="also list the kinds this module registers")
    ev.set_defaults(func=cmd_evaluators)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        return args.func(args)
    except UsageError as exc:
        print(f"nas-ray: error: {exc}" if not str(exc).startswith("nas-ray") else f"{exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("nas-ray: interrupted", file=sys.stderr)
        return 130
    except NasRayError as exc:
        # nas-ray's own errors describe bad input in one line; anything else is a bug and keeps its traceback.
        if os.environ.get("NAS_RAY_DEBUG"):
            raise
        print(f"nas-ray: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

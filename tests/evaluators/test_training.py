"""The digits training evaluator: metrics, per-epoch steps, determinism, resume, errors, pickling.

Tests train on a 256-image subset for 1-2 epochs (under a second per run); the one full-size run (the
defaults: 8 epochs on 1,437 images) is marked slow. Measured full-size numbers: ``DigitsEvaluator``.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")
pytest.importorskip("nasbench_pytorch")

from nas_ray import Architecture, InvalidArchitecture, get_space  # noqa: E402
from nas_ray.evaluators import (  # noqa: E402
    DigitsEvaluator,
    Evaluator,
    Step,
    TrainingConfig,
    TrainingEvaluator,
    digits_tensors,
    nasbench101_network,
    nasbench101_parameter_count,
)

SPACE = get_space("nasbench101")
# input -> conv3x3 -> conv1x1 -> output, plus input -> maxpool -> output
CELL = Architecture(
    ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "output"],
    [[0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
)
TRIVIAL = Architecture(["input", "output"], [[0, 1], [0, 0]])
FAST = {"max_train_samples": 256, "batch_size": 16}  # 16 steps per epoch


def _without_time(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("epoch_seconds", "images_per_s")}


@pytest.fixture(scope="module")
def evaluator() -> DigitsEvaluator:
    return DigitsEvaluator(epochs=2, **FAST)


def test_contract_and_defaults(evaluator: DigitsEvaluator) -> None:
    assert isinstance(evaluator, Evaluator)
    assert evaluator.metric == "val_accuracy" and evaluator.mode == "max"
    assert evaluator.space.name == "nasbench101"
    assert DigitsEvaluator(device="cpu").resources == {"cpu": 1.0, "gpu": 0.0}
    assert evaluator.config.epochs == 2 and evaluator.config.max_train_samples == 256
    assert DigitsEvaluator().config == TrainingConfig()
    assert DigitsEvaluator(num_threads=2, device="cpu").resources == {"cpu": 2.0, "gpu": 0.0}
    assert DigitsEvaluator(device="cuda").resources == {"cpu": 1.0, "gpu": 1.0}
    info = evaluator.describe()
    assert info["evaluator"] == "DigitsEvaluator" and info["epochs"] == 2 and info["dataset"] == "digits"
    assert info["network"] == {"space_options": {}, "preset": "small", "num_classes": 10, "in_channels": 1,
                               "options": {"stem_channels": 16, "num_stacks": 3, "modules_per_stack": 1,
                                           "bn_momentum": 0.1}}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("epochs", 0, "epochs must be a positive integer"), ("optimizer", "rmsprop", "optimizer must be one of sgd, adam"),
     ("device", "tpu", "device must be 'auto'"), ("lr", 0.0, "lr > 0"), ("max_train_samples", 0, "max_train_samples")],
)
def test_config_rejects_bad_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**{field: value})


def test_cosine_schedule() -> None:
    cfg = TrainingConfig(lr=0.1)
    assert cfg.lr_at(0, 100) == pytest.approx(0.1)
    assert cfg.lr_at(50, 100) == pytest.approx(0.05)
    assert cfg.lr_at(99, 100) == pytest.approx(0.1 * 0.5 * (1 + np.cos(np.pi * 0.99)))
    assert TrainingConfig(lr=0.1, schedule="constant").lr_at(99, 100) == 0.1


def test_digits_split_is_stratified_standardised_and_fixed() -> None:
    (x_train, y_train), (x_val, y_val) = digits_tensors()
    assert x_train.shape == (1437, 1, 8, 8) and x_val.shape == (360, 1, 8, 8)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert float(x_train.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(x_train.std()) == pytest.approx(1.0, abs=1e-3)
    counts = torch.bincount(y_val, minlength=10)
    per_class = torch.bincount(torch.cat([y_train, y_val]), minlength=10)
    # stratified: each class holds its share of the 360 validation images, to within one image
    assert int(counts.sum()) == 360 and float((counts - 360 * per_class / per_class.sum()).abs().max()) < 1
    (x_again, _), (x_val_again, _) = digits_tensors()
    assert torch.equal(x_train, x_again) and torch.equal(x_val, x_val_again)
    (x_other, _), _ = digits_tensors(split_seed=1)
    assert not torch.equal(x_train, x_other)


def test_steps_metrics_and_ranges(evaluator: DigitsEvaluator) -> None:
    steps = list(evaluator.iterate(CELL))
    assert len(steps) == 2 and all(isinstance(s, Step) for s in steps)
    expected = {"val_accuracy", "val_loss", "train_loss", "epoch", "params", "macs", "images_per_s", "epoch_seconds"}
    params = nasbench101_parameter_count(evaluator.build_model(SPACE.canonicalize(CELL)))
    for k, step in enumerate(steps, start=1):
        m = step.metrics
        assert set(m) == expected
        assert m["epoch"] == k and step.state["epoch"] == k
        assert 0.0 <= m["val_accuracy"] <= 100.0 and np.isfinite(m["train_loss"]) and m["train_loss"] > 0
        assert m["params"] == params and 0 < m["epoch_seconds"] < 30
        assert m["macs"] > m["params"] and m["images_per_s"] > 0
    # two epochs on 256 images already learn something (chance is 10 %; this run gives 61 %)
    assert steps[-1].metrics["val_accuracy"] > 40.0
    assert steps[-1].metrics["train_loss"] < steps[0].metrics["train_loss"]
    assert _without_time(evaluator.evaluate(CELL)) == _without_time(steps[-1].metrics)


def test_same_seed_same_metrics_other_seed_differs() -> None:
    def run(seed: int) -> list[tuple[float, float]]:
        ev = DigitsEvaluator(epochs=1, seed=seed, **FAST)
        return [(s.metrics["val_accuracy"], s.metrics["train_loss"]) for s in ev.iterate(CELL)]

    first = run(0)
    assert run(0) == first  # bit-identical, not approximately equal
    assert run(1) != first


def test_different_cells_differ(evaluator: DigitsEvaluator) -> None:
    a, b = evaluator.evaluate(CELL), evaluator.evaluate(TRIVIAL)
    assert a["params"] > b["params"]
    assert (a["val_accuracy"], a["train_loss"]) != (b["val_accuracy"], b["train_loss"])


def test_resume_from_saved_state_equals_uninterrupted(tmp_path) -> None:  # noqa: ANN001
    ev = DigitsEvaluator(epochs=3, max_train_samples=128, batch_size=32)
    full = list(ev.iterate(CELL))
    path = tmp_path / "epoch1.pt"
    torch.save(full[0].state, path)
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 1 and state["rng"].dtype == torch.uint8
    # the saved snapshot is of epoch 1, not the live weights at the end of training
    key = next(k for k in state["model"] if k.endswith("weight"))
    assert not torch.equal(state["model"][key], full[-1].state["model"][key])
    # a fresh (unpickled) evaluator resumes: same remaining metrics as the uninterrupted run
    fresh = pickle.loads(pickle.dumps(ev))
    resumed = list(fresh.iterate(CELL, restore=state))
    assert [s.metrics["epoch"] for s in resumed] == [2, 3]
    assert [_without_time(s.metrics) for s in resumed] == [_without_time(s.metrics) for s in full[1:]]
    for k, v in resumed[-1].state["model"].items():
        assert torch.equal(v, full[-1].state["model"][k]), k


def test_adam_state_round_trips(tmp_path) -> None:  # noqa: ANN001
    ev = DigitsEvaluator(epochs=2, optimizer="adam", lr=0.003, max_train_samples=64, batch_size=32)
    full = list(ev.iterate(TRIVIAL))
    torch.save(full[0].state, tmp_path / "s.pt")
    resumed = list(ev.iterate(TRIVIAL, restore=torch.load(tmp_path / "s.pt", weights_only=True)))
    assert resumed[0].metrics["val_accuracy"] == full[1].metrics["val_accuracy"]
    assert resumed[0].metrics["train_loss"] == full[1].metrics["train_loss"]


class DropoutMLP(TrainingEvaluator):
    """The generic loop with a torch ``Dataset`` and a random layer (dropout draws from the saved RNG)."""

    def __init__(self, **overrides: object) -> None:
        super().__init__(SPACE, TrainingConfig(batch_size=32, lr=0.1, max_train_samples=200, **overrides))

    def build_model(self, arch: Architecture) -> torch.nn.Module:
        hidden = 16 * arch.num_nodes
        return torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.5),
            torch.nn.Linear(hidden, 10),
        )

    def datasets(self) -> tuple:
        (x_train, y_train), (x_val, y_val) = digits_tensors()
        data = torch.utils.data.TensorDataset
        return data(x_train, y_train), data(x_val, y_val)


def test_generic_loop_with_datasets_and_dropout_resumes_exactly() -> None:
    def run(ev: DropoutMLP, caller_seed: int, restore: dict | None = None) -> list[Step]:
        torch.manual_seed(caller_seed)  # the caller's RNG must not matter
        return list(ev.iterate(CELL, restore=restore))

    ev = DropoutMLP(epochs=2)
    full = run(ev, 1)
    assert [s.metrics["epoch"] for s in full] == [1, 2] and full[-1].metrics["val_accuracy"] > 50.0
    assert full[-1].metrics["params"] == 64 * 80 + 80 + 80 * 10 + 10
    assert full[-1].metrics["macs"] == 64 * 80 + 80 * 10  # torch's FLOP counter: two FLOPs per multiply-add
    assert [_without_time(s.metrics) for s in run(DropoutMLP(epochs=2), 2)] == [_without_time(s.metrics) for s in full]
    resumed = run(ev, 3, restore=full[0].state)
    assert [_without_time(s.metrics) for s in resumed] == [_without_time(full[1].metrics)]
    assert _without_time(DropoutMLP(epochs=2, seed=1).evaluate(CELL)) != _without_time(full[-1].metrics)


def test_restore_of_another_run_is_refused(evaluator: DigitsEvaluator) -> None:
    state = next(DigitsEvaluator(epochs=1, max_train_samples=32).iterate(TRIVIAL)).state
    with pytest.raises(ValueError, match=f"restore state is of architecture {SPACE.hash(TRIVIAL)}"):
        next(evaluator.iterate(CELL, restore=state))
    with pytest.raises(ValueError, match="trained with seed 0, this evaluator has 3"):
        next(DigitsEvaluator(epochs=2, seed=3, max_train_samples=32).iterate(TRIVIAL, restore=state))
    with pytest.raises(ValueError, match="restore state lacks model, optimizer"):
        next(evaluator.iterate(TRIVIAL, restore={"epoch": 1, "hash": "x", "seed": 0, "rng": state["rng"]}))


def test_iterate_leaves_global_rng_and_threads_alone(evaluator: DigitsEvaluator) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    evaluator.evaluate(TRIVIAL)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_invalid_and_foreign_architectures_raise(evaluator: DigitsEvaluator) -> None:
    disconnected = Architecture(["input", "conv3x3-bn-relu", "output"], [[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    with pytest.raises(InvalidArchitecture, match="nasbench101: the input does not reach the output"):
        evaluator.evaluate(disconnected)
    with pytest.raises(InvalidArchitecture, match="nasbench101: unknown op '(nor_conv|avg_pool|skip_connect|none)"):
        evaluator.evaluate(get_space("nasbench201").sample(0))
    with pytest.raises(InvalidArchitecture, match="lacks the key"):
        evaluator.evaluate({"ops": ["input", "output"]})
    with pytest.raises(InvalidArchitecture, match="nasbench101: expected an Architecture, got int"):
        evaluator.evaluate(42)
    with pytest.raises(InvalidArchitecture, match="nasbench101: .*edges after pruning, at most 9"):
        n = 7
        dense = np.triu(np.ones((n, n), dtype=int), 1)
        next(evaluator.iterate(Architecture(["input", *["conv1x1-bn-relu"] * 5, "output"], dense)))


def test_pickle_drops_cached_data(evaluator: DigitsEvaluator) -> None:
    evaluator.datasets()
    assert "_cache_data" in evaluator.__dict__
    blob = pickle.dumps(evaluator)
    assert len(blob) < 10_000  # no tensors inside
    clone = pickle.loads(blob)
    assert "_cache_data" not in clone.__dict__ and clone.config == evaluator.config
    assert _without_time(clone.evaluate(TRIVIAL)) == _without_time(evaluator.evaluate(TRIVIAL))


def test_accepts_architecture_json(evaluator: DigitsEvaluator) -> None:
    a = evaluator.evaluate(TRIVIAL)
    b = evaluator.evaluate(TRIVIAL.to_dict())
    assert a["val_accuracy"] == b["val_accuracy"] and a["train_loss"] == b["train_loss"]


def test_network_handles_8x8_digits() -> None:
    model = nasbench101_network(SPACE.canonicalize(CELL), in_channels=1, stem_channels=16, modules_per_stack=1)
    assert model(torch.zeros(4, 1, 8, 8)).shape == (4, 10)


def test_builder_matches_nasbench101_parameter_counts(data_dir) -> None:  # noqa: ANN001
    """NB101's CIFAR network (stem 128, 3 stacks of 3 modules): our counts equal the table's."""
    from nas_ray.evaluators import load_nasbench101_subset

    table = load_nasbench101_subset(data_dir)
    col = table.columns.index("params_M")
    for arch in table.archs[:3]:
        expected = table.values[table.rows[SPACE.hash(arch)], col] * 1e6
        assert nasbench101_parameter_count(nasbench101_network(arch)) == round(expected)


def test_import_does_not_import_torch() -> None:
    code = (
        "import sys, nas_ray.evaluators as e; e.DigitsEvaluator; e.TrainingConfig(); "
        "print(sorted(m for m in ('torch', 'sklearn', 'nasbench_pytorch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_full_default_evaluation_is_accurate() -> None:
    """The embedded default: 8 epochs on all 1,437 training images (its time: benchmarks/digits_eval.py)."""
    metrics = DigitsEvaluator().evaluate(CELL)
    assert metrics["epoch"] == 8 and metrics["val_accuracy"] > 90.0

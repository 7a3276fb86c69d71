"""train:<dataset>: any space's networks on digits or CIFAR (binary files), low-data mode, augmentation,
resuming, and the GPU paths (mixed precision, channels-last, peak memory) where CUDA exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nas_ray.errors import DataFileError, UnknownName
from nas_ray.evaluators import datasets
from nas_ray.evaluators.datasets import ImageData
from nas_ray.evaluators.specs import get_evaluator
from nas_ray.evaluators.training import DigitsEvaluator, ImageTrainingEvaluator
from nas_ray.spaces import get_space

NB201 = get_space("nasbench201")
CELL = NB201.from_native("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
TINY = {"channels": 4, "cells_per_stage": 1}  # an NB201 network small enough for CPU tests
RECORDS = 100


@pytest.fixture()
def cifar10(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CIFAR-10 in its official binary layout, 100 records per file; each class has its own mean colour,
    so a network can learn it."""
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        labels = np.arange(RECORDS, dtype=np.uint8) % 10
        colour = (labels[:, None, None] * 20 + 30).astype(np.int64)
        pixels = np.clip(colour + rng.integers(-25, 26, size=(RECORDS, 3, 1024)), 0, 255).astype(np.uint8)
        (folder / name).write_bytes(np.concatenate([labels[:, None], pixels.reshape(RECORDS, -1)], axis=1).tobytes())
    monkeypatch.setattr(datasets, "EXPECTED_RECORDS", {name: RECORDS for name in names})
    return tmp_path


def test_cifar_training_with_augmentation_resumes_exactly(cifar10: Path) -> None:
    ev = get_evaluator("train:cifar10", data_dir=cifar10, space="nasbench201", epochs=3, batch_size=32, val_size=100,
                       **TINY)
    assert isinstance(ev, ImageTrainingEvaluator) and ev.augmentation() == "crop_flip"
    assert ev.num_classes == 10 and ev.in_channels == 3 and ev.network_options == {**TINY}
    steps = list(ev.iterate(CELL))
    m = steps[-1].metrics
    assert [s.metrics["epoch"] for s in steps] == [1, 2, 3]
    assert m["val_accuracy"] > 30.0  # learnable colours; chance is 10 %
    assert m["params"] > 0 and m["macs"] > 0 and m["images_per_s"] > 0 and "peak_gpu_memory_mb" not in m
    resumed = list(ev.iterate(CELL, restore=steps[0].state))
    assert [s.metrics["val_accuracy"] for s in resumed] == [s.metrics["val_accuracy"] for s in steps[1:]]
    assert [s.metrics["train_loss"] for s in resumed] == [s.metrics["train_loss"] for s in steps[1:]]
    plain = ImageTrainingEvaluator("cifar10", "nasbench201", data_dir=cifar10, epochs=3, batch_size=32, val_size=100,
                                   augment=False, **TINY)
    assert plain.evaluate(CELL)["train_loss"] != m["train_loss"]  # augmentation changes the batches


def test_low_data_mode_keeps_every_class(cifar10: Path) -> None:
    ev = ImageTrainingEvaluator("cifar10", "nasbench201", data_dir=cifar10, val_size=100, train_fraction=0.2, **TINY)
    x, y = ev.data().train
    assert len(y) == 80 and sorted(torch.bincount(y).tolist()) == [8] * 10  # 400 training images, a fifth kept
    assert ev.describe()["train_fraction"] == 0.2 and len(ev.data().val[1]) == 100


def test_every_space_trains_on_digits() -> None:
    for space, arch in (("nasbench201", CELL), ("enas-macro", get_space("enas-macro").sample(0)),
                        ("randwire", get_space("randwire", num_nodes=6).sample(0))):
        ev = get_evaluator("train:digits", space=space if space != "randwire" else get_space("randwire", num_nodes=6),
                           epochs=1, max_train_samples=128)
        m = ev.evaluate(arch)
        assert 0.0 <= m["val_accuracy"] <= 100.0 and m["epoch"] == 1, space
        assert ev.network_spec()["in_channels"] == 1


def test_digits_spec_is_the_digits_evaluator_and_own_data_works() -> None:
    # no special case: train:digits is the NB101 space's networks at their digits preset, as DigitsEvaluator
    spec, digits = get_evaluator("train:digits"), DigitsEvaluator()
    assert spec.space.name == "nasbench101" and spec.network_spec() == digits.network_spec()
    assert spec.config == digits.config
    assert torch.equal(spec.data().val[1], digits.data().val[1])  # the same split of the images
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, 8, 8, generator=g), torch.arange(64) % 4
    own = ImageData(train=(x, y), val=(x[:16], y[:16]), test=None, num_classes=4, in_channels=3, image_size=8,
                    mean=(0.0,) * 3, std=(1.0,) * 3, augment="none", name="mine")
    ev = ImageTrainingEvaluator(own, "nasbench201", epochs=1, **TINY)
    assert ev.evaluate(CELL)["epoch"] == 1 and ev.num_classes == 4
    import pickle

    assert pickle.loads(pickle.dumps(ev)).data() is not None  # a user's data travels with the evaluator


def test_bad_inputs_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(UnknownName, match="unknown dataset 'mnist'"):
        ImageTrainingEvaluator("mnist")
    with pytest.raises(ValueError, match=r"train_fraction must be a number in \(0, 1\], got 0"):
        ImageTrainingEvaluator("digits", train_fraction=0)
    with pytest.raises(ValueError, match="'stem_channels': neither a training option .* nor a nasbench201 network option"):
        ImageTrainingEvaluator("digits", "nasbench201", stem_channels=3)  # an NB101 option on NB201
    with pytest.raises(UnknownName, match="unknown evaluator 'train:imagenet'"):
        get_evaluator("train:imagenet")
    ev = ImageTrainingEvaluator("cifar10", "nasbench201", data_dir=tmp_path, **TINY)
    with pytest.raises(DataFileError, match="download the binary version"):
        ev.evaluate(CELL)
    with pytest.raises(ValueError, match="amp must be one of auto, bf16, fp16, off"):
        DigitsEvaluator(amp="fp8")


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@cuda
def test_gpu_training_uses_bf16_channels_last_and_reports_memory() -> None:
    ev = ImageTrainingEvaluator("digits", "nasbench201", epochs=2, device="cuda")
    assert ev.resources["gpu"] == 1.0 and ev.config.autocast_dtype(ev.device) == torch.bfloat16
    steps = list(ev.iterate(CELL))
    m = steps[-1].metrics
    assert m["val_accuracy"] > 50.0 and m["peak_gpu_memory_mb"] > 0
    assert steps[-1].state["model"]["stem.0.weight"].device.type == "cpu"


@pytest.mark.gpu
@cuda
def test_gpu_deterministic_mode_resumes_exactly() -> None:
    ev = ImageTrainingEvaluator("digits", "nasbench201", epochs=2, device="cuda", deterministic=True)
    full = list(ev.iterate(CELL))
    resumed = list(ev.iterate(CELL, restore=full[0].state))
    assert resumed[0].metrics["val_accuracy"] == full[1].metrics["val_accuracy"]
    assert resumed[0].metrics["train_loss"] == full[1].metrics["train_loss"]

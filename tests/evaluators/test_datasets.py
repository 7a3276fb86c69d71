"""Image datasets: CIFAR binary decoding and checks, splits, low-data fractions, digits, augmentation.

CIFAR tests write small files in the official binary layout (a few hundred records instead of 10,000
per file; ``EXPECTED_RECORDS`` is patched to their counts).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from nas_ray.errors import DataFileError, UnknownName  # noqa: E402
from nas_ray.evaluators import datasets  # noqa: E402
from nas_ray.evaluators.datasets import DATASETS, ImageData, augment_batch, load_dataset  # noqa: E402

PER_FILE, TEST_RECORDS = 40, 30  # CIFAR-10: 5 x 40 training images (20 per class), 30 test images
C100_TRAIN, C100_TEST = 400, 100  # CIFAR-100: 4 training images per fine class


def known_image() -> np.ndarray:
    """A (3, 32, 32) image whose value names its place: R = row, G = 32 + column, B = 255 - row - column."""
    row, col = np.mgrid[0:32, 0:32]
    return np.stack([row, 32 + col, 255 - row - col]).astype(np.uint8)


def known_record(label: int) -> bytes:
    """The official layout spelled out: the label byte, then the R, G and B planes, each row by row."""
    image = known_image()
    planes = [bytes(int(image[c, y, x]) for y in range(32) for x in range(32)) for c in range(3)]
    return bytes([label]) + b"".join(planes)


def write_records(path: Path, labels: list[np.ndarray], pixels: np.ndarray) -> None:
    """Records of the label byte columns in ``labels`` followed by the flattened ``(N, 3, 32, 32)`` pixels."""
    columns = [np.asarray(col, dtype=np.uint8)[:, None] for col in labels]
    np.concatenate([*columns, pixels.reshape(len(pixels), -1)], axis=1).astype(np.uint8).tofile(path)


def balanced_labels(n: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % classes)


def make_cifar10(root: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """``root/cifar-10-batches-bin`` with 5 training files (record 0 of the first is ``known_image``
    with label 3) and a test file; returns the images and labels written, in file order."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    n = 5 * PER_FILE
    labels = balanced_labels(n, 10, rng)
    three = int(np.flatnonzero(labels == 3)[0])
    labels[0], labels[three] = labels[three], labels[0]
    pixels = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    pixels[0] = known_image()
    for i in range(5):
        part = slice(i * PER_FILE, (i + 1) * PER_FILE)
        write_records(folder / f"data_batch_{i + 1}.bin", [labels[part]], pixels[part])
    first = (folder / "data_batch_1.bin").read_bytes()
    assert first[: 1 + 3072] == known_record(3)  # the writer follows the official layout
    test_labels = rng.integers(0, 10, TEST_RECORDS)
    test_pixels = rng.integers(0, 256, (TEST_RECORDS, 3, 32, 32), dtype=np.uint8)
    write_records(folder / "test_batch.bin", [test_labels], test_pixels)
    return {"pixels": pixels, "labels": labels, "test_pixels": test_pixels, "test_labels": test_labels}


def make_cifar100(root: Path, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-binary"
    folder.mkdir(parents=True)
    fine = balanced_labels(C100_TRAIN, 100, rng)
    pixels = rng.integers(0, 256, (C100_TRAIN, 3, 32, 32), dtype=np.uint8)
    write_records(folder / "train.bin", [fine // 5, fine], pixels)
    test_fine = rng.integers(0, 100, C100_TEST)
    write_records(folder / "test.bin", [test_fine // 5, test_fine], rng.integers(0, 256, (C100_TEST, 3, 32, 32)))
    return {"pixels": pixels, "labels": fine, "test_labels": test_fine}


@pytest.fixture(autouse=True)
def small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = {**{f"data_batch_{i}.bin": PER_FILE for i in range(1, 6)}, "test_batch.bin": TEST_RECORDS,
              "train.bin": C100_TRAIN, "test.bin": C100_TEST}
    monkeypatch.setattr(datasets, "EXPECTED_RECORDS", counts)


@pytest.fixture
def cifar10(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    return tmp_path, make_cifar10(tmp_path)


@pytest.fixture
def cifar100(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    return tmp_path, make_cifar100(tmp_path)


def pixels_of(data: ImageData, x: torch.Tensor) -> np.ndarray:
    """Undo the standardisation: the uint8 pixels the inputs were made of."""
    mean = torch.tensor(data.mean, dtype=torch.float64)[:, None, None]
    std = torch.tensor(data.std, dtype=torch.float64)[:, None, None]
    values = ((x.double() * std + mean) * 255).numpy()
    assert np.abs(values - values.round()).max() < 1e-3
    return values.round().astype(np.uint8)


# ---------------------------------------------------------------------------------- CIFAR
def test_cifar10_decodes_layout_labels_and_standardises(cifar10: tuple[Path, dict]) -> None:
    root, written = cifar10
    data = load_dataset("cifar10", root, val_size=50, with_test=True)
    assert (data.name, data.num_classes, data.in_channels, data.image_size, data.augment) == (
        "cifar10", 10, 3, 32, "crop_flip")
    (x_train, y_train), (x_val, y_val) = data.train, data.val
    assert x_train.shape == (150, 3, 32, 32) and x_val.shape == (50, 3, 32, 32)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64 and x_train.is_contiguous()
    # every written image appears exactly once in train + val, with its own label
    by_bytes = {written["pixels"][i].tobytes(): int(written["labels"][i]) for i in range(len(written["labels"]))}
    decoded = np.concatenate([pixels_of(data, x_train), pixels_of(data, x_val)])
    labels = torch.cat([y_train, y_val]).tolist()
    assert sorted(img.tobytes() for img in decoded) == sorted(by_bytes)
    assert all(by_bytes[img.tobytes()] == label for img, label in zip(decoded, labels))
    # the known image: R plane = row, G = 32 + column, B = 255 - row - column
    known = [i for i, img in enumerate(decoded) if np.array_equal(img, known_image())]
    assert len(known) == 1 and labels[known[0]] == 3
    image = decoded[known[0]]
    assert image[0, 5, 9] == 5 and image[1, 5, 9] == 32 + 9 and image[2, 5, 9] == 255 - 14
    # per-channel standardisation by the training split
    assert torch.allclose(x_train.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x_train.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    train_pixels = pixels_of(data, x_train).astype(np.float64) / 255
    assert np.allclose(data.mean, train_pixels.mean(axis=(0, 2, 3))) and np.allclose(data.std, train_pixels.std(axis=(0, 2, 3)))
    # the test set, in file order
    x_test, y_test = data.test
    assert np.array_equal(pixels_of(data, x_test), written["test_pixels"])
    assert y_test.tolist() == written["test_labels"].tolist() and y_test.dtype == torch.int64
    info = data.describe()
    assert (info["train_size"], info["val_size"], info["test_size"], info["dataset"]) == (150, 50, 30, "cifar10")
    assert load_dataset("cifar10", root, val_size=50).test is None


def test_cifar10_split_is_stratified_seeded_and_accepts_the_folder_itself(cifar10: tuple[Path, dict]) -> None:
    root, _ = cifar10
    data = load_dataset("cifar10", root, val_size=50)
    assert torch.bincount(data.val[1], minlength=10).tolist() == [5] * 10
    assert torch.bincount(data.train[1], minlength=10).tolist() == [15] * 10
    again = load_dataset("cifar10", root / "cifar-10-batches-bin", val_size=50)
    assert torch.equal(data.train[0], again.train[0]) and torch.equal(data.val[1], again.val[1])
    other = load_dataset("cifar10", root, val_size=50, split_seed=1)
    assert {img.numpy().tobytes() for img in other.val[0]} != {img.numpy().tobytes() for img in data.val[0]}
    with pytest.raises(ValueError, match="val_size for CIFAR-10 must be an integer from 10 to 190"):
        load_dataset("cifar10", root, val_size=5)


def test_data_dir_from_the_environment(cifar10: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = cifar10
    monkeypatch.setenv("NAS_RAY_DATA", str(root))
    assert len(load_dataset("cifar10", val_size=50).train[1]) == 150
    monkeypatch.delenv("NAS_RAY_DATA")
    with pytest.raises(DataFileError, match="no benchmark data folder"):
        load_dataset("cifar10")


def test_cifar100_uses_the_fine_label(cifar100: tuple[Path, dict]) -> None:
    root, written = cifar100
    data = load_dataset("cifar100", root, val_size=100, with_test=True)
    assert data.num_classes == 100 and len(data.train[1]) == 300 and len(data.test[1]) == C100_TEST
    assert torch.bincount(data.val[1], minlength=100).tolist() == [1] * 100
    assert data.test[1].tolist() == written["test_labels"].tolist()
    by_bytes = {written["pixels"][i].tobytes(): int(written["labels"][i]) for i in range(C100_TRAIN)}
    assert all(by_bytes[img.tobytes()] == int(y) for img, y in zip(pixels_of(data, data.train[0]), data.train[1]))


def test_low_data_fraction_keeps_every_class(cifar100: tuple[Path, dict]) -> None:
    root, _ = cifar100
    full = load_dataset("cifar100", root, val_size=100)
    half = load_dataset("cifar100", root, val_size=100, train_fraction=0.5)
    tiny = load_dataset("cifar100", root, val_size=100, train_fraction=0.01)
    assert torch.bincount(half.train[1], minlength=100).tolist() == [2] * 100  # round(0.5 * 3)
    assert torch.bincount(tiny.train[1], minlength=100).tolist() == [1] * 100  # at least one per class
    for low in (half, tiny):  # validation and normalisation do not change; the kept images are nested
        assert torch.equal(low.val[0], full.val[0]) and torch.equal(low.val[1], full.val[1]) and low.mean == full.mean
    rows = {img.numpy().tobytes() for img in full.train[0]}
    halves = {img.numpy().tobytes() for img in half.train[0]}
    assert halves <= rows and {img.numpy().tobytes() for img in tiny.train[0]} <= halves
    again = load_dataset("cifar100", root, val_size=100, train_fraction=0.5)
    assert torch.equal(again.train[0], half.train[0]) and half.describe()["train_fraction"] == 0.5


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, math.nan, "0.5", True])
def test_bad_train_fraction(fraction: object) -> None:
    with pytest.raises(ValueError, match=r"train_fraction must be a number in \(0, 1\]"):
        load_dataset("digits", train_fraction=fraction)


def test_unknown_dataset() -> None:
    with pytest.raises(UnknownName, match="unknown dataset 'mnist'; available: digits, cifar10, cifar100"):
        load_dataset("mnist")
    assert DATASETS == ("digits", "cifar10", "cifar100")


# ---------------------------------------------------------------------------------- file errors
@pytest.mark.parametrize("pointing_at_folder", [False, True])
def test_pickle_only_folder(tmp_path: Path, pointing_at_folder: bool) -> None:
    pickles = tmp_path / "cifar-10-batches-py"
    pickles.mkdir()
    (pickles / "data_batch_1").write_bytes(b"not read")
    with pytest.raises(DataFileError, match="pickle.*does not read.*binary version.*cs.toronto.edu/~kriz/cifar.html"):
        load_dataset("cifar10", pickles if pointing_at_folder else tmp_path)
    (tmp_path / "cifar-100-python").mkdir()
    with pytest.raises(DataFileError, match="cifar-100-python is the python \\(pickle\\) version of CIFAR-100"):
        load_dataset("cifar100", tmp_path)


def test_missing_files(cifar10: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> None:
    root, _ = cifar10
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(DataFileError, match=r"cifar-10-batches-bin/data_batch_1\.bin not found: download the binary "
                                            r"version \(cifar-10-binary\.tar\.gz\) from https://www\.cs\.toronto\.edu"):
        load_dataset("cifar10", empty)
    (root / "cifar-10-batches-bin" / "data_batch_5.bin").unlink()
    with pytest.raises(DataFileError, match=rf"data_batch_5\.bin not found: .* extract it into {re.escape(str(root))}$"):
        load_dataset("cifar10", root / "cifar-10-batches-bin")
    with pytest.raises(DataFileError, match="CIFAR-100 file .*cifar-100-binary/train.bin not found"):
        load_dataset("cifar100", root)


def test_truncated_and_corrupt_files(cifar10: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = cifar10
    path = root / "cifar-10-batches-bin" / "data_batch_2.bin"
    whole = path.read_bytes()
    path.write_bytes(whole[:-100])
    with pytest.raises(DataFileError, match="data_batch_2.bin: 122,820 bytes are not a whole number of 3,073-byte "
                                            "CIFAR-10 records; the file is truncated or corrupt"):
        load_dataset("cifar10", root, val_size=50)
    path.write_bytes(whole[: 3073 * 39])
    with pytest.raises(DataFileError, match="data_batch_2.bin: holds 39 records, expected 40; the file is truncated"):
        load_dataset("cifar10", root, val_size=50)
    monkeypatch.undo()  # the official counts
    path.write_bytes(whole)
    with pytest.raises(DataFileError, match="data_batch_1.bin: holds 40 records, expected 10,000"):
        load_dataset("cifar10", root, val_size=50)


def test_labels_out_of_range(cifar10: tuple[Path, dict], cifar100: tuple[Path, dict]) -> None:
    root, _ = cifar10
    path = root / "cifar-10-batches-bin" / "data_batch_3.bin"
    data = bytearray(path.read_bytes())
    data[2 * 3073] = 10  # the label byte of record 2
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match="data_batch_3.bin: record 2 has label 10, outside 0..9; the file is corrupt"):
        load_dataset("cifar10", root, val_size=50)
    path = root / "cifar-100-binary" / "train.bin"
    data = bytearray(path.read_bytes())
    data[5 * 3074 + 1] = 100  # the fine label byte of record 5
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match="train.bin: record 5 has fine label 100, outside 0..99"):
        load_dataset("cifar100", root, val_size=100)


# ---------------------------------------------------------------------------------- digits
def reference_digits(val_size: int = 360, split_seed: int = 0) -> tuple[tuple, tuple]:
    """The original ``digits_tensors`` (before it called ``load_dataset``), spelled out again."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    images, labels = load_digits(return_X_y=True)
    images = images.astype(np.float32) / 16.0
    x_train, x_val, y_train, y_val = train_test_split(
        images, labels, test_size=val_size, stratify=labels, random_state=split_seed
    )
    mean, std = x_train.mean(), x_train.std()

    def tensors(x: np.ndarray, y: np.ndarray) -> tuple:
        return torch.from_numpy(((x - mean) / std).astype(np.float32).reshape(-1, 1, 8, 8)), torch.from_numpy(
            y.astype(np.int64))

    return tensors(x_train, y_train), tensors(x_val, y_val)


@pytest.mark.parametrize(("val_size", "split_seed"), [(None, 0), (360, 1), (500, 3)])
def test_digits_equal_the_original_tensors(val_size: int | None, split_seed: int) -> None:
    from nas_ray.evaluators import digits_tensors

    expected = reference_digits(val_size or 360, split_seed)
    data = load_dataset("digits", val_size=val_size, split_seed=split_seed, with_test=True)
    for got in ((data.train, data.val), digits_tensors(val_size or 360, split_seed)):
        for pair, want in zip(got, expected):
            assert all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(pair, want))
    if val_size is None:
        assert len(data.train[1]) == 1437 and len(data.val[1]) == 360
    assert data.test is None and (data.in_channels, data.image_size, data.num_classes, data.augment) == (1, 8, 10, "none")
    assert len(data.mean) == len(data.std) == 1 and 0 < data.mean[0] < 1


def test_digits_low_data() -> None:
    full = load_dataset("digits")
    low = load_dataset("digits", train_fraction=0.1)
    per_class = torch.bincount(full.train[1], minlength=10)
    expected = [max(1, int(0.1 * int(n) + 0.5)) for n in per_class]
    assert torch.bincount(low.train[1], minlength=10).tolist() == expected
    assert torch.equal(low.val[0], full.val[0])


# ---------------------------------------------------------------------------------- augmentation
def crops_and_flips(x: torch.Tensor, padding: int) -> list[tuple[int, int, bool, torch.Tensor]]:
    """Every (row offset, column offset, flipped, images) the augmentation may produce, for all images."""
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    out = []
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[..., dy : dy + h, dx : dx + w]
            out += [(dy, dx, False, crop), (dy, dx, True, crop.flip(-1))]
    return out


def test_augment_crops_and_flips_each_image() -> None:
    x = torch.randn(96, 3, 8, 10, generator=torch.Generator().manual_seed(1))
    before = x.clone()
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype and out.is_contiguous() and torch.equal(x, before)
    matches: list[list[tuple]] = [[] for _ in range(len(x))]
    for dy, dx, flipped, candidate in crops_and_flips(x, 4):
        for i in torch.nonzero((candidate == out).flatten(1).all(1)).flatten().tolist():
            matches[i].append((dy, dx, flipped))
    assert all(len(m) == 1 for m in matches)  # each output is exactly one crop/flip of its own input
    chosen = [m[0] for m in matches]
    assert 25 < sum(f for _, _, f in chosen) < 71  # p = 0.5 of 96
    assert len({dy for dy, _, _ in chosen}) == 9 and len({dx for _, dx, _ in chosen}) == 9
    assert sum(dy != dx for dy, dx, _ in chosen) > 60  # row and column offsets are drawn apart
    centre_flipped = [i for i, (dy, dx, f) in enumerate(chosen) if f and dy == dx == 4]
    for i in centre_flipped:
        assert torch.equal(out[i], x[i].flip(-1))


def test_augment_without_padding_only_flips() -> None:
    x = torch.arange(32 * 2 * 4 * 4, dtype=torch.uint8).reshape(32, 2, 4, 4)
    out = augment_batch(x, torch.Generator().manual_seed(3), padding=0)
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert out.dtype == torch.uint8 and bool((flipped ^ kept).all()) and 0 < int(flipped.sum()) < 32


def test_augment_is_deterministic_per_generator_and_keeps_channels_last() -> None:
    x = torch.randn(16, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    first = augment_batch(x, torch.Generator().manual_seed(7))
    assert torch.equal(first, augment_batch(x, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, augment_batch(x, torch.Generator().manual_seed(8)))
    generator = torch.Generator().manual_seed(7)
    assert not torch.equal(augment_batch(x, generator), augment_batch(x, generator))  # the state advances
    last = augment_batch(x.contiguous(memory_format=torch.channels_last), torch.Generator().manual_seed(7))
    assert last.is_contiguous(memory_format=torch.channels_last) and torch.equal(last, first)
    with pytest.raises(ValueError, match=r"augment_batch needs a \(N, C, H, W\) batch, got shape \(3, 12, 12\)"):
        augment_batch(x[0], generator)
    with pytest.raises(ValueError, match="padding must be a non-negative integer, got -1"):
        augment_batch(x, generator, padding=-1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augment_on_cuda_equals_cpu() -> None:
    x = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    on_gpu = augment_batch(x.cuda().contiguous(memory_format=torch.channels_last), torch.Generator().manual_seed(5))
    assert on_gpu.device.type == "cuda" and on_gpu.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(on_gpu.cpu(), augment_batch(x, torch.Generator().manual_seed(5)))

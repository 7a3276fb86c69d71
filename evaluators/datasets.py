"""Image-classification data for the training evaluators, as in-memory tensor pairs.

``load_dataset(name)`` gives an ``ImageData``: ``(inputs, labels)`` pairs for training, validation and
(optionally) test, the kind ``TrainingEvaluator.datasets`` returns. Images are float32 ``(N, C, H, W)``
standardised per channel with the training split's mean and std, labels int64.

* ``"digits"``: scikit-learn's bundled 8x8 digits (offline; no test set).
* ``"cifar10"`` / ``"cifar100"``: the official *binary* distribution from
  https://www.cs.toronto.edu/~kriz/cifar.html, read with numpy (the python version is pickles, which
  nas-ray never loads).

The validation split is a stratified, seeded hold-out of the official training set, so that the test
set stays untouched for final reports. ``augment_batch`` is the usual CIFAR augmentation (random crop
from a 4-pixel zero padding, random horizontal flip), vectorised on the batch's own device.

Nothing is cached here: an evaluator keeps its ``ImageData`` on its instance. torch and scikit-learn
are imported inside the functions, so that importing this module stays light.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_ray.data import resolve_data_dir
from nas_ray.errors import ConfigError, DataFileError, UnknownName

if TYPE_CHECKING:
    import torch

DATASETS = ("digits", "cifar10", "cifar100")
AUGMENTATIONS = ("none", "crop_flip")
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
#: default validation images held out of the official training set
DEFAULT_VAL_SIZE = {"digits": 360, "cifar10": 5_000, "cifar100": 5_000}
#: records in each official binary file; a file with another count is reported as truncated or corrupt.
#: A file not named here is only checked for a whole number of records (tests patch this mapping).
EXPECTED_RECORDS: dict[str, int] = {
    **{f"data_batch_{i}.bin": 10_000 for i in range(1, 6)},
    "test_batch.bin": 10_000,
    "train.bin": 50_000,
    "test.bin": 10_000,
}
_PIXEL_BYTES = 3 * 32 * 32
_CHUNK = 1024  # images per step of the histogram and lookup loops


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
    """One dataset, split and standardised: ``train`` / ``val`` / ``test`` are ``(inputs, labels)``.

    ``mean`` and ``std`` are per channel, of the training split, in pixel values scaled to [0, 1]
    (the inputs are ``(pixel - mean) / std``). ``augment`` names the augmentation training should
    apply: ``"none"`` or ``"crop_flip"`` (``augment_batch``).
    """

    train: tuple[torch.Tensor, torch.Tensor] = dataclasses.field(repr=False)
    val: tuple[torch.Tensor, torch.Tensor] = dataclasses.field(repr=False)
    test: tuple[torch.Tensor, torch.Tensor] | None = dataclasses.field(repr=False)
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str
    name: str
    #: how the splits were made (reported by ``describe``)
    split_seed: int = 0
    train_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.augment not in AUGMENTATIONS:
            raise ConfigError(f"ImageData.augment must be one of {', '.join(AUGMENTATIONS)}, got {self.augment!r}")
        for split in ("train", "val", "test"):
            pair = getattr(self, split)
            if pair is not None and len(pair[0]) != len(pair[1]):
                raise ConfigError(f"ImageData.{split} has {len(pair[0])} inputs but {len(pair[1])} labels")

    def describe(self) -> dict[str, Any]:
        """Sizes, shapes and normalisation, for results files."""
        return {
            "dataset": self.name,
            "train_size": len(self.train[1]),
            "val_size": len(self.val[1]),
            "test_size": None if self.test is None else len(self.test[1]),
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "augment": self.augment,
            "split_seed": self.split_seed,
            "train_fraction": self.train_fraction,
        }


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    val_size: int | None = None,
    split_seed: int = 0,
    train_fraction: float = 1.0,
    with_test: bool = False,
) -> ImageData:
    """Load ``name`` (one of ``DATASETS``), split and standardised.

    ``val_size`` images (default: 360 for digits, 5,000 for CIFAR) are held out of the official
    training set, stratified by class and seeded by ``split_seed``; the rest is the training split.
    ``train_fraction`` in (0, 1] then keeps that fraction of every class's training images (at least
    one each, seeded by ``split_seed``; a smaller fraction keeps a subset of a larger one); the
    validation split and the normalisation (of the whole training split) do not change with it.
    ``with_test`` adds the official test set (CIFAR; digits has none: ``test`` is None).

    CIFAR is read from ``data_dir`` (default ``$NAS_RAY_DATA``): the folder holding
    ``cifar-10-batches-bin`` / ``cifar-100-binary``, or that folder itself.
    """
    if name not in DATASETS:
        raise UnknownName(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)) or not 0 < train_fraction <= 1:
        raise ConfigError(f"train_fraction must be a number in (0, 1], got {train_fraction!r}")
    if val_size is None:
        val_size = DEFAULT_VAL_SIZE[name]
    if name == "digits":
        return _load_digits(val_size, split_seed, float(train_fraction))
    return _load_cifar(_CIFAR[name], data_dir, val_size, split_seed, float(train_fraction), with_test)


def augment_batch(x: torch.Tensor, generator: torch.Generator, *, padding: int = 4) -> torch.Tensor:
    """The CIFAR training augmentation of a ``(N, C, H, W)`` batch, on the batch's device.

    Each image is cropped back to ``H x W`` at a random offset from its copy zero-padded by
    ``padding`` pixels on every side, then flipped horizontally with probability 0.5. The random
    numbers come from ``generator`` (on its own device, usually the CPU) and are then moved to
    ``x.device``, so the same generator state gives the same result on CPU and CUDA. Returns a new
    tensor of ``x``'s shape, dtype, device and memory format (channels_last stays channels_last).

    On standardised images the zero padding is the training set's mean colour rather than black;
    that is the usual practice when normalising before augmenting, and harmless.
    """
    import torch
    import torch.nn.functional as F

    if x.dim() != 4:
        raise ConfigError(f"augment_batch needs a (N, C, H, W) batch, got shape {tuple(x.shape)}")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ConfigError(f"augment_batch padding must be a non-negative integer, got {padding!r}")
    n, _, height, width = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=generator.device)
    flips = torch.randint(0, 2, (n,), generator=generator, device=generator.device)
    offsets, flips = offsets.to(x.device), flips.to(x.device).bool()
    padded = F.pad(x, (padding, padding, padding, padding)) if padding else x
    rows = offsets[0, :, None] + torch.arange(height, device=x.device)  # (N, H)
    columns = torch.arange(width, device=x.device)
    # a flipped image reads its crop's columns right to left
    columns = torch.where(flips[:, None], columns.flip(0), columns) + offsets[1, :, None]  # (N, W)
    images = torch.arange(n, device=x.device)[:, None, None]
    # advanced indices around the channel slice put the channel last: (N, H, W, C)
    out = padded[images, :, rows[:, :, None], columns[:, None, :]].permute(0, 3, 1, 2)
    channels_last = not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    return out.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


# ---------------------------------------------------------------------------------- splits
def _split(labels: np.ndarray, val_size: int, split_seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, val)`` of a stratified hold-out of ``val_size`` images, in scikit-learn's
    shuffled order (the same indices ``train_test_split(x, y, stratify=y)`` would take)."""
    from sklearn.model_selection import train_test_split

    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2:
        raise ConfigError(f"{name}: class {classes[counts.argmin()]} has only {counts.min()} training image(s); "
                         "a stratified validation split needs at least 2 per class")
    n, k = len(labels), len(classes)
    if isinstance(val_size, bool) or not isinstance(val_size, (int, np.integer)) or not k <= val_size <= n - k:
        raise ConfigError(f"val_size for {name} must be an integer from {k} to {n - k} (at least one image "
                         f"per class on each side), got {val_size!r}")
    train, val = train_test_split(np.arange(n), test_size=int(val_size), stratify=labels, random_state=split_seed)
    return train, val


def _keep_fraction(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Positions (in order) of ``round(fraction * n_c)`` (at least 1) random images of every class c.

    Each class draws one permutation of its images and keeps its head, so the kept images of a smaller
    fraction are a subset of those of a larger one (same seed)."""
    if fraction >= 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    kept = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = max(1, int(fraction * len(members) + 0.5))
        kept.append(members[rng.permutation(len(members))[:count]])
    return np.sort(np.concatenate(kept))


# ---------------------------------------------------------------------------------- digits
def _load_digits(val_size: int, split_seed: int, train_fraction: float) -> ImageData:
    """scikit-learn's digits: pixel values 0..16 scaled to [0, 1], one mean and std (a single channel)
    over all training pixels. These are exactly the tensors ``digits_tensors`` has always returned."""
    import torch
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    images = images.astype(np.float32) / 16.0
    train, val = _split(labels, val_size, split_seed, "digits")
    x_train = images[train]
    mean, std = x_train.mean(), x_train.std()
    train = train[_keep_fraction(labels[train], train_fraction, split_seed)]

    def tensors(index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = ((images[index] - mean) / std).astype(np.float32).reshape(-1, 1, 8, 8)
        return torch.from_numpy(x), torch.from_numpy(labels[index].astype(np.int64))

    return ImageData(
        train=tensors(train), val=tensors(val), test=None, num_classes=10, in_channels=1, image_size=8,
        mean=(float(mean),), std=(float(std),), augment="none", name="digits", split_seed=split_seed,
        train_fraction=train_fraction,
    )


# ---------------------------------------------------------------------------------- CIFAR
@dataclasses.dataclass(frozen=True)
class _CifarFormat:
    """Where and how one CIFAR variant's binary files are laid out."""

    name: str
    title: str
    folder: str
    pickle_folder: str
    archive: str
    train_files: tuple[str, ...]
    test_file: str
    #: the label bytes leading each record, with their number of values; the last one is the class
    labels: tuple[tuple[str, int], ...]

    @property
    def num_classes(self) -> int:
        return self.labels[-1][1]

    @property
    def record_bytes(self) -> int:
        return len(self.labels) + _PIXEL_BYTES


_CIFAR = {
    "cifar10": _CifarFormat(
        "cifar10", "CIFAR-10", "cifar-10-batches-bin", "cifar-10-batches-py", "cifar-10-binary.tar.gz",
        tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin", (("label", 10),),
    ),
    "cifar100": _CifarFormat(
        "cifar100", "CIFAR-100", "cifar-100-binary", "cifar-100-python", "cifar-100-binary.tar.gz",
        ("train.bin",), "test.bin", (("coarse label", 20), ("fine label", 100)),
    ),
}


def _load_cifar(
    fmt: _CifarFormat, data_dir: str | os.PathLike[str] | None, val_size: int, split_seed: int,
    train_fraction: float, with_test: bool,
) -> ImageData:
    folder, home = _cifar_folder(fmt, data_dir)
    pixels, labels = _read_cifar_files([folder / f for f in fmt.train_files], fmt, home)
    train, val = _split(labels, val_size, split_seed, fmt.title)
    x_train = pixels[train]
    mean, std = _channel_stats(x_train, folder)
    table = ((np.arange(256) / 255.0 - mean[:, None]) / std[:, None]).astype(np.float32)  # (C, 256)
    y_train = labels[train]
    keep = _keep_fraction(y_train, train_fraction, split_seed)
    if len(keep) < len(y_train):
        x_train, y_train = x_train[keep], y_train[keep]
    test = None
    if with_test:
        test = _standardise(*_read_cifar_files([folder / fmt.test_file], fmt, home), table)
    return ImageData(
        train=_standardise(x_train, y_train, table),
        val=_standardise(pixels[val], labels[val], table), test=test, num_classes=fmt.num_classes, in_channels=3,
        image_size=32, mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std), augment="crop_flip",
        name=fmt.name, split_seed=split_seed, train_fraction=train_fraction,
    )


def _cifar_folder(fmt: _CifarFormat, data_dir: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    """``(folder of the binary files, data folder to extract the download into)``."""
    root = resolve_data_dir(data_dir)
    if root.name == fmt.folder:
        return root, root.parent
    if (root / fmt.folder).is_dir():
        return root / fmt.folder, root
    if (root / fmt.train_files[0]).is_file():  # the files, in a folder of another name
        return root, root
    pickles = root if root.name == fmt.pickle_folder else root / fmt.pickle_folder
    if pickles.is_dir():
        home = pickles.parent
        raise DataFileError(
            f"{pickles} is the python (pickle) version of {fmt.title}, which nas-ray does not read (it never "
            f"unpickles): download the binary version ({fmt.archive}) from {CIFAR_URL} and extract it into {home}"
        )
    raise DataFileError(_missing(root / fmt.folder / fmt.train_files[0], fmt, root))


def _missing(path: Path, fmt: _CifarFormat, home: Path) -> str:
    return (f"{fmt.title} file {path} not found: download the binary version ({fmt.archive}) from {CIFAR_URL} "
            f"and extract it into {home}")


def _read_cifar_files(paths: list[Path], fmt: _CifarFormat, home: Path) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``(N, 3, 32, 32)`` uint8 and class labels int64 of the records of ``paths``, in order."""
    parts = [_read_cifar_file(path, fmt, home) for path in paths]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p for p, _ in parts]), np.concatenate([y for _, y in parts])


def _read_cifar_file(path: Path, fmt: _CifarFormat, home: Path) -> tuple[np.ndarray, np.ndarray]:
    """One binary file: records of the label byte(s), then the R, G and B planes of 32x32 row-major."""
    if not path.is_file():
        raise DataFileError(_missing(path, fmt, home))
    size, record = path.stat().st_size, fmt.record_bytes
    if size == 0 or size % record:
        raise DataFileError(f"{path}: {size:,} bytes are not a whole number of {record:,}-byte {fmt.title} records; "
                            "the file is truncated or corrupt, download it again")
    count, expected = size // record, EXPECTED_RECORDS.get(path.name)
    if expected is not None and count != expected:
        raise DataFileError(f"{path}: holds {count:,} records, expected {expected:,}; the file is truncated or corrupt")
    try:
        records = np.fromfile(path, dtype=np.uint8).reshape(count, record)
    except (OSError, ValueError) as exc:
        raise DataFileError(f"{path}: cannot be read: {exc}") from None
    for column, (what, values) in enumerate(fmt.labels):
        bad = np.flatnonzero(records[:, column] >= values)
        if bad.size:
            raise DataFileError(f"{path}: record {bad[0]} has {what} {records[bad[0], column]}, outside "
                                f"0..{values - 1}; the file is corrupt")
    pixels = records[:, len(fmt.labels):].reshape(count, 3, 32, 32)
    return pixels, records[:, len(fmt.labels) - 1].astype(np.int64)


def _channel_stats(pixels: np.ndarray, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and (population) std of uint8 ``(N, C, H, W)`` pixels scaled to [0, 1],
    from each channel's histogram (no float copy of the images)."""
    values = np.arange(256) / 255.0
    means, stds = [], []
    for channel in range(pixels.shape[1]):
        counts = np.zeros(256, dtype=np.int64)
        for start in range(0, len(pixels), _CHUNK):
            counts += np.bincount(pixels[start : start + _CHUNK, channel].reshape(-1), minlength=256)
        mean = counts @ values / counts.sum()
        std = np.sqrt(counts @ (values - mean) ** 2 / counts.sum())
        if not std > 0:
            raise DataFileError(f"{folder}: channel {channel} of the training images is constant; the files are corrupt")
        means.append(mean)
        stds.append(std)
    return np.array(means), np.array(stds)


def _standardise(pixels: np.ndarray, labels: np.ndarray, table: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, labels)`` tensors: each uint8 pixel of channel c looked up in ``table[c]`` (256 entries;
    chunked, to keep numpy's index copies small)."""
    import torch

    out = np.empty(pixels.shape, dtype=np.float32)
    for start in range(0, len(pixels), _CHUNK):
        chunk = slice(start, start + _CHUNK)
        for channel in range(pixels.shape[1]):
            np.take(table[channel], pixels[chunk, channel], out=out[chunk, channel], mode="clip")
    return torch.from_numpy(out), torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))

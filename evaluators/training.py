"""Training ("oracle") evaluators: build the network of an architecture, train it, report validation
accuracy once per epoch.

``TrainingEvaluator`` holds the generic loop (seeding, optimiser, learning-rate schedule, per-epoch
metrics, resumable state); a subclass says which network an architecture is (``build_model``) and what
it is trained on (``datasets``). ``DigitsEvaluator`` is the embedded default: small NAS-Bench-101
networks trained for a few epochs on scikit-learn's bundled 8x8 digits, on CPU, offline.

torch, scikit-learn and nasbench-pytorch are imported inside the functions that use them, so that
``import nas_ray.evaluators`` stays light.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_ray.errors import ConfigError, InvalidArchitecture
from nas_ray.evaluators.base import Evaluator, Step
from nas_ray.graph import Architecture
from nas_ray.spaces import SearchSpace, get_space

if TYPE_CHECKING:
    import torch

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")
AMP_MODES = ("auto", "bf16", "fp16", "off")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters of the training loop, one per field. The defaults are the digits evaluator's
    (see ``DigitsEvaluator`` for what they measure to); a GPU evaluator passes its own."""

    #: passes over the training set; 8 separates good from poor digits cells and stays a few seconds long
    epochs: int = 8
    #: 64 gives ~23 SGD steps per epoch on 1,437 digits: enough steps, and small batches cost little on CPU
    batch_size: int = 64
    #: peak learning rate; 0.05 and 0.1 measured alike, both stable from step 0 without warm-up
    lr: float = 0.05
    #: SGD momentum, the usual 0.9 (NB101 used 0.9 with RMSProp; plain SGD is simpler to reproduce)
    momentum: float = 0.9
    #: L2 weight decay on all parameters; 5e-4 as in most CIFAR recipes, small enough for a few epochs
    weight_decay: float = 5e-4
    #: "sgd" (with ``momentum``) or "adam" (``momentum`` is its beta1); on digits Adam(3e-3) spread cells
    #: wider (88-98 %) but SGD's results varied less between seeds (0.9 vs 1.1 points)
    optimizer: str = "sgd"
    #: "cosine": per-step cosine decay to 0 over all epochs, as NB101's schedule; or "constant"
    schedule: str = "cosine"
    #: seeds the model's initialisation, the batch order and any other randomness of training
    seed: int = 0
    #: "auto" = CUDA when this process sees a GPU, else CPU; or an explicit "cpu" / "cuda" / "cuda:1"
    device: str = "auto"
    #: torch intra-op threads on CPU; 1: Ray then runs one trial per core, and with the other core busy
    #: 2 threads measured 20x slower (104 s vs 4.9 s per evaluation). Bit-identical only for equal values
    num_threads: int = 1
    #: train on only the first N training samples (tests, quick smoke runs); None = all
    max_train_samples: int | None = None
    #: batch size of the validation pass (no gradients, so larger batches are cheap)
    eval_batch_size: int = 1024
    #: mixed precision: "auto" = bfloat16 autocast on CUDA and none on CPU; "bf16"; "fp16" (with a
    #: gradient scaler, for GPUs without bfloat16); "off"
    amp: str = "auto"
    #: channels-last memory format for model and batches: "auto" = on CUDA (faster convolutions with
    #: tensor cores), "on", "off"
    channels_last: str = "auto"
    #: bit-reproducible GPU training (deterministic cuDNN kernels, ``torch.use_deterministic_algorithms``);
    #: off by default on GPU, where cuDNN then picks the fastest kernels. CPU training is deterministic anyway
    deterministic: bool = False
    #: the dataset's training augmentation (random crop + flip on CIFAR; none on digits)
    augment: bool = True

    def __post_init__(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "eval_batch_size": self.eval_batch_size,
                    "num_threads": self.num_threads}
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"TrainingConfig.{name} must be a positive integer, got {value!r}")
        if self.max_train_samples is not None and (not isinstance(self.max_train_samples, int)
                                                   or self.max_train_samples < 1):
            raise ConfigError(f"TrainingConfig.max_train_samples must be None or >= 1, got {self.max_train_samples!r}")
        if not self.lr > 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ConfigError(
                f"TrainingConfig needs lr > 0, weight_decay >= 0 and 0 <= momentum < 1, got lr={self.lr}, "
                f"weight_decay={self.weight_decay}, momentum={self.momentum}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"TrainingConfig.optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"TrainingConfig.schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"TrainingConfig.device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"TrainingConfig.amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.channels_last not in ("auto", "on", "off"):
            raise ConfigError(f"TrainingConfig.channels_last must be auto, on or off, got {self.channels_last!r}")

    def autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        """The autocast dtype of training on ``device`` (None: full precision)."""
        import torch

        mode = ("bf16" if device.type == "cuda" else "off") if self.amp == "auto" else self.amp
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[mode]

    def uses_channels_last(self, device: torch.device) -> bool:
        return self.channels_last == "on" or (self.channels_last == "auto" and device.type == "cuda")

    def lr_at(self, step: int, total_steps: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based) out of ``total_steps``: a pure function of
        the step, so a resumed run follows the same schedule without a scheduler's state."""
        if self.schedule == "constant":
            return self.lr
        return 0.5 * self.lr * (1.0 + math.cos(math.pi * step / total_steps))


class TrainingEvaluator(Evaluator):
    """Trains the network of an architecture; ``metric`` is the validation accuracy in percent.

    A subclass implements ``build_model(arch)`` (``arch`` is already validated and canonicalised) and
    ``datasets()`` (``(train, val)``, each an ``(inputs, labels)`` pair of tensors or a torch
    ``Dataset``; cache them on the instance). ``iterate`` yields one ``Step`` per epoch whose ``state``
    (CPU tensors and plain values: ``torch.save`` / ``torch.load(weights_only=True)`` round-trip it)
    resumes the run from the next epoch with the same results as an uninterrupted one::

        ev = DigitsEvaluator(epochs=4)
        for step in ev.iterate(arch):
            print(step.metrics["epoch"], step.metrics["val_accuracy"])

    Keyword ``overrides`` replace fields of ``config`` (``DigitsEvaluator(epochs=2, seed=1)``).
    """

    metric = "val_accuracy"
    metric_scale = 100.0
    mode = "max"

    def __init__(self, space: SearchSpace, config: TrainingConfig | None = None, **overrides: Any) -> None:
        self.space = space
        self.config = dataclasses.replace(config or TrainingConfig(), **overrides)

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def build_model(self, arch: Architecture) -> torch.nn.Module:
        """The network of ``arch`` (valid and canonical), freshly initialised from torch's global RNG."""

    @abc.abstractmethod
    def datasets(self) -> tuple[Any, Any]:
        """``(train, val)``: ``(inputs, labels)`` tensor pairs or torch Datasets of ``(input, label)``."""

    def count_parameters(self, model: torch.nn.Module) -> int:
        """Parameters reported as ``params``; a builder with placeholder parameters excludes them."""
        return sum(p.numel() for p in model.parameters())

    def criterion(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        return F.cross_entropy(logits, labels)

    # ------------------------------------------------------------------ contract
    @property
    def device(self) -> torch.device:
        import torch

        if self.config.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.config.device)

    @property
    def resources(self) -> dict[str, float]:
        """One GPU (and one CPU to feed it) on CUDA; ``num_threads`` CPUs otherwise. With ``device="auto"``
        this asks the calling process: on a cluster whose driver has no GPU, set ``device="cuda"``."""
        if self.device.type == "cuda":
            return {"cpu": 1.0, "gpu": 1.0}
        return {"cpu": float(self.config.num_threads), "gpu": 0.0}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **dataclasses.asdict(self.config)}

    def prepare(self, arch: Architecture) -> Architecture:
        """The canonical form of ``arch``; ``InvalidArchitecture`` (the space's message) if it is not a
        member of this space."""
        if isinstance(arch, Mapping):
            arch = Architecture.from_dict(arch)
        if not isinstance(arch, Architecture):
            raise InvalidArchitecture(f"{self.space.name}: expected an Architecture, got {type(arch).__name__}")
        return self.space.canonicalize(arch)

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        """Train for all epochs; the last epoch's metrics."""
        metrics: dict[str, float] = {}
        for step in self.iterate(arch):
            metrics = step.metrics
        return metrics

    @property
    def max_steps(self) -> int:
        return self.config.epochs

    def augmentation(self) -> str:
        """The training augmentation of the data: "none" or "crop_flip" (random crop + horizontal flip)."""
        return "none"

    def iterate(self, arch: Architecture, *, restore: Mapping[str, Any] | None = None) -> Iterator[Step]:
        import torch

        arch = self.prepare(arch)
        arch_hash = self.space.hash(arch)
        cfg, device = self.config, self.device
        memory_format = torch.channels_last if cfg.uses_channels_last(device) else torch.contiguous_format
        with self._compute(device):
            train, val = self._data(device)
            torch.manual_seed(cfg.seed)
            model = self.build_model(arch).to(device, memory_format=memory_format)
            n_params = self.count_parameters(model)
            macs = self._macs(model, val, device, memory_format)
            optimizer = self._optimizer(model)
            scaler = torch.amp.GradScaler(device.type, enabled=cfg.autocast_dtype(device) == torch.float16)
            first_epoch, rng = 0, torch.get_rng_state()
            cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
            if restore is not None:
                first_epoch = self._check_restore(restore, arch_hash)
                model.load_state_dict(restore["model"])
                optimizer.load_state_dict(restore["optimizer"])
                if "scaler" in restore:
                    scaler.load_state_dict(restore["scaler"])
                rng, cuda_rng = restore["rng"], restore.get("cuda_rng", cuda_rng)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        n_train = _length(train)
        steps_per_epoch = math.ceil(n_train / cfg.batch_size)
        for epoch in range(first_epoch, cfg.epochs):
            start = time.perf_counter()
            with self._compute(device):
                torch.set_rng_state(rng)
                if cuda_rng is not None:
                    torch.cuda.set_rng_state(cuda_rng, device)
                train_loss, images = self._train_epoch(model, optimizer, scaler, train, epoch, steps_per_epoch, device,
                                                       memory_format)
                train_seconds = time.perf_counter() - start  # _train_epoch ends on a device sync
                val_accuracy, val_loss = self._validate(model, val, device, memory_format)
                rng = torch.get_rng_state()
                cuda_rng = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
            metrics = {
                "val_accuracy": val_accuracy,
                "val_loss": val_loss,
                "train_loss": train_loss,
                "epoch": epoch + 1,
                "params": n_params,
                "macs": macs,
                "images_per_s": images / max(train_seconds, 1e-9),
                "epoch_seconds": time.perf_counter() - start,
            }
            if device.type == "cuda":
                metrics["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
            state = {
                "epoch": epoch + 1,
                "hash": arch_hash,
                "seed": cfg.seed,
                "model": _cpu_copy(model.state_dict()),
                "optimizer": _cpu_copy(optimizer.state_dict()),
                "rng": rng.clone(),
            }
            if scaler.is_enabled():
                state["scaler"] = scaler.state_dict()
            if cuda_rng is not None:
                state["cuda_rng"] = cuda_rng.cpu()
            yield Step(metrics, state)

    # ------------------------------------------------------------------ the loop
    @contextlib.contextmanager
    def _compute(self, device: torch.device) -> Iterator[None]:
        """This evaluation's thread count, kernel choice and RNG stream, without leaking any into the
        caller (two interleaved ``iterate`` generators do not disturb each other or the global RNG)."""
        import torch

        threads = torch.get_num_threads()
        cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
        algorithms = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
        if device.type == "cpu":
            torch.set_num_threads(self.config.num_threads)
        else:
            deterministic = self.config.deterministic
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = deterministic, not deterministic
            if deterministic:
                # cuBLAS needs this before its first use in the process to be deterministic
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.use_deterministic_algorithms(True)
        cuda_devices = []
        if device.type == "cuda":
            cuda_devices = [torch.cuda.current_device() if device.index is None else device.index]
        try:
            with torch.random.fork_rng(devices=cuda_devices):
                yield
        finally:
            torch.set_num_threads(threads)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
            torch.use_deterministic_algorithms(algorithms[0], warn_only=algorithms[1])

    def _macs(self, model: torch.nn.Module, val: Any, device: torch.device, memory_format: torch.memory_format) -> float:
        """Multiply-accumulates of one forward pass of one image, by torch's FLOP counter (FLOPs / 2)."""
        import torch
        from torch.utils.flop_counter import FlopCounterMode

        sample = val[0][:1] if isinstance(val, tuple) else val[0][0].unsqueeze(0)
        sample = sample.to(device).contiguous(memory_format=memory_format)
        was_training = model.training
        model.eval()
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(sample)
        model.train(was_training)
        return counter.get_total_flops() / 2.0

    def _data(self, device: torch.device) -> tuple[Any, Any]:
        """``datasets()`` with ``max_train_samples`` applied and tensor pairs moved to ``device``."""
        import torch

        train, val = self.datasets()
        limit = self.config.max_train_samples
        if limit is not None:
            if isinstance(train, tuple):
                train = (train[0][:limit], train[1][:limit])
            else:
                train = torch.utils.data.Subset(train, range(min(limit, len(train))))
        if isinstance(train, tuple):
            train = tuple(t.to(device) for t in train)
        if isinstance(val, tuple):
            val = tuple(t.to(device) for t in val)
        return train, val

    def _optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        import torch

        cfg = self.config
        params = [p for p in model.parameters() if p.requires_grad]
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.momentum, 0.999), weight_decay=cfg.weight_decay)
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)

    def _batches(self, data: Any, batch_size: int, device: torch.device, shuffle_seed: int | None) -> Iterator[tuple]:
        import torch

        generator = None if shuffle_seed is None else torch.Generator().manual_seed(shuffle_seed)
        if isinstance(data, tuple):
            inputs, labels = data
            n = len(labels)
            order = torch.randperm(n, generator=generator).to(inputs.device) if generator is not None else None
            for i in range(0, n, batch_size):
                if order is None:
                    yield inputs[i : i + batch_size], labels[i : i + batch_size]
                else:
                    idx = order[i : i + batch_size]
                    yield inputs[idx], labels[idx]
            return
        loader = torch.utils.data.DataLoader(
            data, batch_size=batch_size, shuffle=generator is not None, generator=generator,
            pin_memory=device.type == "cuda",
        )
        for inputs, labels in loader:
            yield inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)

    def _train_epoch(self, model, optimizer, scaler, train, epoch: int, steps_per_epoch: int, device,  # noqa: ANN001
                     memory_format) -> tuple[float, int]:  # noqa: ANN001
        """One epoch; (mean training loss, images trained on)."""
        import torch

        cfg = self.config
        model.train()
        total_steps = cfg.epochs * steps_per_epoch
        # The batch order and the augmentation are functions of (seed, epoch) alone, so a resumed run
        # sees the same batches.
        shuffle_seed = cfg.seed * 1_000_003 + epoch
        augment = cfg.augment and self.augmentation() == "crop_flip"
        generator = torch.Generator().manual_seed(shuffle_seed + 7_919) if augment else None
        if augment:
            from nas_ray.evaluators.datasets import augment_batch
        dtype = cfg.autocast_dtype(device)
        loss_sum, seen = torch.zeros((), device=device), 0
        for i, (inputs, labels) in enumerate(self._batches(train, cfg.batch_size, device, shuffle_seed)):
            if len(labels) < 2:  # BatchNorm cannot train on a batch of one
                continue
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr_at(epoch * steps_per_epoch + i, total_steps)
            if augment:
                inputs = augment_batch(inputs, generator)
            inputs = inputs.contiguous(memory_format=memory_format)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = self.criterion(model(inputs), labels)
            optimizer.zero_grad(set_to_none=True)
            if scaler.is_enabled():
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            loss_sum += loss.detach().float() * len(labels)
            seen += len(labels)
        return float(loss_sum) / max(seen, 1), seen

    def _validate(self, model, val, device, memory_format=None) -> tuple[float, float]:  # noqa: ANN001
        import torch

        dtype = self.config.autocast_dtype(device)
        model.eval()
        correct, loss_sum, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
        with torch.no_grad(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            for inputs, labels in self._batches(val, self.config.eval_batch_size, device, None):
                if memory_format is not None:
                    inputs = inputs.contiguous(memory_format=memory_format)
                logits = model(inputs).float()
                loss_sum += self.criterion(logits, labels) * len(labels)
                correct += (logits.argmax(1) == labels).sum()
                seen += len(labels)
        return 100.0 * float(correct) / seen, float(loss_sum) / seen

    def _check_restore(self, restore: Mapping[str, Any], arch_hash: str) -> int:
        missing = {"epoch", "hash", "seed", "model", "optimizer", "rng"} - set(restore)
        if missing:
            raise ConfigError(f"restore state lacks {', '.join(sorted(missing))}; pass a Step.state of iterate()")
        if restore["hash"] != arch_hash:
            raise ConfigError(f"restore state is of architecture {restore['hash']}, not of {arch_hash}")
        if restore["seed"] != self.config.seed:
            raise ConfigError(
                f"restore state was trained with seed {restore['seed']}, this evaluator has {self.config.seed}"
            )
        return int(restore["epoch"])

    # ------------------------------------------------------------------ pickling (Ray ships evaluators)
    def __getstate__(self) -> dict[str, Any]:
        """Drop cached datasets (``_cache*`` attributes): a worker rebuilds them on first use."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_cache")}


# ---------------------------------------------------------------------------------- NAS-Bench-101
def nasbench101_network(
    arch: Architecture,
    *,
    num_labels: int = 10,
    in_channels: int = 3,
    stem_channels: int = 128,
    num_stacks: int = 3,
    modules_per_stack: int = 3,
    bn_momentum: float = 0.1,
) -> torch.nn.Module:
    """nasbench-pytorch's ``Network`` of a *valid, pruned* NB101 cell (the defaults are NB101's CIFAR
    network). Its ``ModelSpec`` crashes on invalid specs, hence: validate with the space first.

    ``bn_momentum`` is in PyTorch's convention (weight of the new batch). nasbench-pytorch's default,
    0.997, is NB101's TensorFlow *decay* passed through unchanged, i.e. running statistics that follow
    only the last batch; 0.1 (= TF decay 0.9) suits short training, the TF-equivalent is 0.003.
    """
    import torch
    from nasbench_pytorch.model import Network

    spec = (np.asarray(arch.matrix, dtype=np.int64), list(arch.ops))
    model = Network(
        spec, num_labels=num_labels, in_channels=in_channels, stem_out_channels=stem_channels,
        num_stacks=num_stacks, num_modules_per_stack=modules_per_stack, momentum=bn_momentum,
    )
    # Network passes ``momentum`` to the stem and the projections only; the cells' own ops keep 0.1.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = bn_momentum
    return model


def nasbench101_parameter_count(model: torch.nn.Module) -> int:
    """Parameters of a ``nasbench101_network``, without nasbench-pytorch's unused ``Placeholder``
    scalars: equal to NB101's published ``trainable_parameters``."""
    from nasbench_pytorch.model.model import Placeholder

    skip = {id(p) for m in model.modules() if isinstance(m, Placeholder) for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


#: (classes, input channels) of the datasets ``load_dataset`` reads, known without reading them
DATASET_SHAPES = {"digits": (10, 1), "cifar10": (10, 3), "cifar100": (100, 3)}


class ImageTrainingEvaluator(TrainingEvaluator):
    """Trains the network ``nas_ray.evaluators.build_network`` builds for an architecture of ``space``
    on an image-classification dataset (``train:<dataset>``).

    ``dataset`` is a name of ``nas_ray.evaluators.datasets.load_dataset`` ("digits", "cifar10",
    "cifar100"; CIFAR from its binary files under ``data_dir``) or an ``ImageData`` of your own.
    ``train_fraction`` < 1 is the low-data mode of GraphPNAS's oracle: that fraction of the training
    images of every class, all classes kept; the validation split (``val_size`` images held out of the
    training set, ``split_seed``) is unchanged. ``preset`` and network options (``stem_channels=32``,
    ``channels=24``, ...) choose the network; every other keyword is a ``TrainingConfig`` field::

        ev = ImageTrainingEvaluator("cifar10", "nasbench201", data_dir="data", epochs=12, train_fraction=0.1)

    On a GPU it trains with bfloat16 autocast and channels-last (``amp``, ``channels_last``), and
    reports images/s and peak GPU memory with the usual per-epoch metrics.
    """

    def __init__(
        self,
        dataset: Any = "digits",
        space: SearchSpace | str = "nasbench101",
        config: TrainingConfig | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        preset: str | None = None,
        space_options: Mapping[str, Any] | None = None,
        val_size: int | None = None,
        split_seed: int = 0,
        train_fraction: float = 1.0,
        **options: Any,
    ) -> None:
        from nas_ray.evaluators.datasets import DATASETS, ImageData
        from nas_ray.evaluators.networks import network_options, network_preset_for

        fields = {f.name for f in dataclasses.fields(TrainingConfig)}
        overrides = {k: v for k, v in options.items() if k in fields}
        space_obj = space if isinstance(space, SearchSpace) else get_space(space, **dict(space_options or {}))
        super().__init__(space_obj, config, **overrides)
        if isinstance(dataset, ImageData):
            self.dataset, self._cache_data = dataset.name, dataset
            self._shape = (dataset.num_classes, dataset.in_channels)
            self._augment = dataset.augment
        elif dataset in DATASETS:
            self.dataset, self._shape = dataset, DATASET_SHAPES[dataset]
            self._augment = "none" if dataset == "digits" else "crop_flip"
        else:
            from nas_ray.errors import UnknownName

            raise UnknownName(f"unknown dataset {dataset!r}; datasets: {', '.join(DATASETS)} (or an ImageData)")
        if not isinstance(train_fraction, (int, float)) or not 0 < train_fraction <= 1:
            raise ConfigError(f"train_fraction must be a number in (0, 1], got {train_fraction!r}")
        self.data_dir = None if data_dir is None else str(data_dir)
        self.val_size, self.split_seed, self.train_fraction = val_size, split_seed, float(train_fraction)
        self.preset = preset or network_preset_for(space_obj.name, self.dataset)
        network = {k: v for k, v in options.items() if k not in fields}
        known = network_options(space_obj.name, self.preset)
        unknown = sorted(set(network) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown option {unknown[0]!r}: neither a training option ({', '.join(sorted(fields))}) nor a "
                f"{space_obj.name} network option ({', '.join(known)})"
            )
        self.network_options = network_options(space_obj.name, self.preset, **network)

    @property
    def num_classes(self) -> int:
        return self._shape[0]

    @property
    def in_channels(self) -> int:
        return self._shape[1]

    def augmentation(self) -> str:
        return self._augment

    def network_spec(self) -> dict[str, Any]:
        """What rebuilds this evaluator's network: ``build_network(space, arch, **spec)`` (model export)."""
        return {"space_options": self.space.options(), "preset": self.preset, "options": dict(self.network_options),
                "num_classes": self.num_classes, "in_channels": self.in_channels}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "dataset": self.dataset, "data_dir": self.data_dir, "val_size": self.val_size,
                "split_seed": self.split_seed, "train_fraction": self.train_fraction, "network": self.network_spec()}

    def build_model(self, arch: Architecture) -> torch.nn.Module:
        from nas_ray.evaluators.networks import build_network

        return build_network(self.space, arch, num_classes=self.num_classes, in_channels=self.in_channels,
                             preset=self.preset, **self.network_options)

    def count_parameters(self, model: torch.nn.Module) -> int:
        from nas_ray.evaluators.networks import parameter_count

        return parameter_count(model)

    def data(self) -> Any:
        """The ``ImageData`` (loaded on first use, kept on the instance, not pickled)."""
        cached = self.__dict__.get("_cache_data")
        if cached is None:
            from nas_ray.evaluators.datasets import load_dataset

            cached = self._cache_data = load_dataset(self.dataset, self.data_dir, val_size=self.val_size,
                                                     split_seed=self.split_seed, train_fraction=self.train_fraction)
        return cached

    def datasets(self) -> tuple[Any, Any]:
        data = self.data()
        return data.train, data.val

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if "_cache_data" in self.__dict__ and self.dataset not in DATASET_SHAPES:
            state["_cache_data"] = self._cache_data  # a user's own ImageData cannot be reloaded by name
        return state


class DigitsEvaluator(ImageTrainingEvaluator):
    """NB101 cells as small networks (stem 16 channels, 3 stacks of 1 module, 16/32/64 channels)
    trained on scikit-learn's bundled 8x8 digits: offline, a few seconds per evaluation on one core.

    The 1,797 images are split once, stratified by class (``val_size`` held out, ``split_seed``), scaled
    to [0, 1] and standardised with the training split's mean and std. 8x8 inputs need no padding: the
    two 2x2 max-pools between the three stacks give 8 -> 4 -> 2 before global average pooling.

    With the default ``TrainingConfig`` (8 epochs, SGD 0.05 + cosine, batch 64, one thread) one
    evaluation takes 1.5-5.5 s on one core of a 2-core CPU (a fresh worker adds ~4 s of torch and
    scikit-learn imports); random cells reach 93-99 % validation accuracy, the trivial cell
    (input -> output) 96.7 %, and two training seeds rank 12 random cells with Spearman 0.82.

    >>> ev = DigitsEvaluator(epochs=8)
    >>> ev.evaluate(ev.space.sample(0))["val_accuracy"]  # doctest: +SKIP
    97.2
    """

    def __init__(
        self,
        config: TrainingConfig | None = None,
        *,
        stem_channels: int = 16,
        num_stacks: int = 3,
        modules_per_stack: int = 1,
        val_size: int = 360,
        split_seed: int = 0,
        bn_momentum: float = 0.1,
        train_fraction: float = 1.0,
        **overrides: Any,
    ) -> None:
        super().__init__(
            "digits", "nasbench101", config, preset="small", val_size=val_size, split_seed=split_seed,
            train_fraction=train_fraction, stem_channels=stem_channels, num_stacks=num_stacks,
            modules_per_stack=modules_per_stack, bn_momentum=bn_momentum, **overrides,
        )
        self.stem_channels = stem_channels
        self.num_stacks = num_stacks
        self.modules_per_stack = modules_per_stack
        self.bn_momentum = bn_momentum


def digits_tensors(val_size: int = 360, split_seed: int = 0) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """scikit-learn's digits as ``((x_train, y_train), (x_val, y_val))``: float32 ``(N, 1, 8, 8)``
    images standardised by the training split, int64 labels; a stratified split. The training and
    validation pairs of ``nas_ray.evaluators.datasets.load_dataset("digits", ...)``."""
    from nas_ray.evaluators.datasets import load_dataset

    data = load_dataset("digits", val_size=val_size, split_seed=split_seed)
    return data.train, data.val


def _length(data: Any) -> int:
    return len(data[1]) if isinstance(data, tuple) else len(data)


def _cpu_copy(obj: Any) -> Any:
    """A snapshot of a (nested) state dict with every tensor cloned to the CPU: training goes on
    changing the live tensors, and CPU tensors load anywhere."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj

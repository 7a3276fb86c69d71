"""An evaluator that predicts instead of measuring: a trained performance predictor (``nas-ray
train-predictor``) scores architectures in milliseconds.

Its numbers are predictions, and every result says so: ``evaluate`` returns ``"surrogate": 1.0``
beside the prediction, and ``describe()`` names the checkpoint ("predicted by ..., not measured").
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas_ray.errors import InvalidArchitecture
from nas_ray.evaluators.base import Evaluator
from nas_ray.graph import Architecture
from nas_ray.spaces import SearchSpace


class SurrogateEvaluator(Evaluator):
    """Scores = a performance predictor's output.

    ``evaluate(arch)`` returns ``{"reward": p, "predicted_accuracy": p, "surrogate": 1.0}`` where ``p`` is
    the prediction in the units of the target the predictor was trained on (e.g. NB201's ``c10_val12``
    in percent); an architecture outside the space raises ``InvalidArchitecture``, as the other
    evaluators do. ``space`` (optional) must be the checkpoint's space.

    >>> ev = SurrogateEvaluator("pred.pt")  # doctest: +SKIP
    >>> ev.evaluate(ev.space.sample(np.random.default_rng(0)))  # doctest: +SKIP
    {'reward': 71.3, 'predicted_accuracy': 71.3, 'surrogate': 1.0}
    """

    metric = "reward"

    def __init__(self, checkpoint: str | os.PathLike[str], *, space: SearchSpace | None = None, device: str = "cpu") -> None:
        from nas_ray.models.predictor import load_predictor

        self.checkpoint = Path(checkpoint)
        self.model, self.space, ckpt = load_predictor(self.checkpoint, space, device=device)
        info = ckpt.get("info", {})
        self.mode = info.get("mode", "max") if info.get("mode") in ("max", "min") else "max"
        self.target = info.get("target")
        self.info = {"model": ckpt["model"], "vae_weight": ckpt["config"].get("vae_weight"),
                     "num_train": ckpt["config"].get("num_train"), "target": self.target, "table": info.get("table"),
                     "test_metrics": info.get("test_metrics")}

    def _prepare(self, arch: Architecture) -> Architecture:
        if isinstance(arch, Mapping):
            arch = Architecture.from_dict(arch)
        if not isinstance(arch, Architecture):
            raise InvalidArchitecture(f"{self.space.name}: expected an Architecture, got {type(arch).__name__}")
        return self.space.canonicalize(arch)  # validates: InvalidArchitecture with the space's message

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Predictions for many architectures at once (each validated)."""
        with torch.no_grad():
            return self.model.predict([self._prepare(a) for a in archs])

    def evaluate(self, arch: Architecture) -> dict[str, float]:
        p = float(self.predict([arch])[0])
        return {"reward": p, "predicted_accuracy": p, "surrogate": 1.0}

    def describe(self) -> dict[str, Any]:
        target = f" {self.target}" if self.target else ""
        return {**super().describe(), "checkpoint": str(self.checkpoint),
                "note": f"predicted{target} by {self.checkpoint}, not measured", **self.info}

"""Subnormal floats flushed to zero inside training and decoding, and the mode restored after."""

from __future__ import annotations

import numpy as np
import torch

from nas_ray import get_space
from nas_ray.models.numerics import denormals_flushed, flush_denormals
from nas_ray.models.vae_training import PretrainConfig, pretrain
from nas_ray.searchers.graphpnas import _threads

SUBNORMAL = torch.finfo(torch.float32).tiny / 4  # about 2.9e-39


def _product() -> float:
    return (torch.tensor([SUBNORMAL]) * 1.0).item()


def test_flush_denormals_turns_flushing_on_and_restores_the_mode() -> None:
    assert not denormals_flushed() and _product() > 0
    with flush_denormals() as on:
        assert on and denormals_flushed() and _product() == 0.0
        with flush_denormals():  # nested: the outer block's mode survives the inner one
            pass
        assert denormals_flushed()
    assert not denormals_flushed() and _product() > 0
    with flush_denormals(enabled=False) as on:
        assert on is False and _product() > 0


def test_flush_denormals_restores_the_mode_after_an_error() -> None:
    try:
        with flush_denormals():
            raise KeyError("boom")
    except KeyError:
        pass
    assert not denormals_flushed()


def test_a_caller_that_flushes_keeps_flushing() -> None:
    torch.set_flush_denormal(True)
    try:
        with flush_denormals():
            pass
        assert denormals_flushed()
    finally:
        torch.set_flush_denormal(False)


def test_pretraining_and_searcher_model_work_flush_subnormals() -> None:
    space = get_space("nasbench201")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(8)]
    seen = []
    config = PretrainConfig(model="svge", epochs=1, batch_size=4, model_options={"node_dim": 8, "latent_dim": 2})
    pretrain(space, archs, config, progress=False, callback=lambda row: seen.append(denormals_flushed()))
    assert seen == [True] and not denormals_flushed()
    with _threads(1):
        assert denormals_flushed()
    assert not denormals_flushed()

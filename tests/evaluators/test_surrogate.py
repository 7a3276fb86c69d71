"""The surrogate evaluator: ``surrogate:<checkpoint>`` returns the predictor's output, labelled as a
prediction, and follows the Evaluator contract."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from nas_ray import get_space
from nas_ray.errors import CheckpointError, InvalidArchitecture, UnknownName
from nas_ray.evaluators.base import Evaluator
from nas_ray.evaluators.specs import get_evaluator
from nas_ray.evaluators.surrogate import SurrogateEvaluator
from nas_ray.models.predictor import fit_predictor, save_predictor


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model: one thread is faster on a shared machine
    space = get_space("nasbench201")
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(32)]
    y = np.array([70 + 5 * sum(op == "nor_conv_3x3" for op in a.ops) for a in archs], dtype=float)
    result = fit_predictor(space, archs, y, model_options={"latent_dim": 4, "node_dim": 8}, epochs=1, progress=False)
    path = tmp_path_factory.mktemp("surrogate") / "pred.pt"
    save_predictor(path, result, info={"target": "c10_val12", "table": "nasbench201", "mode": "max"})
    yield path, result.model, archs
    torch.set_num_threads(before)


def test_spec_returns_the_labelled_prediction(checkpoint) -> None:
    path, model, archs = checkpoint
    ev = get_evaluator(f"surrogate:{path}")
    assert isinstance(ev, SurrogateEvaluator) and isinstance(ev, Evaluator)
    assert ev.space.name == "nasbench201" and ev.metric == "reward" and ev.mode == "max" and ev.max_steps == 1
    assert ev.resources == {"cpu": 1.0, "gpu": 0.0}
    expected = model.predict(archs[:5])
    for arch, p in zip(archs[:5], expected):
        out = ev.evaluate(arch)
        assert out == {"reward": pytest.approx(p, abs=1e-6), "predicted_accuracy": out["reward"], "surrogate": 1.0}
    assert ev(archs[0]) == ev.evaluate(archs[0])
    assert [s.metrics for s in ev.iterate(archs[0])] == [ev.evaluate(archs[0])]
    assert ev.evaluate(archs[0].to_dict())["reward"] == ev.evaluate(archs[0])["reward"]
    np.testing.assert_allclose(ev.predict(archs[:5]), expected, atol=1e-6)
    info = ev.describe()
    assert info["evaluator"] == "SurrogateEvaluator" and info["metric"] == "reward" and info["checkpoint"] == str(path)
    assert info["note"] == f"predicted c10_val12 by {path}, not measured" and info["target"] == "c10_val12"
    # survives pickling (Ray ships evaluators to workers)
    assert pickle.loads(pickle.dumps(ev)).evaluate(archs[1]) == ev.evaluate(archs[1])


def test_invalid_architectures_and_bad_checkpoints(checkpoint, tmp_path) -> None:
    path, _, _ = checkpoint
    ev = SurrogateEvaluator(path)
    other = get_space("nasbench101").sample(np.random.default_rng(0))
    with pytest.raises(InvalidArchitecture):
        ev.evaluate(other)
    with pytest.raises(InvalidArchitecture, match="expected an Architecture"):
        ev.evaluate("not an architecture")
    with pytest.raises(CheckpointError, match="no such"):
        get_evaluator(f"surrogate:{tmp_path / 'missing.pt'}")
    with pytest.raises(CheckpointError, match="not nasbench101"):
        SurrogateEvaluator(path, space=get_space("nasbench101"))
    with pytest.raises(UnknownName, match="surrogate:PREDICTOR.pt"):
        get_evaluator("surrogate")

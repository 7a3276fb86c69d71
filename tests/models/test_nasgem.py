"""NASGEM's kernel-guided encoder, its features and its score predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_ray import Architecture, get_space
from nas_ray.errors import CheckpointError
from nas_ray.models.nasgem import (
    AdjacencyFeatures,
    EncoderConfig,
    KernelGuidedEncoder,
    ScorePredictor,
    embed,
    fit_scores,
    load_encoder,
    make_pairs,
    predict_scores,
    train_encoder,
)
from nas_ray.models.wl_kernel import WLKernel


@pytest.fixture(autouse=True)
def one_thread():  # noqa: ANN201 - small models: one thread is faster and leaves the other core free
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_features_layout() -> None:
    space = get_space("nasbench201")
    feats = AdjacencyFeatures(space)
    assert feats.dim == 28 + 8 * 7
    arch = space.sample(0)
    x = feats([arch])[0]
    rows, cols = np.triu_indices(8, 1)
    np.testing.assert_array_equal(x[:28], arch.matrix[rows, cols])
    onehot = x[28:].reshape(8, 7)
    assert (onehot.sum(1) == 1).all()
    assert [space.node_types[i] for i in onehot.argmax(1)] == list(arch.ops)


def test_features_pad_smaller_cells_and_reject_unknown_ops() -> None:
    space = get_space("nasbench101")
    feats = AdjacencyFeatures(space)
    small = Architecture(["input", "conv3x3-bn-relu", "output"], np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]))
    x = feats([small])[0]
    onehot = x[feats.num_edges:].reshape(7, -1)
    assert onehot[:3].sum() == 3 and onehot[3:].sum() == 0  # padding nodes have no op
    assert x[: feats.num_edges].sum() == 2
    bad = Architecture(["input", "conv9x9", "output"], np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]))
    with pytest.raises(ValueError, match="unknown op 'conv9x9'"):
        feats([bad])


@pytest.mark.parametrize(("field", "value", "message"), [("pairs", 0, "pairs must be >= 1"),
                                                          ("mutation_pairs", 1.5, "mutation_pairs must be in"),
                                                          ("wl_iterations", -1, "wl_iterations")])
def test_config_validation(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncoderConfig(**{field: value})
    with pytest.raises(ValueError, match="unknown NASGEM encoder option"):
        EncoderConfig.from_dict({"pair": 3})


def test_pairs_have_equal_sizes_and_wl_targets() -> None:
    space = get_space("nasbench101")
    config = EncoderConfig(graphs=150, pairs=200, seed=1)
    data = make_pairs(space, config)
    assert data.a.shape == data.b.shape == (200, AdjacencyFeatures(space).dim)
    assert ((data.similarity >= 0) & (data.similarity <= 1)).all()
    # every pair's graphs have the same node count: the same number of one-hot rows set
    feats = AdjacencyFeatures(space)
    size = lambda x: x[:, feats.num_edges:].sum(1)  # noqa: E731
    np.testing.assert_array_equal(size(data.a), size(data.b))
    assert (data.similarity > 0.4).mean() > 0.1  # mutation pairs cover the similar end


def test_kernel_guidance_makes_cosine_track_the_wl_kernel() -> None:
    """On held-out pairs, embedding cosines follow the WL kernel better than those of an unguided
    autoencoder (same network, data and steps)."""
    space = get_space("nasbench201")
    config = EncoderConfig(graphs=3000, pairs=4000, iterations=250, batch_size=128, seed=0)
    data = make_pairs(space, config)
    held = make_pairs(space, EncoderConfig(graphs=3000, pairs=1000, seed=5))
    guided = train_encoder(space, config, pairs=data, progress=False)
    plain = train_encoder(space, EncoderConfig(**{**config.__dict__, "similarity_weight": 0.0}), pairs=data, progress=False)

    def fit(model: KernelGuidedEncoder) -> tuple[float, float]:
        cos = (embed(model, held.a) * embed(model, held.b)).sum(1)
        return float(np.corrcoef(cos, held.similarity)[0, 1]), float(np.sqrt(((cos - held.similarity) ** 2).mean()))

    (r_guided, rmse_guided), (r_plain, rmse_plain) = fit(guided.model), fit(plain.model)
    assert r_guided > r_plain and r_guided > 0.7
    assert rmse_guided < rmse_plain - 0.03
    assert guided.history[-1]["similarity_rmse"] < guided.history[0]["similarity_rmse"]
    # sanity of the targets themselves: the WL kernel of a pair, recomputed
    rng = np.random.default_rng(3)
    a, b = space.sample(rng), space.sample(rng)
    assert WLKernel(3).pairs([a], [b])[0] == pytest.approx(WLKernel(3).gram([a, b])[0, 1])


def test_checkpoint_round_trip_and_errors(tmp_path) -> None:  # noqa: ANN001
    space = get_space("nasbench201")
    result = train_encoder(space, EncoderConfig(graphs=100, pairs=100, iterations=5, batch_size=16),
                           checkpoint=tmp_path / "enc.pt", progress=False)
    model, loaded_space, ckpt = load_encoder(tmp_path / "enc.pt")
    assert loaded_space.name == "nasbench201" and ckpt["config"]["iterations"] == 5
    x = AdjacencyFeatures(space)([space.sample(i) for i in range(5)])
    np.testing.assert_allclose(embed(model, x), embed(result.model, x), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(embed(model, x), axis=1), 1.0, atol=1e-5)
    assert not any(p.requires_grad for p in model.parameters())  # frozen
    with pytest.raises(CheckpointError, match="trained on space nasbench201"):
        load_encoder(tmp_path / "enc.pt", space=get_space("nasbench101"))
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a NASGEM encoder checkpoint"):
        load_encoder(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no such NASGEM encoder file"):
        load_encoder(tmp_path / "missing.pt")


def test_score_predictor_fits_and_fine_tunes() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    y = np.stack([x[:, 0] - 0.5 * x[:, 1], x[:, 2] ** 2], axis=1)
    y = (y - y.mean(0)) / y.std(0)
    torch.manual_seed(0)
    net = ScorePredictor(8, outputs=2)
    before = ((predict_scores(net, x) - y) ** 2).mean()
    opt = fit_scores(net, x, y, steps=300, seed=0)
    mid = ((predict_scores(net, x) - y) ** 2).mean()
    fit_scores(net, x, y, steps=300, seed=1, optimizer=opt)
    after = ((predict_scores(net, x) - y) ** 2).mean()
    assert predict_scores(net, x).shape == (200, 2)
    assert after < mid < before and after < 0.2

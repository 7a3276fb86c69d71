"""Performance predictor (VS-GAE §2.5, SVGe §3.4): it learns a structured target, is deterministic,
round-trips through its checkpoint, refuses wrong checkpoints, starts from a pretrained VAE, splits by
cell size, and trains from the CLI on the NB101 sample."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from nas_ray import get_space
from nas_ray.errors import CheckpointError
from nas_ray.models.predictor import (
    PerformancePredictor,
    fit_predictor,
    load_predictor,
    predictor_metrics,
    save_predictor,
    split_by_size,
)
from nas_ray.models.vae_training import PretrainConfig, pretrain

TINY = {"latent_dim": 8, "node_dim": 16}
CONVS = ("nor_conv_1x1", "nor_conv_3x3")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def nb201():
    """Distinct NB201 cells labelled with their number of convolutions (0..6)."""
    space = get_space("nasbench201")
    rng = np.random.default_rng(0)
    seen, archs = set(), []
    while len(archs) < 400:
        a = space.sample(rng)
        if space.hash(a) not in seen:
            seen.add(space.hash(a))
            archs.append(a)
    y = np.array([sum(op in CONVS for op in a.ops) for a in archs], dtype=float)
    return space, archs, y


def tiny_fit(space, archs, y, **kwargs):
    options = {"model_options": TINY, "epochs": 2, "progress": False, **kwargs}
    return fit_predictor(space, archs, y, **options)


def test_learns_the_number_of_convolutions(nb201) -> None:
    space, archs, y = nb201
    train, val, test = slice(0, 250), slice(250, 300), slice(300, 400)
    result = tiny_fit(space, archs[train], y[train], epochs=25, lr=3e-3, batch_size=32, val_archs=archs[val], val_y=y[val])
    m = predictor_metrics(result.model, archs[test], y[test])
    mean_rmse = float(np.sqrt(np.mean((y[test] - y[train].mean()) ** 2)))
    assert m["n"] == 100 and m["rmse"] < 0.3 * mean_rmse, (m, mean_rmse)
    assert m["kendall_tau"] > 0.8 and m["pearson"] > 0.9
    # history and best-validation weights
    assert [h["epoch"] for h in result.history] == list(range(1, 26))
    best = min(result.history, key=lambda h: h["val_rmse"])
    assert result.best_epoch == best["epoch"]
    pred = result.model.predict(archs[val])
    assert np.sqrt(np.mean((pred - y[val]) ** 2)) == pytest.approx(best["val_rmse"], rel=1e-5)
    # predictions are in the original units (the training mean is about 2.4 convolutions, std about 1.2)
    assert float(result.model.y_mean) == pytest.approx(y[train].mean(), rel=1e-5)
    assert abs(pred.mean() - y[val].mean()) < 0.5


def test_vae_weight_adds_the_vae_loss(nb201) -> None:
    space, archs, y = nb201
    plain = tiny_fit(space, archs[:48], y[:48], epochs=1)
    joint = tiny_fit(space, archs[:48], y[:48], epochs=1, vae_weight=0.1)
    assert plain.history[0]["vae"] == 0.0 and joint.history[0]["vae"] > 0
    assert joint.history[0]["loss"] == pytest.approx(0.9 * joint.history[0]["mse"] + 0.1 * joint.history[0]["vae"], rel=1e-4)
    with pytest.raises(ValueError, match="vae_weight"):
        tiny_fit(space, archs[:8], y[:8], vae_weight=1.5)
    with pytest.raises(ValueError, match="targets for"):
        tiny_fit(space, archs[:8], y[:7])


def test_deterministic_for_a_seed(nb201) -> None:
    space, archs, y = nb201
    a = tiny_fit(space, archs[:64], y[:64], seed=3, vae_weight=0.1, batch_size=16)
    b = tiny_fit(space, archs[:64], y[:64], seed=3, vae_weight=0.1, batch_size=16)
    c = tiny_fit(space, archs[:64], y[:64], seed=4, vae_weight=0.1, batch_size=16)
    pa, pb, pc = (r.model.predict(archs[64:96]) for r in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert not np.allclose(pa, pc)


def test_save_load_round_trip_and_errors(nb201, tmp_path) -> None:
    space, archs, y = nb201
    result = tiny_fit(space, archs[:32], y[:32], model="dvae", model_options={"latent_dim": 6, "hidden_dim": 12})
    path = save_predictor(tmp_path / "pred.pt", result, info={"target": "convs"})
    net, loaded_space, ckpt = load_predictor(path, space)
    assert isinstance(net, PerformancePredictor) and loaded_space.name == "nasbench201" and not net.training
    assert ckpt["format"] == "nas-ray-predictor" and ckpt["model"] == "dvae" and ckpt["info"]["target"] == "convs"
    np.testing.assert_array_equal(net.predict(archs[32:64]), result.model.predict(archs[32:64]))
    assert torch.load(path, weights_only=True)["best_epoch"] == 2  # a plain dict

    with pytest.raises(CheckpointError, match="no such"):
        load_predictor(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_predictor(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a nas-ray performance-predictor"):
        load_predictor(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="trained on space nasbench201, not nasbench101"):
        load_predictor(path, get_space("nasbench101"))
    vae = tmp_path / "vae.pt"
    pretrain(space, archs[:16], PretrainConfig(model="svge", epochs=1, model_options=TINY), checkpoint=vae, progress=False)
    with pytest.raises(CheckpointError, match="graph-VAE checkpoint, not a performance predictor"):
        load_predictor(vae)


def test_starts_from_a_pretrained_vae(nb201, tmp_path) -> None:
    space, archs, y = nb201
    vae = tmp_path / "vae.pt"
    pre = pretrain(space, archs[:32], PretrainConfig(model="svge-triplet", epochs=1, model_options=TINY), checkpoint=vae, progress=False)
    result = fit_predictor(space, archs[:32], y[:32], init=vae, epochs=1, lr=1e-12, progress=False)
    assert result.config["model"] == "svge-triplet" and result.config["init"] == str(vae)
    for name, value in pre.model.state_dict().items():
        torch.testing.assert_close(result.model.vae.state_dict()[name], value, atol=1e-6, rtol=0)
    with pytest.raises(CheckpointError, match="not dvae"):
        fit_predictor(space, archs[:8], y[:8], init=vae, model="dvae", epochs=1, progress=False)
    with pytest.raises(CheckpointError, match="not nasbench101"):
        fit_predictor(get_space("nasbench101"), [get_space("nasbench101").sample(np.random.default_rng(0))], [1.0], init=vae,
                      epochs=1, progress=False)
    with pytest.raises(ValueError, match="model_options"):
        fit_predictor(space, archs[:8], y[:8], init=vae, model_options=TINY, epochs=1, progress=False)


def test_split_by_size() -> None:
    space = get_space("nasbench101")
    rng = np.random.default_rng(0)
    archs = [space.canonicalize(space.sample(rng)) for _ in range(60)]
    sizes = [a.num_nodes for a in archs]
    big, bigger = sorted(set(sizes))[-2:]
    train, test = split_by_size(archs, big)
    assert sorted(train + test) == list(range(60))
    assert {sizes[i] for i in test} == {big} and big not in {sizes[i] for i in train}
    train, test = split_by_size(archs, [big, bigger])
    assert {sizes[i] for i in test} == {big, bigger}
    with pytest.raises(ValueError, match="no architecture has 9 nodes"):
        split_by_size(archs, 9)
    with pytest.raises(ValueError, match="nothing is left to train on"):
        split_by_size(archs, set(sizes))


def test_cli_zero_shot_on_the_nb101_sample(data_dir, tmp_path, capsys) -> None:
    from nas_ray.cli import main

    out, js = tmp_path / "p.pt", tmp_path / "p.json"
    argv = ["train-predictor", "--space", "nasbench101", "--evaluator", "table:nasbench101-subset", "--data-dir", str(data_dir),
            "--test-sizes", "6", "--epochs", "1", "--latent-dim", "4", "--hidden-dim", "8", "--quiet", "--out", str(out),
            "--json", str(js)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert re.search(r"is small \(\d+ distinct architectures\)", text) and "Kendall tau" in text and f"surrogate:{out}" in text
    info = json.loads(js.read_text())["info"]
    assert info["test_sizes"] == [6] and info["num_train"] + info["num_val"] + info["num_test"] == info["table_rows"]
    net, space, ckpt = load_predictor(out)
    assert space.name == "nasbench101" and ckpt["info"]["target"] == "val_acc_108ep_1seed"
    assert main(argv) == 2  # --out exists
    assert "exists" in capsys.readouterr().err

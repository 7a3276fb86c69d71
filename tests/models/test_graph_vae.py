"""The graph-VAE codec, D-VAE / DVAE-EMB, pretraining and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas_ray import Architecture, get_space
from nas_ray.errors import CheckpointError, UnknownName
from nas_ray.models.dvae import DVAE, DVAEEmb
from nas_ray.models.graph_vae import GraphCodec, graph_key, is_valid_dag
from nas_ray.models.vae_training import PretrainConfig, load_checkpoint, load_model, pretrain, space_graphs

TINY = {"hidden_dim": 16, "latent_dim": 4}


@pytest.fixture(autouse=True)
def one_thread():  # noqa: ANN201 - small models: one thread is faster and steadier than two
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def nb101():
    space = get_space("nasbench101")
    rng = np.random.default_rng(0)
    # pruned cells: D-VAE's validity (which the codec applies) has no dangling vertices
    return space, GraphCodec(space), [space.canonicalize(space.sample(rng)) for _ in range(12)]


def test_codec_round_trip_and_validity(nb101) -> None:  # noqa: ANN001
    space, codec, archs = nb101
    batch = codec.batch(archs)
    assert batch.types.shape == (12, 7) and batch.adj.shape == (12, 7, 7)
    for i, arch in enumerate(archs):
        n = int(batch.num_nodes[i])
        assert n == arch.num_nodes and (batch.types[i, n:] == -1).all()
        back = codec.to_arch(batch.types[i, :n].numpy(), batch.adj[i, :n, :n].numpy().astype(np.int8))
        assert back == arch
    # D-VAE's is_valid_DAG: a vertex other than the input without in-edges is invalid
    types = np.array([0, 1, 4])
    assert is_valid_dag(types, np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), 5)
    assert not is_valid_dag(types, np.array([[0, 0, 1], [0, 0, 1], [0, 0, 0]]), 5)
    assert not is_valid_dag(np.array([0, 4, 4]), np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]), 5)  # two outputs
    assert graph_key(types, np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]])) != graph_key(types, np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]]))


@pytest.mark.parametrize("cls", [DVAE, DVAEEmb])
def test_padding_does_not_change_a_graph(cls, nb101) -> None:  # noqa: ANN001
    _, codec, archs = nb101
    torch.manual_seed(0)
    model = cls(codec.num_types, codec.max_nodes, **TINY).eval()
    batch = codec.batch(archs)
    mu, logvar = model.encode(batch)
    z = torch.randn(len(archs), 4)
    nll = model.reconstruction_nll(batch, z)
    for i in (0, 5, 11):
        one = codec.batch([archs[i]])
        m1, l1 = model.encode(one)
        assert torch.allclose(m1[0], mu[i], atol=1e-5) and torch.allclose(l1[0], logvar[i], atol=1e-5)
        assert torch.allclose(model.reconstruction_nll(one, z[i:i + 1])[0], nll[i], atol=1e-4)


def test_decoder_structure_and_reproducible_sampling() -> None:
    space = get_space("enas-macro")
    codec = GraphCodec(space)
    torch.manual_seed(1)
    model = DVAE(codec.num_types, codec.max_nodes, **TINY).eval()
    z = torch.randn(200, 4)
    a = model.decode(z, generator=torch.Generator().manual_seed(3))
    b = model.decode(z, generator=torch.Generator().manual_seed(3))
    c = model.decode(z, generator=torch.Generator().manual_seed(4))
    assert [graph_key(*g) for g in a] == [graph_key(*g) for g in b] != [graph_key(*g) for g in c]
    for types, adj in a:
        n = len(types)
        assert adj.shape == (n, n) and not np.tril(adj).any()
        assert types[0] == 0 and types[-1] == codec.output_type  # the output closes every graph
        assert (adj[:-1].sum(1) > 0).all()  # it takes every loose end
    # eval mode: the "sample" is the mean (the code's behaviour); training mode adds 0.01-scaled noise
    mu, logvar = torch.zeros(3, 4), torch.zeros(3, 4)
    assert torch.equal(model.reparameterize(mu, logvar), mu)
    model.train()
    noise = model.reparameterize(mu, logvar) - mu
    assert 0 < noise.abs().max() < 0.1


@pytest.mark.parametrize("cls", [DVAE])  # DVAE-EMB differs only in its input embedding (covered above)
def test_overfits_a_few_graphs(cls) -> None:  # noqa: ANN001
    space = get_space("enas-macro")
    codec = GraphCodec(space)
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(8)]
    torch.manual_seed(0)
    model = cls(codec.num_types, codec.max_nodes, latent_dim=8, hidden_dim=32)
    batch = codec.batch(archs)
    opt = torch.optim.Adam(model.parameters(), 5e-3)
    for _ in range(150):
        model.train()
        loss = model.loss(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    decoded = model.decode(model.encode(batch)[0], stochastic=False)
    assert [codec.to_arch(*g) for g in decoded] == archs


def test_pretrain_resume_is_exact_and_iterations_carry_the_embedding(tmp_path) -> None:  # noqa: ANN001
    space = get_space("nasbench201")
    archs = space_graphs(space)[:96]
    config = PretrainConfig(model="dvae-emb", epochs=2, iterations=2, batch_size=32, model_options=TINY)
    full = pretrain(space, archs, config, checkpoint=tmp_path / "full.pt", progress=False)
    assert [(h["iteration"], h["epoch"]) for h in full.history] == [(0, 1), (0, 2), (1, 1), (1, 2)]

    class Stop(Exception):
        pass

    def stop_after(n):  # noqa: ANN001, ANN202
        seen = []

        def callback(row):  # noqa: ANN001, ANN202
            seen.append(row)
            if len(seen) == n:
                raise Stop

        return callback

    for n in (1, 2):  # interrupted inside the first iteration, and exactly at its end
        path = tmp_path / f"cut{n}.pt"
        with pytest.raises(Stop):
            pretrain(space, archs, config, checkpoint=path, progress=False, callback=stop_after(n))
        resumed = pretrain(space, archs, config, checkpoint=path, resume=True, progress=False)
        for key, value in full.model.state_dict().items():
            assert torch.equal(value, resumed.model.state_dict()[key]), key
    # the second iteration started from fresh weights but the first iteration's embedding
    torch.manual_seed(0)
    first = pretrain(space, archs, PretrainConfig(model="dvae-emb", epochs=2, iterations=1, batch_size=32, model_options=TINY),
                     progress=False).model
    second = pretrain(space, archs, config, progress=False).model
    assert not torch.equal(first.gru_forward.weight_ih, second.gru_forward.weight_ih)
    ckpt = load_checkpoint(tmp_path / "full.pt")
    assert "latents" in ckpt and ckpt["latents"]["min"].shape == (4,)


def test_checkpoint_errors(tmp_path) -> None:  # noqa: ANN001
    space = get_space("nasbench201")
    archs = space_graphs(space)[:40]
    path = tmp_path / "m.pt"
    pretrain(space, archs, PretrainConfig(model="dvae", epochs=1, model_options=TINY), checkpoint=path, progress=False)
    model, got_space, ckpt = load_model(path)
    assert isinstance(model, DVAE) and got_space.name == "nasbench201" and not model.training
    with pytest.raises(CheckpointError, match=r"trained on space nasbench201, not enas-macro \{'num_layers': 6\}"):
        load_model(path, space=get_space("enas-macro"))
    with pytest.raises(CheckpointError, match="holds a dvae model, not svge"):
        load_model(path, model="svge")
    with pytest.raises(CheckpointError, match="latent size is 4, not 56"):
        load_model(path, latent_dim=56)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable nas-ray checkpoint"):
        load_model(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a nas-ray graph-VAE checkpoint"):
        load_model(other)
    with pytest.raises(CheckpointError, match="other settings"):
        pretrain(space, archs, PretrainConfig(model="dvae", epochs=2, model_options=TINY), checkpoint=path, resume=True, progress=False)
    with pytest.raises(UnknownName, match="unknown graph VAE 'gvae'"):
        PretrainConfig(model="gvae")
    assert Architecture.from_dict(archs[0].to_dict()) == archs[0]


def test_svge_triplet_pretraining_uses_edit_distance_triplets() -> None:
    space = get_space("enas-macro")
    rng = np.random.default_rng(0)
    base = [space.sample(rng) for _ in range(16)]
    archs = base + [space.mutate(a, rng) for a in base]  # one edit away: positives exist (epsilon = 2)
    config = PretrainConfig(model="svge-triplet", epochs=2, triplet_fraction=0.5, model_options={"node_dim": 16, "latent_dim": 4})
    history = pretrain(space, archs, config, progress=False).history
    assert all(h["triplet"] > 0 for h in history)
    plain = pretrain(space, archs, PretrainConfig(model="svge", epochs=1, model_options={"node_dim": 16, "latent_dim": 4}), progress=False)
    assert plain.history[0]["triplet"] == 0.0


def _reference_nll(model: DVAE, batch, z: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    """D-VAE's teacher-forced likelihood written as the published decoder runs it: one GRU call after
    every edge decision, the new vertex's state recomputed from its current predecessors."""
    types, adj = batch.types, batch.adj
    b, n = types.shape
    x = model._x(types)
    nll = z.new_zeros(b)
    states = [model.gru_decoder(x[:, 0], torch.tanh(model.fc_init(z)))]
    for v in range(1, n):
        active = (batch.num_nodes > v).to(z.dtype)
        nll = nll + active * torch.nn.functional.cross_entropy(model.add_vertex(states[v - 1]), types[:, v].clamp(min=0), reduction="none")
        h_in = z.new_zeros(b, model.hidden_dim)
        h_new = model.gru_decoder(x[:, v], h_in)
        for vi in range(v - 1, -1, -1):
            score = model.add_edge(torch.cat([states[vi], h_new], -1)).squeeze(-1)
            nll = nll + active * torch.nn.functional.binary_cross_entropy_with_logits(score, adj[:, vi, v], reduction="none")
            ids = model._ids[vi].expand(b, -1)
            message = torch.sigmoid(model.gate_forward(torch.cat([states[vi], ids], -1))) * model.mapper_forward(torch.cat([states[vi], ids], -1))
            h_in = h_in + adj[:, vi, v, None] * message
            h_new = model.gru_decoder(x[:, v], h_in)
        states.append(h_new)
    return nll


@pytest.mark.parametrize("space_name", ["enas-macro", "nasbench101"])
@pytest.mark.parametrize("cls", [DVAE, DVAEEmb])
def test_bulk_teacher_forcing_equals_the_step_by_step_decoder(cls, space_name) -> None:  # noqa: ANN001
    space = get_space(space_name)
    codec = GraphCodec(space)
    rng = np.random.default_rng(3)
    archs = [space.canonicalize(space.sample(rng)) for _ in range(16)]
    batch = codec.batch(archs)
    torch.manual_seed(0)
    model = cls(codec.num_types, codec.max_nodes, **TINY)
    z = torch.randn(len(archs), 4)
    fast, slow = model.reconstruction_nll(batch, z), _reference_nll(model, batch, z)
    assert torch.allclose(fast, slow, atol=1e-4), (fast - slow).abs().max()
    grads = torch.autograd.grad(fast.sum(), model.fc_init.weight)[0], torch.autograd.grad(slow.sum(), model.fc_init.weight)[0]
    assert torch.allclose(*grads, atol=1e-4)


def test_recipes_and_their_checkpoints(tmp_path) -> None:  # noqa: ANN001
    fast, paper = PretrainConfig(model="dvae-emb"), PretrainConfig(model="dvae-emb", recipe="paper")
    assert (fast.lr, fast.epochs, fast.schedule, fast.reduction, fast.resolved_iterations()) == (1e-3, 20, "cosine", "mean", 1)
    assert (paper.lr, paper.epochs, paper.schedule, paper.reduction, paper.grad_clip, paper.resolved_iterations()) == \
        (1e-4, 300, "plateau", "code", 0.0, 4)
    assert PretrainConfig(model="svge", recipe="paper").resolved_batch_size(get_space("nasbench201")) == 128
    assert PretrainConfig(model="dvae", recipe="paper", lr=3e-4).lr == 3e-4  # an explicit field wins
    with pytest.raises(ValueError, match="unknown recipe .quick.; choose one of paper, fast"):
        PretrainConfig(recipe="quick")
    # a checkpoint of one recipe cannot be resumed with the other; one written before recipes is the paper's
    space = get_space("nasbench201")
    archs = space_graphs(space)[:40]
    path = tmp_path / "fast.pt"
    pretrain(space, archs, PretrainConfig(model="dvae", epochs=1, model_options=TINY), checkpoint=path, progress=False)
    with pytest.raises(CheckpointError, match=r"other settings.*recipe: 'fast' vs 'paper'"):
        pretrain(space, archs, PretrainConfig(model="dvae", recipe="paper", epochs=1, model_options=TINY), checkpoint=path,
                 resume=True, progress=False)
    old = {k: v for k, v in load_checkpoint(path)["config"].items() if k not in ("recipe", "schedule", "reduction", "grad_clip")}
    assert PretrainConfig.from_checkpoint({**old, "lr": 1e-4, "epochs": 300}) == PretrainConfig(model="dvae", recipe="paper",
                                                                                               model_options=TINY)


def test_the_fast_recipe_learns_faster_than_the_paper_recipe() -> None:
    """Equal steps on 512 NB201 cells: the fast recipe's reconstruction loss falls several times
    further (the benchmark vae_curves.py measures the full curves)."""
    space = get_space("nasbench201")
    archs = space_graphs(space)[::7][:512]
    drop = {}
    for recipe in ("fast", "paper"):
        config = PretrainConfig(model="svge", recipe=recipe, epochs=6, batch_size=32, model_options={"node_dim": 32, "latent_dim": 8})
        history = pretrain(space, archs, config, progress=False).history
        drop[recipe] = history[0]["recon"] - history[-1]["recon"]
    assert drop["fast"] > 4 * drop["paper"] > 0, drop


def _marginals(graphs, n: int) -> np.ndarray:  # noqa: ANN001 - (types, adj, count) triples
    types, edges, sizes, total = np.zeros((n, 16)), np.zeros((n, n)), np.zeros(n + 1), 0
    for t, a, c in graphs:
        k = len(t)
        sizes[k] += c
        types[np.arange(k), t] += c
        edges[:k, :k] += c * a.astype(float)
        total += c
    return np.concatenate([types.ravel(), edges.ravel(), sizes]) / total


@pytest.mark.parametrize("model_name", ["dvae", "svge"])
def test_counted_decoding_has_the_distribution_of_repeated_decoding(model_name) -> None:  # noqa: ANN001
    from nas_ray.models.vae_training import build_model

    space = get_space("nasbench101")
    codec = GraphCodec(space)
    torch.manual_seed(0)
    model = build_model(model_name, codec, latent_dim=4, **({"hidden_dim": 16} if model_name == "dvae" else {"node_dim": 16})).eval()
    z = torch.randn(2, 4) * 3
    n = 6000
    repeated = model.decode(z.repeat_interleave(n, 0), generator=torch.Generator().manual_seed(0))
    counted = model.decode_counts(z, n, generator=torch.Generator().manual_seed(1))
    for i in range(2):
        assert sum(c for _, _, c in counted[i]) == n
        keys = [graph_key(t, a) for t, a, _ in counted[i]]
        assert len(keys) == len(set(keys))  # one entry per distinct graph
        diff = np.abs(_marginals([(t, a, 1) for t, a in repeated[i * n:(i + 1) * n]], 7) - _marginals(counted[i], 7)).max()
        assert diff < 0.04, diff  # sampling noise at n = 6000 is about 0.01


def test_split_counts() -> None:
    from nas_ray.models.graph_vae import split_counts

    probs = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    out = split_counts(torch.tensor([100_000, 7, 3]), probs, torch.Generator().manual_seed(0))
    assert out.sum(1).tolist() == [100_000, 7, 3] and out[1].tolist() == [7, 0, 0] and out[2].tolist() == [0, 0, 3]
    assert np.allclose(out[0].numpy() / 100_000, [0.2, 0.3, 0.5], atol=0.01)

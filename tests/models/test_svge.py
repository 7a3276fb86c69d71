"""SVGe / VS-GAE: the layer's equation, the encoder's padding invariance, the teacher-forced loss
against a slow per-graph reference, decoding (reproducibility, cap, overfitting), and the triplets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nas_ray import get_space
from nas_ray.models import triplets as triplets_module
from nas_ray.models.graph_vae import PAD, GraphBatch, GraphCodec, graph_key
from nas_ray.models.svge import BidirectionalGRUConv, SVGe
from nas_ray.models.triplets import MARGIN, edit_distances, sample_triplets, triplet_loss


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: one thread is faster, and much faster on a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def nb101() -> tuple[GraphCodec, list]:
    """NB101 cells in canonical (pruned) form: sizes 2 to 7, node 0 -> node 1 always present."""
    space = get_space("nasbench101")
    rng = np.random.default_rng(0)
    return GraphCodec(space), [space.canonicalize(space.sample(rng)) for _ in range(40)]


def small_model(codec: GraphCodec, seed: int = 0, **kwargs) -> SVGe:
    torch.manual_seed(seed)
    return SVGe(codec.num_types, codec.max_nodes, latent_dim=8, node_dim=16, **kwargs)


# ---------------------------------------------------------------------------------------- model
def test_layer_equals_the_per_edge_formula() -> None:
    torch.manual_seed(0)
    layer = BidirectionalGRUConv(6)
    h = torch.randn(5, 6)
    edge_index = torch.tensor([[0, 0, 1, 2, 3, 1], [1, 2, 3, 3, 4, 4]])
    m = torch.zeros(5, 12)
    for u, v in edge_index.t().tolist():
        m[v] += layer.msg(torch.cat([h[u], h[v]]))  # forward message into v
        m[u] += layer.msg_rev(torch.cat([h[v], h[u]]))  # reverse message into u
    torch.testing.assert_close(layer(h, edge_index), layer.gru(m, h))


def test_encoder_shapes_and_padding_invariance(nb101) -> None:
    codec, archs = nb101
    model = small_model(codec).eval()
    small = min(archs, key=lambda a: a.num_nodes)
    bigger = [a for a in archs if a.num_nodes > small.num_nodes + 2][:3]
    mu, logvar = model.encode(codec.batch(bigger + [small]))
    assert mu.shape == logvar.shape == (4, 8)
    mu_alone, logvar_alone = model.encode(codec.batch([small]))
    torch.testing.assert_close(mu[-1:], mu_alone)
    torch.testing.assert_close(logvar[-1:], logvar_alone)
    # extra padding columns and junk in padded types change nothing
    b = codec.batch([small])
    n = b.max_nodes + 3
    types = torch.full((1, n), PAD, dtype=torch.long)
    types[:, : b.max_nodes] = b.types
    adj = torch.zeros(1, n, n)
    adj[:, : b.max_nodes, : b.max_nodes] = b.adj
    wide = GraphBatch(types, adj, b.num_nodes)
    torch.testing.assert_close(model.encode(wide)[0], mu_alone)
    torch.testing.assert_close(model.reconstruction_nll(wide, mu_alone), model.reconstruction_nll(b, mu_alone))
    # different graphs get different codes
    assert not torch.allclose(mu[0], mu[1])


def reference_nll(model: SVGe, types: list[int], adj: np.ndarray, z: torch.Tensor) -> torch.Tensor:
    """The decoder's loss for one graph, step by step with explicit per-edge sums (as SVGe's published code sums it)."""
    dec = model.decoder

    def gated(readout, h):
        return sum(readout.proj(h[v]) * torch.sigmoid(readout.gate(h[v])) for v in range(len(h)))

    def prop(h, k):
        for layer in dec.gnn.layers:
            m = torch.zeros(k, 2 * model.node_dim, dtype=h.dtype)
            for u in range(k):
                for v in range(k):
                    if adj[u, v]:
                        m[v] = m[v] + layer.msg(torch.cat([h[u], h[v]]))
                        m[u] = m[u] + layer.msg_rev(torch.cat([h[v], h[u]]))
            h = layer.gru(m, h)
        return h

    emb = dec.type_embedding.weight
    h = dec.start(torch.cat([emb[0], z]))[None]
    total = torch.zeros((), dtype=z.dtype)
    for k in range(1, len(types)):
        if k == 1:
            h_G, h_G_init = dec.readout.proj(h[0]), dec.readout_init.proj(h[0])
        else:
            h = prop(h, k)
            h_G, h_G_init = gated(dec.readout, h), gated(dec.readout_init, h)
        ce = -torch.log_softmax(dec.add_node(torch.cat([h_G, z])), -1)[types[k]]
        h_new = dec.init_node(torch.cat([emb[types[k]], h_G_init, z]))
        step = ce  # 2 (1 - a) CE with a = 1/2
        if k > 1:
            p = torch.stack([torch.sigmoid(dec.add_edges(torch.cat([h[v], h_new, h_G, z]))[0]) for v in range(k)])
            y = torch.tensor(adj[:k, k], dtype=z.dtype)
            step = ce + torch.mean(-(y * torch.log(p) + (1 - y) * torch.log(1 - p)))  # 2 (1 - a) CE + 2 a mean BCE
        total = total + step
        h = torch.cat([h, h_new[None]])
    return total


def test_reconstruction_nll_matches_the_per_graph_reference(nb101) -> None:
    codec, archs = nb101
    model = small_model(codec).double()
    chosen = sorted(archs[:6], key=lambda a: a.num_nodes)  # several sizes: masking is exercised
    batch = codec.batch(chosen)
    batch = GraphBatch(batch.types, batch.adj.double(), batch.num_nodes)
    z = torch.randn(len(chosen), 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    nll = model.reconstruction_nll(batch, z)
    assert nll.shape == (len(chosen),)
    for i in (0, len(chosen) - 1):
        expected = reference_nll(model, codec.types_of(chosen[i]), chosen[i].matrix, z[i])
        torch.testing.assert_close(nll[i], expected, rtol=1e-10, atol=1e-10)
    out = model.eval().loss(batch, beta=0.5)
    torch.testing.assert_close(out["recon"], model.reconstruction_nll(batch, out["mu"]).mean())
    torch.testing.assert_close(out["loss"], out["recon"] + 0.5 * out["kl"])


def test_decode_is_reproducible_well_formed_and_row_independent(nb101) -> None:
    codec, _ = nb101
    model = small_model(codec).eval()
    z = torch.randn(24, 8, generator=torch.Generator().manual_seed(0))
    first = model.decode(z, generator=torch.Generator().manual_seed(7))
    again = model.decode(z, generator=torch.Generator().manual_seed(7))
    other = model.decode(z, generator=torch.Generator().manual_seed(8))
    keys = [graph_key(t, a) for t, a in first]
    assert keys == [graph_key(t, a) for t, a in again]
    assert keys != [graph_key(t, a) for t, a in other]
    for types, adj in first:
        n = len(types)
        assert types.dtype == np.int64 and adj.dtype == np.int8 and adj.shape == (n, n)
        assert 2 <= n <= codec.max_nodes and types[0] == 0 and adj[0, 1] == 1
        assert not np.tril(adj).any()
        assert (types[:-1] != codec.output_type).all()  # generation stops at the first output
        assert types[-1] == codec.output_type or n == codec.max_nodes
    greedy = model.decode(z, stochastic=False)
    for i in (0, 5):
        (t, a), (t1, a1) = greedy[i], model.decode(z[i : i + 1], stochastic=False)[0]
        assert graph_key(t, a) == graph_key(t1, a1)


def test_decode_stops_at_max_nodes_without_an_output(nb101) -> None:
    codec, _ = nb101
    model = small_model(codec).eval()
    with torch.no_grad():
        model.decoder.add_node[-1].bias[codec.output_type] = -1e4  # never draw the output type
    graphs = model.decode(torch.randn(5, 8), generator=torch.Generator().manual_seed(0))
    assert all(len(t) == codec.max_nodes and codec.output_type not in t for t, _ in graphs)
    assert not any(codec.is_valid_dag(t, a) for t, a in graphs)


def test_hyperparameters_round_trip(nb101) -> None:
    codec, archs = nb101
    model = small_model(codec, num_layers=3, dropout=0.1).eval()
    hp = json.loads(json.dumps(model.hyperparameters()))
    assert hp == {"num_types": 5, "max_nodes": 7, "latent_dim": 8, "node_dim": 16, "num_layers": 3, "dropout": 0.1}
    rebuilt = SVGe(**hp).eval()
    rebuilt.load_state_dict(model.state_dict())
    batch = codec.batch(archs[:4])
    torch.testing.assert_close(rebuilt.encode(batch)[0], model.encode(batch)[0])
    assert len(model.decoder.gnn.layers) == len(model.encoder_gnn.layers) == 3


def test_overfits_sixteen_graphs(nb101) -> None:
    """Trained on 16 graphs, greedy decoding of their posterior means gives every graph back."""
    codec, archs = nb101
    archs = archs[:16]
    model = small_model(codec)
    batch = codec.batch(archs)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(200):
        opt.zero_grad()
        model.loss(batch)["loss"].backward()
        opt.step()
    model.eval()
    decoded = model.decode(model.encode(batch)[0], stochastic=False)
    assert [graph_key(t, a) for t, a in decoded] == [codec.key(a) for a in archs]
    assert all(codec.to_arch(t, a) is not None for t, a in decoded)


# ---------------------------------------------------------------------------------------- triplets
def brute_force_distance(types: np.ndarray, adj: np.ndarray, sizes: np.ndarray, i: int, j: int) -> float:
    if sizes[i] != sizes[j]:
        return np.inf
    n = sizes[i]
    labels = int((types[i, :n] != types[j, :n]).sum())
    edges = int(np.triu(adj[i, :n, :n] != adj[j, :n, :n], k=1).sum())
    return float(labels + edges)


def test_edit_distances_equal_the_brute_force(nb101) -> None:
    codec, archs = nb101
    batch = codec.batch(archs)
    types, adj, sizes = batch.types.numpy(), batch.adj.numpy(), batch.num_nodes.numpy()
    anchors = np.arange(0, len(archs), 3)
    dist = edit_distances(batch.types, batch.adj, batch.num_nodes, anchors)
    expected = np.array([[brute_force_distance(types, adj, sizes, a, j) for j in range(len(archs))] for a in anchors])
    np.testing.assert_array_equal(dist, expected)
    assert np.isfinite(dist).sum() > 2 * len(anchors) and np.isinf(dist).any()  # both cases occur
    np.testing.assert_array_equal(edit_distances(types, adj, sizes, int(anchors[1])), expected[1])  # one anchor: [M]


def enas_families(families: int = 30, steps: int = 6) -> list:
    """Random ENAS graphs, each followed by a chain of single mutations (edit distance 1 apart)."""
    space = get_space("enas-macro")
    rng = np.random.default_rng(1)
    archs = []
    for _ in range(families):
        arch = space.sample(rng)
        for _ in range(steps):
            archs.append(arch)
            arch = space.mutate(arch, rng)
    return archs


def test_triplets_respect_the_thresholds(monkeypatch) -> None:
    codec = GraphCodec(get_space("enas-macro"))
    archs = enas_families()
    batch = codec.batch(archs)
    types, adj, sizes = batch.types.numpy(), batch.adj.numpy(), batch.num_nodes.numpy()
    eps, delta = get_space("enas-macro").triplet_thresholds()
    monkeypatch.setattr(triplets_module, "_CHUNK_ELEMENTS", 2000)  # several chunks
    triplets = sample_triplets(batch.types, batch.adj, batch.num_nodes, positive_below=eps, negative_above=delta, fraction=0.5, rng=3)
    # every graph has a neighbour at distance 1 in its chain, so no anchor is dropped
    assert triplets.shape == (len(archs) // 2, 3) and triplets.dtype == np.int64
    assert len(set(triplets[:, 0])) == len(triplets)
    for a, p, n in triplets:
        assert p != a
        assert brute_force_distance(types, adj, sizes, a, p) < eps
        assert brute_force_distance(types, adj, sizes, a, n) > delta
    # reproducible, and the positives are drawn among all candidates
    again = sample_triplets(types, adj, sizes, positive_below=eps, negative_above=delta, fraction=0.5, rng=3)
    np.testing.assert_array_equal(triplets, again)
    candidates = {j for j in range(len(archs)) if j != 2 and brute_force_distance(types, adj, sizes, 2, j) < eps}
    assert {1, 3} <= candidates  # graph 2's neighbours in its chain
    chosen = set()
    for seed in range(40):
        all_anchors = sample_triplets(types, adj, sizes, positive_below=eps, negative_above=delta, fraction=1.0, rng=seed)
        assert all_anchors[2, 0] == 2
        chosen.add(int(all_anchors[2, 1]))
    assert chosen == candidates


def test_triplets_edge_cases() -> None:
    """Equal sizes only for positives; a duplicate at distance 0 is a positive; different sizes are negatives."""
    types = np.array([[0, 1, 2], [0, 1, 2], [0, 2, 1], [0, 2, PAD]])
    adj = np.zeros((4, 3, 3), dtype=np.int8)
    adj[:, 0, 1] = 1
    adj[:3, 1, 2] = 1
    triplets = sample_triplets(types, adj, np.array([3, 3, 3, 2]), positive_below=1, negative_above=2, fraction=1.0, rng=0)
    assert triplets[:, :2].tolist() == [[0, 1], [1, 0]]  # graph 2 has no positive, graph 3 neither
    assert set(triplets[:, 2]) <= {3}  # graph 2 is at distance 2, not above 2


def test_triplet_loss_hand_case() -> None:
    anchor = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    pos = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    neg = torch.tensor([[0.0, 6.0], [0.0, 10.0]])
    loss = triplet_loss(anchor, pos, neg)
    torch.testing.assert_close(loss, torch.tensor([5.0 - 6.0 + MARGIN, 0.0]))
    torch.testing.assert_close(triplet_loss(anchor, pos, neg, margin=2.0), torch.tensor([1.0, 0.0]))
    grad_input = anchor.clone().requires_grad_()
    triplet_loss(grad_input, grad_input.detach().clone(), neg).sum().backward()  # zero distance: finite gradient
    assert torch.isfinite(grad_input.grad).all()


def test_dense_rounds_equal_the_message_passing_layer() -> None:
    torch.manual_seed(0)
    layer = BidirectionalGRUConv(8)
    adj = torch.triu((torch.rand(3, 5, 5) < 0.4).float(), 1)
    h = torch.randn(3, 5, 8)
    nz = adj.nonzero()  # (graph, src, dst): nodes numbered graph after graph
    edge_index = torch.stack([nz[:, 1] + nz[:, 0] * 5, nz[:, 2] + nz[:, 0] * 5])
    sparse = layer(h.reshape(15, 8), edge_index).view(3, 5, 8)
    assert nz.shape[0] > 3 and torch.allclose(layer.dense(h, adj), sparse, atol=1e-6)

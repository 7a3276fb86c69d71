"""Sparse-GP surrogate, EI batch acquisition and latent bin sampling (nas_ray.models.sgp)."""

from __future__ import annotations

import math

import gpytorch
import numpy as np
import pytest
import torch

from nas_ray.models.sgp import (
    SparseGP,
    candidate_grid,
    expected_improvement,
    latent_bin_sample,
    log_expected_improvement,
    predicted_minimum,
    select_batch,
    sgp_metrics,
)

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small problems: one intra-op thread is faster and immune to a busy shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def smooth_problem(n: int, d: int = 5, seed: int = 0, noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """y = sin of a projection (+ noise) in the unit cube; returns (X, y, projection)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, d, generator=g, dtype=F64)
    a = torch.linspace(0.5, 1.0, d, dtype=F64)
    y = torch.sin(2.0 * X @ a) + noise * torch.randn(n, generator=g, dtype=F64)
    return X, y, a


@pytest.fixture(scope="module")
def fitted() -> tuple[SparseGP, torch.Tensor, torch.Tensor]:
    X, y, _ = smooth_problem(600)
    return SparseGP(num_inducing=100, epochs=60, seed=3).fit(X[:400], y[:400]), X[400:], y[400:]


def test_sgp_recovers_a_smooth_function(fitted) -> None:
    gp, X_test, y_test = fitted
    mean, var = gp.predict(X_test)
    target = gp.standardize(y_test)
    rmse = float((mean - target).pow(2).mean().sqrt())
    constant_rmse = float((target - 0.0).pow(2).mean().sqrt())  # the prior mean (training mean) as predictor
    assert rmse < 0.15 * constant_rmse
    assert np.corrcoef(mean.numpy(), target.numpy())[0, 1] > 0.99
    assert gp.losses[-1] < gp.losses[0] - 1.0  # the bound improved a lot from the initialisation
    assert gp.noise < 0.05 and (var > 0).all()
    assert gp.inducing_points.shape == (100, 5)


def test_initialisation_follows_the_protocol() -> None:
    X, y, _ = smooth_problem(300, d=4)
    gp = SparseGP(epochs=0, seed=1, init_subset=200).fit(X, y)
    subset = X[torch.randperm(300, generator=torch.Generator().manual_seed(1))[:200]]
    d2 = torch.pdist(subset).pow(2).numpy()
    expected = math.sqrt(0.5 * (np.median(d2) + 1e-3))  # exp(lls) of the Theano code is the squared length-scale
    assert torch.allclose(gp.lengthscale, torch.full((4,), expected, dtype=F64), rtol=1e-5)
    assert gp.outputscale == pytest.approx(1.0) and gp.noise == pytest.approx(1.0, rel=1e-5)
    assert gp.inducing_points.shape == (200, 4)  # M = min(500, n) from the 200-point init subset
    assert float(torch.cdist(gp.inducing_points, subset).min(dim=1).values.max()) < 1e-6  # (float32 training)
    assert len(torch.unique(gp.inducing_points, dim=0)) == 200


def test_matches_the_exact_gp_when_every_point_is_inducing() -> None:
    X, y, _ = smooth_problem(60, d=3, seed=4)
    gp = SparseGP(epochs=40, seed=0, learn_inducing=False).fit(X, y)

    class Exact(gpytorch.models.ExactGP):
        def __init__(self, likelihood):
            super().__init__(gp.train_X, gp.train_y, likelihood)
            self.mean_module = gpytorch.means.ZeroMean()
            self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel(ard_num_dims=3))

        def forward(self, x):
            return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

    likelihood = gpytorch.likelihoods.GaussianLikelihood().to(F64)
    exact = Exact(likelihood).to(F64)
    exact.covar_module.base_kernel.lengthscale = gp.lengthscale
    exact.covar_module.outputscale = gp.outputscale
    likelihood.noise = gp.noise
    exact.eval()
    X_new, _, _ = smooth_problem(40, d=3, seed=5)
    with torch.no_grad():
        out = exact(X_new)
    mean, var = gp.predict(X_new)
    assert torch.allclose(mean, out.mean, atol=1e-4)
    assert torch.allclose(var, out.variance, atol=1e-4)
    assert gp.noise < 0.1  # trained, not the initial values


def test_standardisation_and_back_conversion() -> None:
    X, y, _ = smooth_problem(200, d=2, seed=2)
    raw = 100.0 + 5.0 * y
    gp = SparseGP(num_inducing=40, epochs=50, seed=0).fit(X, raw)
    assert gp.y_mean == pytest.approx(float(raw.mean())) and gp.y_std == pytest.approx(float(raw.std(unbiased=False)))
    assert torch.allclose(gp.train_y, (raw - raw.mean()) / raw.std(unbiased=False))
    mean, var = gp.predict(X)
    assert float((mean - gp.train_y).pow(2).mean().sqrt()) < 0.4  # standardised units, not raw
    raw_mean, raw_var = gp.unstandardize(mean, var)
    assert torch.allclose(raw_mean, mean * gp.y_std + gp.y_mean) and torch.allclose(raw_var, var * gp.y_std**2)
    assert float((raw_mean - raw).pow(2).mean().sqrt()) < 0.4 * gp.y_std
    assert torch.allclose(gp.predict(X, observation_noise=True)[1], var + gp.noise)
    again = SparseGP(num_inducing=40, epochs=50, seed=0).fit(X, raw)  # deterministic per seed
    assert torch.equal(again.predict(X)[0], mean) and torch.equal(again.inducing_points, gp.inducing_points)
    stats = (gp.y_mean, gp.y_std)
    gp.fit(X[:100], raw[:100] + 50.0)  # a refit keeps the statistics of the first y (as the D-VAE code's SGP does)
    assert (gp.y_mean, gp.y_std) == stats
    given = SparseGP(epochs=0, y_mean=1.0, y_std=2.0).fit(X, raw)
    assert torch.allclose(given.train_y, (raw - 1.0) / 2.0)


def test_kriging_believer_conditioning(fitted) -> None:
    gp, _, _ = fitted
    far = torch.full((1, 5), 1.5, dtype=F64)  # outside the data cube: far from every inducing point
    near = gp.train_X[:1] + 0.01
    for x in (far, near):
        m0, v0 = gp.predict(x)
        believer = gp.with_points(x, m0, standardized=True)
        m1, v1 = believer.predict(x)
        assert float(v1) <= gp.noise and float(v1) < float(v0)
        assert torch.allclose(m1, m0, atol=1e-9)
        assert believer.fantasy[0].shape == (1, 5) and believer.noise == gp.noise
    assert gp.fantasy is None and float(gp.predict(far)[1]) > 0.5  # the original model is untouched
    probe = torch.rand(20, 5, generator=torch.Generator().manual_seed(0), dtype=F64) * 1.5
    m0, v0 = gp.predict(probe)
    both = gp.with_points(torch.cat([far, near]), gp.predict(torch.cat([far, near]))[0], standardized=True)
    m2, v2 = both.predict(probe)
    assert torch.allclose(m2, m0, atol=1e-9) and (v2 <= v0 + 1e-12).all()  # believing the mean moves no mean
    chained = gp.with_points(far, gp.predict(far)[0], standardized=True).with_points(near, gp.predict(near)[0], standardized=True)
    assert torch.allclose(chained.predict(probe)[1], v2)  # sequential == joint conditioning
    via_raw = gp.with_points(far, gp.unstandardize(gp.predict(far)[0]))  # y_new in raw units by default
    assert torch.allclose(via_raw.predict(probe)[1], gp.with_points(far, gp.predict(far)[0], standardized=True).predict(probe)[1])
    lifted = gp.with_points(far, gp.predict(far)[0] + 1.0, standardized=True)  # a surprising observation moves the mean
    assert float(lifted.predict(far)[0] - gp.predict(far)[0]) > 0.5


def test_log_ei_matches_closed_form() -> None:
    mean = torch.tensor([0.0, 1.0, -2.0, 5.0], dtype=F64)
    var = torch.tensor([1.0, 0.25, 4.0, 0.01], dtype=F64)
    best = -0.5
    sigma = var.sqrt()
    u = (best - mean) / sigma
    normal = torch.distributions.Normal(0.0, 1.0)
    closed = sigma * (u * normal.cdf(u) + normal.log_prob(u).exp())
    got = log_expected_improvement(mean, var, best).exp()
    assert torch.allclose(got, closed, rtol=1e-6, atol=1e-30)
    assert torch.isfinite(log_expected_improvement(torch.tensor([50.0], dtype=F64), torch.tensor([1e-4], dtype=F64), 0.0)).all()


@pytest.fixture(scope="module")
def toy_2d() -> SparseGP:
    g = torch.Generator().manual_seed(7)
    X = torch.rand(40, 2, generator=g, dtype=F64)
    y = (X - torch.tensor([0.3, 0.6], dtype=F64)).pow(2).sum(1) + 0.01 * torch.randn(40, generator=g, dtype=F64)
    return SparseGP(epochs=60, seed=0).fit(X, y)


def test_select_batch_contract(toy_2d) -> None:
    gp = toy_2d
    lower, upper = torch.tensor([0.0, -0.5], dtype=F64), torch.tensor([1.0, 1.0], dtype=F64)
    batch = select_batch(gp, lower, upper, 8, grid_size=500, seed=3)
    assert batch.shape == (8, 2) and (batch >= lower).all() and (batch <= upper).all()
    assert float(torch.pdist(batch).min()) > 1e-9
    assert torch.equal(batch, select_batch(gp, lower, upper, 8, grid_size=500, seed=3))
    assert not torch.equal(batch, select_batch(gp, lower, upper, 8, grid_size=500, seed=4))
    grid = candidate_grid(gp, lower, upper, 500, seed=3)
    incumbent = predicted_minimum(gp, grid, lower, upper)
    assert incumbent <= float(gp.predict(grid)[0].min()) and incumbent <= float(gp.predict(gp.train_X)[0].min())
    first = expected_improvement(gp, batch[:1], incumbent)
    assert float(first) >= float(expected_improvement(gp, grid, incumbent).max()) * (1 - 1e-9)
    for k in (1, 4, 7):  # point k maximises EI over the unused grid under the posterior believing points 1..k
        believer = gp.with_points(batch[:k], gp.predict(batch[:k])[0], standardized=True)
        ei = expected_improvement(believer, grid, incumbent)
        taken = (grid[:, None, :] == batch[None, :k, :]).all(-1).any(-1)
        assert torch.allclose(batch[k], grid[int(ei.masked_fill(taken, -1.0).argmax())])
    plain = select_batch(gp, lower, upper, 5, grid_size=500, seed=3, lbfgs_maxiter=0)  # grid-only greedy
    believed = gp.with_points(plain[:2], gp.predict(plain[:2])[0], standardized=True)
    assert torch.equal(select_batch(believed, lower, upper, 3, grid_size=500, seed=3, lbfgs_maxiter=0), plain[2:])
    normal = select_batch(gp, lower, upper, 4, grid_size=300, grid="normal", seed=0, refine_all=True)
    assert normal.shape == (4, 2) and (normal >= lower).all() and (normal <= upper).all()


def test_select_batch_behaviour_on_toys(toy_2d) -> None:
    # 2-D bowl with its minimum at (0.3, 0.6): the first point is at the minimum, the batch stays in its basin.
    batch = select_batch(toy_2d, [0.0, 0.0], [1.0, 1.0], 6, grid_size=1000, seed=0)
    assert float((batch[0] - torch.tensor([0.3, 0.6], dtype=F64)).norm()) < 0.05
    assert float((batch - torch.tensor([0.3, 0.6], dtype=F64)).norm(dim=1).max()) < 0.35
    # 1-D: observations only on [0, 0.5] of a decreasing function: the batch goes to the unexplored low side.
    g = torch.Generator().manual_seed(1)
    X = 0.5 * torch.rand(25, 1, generator=g, dtype=F64)
    gp = SparseGP(epochs=60, seed=0).fit(X, -2.0 * X[:, 0] + 0.01 * torch.randn(25, generator=g, dtype=F64))
    assert (select_batch(gp, [0.0], [1.0], 5, grid_size=1000, seed=0) > 0.45).all()
    # 1-D, symmetric: a concave bump observed on [0.35, 0.65] falls off on both unexplored sides. The first point
    # takes one side; conditioning on it (kriging believer) removes the variance there, so the other side follows.
    X = 0.35 + 0.3 * torch.rand(25, 1, generator=g, dtype=F64)
    gp = SparseGP(epochs=60, seed=0).fit(X, -4.0 * (X[:, 0] - 0.5) ** 2 + 0.01 * torch.randn(25, generator=g, dtype=F64))
    batch = select_batch(gp, [0.0], [1.0], 4, grid_size=1000, seed=0)[:, 0]
    assert float(batch.min()) < 0.3 and float(batch.max()) > 0.7


def test_bad_inputs_raise_value_error(toy_2d) -> None:
    gp = SparseGP(epochs=0)
    with pytest.raises(RuntimeError, match="fit"):
        gp.predict(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="3 values but there are 4"):
        gp.fit(torch.zeros(4, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="non-empty"):
        gp.fit(torch.zeros(0, 2), torch.zeros(0))
    with pytest.raises(ValueError, match="NaN"):
        gp.fit(torch.zeros(2, 2), torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="columns"):
        toy_2d.predict(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="lower must be <= upper"):
        select_batch(toy_2d, [0.0, 1.0], [1.0, 0.0], 2, grid_size=10)
    with pytest.raises(ValueError, match="2 entries"):
        select_batch(toy_2d, [0.0], [1.0], 2, grid_size=10)
    with pytest.raises(ValueError, match="grid must be"):
        select_batch(toy_2d, [0.0, 0.0], [1.0, 1.0], 2, grid_size=10, grid="sobol")
    with pytest.raises(ValueError, match="NaN"):
        latent_bin_sample(np.array([[0.0, np.nan]]), 1)


def clustered(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """1,000 points in 8-d: clusters of 900, 90 and 10 points; returns (Z, cluster labels)."""
    rng = np.random.default_rng(seed)
    sizes, centres = (900, 90, 10), rng.normal(scale=6.0, size=(3, 8))
    Z = np.concatenate([c + rng.normal(size=(s, 8)) for c, s in zip(centres, sizes)])
    return Z, np.repeat(np.arange(3), sizes)


@pytest.mark.parametrize("num", [1, 7, 30, 200, 999, 1000, 5000])
def test_latent_bin_sample_exact_distinct_count(num: int) -> None:
    Z, _ = clustered()
    idx = latent_bin_sample(Z, num, seed=1)
    assert len(idx) == min(num, len(Z)) == len(np.unique(idx)) and idx.min() >= 0 and idx.max() < len(Z)


def test_latent_bin_sample_spreads_and_is_seeded() -> None:
    Z, labels = clustered()
    covered = [len(np.unique(labels[latent_bin_sample(Z, 30, seed=s)])) for s in range(5)]
    assert covered == [3] * 5  # uniform sampling of 30 hits the 10-point cluster only ~26% of the time
    idx = latent_bin_sample(Z, 30, seed=0)
    assert (labels[idx] == 0).mean() < 0.75  # vs 0.9 expected under uniform sampling
    assert np.array_equal(idx, latent_bin_sample(Z, 30, seed=0))
    assert not np.array_equal(idx, latent_bin_sample(Z, 30, seed=1))
    dup = np.repeat(Z[:20], 10, axis=0)  # 200 rows, only 20 distinct: the top-up path must fill the count
    assert len(np.unique(latent_bin_sample(dup, 150, seed=0))) == 150


def test_sgp_metrics_keys() -> None:
    X, y, _ = smooth_problem(240, d=3, seed=8)
    out = sgp_metrics(X[:200], y[:200], X[200:], y[200:], seeds=[1, 2], num_inducing=40, epochs=40)
    assert {"rmse_mean", "rmse_std", "pearson_mean", "pearson_std", "rmse", "pearson", "seeds"} <= set(out)
    assert out["seeds"] == [1, 2] and len(out["rmse"]) == len(out["pearson"]) == 2
    assert out["rmse_mean"] == pytest.approx(np.mean(out["rmse"])) and out["rmse_std"] == pytest.approx(np.std(out["rmse"]))
    assert out["rmse_mean"] < 0.3 and out["pearson_mean"] > 0.95

"""Latent-space Bayesian optimisation pieces on plain tensors (D-VAE, Zhang et al. 2019; SVGe, Lukasik et al. 2021).

- ``SparseGP``: the sparse-GP surrogate of D-VAE's ``bo.py`` (M = 500 inducing points, ARD-RBF
  kernel), here gpytorch's SGPR (Titsias' collapsed bound; ``InducingPointKernel``) trained with Adam.
- ``sgp_metrics``: the iteration-0 predictive metrics of D-VAE's protocol (RMSE and Pearson r in standardised
  units, mean and std over seeds 1..10).
- ``log_expected_improvement`` / ``expected_improvement`` / ``predicted_minimum`` /
  ``candidate_grid`` / ``select_batch``: EI for minimisation, its incumbent and grid, and the greedy
  kriging-believer batch of D-VAE's BO (``SparseGP.with_points`` is the conditioning it uses).
- ``select_from_pool``: the same greedy kriging-believer EI batch over a finite set of candidate
  points (the encodings of a pool of architectures) instead of the continuous box.
- ``latent_bin_sample``: VS-GAE's bin sampling of training graphs in a 4-d PCA of the latent means
  (VS-GAE, Friede et al. 2019).

Everything works in the SGP's *standardised* y units (``(y - mean) / std`` with the statistics of the
first ``y`` the model was fitted on, as D-VAE's code does); ``SparseGP.unstandardize`` converts back.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterable
from typing import Any

import gpytorch
import numpy as np
import torch
from botorch.acquisition.analytic import _log_ei_helper
from gpytorch.constraints import GreaterThan, Positive
from gpytorch.kernels import InducingPointKernel, RBFKernel, ScaleKernel
from gpytorch.utils.warnings import GPInputWarning
from linear_operator import to_dense
from linear_operator.operators import (
    DiagLinearOperator,
    LowRankRootAddedDiagLinearOperator,
    LowRankRootLinearOperator,
    MatmulLinearOperator,
)
from linear_operator.utils.cholesky import psd_safe_cholesky
from scipy.optimize import minimize
from torch import Tensor
from nas_ray.errors import ConfigError

ArrayLike = Any  # a torch tensor, a numpy array or nested sequences

__all__ = [
    "SparseGP",
    "candidate_grid",
    "expected_improvement",
    "latent_bin_sample",
    "log_expected_improvement",
    "predicted_minimum",
    "select_batch",
    "select_from_pool",
    "sgp_metrics",
]

_PREDICT_CHUNK = 4096


def _log_positive() -> Positive:
    """A positivity constraint whose raw parameter is the log (the Theano code's log-parameterisation)."""
    return Positive(transform=torch.exp, inv_transform=torch.log)


def _as_matrix(X: ArrayLike, name: str, dtype: torch.dtype, d: int | None = None) -> Tensor:
    X = torch.as_tensor(X, dtype=dtype).detach()
    if X.ndim != 2 or X.shape[0] == 0:
        raise ConfigError(f"{name} must be a non-empty 2-d array [n, d], got shape {tuple(X.shape)}")
    if d is not None and X.shape[1] != d:
        raise ConfigError(f"{name} has {X.shape[1]} columns but the model has {d} input dimensions")
    if not torch.isfinite(X).all():
        raise ConfigError(f"{name} contains NaN or infinite values")
    return X


def _as_targets(y: ArrayLike, n: int, name: str, dtype: torch.dtype) -> Tensor:
    y = torch.as_tensor(y, dtype=dtype).detach().reshape(-1)
    if y.numel() != n:
        raise ConfigError(f"{name} has {y.numel()} values but there are {n} input rows")
    if not torch.isfinite(y).all():
        raise ConfigError(f"{name} contains NaN or infinite values")
    return y


class _InducingPointKernel(InducingPointKernel):
    """gpytorch's SGPR kernel with three changes.

    - A relative jitter on K_uu (``1e-6 * outputscale`` in float64, ``1e-4`` in float32; the Theano
      code's ``jitter * exp(lsf)``), so its Cholesky rarely needs ``psd_safe_cholesky``'s retry path.
    - In eval mode, the rows ``k(x, Z) K_uu^{-1/2}`` of the training inputs are computed once
      (``cache_prefix``): gpytorch evaluates the kernel on ``[train; test]`` for every prediction, which
      made each single-point posterior (the L-BFGS-B steps of the acquisition) cost ``O(n M^2)``.
    - In eval mode the prior covariance among *test* points is the base kernel ``k``, as gpytorch's
      ``SGPRPredictionStrategy.exact_prediction`` intends (its swap never triggers because the block
      arrives evaluated, as ``Q + diag(k - Q)``). The predictive variances are the same either way;
      the joint covariance becomes the proper SGPR posterior ``k(x, x') - R_x C R_x'^T`` instead of
      one whose cross-covariances vanish away from the inducing points, which the kriging-believer
      conditioning needs. The training block keeps gpytorch's ``Q + diag(k - Q)``.
    """

    _prefix: tuple[Tensor, Tensor] | None = None

    @property
    def _inducing_mat(self) -> Tensor:
        if not self.training and hasattr(self, "_cached_kernel_mat"):
            return self._cached_kernel_mat
        kuu = to_dense(self.base_kernel(self.inducing_points, self.inducing_points))
        jitter = 1e-6 if kuu.dtype == torch.float64 else 1e-4
        res = kuu + jitter * self.base_kernel.outputscale * torch.eye(kuu.shape[-1], dtype=kuu.dtype)
        if not self.training:
            self._cached_kernel_mat = res
        return res

    def cache_prefix(self, X: Tensor) -> None:
        self._prefix = None
        self._prefix = (X, self._root(X))

    def _starts_with_train(self, x: Tensor) -> bool:
        n = len(self._prefix[0])
        return x.shape[0] >= n and torch.equal(x[:n], self._prefix[0])

    def _root(self, x: Tensor) -> Tensor:
        if not self.training and self._prefix is not None and self._starts_with_train(x):
            rest = x[len(self._prefix[0]) :]
            return torch.cat([self._prefix[1], self._root(rest)]) if len(rest) else self._prefix[1]
        return to_dense(self.base_kernel(x, self.inducing_points)) @ self._inducing_inv_root

    def _get_covariance(self, x1: Tensor, x2: Tensor):  # gpytorch's, through the cached rows
        if not self.training and self._prefix is not None and torch.equal(x1, x2) and not self._starts_with_train(x1):
            return self.base_kernel(x1, x2)  # test-test prior: see the class docstring
        root = self._root(x1)
        if torch.equal(x1, x2):
            covar = LowRankRootLinearOperator(root)
            if not self.training and gpytorch.settings.sgpr_diagonal_correction.on():
                correction = (self.base_kernel(x1, x2, diag=True) - covar.diagonal(dim1=-1, dim2=-2)).clamp(0, math.inf)
                covar = LowRankRootAddedDiagLinearOperator(covar, DiagLinearOperator(correction))
            return covar
        return MatmulLinearOperator(root, self._root(x2).transpose(-1, -2))


class _SGPR(gpytorch.models.ExactGP):
    """Zero-mean SGPR: ``InducingPointKernel(ScaleKernel(RBFKernel(ard)))`` with a Gaussian likelihood."""

    def __init__(self, X: Tensor, y: Tensor, inducing: Tensor, likelihood: gpytorch.likelihoods.GaussianLikelihood) -> None:
        super().__init__(X, y, likelihood)
        self.mean_module = gpytorch.means.ZeroMean()
        rbf = RBFKernel(ard_num_dims=X.shape[-1], lengthscale_constraint=_log_positive())
        base = ScaleKernel(rbf, outputscale_constraint=_log_positive())
        self.covar_module = _InducingPointKernel(base, inducing.clone(), likelihood)

    def forward(self, x: Tensor) -> gpytorch.distributions.MultivariateNormal:
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


def _quiet_slicing() -> torch.sparse.check_sparse_tensor_invariants:
    """linear_operator slices a diagonal block through a sparse matrix, and torch warns unless the
    (default, off) sparse invariant checks are chosen explicitly."""
    return torch.sparse.check_sparse_tensor_invariants(enable=False)


def _new_likelihood() -> gpytorch.likelihoods.GaussianLikelihood:
    return gpytorch.likelihoods.GaussianLikelihood(noise_constraint=GreaterThan(1e-6, transform=torch.exp, inv_transform=torch.log))


class SparseGP:
    """Sparse GP regression (gpytorch SGPR) with D-VAE's initialisation and an Adam fit (as D-VAE's code).

    Protocol:

    - **Targets.** ``fit(X, y)`` takes raw ``y`` and standardises it with the mean and (population)
      std of the first ``y`` this object is fitted on (or ``y_mean``/``y_std`` given to the
      constructor); later refits on grown data keep those statistics, as D-VAE's code does. Inputs are not
      rescaled. The GP has a zero prior mean in standardised units.
    - **Initialisation** (from a random ``init_subset`` = 1,000-point subset of the inputs, drawn with
      ``seed``, as the code initialises on its first minibatch): ``M = min(num_inducing, n)``
      inducing points are a random subset of those points; every ARD length-scale is
      ``sqrt(0.5 * (median squared pairwise distance + 1e-3))``; signal and noise variance are 1.
      The Theano kernel is ``exp(-0.5 * sum((x - z)**2 / exp(lls)))``, so ``exp(lls)`` is the
      *squared* length-scale and its ``log(0.5 * (median d^2 + 1e-3))`` initialisation is
      ``lengthscale = sqrt(...)`` in gpytorch (``exp(-r^2 / (2 l^2))``): the median heuristic that
      puts the median pair at ``k = exp(-1)``.
    - **Training.** Adam on the exact SGPR bound (``ExactMarginalLogLikelihood`` plus gpytorch's
      inducing-point trace term) over log length-scales, log signal variance, log noise variance
      and the inducing points (``learn_inducing``). One epoch is one Adam step. With
      ``n <= batch_size`` every step uses all points. Otherwise the steps use fresh random
      ``batch_size``-point minibatches (the paper's minibatch of 1,000 = 2M), except the last
      ``full_epochs`` (10), which use all points. A full-batch step costs ``O(n M^2)``: ~1 s at
      n = 17k and M = 500 on two CPU cores, so 100 of them would take minutes; ``batch_size=None``
      asks for that anyway. The minibatch bound is the SGPR bound of a sparser data set and ends
      with a too-large noise variance (0.18 vs 0.11 full-batch on a 17k ENAS-like set); the final
      full-batch steps correct most of it (test RMSE 0.373 -> 0.355, full batch 0.331). After
      training, the posterior conditions on *all* points with the learnt hyperparameters.
      Training runs in ``train_dtype`` (float32, ~2x faster); the fitted model and every prediction
      use ``dtype`` (float64), which the posterior over 17k points and the tiny EI variances need.
    - **Learning rate.** The paper's lr 5e-4 (Adam on log-parameters) took 100 epochs x 17 minibatches
      = 1,700 steps, i.e. up to ~0.85 log-units of travel per parameter. With one step per epoch,
      lr 5e-4 leaves the hyperparameters at their initial values (noise variance 1 -> 0.95 after
      100 steps; tested on 1,000 ENAS-like 56-d points). ``lr = 0.1`` (log-parameters; inducing points
      move by ``lr`` times the inputs' mean per-dimension std) converges in ~50-75 steps on 1k and
      17k points (the last 25 steps change the bound by < 1 %); 0.05 is still improving at step 100.
    - **Predictions** (``predict``) are the SGPR posterior of the latent function in standardised
      units (gpytorch's predictive, with its FITC-style diagonal correction of the training block).
      ``with_points`` conditions it on extra points at fixed hyperparameters (kriging believer).

    Deterministic for a given ``seed`` (a private torch generator drives every random choice).
    """

    def __init__(
        self,
        num_inducing: int = 500,
        *,
        epochs: int = 100,
        lr: float = 0.1,
        batch_size: int | None = 1000,
        full_epochs: int = 10,
        init_subset: int = 1000,
        seed: int = 0,
        learn_inducing: bool = True,
        y_mean: float | None = None,
        y_std: float | None = None,
        dtype: torch.dtype = torch.float64,
        train_dtype: torch.dtype = torch.float32,
    ) -> None:
        if num_inducing < 1 or epochs < 0 or full_epochs < 0 or init_subset < 1 or lr <= 0:
            raise ConfigError("num_inducing and init_subset must be >= 1, epochs and full_epochs >= 0, and lr > 0")
        if batch_size is not None and batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1 or None, got {batch_size}")
        if y_std is not None and not y_std > 0:
            raise ConfigError(f"y_std must be positive, got {y_std}")
        self.num_inducing, self.epochs, self.lr = num_inducing, epochs, lr
        self.batch_size, self.full_epochs = batch_size, full_epochs
        self.init_subset, self.seed, self.learn_inducing = init_subset, seed, learn_inducing
        self.dtype, self.train_dtype = dtype, train_dtype
        self.y_mean, self.y_std = y_mean, y_std
        self.model: _SGPR | None = None
        self._fantasy: tuple[Tensor, Tensor] | None = None
        self.losses: list[float] = []

    # ------------------------------------------------------------------------------------ standardisation
    def standardize(self, y: ArrayLike) -> Tensor:
        """Raw ``y`` -> standardised units (the statistics of the first fit)."""
        self._check_stats()
        return (torch.as_tensor(y, dtype=self.dtype) - self.y_mean) / self.y_std

    def unstandardize(self, mean: ArrayLike, variance: ArrayLike | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Standardised mean (and variance) -> raw units: ``mean * std + mu`` (and ``variance * std**2``)."""
        self._check_stats()
        raw = torch.as_tensor(mean, dtype=self.dtype) * self.y_std + self.y_mean
        if variance is None:
            return raw
        return raw, torch.as_tensor(variance, dtype=self.dtype) * self.y_std**2

    def _check_stats(self) -> None:
        if self.y_mean is None or self.y_std is None:
            raise RuntimeError("the SparseGP has no y statistics yet: call fit first (or pass y_mean and y_std)")

    # ------------------------------------------------------------------------------------------- fitting
    def fit(self, X: ArrayLike, y: ArrayLike) -> SparseGP:
        """Re-initialise and train on raw ``(X [n, d], y [n])``; returns ``self``."""
        X = _as_matrix(X, "X", self.dtype)
        y = _as_targets(y, X.shape[0], "y", self.dtype)
        if self.y_mean is None or self.y_std is None:
            std = float(y.std(unbiased=False)) if y.numel() > 1 else 0.0
            self.y_mean, self.y_std = float(y.mean()), (std if std > 0 else 1.0)
        ys = self.standardize(y)
        n, d = X.shape
        gen = torch.Generator().manual_seed(self.seed)
        subset = X[torch.randperm(n, generator=gen)[: min(self.init_subset, n)]]
        inducing = subset[torch.randperm(len(subset), generator=gen)[: min(self.num_inducing, n)]]
        sq = torch.pdist(subset).pow(2).numpy()
        median = float(np.median(sq)) if sq.size else 0.0

        tdt = self.train_dtype
        Xt, yt = X.to(tdt), ys.to(tdt)
        likelihood = _new_likelihood()
        model = _SGPR(Xt, yt, inducing.to(tdt), likelihood).to(tdt)
        kernel = model.covar_module.base_kernel
        kernel.base_kernel.lengthscale = torch.full((1, d), math.sqrt(0.5 * (median + 1e-3)), dtype=tdt)
        kernel.outputscale = torch.tensor(1.0, dtype=tdt)
        likelihood.noise = torch.tensor([1.0], dtype=tdt)

        z_scale = float(X.std(dim=0, unbiased=False).mean()) if n > 1 else 1.0
        z_param = model.covar_module.inducing_points.requires_grad_(self.learn_inducing)
        groups = [{"params": [p for p in model.parameters() if p is not z_param]}]
        if self.learn_inducing:
            groups.append({"params": [z_param], "lr": self.lr * max(z_scale, 1e-8)})
        optimizer = torch.optim.Adam(groups, lr=self.lr)
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(likelihood, model)
        minibatch = self.batch_size is not None and n > self.batch_size
        model.train()
        self.losses = []
        # fast log_prob: gpytorch then takes LowRankRootAddedDiagLinearOperator's exact Woodbury
        # inv_quad_logdet, O(n M^2); importing botorch turns it off globally, which means a dense
        # n x n Cholesky per step.
        with gpytorch.settings.debug(False), gpytorch.settings.fast_computations(log_prob=True):
            for epoch in range(self.epochs):
                if minibatch and epoch == self.epochs - self.full_epochs:
                    model.set_train_data(Xt, yt, strict=False)
                    minibatch = False
                if minibatch:
                    idx = torch.randperm(n, generator=gen)[: self.batch_size]
                    model.set_train_data(Xt[idx], yt[idx], strict=False)
                optimizer.zero_grad()
                loss = -mll(model(*model.train_inputs), model.train_targets)
                loss.backward()
                optimizer.step()
                self.losses.append(loss.item())
        model = model.to(self.dtype)
        model.set_train_data(X, ys, strict=False)
        self.model, self._fantasy = self._freeze(model), None
        return self

    @staticmethod
    def _freeze(model: _SGPR) -> _SGPR:
        model.requires_grad_(False)
        model.eval()
        with torch.no_grad():
            model.covar_module.cache_prefix(model.train_inputs[0])
        return model

    def _require_model(self) -> _SGPR:
        if self.model is None:
            raise RuntimeError("the SparseGP is not fitted: call fit first")
        return self.model

    # ---------------------------------------------------------------------------------------- accessors
    @property
    def train_X(self) -> Tensor:
        return self._require_model().train_inputs[0]

    @property
    def train_y(self) -> Tensor:
        """The training targets in standardised units."""
        return self._require_model().train_targets

    @property
    def inducing_points(self) -> Tensor:
        return self._require_model().covar_module.inducing_points.detach()

    @property
    def lengthscale(self) -> Tensor:
        return self._require_model().covar_module.base_kernel.base_kernel.lengthscale.detach().reshape(-1)

    @property
    def outputscale(self) -> float:
        return float(self._require_model().covar_module.base_kernel.outputscale)

    @property
    def noise(self) -> float:
        return float(self._require_model().likelihood.noise)

    @property
    def fantasy(self) -> tuple[Tensor, Tensor] | None:
        """The points this model was conditioned on by ``with_points``: ``(X [f, d], y [f] standardised)`` or None."""
        return self._fantasy

    # -------------------------------------------------------------------------------------- prediction
    def posterior(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Differentiable latent posterior ``(mean, variance)`` at ``X [k, d]`` in standardised units."""
        model = self._require_model()
        if self._fantasy is None:
            out = model(X)
            return out.mean, out.variance
        XF, yF = self._fantasy
        k = X.shape[0]
        out = model(torch.cat([X, XF]))  # the joint SGPR posterior of X and the fantasy points
        cov = out.lazy_covariance_matrix
        with _quiet_slicing():
            C_ff, C_fx = cov[k:, k:].to_dense(), cov[k:, :k].to_dense()
        chol = psd_safe_cholesky(C_ff + self.noise * torch.eye(len(XF), dtype=X.dtype))
        A = torch.linalg.solve_triangular(chol, C_fx, upper=False)
        r = torch.linalg.solve_triangular(chol, (yF - out.mean[k:])[:, None], upper=False)
        return out.mean[:k] + (A * r).sum(0), (out.variance[:k] - A.pow(2).sum(0)).clamp_min(1e-12)

    def predict(self, X: ArrayLike, *, observation_noise: bool = False) -> tuple[Tensor, Tensor]:
        """Posterior ``(mean [k], variance [k])`` in standardised units; ``observation_noise`` adds the noise variance."""
        X = _as_matrix(X, "X", self.dtype, self.train_X.shape[1])
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", GPInputWarning)  # predicting at the training inputs is intended here
            parts = [self.posterior(chunk) for chunk in X.split(_PREDICT_CHUNK)]
        mean, var = torch.cat([m for m, _ in parts]), torch.cat([v for _, v in parts])
        return mean, var + self.noise if observation_noise else var

    def with_points(self, X_new: ArrayLike, y_new: ArrayLike, *, standardized: bool = False) -> SparseGP:
        """A copy whose posterior is also conditioned on ``(X_new, y_new)`` at the same hyperparameters and
        inducing points (no retraining); ``y_new`` is raw unless ``standardized``.

        The SGPR posterior is a GP (gpytorch's predictive mean and covariance); the copy conditions that
        GP on noisy observations (the likelihood's noise) at ``X_new``, so with ``y_new`` = the predicted
        mean (kriging believer) every mean is unchanged and the variance at ``X_new`` drops below the
        noise variance, wherever the point lies. Re-running SGPR on the extra data with the same
        inducing points (``set_train_data``) would barely move the posterior at a point far from them,
        the usual EI optimum at the box boundary; the original code adds the fantasy points to its
        inducing set for the same reason. Repeated calls accumulate the points.
        """
        self._require_model()
        X_new = _as_matrix(X_new, "X_new", self.dtype, self.train_X.shape[1])
        y_new = _as_targets(y_new, X_new.shape[0], "y_new", self.dtype)
        ys_new = y_new if standardized else self.standardize(y_new)
        if self._fantasy is not None:
            X_new, ys_new = torch.cat([self._fantasy[0], X_new]), torch.cat([self._fantasy[1], ys_new])
        out = copy.copy(self)
        out._fantasy = (X_new, ys_new)
        return out


# ------------------------------------------------------------------------------------------------ metrics
def sgp_metrics(
    X_train: ArrayLike, y_train: ArrayLike, X_test: ArrayLike, y_test: ArrayLike, seeds: Iterable[int] = range(1, 11), **fit_kwargs: Any
) -> dict[str, Any]:
    """Iteration-0 SGP metrics of D-VAE's protocol: RMSE and Pearson r between the SGP mean at ``X_test`` and
    ``y_test`` standardised with the *training* statistics, one fresh fit per seed.

    Each seed's model is initialised from its own random 1,000-point subset (inducing points and
    length-scale; ``SparseGP.init_subset``) and trained on all training points (minibatches of
    ``batch_size`` per Adam step when there are more). Returns ``rmse_mean``, ``rmse_std``,
    ``pearson_mean``, ``pearson_std`` (population std over seeds, numpy's default), and the
    per-seed lists ``rmse``, ``pearson`` and ``seeds``.
    """
    dtype = fit_kwargs.get("dtype", torch.float64)
    X_test = _as_matrix(X_test, "X_test", dtype)
    y_test = _as_targets(y_test, X_test.shape[0], "y_test", dtype)
    seeds = list(seeds)
    if not seeds:
        raise ConfigError("sgp_metrics needs at least one seed")
    rmse, pearson = [], []
    for seed in seeds:
        gp = SparseGP(seed=seed, **fit_kwargs).fit(X_train, y_train)
        mean, _ = gp.predict(X_test)
        target = gp.standardize(y_test)
        rmse.append(float((mean - target).pow(2).mean().sqrt()))
        pearson.append(float(np.corrcoef(mean.numpy(), target.numpy())[0, 1]) if len(target) > 1 else float("nan"))
    return {
        "rmse_mean": float(np.mean(rmse)),
        "rmse_std": float(np.std(rmse)),
        "pearson_mean": float(np.mean(pearson)),
        "pearson_std": float(np.std(pearson)),
        "rmse": rmse,
        "pearson": pearson,
        "seeds": seeds,
    }


# -------------------------------------------------------------------------------------------- acquisition
def log_expected_improvement(mean: Tensor, variance: Tensor, incumbent: float | Tensor) -> Tensor:
    """``log E[max(incumbent - f, 0)]`` for ``f ~ N(mean, variance)`` (minimisation), via botorch's stable helper."""
    sigma = variance.clamp_min(1e-12).sqrt()
    return _log_ei_helper((incumbent - mean) / sigma) + sigma.log()


def expected_improvement(gp: SparseGP, X: ArrayLike, incumbent: float, *, log: bool = False) -> Tensor:
    """EI (or log EI) of the latent function at ``X`` for minimisation, in standardised units."""
    mean, var = gp.predict(X)
    out = log_expected_improvement(mean, var, incumbent)
    return out if log else out.exp()


def _lbfgsb(fun, x0: Tensor, lower: Tensor, upper: Tensor, maxiter: int) -> tuple[Tensor, float]:
    """Minimise the scalar torch function ``fun(x [1, d])`` over the box with scipy's L-BFGS-B (autograd gradients);
    ``maxiter = 0`` returns ``x0``."""

    def value_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        xt = torch.tensor(x, dtype=x0.dtype, requires_grad=True)
        with torch.enable_grad():
            value = fun(xt[None]).sum()
            (grad,) = torch.autograd.grad(value, xt)
        v, g = value.item(), grad.numpy().astype(np.float64)
        if not math.isfinite(v) or not np.isfinite(g).all():
            return 1e10, np.zeros_like(g)
        return v, g

    if maxiter <= 0:  # no refinement (scipy would still take a step)
        with torch.no_grad():
            return x0, float(fun(x0[None]).sum())
    bounds = list(zip(lower.tolist(), upper.tolist()))
    res = minimize(value_and_grad, x0.numpy().astype(np.float64), jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter})
    x = torch.as_tensor(res.x, dtype=x0.dtype).clamp(lower, upper)
    with torch.no_grad():
        return x, float(fun(x[None]).sum())


def _box(gp: SparseGP, lower: ArrayLike, upper: ArrayLike) -> tuple[Tensor, Tensor]:
    d = gp.train_X.shape[1]
    lower = torch.as_tensor(lower, dtype=gp.dtype).reshape(-1)
    upper = torch.as_tensor(upper, dtype=gp.dtype).reshape(-1)
    if lower.numel() != d or upper.numel() != d:
        raise ConfigError(f"lower and upper must have {d} entries, got {lower.numel()} and {upper.numel()}")
    if not (torch.isfinite(lower).all() and torch.isfinite(upper).all()):
        raise ConfigError("lower and upper must be finite")
    if (lower > upper).any():
        raise ConfigError("lower must be <= upper in every dimension")
    return lower, upper


def predicted_minimum(gp: SparseGP, candidates: Tensor, lower: ArrayLike, upper: ArrayLike, *, maxiter: int = 150) -> float:
    """The EI incumbent of D-VAE's BO: the minimum predicted mean over ``candidates`` and the observed points,
    refined by L-BFGS-B on the mean (box bounds) from the best candidate."""
    lower, upper = _box(gp, lower, upper)
    return _incumbent(gp, candidates, gp.predict(candidates)[0], lower, upper, maxiter)


def _incumbent(gp: SparseGP, candidates: Tensor, candidate_mean: Tensor, lower: Tensor, upper: Tensor, maxiter: int) -> float:
    best = int(candidate_mean.argmin())
    _, refined = _lbfgsb(lambda x: gp.posterior(x)[0], candidates[best], lower, upper, maxiter)
    return min(float(candidate_mean[best]), float(gp.predict(gp.train_X)[0].min()), refined)


def candidate_grid(
    gp: SparseGP, lower: ArrayLike, upper: ArrayLike, size: int = 10000, *, kind: str = "uniform",
    mean: ArrayLike | None = None, std: ArrayLike | None = None, seed: int = 0,
) -> Tensor:
    """The acquisition grid of D-VAE's BO (``select_batch`` draws exactly this one for its ``seed``): ``size``
    points uniform in the box, or ``N(mean, std**2)`` clamped into it (default: the training inputs'
    mean and population std)."""
    lower, upper = _box(gp, lower, upper)
    gen = torch.Generator().manual_seed(seed)
    d = lower.numel()
    if kind == "uniform":
        return lower + (upper - lower) * torch.rand(size, d, generator=gen, dtype=lower.dtype)
    if kind != "normal":
        raise ConfigError(f"grid must be 'uniform' or 'normal', got {kind!r}")
    mean = gp.train_X.mean(0) if mean is None else torch.as_tensor(mean, dtype=lower.dtype).reshape(-1)
    std = gp.train_X.std(0, unbiased=False) if std is None else torch.as_tensor(std, dtype=lower.dtype).reshape(-1)
    if mean.numel() != d or std.numel() != d:
        raise ConfigError(f"mean and std must have {d} entries, got {mean.numel()} and {std.numel()}")
    return torch.minimum(torch.maximum(mean + std * torch.randn(size, d, generator=gen, dtype=lower.dtype), lower), upper)


class _Believer:
    """Sequential Gaussian conditioning of the SGP posterior over a fixed point set ``P`` (the greedy
    loop's fast path; the same maths as ``SparseGP.with_points``, one rank-one update per point).

    gpytorch's joint posterior over ``P`` is computed once; conditioning on ``y`` at ``P[j]`` takes that
    covariance column minus the earlier updates' contributions (``c``), then updates
    ``mean += c (y - mean_j) / (var_j + noise)`` and ``var -= c**2 / (var_j + noise)``.
    """

    def __init__(self, gp: SparseGP, P: Tensor) -> None:
        self.gp, self.P, self.observed = gp, P, []  # gp's own fantasy points are ignored: condition on them explicitly
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", GPInputWarning)
            out = gp._require_model()(P)
            self.cov, self.mean, self.var = out.lazy_covariance_matrix, out.mean.clone(), out.variance.clone()
        self.W = torch.zeros(len(P), 0, dtype=P.dtype)

    def condition(self, j: int, y: float) -> None:
        with torch.no_grad(), _quiet_slicing():
            c = self.cov[:, j : j + 1].to_dense().squeeze(-1) - self.W @ self.W[j]
            w = c / math.sqrt(max(float(c[j]), 0.0) + self.gp.noise)
            self.mean += w * (y - float(self.mean[j])) / math.sqrt(max(float(c[j]), 0.0) + self.gp.noise)
            self.var = (self.var - w.pow(2)).clamp_min(1e-12)
            self.W = torch.cat([self.W, w[:, None]], 1)
        self.observed.append((j, y))

    def extended(self, x: Tensor) -> _Believer:
        """The same conditioning over ``P`` plus one more point (appended last)."""
        new = _Believer(self.gp, torch.cat([self.P, x[None]]))
        for j, y in self.observed:
            new.condition(j, y)
        return new


def select_batch(
    gp: SparseGP,
    lower: ArrayLike,
    upper: ArrayLike,
    batch_size: int = 50,
    *,
    grid_size: int = 10000,
    grid: str = "uniform",
    mean: ArrayLike | None = None,
    std: ArrayLike | None = None,
    seed: int = 0,
    lbfgs_maxiter: int = 150,
    refine_all: bool = False,
) -> Tensor:
    """A batch of ``batch_size`` distinct points in the box ``[lower, upper]`` by greedy kriging-believer EI (D-VAE's BO).

    - Candidates: ``candidate_grid(gp, lower, upper, grid_size, kind=grid, mean=mean, std=std, seed=seed)``.
    - Incumbent: the minimum predicted mean over the grid and the observed points, L-BFGS-B refined
      (``predicted_minimum``); fixed for the whole batch.
    - Point 1: L-BFGS-B (box bounds, ``lbfgs_maxiter``) on ``-log EI`` from the best grid point, kept
      only if it beats that grid point.
    - Points 2..B: the posterior is conditioned on every chosen point at its predicted mean (kriging
      believer, no randomness; ``SparseGP.with_points``), and EI is maximised again over the unused
      grid points. Grid only by default; ``refine_all=True`` also runs L-BFGS-B from each grid argmax.

    A model already conditioned by ``with_points`` keeps its points. Deterministic given ``seed``.
    Returns a ``[batch_size, d]`` tensor in the box.
    """
    lower, upper = _box(gp, lower, upper)
    if batch_size < 1 or grid_size < batch_size:
        raise ConfigError(f"need 1 <= batch_size <= grid_size, got batch_size={batch_size}, grid_size={grid_size}")
    candidates = candidate_grid(gp, lower, upper, grid_size, kind=grid, mean=mean, std=std, seed=seed)
    grid_mean, grid_var = gp.predict(candidates)
    incumbent = _incumbent(gp, candidates, grid_mean, lower, upper, lbfgs_maxiter)

    def refine(model: SparseGP, x: Tensor, log_ei: float) -> Tensor:
        x_opt, neg = _lbfgsb(lambda z: -log_expected_improvement(*model.posterior(z), incumbent), x, lower, upper, lbfgs_maxiter)
        return x_opt if -neg > log_ei else x

    fantasy_X, fantasy_y = gp.fantasy if gp.fantasy is not None else (candidates[:0], grid_mean[:0])
    used = (candidates[:, None, :] == fantasy_X[None]).all(-1).any(-1)  # never re-propose a pending point
    log_ei = log_expected_improvement(grid_mean, grid_var, incumbent).masked_fill(used, -math.inf)
    best = int(log_ei.argmax())
    chosen = [refine(gp, candidates[best], float(log_ei[best]))]
    used[best] = torch.equal(chosen[0], candidates[best])  # a refined point 1 leaves its start point available
    f = len(fantasy_X)
    believer = _Believer(gp, torch.cat([fantasy_X, chosen[0][None], candidates]))  # from the unconditioned SGPR
    for j in range(f):
        believer.condition(j, float(fantasy_y[j]))
    believer.condition(f, float(believer.mean[f]))
    for _ in range(1, batch_size):
        log_ei = log_expected_improvement(believer.mean[f + 1 : f + 1 + grid_size], believer.var[f + 1 : f + 1 + grid_size], incumbent)
        j = int(log_ei.masked_fill(used, -math.inf).argmax())
        used[j] = True
        x, index = candidates[j], f + 1 + j
        if refine_all:
            beliefs = torch.tensor([y for _, y in believer.observed[f:]], dtype=gp.dtype)
            cond = gp.with_points(torch.stack(chosen), beliefs, standardized=True)
            x = refine(cond, x, float(log_ei[j]))
            if not torch.equal(x, candidates[j]):
                believer, index = believer.extended(x), len(believer.P)
        chosen.append(x)
        believer.condition(index, float(believer.mean[index]))
    return torch.stack(chosen)


def select_from_pool(gp: SparseGP, pool: ArrayLike, batch_size: int, *, available: ArrayLike | None = None) -> list[int]:
    """Indices of up to ``batch_size`` rows of ``pool`` [P, d] by greedy kriging-believer EI (minimisation).

    The incumbent is the lowest posterior mean at the observed points. Each pick conditions the
    posterior over the pool on the picked point at its predicted mean, so the next pick goes where
    the model is still uncertain; points the model was conditioned on with ``with_points`` (running
    trials) are believed the same way. ``available`` [P] bool leaves out rows already proposed.
    Deterministic.
    """
    pool = _as_matrix(pool, "pool", gp.dtype, gp.train_X.shape[1])
    avail = torch.ones(len(pool), dtype=torch.bool) if available is None else torch.as_tensor(available, dtype=torch.bool).clone()
    if avail.shape != (len(pool),):
        raise ConfigError(f"available must have one entry per pool row ({len(pool)}), got shape {tuple(avail.shape)}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    incumbent = float(gp.predict(gp.train_X)[0].min())
    fantasy_X, fantasy_y = gp.fantasy if gp.fantasy is not None else (pool[:0], pool.new_zeros(0))
    f = len(fantasy_X)
    believer = _Believer(gp, torch.cat([fantasy_X, pool]))
    for j in range(f):
        believer.condition(j, float(fantasy_y[j]))
    picks: list[int] = []
    for _ in range(batch_size):
        log_ei = log_expected_improvement(believer.mean[f:], believer.var[f:], incumbent).masked_fill(~avail, -math.inf)
        j = int(log_ei.argmax())
        if not avail[j]:
            break
        picks.append(j)
        avail[j] = False
        if len(picks) < batch_size:
            believer.condition(f + j, float(believer.mean[f + j]))
    return picks


# ------------------------------------------------------------------------------------------ bin sampling
def latent_bin_sample(Z: np.ndarray, num_samples: int, *, dims: int = 4, seed: int = 0) -> np.ndarray:
    """VS-GAE's latent-space bin sampling (VS-GAE, Friede et al. 2019): sorted row indices.

    1. PCA of ``Z`` (the latent means) to ``dims`` dimensions.
    2. ``B`` equal bins per dimension over ``[min, max]`` (width ``w``), the grid shifted by ``u * w``
       with ``u ~ U[0, 1]`` per dimension (drawn once): bin index ``floor((x - min + u*w) / w)``.
    3. ``B`` is the binary-searched bin count whose number of non-empty bins is closest to
       ``num_samples`` (ties go to the larger ``B``).
    4. From each non-empty bin, the point closest (Euclidean, PCA space) to the bin centre.
    5. Too many: drop uniformly at random. Too few (``k`` missing): if more than ``k`` bins still have
       unselected points, one random unselected point from each of ``k`` random such bins; otherwise
       one from every such bin, and repeat.

    Returns exactly ``min(num_samples, len(Z))`` distinct indices.
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] == 0:
        raise ConfigError(f"Z must be a non-empty 2-d array [n, d], got shape {Z.shape}")
    if not np.isfinite(Z).all():
        raise ConfigError("Z contains NaN or infinite values")
    if num_samples < 0 or dims < 1:
        raise ConfigError(f"num_samples must be >= 0 and dims >= 1, got {num_samples} and {dims}")
    n = Z.shape[0]
    target = min(int(num_samples), n)
    if target == n:
        return np.arange(n)
    if target == 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(seed)
    from sklearn.decomposition import PCA

    P = PCA(n_components=min(dims, *Z.shape), random_state=seed).fit_transform(Z)
    lo, span = P.min(0), P.max(0) - P.min(0)
    span = np.where(span > 0, span, 1.0)
    shift = rng.uniform(size=P.shape[1])

    def binning(B: int) -> tuple[np.ndarray, np.ndarray, int]:
        w = span / B
        cells = np.clip(np.floor((P - lo + shift * w) / w), 0, B).astype(np.int64)  # (clip: rounding at the max)
        if (B + 1) ** P.shape[1] < 2**62:  # one integer key per cell: a fast 1-d unique
            keys, inverse = np.unique(np.ravel_multi_index(cells.T, (B + 1,) * P.shape[1]), return_inverse=True)
        else:
            keys, inverse = np.unique(cells, axis=0, return_inverse=True)
        return cells, inverse.reshape(-1), len(keys)

    counts: dict[int, int] = {}

    def count(B: int) -> int:
        if B not in counts:
            counts[B] = binning(B)[2]
        return counts[B]

    hi = 1
    while count(hi) < target and hi < 2**20:
        hi *= 2
    lo_b = max(1, hi // 2)
    while hi - lo_b > 1:  # smallest B (within [lo_b, hi]) with count(B) >= target
        mid = (lo_b + hi) // 2
        lo_b, hi = (lo_b, mid) if count(mid) >= target else (mid, hi)
    B = hi if abs(count(hi) - target) <= abs(count(lo_b) - target) else lo_b

    cells, inverse, n_bins = binning(B)
    w = span / B
    centres = lo - shift * w + (cells + 0.5) * w
    dist = np.linalg.norm(P - centres, axis=1)
    order = np.lexsort((dist, inverse))  # by bin, then distance to its centre
    first = np.ones(n, dtype=bool)
    first[1:] = inverse[order][1:] != inverse[order][:-1]
    selected = order[first]
    if len(selected) > target:
        selected = rng.choice(selected, size=target, replace=False)
    taken = np.zeros(n, dtype=bool)
    taken[selected] = True
    while taken.sum() < target:
        missing = target - int(taken.sum())
        free = np.flatnonzero(~taken)
        free = free[rng.permutation(len(free))]  # one random unselected member per bin: first occurrence after a shuffle
        bins, first_free = np.unique(inverse[free], return_index=True)
        picks = free[first_free]
        if len(bins) > missing:
            picks = rng.choice(picks, size=missing, replace=False)
        taken[picks] = True
    return np.flatnonzero(taken)

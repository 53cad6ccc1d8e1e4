"""Curvature of a loss as linear operators: Hessian-vector products, Lanczos, sharpness.

Everything works on a *flat* parameter vector θ ∈ R^d, so Hessians are d×d operators that scipy's
Lanczos (`eigsh`) can consume. Hessian-vector products use double backward,
H v = ∇_θ ⟨∇_θ L(θ), v⟩; forward-over-reverse `torch.func.jvp(grad(L))` measured slower on this CPU
(`benchmarks/bench_curvature.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.sparse.linalg import LinearOperator, eigsh

LossFn = Callable[[], torch.Tensor]


def flat_params(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Concatenate parameters into one detached vector θ."""
    return torch.cat([p.detach().reshape(-1) for p in params])


def unflatten_like(vector: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Split a flat vector into tensors shaped like ``params``."""
    out, start = [], 0
    for p in params:
        out.append(vector[start : start + p.numel()].view_as(p))
        start += p.numel()
    return out


def hvp(loss_fn: LossFn, params: Sequence[torch.Tensor], vector: torch.Tensor) -> torch.Tensor:
    """Hessian-vector product H v = ∇_θ ⟨∇_θ L(θ), v⟩ by double backward, as a flat vector."""
    params = list(params)
    grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
    return _grad_dot(grads, params, vector, retain_graph=False)


def _grad_dot(grads, params, vector: torch.Tensor, retain_graph: bool) -> torch.Tensor:
    """∇_θ ⟨g(θ), v⟩ for a gradient ``grads`` built with ``create_graph=True``."""
    dot = sum((g * v).sum() for g, v in zip(grads, unflatten_like(vector, params), strict=True))
    hv = torch.autograd.grad(dot, params, retain_graph=retain_graph)
    return torch.cat([h.reshape(-1) for h in hv]).detach()


class HessianOperator(LinearOperator):
    """The symmetric operator v ↦ D H (D v), with H = ∇²L(θ) and D an optional positive diagonal.

    With D = P^{-1/2} its spectrum is that of the preconditioned Hessian P^{-1} H (similar matrices;
    Cohen et al. 2022); with D = None it is H itself. The gradient graph is built once, on the first
    product, and reused: each further product costs one backward pass through it. The parameters must
    not change while the operator is in use. Counts the products it computes in ``n_products``.
    """

    def __init__(
        self, loss_fn: LossFn, params: Sequence[torch.Tensor], scaling: torch.Tensor | None = None
    ) -> None:
        self.loss_fn, self.params = loss_fn, list(params)
        self.like = self.params[0]
        d = sum(p.numel() for p in self.params)
        self.scaling = None if scaling is None else scaling.detach().to(self.like)
        self.n_products = 0
        self._grads = None
        super().__init__(dtype=np.float64, shape=(d, d))

    def _gradient(self):
        if self._grads is None:
            self._grads = torch.autograd.grad(self.loss_fn(), self.params, create_graph=True)
        return self._grads

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        self._gradient()
        self.n_products += 1
        u = torch.as_tensor(np.ascontiguousarray(v).reshape(-1), dtype=self.like.dtype)
        if self.scaling is not None:
            u = u * self.scaling
        hu = _grad_dot(self._grads, self.params, u, retain_graph=True)
        if self.scaling is not None:
            hu = hu * self.scaling
        return hu.to(torch.float64).numpy()

    def _rmatvec(self, v: np.ndarray) -> np.ndarray:
        return self._matvec(v)

    def products(self, vectors: torch.Tensor) -> torch.Tensor:
        """D H D v for every row v of ``vectors`` (k, d), in one batched backward pass through the
        gradient graph (``is_grads_batched``: autograd vmaps the second backward over the k rows), so k
        products cost one graph traversal of k-wide tensors instead of k traversals. Returns (k, d) on
        the parameters' dtype; counts k products. ``benchmarks/bench_hessian_diagonal.py`` measures the
        products per second against the batch size k.
        """
        grads = self._gradient()
        if vectors.dim() != 2 or vectors.shape[1] != self.shape[0]:
            raise ValueError(
                f"products: vectors must have shape (k, {self.shape[0]}), got {tuple(vectors.shape)}"
            )
        k = vectors.shape[0]
        self.n_products += k
        u = vectors.detach().to(self.like)
        if self.scaling is not None:
            u = u * self.scaling
        parts, start = [], 0
        for p in self.params:
            parts.append(u[:, start : start + p.numel()].reshape(k, *p.shape))
            start += p.numel()
        hu = torch.autograd.grad(
            grads, self.params, grad_outputs=parts, retain_graph=True, is_grads_batched=True
        )
        out = torch.cat([h.reshape(k, -1) for h in hu], dim=1).detach()
        return out * self.scaling if self.scaling is not None else out

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X)
        return self.products(torch.as_tensor(X.T.copy())).to(torch.float64).numpy().T


def top_eigenpairs(
    operator: LinearOperator,
    k: int = 1,
    v0: np.ndarray | None = None,
    tol: float = 1e-3,
    maxiter: int = 400,
    ncv: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest (algebraic) eigenvalues, descending, and their eigenvectors, by Lanczos.

    ``v0`` warm-starts the Krylov space (e.g. the previous top eigenvector along a trajectory; a fixed
    seeded vector otherwise, so that results are deterministic, unlike ARPACK's own random start); the
    iteration count is bounded by ``maxiter`` so a hard spectrum cannot stall a chapter. ``tol`` bounds
    the residual ‖Hx − λx‖ relative to λ; the eigenvalue's own error is about its square over the gap
    (1e-7 to 1e-6 relative at 1e-3 on the chapter's model, `benchmarks/bench_curvature.py`). A Krylov
    space of ``ncv`` = max(2k + 2, 6) vectors (scipy's default is 20) lets a warm start pay off: each
    ARPACK restart costs ncv products, so with 20 a perfect start costs as much as a random one.
    """
    ncv = min(operator.shape[0], ncv or max(2 * k + 2, 6))
    if v0 is None:
        v0 = np.random.default_rng(0).standard_normal(operator.shape[0])
    values, vectors = eigsh(operator, k=k, which="LA", v0=v0, tol=tol, maxiter=maxiter, ncv=ncv)
    order = np.argsort(values)[::-1]
    return values[order], vectors[:, order]


def power_iteration(
    operator: LinearOperator, tol: float = 1e-4, max_products: int = 10_000, seed: int = 0
) -> tuple[float, int]:
    """Top eigenvalue (largest magnitude) by power iteration; returns (value, products used).

    Stops when the Rayleigh quotient changes by less than ``tol`` relative between iterations. The
    baseline Lanczos is measured against.
    """
    v = np.random.default_rng(seed).standard_normal(operator.shape[0])
    v /= np.linalg.norm(v)
    value = 0.0
    for n in range(1, max_products + 1):
        w = operator.matvec(v)
        new = float(v @ w)
        v = w / np.linalg.norm(w)
        if n > 1 and abs(new - value) <= tol * abs(new):
            return new, n
        value = new
    return value, max_products


def sharpness(loss_fn: LossFn, params: Sequence[torch.Tensor], **lanczos) -> float:
    """λ1(∇²L(θ)), the top Hessian eigenvalue (Cohen et al. 2021)."""
    values, _ = top_eigenpairs(HessianOperator(loss_fn, params), **lanczos)
    return float(values[0])


def preconditioned_sharpness(
    loss_fn: LossFn, params: Sequence[torch.Tensor], preconditioner: torch.Tensor, **lanczos
) -> float:
    """λ1(P^{-1} H) = λ1(P^{-1/2} H P^{-1/2}) for a positive diagonal P (Cohen et al. 2022).

    ``preconditioner`` is the flat diagonal of P, as the optimizer divides by it.
    """
    operator = HessianOperator(loss_fn, params, scaling=preconditioner.rsqrt())
    values, _ = top_eigenpairs(operator, **lanczos)
    return float(values[0])


# ------------------------------------------------------------------ per-example gradients, NTK trace, 𝒦


def per_example_jacobian_norms(model: torch.nn.Module, X: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """``‖J_α‖_F²`` for every input ``x_α`` (rows of ``X``), with ``J_α = ∂f(x_α; θ)/∂θ`` (C × P).

    Per-example Jacobians come from ``torch.func.vmap(torch.func.jacrev(f))`` over
    ``torch.func.functional_call``, ``chunk`` inputs at a time (memory ``chunk·C·P`` numbers). Buffers are
    held fixed; every parameter with ``requires_grad`` counts.
    """
    if chunk < 1:
        raise ValueError(f"per_example_jacobian_norms: chunk must be at least 1, got {chunk}")
    params = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    buffers = {k: b.detach() for k, b in model.named_buffers()}

    def output(p: dict, x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(model, (p, buffers), (x.unsqueeze(0),)).squeeze(0)

    per_example = torch.func.vmap(torch.func.jacrev(output), in_dims=(None, 0))
    norms = []
    for start in range(0, len(X), chunk):
        jac = per_example(params, X[start : start + chunk])
        norms.append(sum(j.pow(2).flatten(1).sum(1) for j in jac.values()))
    return torch.cat(norms).detach()


def ntk_trace(model: torch.nn.Module, X: torch.Tensor, chunk: int = 64) -> float:
    """``tr Θ = tr G = (1/n) Σ_α ‖J_α‖_F²`` over the ``n`` rows of ``X``.

    ``Θ = J Jᵀ/n`` is the (nC × nC) empirical NTK of the loss ``L = (1/2n) Σ_α ‖f(x_α) − y_α‖²`` and
    ``G = (1/n) Σ_α J_αᵀ J_α`` its Gauss-Newton matrix; both have the same nonzero spectrum, hence the same
    trace. Computed from per-example Jacobians (:func:`per_example_jacobian_norms`).
    """
    return float(per_example_jacobian_norms(model, X, chunk).mean())


def batch_noise_factor(batch: int, n: int, replacement: bool = False) -> float:
    """β of SGD's batch-selection noise: ``1/B − 1/n`` (batches drawn without replacement), ``1/B`` (with)."""
    if not 1 <= batch <= n:
        raise ValueError(f"batch_noise_factor: batch must lie in [1, {n}], got {batch}")
    return 1.0 / batch if replacement else 1.0 / batch - 1.0 / n


def noise_kernel_norm(
    eigenvalues, lr: float, batch: int, n: int, outputs: int = 1, replacement: bool = False
) -> float:
    """``𝒦 = (η β / C) Σ_i λ_i / (2 − η λ_i) = (η β / C) tr[Θ (2 − ηΘ)⁻¹]`` for NTK eigenvalues ``λ_i``.

    The noise kernel norm of the stochastic edge of stability (Agarwala & Pennington 2024): in the linear
    model with the isotropy approximation the second moment of SGD's residuals stays bounded iff
    ``η λ_max < 2`` and ``𝒦 < 1``. This closed form and its ``1/C`` are our derivation (the paper's
    normalisation could not be read). Returns ``inf`` when ``η λ_max ≥ 2``.
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lr * lam.max() >= 2:
        return math.inf
    beta = batch_noise_factor(batch, n, replacement)
    return float(lr * beta / outputs * np.sum(lam / (2.0 - lr * lam)))


def noise_kernel_trace(
    trace: float, lr: float, batch: int, n: int, outputs: int = 1, replacement: bool = False
) -> float:
    """``𝒦₀ = η β tr Θ / (2C)``: :func:`noise_kernel_norm` far from the edge of stability (``η λ_i ≪ 2``)."""
    return lr * batch_noise_factor(batch, n, replacement) * trace / (2.0 * outputs)


def noise_kernel_edge_lr(
    eigenvalues, batch: int, n: int, outputs: int = 1, replacement: bool = False
) -> float:
    """The learning rate ``η_𝒦`` at which :func:`noise_kernel_norm` equals 1 (root in ``(0, 2/λ_max)``).

    𝒦 rises monotonically in η from 0 and diverges at ``η = 2/λ_max``, so the root is unique; for the full
    batch without replacement (β = 0) it is ``2/λ_max``.
    """
    lam_max = float(np.max(eigenvalues))
    if batch_noise_factor(batch, n, replacement) == 0:
        return 2.0 / lam_max
    edge = 2.0 / lam_max

    def excess(lr: float) -> float:
        return noise_kernel_norm(eigenvalues, lr, batch, n, outputs, replacement) - 1.0

    return float(brentq(excess, 0.0, edge * (1 - 1e-12), xtol=1e-14 * edge, rtol=1e-12))

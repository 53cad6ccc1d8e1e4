"""Curvature of a loss as linear operators: Hessian-vector products, Lanczos, sharpness.

Everything works on a *flat* parameter vector θ ∈ R^d, so Hessians are d×d operators that scipy's
Lanczos (`eigsh`) can consume. Hessian-vector products use double backward,
H v = ∇_θ ⟨∇_θ L(θ), v⟩; forward-over-reverse `torch.func.jvp(grad(L))` measured slower on this CPU
(`benchmarks/bench_curvature.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
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

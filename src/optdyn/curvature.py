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


# ------------------------------------------------------------------------------------------------------
# The Gauss-Newton split H = G + NME of a softmax cross-entropy loss (Dauphin, Agarwala & Mobahi 2024)


def softmax_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L = (1/N) Σ_i −Σ_k y_ik log softmax(z_i)_k for one-hot (or probability) targets ``y``."""
    return -(targets * torch.log_softmax(logits, dim=1)).sum() / len(logits)


def _functional_model(model: torch.nn.Module, inputs: torch.Tensor):
    """θ ↦ z(θ) = f(θ, X) on a tuple of parameter tensors, by `torch.func.functional_call`."""
    names = [name for name, p in model.named_parameters() if p.requires_grad]

    def logits(*params: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(model, dict(zip(names, params, strict=True)), (inputs,))

    return logits


class GaussNewtonSplit:
    """The loss Hessian H = ∇²_θ L of a model under softmax cross-entropy and its Gauss-Newton split

    .. math::

        H = \\underbrace{J^\\top H_z J}_{G} + \\underbrace{\\textstyle\\sum_{i,k}
        \\partial L/\\partial z_{ik}\\, \\nabla^2_\\theta z_{ik}}_{\\mathrm{NME}},
        \\qquad H_z = \\tfrac1N(\\operatorname{diag}(p_i) - p_i p_i^\\top)\\ \\text{per example},

    (Dauphin, Agarwala & Mobahi 2024, their first display; ``J = ∂z/∂θ``, ``p_i = softmax(z_i)``), as
    products with flat vectors on the batch ``(inputs, targets)`` at the model's current weights:
    ``hessian(v)`` is forward-over-reverse ``jvp(grad L)``, ``gauss_newton(v)`` pushes v through the model's
    ``jvp``, multiplies by H_z and pulls back with its ``vjp``, ``nme(v) = hessian(v) − gauss_newton(v)``.
    ``nme_direct(v)`` is an independent route to the same product: the Hessian-vector product of
    θ ↦ Σ_ik c_ik z_ik(θ) with the residual c = ∂L/∂z frozen. ``operator(part)`` wraps one of them as a
    scipy `LinearOperator` for Lanczos. The weights must not change while the object is in use.
    """

    PARTS = ("hessian", "gauss_newton", "nme")

    def __init__(self, model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.params = tuple(p.detach() for p in model.parameters() if p.requires_grad)
        self.like = self.params[0]
        self.dim = sum(p.numel() for p in self.params)
        self.logits = _functional_model(model, inputs)
        self.targets = targets
        with torch.no_grad():
            z = self.logits(*self.params)
        self.probs = torch.softmax(z, dim=1)
        #: ∂L/∂z = (p − y)/N, the residual that weights the NME.
        self.residual = (self.probs - targets) / len(z)

    def _parts(self, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(unflatten_like(v.to(self.like), self.params))

    @staticmethod
    def _flat(parts) -> torch.Tensor:
        return torch.cat([t.reshape(-1) for t in parts]).detach()

    def loss(self, *params: torch.Tensor) -> torch.Tensor:
        """L(θ) on the batch."""
        return softmax_cross_entropy(self.logits(*params), self.targets)

    def hessian(self, v: torch.Tensor) -> torch.Tensor:
        """H v = d/dε ∇L(θ + εv) by `torch.func.jvp` of `torch.func.grad`."""
        grad = torch.func.grad(self.loss, argnums=tuple(range(len(self.params))))
        _, hv = torch.func.jvp(grad, self.params, self._parts(v))
        return self._flat(hv)

    def output_hessian(self, u: torch.Tensor) -> torch.Tensor:
        """H_z u per example: (p ⊙ u − p (p·u))/N for u of the logits' shape (N, K)."""
        p = self.probs
        return (p * u - p * (p * u).sum(dim=1, keepdim=True)) / len(p)

    def gauss_newton(self, v: torch.Tensor) -> torch.Tensor:
        """G v = Jᵀ H_z J v: `torch.func.jvp` of the model, H_z per example, `torch.func.vjp` back."""
        _, jv = torch.func.jvp(self.logits, self.params, self._parts(v))
        _, pull = torch.func.vjp(self.logits, *self.params)
        return self._flat(pull(self.output_hessian(jv)))

    def nme(self, v: torch.Tensor) -> torch.Tensor:
        """NME v = H v − G v."""
        return self.hessian(v) - self.gauss_newton(v)

    def nme_direct(self, v: torch.Tensor) -> torch.Tensor:
        """NME v as the Hessian-vector product of θ ↦ Σ_ik c_ik z_ik(θ) with c = ∂L/∂z held fixed."""

        def weighted_logits(*params: torch.Tensor) -> torch.Tensor:
            return (self.residual * self.logits(*params)).sum()

        grad = torch.func.grad(weighted_logits, argnums=tuple(range(len(self.params))))
        _, hv = torch.func.jvp(grad, self.params, self._parts(v))
        return self._flat(hv)

    def operator(self, part: str) -> LinearOperator:
        """``part`` ∈ {hessian, gauss_newton, nme} as a symmetric scipy `LinearOperator` (float64)."""
        if part not in self.PARTS:
            raise ValueError(f"GaussNewtonSplit: unknown part {part!r}; known: {', '.join(self.PARTS)}")
        product = getattr(self, part)

        def matvec(v: np.ndarray) -> np.ndarray:
            u = torch.as_tensor(np.ascontiguousarray(v).reshape(-1))
            return product(u).to(torch.float64).numpy()

        return LinearOperator((self.dim, self.dim), matvec=matvec, rmatvec=matvec, dtype=np.float64)

    def hutchinson(self, probes: int = 10, seed: int = 0) -> dict[str, dict[str, float]]:
        """Trace and Frobenius norm of H, G and NME from the same ``probes`` Rademacher vectors r:
        tr A ≈ mean rᵀAr and ‖A‖_F² ≈ mean ‖Ar‖² (both unbiased); NME r = H r − G r."""
        if probes < 1:
            raise ValueError(f"hutchinson: probes must be at least 1, got {probes}")
        gen = torch.Generator().manual_seed(seed)
        sums = {part: [0.0, 0.0] for part in self.PARTS}
        for _ in range(probes):
            r = (torch.randint(0, 2, (self.dim,), generator=gen) * 2 - 1).to(self.like)
            hr, gr = self.hessian(r), self.gauss_newton(r)
            for part, ar in zip(self.PARTS, (hr, gr, hr - gr), strict=True):
                sums[part][0] += float(r @ ar)
                sums[part][1] += float(ar @ ar)
        return {
            part: {"trace": t / probes, "frobenius": (f / probes) ** 0.5} for part, (t, f) in sums.items()
        }

    def extreme_eigenvalues(self, part: str, tol: float = 1e-2, maxiter: int = 200) -> tuple[float, float]:
        """The smallest and largest eigenvalue of one part by Lanczos (``which='BE'``, seeded start)."""
        v0 = np.random.default_rng(0).standard_normal(self.dim)
        values = eigsh(self.operator(part), k=2, which="BE", v0=v0, tol=tol, maxiter=maxiter, ncv=12)[0]
        return float(values.min()), float(values.max())

    def dense(self) -> dict[str, torch.Tensor]:
        """H, G and NME as dense d×d matrices (small models only: d² entries), from `torch.func.hessian`
        of L and the per-example Jacobian by `torch.func.jacrev`; NME = H − G."""
        flat = self._flat(self.params)

        def loss_flat(theta: torch.Tensor) -> torch.Tensor:
            return self.loss(*unflatten_like(theta, self.params))

        def logits_flat(theta: torch.Tensor) -> torch.Tensor:
            return self.logits(*unflatten_like(theta, self.params))

        H = torch.func.hessian(loss_flat)(flat)
        J = torch.func.jacrev(logits_flat)(flat)  # (N, K, d)
        p = self.probs
        Hz = (torch.diag_embed(p) - p[:, :, None] * p[:, None, :]) / len(p)  # (N, K, K)
        G = torch.einsum("nkd,nkl,nle->de", J, Hz, J)
        return {"hessian": H, "gauss_newton": G, "nme": H - G}


def block_slices(model: torch.nn.Module) -> dict[str, slice]:
    """The flat index range of each trained parameter tensor, by name, in ``model.parameters()`` order."""
    out, start = {}, 0
    for name, p in model.named_parameters():
        if p.requires_grad:
            out[name] = slice(start, start + p.numel())
            start += p.numel()
    return out

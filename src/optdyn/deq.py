"""Deep equilibrium (DEQ) layers: fixed-point solvers, implicit gradients, weight families, mean-field theory.

A fully connected DEQ (Agarwala & Schoenholz 2022, eq. 1) outputs the fixed point

    z* = F(z*),   F(z) = tanh(W z + U x + b),   logits = V z* + c,

found by a solver that reports its convergence (:func:`damped_iteration`, :func:`anderson`). Its gradient
comes from the implicit function theorem: with J = dF/dz at z* and a loss L(z*),

    dL/dθ = (dF/dθ)ᵀ g,   g = Jᵀ g + dL/dz*   (a linear fixed point, solved with vector-Jacobian products),

so no graph is kept through the iterations and no Jacobian is formed (:class:`DEQ`). The weight families of
:func:`init_matrix` share the second moment (1/N) tr(W Wᵀ) = σ_w² (except ``symmetric-edge``); the mean-field
functions (:func:`mean_field_fixed_point`) give the untied deep-network predictions the chapter compares with.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

#: Weight families. ``symmetric-edge``: symmetric with spectral edge σ_w (second moment σ_w²/4).
FAMILIES = ("gaussian", "orthogonal", "symmetric", "symmetric-edge")
SOLVERS = ("damped", "anderson")


# ---------------------------------------------------------------------------------------- weight families


def init_matrix(
    n: int, family: str, sigma_w: float, generator: torch.Generator, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """An n × n weight matrix of ``family`` at scale σ_w.

    - ``gaussian``: W_ij ~ N(0, σ_w²/n) i.i.d. (circular law: eigenvalues fill the disk of radius σ_w);
    - ``orthogonal``: W = σ_w O, O Haar orthogonal (QR of a Gaussian matrix, columns' signs fixed by diag R);
    - ``symmetric``: W = σ_w (G + Gᵀ)/√2, G_ij ~ N(0, 1/n) (GOE, semicircle on [−2σ_w, 2σ_w]);
    - ``symmetric-edge``: W = σ_w (G + Gᵀ)/(2√2): semicircle on [−σ_w, σ_w], second moment σ_w²/4.

    All but the last have (1/n) E tr(W Wᵀ) = σ_w².
    """
    if family not in FAMILIES:
        raise ValueError(f"init_matrix: unknown family {family!r}; known: {', '.join(FAMILIES)}")
    if n < 1 or not sigma_w >= 0:
        raise ValueError(f"init_matrix: need n ≥ 1 and σ_w ≥ 0, got n={n}, σ_w={sigma_w}")
    G = torch.randn(n, n, generator=generator, dtype=torch.float64) / math.sqrt(n)
    if family == "gaussian":
        W = G
    elif family == "orthogonal":
        Q, R = torch.linalg.qr(G)
        W = Q * torch.sign(torch.diagonal(R))
    else:
        W = (G + G.T) / math.sqrt(2)
        if family == "symmetric-edge":
            W = W / 2
    return (sigma_w * W).to(dtype)


# ---------------------------------------------------------------------------------------------- solvers


@dataclass
class SolverReport:
    """Per row of a batch: the relative residual ‖F(z) − z‖/‖F(z)‖ at the returned iterate and whether it is
    below ``tol``; ``iterations`` is the number of evaluations of F."""

    solver: str
    iterations: int
    residual: torch.Tensor
    tol: float

    @property
    def converged(self) -> torch.Tensor:
        return self.residual < self.tol

    @property
    def fraction(self) -> float:
        """Fraction of rows that converged (a non-finite residual counts as not converged)."""
        return float(self.converged.to(torch.float64).mean())


def _relative_residual(fz: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r = (fz - z).flatten(1).norm(dim=1) / (fz.flatten(1).norm(dim=1) + 1e-12)
    return torch.nan_to_num(r, nan=math.inf)


def damped_iteration(
    f: Callable[[torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    *,
    damping: float = 0.5,
    max_iter: int = 200,
    tol: float = 1e-4,
) -> tuple[torch.Tensor, SolverReport]:
    """z ← (1 − a) z + a F(z) until every row's relative residual is below ``tol`` or ``max_iter``.

    Locally convergent iff every eigenvalue λ of J = dF/dz at the fixed point has ``|1 − a + aλ| < 1``;
    a = 1 is plain iteration (a tied-weight deep network).
    """
    if not 0 < damping <= 1 or max_iter < 1:
        raise ValueError(
            f"damped_iteration: need 0 < damping ≤ 1 and max_iter ≥ 1, got {damping}, {max_iter}"
        )
    z = z0
    fz = f(z)
    k = 1
    residual = _relative_residual(fz, z)
    while k < max_iter and not bool((residual < tol).all()):
        z = (1 - damping) * z + damping * fz
        fz = f(z)
        k += 1
        residual = _relative_residual(fz, z)
    return z, SolverReport("damped", k, residual, tol)


def anderson(
    f: Callable[[torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    *,
    memory: int = 5,
    beta: float = 1.0,
    ridge: float = 1e-6,
    max_iter: int = 200,
    tol: float = 1e-4,
) -> tuple[torch.Tensor, SolverReport]:
    """Anderson acceleration (type II) of z = F(z), per row of a batch (Walker & Ni 2011).

    With the last m iterates x_i and residuals g_i = F(x_i) − x_i, the weights α minimise
    ‖Σ α_i g_i‖² + ridge ‖α‖² subject to Σ α_i = 1, and the next iterate is
    β Σ α_i F(x_i) + (1 − β) Σ α_i x_i.
    """
    if memory < 1 or max_iter < 2:
        raise ValueError(f"anderson: need memory ≥ 1 and max_iter ≥ 2, got {memory}, {max_iter}")
    shape = z0.shape
    b = shape[0]
    x0 = z0.reshape(b, -1)
    d = x0.shape[1]
    m = memory
    X = torch.zeros(b, m, d, dtype=z0.dtype)
    F = torch.zeros(b, m, d, dtype=z0.dtype)

    def fflat(x: torch.Tensor) -> torch.Tensor:
        return f(x.reshape(shape)).reshape(b, -1)

    X[:, 0], F[:, 0] = x0, fflat(x0)
    X[:, 1 % m], F[:, 1 % m] = F[:, 0], fflat(F[:, 0])
    H = torch.zeros(b, m + 1, m + 1, dtype=z0.dtype)
    H[:, 0, 1:] = H[:, 1:, 0] = 1
    y = torch.zeros(b, m + 1, 1, dtype=z0.dtype)
    y[:, 0] = 1
    k, last = 2, 1 % m
    best = X[:, last].clone()
    best_res = _relative_residual(F[:, last], X[:, last])
    while k < max_iter and not bool((best_res < tol).all()):
        n = min(k, m)
        G = F[:, :n] - X[:, :n]
        H[:, 1 : n + 1, 1 : n + 1] = G @ G.transpose(1, 2) + ridge * torch.eye(n, dtype=z0.dtype)
        alpha = torch.linalg.lstsq(H[:, : n + 1, : n + 1], y[:, : n + 1]).solution[:, 1 : n + 1, 0]
        last = k % m
        X[:, last] = beta * (alpha[:, None] @ F[:, :n])[:, 0] + (1 - beta) * (alpha[:, None] @ X[:, :n])[:, 0]
        F[:, last] = fflat(X[:, last])
        k += 1
        res = _relative_residual(F[:, last], X[:, last])
        better = res < best_res
        best = torch.where(better[:, None], X[:, last], best)
        best_res = torch.where(better, res, best_res)
    return best.reshape(shape), SolverReport("anderson", k, best_res, tol)


def solve(
    f: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor, solver: str = "damped", **kw
) -> tuple[torch.Tensor, SolverReport]:
    """The fixed point of ``f`` from ``z0`` by ``solver`` (``damped`` or ``anderson``), with its report."""
    if solver == "damped":
        return damped_iteration(f, z0, **kw)
    if solver == "anderson":
        return anderson(f, z0, **kw)
    raise ValueError(f"solve: unknown solver {solver!r}; known: {', '.join(SOLVERS)}")


def tanh_fixed_point(
    W: torch.Tensor, u: torch.Tensor, solver: str = "damped", **kw
) -> tuple[torch.Tensor, SolverReport]:
    """z* = tanh(W z* + u) for each row of ``u``, from z₀ = 0 (no graph), by :func:`solve`."""
    with torch.no_grad():
        z0 = torch.zeros(u.shape[0], W.shape[0], dtype=W.dtype)
        return solve(lambda z: torch.tanh(z @ W.T + u), z0, solver, **kw)


def equilibrium_jacobians(W: torch.Tensor, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """J = D W, D = diag(tanh'(h*)), h* = W z* + u, one n × n matrix per row of ``z`` (dense; analysis
    only)."""
    h = z @ W.T + u
    return (1 - torch.tanh(h) ** 2)[:, :, None] * W


# -------------------------------------------------------------------------------------------- the layer


class DEQ(nn.Module):
    """Fully connected DEQ: z* = tanh(W z* + U x + b), logits V z* + c (Agarwala & Schoenholz 2022, eq. 1).

    The forward pass solves for z* without a graph (from z₀ = 0), applies F once more with the graph, and
    registers a hook on that output which replaces the incoming gradient v = dL/dz* by the solution g of
    g = Jᵀ g + v (implicit function theorem), found with the backward solver from vector-Jacobian products
    ``autograd.grad(F(z*), z*, g)``. The gradients of W, U, b then follow from one VJP through F.
    ``last_forward`` and ``last_backward`` hold the latest :class:`SolverReport` of each pass.
    ``unrolled=True`` instead backpropagates through every iteration (plain differentiation, for tests).
    """

    def __init__(
        self,
        d: int,
        width: int,
        classes: int,
        *,
        family: str = "gaussian",
        sigma_w: float = 1.0,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        solver: str = "damped",
        backward_solver: str | None = None,
        max_iter: int = 200,
        tol: float = 1e-4,
        damping: float = 0.5,
    ) -> None:
        super().__init__()
        if solver not in SOLVERS or (backward_solver or solver) not in SOLVERS:
            raise ValueError(f"DEQ: solvers must be among {SOLVERS}, got {solver!r}, {backward_solver!r}")
        gen = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(init_matrix(width, family, sigma_w, gen, dtype))
        self.U = nn.Parameter(
            (torch.randn(width, d, generator=gen, dtype=torch.float64) / math.sqrt(d)).to(dtype)
        )
        self.b = nn.Parameter(torch.zeros(width, dtype=dtype))
        self.V = nn.Parameter(
            (torch.randn(classes, width, generator=gen, dtype=torch.float64) / math.sqrt(width)).to(dtype)
        )
        self.c = nn.Parameter(torch.zeros(classes, dtype=dtype))
        self.solver, self.backward_solver = solver, backward_solver or solver
        self.max_iter, self.tol, self.damping = max_iter, tol, damping
        self.unrolled = False
        self.last_forward: SolverReport | None = None
        self.last_backward: SolverReport | None = None

    def injection(self, x: torch.Tensor) -> torch.Tensor:
        """u = U x + b, row-wise."""
        return x @ self.U.T + self.b

    def cell(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """F(z) = tanh(W z + u), row-wise."""
        return torch.tanh(z @ self.W.T + u)

    def _kw(self, solver: str) -> dict:
        kw = dict(max_iter=self.max_iter, tol=self.tol)
        return kw | dict(damping=self.damping) if solver == "damped" else kw

    def fixed_point(self, x: torch.Tensor) -> tuple[torch.Tensor, SolverReport]:
        """z* for each row of ``x`` (no graph), from z₀ = 0, and the solver's report."""
        with torch.no_grad():
            return tanh_fixed_point(self.W, self.injection(x), self.solver, **self._kw(self.solver))

    def equilibrium(self, x: torch.Tensor) -> torch.Tensor:
        """z* with the implicit-gradient graph attached (or the unrolled graph if ``unrolled``)."""
        if self.unrolled:
            u = self.injection(x)
            z = torch.zeros(len(x), self.W.shape[0], dtype=self.W.dtype)
            for _ in range(self.max_iter):
                z = (1 - self.damping) * z + self.damping * self.cell(z, u)
            return z
        z_star, self.last_forward = self.fixed_point(x)
        u = self.injection(x)
        z = self.cell(z_star, u)
        if z.requires_grad:
            z0 = z_star.detach().requires_grad_()
            f0 = self.cell(z0, u.detach())

            def implicit(grad: torch.Tensor) -> torch.Tensor:
                def linear(g: torch.Tensor) -> torch.Tensor:
                    return torch.autograd.grad(f0, z0, g, retain_graph=True)[0] + grad

                kw = self._kw(self.backward_solver)
                g, self.last_backward = solve(linear, grad, self.backward_solver, **kw)
                return g

            z.register_hook(implicit)
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``V z* + c`` read from the equilibrium ``z*`` of each row of ``x``."""
        return self.equilibrium(x) @ self.V.T + self.c

    def jacobians(self, x: torch.Tensor) -> torch.Tensor:
        """J = D W with D = diag(tanh'(h*)), h* = W z* + U x + b, per row of ``x`` (analysis only; dense)."""
        with torch.no_grad():
            z, _ = self.fixed_point(x)
            return equilibrium_jacobians(self.W, z, self.injection(x))


def spectrum_stats(J: torch.Tensor, damping: float = 0.5) -> dict[str, np.ndarray]:
    """Per Jacobian (batch of n × n): spectral radius ρ(J) = max ``|λ|``, ``min |1 − λ|`` (the backward
    solve's margin), max Re λ, and the spectral radius ``max |1 − a + aλ|`` of the damped map (float64)."""
    lam = torch.linalg.eigvals(J.to(torch.float64))
    return dict(
        rho=lam.abs().amax(1).numpy(),
        gap=(1 - lam).abs().amin(1).numpy(),
        max_re=lam.real.amax(1).numpy(),
        rho_damped=((1 - damping) + damping * lam).abs().amax(1).numpy(),
    )


# ------------------------------------------------------------------------------------ mean-field theory


@functools.lru_cache(maxsize=8)
def gauss_hermite(nodes: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for E[g(h)], h ~ N(0, 1): E g ≈ Σ w_i g(x_i) (probabilists' Hermite; cached)."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    return x, w / w.sum()


def mean_field_fixed_point(
    sigma_w: float, q_x: float, nodes: int = 200, iters: int = 500
) -> dict[str, float]:
    """Untied mean field of z_{l+1} = tanh(W_l z_l + u), W_l fresh per layer with σ_w²/N variance.

    q* solves q = E[tanh(h)²], h ~ N(0, σ_w² q + q_x); χ = σ_w² E[tanh'(h)²] is the slope of the map
    (the circular-law radius of J = D W is √χ for Gaussian W); the single-ring inner radius for orthogonal
    W is σ_w / √E[tanh'(h)⁻²]. Returns q, q_h = σ_w² q + q_x, chi, sqrt_chi, inner. Gauss–Hermite with 200
    nodes: with 60, √χ at σ_w = 3, q_x = 1 comes out 1.276 instead of 1.308 (tanh'² is narrow against the
    width of h).
    """
    x, w = gauss_hermite(nodes)
    q = 0.5
    for _ in range(iters):
        q_new = float(w @ np.tanh(math.sqrt(sigma_w**2 * q + q_x) * x) ** 2)
        if abs(q_new - q) < 1e-13:
            q = q_new
            break
        q = q_new
    q_h = sigma_w**2 * q + q_x
    dphi2 = (1 - np.tanh(math.sqrt(q_h) * x) ** 2) ** 2
    chi = sigma_w**2 * float(w @ dphi2)
    with np.errstate(divide="ignore", over="ignore"):
        inner = sigma_w / math.sqrt(float(w @ (1 / dphi2)))
    return dict(q=q, q_h=q_h, chi=chi, sqrt_chi=math.sqrt(chi), inner=inner)


def untied_fixed_point_q(
    u: torch.Tensor, family: str, sigma_w: float, depth: int, generator: torch.Generator
) -> float:
    """mean ‖z_L‖²/N after ``depth`` layers z_{l+1} = tanh(W_l z_l + u), W_l fresh draws of ``family``
    (the untied counterpart of the DEQ; rows of ``u`` are inputs' injections)."""
    z = torch.zeros_like(u)
    for _ in range(depth):
        z = torch.tanh(z @ init_matrix(u.shape[1], family, sigma_w, generator, u.dtype).T + u)
    return float((z**2).mean())

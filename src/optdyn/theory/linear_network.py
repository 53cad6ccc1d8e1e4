"""Two-layer linear network of Jiang, Malik & Li (2023): setting, closed-form Hessian diagonal, prediction.

Model f(x) = W2 W1 x with W1 ∈ R^{m×d}, W2 ∈ R^{k×m}, square loss

    L(W1, W2) = (1/2n) Σ_j ‖W2 W1 x_j − y_j‖²,                                         (LN-1)

inputs x = s ⊙ z with z ~ N(0, I_d) and per-coordinate scales s (our stand-in for the paper's
non-uniform data; its exact data assumptions are not confirmed), teacher y = A x, small initialisation.
Because f is linear in each block separately, the Hessian diagonal has a closed form (Gauss–Newton exact
on the diagonal blocks):

    ∂²L/∂W1[a,j]² = Σ_xx[j,j] · ‖W2[:,a]‖²,     ∂²L/∂W2[b,a]² = (W1 Σ_xx W1ᵀ)[a,a],        (LN-2)

with Σ_xx = XᵀX/n. Hence R_med of the W1 block is max/median of the outer product of the input second
moments and the hidden units' output norms c_a = ‖W2[:,a]‖². If every hidden unit carries the same
c_a (a balanced network) it equals the data's own ratio, max_j Σ_jj / median_j Σ_jj          (LN-3)
(:func:`balanced_r_med`); any imbalance among the c_a raises it. The prediction (theorem of the paper,
shape only, constants unconfirmed): Adam's sign-like, per-coordinate-normalised updates keep the
c_a balanced, so R^Adam_med(W1) stays O(1) times (LN-3); GD grows the units that the initialisation
aligned with the teacher first, so R^GD_med(W1) exceeds it by a factor that grows with the input
non-uniformity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LinearNetProblem:
    """Data X (n, d), targets Y (n, k) = X Aᵀ, the scales s and the teacher A."""

    X: torch.Tensor
    Y: torch.Tensor
    scales: torch.Tensor
    teacher: torch.Tensor


def linear_net_problem(
    n: int = 512, d: int = 20, k: int = 5, spread: float = 10.0, seed: int = 0, dtype=torch.float64
) -> LinearNetProblem:
    """x_j = s_j z_j with s geometric from 1 to ``spread``; teacher A ~ N(0, 1/d)."""
    if spread < 1:
        raise ValueError(f"linear_net_problem: spread must be at least 1, got {spread}")
    if min(n, d, k) < 1:
        raise ValueError(f"linear_net_problem: n, d, k must be positive, got {n}, {d}, {k}")
    g = torch.Generator().manual_seed(seed)
    scales = torch.tensor(np.geomspace(1.0, spread, d), dtype=dtype)
    X = torch.randn(n, d, generator=g, dtype=dtype) * scales
    A = torch.randn(k, d, generator=g, dtype=dtype) / d**0.5
    return LinearNetProblem(X, X @ A.T, scales, A)


def linear_net_init(
    d: int, m: int, k: int, init_scale: float = 0.1, seed: int = 0, dtype=torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Small init: W1, W2 entries N(0, init_scale²/m), as leaf tensors that require grad."""
    g = torch.Generator().manual_seed(seed + 10_000)
    W1 = (torch.randn(m, d, generator=g, dtype=dtype) * init_scale / m**0.5).requires_grad_()
    W2 = (torch.randn(k, m, generator=g, dtype=dtype) * init_scale / m**0.5).requires_grad_()
    return W1, W2


def linear_net_loss(W1: torch.Tensor, W2: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """(LN-1): (1/2n) Σ_j ‖W2 W1 x_j − y_j‖²."""
    return 0.5 * ((X @ W1.T @ W2.T - Y) ** 2).sum() / len(X)


def linear_net_hessian_diagonal(
    W1: torch.Tensor, W2: torch.Tensor, X: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(LN-2): the Hessian diagonals of the W1 block (m, d) and of the W2 block (k, m), in closed form."""
    with torch.no_grad():
        second = (X**2).mean(dim=0)  # Σ_jj
        h1 = (W2**2).sum(dim=0)[:, None] * second[None, :]
        h2 = ((X @ W1.T) ** 2).mean(dim=0)[None, :].expand(W2.shape[0], -1)
    return h1, h2.clone()


def balanced_r_med(X: torch.Tensor) -> float:
    """(LN-3): R_med of the W1 block when all hidden units have equal output norm: max/median of Σ_jj."""
    second = (X**2).mean(dim=0)
    return float(second.max() / second.quantile(0.5))  # the mean of the middle two, as numpy


def unit_imbalance(W2: torch.Tensor) -> float:
    """max_a c_a / median_a c_a of the hidden units' output norms c_a = ‖W2[:,a]‖² (1 when balanced)."""
    c = (W2.detach() ** 2).sum(dim=0)
    return float(c.max() / c.quantile(0.5))

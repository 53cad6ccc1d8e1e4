"""SAM's edge of stability (Agarwala & Dauphin 2023) and the simplified model it is derived in.

On a quadratic L = ½ θᵀHθ, unnormalized SAM (USAM) θ ← θ − η∇L(θ + ρ∇L(θ)) is the linear map
θ ← (I − η(H + ρH²))θ, so an eigendirection of eigenvalue λ is stable iff −1 < 1 − ηλ(1 + ρλ) < 1, i.e.

    η λ (1 + ρ λ) < 2        ⇔        λ < λ*(η, ρ) = (√(1 + 8ρ/η) − 1) / (2ρ)      (λ* = 2/η at ρ = 0).

Normalized SAM θ ← θ − η∇L(θ + ρ g/‖g‖) is, at a given ‖g‖, USAM with radius ρ/‖g‖: its edge
λ*(η, ρ/‖g‖) moves with the gradient norm (our derivation by the same algebra; it agrees with Long &
Bartlett 2023; the paper's own treatment of the normalized case could not be read).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def usam_threshold(lr: float, rho: float) -> float:
    """λ*(η, ρ) = (√(1 + 8ρ/η) − 1)/(2ρ), the positive root of ηλ(1 + ρλ) = 2; 2/η at ρ = 0.

    For ρ ≫ η it behaves like √(2/(ηρ)). Written as 4/(η(1 + √(1 + 8ρ/η))) to stay exact as ρ → 0.
    """
    if not lr > 0:
        raise ValueError(f"usam_threshold: lr must be positive, got {lr}")
    if not rho >= 0:
        raise ValueError(f"usam_threshold: rho must be non-negative, got {rho}")
    return 4.0 / (lr * (1.0 + np.sqrt(1.0 + 8.0 * rho / lr)))


def sam_threshold(lr: float, rho: float, grad_norm: float) -> float:
    """Edge of normalized SAM at gradient norm ‖g‖: λ*(η, ρ/‖g‖) (our derivation, see module text)."""
    if not grad_norm > 0:
        raise ValueError(f"sam_threshold: grad_norm must be positive, got {grad_norm}")
    return usam_threshold(lr, rho / grad_norm)


def usam_multiplier(curvature: float, lr: float, rho: float) -> float:
    """The factor 1 − ηλ(1 + ρλ) by which one USAM step multiplies w on L = ½λw²."""
    return 1.0 - lr * curvature * (1.0 + rho * curvature)


@dataclass(frozen=True)
class QuadraticRegressionModel:
    """Second-order regression model with one output (Agarwala, Pedregosa & Pennington 2022).

    Residual z(θ) = z0 + Jᵀθ + ½ θᵀQθ, loss L = ½ z², Jacobian J(θ) = J + Qθ, gradient z J(θ),
    Hessian H(θ) = J(θ)J(θ)ᵀ + z Q, NTK eigenvalue ‖J(θ)‖². The Jacobian moves with θ, so the sharpness
    changes during training: the smallest model with progressive sharpening and an edge of stability.
    """

    J: np.ndarray
    Q: np.ndarray
    z0: float

    def residual(self, theta: np.ndarray) -> float:
        return float(self.z0 + self.J @ theta + 0.5 * theta @ self.Q @ theta)

    def grad(self, theta: np.ndarray) -> np.ndarray:
        return self.residual(theta) * (self.J + self.Q @ theta)

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        jac = self.J + self.Q @ theta
        return np.outer(jac, jac) + self.residual(theta) * self.Q

    def sharpness(self, theta: np.ndarray) -> float:
        return float(np.linalg.eigvalsh(self.hessian(theta))[-1])


def quadratic_regression_model(
    dim: int = 40, seed: int = 0, j_scale: float = 0.5, z0: float = 2.0
) -> QuadraticRegressionModel:
    """A random instance: J ~ N(0, j_scale²/dim), Q = (A + Aᵀ)/2, A_ij ~ N(0, 1/dim), residual z0 at θ = 0.

    The scales are ours (the paper's could not be read): they give λ1(H) ≈ 2.5 at θ = 0, rising to ≈ 3.5
    under gradient flow.
    """
    if dim < 1:
        raise ValueError(f"quadratic_regression_model: dim must be positive, got {dim}")
    rng = np.random.default_rng(seed)
    J = rng.standard_normal(dim) * j_scale / np.sqrt(dim)
    A = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return QuadraticRegressionModel(J, (A + A.T) / 2, float(z0))


def simulate_sam(
    model: QuadraticRegressionModel,
    lr: float,
    rho: float,
    steps: int,
    normalized: bool = False,
    divergence_loss: float = 1e6,
    every: int = 1,
) -> dict[str, np.ndarray | int | None]:
    """Iterate GD (ρ = 0), USAM or normalized SAM from θ = 0 on ``model``, recording every ``every`` steps.

    Returns arrays ``step``, ``loss``, ``sharpness`` (exact λ1(H) at θ_t), ``grad_norm`` (‖∇L(θ_t)‖),
    and ``diverged_at`` (first step with a loss above ``divergence_loss`` or non-finite, else None).
    """
    if steps < 1 or every < 1:
        raise ValueError(f"simulate_sam: steps and every must be at least 1, got {steps}, {every}")
    theta = np.zeros(len(model.J))
    rows, diverged = [], None
    for t in range(steps + 1):
        g = model.grad(theta)
        loss = 0.5 * model.residual(theta) ** 2
        if not loss <= divergence_loss:
            diverged = t
            break
        if t % every == 0 or t == steps:
            rows.append((t, loss, model.sharpness(theta), float(np.linalg.norm(g))))
        if t == steps:
            break
        scale = rho / max(np.linalg.norm(g), 1e-300) if normalized else rho
        theta = theta - lr * model.grad(theta + scale * g)
    cols = np.array(rows, dtype=float).reshape(-1, 4).T
    return {
        "step": cols[0],
        "loss": cols[1],
        "sharpness": cols[2],
        "grad_norm": cols[3],
        "diverged_at": diverged,
    }

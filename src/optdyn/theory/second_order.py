"""The two-parameter second-order regression model reduced to two variables (Agarwala, Pedregosa &
Pennington 2023, whose body we could not read: the reduction and every formula below are our derivation
from the model).

One residual, two parameters: z(θ) = z0 + gᵀθ + ½ θᵀQθ with Q = ω R diag(1, −1) Rᵀ
(:func:`optdyn.models.two_parameter_model`). With θ' = θ + Q⁻¹g the residual is z = z_c + ½ θ'ᵀQθ',
z_c = z0 − ½ gᵀQ⁻¹g, the Jacobian is J = Qθ', the NTK eigenvalue is λ = ‖J‖² = ω²‖θ'‖², and
J Q Jᵀ = 2ω²(z − z_c). GD θ ← θ − η z J therefore closes on (z, λ). In the dimensionless variables

    u = η ω z,    s = η λ   (the edge of stability is s = 2),    c = η ω z_c   (conserved),

it is the exact map

    u' = u (1 − s) + u² (u − c),        s' = s − 4 u (u − c) + u² s.

Every state satisfies s ≥ 2 abs(u − c) (λ = ω²‖θ'‖² ≥ 2ω abs(z − z_c)), so every zero-loss point has
s ≥ 2 abs(c): the flattest minimum has s = 2 abs(c). Near (u, s) = (0, 2), with y = s − 2, two steps of
the map are, to
second order, u ↦ u (1 + 2y + 4cu), y ↦ y − 4cyu − 4(1 + c²)u²; as a flow in the number of step pairs
this conserves

    E(u, y) = y² + 4 c y u + 2 (1 + c²) u²,

positive definite for abs(c) < 1. A trajectory that reaches the edge therefore ends on the line u = 0 at
y = −√E: s_∞ = 2 − √E, just below the edge (our small-amplitude prediction).
"""

from __future__ import annotations

import math

import numpy as np


def reduced_step(u: float, s: float, c: float) -> tuple[float, float]:
    """One GD step of the two-parameter model in (u, s):

    u' = u(1 − s) + u²(u − c),    s' = s − 4u(u − c) + u²s.
    """
    return u * (1 - s) + u * u * (u - c), s - 4 * u * (u - c) + u * u * s


def reduced_map(
    u0: float, s0: float, c: float, steps: int, bound: float = 1e6
) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` iterations of :func:`reduced_step` from (u0, s0): arrays u_t, s_t of length steps + 1.

    A trajectory that leaves abs(u) + abs(s) ≤ ``bound`` or turns non-finite is recorded as NaN from there on.
    """
    if steps < 0:
        raise ValueError(f"reduced_map: steps must be non-negative, got {steps}")
    u = np.full(steps + 1, np.nan)
    s = np.full(steps + 1, np.nan)
    a, b = float(u0), float(s0)
    for t in range(steps + 1):
        if not (math.isfinite(a) and math.isfinite(b) and abs(a) + abs(b) <= bound):
            break
        u[t], s[t] = a, b
        a, b = reduced_step(a, b, c)
    return u, s


def saddle_value(z0: float, g: np.ndarray, Q: np.ndarray) -> float:
    """z_c = z0 − ½ gᵀQ⁻¹g, the residual at the saddle point θ = −Q⁻¹g (a constant of the reduced map)."""
    g = np.asarray(g, dtype=float).reshape(-1)
    return float(z0 - 0.5 * g @ np.linalg.solve(np.asarray(Q, dtype=float), g))


def reduced_variables(
    z: float, ntk: float, z_c: float, omega: float, lr: float
) -> tuple[float, float, float]:
    """(u, s, c) = (ηωz, ηλ, ηωz_c) from the residual z, the NTK eigenvalue λ = ‖J‖² and the saddle value."""
    return lr * omega * z, lr * ntk, lr * omega * z_c


def flattest_sharpness(c: float) -> float:
    """s = ηλ at the flattest zero-loss point of the two-parameter model: 2 abs(c), a lower bound on s_∞."""
    return 2.0 * abs(c)


def normal_form_invariant(u: float, s: float, c: float) -> float:
    """E = y² + 4cyu + 2(1 + c²)u² with y = s − 2, conserved by the two-step normal form near the edge."""
    y = s - 2.0
    return y * y + 4.0 * c * y * u + 2.0 * (1.0 + c * c) * u * u


def normal_form_limit(u: float, s: float, c: float) -> float:
    """The predicted final s_∞ = 2 − √E of a trajectory through (u, s) near the edge, for abs(c) < 1
    (ours)."""
    if not abs(c) < 1:
        raise ValueError(f"normal_form_limit: needs |c| < 1 (E is indefinite otherwise), got c = {c}")
    return 2.0 - math.sqrt(normal_form_invariant(u, s, c))


def normal_form_flow(u: float, y: float, c: float) -> tuple[float, float]:
    """(du/dτ, dy/dτ) = (u(2y + 4cu), −4cyu − 4(1 + c²)u²), τ counting pairs of steps."""
    return u * (2 * y + 4 * c * u), -4 * c * y * u - 4 * (1 + c * c) * u * u

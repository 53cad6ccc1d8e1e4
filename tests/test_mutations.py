"""Tests that kill three mutations of the numerical core that the other tests let live (issue 14, item 17).

- ``top_eigenpairs`` asking eigsh for ``which="LM"`` (largest magnitude) instead of ``"LA"`` (largest
  algebraic): on an indefinite Hessian whose largest-magnitude eigenvalue is negative, the sharpness is the
  top algebraic eigenvalue, not that negative one.
- Polyak's step without its ``c``, or ignoring ``f*``: with c = 0.5 and f* = 2 (not the defaults 1 and 0)
  the learning rate and the new weights are checked against steps computed by hand.
"""

import numpy as np
import pytest
import torch

from optdyn import curvature
from optdyn.optim import Polyak

EIGENVALUES = [3.0, 1.0, 0.5, 0.0, -0.2, -1.0, -4.0, -10.0]  # |−10| is the largest magnitude


def _indefinite_quadratic():
    """L(θ) = ½ θᵀ A θ with A = Q diag(EIGENVALUES) Qᵀ, Q a seeded rotation: H = A everywhere."""
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    A = torch.tensor(Q @ np.diag(EIGENVALUES) @ Q.T)
    theta = torch.tensor(rng.standard_normal(8), requires_grad=True)
    return (lambda: 0.5 * theta @ A @ theta), theta, A


def test_sharpness_is_the_top_algebraic_eigenvalue_of_an_indefinite_hessian():
    loss, theta, A = _indefinite_quadratic()
    values, vectors = curvature.top_eigenpairs(curvature.HessianOperator(loss, [theta]), k=2, tol=1e-10)
    assert values == pytest.approx([3.0, 1.0], abs=1e-8)
    assert curvature.sharpness(loss, [theta], tol=1e-10) == pytest.approx(3.0, abs=1e-8)
    assert np.abs(A.numpy() @ vectors[:, 0] - 3.0 * vectors[:, 0]).max() < 1e-6  # its eigenvector


def test_preconditioned_sharpness_is_algebraic_too():
    loss, theta, _ = _indefinite_quadratic()
    P = torch.full((8,), 4.0, dtype=torch.float64)  # P^{-1/2} H P^{-1/2} = H / 4: top eigenvalue 0.75
    assert curvature.preconditioned_sharpness(loss, [theta], P, tol=1e-10) == pytest.approx(0.75, abs=1e-8)


def _quadratic_with_offset(opt_holder):
    """f(w) = ½ (w₁² + 2 w₂²) + 5 from w = (1, 1): f = 6.5, g = (1, 2), ‖g‖² = 5."""
    w = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([1.0, 2.0], dtype=torch.float64)

    def closure():
        opt_holder[0].zero_grad(set_to_none=True)
        loss = 0.5 * (a * w * w).sum() + 5.0
        loss.backward()
        return loss

    return w, closure


def test_polyak_gd_step_uses_c_and_f_star_by_hand():
    holder = []
    w, closure = _quadratic_with_offset(holder)
    holder.append(Polyak([w], f_star=2.0, c=0.5, max_lr=10.0))
    opt = holder[0]
    opt.step(closure)
    # η = (f − f*) / (c ‖g‖²) = (6.5 − 2) / (0.5 · 5) = 1.8;  w = (1, 1) − 1.8 · (1, 2)
    assert opt.last["lr"] == pytest.approx(1.8, rel=1e-12)
    assert w.detach().tolist() == pytest.approx([-0.8, -2.6], rel=1e-12)
    opt.step(closure)
    # f = ½ (0.64 + 2 · 6.76) + 5 = 12.08, g = (−0.8, −5.2), ‖g‖² = 27.68: η = 10.08 / 13.84
    eta = 10.08 / 13.84
    assert opt.last["lr"] == pytest.approx(eta, rel=1e-12)
    assert w.detach().tolist() == pytest.approx([-0.8 + eta * 0.8, -2.6 + eta * 5.2], rel=1e-12)


def test_polyak_adam_direction_uses_c_and_f_star_by_hand():
    holder = []
    w, closure = _quadratic_with_offset(holder)
    holder.append(Polyak([w], f_star=2.0, c=0.5, max_lr=10.0, direction="adam"))
    opt = holder[0]
    opt.step(closure)
    # first Adam step: m̂ = g, v̂ = g², u = −g / (|g| + ε) ≈ −(1, 1), −gᵀu ≈ 3: η = 4.5 / (0.5 · 3) = 3
    assert opt.last["lr"] == pytest.approx(3.0, rel=1e-7)
    assert w.detach().tolist() == pytest.approx([-2.0, -2.0], rel=1e-7)


def test_polyak_cap_and_defaults_still_hold():
    holder = []
    w, closure = _quadratic_with_offset(holder)
    holder.append(Polyak([w]))  # f* = 0, c = 1, η_max = 1: 6.5 / 5 = 1.3 is capped at 1
    holder[0].step(closure)
    assert holder[0].last["lr"] == 1.0 and w.detach().tolist() == pytest.approx([0.0, -1.0])

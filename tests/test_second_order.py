"""The second-order regression model (optdyn.models) and its two-variable reduction
(optdyn.theory.second_order), each against an independent ground truth: autograd, a dense Hessian, GD on
the parameters, an ODE solver."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from optdyn import curvature, theory
from optdyn.models import (
    SecondOrderRegression,
    ntk_top_eigenvalue,
    second_order_regression,
    two_parameter_model,
)


def _gd_on_parameters(model, theta, lr, steps):
    """Plain GD θ ← θ − η ∇L(θ) with the gradient from autograd: the ground truth for every reduction."""
    out = []
    for _ in range(steps):
        theta = theta.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(model.loss(theta), theta)
        with torch.no_grad():
            out.append((model.residual(theta).clone(), model.jacobian(theta).clone()))
        theta = theta.detach() - lr * grad
    return out


def test_residual_jacobian_and_hessian_against_autograd():
    model = second_order_regression(4, 7, q=0.8, seed=3)
    theta = torch.randn(7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    J = torch.func.jacrev(model.residual)(theta)
    assert torch.allclose(model.jacobian(theta), J, atol=1e-12)
    H = torch.func.hessian(model.loss)(theta)
    z = model.residual(theta)
    formula = J.T @ J + torch.einsum("a,apq->pq", z, model.Q)
    assert torch.allclose(H, formula, atol=1e-12)
    p = theta.clone().requires_grad_(True)
    lanczos = curvature.sharpness(lambda: model.loss(p), [p], tol=1e-10)
    assert lanczos == pytest.approx(float(torch.linalg.eigvalsh(H)[-1]), rel=1e-8)


def test_function_space_step_is_gd_on_parameters():
    model = second_order_regression(5, 12, q=0.5, seed=0)
    lr = 0.5 / ntk_top_eigenvalue(model.G.T)
    theta = torch.zeros(12, dtype=torch.float64)
    z, J = model.z0.clone(), model.G.T.clone()
    for z_ref, J_ref in _gd_on_parameters(model, theta, lr, 60):
        assert torch.allclose(z, z_ref, atol=1e-11) and torch.allclose(J, J_ref, atol=1e-11)
        z, J = model.gd_step(z, J, lr)


def test_one_output_model_matches_the_sam_chapter_instance():
    other = theory.quadratic_regression_model(6, seed=2)
    model = SecondOrderRegression(
        torch.tensor([other.z0]), torch.tensor(other.J)[:, None], torch.tensor(other.Q)[None]
    )
    theta = np.random.default_rng(0).standard_normal(6)
    t = torch.tensor(theta)
    assert float(model.residual(t)[0]) == pytest.approx(other.residual(theta), abs=1e-12)
    H = torch.func.hessian(model.loss)(t).numpy()
    assert np.allclose(H, other.hessian(theta), atol=1e-12)


def test_linearized_model_keeps_its_ntk():
    model = second_order_regression(6, 20, q=1.0, seed=1).linearized()
    z, J = model.z0.clone(), model.G.T.clone()
    lam0 = ntk_top_eigenvalue(J)
    for _ in range(100):
        z, J = model.gd_step(z, J, 1.0 / lam0)
    assert ntk_top_eigenvalue(J) == lam0


def test_instances_share_g_and_z0_across_q():
    a, b = second_order_regression(3, 5, 0.0, seed=4), second_order_regression(3, 5, 0.7, seed=4)
    assert torch.equal(a.G, b.G) and torch.equal(a.z0, b.z0) and float(a.Q.abs().max()) == 0.0


@pytest.mark.parametrize("angle", [0.0, 0.9, 2.4])
def test_reduced_map_matches_gd_on_two_parameters(angle):
    omega, g, z0, lr = 1.3, [0.4, -0.7], 0.9, 0.7
    model = two_parameter_model(omega, g, z0, angle)
    z_c = theory.saddle_value(z0, np.array(g), model.Q[0].numpy())
    traj = _gd_on_parameters(model, torch.tensor([0.3, -0.2], dtype=torch.float64), lr, 50)
    z, J = traj[0]
    u, s, c = theory.reduced_variables(float(z[0]), float(J[0] @ J[0]), z_c, omega, lr)
    us, ss = theory.reduced_map(u, s, c, len(traj) - 1)
    for t, (z, J) in enumerate(traj):
        u_t, s_t, _ = theory.reduced_variables(float(z[0]), float(J[0] @ J[0]), z_c, omega, lr)
        assert u_t == pytest.approx(us[t], abs=1e-10) and s_t == pytest.approx(ss[t], abs=1e-10)


def test_saddle_value_is_the_residual_at_the_saddle():
    model = two_parameter_model(0.8, [0.3, 0.5], -0.4, angle=0.3)
    Q, g = model.Q[0].numpy(), model.G[:, 0].numpy()
    saddle = torch.tensor(-np.linalg.solve(Q, g))
    assert float(model.residual(saddle)[0]) == pytest.approx(theory.saddle_value(-0.4, g, Q), abs=1e-12)
    assert float(model.jacobian(saddle).abs().max()) < 1e-12


def test_every_zero_loss_point_is_at_least_as_sharp_as_the_flattest():
    omega, z_c, lr = 1.0, 0.6, 1.0
    c = lr * omega * z_c
    # zero loss: ½ω(a² − b²) = −z_c in Q's eigenbasis; s = ηω²(a² + b²)
    b = np.linspace(-3, 3, 20001)
    b = b[b**2 >= 2 * z_c / omega]
    a = np.sqrt(b**2 - 2 * z_c / omega)
    s = lr * omega**2 * (a**2 + b**2)
    assert s.min() == pytest.approx(theory.flattest_sharpness(c), rel=1e-3)


def test_two_steps_of_the_map_follow_the_normal_form():
    c = 0.4
    for scale in (1e-2, 1e-3):
        u, y = 0.7 * scale, -0.5 * scale
        u2, s2 = theory.reduced_step(*theory.reduced_step(u, 2 + y, c), c)
        du, dy = theory.normal_form_flow(u, y, c)
        assert abs(u2 - (u + du)) < 50 * scale**3 and abs(s2 - 2 - (y + dy)) < 50 * scale**3


def test_normal_form_flow_conserves_its_invariant():
    c, u0, y0 = 0.5, 0.02, 0.05
    sol = solve_ivp(
        lambda t, x: theory.normal_form_flow(x[0], x[1], c), (0, 2000), [u0, y0], rtol=1e-10, atol=1e-14
    )
    u, y = sol.y[:, -1]
    E0 = theory.normal_form_invariant(u0, 2 + y0, c)
    assert theory.normal_form_invariant(u, 2 + y, c) == pytest.approx(E0, rel=1e-6)
    assert abs(u) < 1e-6 and 2 + y == pytest.approx(theory.normal_form_limit(u0, 2 + y0, c), abs=1e-6)


def test_reduced_map_records_divergence_as_nan_and_rejects_bad_input():
    u, s = theory.reduced_map(0.5, 3.5, 2.0, 200)
    assert np.isnan(u[-1]) and math.isfinite(u[0])
    with pytest.raises(ValueError):
        theory.normal_form_limit(0.1, 2.0, 1.2)
    with pytest.raises(ValueError):
        second_order_regression(0, 4, 0.5)
    with pytest.raises(ValueError):
        two_parameter_model(0.0, [1, 0], 1.0)
    with pytest.raises(ValueError):
        SecondOrderRegression(torch.zeros(2), torch.zeros(3, 2), torch.randn(2, 3, 3))

"""The DEQ layer and its solvers against independent ground truth: autograd through the unrolled iteration,
a dense implicit-function-theorem solve, closed forms of random-matrix and linear fixed points."""

import math

import numpy as np
import pytest
import torch

from optdyn import deq


def _grads(model, x, y):
    model.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


@pytest.mark.parametrize("solver", deq.SOLVERS)
def test_implicit_gradient_matches_unrolled_differentiation(solver):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1])
    model = deq.DEQ(4, 7, 3, sigma_w=0.6, seed=2, dtype=torch.float64, solver=solver, max_iter=500, tol=1e-12)
    implicit = _grads(model, x, y)
    assert model.last_forward.fraction == 1.0 and model.last_backward.fraction == 1.0
    model.unrolled = True
    unrolled = _grads(model, x, y)
    assert float((implicit - unrolled).norm() / unrolled.norm()) < 1e-9


def test_implicit_gradient_matches_finite_differences_of_the_fixed_point():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    model = deq.DEQ(4, 6, 2, sigma_w=0.5, seed=4, dtype=torch.float64, max_iter=2000, tol=1e-13)

    def loss():
        return float(model(x).pow(2).sum())

    model.zero_grad()
    model(x).pow(2).sum().backward()
    analytic = model.W.grad[1, 2].item()
    eps = 1e-6
    with torch.no_grad():
        model.W[1, 2] += eps
        up = loss()
        model.W[1, 2] -= 2 * eps
        down = loss()
        model.W[1, 2] += eps
    assert analytic == pytest.approx((up - down) / (2 * eps), rel=1e-6)


def test_damped_iteration_reports_non_convergence_without_raising():
    W = -2.5 * torch.eye(4, dtype=torch.float64)  # plain iteration oscillates: J ≈ −2.5 near z = 0
    u = torch.full((2, 4), 0.1, dtype=torch.float64)
    z, report = deq.tanh_fixed_point(W, u, "damped", damping=1.0, max_iter=10, tol=1e-8)
    assert report.iterations == 10 and report.fraction == 0.0 and report.converged.shape == (2,)
    # damping a = 1/2 turns the eigenvalue −2.5 tanh' into 1/2 − 1.25 tanh', inside the unit disk here
    z, report = deq.tanh_fixed_point(W, u, "damped", damping=0.5, max_iter=500, tol=1e-10)
    assert report.fraction == 1.0
    assert torch.allclose(z, torch.tanh(z @ W.T + u), atol=1e-9)


def test_anderson_reaches_the_fixed_point_of_a_linear_map():
    gen = torch.Generator().manual_seed(0)
    A = 0.9 * deq.init_matrix(20, "orthogonal", 1.0, gen)
    b = torch.randn(3, 20, generator=gen, dtype=torch.float64)
    z, report = deq.anderson(
        lambda z: z @ A.T + b, torch.zeros(3, 20, dtype=torch.float64), tol=1e-7, max_iter=300
    )
    exact = torch.linalg.solve(torch.eye(20, dtype=torch.float64) - A, b.T).T
    assert report.fraction == 1.0
    assert float((z - exact).norm() / exact.norm()) < 1e-5


@pytest.mark.parametrize("family", ["gaussian", "orthogonal", "symmetric"])
def test_families_share_the_second_moment(family):
    W = deq.init_matrix(400, family, 1.5, torch.Generator().manual_seed(0))
    assert float((W * W).sum() / 400) == pytest.approx(1.5**2, rel=0.02)


def test_family_spectra_closed_forms():
    gen = torch.Generator().manual_seed(0)
    n, s = 400, 0.8
    O = deq.init_matrix(n, "orthogonal", s, gen)
    assert torch.allclose(O @ O.T, s**2 * torch.eye(n, dtype=torch.float64), atol=1e-10)
    S = deq.init_matrix(n, "symmetric", s, gen)
    assert torch.equal(S, S.T)
    assert float(torch.linalg.eigvalsh(S).max()) == pytest.approx(2 * s, rel=0.05)  # semicircle edge
    E = deq.init_matrix(n, "symmetric-edge", s, gen)
    assert float(torch.linalg.eigvalsh(E).max()) == pytest.approx(s, rel=0.05)
    G = deq.init_matrix(n, "gaussian", s, gen)
    assert float(torch.linalg.eigvals(G).abs().max()) == pytest.approx(s, rel=0.08)  # circular law


@pytest.mark.parametrize("family", ["gaussian", "orthogonal"])
def test_linear_fixed_point_variance_closed_form(family):
    """phi = id: z* = (I − W)⁻¹ u and (1/N) tr[(I−W)⁻¹(I−W)⁻ᵀ] = 1/(1 − σ²) for Gaussian and orthogonal W."""
    n, s = 600, 0.5
    W = deq.init_matrix(n, family, s, torch.Generator().manual_seed(5))
    R = torch.linalg.inv(torch.eye(n, dtype=torch.float64) - W)
    assert float((R * R).sum() / n) == pytest.approx(1 / (1 - s**2), rel=0.05)


def test_mean_field_matches_monte_carlo_and_known_values():
    mf = deq.mean_field_fixed_point(1.0, 1.0)
    h = np.random.default_rng(0).normal(0, math.sqrt(mf["q_h"]), 400_000)
    assert mf["q"] == pytest.approx(np.mean(np.tanh(h) ** 2), rel=5e-3)
    assert mf["chi"] == pytest.approx(np.mean((1 - np.tanh(h) ** 2) ** 2), rel=5e-3)
    assert deq.mean_field_fixed_point(3.0, 1.0)["sqrt_chi"] == pytest.approx(1.308, abs=0.005)  # MC: 1.3079


def test_jacobian_and_spectrum_stats():
    gen = torch.Generator().manual_seed(0)
    model = deq.DEQ(3, 5, 2, sigma_w=0.7, seed=0, dtype=torch.float64, max_iter=1000, tol=1e-13)
    x = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    J = model.jacobians(x)
    z, _ = model.fixed_point(x)
    u = model.injection(x)
    dense = torch.func.jacrev(lambda v: model.cell(v, u[0]))(z[0])
    assert torch.allclose(J[0], dense, atol=1e-12)
    stats = deq.spectrum_stats(J)
    lam = np.linalg.eigvals(J[0].numpy())
    assert stats["rho"][0] == pytest.approx(np.abs(lam).max())
    assert stats["rho_damped"][0] == pytest.approx(np.abs(0.5 + 0.5 * lam).max())


def test_bad_inputs_raise():
    gen = torch.Generator()
    with pytest.raises(ValueError, match="family"):
        deq.init_matrix(4, "cauchy", 1.0, gen)
    with pytest.raises(ValueError, match="solver"):
        deq.solve(lambda z: z, torch.zeros(1, 2), "broyden")
    with pytest.raises(ValueError, match="damping"):
        deq.damped_iteration(lambda z: z, torch.zeros(1, 2), damping=0.0)

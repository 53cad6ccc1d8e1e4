"""Curvature against independent ground truth: dense Hessians and closed-form quadratics."""

import numpy as np
import pytest
import torch

from optdyn import curvature
from optdyn.data import digits
from optdyn.models import mlp
from optdyn.train import half_mse


def small_problem(seed=0):
    data = digits(60)
    model = mlp([64, 6, 5, 10], seed=seed)
    params = list(model.parameters())

    def loss_fn():
        return half_mse(model(data.X), data.Y)

    return model, params, loss_fn, data


def dense_hessian(model, params, data):
    """The dense Hessian of the same loss by torch.func on the flat parameter vector."""
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    names = [n for n, _ in model.named_parameters()]

    def loss_of(theta):
        chunks = torch.split(theta, sizes)
        tensors = {n: c.view(s) for n, c, s in zip(names, chunks, shapes, strict=True)}
        out = torch.func.functional_call(model, tensors, (data.X,))
        return half_mse(out, data.Y)

    return torch.func.hessian(loss_of)(curvature.flat_params(params))


def test_hvp_matches_dense_hessian_columns():
    model, params, loss_fn, data = small_problem()
    H = dense_hessian(model, params, data)
    v = torch.randn(H.shape[0], dtype=torch.float64)
    hv = curvature.hvp(loss_fn, params, v)
    assert torch.linalg.norm(hv - H @ v) / torch.linalg.norm(H @ v) < 1e-5


def test_lanczos_top_eigenvalues_match_dense_eigvalsh():
    model, params, loss_fn, data = small_problem(seed=1)
    H = dense_hessian(model, params, data)
    exact = torch.linalg.eigvalsh(H).numpy()[::-1]
    values, _ = curvature.top_eigenpairs(curvature.HessianOperator(loss_fn, params), k=2, tol=1e-10)
    np.testing.assert_allclose(values, exact[:2], rtol=1e-5)
    assert curvature.sharpness(loss_fn, params, tol=1e-10) == pytest.approx(exact[0], rel=1e-5)


def test_preconditioned_sharpness_matches_dense_generalised_eigenvalue():
    model, params, loss_fn, data = small_problem(seed=2)
    H = dense_hessian(model, params, data).numpy()
    P = torch.rand(H.shape[0], dtype=torch.float64) * 10 + 0.1
    exact = np.max(np.linalg.eigvals(np.diag(1 / P.numpy()) @ H).real)
    measured = curvature.preconditioned_sharpness(loss_fn, params, P, tol=1e-10)
    assert measured == pytest.approx(exact, rel=1e-5)


def test_quadratic_closed_form_spectrum():
    """L(w) = ½ wᵀ A w with known A: top eigenvalues are A's; preconditioned ones those of P^{-1}A."""
    eig = torch.tensor([7.0, 3.0, 2.0, 1.0, 0.5], dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))
    A = Q @ torch.diag(eig) @ Q.T
    w = torch.randn(5, dtype=torch.float64, requires_grad=True)

    def loss_fn():
        return 0.5 * w @ A @ w

    assert curvature.sharpness(loss_fn, [w], tol=1e-12) == pytest.approx(7.0, rel=1e-8)
    P = torch.tensor([2.0, 1.0, 4.0, 0.5, 1.0], dtype=torch.float64)
    exact = np.max(np.linalg.eigvals(np.diag(1 / P.numpy()) @ A.numpy()).real)
    assert curvature.preconditioned_sharpness(loss_fn, [w], P, tol=1e-12) == pytest.approx(exact, rel=1e-8)


def test_power_iteration_agrees_and_warm_start_saves_products():
    model, params, loss_fn, data = small_problem()
    op = curvature.HessianOperator(loss_fn, params)
    lanczos_value, vectors = curvature.top_eigenpairs(op, tol=1e-8)
    power_value, _ = curvature.power_iteration(op, tol=1e-10)
    assert power_value == pytest.approx(lanczos_value[0], rel=1e-4)
    cold = curvature.HessianOperator(loss_fn, params)
    curvature.top_eigenpairs(cold, tol=1e-6)
    warm = curvature.HessianOperator(loss_fn, params)
    curvature.top_eigenpairs(warm, v0=vectors[:, 0], tol=1e-6)
    assert warm.n_products < cold.n_products


def test_batched_products_match_dense_hessian_matvec_and_scaling():
    model, params, loss_fn, data = small_problem(seed=3)
    H = dense_hessian(model, params, data)
    V = torch.randn(5, H.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    op = curvature.HessianOperator(loss_fn, params)
    torch.testing.assert_close(op.products(V), (H @ V.T).T, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(op.matmat(V.T.numpy()), (H @ V.T).numpy(), rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(op.matvec(V[0].numpy()), (H @ V[0]).numpy(), rtol=1e-6, atol=1e-10)
    assert op.n_products == 11
    D = torch.rand(H.shape[0], dtype=torch.float64) + 0.5
    scaled = curvature.HessianOperator(loss_fn, params, scaling=D)
    torch.testing.assert_close(
        scaled.products(V), (D[:, None] * H * D[None, :] @ V.T).T, rtol=1e-6, atol=1e-10
    )
    with pytest.raises(ValueError, match="shape"):
        op.products(V[:, :-1])

"""The NTK trace from per-example Jacobians and the noise kernel norm 𝒦 (optdyn.curvature), against an
explicit per-example loop, a dense Jacobian, closed forms on linear models, and the second-moment
recursion."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from optdyn import curvature
from optdyn.experiments import conservative_sharpening as cs
from optdyn.models import mlp


def _loop_norms(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    params = list(model.parameters())
    out = []
    for x in X:
        f = model(x[None])[0]
        total = 0.0
        for c in range(len(f)):
            grads = torch.autograd.grad(f[c], params, retain_graph=True)
            total += sum(float((g**2).sum()) for g in grads)
        out.append(total)
    return torch.tensor(out, dtype=torch.float64)


def test_per_example_norms_match_an_explicit_loop():
    model = mlp([5, 7, 3], "tanh", seed=1)
    X = torch.randn(11, 5, dtype=torch.float64)
    norms = curvature.per_example_jacobian_norms(model, X, chunk=4)
    torch.testing.assert_close(norms, _loop_norms(model, X), rtol=1e-12, atol=0)


def test_ntk_trace_is_the_trace_of_the_dense_gauss_newton_matrix():
    model = mlp([4, 6, 2], "tanh", seed=2)
    X = torch.randn(9, 4, dtype=torch.float64)
    params = {k: p.detach() for k, p in model.named_parameters()}

    def outputs(flat: torch.Tensor) -> torch.Tensor:
        pieces = dict(zip(params, curvature.unflatten_like(flat, list(params.values())), strict=True))
        return torch.func.functional_call(model, pieces, (X,)).reshape(-1)

    J = torch.func.jacrev(outputs)(curvature.flat_params(list(params.values())))  # (nC, P)
    G = J.T @ J / len(X)
    assert curvature.ntk_trace(model, X, chunk=2) == pytest.approx(float(torch.trace(G)), rel=1e-12)


def test_ntk_trace_of_a_linear_model_is_outputs_times_mean_squared_norm():
    X = torch.randn(13, 6, dtype=torch.float64)
    model = nn.Linear(6, 3, bias=False).to(torch.float64)
    exact = 3 * float((X**2).sum()) / 13  # J_α = I_3 ⊗ x_αᵀ
    assert curvature.ntk_trace(model, X, chunk=5) == pytest.approx(exact, rel=1e-12)
    assert cs.linear_trace_check(0) < 1e-12


def test_noise_kernel_norm_closed_form_for_a_flat_spectrum():
    lam, n, batch, lr, C = 0.3, 50, 5, 1.1, 2
    beta = 1 / batch - 1 / n
    eigs = np.full(n, lam)
    expected = lr * beta / C * n * lam / (2 - lr * lam)
    assert curvature.noise_kernel_norm(eigs, lr, batch, n, C) == pytest.approx(expected, rel=1e-12)
    edge = curvature.noise_kernel_edge_lr(eigs, batch, n, C)
    assert edge == pytest.approx(2 * C / (lam * (beta * n + C)), rel=1e-9)
    assert curvature.noise_kernel_norm(eigs, edge, batch, n, C) == pytest.approx(1.0, rel=1e-9)
    assert curvature.noise_kernel_norm(eigs, 2 / lam, batch, n, C) == math.inf
    assert curvature.noise_kernel_edge_lr(eigs, n, n) == pytest.approx(2 / lam)
    assert curvature.batch_noise_factor(batch, n, replacement=True) == 1 / batch


def test_trace_form_approaches_the_exact_norm_far_from_the_edge():
    eigs = np.random.default_rng(0).uniform(0, 1, 200)
    lr = 1e-3
    exact = curvature.noise_kernel_norm(eigs, lr, 4, 200)
    assert curvature.noise_kernel_trace(eigs.sum(), lr, 4, 200) == pytest.approx(exact, rel=1e-3)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="batch"):
        curvature.batch_noise_factor(0, 10)
    with pytest.raises(ValueError, match="chunk"):
        curvature.per_example_jacobian_norms(nn.Linear(2, 1), torch.zeros(3, 2), chunk=0)
    with pytest.raises(ValueError, match="profile"):
        cs.config("huge")
    with pytest.raises(ValueError, match="seed"):
        cs.linear_edge("quick", -1)


def test_second_moment_recursion_changes_stability_at_kappa_one():
    problem = cs.linear_problem(128, 256, seed=0)
    edge = curvature.noise_kernel_edge_lr(problem.eigenvalues, 4, problem.n)
    _, below = cs.second_moment_loss(problem, 0.95 * edge, 4, 4000, every=4000)
    _, above = cs.second_moment_loss(problem, 1.05 * edge, 4, 4000, every=4000)
    assert below[-1] < below[0] and above[-1] > 10 * above[0]


def test_sgd_on_the_linear_model_matches_a_hand_step_and_the_mean_of_the_recursion():
    problem = cs.linear_problem(16, 32, seed=3)
    steps, loss = cs.sgd_linear(problem, 0.1, 16, 1, seed=0, every=1)  # full batch: one GD step
    z = problem.z0 - 0.1 / 16 * problem.K @ problem.z0
    assert loss[1] == pytest.approx(float(z @ z) / 32, rel=1e-12)
    _, predicted = cs.second_moment_loss(problem, 0.1, 16, 1, every=1)  # β = 0: exact
    assert predicted[1] == pytest.approx(loss[1], rel=1e-10)


def test_crossover_of_a_linear_then_flat_edge():
    crit = pd.DataFrame(dict(batch=[1, 2, 4, 16, 64], lr_c=[0.1, 0.2, 0.4, 0.8, 0.8]))
    a, s = cs.small_batch_fit(crit)
    assert a == pytest.approx(0.1) and s == pytest.approx(1.0)
    assert cs.crossover_batch(crit) == pytest.approx(8.0)


def test_lr_grid_and_comparison_window():
    assert cs.lr_grid(0.04, 0.1, 1.25) == pytest.approx([0.04, 0.05, 0.0625, 0.078125, 0.09765625])
    runs = pd.DataFrame(
        dict(
            batch=[8] * 5 + [1797] * 5,
            step=list(range(0, 50, 10)) * 2,
            lr_lam=[0.5, 0.5, 0.6, 0.6, 0.7, 0.5, 1.0, 1.5, 1.9, 2.1],
        )
    )
    w = cs.comparison_window(runs)
    assert w["end"].iloc[0] == 30  # last probe before GD reaches 2
    assert list(w["lr_lam"]) == pytest.approx([0.6, 1.9])  # probes in [24, 30]

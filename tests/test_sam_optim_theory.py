"""SAM and USAM against hand-computed steps, λ*(η, ρ) against iterates on quadratics, the simplified model
against autograd, and the experiment's input checks."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from optdyn import theory
from optdyn.data import digits
from optdyn.experiments import sam_edge_of_stability as sam_exp
from optdyn.models import mlp
from optdyn.optim import SAM, gd, sam, usam
from optdyn.train import half_mse, train

H = torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64)


def _quadratic_step(make, w0: torch.Tensor, pre_evaluate: bool) -> torch.Tensor:
    w = torch.nn.Parameter(w0.clone())
    optimizer = make([w])

    def closure():
        optimizer.zero_grad(set_to_none=True)
        loss = 0.5 * (H * w**2).sum()
        loss.backward()
        return loss

    if pre_evaluate:
        closure()
    optimizer.step(closure)
    return w.detach()


@pytest.mark.parametrize("pre_evaluate", [True, False])
def test_usam_step_by_hand(pre_evaluate):
    w0, lr, rho = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), 0.1, 0.3
    ascent = w0 + rho * H * w0
    expected = w0 - lr * H * ascent
    got = _quadratic_step(lambda p: usam(p, lr, rho), w0, pre_evaluate)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    # and the closed form (I − η(H + ρH²))w of the theory module
    torch.testing.assert_close(got, w0 - lr * (H + rho * H**2) * w0, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("pre_evaluate", [True, False])
def test_normalized_sam_step_by_hand(pre_evaluate):
    w0, lr, rho = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), 0.1, 0.3
    g = H * w0
    ascent = w0 + rho * g / math.sqrt(float((g**2).sum()))
    expected = w0 - lr * H * ascent
    got = _quadratic_step(lambda p: sam(p, lr, rho), w0, pre_evaluate)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


def test_sam_norm_is_global_over_groups_and_restores_weights():
    a = torch.nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
    b = torch.nn.Parameter(torch.tensor([-1.0], dtype=torch.float64))
    optimizer = SAM([{"params": [a]}, {"params": [b]}], lr=0.1, rho=0.5, normalized=True)
    # L = ½(a1² + 2 a2² + 3 b²): gradient (a1, 2a2, 3b), Hessian diag(1, 2, 3)
    h = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)

    def closure():
        optimizer.zero_grad(set_to_none=True)
        w = torch.cat([a, b])
        loss = 0.5 * (h * w**2).sum()
        loss.backward()
        return loss

    w0 = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    g = h * w0
    expected = w0 - 0.1 * h * (w0 + 0.5 * g / g.norm())
    optimizer.step(closure)
    torch.testing.assert_close(torch.cat([a, b]).detach(), expected, rtol=1e-12, atol=1e-14)
    assert optimizer.grad_norms == pytest.approx([float(g.norm())])


def test_rho_zero_is_gd():
    w0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    got = _quadratic_step(lambda p: usam(p, 0.2, 0.0), w0, True)
    torch.testing.assert_close(got, _quadratic_step(lambda p: gd(p, 0.2), w0, True), rtol=0, atol=0)


def test_sam_needs_a_closure_and_valid_arguments():
    w = torch.nn.Parameter(torch.ones(2))
    with pytest.raises(ValueError, match="closure"):
        usam([w], 0.1, 0.1).step()
    with pytest.raises(ValueError, match="lr"):
        usam([w], 0.0, 0.1)
    with pytest.raises(ValueError, match="rho"):
        usam([w], 0.1, -1.0)


def test_usam_in_train_matches_a_functional_loop():
    """Three full-batch USAM steps through `train` equal the update written with torch.func."""
    data = digits(32)
    model = mlp([64, 8, 10], seed=1)
    names = [n for n, _ in model.named_parameters()]
    params = {n: p.detach().clone() for n, p in model.named_parameters()}

    def loss_of(p):
        return half_mse(torch.func.functional_call(model, p, (data.X,)), data.Y)

    grad = torch.func.grad(loss_of)
    lr, rho = 0.3, 0.2
    for _ in range(3):
        g = grad(params)
        ascent = grad({n: params[n] + rho * g[n] for n in names})
        params = {n: params[n] - lr * ascent[n] for n in names}
    train(model, usam(model.parameters(), lr, rho), data, 3, every=100)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), params[n], rtol=1e-10, atol=1e-12)


def test_threshold_solves_the_stability_equation():
    for lr, rho in [(0.1, 0.05), (0.4, 0.2), (1.0, 3.0), (0.01, 0.5)]:
        lam = theory.usam_threshold(lr, rho)
        assert lr * lam * (1 + rho * lam) == pytest.approx(2.0, rel=1e-12)
        assert theory.usam_multiplier(lam, lr, rho) == pytest.approx(-1.0, rel=1e-12)
        assert lam < 2 / lr
    assert theory.usam_threshold(0.3, 0.0) == pytest.approx(2 / 0.3, rel=1e-15)
    assert theory.usam_threshold(0.3, 1e-12) == pytest.approx(2 / 0.3, rel=1e-9)
    # ρ ≫ η: λ* ≈ √(2/(ηρ))
    assert theory.usam_threshold(1e-3, 10.0) == pytest.approx(math.sqrt(2 / 1e-2), rel=0.01)
    assert theory.sam_threshold(0.2, 0.1, 0.5) == theory.usam_threshold(0.2, 0.2)
    with pytest.raises(ValueError):
        theory.usam_threshold(0.0, 0.1)
    with pytest.raises(ValueError):
        theory.sam_threshold(0.1, 0.1, 0.0)


@pytest.mark.parametrize("lr,rho", [(0.2, 0.05), (0.5, 0.3), (1.0, 1.0)])
def test_usam_iterates_converge_below_and_diverge_above_the_edge(lr, rho):
    """USAM (the optimizer) on L = ½λw²: |w| shrinks at λ = 0.99 λ*, grows at λ = 1.01 λ*."""
    edge = theory.usam_threshold(lr, rho)
    final = {}
    for factor in (0.99, 1.01):
        lam = factor * edge
        w = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
        optimizer = usam([w], lr, rho)

        def closure(w=w, lam=lam, optimizer=optimizer):
            optimizer.zero_grad(set_to_none=True)
            loss = 0.5 * lam * (w**2).sum()
            loss.backward()
            return loss

        for _ in range(400):
            optimizer.step(closure)
        final[factor] = abs(float(w.detach()))
    assert final[0.99] < 1e-2
    assert final[1.01] > 1e2


def test_normalized_sam_step_is_usam_with_radius_over_gradient_norm():
    w0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    norm = float((H * w0).norm())
    a = _quadratic_step(lambda p: sam(p, 0.1, 0.3), w0, True)
    b = _quadratic_step(lambda p: usam(p, 0.1, 0.3 / norm), w0, True)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_simplified_model_matches_autograd():
    model = theory.quadratic_regression_model(6, seed=3)
    theta = np.random.default_rng(0).standard_normal(6) * 0.3
    J, Q = torch.tensor(model.J), torch.tensor(model.Q)

    def loss(t):
        z = model.z0 + J @ t + 0.5 * t @ Q @ t
        return 0.5 * z**2

    t = torch.tensor(theta)
    np.testing.assert_allclose(model.grad(theta), torch.func.grad(loss)(t).numpy(), rtol=1e-12, atol=1e-14)
    dense = torch.func.hessian(loss)(t).numpy()
    np.testing.assert_allclose(model.hessian(theta), dense, rtol=1e-12, atol=1e-14)
    assert model.sharpness(theta) == pytest.approx(np.linalg.eigvalsh(dense)[-1], rel=1e-12)


def test_simulate_sam_is_the_update_and_records_divergence():
    model = theory.quadratic_regression_model(5, seed=1)
    run = theory.simulate_sam(model, 0.3, 0.1, 2)
    theta = np.zeros(5)
    for _ in range(2):
        theta = theta - 0.3 * model.grad(theta + 0.1 * model.grad(theta))
    assert run["loss"][-1] == pytest.approx(0.5 * model.residual(theta) ** 2, rel=1e-12)
    assert run["diverged_at"] is None and list(run["step"]) == [0, 1, 2]
    blown = theory.simulate_sam(model, 50.0, 1.0, 200)
    assert blown["diverged_at"] is not None and np.isfinite(blown["loss"]).all()


def test_simplified_model_sharpens_to_the_usam_edge():
    """The model of the chapter at its default sizes: USAM ends just below λ*, gradient flow far above."""
    model = theory.quadratic_regression_model(40, seed=0)
    lr, rho = 0.6, 0.05
    edge = theory.usam_threshold(lr, rho)
    run = theory.simulate_sam(model, lr, rho, 1500, every=50)
    assert run["sharpness"][0] < 0.95 * edge
    assert 0.9 * edge < run["sharpness"][-1] < 1.02 * edge
    flow = theory.simulate_sam(model, 0.05, 0.0, 1500 * 12, every=1000)
    assert flow["sharpness"][-1] > 1.2 * edge


def test_experiment_rejects_bad_arguments():
    with pytest.raises(ValueError, match="profile"):
        sam_exp.config("huge")
    with pytest.raises(ValueError, match="model"):
        sam_exp.network_grid("quick", model="resnet")


def test_plateaus_on_a_synthetic_trajectory():
    steps = np.arange(0, 200, 10)
    sharp = np.minimum(1 + steps / 20, 5.0)
    frame = pd.DataFrame(
        {"step": steps, "sharpness": sharp, "loss": 1 / (1 + steps), "lr": 0.4, "threshold": 5.0}
    ).assign(model="mlp", rho=0.0, diverged_at=np.nan)
    row = sam_exp.plateaus(frame).iloc[0]
    assert row["onset"] == 70 and row["median"] == pytest.approx(1.0)
    assert row["max_gd_ratio"] == pytest.approx(1.0) and row["final_loss"] == pytest.approx(1 / 191)
    diverged = sam_exp.plateaus(frame.assign(diverged_at=150.0)).iloc[0]
    assert np.isnan(diverged["median"])

"""Optimizers against hand-computed steps and against torch.optim."""

import math

import pytest
import torch

from optdyn import optim


def quadratic_grad_setup():
    w = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    return w


def set_grad(w, g):
    w.grad = torch.tensor(g, dtype=torch.float64)


def test_adam_first_two_steps_by_hand():
    w = quadratic_grad_setup()
    opt = optim.Adam([w], lr=0.1, betas=(0.9, 0.99), eps=1e-8)
    set_grad(w, [0.5, -4.0])
    opt.step()
    # step 1: m = 0.1 g, nu = 0.01 g^2; P = (1-0.9)(sqrt(nu/(1-0.99)) + eps) = 0.1(|g| + eps)
    assert w.detach().tolist() == pytest.approx(
        [1.0 - 0.1 * 0.05 / (0.1 * (0.5 + 1e-8)), -2.0 + 0.1 * 0.4 / (0.1 * (4.0 + 1e-8))], rel=1e-12
    )
    before = w.detach().clone()
    set_grad(w, [1.0, 2.0])
    opt.step()
    m = torch.tensor([0.9 * 0.05 + 0.1 * 1.0, 0.9 * -0.4 + 0.1 * 2.0], dtype=torch.float64)
    nu = torch.tensor([0.99 * 0.01 * 0.25 + 0.01 * 1.0, 0.99 * 0.01 * 16 + 0.01 * 4.0], dtype=torch.float64)
    P = (1 - 0.9**2) * ((nu / (1 - 0.99**2)).sqrt() + 1e-8)
    torch.testing.assert_close(w.detach(), before - 0.1 * m / P, rtol=1e-12, atol=0)
    torch.testing.assert_close(opt.preconditioner(), P, rtol=1e-12, atol=0)


def test_adam_matches_torch_adam_on_a_network():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    twin = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    twin.load_state_dict(net.state_dict())
    ours = optim.Adam(net.parameters(), lr=1e-2, betas=(0.8, 0.95), eps=1e-6)
    ref = torch.optim.Adam(twin.parameters(), lr=1e-2, betas=(0.8, 0.95), eps=1e-6)
    x, y = torch.randn(16, 5, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    for _ in range(30):
        for model, opt in ((net, ours), (twin, ref)):
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            opt.step()
    for a, b in zip(net.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_frozen_adam_keeps_preconditioner_and_updates_momentum():
    w = quadratic_grad_setup()
    opt = optim.Adam([w], lr=0.1)
    with pytest.raises(RuntimeError, match="at least one step"):
        opt.freeze_preconditioner()
    set_grad(w, [0.5, -4.0])
    opt.step()
    opt.freeze_preconditioner()
    P = opt.preconditioner().clone()
    m = opt.state[w]["exp_avg"].clone()
    before = w.detach().clone()
    set_grad(w, [10.0, 10.0])
    opt.step()
    m_new = 0.9 * m + 0.1 * torch.tensor([10.0, 10.0], dtype=torch.float64)
    torch.testing.assert_close(opt.preconditioner(), P)
    torch.testing.assert_close(w.detach(), before - 0.1 * m_new / P)


@pytest.mark.parametrize(
    "make,kwargs", [(optim.heavy_ball, dict(momentum=0.9)), (optim.nesterov, dict(momentum=0.9))]
)
def test_momentum_conventions_by_hand(make, kwargs):
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = make([w], lr=0.1, **kwargs)
    set_grad(w, [1.0])
    opt.step()
    set_grad(w, [2.0])
    opt.step()
    v1, v2 = 1.0, 0.9 * 1.0 + 2.0
    if make is optim.heavy_ball:
        expected = 1.0 - 0.1 * v1 - 0.1 * v2
    else:
        expected = 1.0 - 0.1 * (1.0 + 0.9 * v1) - 0.1 * (2.0 + 0.9 * v2)
    assert w.item() == pytest.approx(expected, rel=1e-12)


def test_gd_is_plain_step_and_non_adaptive():
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = optim.gd([w], lr=0.25)
    set_grad(w, [2.0])
    opt.step()
    assert w.item() == pytest.approx(0.5)
    assert optim.preconditioner_of(opt) is None


def test_adam_rejects_bad_hyperparameters():
    w = quadratic_grad_setup()
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([w], lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([w], lr=1.0, betas=(1.0, 0.9))
    assert math.isfinite(optim.Adam([w], lr=1.0).defaults["eps"])

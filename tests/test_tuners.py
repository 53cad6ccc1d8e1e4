"""Learning-rate tuners against hand-computed steps on quadratics, the dense Hessian of a small MLP, the
Armijo condition after every accepted step, and the simplified model's fixed points."""

import math

import numpy as np
import pytest
import torch

from optdyn import theory
from optdyn.data import digits
from optdyn.experiments import curvature_aware_tuners as ct
from optdyn.models import mlp
from optdyn.optim import CDAT, Armijo, ConstantStep, Polyak, batch_closure, greedy
from optdyn.theory.tuners import __doc__ as tuners_model_doc
from optdyn.train import half_mse, train

A = torch.tensor(np.diag([4.0, 2.0, 1.0, 0.5]), dtype=torch.float64)
W_STAR = torch.tensor([1.0, -1.0, 0.5, 2.0], dtype=torch.float64)


def quadratic(w0, plain: bool = False):
    """f(w) = ½ (w − w*)ᵀ A (w − w*) ≥ 0, as a parameter and a closure (with ``.loss`` unless plain)."""
    w = torch.nn.Parameter(w0.clone())

    def loss():
        d = w - W_STAR
        return 0.5 * d @ A @ d

    def closure():
        w.grad = None
        value = loss()
        value.backward()
        return value

    if not plain:
        closure.loss = loss
    return w, closure


def f_of(w):
    d = w - W_STAR
    return float(0.5 * d @ A @ d)


W0 = torch.tensor([0.3, 0.2, -0.4, 1.0], dtype=torch.float64)
G0 = A @ (W0 - W_STAR)


def test_greedy_step_minimizes_the_quadratic_along_minus_g():
    w, closure = quadratic(W0)
    opt = greedy([w])
    opt.step(closure)
    eta = float(G0 @ G0 / (G0 @ A @ G0))
    assert opt.last["lr"] == pytest.approx(eta, rel=1e-12)
    assert torch.allclose(w.detach(), W0 - eta * G0, atol=1e-14)
    assert opt.last["dir_curvature"] == pytest.approx(float(G0 @ A @ G0 / (G0 @ G0)), rel=1e-12)
    for other in (0.9 * eta, 1.1 * eta):
        assert f_of(w.detach()) < f_of(W0 - other * G0)


@pytest.mark.parametrize("plain", [False, True])
def test_cdat_sigma_two_is_the_edge_where_the_loss_returns_to_its_value(plain):
    w, closure = quadratic(W0, plain=plain)
    opt = CDAT([w], sigma=2.0)
    opt.step(closure)
    eta = 2 * float(G0 @ G0 / (G0 @ A @ G0))
    assert opt.last["lr"] == pytest.approx(eta, rel=1e-7 if plain else 1e-12)
    assert f_of(w.detach()) == pytest.approx(f_of(W0), rel=1e-6 if plain else 1e-12)


def test_greedy_along_the_top_eigenvector_gives_eta_lambda_one():
    w0 = W_STAR + torch.tensor([1.0, 0, 0, 0], dtype=torch.float64)
    w, closure = quadratic(w0)
    opt = greedy([w])
    opt.step(closure)
    assert opt.last["lr"] * 4.0 == pytest.approx(1.0, rel=1e-12)
    assert torch.allclose(w.detach(), W_STAR, atol=1e-14)


def test_cdat_moving_averages_by_hand():
    w, closure = quadratic(W0)
    beta, sigma = 0.9, 1.5
    opt = CDAT([w], sigma=sigma, beta=beta, eps=0.0)
    num = den = 0.0
    wt = W0.clone()
    for _ in range(3):
        g = A @ (wt - W_STAR)
        num = beta * num + (1 - beta) * float(g @ g)
        den = beta * den + (1 - beta) * float(g @ A @ g)
        eta = sigma * num / den
        wt = wt - eta * g
        opt.step(closure)
        assert opt.last["lr"] == pytest.approx(eta, rel=1e-12)
    assert torch.allclose(w.detach(), wt, atol=1e-13)


def test_cdat_around_adam_first_step_by_hand():
    w, closure = quadratic(W0)
    opt = CDAT([w], sigma=1.0, direction="adam", eps=0.0)
    opt.step(closure)
    u = -G0 / (G0.abs() + 1e-8)  # m̂ = g, v̂ = g² at t = 1
    eta = float(-(G0 @ u) / (u @ A @ u))
    assert opt.last["lr"] == pytest.approx(eta, rel=1e-12)
    assert torch.allclose(w.detach(), W0 + eta * u, atol=1e-14)
    assert torch.allclose(opt.preconditioner(), G0.abs() + 1e-8)


def test_constant_step_with_a_linear_warmup():
    w, closure = quadratic(W0)
    opt = ConstantStep([w], lr=0.2, warmup=4)
    lrs = []
    for _ in range(6):
        opt.step(closure)
        lrs.append(opt.last["lr"])
    assert lrs == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2, 0.2])
    with pytest.raises(ValueError):
        ConstantStep([w], lr=0.2, warmup=-1)


def test_polyak_step_by_hand_and_its_cap():
    w, closure = quadratic(W0)
    opt = Polyak([w], max_lr=10.0)
    opt.step(closure)
    eta = f_of(W0) / float(G0 @ G0)
    assert opt.last["lr"] == pytest.approx(eta, rel=1e-12)
    assert torch.allclose(w.detach(), W0 - eta * G0, atol=1e-14)
    w, closure = quadratic(W0)
    capped = Polyak([w], max_lr=0.01)
    capped.step(closure)
    assert capped.last["lr"] == 0.01


def test_armijo_first_step_by_hand():
    w, closure = quadratic(W0)
    opt = Armijo([w], c=0.1, decrease=0.8, max_lr=1.0)
    opt.step(closure)
    eta, f0, gg = 1.0, f_of(W0), float(G0 @ G0)
    while f_of(W0 - eta * G0) > f0 - 0.1 * eta * gg:
        eta *= 0.8
    assert opt.last["lr"] == pytest.approx(eta, rel=1e-12)
    assert torch.allclose(w.detach(), W0 - eta * G0, atol=1e-14)
    # the next trial starts from min(1.5 η, η_max)
    trials_before = opt.n_evals
    opt.step(closure)
    first_trial = min(1.5 * eta, 1.0)
    assert opt.last["lr"] <= first_trial + 1e-15
    assert opt.n_evals > trials_before


def test_armijo_takes_the_last_trial_when_every_trial_fails():
    # trials 1e4, 5e3, 2.5e3 all raise the loss of the quadratic: the step is the last trial evaluated,
    # 2.5e3 (before the fix the loop shrank once more and took 1250, a step it never evaluated)
    w, closure = quadratic(W0)
    opt = Armijo([w], max_lr=1e4, decrease=0.5, max_backtracks=3)
    opt.step(closure)
    assert opt.n_evals == 3 and opt.last["accepted"] == 0.0
    assert opt.last["lr"] == 2.5e3
    assert torch.allclose(w.detach(), W0 - 2.5e3 * G0, rtol=1e-14, atol=0)
    assert opt.prev_lr == 2.5e3  # the next step starts from min(1.5 · 2.5e3, η_max)


def test_armijo_sufficient_decrease_after_every_accepted_step_on_an_mlp():
    data = digits(64)
    model = mlp([64, 16, 10], seed=0)
    opt = Armijo(model.parameters(), max_lr=10.0)
    accepted = 0
    for _ in range(40):
        closure = batch_closure(model, opt, half_mse, data.X, data.Y)
        opt.step(closure)
        with torch.no_grad():
            after = float(half_mse(model(data.X), data.Y))
        last = opt.last
        if last["accepted"]:
            accepted += 1
            assert after <= last["loss"] + 0.1 * last["lr"] * last["gu"] + 1e-12
    assert accepted >= 30


def test_directional_curvature_matches_the_dense_hessian_of_a_small_mlp():
    data = digits(32)
    model = mlp([64, 6, 10], seed=1)
    params = list(model.parameters())
    names = [n for n, _ in model.named_parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in params])

    def loss_of(flat):
        shaped, start = {}, 0
        for n, p in zip(names, params, strict=True):
            shaped[n] = flat[start : start + p.numel()].view_as(p)
            start += p.numel()
        return half_mse(torch.func.functional_call(model, shaped, (data.X,)), data.Y)

    H = torch.func.hessian(loss_of)(flat0)
    g = torch.func.grad(loss_of)(flat0)
    opt = ConstantStep(model.parameters(), lr=0.1, measure_curvature=True)
    opt.step(batch_closure(model, opt, half_mse, data.X, data.Y))
    assert opt.last["dir_curvature"] == pytest.approx(float(g @ H @ g / (g @ g)), rel=1e-10)


def test_a_negative_or_nonfinite_step_is_refused_and_recorded():
    w, closure = quadratic(W0)
    opt = Polyak([w], f_star=100.0)
    opt.step(closure)
    assert opt.stopped is not None and "learning rate" in opt.stopped
    assert torch.equal(w.detach(), W0)
    assert opt.step(closure) is None  # a stopped tuner takes no more steps

    w = torch.nn.Parameter(W0.clone())

    def nan_closure():
        w.grad = torch.full_like(w, float("nan"))
        return torch.tensor(float("nan"), dtype=torch.float64)

    cdat = CDAT([w])
    cdat.step(nan_closure)
    assert cdat.stopped is not None and torch.equal(w.detach(), W0)
    assert math.isnan(cdat.last["lr"])


def test_bad_arguments_raise():
    w = torch.nn.Parameter(W0.clone())
    for make in (
        lambda: CDAT([w], sigma=0.0),
        lambda: CDAT([w], beta=1.0),
        lambda: Armijo([w], c=1.5),
        lambda: Polyak([w], c=0.0),
        lambda: ConstantStep([w], lr=-1.0),
        lambda: CDAT([w], direction="lion"),
    ):
        with pytest.raises(ValueError):
            make()
    with pytest.raises(RuntimeError):
        CDAT([w]).step()


def test_train_steps_a_tuner_with_its_plain_closure():
    data = digits(64)
    model = mlp([64, 16, 10], seed=0)
    opt = CDAT(model.parameters(), sigma=2.0)
    traj = train(model, opt, data, 30, every=10)
    frame = traj.frame()
    assert traj.diverged_at is None and frame["loss"].iloc[-1] < frame["loss"].iloc[0]
    assert opt.last["lr"] * opt.last["dir_curvature"] == pytest.approx(2.0, rel=1e-5)


def test_run_tuner_is_deterministic_and_records_a_stop():
    cfg = {**ct.config("quick"), "n": 64, "every": 5}
    a = ct._one("cdat", cfg, 3, steps=20, sigma=2.0, batch_size=16)
    b = ct._one("cdat", cfg, 3, steps=20, sigma=2.0, batch_size=16)
    assert a.drop(columns=["stopped"]).equals(b.drop(columns=["stopped"]))
    bad = ct._one("polyak", cfg, 0, steps=20, f_star=1e3)
    assert bad["stopped"].iloc[0].startswith("step 0")
    with pytest.raises(ValueError):
        ct.make_tuner("adagrad", [])
    with pytest.raises(ValueError):
        ct.config("huge")


def test_model_fixed_points_and_first_steps():
    a, b, lr = 0.01, 1.0, 1.0
    fixed = theory.tuner_model("constant", 50, lr=lr, a=a, b=b, sharpness0=2.0, p0=math.sqrt(a / b))
    assert np.allclose(fixed["sharpness"], 2.0) and np.allclose(fixed["p"].abs(), 0.1)
    greedy_run = theory.tuner_model("tuner", 3, sigma=1.0, a=a, b=b, sharpness0=1.5, p0=1e-2)
    assert greedy_run["y"].iloc[0] == pytest.approx(-1.0)
    assert greedy_run["p"].iloc[1] == 0.0  # p_{1} = −(1 + y_0) p_0 = 0
    lam1 = 1.5 + (1 / 1.5) * a  # λ_1 = λ_0 + η_0 (a − b p_1²)
    assert greedy_run["sharpness"].iloc[1] == pytest.approx(lam1)
    assert greedy_run["lr"].iloc[1] == pytest.approx(1 / 1.5)  # η_1 = σ / λ_0 (one-step lag)
    # the sharpness update uses the new p_{t+1}, as the module's docstring states: λ_1 = λ_0 + η (a − b p_1²)
    assert "λ_{t+1} = λ_t + η_t (a − b p_{t+1}²)" in tuners_model_doc
    run = theory.tuner_model("constant", 1, lr=lr, a=a, b=b, sharpness0=2.5, p0=0.1)
    p1 = -(1 + (lr * 2.5 - 2)) * 0.1
    assert run["p"].iloc[1] == pytest.approx(p1)
    assert run["sharpness"].iloc[1] == pytest.approx(2.5 + lr * (a - b * p1**2), rel=1e-12)
    assert run["sharpness"].iloc[1] != pytest.approx(2.5 + lr * (a - b * 0.1**2), rel=1e-6)
    edge = theory.tuner_model("tuner", 1, sigma=2.0, sharpness0=1.5)
    assert edge["y"].iloc[0] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        theory.tuner_model("armijo")

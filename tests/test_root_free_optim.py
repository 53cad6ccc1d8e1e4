"""Root-free optimizers (Lin et al. 2024) against hand computation, closed forms and fixed points."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from optdyn.experiments import sqrt_free_adaptive as rf
from optdyn.models import n_params, strided_cnn, tiny_vit
from optdyn.optim import (
    IFShampoo,
    RFRMSProp,
    adamw,
    sgd_momentum,
    shampoo_state_bytes,
    state_bytes,
)


def _step(opt, p, grad):
    p.grad = grad.clone()
    opt.step()


def test_rf_rmsprop_two_steps_by_hand():
    """s₀ = 1; s ← (1−β2)s + β2·B·g²; d = g/(s+λ) + κμ; m ← α1 m + d; μ ← μ − β1 m."""
    mu0 = np.array([0.5, -1.0, 2.0])
    g1, g2 = np.array([0.1, -0.3, 0.02]), np.array([-0.2, 0.1, 0.05])
    lr, b2, lam, a1, kappa, B = 0.1, 0.2, 1e-3, 0.9, 0.01, 8
    p = torch.tensor(mu0, requires_grad=True)
    opt = RFRMSProp([p], lr=lr, lr_cov=b2, damping=lam, momentum=a1, weight_decay=kappa, batch_size=B)
    mu, s, m = mu0.copy(), np.ones(3), np.zeros(3)
    for g in (g1, g2):
        _step(opt, p, torch.tensor(g))
        s = (1 - b2) * s + b2 * B * g * g
        m = a1 * m + g / (s + lam) + kappa * mu
        mu = mu - lr * m
        np.testing.assert_allclose(p.detach().numpy(), mu, rtol=1e-13)
    np.testing.assert_allclose(opt.state[p]["s"].numpy(), s, rtol=1e-13)


def test_rf_with_exact_curvature_is_a_newton_step():
    """On l = ½ Σ hᵢ wᵢ² with s = h (frozen: lr_cov = 0), λ = 0, lr = 1: one step lands on the minimum."""
    h = torch.tensor([100.0, 1.0, 0.01], dtype=torch.float64)
    w = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    opt = RFRMSProp([w], lr=1.0, lr_cov=0.0, damping=0.0, momentum=0.0)
    _step(opt, w, h * w.detach())  # creates the state with s = 1
    with torch.no_grad():
        w.copy_(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    opt.state[w]["s"] = h.clone()
    opt.state[w]["momentum_buffer"].zero_()
    _step(opt, w, h * w.detach())
    assert torch.allclose(w.detach(), torch.zeros(3, dtype=torch.float64), atol=1e-15)


def test_rf_on_a_quadratic_matches_the_closed_form_iterate():
    """lr_cov = 0 keeps s = s₀ = c: per coordinate (w, m) ← A (w, m) with
    A = [[1 − ηa, −ηα], [a, α]], a = h/(c + λ); so (w_T, m_T) = A^T (w_0, 0)."""
    h = np.array([2.0, 0.5, 0.05])
    c, lam, lr, alpha, T = 3.0, 0.1, 0.4, 0.8, 25
    w = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = RFRMSProp([w], lr=lr, lr_cov=0.0, damping=lam, momentum=alpha, init_scale=c)
    for _ in range(T):
        _step(opt, w, torch.tensor(h) * w.detach())
    for i, hi in enumerate(h):
        a = hi / (c + lam)
        A = np.array([[1 - lr * a, -lr * alpha], [a, alpha]])
        expected = np.linalg.matrix_power(A, T) @ np.array([1.0, 0.0])
        assert w[i].item() == pytest.approx(expected[0], rel=1e-12, abs=1e-15)


def test_root_based_limit_is_sign_descent_and_root_free_is_not():
    X, y = rf.toy_problem(3, n=16, d=12)
    w0 = torch.zeros(12, dtype=torch.float64)
    dw, g = rf._update("Adam", X, y, w0, 0.01, 0.0, 0.0)
    assert torch.allclose(dw, -0.01 * g.sign(), rtol=0, atol=1e-17)
    dw, g = rf._update("RF", X, y, w0, 0.01, 0.0, 0.0)
    assert torch.allclose(dw, -0.01 / (16 * g), rtol=1e-12)
    dw10, _ = rf._update("RF", X, y, w0, 0.01, 0.0, 0.0, scale=10.0)
    assert torch.allclose(dw10, dw / 10, rtol=1e-12)


def _if_reference(W, grads, lr, b2, lam, a1, a2, B, kappa):
    """IF-Shampoo in numpy float64, factor update every step, written from the formulas."""
    do, di = W.shape
    K, C, mK, mC, m = np.eye(di), np.eye(do), np.zeros((di, di)), np.zeros((do, do)), np.zeros_like(W)
    for G in grads:
        Gp = math.sqrt(B) * G
        HK = (
            K.T @ (Gp.T @ C @ C.T @ Gp + lam * np.trace(C.T @ C) * np.eye(di)) @ K / (2 * do) - np.eye(di) / 2
        )
        HC = (
            C.T @ (Gp @ K @ K.T @ Gp.T + lam * np.trace(K.T @ K) * np.eye(do)) @ C / (2 * di) - np.eye(do) / 2
        )
        mK = a2 * mK + (1 - a2) * HK
        mC = a2 * mC + (1 - a2) * HC
        K = K @ (np.eye(di) - b2 * mK / max(1.0, np.linalg.norm(mK)))
        C = C @ (np.eye(do) - b2 * mC / max(1.0, np.linalg.norm(mC)))
        m = a1 * m + C @ C.T @ G @ K @ K.T + kappa * W
        W = W - lr * m
    return W, K, C


def test_if_shampoo_three_steps_by_hand():
    rng = np.random.default_rng(0)
    W0 = rng.standard_normal((3, 2))
    grads = [rng.standard_normal((3, 2)) for _ in range(3)]
    hp = dict(lr=0.05, b2=0.3, lam=1e-2, a1=0.9, a2=0.5, B=16, kappa=1e-3)
    W_ref, K_ref, C_ref = _if_reference(W0, grads, **hp)
    p = torch.tensor(W0, requires_grad=True)
    opt = IFShampoo(
        [p], lr=0.05, lr_cov=0.3, damping=1e-2, momentum=0.9, riemannian_momentum=0.5,
        weight_decay=1e-3, batch_size=16, update_every=1,
    )  # fmt: skip
    for G in grads:
        _step(opt, p, torch.tensor(G))
    np.testing.assert_allclose(p.detach().numpy(), W_ref, rtol=1e-12)
    np.testing.assert_allclose(opt.state[p]["K"].numpy(), K_ref, rtol=1e-12)
    np.testing.assert_allclose(opt.state[p]["C"].numpy(), C_ref, rtol=1e-12)


def test_if_shampoo_update_every_and_shapes():
    """T = 2 updates the factors at steps 0, 2, …; a conv kernel is (out, in·k·k); a vector has K only."""
    conv = torch.zeros(4, 2, 3, 3, requires_grad=True)
    bias = torch.zeros(4, requires_grad=True)
    opt = IFShampoo([conv, bias], lr=0.1, lr_cov=0.1, update_every=2, batch_size=4)
    conv.grad, bias.grad = torch.ones(4, 2, 3, 3), torch.ones(4)
    factors = []
    for _ in range(3):
        opt.step()
        factors.append(opt.state[conv]["K"].clone())
    assert opt.state[conv]["K"].shape == (18, 18) and opt.state[conv]["C"].shape == (4, 4)
    assert "C" not in opt.state[bias] and opt.state[bias]["K"].shape == (4, 4)
    assert not torch.equal(factors[0], torch.eye(18))
    assert torch.equal(factors[1], factors[0])  # step 1: no factor update
    assert not torch.equal(factors[2], factors[1])  # step 2: update


def test_if_shampoo_fixed_point_has_no_root():
    """With a fixed gradient the factors converge to H_K = H_C = 0, i.e.
    Kᵀ(G'ᵀCCᵀG' + λ tr(CᵀC) I)K = dₒ I: the inverse (not the inverse root) of the curvature."""
    rng = np.random.default_rng(1)
    G = torch.tensor(rng.standard_normal((3, 4)) * 0.3)
    p = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    opt = IFShampoo([p], lr=1e-12, lr_cov=0.2, damping=0.5, momentum=0.0, riemannian_momentum=0.0,
                    batch_size=2, update_every=1)  # fmt: skip
    for _ in range(1500):
        _step(opt, p, G)
    K, C = opt.state[p]["K"], opt.state[p]["C"]
    Gp = math.sqrt(2) * G
    A_K = Gp.T @ C @ C.T @ Gp + 0.5 * torch.trace(C.T @ C) * torch.eye(4, dtype=torch.float64)
    A_C = Gp @ K @ K.T @ Gp.T + 0.5 * torch.trace(K.T @ K) * torch.eye(3, dtype=torch.float64)
    assert torch.allclose(K.T @ A_K @ K, 3 * torch.eye(4, dtype=torch.float64), atol=1e-8)
    assert torch.allclose(C.T @ A_C @ C, 4 * torch.eye(3, dtype=torch.float64), atol=1e-8)


def test_state_bytes_counted_from_tensors():
    model = strided_cnn(seed=0)
    n, tensors = n_params(model), len(list(model.parameters()))
    X, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    expected = {
        "SGD": 4 * n,
        "AdamW": 8 * n + 4 * tensors,  # exp_avg, exp_avg_sq, and a float32 step counter per tensor
        "RF-RMSProp": 8 * n,
        "IF-Shampoo": 4 * n + 4 * 2 * (9**2 + 8**2 + 72**2 + 16**2 + 8**2 + 16**2 + 256**2 + 10**2 + 10**2),
    }
    for name, bytes_ in expected.items():
        for dtype, factor in ((torch.float32, 1), (torch.bfloat16, 2)):
            m = strided_cnn(seed=0, dtype=dtype)
            opt = rf.make_optimizer(name, m.parameters(), 1e-3)
            torch.nn.functional.cross_entropy(m(X.to(dtype)), y).backward()
            opt.step()
            want = bytes_ if dtype == torch.float32 else bytes_ // 2
            if name == "AdamW" and dtype == torch.bfloat16:
                want = 4 * n + 4 * tensors  # torch keeps the step counter in float32
            assert state_bytes(opt) == want, (name, dtype, factor)
    shampoo = shampoo_state_bytes(model.parameters())
    assert shampoo > expected["IF-Shampoo"] > expected["AdamW"]


def test_sgd_momentum_and_adamw_hand_steps():
    p = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    opt = sgd_momentum([p], lr=0.1, momentum=0.5, weight_decay=0.1)
    for g in ([0.2, 0.4], [0.2, 0.4]):
        _step(opt, p, torch.tensor(g, dtype=torch.float64))
    v1 = np.array([0.2, 0.4]) + 0.1 * np.array([1.0, -1.0])
    w1 = np.array([1.0, -1.0]) - 0.1 * v1
    w2 = w1 - 0.1 * (0.5 * v1 + np.array([0.2, 0.4]) + 0.1 * w1)
    np.testing.assert_allclose(p.detach().numpy(), w2, rtol=1e-14)
    q = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = adamw([q], lr=0.1, momentum=0.9, lr_cov=0.01, eps=1e-8, weight_decay=0.05)
    _step(opt, q, torch.tensor([0.3], dtype=torch.float64))
    # first bias-corrected step: m̂ = g, v̂ = g²; decoupled decay w(1 − ηκ)
    assert q.item() == pytest.approx(1.0 * (1 - 0.1 * 0.05) - 0.1 * 0.3 / (0.3 + 1e-8), rel=1e-12)


def test_bad_arguments_raise_before_compute():
    p = [torch.zeros(2, requires_grad=True)]
    for kwargs in (dict(lr=-1.0), dict(lr_cov=1.5), dict(damping=-1.0), dict(batch_size=0)):
        with pytest.raises(ValueError):
            RFRMSProp(p, **kwargs)
    with pytest.raises(ValueError):
        IFShampoo([torch.zeros(3000, 2, requires_grad=True)], max_dim=2048)
    with pytest.raises(ValueError):
        rf.make_optimizer("Lion", p, 1e-3)
    with pytest.raises(ValueError):
        rf.config("huge")
    with pytest.raises(ValueError):
        rf.sign_descent(-1)


def test_models_and_split():
    assert n_params(strided_cnn()) == 3818 and n_params(tiny_vit()) == 5018
    x = torch.randn(3, 1, 8, 8)
    assert (
        tiny_vit()(x).shape == (3, 10)
        and tiny_vit(dtype=torch.bfloat16)(x.bfloat16()).dtype == torch.bfloat16
    )
    split = rf.digits_split()
    sizes = {k: len(v) for k, v in split.y.items()}
    assert sizes == {"train": 960, "val": 240, "test": 597}
    assert abs(float(split.X["train"].mean())) < 1e-6


def test_divergence_is_recorded_not_raised():
    cfg = dict(rf.PROFILES["quick"], epochs=1)
    row, curves = rf.train_run("ViT", "SGD", 1e4, 0, cfg, rf.digits_split())
    assert row["diverged"] and math.isnan(row["test_acc"])
    sweep = pd.DataFrame(
        dict(
            model="CNN",
            optimizer="SGD",
            lr=[0.1, 1.0, 10.0],
            val_acc=[0.9, np.nan, 0.95],
            diverged=[False, True, False],
        )
    )
    assert rf.select_lr(sweep) == {("CNN", "SGD"): 10.0}


def test_training_is_deterministic_per_seed():
    cfg = dict(rf.PROFILES["quick"], epochs=1)
    data = rf.digits_split()
    a, _ = rf.train_run("ViT", "RF-RMSProp", 0.03, 5, cfg, data)
    b, _ = rf.train_run("ViT", "RF-RMSProp", 0.03, 5, cfg, data)
    assert a["test_acc"] == b["test_acc"] and a["val_acc"] == b["val_acc"]

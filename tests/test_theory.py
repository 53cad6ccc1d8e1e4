"""Thresholds against direct simulation on a 1-D quadratic with torch's own optimizers."""

import pytest
import torch

from optdyn import optim, theory


def final_distance(method, curvature, lr, momentum, steps=3000):
    """|w_T| after running the method on L(w) = a w²/2 from w0 = 1."""
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    if method == "gd":
        opt = optim.gd([w], lr)
    elif method == "heavy_ball":
        opt = optim.heavy_ball([w], lr, momentum)
    elif method == "nesterov":
        opt = optim.nesterov([w], lr, momentum)
    else:  # EMA momentum: frozen Adam with P = 1 is exactly m ← βm + (1−β)g; w ← w − ηm
        opt = optim.Adam([w], lr, betas=(momentum, 0.0), eps=0.0)
        w.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
        opt.state[w]["precond"] = torch.ones(1, dtype=torch.float64)
        opt.state[w]["exp_avg"].zero_()
        opt.freeze_preconditioner()
        w.data.fill_(1.0)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * curvature * w**2).sum().backward()
        opt.step()
    return abs(w.item())


@pytest.mark.parametrize(
    "method,momentum",
    [("gd", 0.0), ("heavy_ball", 0.9), ("nesterov", 0.9), ("ema_momentum", 0.9), ("ema_momentum", 0.5)],
)
def test_divergence_starts_exactly_past_threshold(method, momentum):
    lr = 0.01
    a = theory.stability_threshold(method, lr, momentum)
    assert final_distance(method, a * 0.99, lr, momentum) < 1.0
    assert final_distance(method, a * 1.01, lr, momentum) > 1e3


def test_named_values():
    assert theory.stability_threshold("gd", 0.5) == pytest.approx(4.0)
    assert theory.adam_threshold(1e-3, 0.9) == pytest.approx(38_000)
    assert theory.stability_threshold("heavy_ball", 1.0, 0.9) == pytest.approx(3.8)
    assert theory.stability_threshold("nesterov", 1.0, 0.9) == pytest.approx(3.8 / 2.8)


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive"):
        theory.stability_threshold("gd", -0.1)
    with pytest.raises(ValueError, match="unknown method"):
        theory.stability_threshold("adagrad", 0.1)

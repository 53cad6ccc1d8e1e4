"""The preconditioned sharpness follows the parameters, not the optimizer's param-group order (issue 14,
item 16): with Adam's groups given as [head, first layer], P must still be paired with the model's own
parameter order, as a dense Hessian computed by hand says."""

import pytest
import torch

from optdyn import optim
from optdyn.data import digits
from optdyn.models import mlp
from optdyn.train import half_mse, train


def _groups(model, order):
    first, head = list(model[0].parameters()), list(model[-1].parameters())
    return [{"params": head}, {"params": first}] if order == "reversed" else [{"params": first + head}]


def _dense_precond_sharpness(model, opt, data) -> float:
    """λ1(P^{-1/2} H P^{-1/2}) with H by torch.func.hessian on the flat parameters (model order) and P read
    from Adam's state parameter by parameter."""
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    flat = torch.cat([p.detach().reshape(-1) for p in params])

    def loss(theta):
        chunks, start = {}, 0
        for (name, _), shape in zip(model.named_parameters(), shapes, strict=True):
            n = shape.numel()
            chunks[name] = theta[start : start + n].view(shape)
            start += n
        return half_mse(torch.func.functional_call(model, chunks, (data.X,)), data.Y)

    H = torch.func.hessian(loss)(flat)
    d = torch.cat([opt.state[p]["precond"].reshape(-1) for p in params]).rsqrt()
    return float(torch.linalg.eigvalsh(d[:, None] * H * d[None, :])[-1])


@pytest.mark.parametrize("order", ["model", "reversed"])
def test_precond_sharpness_pairs_P_with_the_parameters_by_identity(order):
    data = digits(60)
    model = mlp([64, 4, 10], seed=0)
    opt = optim.Adam(_groups(model, order), lr=1e-2)
    frame = train(model, opt, data, 5, every=5).frame()
    recorded = frame["precond_sharpness"].iloc[-1]
    assert recorded == pytest.approx(_dense_precond_sharpness(model, opt, data), rel=1e-4)


def test_group_order_does_not_change_the_recorded_trajectory():
    frames = []
    for order in ("model", "reversed"):
        model = mlp([64, 4, 10], seed=0)
        opt = optim.Adam(_groups(model, order), lr=1e-2)
        frames.append(train(model, opt, digits(60), 5, every=5).frame())
    first, second = (f["precond_sharpness"].tolist() for f in frames)
    assert first == pytest.approx(second, nan_ok=True)


def test_an_optimizer_without_every_parameter_is_refused():
    model = mlp([64, 4, 10], seed=0)
    opt = optim.Adam(model[-1].parameters(), lr=1e-2)
    with pytest.raises(ValueError, match="does not hold 2 of the model's 4 trained parameters"):
        train(model, opt, digits(60), 5, every=5)

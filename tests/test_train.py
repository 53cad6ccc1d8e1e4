"""The training loop: determinism, divergence recorded, probes on the whole training set."""

import copy

import numpy as np
import pytest
import torch

from optdyn import curvature, optim
from optdyn.data import digits
from optdyn.models import mlp
from optdyn.train import half_mse, train


def test_half_mse_closed_form():
    out = torch.tensor([[1.0, 2.0], [0.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    assert half_mse(out, y).item() == pytest.approx(0.5 * (1 + 4 + 1 + 1) / 2)


def run(seed, batch_size=None, lr=0.3, steps=20):
    data = digits(100)
    model = mlp([64, 16, 10], seed=seed)
    return train(
        model, optim.gd(model.parameters(), lr), data, steps, every=10, batch_size=batch_size, seed=seed
    )


def test_same_seed_same_numbers_and_other_seed_differs():
    a, b, c = run(0, batch_size=20).frame(), run(0, batch_size=20).frame(), run(1, batch_size=20).frame()
    assert a.equals(b)
    assert not np.allclose(a["loss"], c["loss"])


def test_probes_every_k_steps_and_sharpness_is_the_full_set_hessian():
    data = digits(100)
    model = mlp([64, 16, 10], seed=0)
    traj = train(model, optim.gd(model.parameters(), 0.1), data, 20, every=10, batch_size=10)
    frame = traj.frame()
    assert frame["step"].tolist() == [0, 10, 20]
    expected = curvature.sharpness(
        lambda: half_mse(model(data.X), data.Y), list(model.parameters()), tol=1e-8
    )
    assert frame["sharpness"].iloc[-1] == pytest.approx(expected, rel=1e-4)


def test_divergence_is_recorded_not_raised():
    traj = run(0, lr=500.0, steps=200)
    assert traj.diverged_at is not None and traj.diverged_at < 200
    last = traj.frame()["loss"].iloc[-1]
    assert not np.isfinite(last) or last > 1e6


def test_adam_probe_records_preconditioned_sharpness_from_optimizer_state():
    data = digits(100)
    model = mlp([64, 16, 10], seed=0)
    opt = optim.Adam(model.parameters(), 1e-3)
    frame = train(model, opt, data, 10, every=10).frame()
    assert np.isnan(frame["precond_sharpness"].iloc[0])
    params = list(model.parameters())
    expected = curvature.preconditioned_sharpness(
        lambda: half_mse(model(data.X), data.Y), params, opt.preconditioner(), tol=1e-8
    )
    assert frame["precond_sharpness"].iloc[-1] == pytest.approx(expected, rel=1e-4)


def test_branch_continues_numbering_and_frozen_branch_diverges_from_adaptive():
    data = digits(100)
    model = mlp([64, 16, 10], seed=0)
    opt = optim.Adam(model.parameters(), 1e-2)
    train(model, opt, data, 10, every=5)
    m2, o2 = copy.deepcopy((model, opt))
    o2.freeze_preconditioner()
    t1 = train(model, opt, data, 10, every=5, start_step=10).frame()
    t2 = train(m2, o2, data, 10, every=5, start_step=10).frame()
    assert t1["step"].tolist() == [10, 15, 20]
    assert t1["loss"].iloc[0] == t2["loss"].iloc[0]
    assert t1["loss"].iloc[-1] != t2["loss"].iloc[-1]


@pytest.mark.parametrize(
    "kwargs,match", [(dict(steps=0), "steps"), (dict(every=0), "every"), (dict(batch_size=0), "batch_size")]
)
def test_bad_arguments_fail_with_a_named_problem(kwargs, match):
    data = digits(50)
    model = mlp([64, 10])
    args = dict(steps=5, every=1) | kwargs
    with pytest.raises(ValueError, match=match):
        train(model, optim.gd(model.parameters(), 0.1), data, args.pop("steps"), **args)


def test_an_optimizer_that_needs_a_closure_gets_one_on_the_same_batch():
    """train() hands `step` a closure that recomputes the minibatch loss and its gradient."""
    from optdyn.data import gaussian_teacher

    class Recording(torch.optim.SGD):
        needs_closure = True

        def __init__(self, params):
            super().__init__(params, lr=0.1)
            self.losses = []

        def step(self, closure=None):
            first = [p.grad.clone() for p in self.param_groups[0]["params"]]
            self.losses.append(float(closure()))
            again = [p.grad for p in self.param_groups[0]["params"]]
            assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
            return super().step()

    data = gaussian_teacher(n=64, d=5, seed=0)
    model = torch.nn.Linear(5, data.Y.shape[1]).double()
    optimizer = Recording(model.parameters())
    trajectory = train(model, optimizer, data, steps=6, every=3, batch_size=16, seed=0)
    assert len(optimizer.losses) == 6 and trajectory.diverged_at is None
    assert all(np.isfinite(optimizer.losses))

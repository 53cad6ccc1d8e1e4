"""The Gauss-Newton / NME split, the jet activations and the penalties against independent ground truth:
dense Hessians and Jacobians by torch.autograd.functional, closed forms, Monte-Carlo averages, curvlinops."""

import math

import pytest
import torch

from optdyn import curvature, penalties
from optdyn.curvature import GaussNewtonSplit, softmax_cross_entropy
from optdyn.data import digits
from optdyn.models import JetActivation, beta_gelu_derivatives, jet_mlp, mlp
from optdyn.optim import gd
from optdyn.train import train

WIDTHS = [64, 6, 5, 10]


def problem(kind="gelu", n=40, seed=0, curvature_kind="own"):
    data = digits(n)
    model = jet_mlp(WIDTHS, kind, curvature=curvature_kind, seed=seed)
    return model, data


def dense_parts(model, X, Y):
    """H by autograd.functional.hessian, G = Σ_i J_iᵀ H_z,i J_i from autograd.functional.jacobian and the
    softmax Hessian written out, NME = H − G; all on the flat parameter vector."""
    params = list(model.parameters())
    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for p in params]
    theta = torch.cat([p.detach().reshape(-1) for p in params])

    def logits(flat):
        chunks = torch.split(flat, sizes)
        tensors = {n: c.view(p.shape) for n, c, p in zip(names, chunks, params, strict=True)}
        return torch.func.functional_call(model, tensors, (X,))

    def loss(flat):
        z = logits(flat)
        return -(Y * torch.log_softmax(z, 1)).sum() / len(z)

    H = torch.autograd.functional.hessian(loss, theta)
    J = torch.autograd.functional.jacobian(logits, theta)  # (N, K, d)
    p = torch.softmax(logits(theta), 1)
    G = torch.zeros_like(H)
    for i in range(len(X)):
        Hz = (torch.diag(p[i]) - torch.outer(p[i], p[i])) / len(X)
        G += J[i].T @ Hz @ J[i]
    return H, G, H - G


@pytest.mark.parametrize("kind", ["relu", "gelu"])
def test_products_match_independent_dense_matrices(kind):
    model, data = problem(kind)
    H, G, NME = dense_parts(model, data.X, data.Y)
    split = GaussNewtonSplit(model, data.X, data.Y)
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        v = torch.randn(split.dim, generator=gen, dtype=torch.float64)
        scale = float((H @ v).norm())
        assert float((split.hessian(v) - H @ v).norm()) <= 1e-10 * scale
        assert float((split.gauss_newton(v) - G @ v).norm()) <= 1e-10 * scale
        assert float((split.nme(v) - NME @ v).norm()) <= 1e-10 * scale
        assert float((split.nme_direct(v) - NME @ v).norm()) <= 1e-10 * scale
    dense = split.dense()
    assert torch.allclose(dense["hessian"], H, atol=1e-12)
    assert torch.allclose(dense["gauss_newton"], G, atol=1e-12)
    assert torch.allclose(dense["hessian"], dense["gauss_newton"] + dense["nme"], atol=0)


def test_relu_same_layer_nme_blocks_are_zero_and_gelu_are_not():
    for kind in ("relu", "gelu"):
        model, data = problem(kind)
        _, _, NME = dense_parts(model, data.X, data.Y)
        blocks = curvature.block_slices(model)
        top = float(NME.abs().max())
        layers = {"1": ["0.weight", "0.bias"], "2": ["2.weight", "2.bias"], "3": ["4.weight", "4.bias"]}
        for layer, names in layers.items():
            same = max(float(NME[blocks[a], blocks[b]].abs().max()) for a in names for b in names)
            if kind == "relu" or layer == "3":
                assert same <= 1e-12 * top, (kind, layer, same / top)
            else:
                assert same >= 1e-3 * top, (kind, layer, same / top)
        cross = float(NME[blocks["0.weight"], blocks["2.weight"]].abs().max())
        assert cross >= 1e-3 * top


def test_nme_is_zero_when_the_residual_is_zero():
    """Soft targets equal to the model's own probabilities: ∂L/∂z = 0, so H = G exactly."""
    model, data = problem("gelu")
    with torch.no_grad():
        p = torch.softmax(model(data.X), 1)
    split = GaussNewtonSplit(model, data.X, p)
    v = torch.randn(split.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert float(split.residual.abs().max()) == 0.0
    assert float(split.nme(v).norm()) <= 1e-12 * float(split.hessian(v).norm())
    assert float(split.nme_direct(v).norm()) == 0.0


def test_gauss_newton_matches_curvlinops():
    import curvlinops  # pinned in requirements-nodeps.txt

    model, data = problem("gelu")
    params = [p for p in model.parameters()]
    op = curvlinops.GGNLinearOperator(
        model, torch.nn.CrossEntropyLoss(), params, [(data.X, data.labels)], check_deterministic=False
    )
    split = GaussNewtonSplit(model, data.X, data.Y)
    v = torch.randn(split.dim, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    theirs = torch.as_tensor(op @ v).reshape(-1)
    assert float((theirs - split.gauss_newton(v)).norm()) <= 1e-10 * float(theirs.norm())


def test_hutchinson_estimates_converge_to_dense_traces():
    model, data = problem("gelu", n=20)
    H, G, NME = dense_parts(model, data.X, data.Y)
    est = GaussNewtonSplit(model, data.X, data.Y).hutchinson(probes=400, seed=0)
    for part, A in (("hessian", H), ("gauss_newton", G), ("nme", NME)):
        exact_fro = float(A.norm())
        # Rademacher variance of rᵀAr is 2(‖A‖_F² − Σ A_ii²) ≤ 2‖A‖_F²: 4 standard errors.
        assert abs(est[part]["trace"] - float(A.trace())) <= 4 * math.sqrt(2 / 400) * exact_fro
        assert est[part]["frobenius"] == pytest.approx(exact_fro, rel=0.15)


def test_extreme_eigenvalues_bracket_the_dense_spectrum():
    model, data = problem("gelu", n=20)
    _, _, NME = dense_parts(model, data.X, data.Y)
    lo, hi = GaussNewtonSplit(model, data.X, data.Y).extreme_eigenvalues("nme", tol=1e-8, maxiter=2000)
    values = torch.linalg.eigvalsh(NME)
    assert lo == pytest.approx(float(values[0]), rel=1e-4)
    assert hi == pytest.approx(float(values[-1]), rel=1e-4)
    assert lo < 0 < hi  # the NME is indefinite


def test_jet_activations_are_the_torch_activations_to_second_order():
    data = digits(30)
    for kind, module in (("gelu", "gelu"), ("relu", "relu")):
        jet = jet_mlp(WIDTHS, kind, seed=3)
        ref = mlp(WIDTHS, module, seed=3)
        Hj = GaussNewtonSplit(jet, data.X, data.Y).dense()["hessian"]
        Hr = GaussNewtonSplit(ref, data.X, data.Y).dense()["hessian"]
        assert torch.allclose(Hj, Hr, atol=1e-12)


@pytest.mark.parametrize(
    "kind,beta,curv",
    [("gelu", 1.0, "own"), ("beta_gelu", 4.0, "own"), ("gelu", 1.0, "zero"), ("relu", 1.0, "gelu")],
)
def test_jet_activation_derivatives(kind, beta, curv):
    x = torch.linspace(-3, 3, 13, dtype=torch.float64, requires_grad=True)
    y = JetActivation(kind, beta, curv)(x)
    (d1,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), x)
    xs = x.detach()
    if kind == "relu":
        value, slope = torch.relu(xs), (xs > 0).double()
    else:
        value, slope = xs * torch.special.ndtr(beta * xs), None
        # finite-difference slope of the closed-form value
        h = 1e-6
        slope = (
            (xs + h) * torch.special.ndtr(beta * (xs + h)) - (xs - h) * torch.special.ndtr(beta * (xs - h))
        ) / (2 * h)
    curvature_expected = {
        "own": beta_gelu_derivatives(xs, beta)[2],
        "zero": torch.zeros_like(xs),
        "gelu": (2 - xs**2) * torch.exp(-(xs**2) / 2) / math.sqrt(2 * math.pi),
    }[curv]
    assert torch.allclose(y.detach(), value, atol=1e-12)
    assert torch.allclose(d1.detach(), slope, atol=1e-8)
    assert torch.allclose(d2, curvature_expected, atol=1e-12)


def test_gradient_penalty_gradient_is_g_plus_rho_hg_over_norm():
    model, data = problem("gelu", n=20)
    H, _, _ = dense_parts(model, data.X, data.Y)
    params = list(model.parameters())
    loss = softmax_cross_entropy(model(data.X), data.Y)
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, params)])
    rho = 0.7
    objective = penalties.gradient_penalty(rho)(model, data.X, data.Y)
    got = torch.cat([t.reshape(-1) for t in torch.autograd.grad(objective, params)])
    assert torch.allclose(got, g + rho * (H @ g) / g.norm(), atol=1e-10)


def test_trace_penalties_are_unbiased_for_the_dense_traces():
    model, data = problem("gelu", n=12)
    H, G, _ = dense_parts(model, data.X, data.Y)
    loss = float(softmax_cross_entropy(model(data.X), data.Y))
    sigma2, draws = 0.5, 400
    for make, exact in (
        (penalties.hessian_trace_penalty, H.trace()),
        (penalties.gauss_newton_trace_penalty, G.trace()),
    ):
        objective = make(sigma2, samples=1, seed=0)
        values = (
            torch.tensor([float(objective(model, data.X, data.Y)) - loss for _ in range(draws)]) * 2 / sigma2
        )
        stderr = float(values.std()) / math.sqrt(draws)
        assert abs(float(values.mean()) - float(exact)) <= 4 * stderr, (
            make.__name__,
            float(values.mean()),
            float(exact),
        )


def test_weight_noise_evaluates_the_loss_at_a_shifted_point():
    model, data = problem("gelu", n=12)
    sigma2 = 0.01
    value = float(penalties.weight_noise(sigma2, seed=5)(model, data.X, data.Y))
    gen = torch.Generator().manual_seed(5)
    shifted = jet_mlp(WIDTHS, "gelu", seed=0)
    with torch.no_grad():
        for p in shifted.parameters():
            p.add_(math.sqrt(sigma2) * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    assert value == pytest.approx(float(softmax_cross_entropy(shifted(data.X), data.Y)), rel=1e-12)


def test_train_with_objective_follows_the_objective():
    data = digits(64)
    runs = []
    for objective in (None, penalties.gradient_penalty(0.0)):
        model = jet_mlp(WIDTHS, "gelu", seed=0)
        traj = train(
            model,
            gd(model.parameters(), 0.3),
            data,
            20,
            loss_fn=softmax_cross_entropy,
            every=10,
            batch_size=16,
            curvature=False,
            objective=objective,
        )
        runs.append([r["loss"] for r in traj.rows])
    assert runs[0] == runs[1]


def test_bad_inputs_are_named():
    model, data = problem("gelu", n=8)
    with pytest.raises(ValueError, match="unknown part"):
        GaussNewtonSplit(model, data.X, data.Y).operator("fisher")
    with pytest.raises(ValueError, match="rho"):
        penalties.gradient_penalty(-1.0)
    with pytest.raises(ValueError, match="samples"):
        penalties.hessian_trace_penalty(0.1, samples=0)
    with pytest.raises(ValueError, match="unknown kind"):
        JetActivation("swish")
    with pytest.raises(ValueError, match="unknown curvature"):
        JetActivation("relu", curvature="half")

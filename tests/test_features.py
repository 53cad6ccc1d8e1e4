"""Neural feature statistics against independent computations and hand-made cases; the SLO optimizer; the
measuring functions of the feature-learning chapter on hand-made data."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from optdyn import features, optim
from optdyn.experiments import nfa_alignment as na
from optdyn.models import mlp
from optdyn.train import half_mse, train


def tiny(seed=0, widths=(5, 7, 6, 3)):
    return mlp(list(widths), "relu", seed=seed, bias=False)


def reference_jacobians(model, X):
    """∂f/∂h_l and ∂f/∂x_l per example with torch.autograd.functional.jacobian on a hand-split forward."""
    linears = [m for m in model if isinstance(m, nn.Linear)]
    pre, inp = [[] for _ in linears[:-1]], [[] for _ in linears[:-1]]
    for x in X:
        for layer in range(len(linears) - 1):
            xs = x
            for m in linears[:layer]:
                xs = torch.relu(m(xs))

            def from_input(z, layer=layer):
                h = linears[layer](z)
                for m in linears[layer + 1 :]:
                    h = m(torch.relu(h))
                return h

            def from_pre(h, layer=layer):
                for m in linears[layer + 1 :]:
                    h = m(torch.relu(h))
                return h

            inp[layer].append(torch.autograd.functional.jacobian(from_input, xs))
            pre[layer].append(torch.autograd.functional.jacobian(from_pre, linears[layer](xs)))
    return [torch.stack(j) for j in pre], [torch.stack(j) for j in inp]


def test_jacobians_agop_and_ptk_match_an_independent_computation():
    model = tiny()
    X = torch.randn(9, 5, dtype=torch.float64)
    pre_ref, in_ref = reference_jacobians(model, X)
    for got, ref in zip(features.layer_jacobians(model, X, "pre", chunk=4), pre_ref, strict=True):
        torch.testing.assert_close(got, ref)
    for got, ref in zip(features.layer_jacobians(model, X, "input"), in_ref, strict=True):
        torch.testing.assert_close(got, ref)
    G_ref = [torch.einsum("ncj,nck->jk", J, J) / len(X) for J in in_ref]
    K_ref = [torch.einsum("ncj,nck->jk", J, J) / len(X) for J in pre_ref]
    for G, K, g, k, W in zip(
        features.agops(model, X), features.ptk_covariances(model, X), G_ref, K_ref, features.weights(model),
        strict=True,
    ):  # fmt: skip
        torch.testing.assert_close(G, g)
        torch.testing.assert_close(K, k)
        assert float((G - W.T @ K @ W).norm() / G.norm()) < 1e-12  # chain rule: G_l = W_lᵀ K_l W_l


def mat_cov(A, B):
    """The authors' correlation (centered_NFA, MLP/utils.py), transcribed."""
    a, b = A.reshape(-1).clone(), B.reshape(-1).clone()
    a -= a.mean()
    b -= b.mean()
    return (torch.dot(a, b) / a.norm() / b.norm()).item()


def test_correlation_conventions_on_hand_made_matrices():
    I2 = torch.eye(2, dtype=torch.float64)
    B = torch.tensor([[2.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    # cosine: <I, B> = 2, |I| = √2, |B| = √6; entries minus their means: (½,−½,−½,½)·(1,0,0,−1) = 0
    assert features.correlation(I2, B, "cosine") == pytest.approx(2 / math.sqrt(12))
    assert features.correlation(I2, B, "pearson") == pytest.approx(0.0, abs=1e-15)
    assert math.isnan(features.correlation(I2, torch.ones(2, 2), "pearson"))  # constant: no spread
    g = torch.Generator().manual_seed(0)
    A, C = torch.randn(6, 6, generator=g), torch.randn(6, 6, generator=g)
    assert features.correlation(A, C) == pytest.approx(mat_cov(A, C), abs=1e-6)
    assert features.correlation(A, C) == pytest.approx(np.corrcoef(A.reshape(-1), C.reshape(-1))[0, 1])
    assert features.correlation(3 * A + 1, C) == pytest.approx(features.correlation(A, C))
    assert features.correlation(3 * A + 1, C, "cosine") != pytest.approx(features.correlation(A, C, "cosine"))
    with pytest.raises(ValueError):
        features.correlation(A, C, "spearman")


def test_nfa_is_one_for_isotropic_k_and_for_rank_one_weights():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(7, 4, generator=g, dtype=torch.float64)
    M = torch.randn(7, 7, generator=g, dtype=torch.float64)
    K = M @ M.T
    assert features.nfa(W, 2.5 * torch.eye(7, dtype=torch.float64)) == pytest.approx(1.0)
    u, v = (
        torch.randn(7, 1, generator=g, dtype=torch.float64),
        torch.randn(4, 1, generator=g, dtype=torch.float64),
    )
    assert features.nfa(u @ v.T, K, "cosine") == pytest.approx(1.0)
    assert features.nfa(W, K) < 0.999


def test_alignment_form_equals_the_cosine_and_random_eigenvectors_keep_the_spectrum():
    g = torch.Generator().manual_seed(2)
    W = torch.randn(8, 5, generator=g, dtype=torch.float64)
    M = torch.randn(8, 8, generator=g, dtype=torch.float64)
    K = M @ M.T
    assert na.alignment_form(W, K) == pytest.approx(features.nfa(W, K, "cosine"), abs=1e-12)
    R = features.random_eigenvectors(K, g)
    torch.testing.assert_close(R, R.T)
    torch.testing.assert_close(torch.linalg.eigvalsh(R), torch.linalg.eigvalsh(K))
    S, energy = features.alignment_spectrum(W, K)
    assert torch.all(S[:-1] >= S[1:]) and len(energy) == 5
    _, square = features.alignment_spectrum(torch.randn(8, 8, generator=g, dtype=torch.float64), K)
    assert float(square.mean()) == pytest.approx(1.0)  # a full orthonormal basis has K-energy 1 on average


def wide_net(width, depth, d, seed=0):
    """A bias-free ReLU net with N(0, 1/fan_in) weights (the infinite-width limit's Gaussian init)."""
    torch.manual_seed(seed)
    model = mlp([d, *[width] * depth, 2], "relu", seed=seed, bias=False)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 1.0 / math.sqrt(m.in_features))
    return model


def test_backward_kernel_matches_a_wide_random_network():
    X = torch.randn(6, 4, dtype=torch.float64)
    theta = features.relu_backward_kernel(X, X, 2)
    assert torch.allclose(torch.diagonal(theta), torch.full((6,), 0.25, dtype=torch.float64))
    J = features.layer_jacobians(wide_net(3000, 2, 4), X, "pre")[0]  # ∂f/∂h_1: (n, c, width)
    gram = torch.einsum("ick,jck->ij", J, J)
    empirical = gram / gram.diagonal().mean()
    assert torch.allclose(empirical, theta / 0.25, atol=0.06)


def test_first_layer_prediction_matches_a_wide_network_first_step():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(40, 5, generator=g, dtype=torch.float64)
    Y = torch.randn(40, 2, generator=g, dtype=torch.float64)
    model = wide_net(2000, 2, 5)
    dW = features.first_step_update(model, X, Y, half_mse)[0]
    with torch.no_grad():
        R = model(X) - Y
    nfm, agop = features.predicted_first_layer(X, R, 2)
    K = features.ptk_covariances(model, X)[0]
    assert features.correlation(nfm, dW.T @ dW) > 0.99
    assert features.correlation(agop, dW.T @ K @ dW) > 0.99


def test_normalized_sgd_steps_have_the_set_length_and_plain_groups_are_sgd():
    model = mlp([3, 4, 2], "relu", seed=0, bias=False)
    first, last = model[0], model[2]
    w0, v0 = first.weight.detach().clone(), last.weight.detach().clone()
    opt = optim.speed_limited(model, first, speed=0.1, lr=0.5)
    loss = half_mse(model(torch.randn(5, 3, dtype=torch.float64)), torch.zeros(5, 2, dtype=torch.float64))
    loss.backward()
    g_last = last.weight.grad.clone()
    opt.step()
    assert float((first.weight.detach() - w0).norm()) == pytest.approx(0.1 * float(w0.norm()))
    torch.testing.assert_close(last.weight.detach(), v0 - 0.5 * g_last)
    limited = optim.speed_limited(model, first, speed=0.1, lr=0.5, others=0.02)
    w1, v1 = first.weight.detach().clone(), last.weight.detach().clone()
    limited.step()  # the same gradients: every weight matrix moves its own fraction of its norm
    assert float((first.weight.detach() - w1).norm()) == pytest.approx(0.1 * float(w1.norm()))
    assert float((last.weight.detach() - v1).norm()) == pytest.approx(0.02 * float(v1.norm()))
    decaying = optim.NormalizedSGD(
        [torch.zeros(2, requires_grad=True)], lr=1.0, normalized=True, decay_steps=2
    )
    p = decaying.param_groups[0]["params"][0]
    for expected in (-1.0, -1.5, -1.5):  # steps of length 1, ½, 0 along −g
        p.grad = torch.tensor([1.0, 0.0])
        decaying.step()
        assert float(p.detach()[0]) == pytest.approx(expected)


def test_train_probe_without_curvature():
    data = na.digits_task().train
    model = mlp([data.X.shape[1], 8, 10], "relu", seed=0, dtype=torch.float32, bias=False)
    initial = features.weights(model)
    calls = []

    def probe(m):
        calls.append(1)
        return {"uc": features.nfa_stats(m, initial, data.X[:32])[0]["uc_nfa"]}

    frame = train(
        model, torch.optim.SGD(model.parameters(), lr=0.1), data, 4, every=2, batch_size=128,
        curvature=False, probe=probe,
    ).frame()  # fmt: skip
    assert frame["step"].tolist() == [0, 2, 4] and len(calls) == 3
    assert "sharpness" not in frame and frame["uc"].notna().all()


# ------------------------------------------------------------------------------- the chapter's measures


def test_probe_epochs_cover_the_start_and_the_late_window():
    epochs = na.probe_epochs(200, 16)
    assert epochs[0] == 1 and epochs[-1] == 200 and epochs == sorted(set(epochs))
    assert sum(e >= 120 for e in epochs) >= 3


def test_at_loss_interpolates_in_log_loss_and_late_is_a_fixed_fraction():
    f = pd.DataFrame(
        {"epoch": [-1, 0, 1, 2, 3], "loss": [1.0, 1.0, 0.1, 0.01, 0.001], "v": [0, 0, 1.0, 3.0, 5]}
    )
    assert na.at_loss(f, "v", 0.1) == pytest.approx(1.0)
    assert na.at_loss(f, "v", 10**-1.5) == pytest.approx(2.0)  # halfway in log(loss) between epochs 1 and 2
    assert math.isnan(na.at_loss(f, "v", 1e-4))
    assert na.late(f)["epoch"].tolist() == [2, 3]  # epochs ≥ 0.6·3


def layers_frame(uc, c):
    """Hand-made probes of one SGD task: epochs −1, 0, 1, 2, 3, 4, 5 for two layers."""
    rows = []
    for layer in (1, 2):
        for i, epoch in enumerate([-1, 0, 1, 2, 3, 4, 5]):
            rows.append(
                dict(
                    task="digits",
                    optimizer="SGD",
                    epoch=epoch,
                    layer=layer,
                    uc_nfa=uc[layer][i],
                    c_nfa=c[layer][i],
                )
            )
    return pd.DataFrame(rows)


def test_measuring_functions_on_hand_made_probes():
    uc = {1: [0.8, 0.8, 0.7, 0.6, 0.7, 0.75, 0.75], 2: [0.5, 0.5, 0.5, 0.6, 0.7, 0.8, 0.9]}
    c = {1: [np.nan, 0.95, 0.9, 0.9, 0.5, 0.9, 0.9], 2: [np.nan, 0.97, 0.85, 0.9, 0.9, 0.95, 0.95]}
    comparison = pd.DataFrame(
        dict(task=["digits", "digits", "low-rank", "low-rank"], optimizer=["SGD", "SLO"] * 2,
             uc_at_loss=[0.7, 0.9, 0.6, np.nan], share_late=[np.nan, np.nan, 0.2, 0.5],
             diverged_at=[np.nan] * 4)
    )  # fmt: skip
    data = {"layers": layers_frame(uc, c), "comparison": comparison}
    # late window: epochs ≥ 3 → layer 1 mean (0.7 + 0.75 + 0.75)/3 − 0.8; layer 2 (0.7 + 0.8 + 0.9)/3 − 0.5
    assert na.nfa_rise(data, first=True).value == pytest.approx(2.2 / 3 - 0.8)
    assert na.nfa_rise(data, first=False).value == pytest.approx(0.8 - 0.5)
    assert na.cnfa_after_one_epoch(data).value == pytest.approx(0.85)
    assert na.centered_above(data).value == pytest.approx(9 / 10)  # epoch 3, layer 1: 0.5 < 0.7
    assert na.slo_gain(data, "uc_at_loss").value == pytest.approx(0.2)  # low-rank SLO missing: digits only
    assert na.slo_gain(data, "share_late").value == pytest.approx(0.3)
    early = pd.DataFrame(dict(task=["a", "a", "b"], layer=[1, 2, 1], measured=[0.9, 0.8, 0.95],
                              first_step=[0.9, 0.805, 0.95], kernel=[0.99, np.nan, 0.96]))  # fmt: skip
    assert na.kernel_gap({"early": early}).value == pytest.approx(0.09)
    assert na.first_step_gap({"early": early}).value == pytest.approx(0.005)


def test_participation_ratio_counts_the_directions_of_a_spectrum():
    assert na.participation_ratio(torch.eye(5, dtype=torch.float64)) == pytest.approx(5.0)
    assert na.participation_ratio(torch.diag(torch.tensor([3.0, 0.0, 0.0]))) == pytest.approx(1.0)
    assert na.participation_ratio(torch.diag(torch.tensor([1.0, 1.0, 0.0, 0.0]))) == pytest.approx(2.0)
